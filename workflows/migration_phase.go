package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// MigrationPhaseInput is one migration step as the entity runs it.
type MigrationPhaseInput struct {
	Spec        fleet.ClusterSpec `json:"spec"`
	OperationID string            `json:"operationId"`
	// WorkflowID is the step's own (its rolls' IDs derive from it).
	WorkflowID  string          `json:"workflowId"`
	RequestedBy string          `json:"requestedBy"`
	ApprovedBy  string          `json:"approvedBy,omitempty"`
	Step        MigrationParams `json:"step"`
}

// MigrationPhaseResult is what a step did.
type MigrationPhaseResult struct {
	// Stage is where the cluster is after it.
	Stage   fleet.MigrationStage `json:"stage"`
	Outcome string               `json:"outcome"`
	// Rolls are the step's rolls, in order, by the mode they rolled into.
	Rolls map[string]RollingRestartResult `json:"rolls,omitempty"`
	// Retired are the controller hosts a rollback terminated.
	Retired []string `json:"retired,omitempty"`
}

// migrationPlan tags the hosts a migration launches (cloud.TagPlan): one
// plan per cluster, so a phase 1 asked again adopts the hosts it launched
// and a rollback terminates exactly those.
const migrationPlan = "kraft-migration"

// MigrationPhaseProgress is what the progress query of a step answers.
type MigrationPhaseProgress struct {
	Step string `json:"step"`
	// RollWorkflowID is the roll running now, "" between rolls.
	RollWorkflowID string `json:"rollWorkflowId,omitempty"`
}

// A migration step, as OPERATIONS.md "KRaft" lists the phases:
//
//  1. controllers: place, launch, configure (formatted with /cluster/id,
//     zookeeper.metadata.migration.enable) and start the controllers,
//     wait until their quorum has a leader and every voter caught up;
//  2. dual-write: roll the brokers with the migration flag and the
//     quorum's voters, wait until the KRaft leader took /controller and
//     wrote /migration (it copied the metadata);
//  3. brokers KRaft: roll the brokers to process.roles=broker;
//  4. finalize: only once every broker left ZooKeeper and is registered
//     with the controllers, roll the controllers without the migration
//     flag: ZooKeeper is no longer used, and there is no way back.
//
// A rollback undoes the phase the cluster is in and every one before it,
// back to ZooKeeper: phase 3's rolls the brokers back to the migration
// flag; phase 2's stops the controllers, deletes /controller and
// /migration, rolls the brokers back to plain ZooKeeper mode and waits
// for a ZooKeeper controller; phase 1's stops and terminates the
// controllers. Each step tells the entity where the cluster is as soon as
// it is there, so the entity senses and admits by the phase; every
// activity checks before it acts, so a step resumed after a crash does
// nothing twice.
func MigrationPhaseWorkflow(ctx workflow.Context, in MigrationPhaseInput) (MigrationPhaseResult, error) {
	m := &migrationStep{in: in, spec: in.Spec, res: MigrationPhaseResult{Rolls: map[string]RollingRestartResult{}}}
	m.in.Step = in.Step.withDefaults()
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (MigrationPhaseProgress, error) { return m.progress, nil }); err != nil {
		return m.res, err
	}
	var err error
	switch p := m.in.Step; {
	case p.Rollback:
		err = m.rollback(ctx, p.Phase)
	case p.Phase == fleet.PhaseControllers:
		err = m.provisionControllers(ctx)
	case p.Phase == fleet.PhaseDualWrite:
		err = m.dualWrite(ctx)
	case p.Phase == fleet.PhaseBrokersKRaft:
		err = m.brokersToKRaft(ctx)
	case p.Phase == fleet.PhaseFinalize:
		err = m.finalize(ctx)
	default:
		err = temporal.NewNonRetryableApplicationError(fmt.Sprintf("migration step %s: unknown", p), activities.ErrTypeBadInput, nil)
	}
	m.res.Stage = m.spec.MigrationStage()
	if err != nil {
		return m.res, err
	}
	m.res.Outcome = fmt.Sprintf("%s done: the cluster is %s", m.in.Step, m.res.Stage)
	m.step(ctx, m.res.Outcome)
	return m.res, nil
}

type migrationStep struct {
	in       MigrationPhaseInput
	spec     fleet.ClusterSpec // as the entity holds it now
	res      MigrationPhaseResult
	progress MigrationPhaseProgress
}

func (m *migrationStep) step(ctx workflow.Context, s string) {
	m.progress.Step = s
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("Migration of **%s** to KRaft, %s: %s", m.spec.ID, m.in.Step, s))
}

