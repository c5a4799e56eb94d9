package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// Every kind declares what it does to a cluster as a migration to KRaft
// cares: a kind that forgot would be refused mid-migration.
func TestEveryKindDeclaresItsImpact(t *testing.T) {
	for _, k := range workflows.Kinds() {
		assert.NotEqual(t, fleet.ImpactUnknown, k.Impact(), k.Name())
	}
}

// migratingSpec is testSpec in migration phase 2 (dual-write), with its
// three controllers.
func migratingSpec() fleet.ClusterSpec {
	spec := testSpec()
	spec.KRaft = &fleet.KRaftSpec{Mode: fleet.ModeMigrating, Phase: 2, QuorumBootstrap: []string{"127.0.0.1:9093"},
		Controllers: []fleet.ControllerSpec{{ID: 3001, InstanceID: "i-c1"}, {ID: 3002, InstanceID: "i-c2"}, {ID: 3003, InstanceID: "i-c3"}}}
	return spec
}

// Mid-migration the entity admits what the phase allows and refuses the
// rest with the phase's reason, queuing nothing: an upgrade (binaries and
// protocol are held at 3.9), a broker removal (membership is fixed) and
// the cluster's deletion are refused; a rolling restart (it keeps each
// broker's config, so the phase's) and a tenant's topic are admitted.
func (s *ClusterSuite) TestMigrationPhaseDecidesWhatIsAdmitted() {
	spec := migratingSpec()
	s.Require().NoError(spec.Validate())
	s.env.OnWorkflow(workflows.RollingRestartWorkflow, mock.Anything, mock.Anything).Return(workflows.RollingRestartResult{}, nil).Maybe()
	var upgrade, remove, del, restart answer
	s.update(time.Minute, workflows.UpdateRequest, upgradeReq("alice", "3.9.1", "3.9"), &upgrade)
	s.update(2*time.Minute, workflows.UpdateRequest, workflows.Request{Kind: workflows.OpRemoveBroker, RequestedBy: "alice", Brokers: []int32{3}}, &remove)
	s.update(3*time.Minute, workflows.UpdateRequest, workflows.Request{Kind: workflows.OpDeleteCluster, RequestedBy: "alice", ApprovedBy: "bob"}, &del)
	var queued workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { queued = s.status() }, 4*time.Minute)
	s.update(5*time.Minute, workflows.UpdateRequest, restartReq("alice"), &restart)
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, 30*time.Minute)
	s.run(workflows.ClusterInput{Spec: spec})

	s.ErrorContains(upgrade.err, "migration phase 2")
	s.ErrorContains(upgrade.err, "held until the migration is finalized or rolled back")
	s.ErrorContains(remove.err, "brokers and controllers are fixed during a migration")
	s.ErrorContains(del.err, "roll the migration back or finalize it before deleting the cluster")
	s.Empty(queued.Queue, "refusals queue nothing")
	s.Nil(queued.Running)
	s.Require().NoError(restart.err)
	s.Equal(workflows.OpRollingRestart, restart.op.Kind)
}
