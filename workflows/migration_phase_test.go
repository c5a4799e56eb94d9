package workflows_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// migratingSpec is a 3-broker cluster in migration phase p.
func migratingSpec(p fleet.MigrationPhase) fleet.ClusterSpec {
	return fleet.ClusterSpec{ID: "local-z", Bootstrap: []string{"127.0.0.1:9092"}, ZooKeeper: "127.0.0.1:2181/kfleet/local-z",
		Brokers: []fleet.BrokerSpec{{ID: 1, InstanceID: "i-1"}, {ID: 2, InstanceID: "i-2"}, {ID: 3, InstanceID: "i-3"}},
		KRaft: &fleet.KRaftSpec{Mode: fleet.ModeMigrating, Phase: p, MetadataVersion: "3.9-IV0",
			Controllers:     []fleet.ControllerSpec{{ID: 3000, InstanceID: "i-c0"}, {ID: 3001, InstanceID: "i-c1"}, {ID: 3002, InstanceID: "i-c2"}},
			QuorumBootstrap: []string{"127.0.0.1:9301", "127.0.0.1:9302", "127.0.0.1:9303"}}}
}

// phaseEnv records, in order, what a migration step does to the cluster.
type phaseEnv struct {
	env  *testsuite.TestWorkflowEnvironment
	log  []string
	spec fleet.ClusterSpec
}

func newPhaseEnv(t *testing.T, spec fleet.ClusterSpec, blockers []fleet.Blocker) *phaseEnv {
	var ts testsuite.WorkflowTestSuite
	p := &phaseEnv{env: ts.NewTestWorkflowEnvironment(), spec: spec}
	p.env.RegisterWorkflow(workflows.RollingRestartWorkflow)
	p.env.OnWorkflow(workflows.RollingRestartWorkflow, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in workflows.RollingRestartInput) (workflows.RollingRestartResult, error) {
			p.log = append(p.log, fmt.Sprintf("roll %v into %s", in.Brokers, in.MetadataMode))
			return workflows.RollingRestartResult{}, nil
		})
	p.env.OnActivity(acts.CheckBrokersMigrated, mock.Anything, mock.Anything).Return(func(context.Context, fleet.ClusterSpec) ([]fleet.Blocker, error) {
		p.log = append(p.log, "check brokers migrated")
		return blockers, nil
	}).Maybe()
	p.env.OnActivity(acts.SetMigrationSpec, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SetMigrationSpecInput) (fleet.ClusterSpec, error) {
		p.log = append(p.log, fmt.Sprintf("stage %s -> %s", in.From, fleet.StageOf(in.KRaft)))
		p.spec.KRaft = in.KRaft
		return p.spec, nil
	}).Maybe()
	p.env.OnActivity(acts.StopController, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ControllerInput) error {
		p.log = append(p.log, fmt.Sprintf("stop controller %d", in.Controller))
		return nil
	}).Maybe()
	p.env.OnActivity(acts.ReleaseZooKeeper, mock.Anything, mock.Anything).Return(func(context.Context, fleet.ClusterSpec) ([]string, error) {
		p.log = append(p.log, "release zookeeper")
		return []string{"/controller", "/migration"}, nil
	}).Maybe()
	p.env.OnActivity(acts.WaitZooKeeperController, mock.Anything, mock.Anything).Return(func(context.Context, activities.MigrationWaitInput) (int32, error) {
		p.log = append(p.log, "zookeeper controller elected")
		return 2, nil
	}).Maybe()
	p.env.OnActivity(acts.TerminateHosts, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RemoveInput) (activities.Removed, error) {
		p.log = append(p.log, fmt.Sprintf("terminate %s hosts of plan %s", in.Role, in.Plan))
		return activities.Removed{Removed: 3, IDs: []string{"i-c0", "i-c1", "i-c2"}}, nil
	}).Maybe()
	return p
}

func (p *phaseEnv) run(t *testing.T, step workflows.MigrationParams) (workflows.MigrationPhaseResult, error) {
	p.env.ExecuteWorkflow(workflows.MigrationPhaseWorkflow, workflows.MigrationPhaseInput{Spec: p.spec, OperationID: "op-1",
		WorkflowID: "cluster/local-z/migrate/op-1", RequestedBy: "alice", ApprovedBy: "bob", Step: step})
	require.True(t, p.env.IsWorkflowCompleted())
	var res workflows.MigrationPhaseResult
	err := p.env.GetWorkflowError()
	if err == nil {
		require.NoError(t, p.env.GetWorkflowResult(&res))
	}
	return res, err
}

func TestFinalizationWaitsForEveryBrokerToLeaveZooKeeper(t *testing.T) {
	p := newPhaseEnv(t, migratingSpec(fleet.PhaseBrokersKRaft), []fleet.Blocker{{Reason: "broker 2 is still registered in ZooKeeper"}})
	_, err := p.run(t, workflows.MigrationParams{Phase: fleet.PhaseFinalize})
	require.ErrorContains(t, err, "finalization refused: broker 2 is still registered in ZooKeeper")
	require.Equal(t, []string{"check brokers migrated"}, p.log, "no controller touched, the stage unchanged")
}

func TestFinalizationRollsTheControllersLast(t *testing.T) {
	p := newPhaseEnv(t, migratingSpec(fleet.PhaseBrokersKRaft), nil)
	res, err := p.run(t, workflows.MigrationParams{Phase: fleet.PhaseFinalize})
	require.NoError(t, err)
	require.Equal(t, []string{"check brokers migrated", "roll [3000 3001 3002] into kraft", "stage migrating 3-brokers-kraft -> kraft"}, p.log)
	require.Equal(t, fleet.ModeKRaft, res.Stage.Mode)
}

func TestRollbackFromDualWriteFollowsTheRunbook(t *testing.T) {
	p := newPhaseEnv(t, migratingSpec(fleet.PhaseDualWrite), nil)
	res, err := p.run(t, workflows.MigrationParams{Phase: fleet.PhaseDualWrite, Rollback: true})
	require.NoError(t, err)
	require.Equal(t, []string{
		"stage migrating 2-dual-write -> migrating 1-controllers", // sensed through ZooKeeper from here
		"stop controller 3000", "stop controller 3001", "stop controller 3002",
		"release zookeeper",
		"roll [1 2 3] into zookeeper",
		"zookeeper controller elected",
		"stop controller 3000", "stop controller 3001", "stop controller 3002", // stopped already: no-ops on the hosts
		"terminate controller hosts of plan kraft-migration",
		"stage migrating 1-controllers -> zookeeper",
	}, p.log)
	require.Equal(t, fleet.ModeZooKeeper, res.Stage.Mode)
	require.Len(t, res.Retired, 3)
}

func TestRollbackFromBrokersKRaftGoesBackThroughDualWrite(t *testing.T) {
	p := newPhaseEnv(t, migratingSpec(fleet.PhaseBrokersKRaft), nil)
	_, err := p.run(t, workflows.MigrationParams{Phase: fleet.PhaseBrokersKRaft, Rollback: true})
	require.NoError(t, err)
	require.Equal(t, []string{"roll [1 2 3] into migration", "stage migrating 3-brokers-kraft -> migrating 2-dual-write",
		"stage migrating 2-dual-write -> migrating 1-controllers"}, p.log[:3])
	require.Equal(t, "stage migrating 1-controllers -> zookeeper", p.log[len(p.log)-1])
}