// actx runs the step's short activities, retried for a while; bad input is
// not retried (a human reads it).
func (m *migrationStep) actx(ctx workflow.Context, timeout time.Duration) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		// As a recovery's: a step whose worker died is retried soon.
		HeartbeatTimeout: 10 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, MaximumInterval: 30 * time.Second, MaximumAttempts: 10,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput},
		},
	})
}

// waitCtx runs a wait on the cluster: its own timeout decides, with room.
func (m *migrationStep) waitCtx(ctx workflow.Context) workflow.Context {
	return m.actx(ctx, m.in.Step.WaitTimeout+5*time.Minute)
}

func (m *migrationStep) wait() activities.MigrationWaitInput {
	return activities.MigrationWaitInput{Spec: m.spec, Timeout: m.in.Step.WaitTimeout}
}

// setStage tells the entity the cluster is at kraft's stage now.
func (m *migrationStep) setStage(ctx workflow.Context, kraft *fleet.KRaftSpec) error {
	in := activities.SetMigrationSpecInput{Cluster: m.spec.ID, From: m.spec.MigrationStage(), KRaft: kraft}
	// Into a fresh spec: a KRaft side the answer omits is gone.
	var spec fleet.ClusterSpec
	if err := workflow.ExecuteActivity(m.actx(ctx, 2*time.Minute), a.SetMigrationSpec, in).Get(ctx, &spec); err != nil {
		return err
	}
	m.spec = spec
	return nil
}

// migrating is the spec's KRaft side at phase, with its controllers.
func (m *migrationStep) migrating(phase fleet.MigrationPhase) *fleet.KRaftSpec {
	k := *m.spec.KRaft
	k.Mode, k.Phase = fleet.ModeMigrating, phase
	return &k
}

// roll restarts nodes (the brokers, or the controllers) into mode, a
// roll with every gate of one, as a child the entity's decide update
// reaches.
func (m *migrationStep) roll(ctx workflow.Context, mode string, nodes []int32) error {
	id := MigrationRollWorkflowID(m.in.WorkflowID, mode)
	m.progress.RollWorkflowID = id
	m.step(ctx, fmt.Sprintf("rolling %d node(s) into %s mode", len(nodes), mode))
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:    id,
		StaticSummary: fmt.Sprintf("Migration of **%s** to KRaft, %s: roll into %s mode", m.spec.ID, m.in.Step, mode),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			AttrClusterID.ValueSet(m.spec.ID),
			AttrOperation.ValueSet(OpMigrationPhase),
		),
		// As the entity does for its children: a terminated step must
		// not leave a roll half-done.
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
	})
	in := RollingRestartInput{Spec: m.spec, OperationID: m.in.OperationID, Brokers: nodes, MetadataMode: mode,
		RequestedBy: fmt.Sprintf("%s (%s %s)", m.in.RequestedBy, OpMigrationPhase, m.in.Step)}
	if mode != cloud.MetadataModeZooKeeper && m.spec.KRaft != nil {
		in.QuorumVoters = m.spec.KRaft.Voters()
	}
	var rr RollingRestartResult
	err := workflow.ExecuteChildWorkflow(cctx, RollingRestartWorkflow, in).Get(ctx, &rr)
	m.progress.RollWorkflowID = ""
	m.res.Rolls[mode] = rr
	if err != nil {
		return fmt.Errorf("cluster %s: roll into %s mode: %w", m.spec.ID, mode, err)
	}
	return nil
}

// provisionControllers is phase 1.
func (m *migrationStep) provisionControllers(ctx workflow.Context) error {
	m.step(ctx, "preflight")
	var pre activities.MigrationPreflight
	if err := workflow.ExecuteActivity(m.actx(ctx, 2*time.Minute), a.CheckMigrationPreflight, m.spec.ID).Get(ctx, &pre); err != nil {
		return err
	}
	if len(pre.Blockers) > 0 {
		return refusedStep(m.spec.ID, "preflight", pre.Blockers)
	}
	m.step(ctx, "placing the controllers")
	var places []activities.ControllerPlacement
	if err := workflow.ExecuteActivity(m.actx(ctx, 2*time.Minute), a.PlaceControllers,
		activities.PlaceControllersInput{Spec: m.spec, Count: m.in.Step.Controllers}).Get(ctx, &places); err != nil {
		return err
	}
	k := &fleet.KRaftSpec{Mode: fleet.ModeMigrating, MetadataVersion: m.in.Step.MetadataVersion}
	hosts := make([]activities.ProvisionedHost, len(places))
	for i, p := range places {
		m.step(ctx, fmt.Sprintf("launching controller %d's host in %s", p.Node, p.AZ))
		// One plan per cluster: a phase 1 asked again after failing
		// half-way adopts the hosts it launched; the token is the step's,
		// so a phase 1 after a rollback launches new ones.
		in := activities.HostInput{Cluster: m.spec.ID, Role: cloud.RoleController, N: p.Node, AZ: p.AZ, InstanceType: p.InstanceType,
			Plan: migrationPlan, Token: fmt.Sprintf("%s-ctl-%d", m.in.OperationID, p.Node), RequestedBy: m.in.RequestedBy}
		if err := workflow.ExecuteActivity(m.actx(ctx, 20*time.Minute), a.LaunchHost, in).Get(ctx, &hosts[i]); err != nil {
			return err
		}
		k.Controllers = append(k.Controllers, fleet.ControllerSpec{ID: p.Node, InstanceID: hosts[i].ID, Rack: p.AZ})
	}
	var voters []string
	for i, p := range places {
		voters = append(voters, fmt.Sprintf("%d@%s:9093", p.Node, hosts[i].PrivateIP))
	}
	nodes := make([]activities.ControllerNodeInput, len(places))
	for i, p := range places {
		m.step(ctx, fmt.Sprintf("configuring controller %d (cluster id %s, metadata.version %s)", p.Node, pre.Znodes.ClusterID, m.in.Step.MetadataVersion))
		nodes[i] = activities.ControllerNodeInput{Cluster: m.spec.ID, InstanceID: hosts[i].ID, NodeID: p.Node, Rack: p.AZ,
			QuorumVoters: strings.Join(voters, ","), KafkaClusterID: pre.Znodes.ClusterID, MetadataVersion: m.in.Step.MetadataVersion,
			ZooKeeper: m.spec.ZooKeeper, Reason: m.reason()}
		var addr string
		if err := workflow.ExecuteActivity(m.actx(ctx, 5*time.Minute), a.ConfigureControllerNode, nodes[i]).Get(ctx, &addr); err != nil {
			return err
		}
		k.QuorumBootstrap = append(k.QuorumBootstrap, addr)
	}
	for _, n := range nodes {
		m.step(ctx, fmt.Sprintf("starting controller %d", n.NodeID))
		if err := workflow.ExecuteActivity(m.actx(ctx, 10*time.Minute), a.StartControllerHost, n).Get(ctx, nil); err != nil {
			return err
		}
	}
	m.step(ctx, "waiting for the controllers' quorum")
	wait := activities.QuorumFormedInput{Cluster: m.spec.ID, QuorumBootstrap: k.QuorumBootstrap, Voters: m.specOf(k).ControllerIDs()}
	if err := workflow.ExecuteActivity(m.waitCtx(ctx), a.WaitQuorumFormed, wait).Get(ctx, nil); err != nil {
		return err
	}
	k.Phase = fleet.PhaseControllers
	return m.setStage(ctx, k)
}

// dualWrite is phase 2.
func (m *migrationStep) dualWrite(ctx workflow.Context) error {
	if err := m.roll(ctx, cloud.MetadataModeMigration, m.spec.BrokerIDs()); err != nil {
		return err
	}
	m.step(ctx, "waiting for the KRaft controller to take over (metadata copied, dual-write)")
	if err := workflow.ExecuteActivity(m.waitCtx(ctx), a.WaitDualWrite, m.wait()).Get(ctx, nil); err != nil {
		return err
	}
	// From dual-write on the entity senses the brokers through the
	// controllers' fencing: each must be unfenced first (the last one
	// rolled is until its next heartbeat), or sensing would call it lost.
	dual := m.specOf(m.migrating(fleet.PhaseDualWrite))
	for _, b := range dual.BrokerIDs() {
		m.step(ctx, fmt.Sprintf("waiting until broker %d is registered and unfenced with the controllers", b))
		in := activities.BrokerInput{Spec: dual, Broker: b, Reason: m.reason()}
		if err := workflow.ExecuteActivity(m.waitCtx(ctx), a.WaitBrokerRegistered, in).Get(ctx, nil); err != nil {
			return err
		}
	}
	return m.setStage(ctx, dual.KRaft)
}

// brokersToKRaft is phase 3.
func (m *migrationStep) brokersToKRaft(ctx workflow.Context) error {
	if err := m.roll(ctx, cloud.MetadataModeKRaft, m.spec.BrokerIDs()); err != nil {
		return err
	}
	return m.setStage(ctx, m.migrating(fleet.PhaseBrokersKRaft))
}

// finalize is phase 4: never before every broker is a KRaft broker.
func (m *migrationStep) finalize(ctx workflow.Context) error {
	m.step(ctx, "checking every broker left ZooKeeper and registered with the controllers")
	var blockers []fleet.Blocker
	if err := workflow.ExecuteActivity(m.actx(ctx, 2*time.Minute), a.CheckBrokersMigrated, m.spec).Get(ctx, &blockers); err != nil {
		return err
	}
	if len(blockers) > 0 {
		return refusedStep(m.spec.ID, "finalization", blockers)
	}
	if err := m.roll(ctx, cloud.MetadataModeKRaft, m.spec.ControllerIDs()); err != nil {
		return err
	}
	k := *m.spec.KRaft
	k.Mode, k.Phase = fleet.ModeKRaft, fleet.PhasePreflight
	return m.setStage(ctx, &k)
}

// rollback undoes phase and every phase before it.
func (m *migrationStep) rollback(ctx workflow.Context, phase fleet.MigrationPhase) error {
	if phase >= fleet.PhaseBrokersKRaft {
		// The brokers back into ZooKeeper, with the migration flag.
		if err := m.roll(ctx, cloud.MetadataModeMigration, m.spec.BrokerIDs()); err != nil {
			return err
		}
		if err := m.setStage(ctx, m.migrating(fleet.PhaseDualWrite)); err != nil {
			return err
		}
	}
	if phase >= fleet.PhaseDualWrite {
		// Sensed through ZooKeeper again from here: the controllers stop.
		if err := m.setStage(ctx, m.migrating(fleet.PhaseControllers)); err != nil {
			return err
		}
		if err := m.stopControllers(ctx); err != nil {
			return err
		}
		m.step(ctx, "deleting /controller and /migration in ZooKeeper")
		if err := workflow.ExecuteActivity(m.actx(ctx, 2*time.Minute), a.ReleaseZooKeeper, m.spec).Get(ctx, nil); err != nil {
			return err
		}
		if err := m.roll(ctx, cloud.MetadataModeZooKeeper, m.spec.BrokerIDs()); err != nil {
			return err
		}
		m.step(ctx, "waiting for the brokers to elect a ZooKeeper controller")
		if err := workflow.ExecuteActivity(m.waitCtx(ctx), a.WaitZooKeeperController, m.wait()).Get(ctx, nil); err != nil {
			return err
		}
	}
	if err := m.stopControllers(ctx); err != nil {
		return err
	}
	m.step(ctx, "terminating the controllers' hosts")
	var gone activities.Removed
	in := activities.RemoveInput{Cluster: m.spec.ID, Role: cloud.RoleController, Plan: migrationPlan}
	if err := workflow.ExecuteActivity(m.actx(ctx, 20*time.Minute), a.TerminateHosts, in).Get(ctx, &gone); err != nil {
		return err
	}
	m.res.Retired = gone.IDs
	if m.spec.Mode() == fleet.ModeZooKeeper {
		return nil // a phase 1 that failed before the entity knew of it
	}
	return m.setStage(ctx, nil)
}

// specOf is the spec with KRaft side k.
func (m *migrationStep) specOf(k *fleet.KRaftSpec) fleet.ClusterSpec {
	spec := m.spec
	spec.KRaft = k
	return spec
}

// stopControllers stops the spec's controllers (a stopped one is left
// alone by the document).
func (m *migrationStep) stopControllers(ctx workflow.Context) error {
	for _, id := range m.spec.ControllerIDs() {
		m.step(ctx, fmt.Sprintf("stopping controller %d", id))
		in := activities.ControllerInput{Spec: m.spec, Controller: id, Reason: m.reason()}
		if err := workflow.ExecuteActivity(m.actx(ctx, 10*time.Minute), a.StopController, in).Get(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}

func (m *migrationStep) reason() string {
	return fmt.Sprintf("kfleet %s %s (%s) requested by %s", OpMigrationPhase, m.in.OperationID, m.in.Step, m.in.RequestedBy)
}

// refusedStep is a step refused by its checks: nothing was changed, and
// a retry cannot help until a human acts on the reasons.
func refusedStep(cluster, what string, blockers []fleet.Blocker) error {
	reasons := make([]string, len(blockers))
	for i, b := range blockers {
		reasons[i] = b.Reason
	}
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf("cluster %s: %s refused: %s", cluster, what, strings.Join(reasons, "; ")),
		activities.ErrTypeBadInput, errors.New(what))
}
