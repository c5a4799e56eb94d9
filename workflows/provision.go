package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// Creating a cluster is not an operation of its entity — there is no
// entity before the cluster exists — but a workflow of its own,
// cluster/<id>/provision, started by the CLI or chat with a plan. It
// registers the entity at its end, with a spec built from what it
// launched; from then on the cluster is operated like any other.

// ProvisionInput asks to create a cluster from a plan.
type ProvisionInput struct {
	Plan        fleet.ClusterPlan `json:"plan"`
	RequestedBy string            `json:"requestedBy"`
}

// ProvisionAdmission answers UpdateProvisionCheck: whether the plan was
// accepted (no refusal) and which plan the workflow provisions (a second
// create of the same id finds the running one).
type ProvisionAdmission struct {
	WorkflowID  string   `json:"workflowId"`
	Plan        string   `json:"plan"`
	RequestedBy string   `json:"requestedBy"`
	Refusals    []string `json:"refusals,omitempty"`
}

// ProvisionResult is what was created.
type ProvisionResult struct {
	Cluster   string   `json:"cluster"`
	Bootstrap []string `json:"bootstrap,omitempty"`
	ZooKeeper string   `json:"zookeeper,omitempty"`
	// QuorumBootstrap are a KRaft cluster's controllers.
	QuorumBootstrap []string `json:"quorumBootstrap,omitempty"`
	// Hosts and Volumes count what it launched and created; Adopted what
	// an earlier attempt or run of the same plan had.
	Hosts   int `json:"hosts"`
	Volumes int `json:"volumes"`
	Adopted int `json:"adopted,omitempty"`
	// Undone: a human undid it; nothing it launched is left.
	Undone bool          `json:"undone,omitempty"`
	Took   time.Duration `json:"took"`
}

// ProvisionProgress is what the progress query answers.
type ProvisionProgress struct {
	Cluster     string `json:"cluster"`
	Plan        string `json:"plan"`
	Brokers     int    `json:"brokers"`
	Phase       string `json:"phase"`
	PhaseNumber int    `json:"phaseNumber"`
	Phases      int    `json:"phases"`
	// Done and Total count the phase's steps.
	Done  int `json:"done"`
	Total int `json:"total"`
	// Hosts, Volumes and Started count what exists so far.
	Hosts   int `json:"hosts"`
	Volumes int `json:"volumes"`
	Started int `json:"started"`
	// Controllers and ControllersStarted count a KRaft plan's
	// controllers.
	Controllers        int       `json:"controllers,omitempty"`
	ControllersStarted int       `json:"controllersStarted,omitempty"`
	Refusals           []string  `json:"refusals,omitempty"`
	Paused             *Pause    `json:"paused,omitempty"`
	Since              time.Time `json:"since"`
}

// Provisioning phases, as progress shows them.
const (
	PhaseCheck     = "checking the plan against EC2 and kfleet"
	PhaseHosts     = "launching hosts, creating and attaching data volumes"
	PhaseZooKeeper = "configuring the ZooKeeper ensemble"
	PhaseEnsemble  = "checking the ensemble serves"
	PhaseBrokers   = "configuring and starting brokers"
	PhaseVerify    = "verifying registrations and configurations"
	PhaseRegister  = "registering the cluster"
	PhaseUndo      = "undoing: terminating hosts, deleting volumes and the chroot"
	PhaseDone      = "done"
	provisionSteps = 7
)

// ErrTypeProvisionRefused is the error of a provisioning whose plan was
// refused before anything was launched.
const ErrTypeProvisionRefused = "ProvisionRefused"

// ErrTypeProvisionUndone is the error of a provisioning a human undid.
const ErrTypeProvisionUndone = "ProvisionUndone"

// OpProvision is the Operation search attribute of a provisioning.
const OpProvision = "provision"

// UpdateProvisionCheck is the update a client starts a provisioning with
// (Update-with-Start): it returns once the plan was checked.
const UpdateProvisionCheck = "provision-check"

// ProvisionWorkflowID is the ID of a cluster's provisioning.
func ProvisionWorkflowID(cluster string) string { return ClusterWorkflowID(cluster) + "/provision" }

// ProvisionClusterWorkflow creates a managed cluster from a plan
// (OPERATIONS.md "Provisioning and hosts"):
//
//  1. check the plan against EC2 (zones, instance types) and kfleet (the
//     id is free): a refusal ends it with nothing launched;
//  2. launch a host per broker and per ZooKeeper node (3), tagged and
//     spread round-robin over the zones, and a gp3 data volume per
//     broker, attached to its host;
//  3. make the ensemble: configure each node (kfleet-ConfigureZooKeeper),
//     check every node serves;
//  4. configure each broker (kfleet-ConfigureBroker: broker.id, rack = its
//     zone, zookeeper.connect with the cluster's chroot, listeners, the
//     safe defaults) and start it;
//  5. verify every broker is registered and runs that configuration
//     (DescribeConfigs);
//  6. register the cluster's entity with a spec of what was launched.
//
// Every step looks before it acts (tags, then its ClientToken), so a
// worker killed anywhere leaves no duplicate; a step that fails for good
// pauses for a human: resume (try again), undo (remove what the plan
// launched, by its tags) or abort (leave everything as it is: a create of
// the same plan adopts it).
func ProvisionClusterWorkflow(ctx workflow.Context, in ProvisionInput) (ProvisionResult, error) {
	start := workflow.Now(ctx)
	plan := in.Plan.WithDefaults()
	p := &provisioning{in: in, plan: plan, fp: plan.Fingerprint(), st: newProvisionState(),
		runTag: runTag(workflow.GetInfo(ctx).FirstRunID)}
	p.progress = ProvisionProgress{Cluster: plan.ID, Plan: p.fp, Brokers: plan.Brokers, Phases: provisionSteps, Since: start,
		Controllers: len(plan.ControllerIDs())}
	p.gate = &humanGate{cluster: plan.ID, what: "provisioning", undoes: true, changed: p.changed,
		page: func(ctx workflow.Context, pause Pause) {
			notifyHumans(ctx, activities.Notification{Cluster: plan.ID, Severity: activities.SeverityPage,
				Title: "Provisioning of " + plan.ID + " paused", Operation: workflow.GetInfo(ctx).WorkflowExecution.ID,
				Text: fmt.Sprintf("%s: %s. Decide with `starter decide --cluster %s resume|undo|abort`.", pause.Step, pause.Reason, plan.ID)})
		}}
	if err := p.register(ctx); err != nil {
		return ProvisionResult{}, err
	}
	res, err := p.run(ctx)
	res.Took = workflow.Now(ctx).Sub(start)
	// Let the check update answer before the run closes (a refusal ends
	// it at once).
	if werr := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); werr != nil {
		return res, werr
	}
	return res, err
}

// provisioning is one ProvisionClusterWorkflow run's state.
type provisioning struct {
	in       ProvisionInput
	plan     fleet.ClusterPlan
	fp       string
	runTag   string
	st       *provisionState
	gate     *humanGate
	progress ProvisionProgress
	// checked is set once the plan was checked (the check update waits
	// for it).
	checked bool
}

func (p *provisioning) register(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (ProvisionProgress, error) {
		pr := p.progress
		pr.Paused = p.gate.paused
		return pr, nil
	}); err != nil {
		return err
	}
	if err := p.gate.register(ctx); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateProvisionCheck,
		func(ctx workflow.Context, plan fleet.ClusterPlan) (ProvisionAdmission, error) {
			if err := workflow.Await(ctx, func() bool { return p.checked }); err != nil {
				return ProvisionAdmission{}, err
			}
			return ProvisionAdmission{WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Plan: p.fp,
				RequestedBy: p.in.RequestedBy, Refusals: p.progress.Refusals}, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, plan fleet.ClusterPlan) error {
			if plan.ID != p.plan.ID {
				return fmt.Errorf("this provisioning creates cluster %q, not %q", p.plan.ID, plan.ID)
			}
			return nil
		}})
}

// changed refreshes the UI's current details.
func (p *provisioning) changed(ctx workflow.Context) {
	pr := p.progress
	pr.Paused = p.gate.paused
	workflow.SetCurrentDetails(ctx, "**"+p.plan.ID+"** provisioning: "+strings.Join(ProvisionLines(pr), "; ")+".")
}

// phase enters a phase of total steps.
func (p *provisioning) phase(ctx workflow.Context, n int, name string, total int) {
	p.progress.PhaseNumber, p.progress.Phase, p.progress.Done, p.progress.Total = n, name, 0, total
	p.changed(ctx)
}

func (p *provisioning) run(ctx workflow.Context) (ProvisionResult, error) {
	res := ProvisionResult{Cluster: p.plan.ID}
	p.phase(ctx, 1, PhaseCheck, 1)
	refusals, err := p.check(ctx)
	p.progress.Refusals, p.checked = refusals, true
	p.changed(ctx)
	if err != nil {
		return res, err
	}
	if len(refusals) > 0 {
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("cluster %s: plan refused, nothing was launched: %s", p.plan.ID, strings.Join(refusals, "; ")), ErrTypeProvisionRefused, nil)
	}
	err = p.build(ctx)
	res.Hosts, res.Volumes, res.Adopted = len(p.st.hosts)+len(p.st.zk)+len(p.st.kraft.hosts), len(p.st.volumes), p.st.adopted
	if errors.Is(err, errUndo) {
		p.phase(ctx, p.progress.PhaseNumber, PhaseUndo, 1)
		if err := p.undo(ctx); err != nil {
			return res, err
		}
		res.Undone = true
		p.phase(ctx, p.progress.PhaseNumber, PhaseDone, 0)
		return res, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("cluster %s: provisioning undone by %s: its hosts, volumes and chroot are removed", p.plan.ID, p.st.undoneBy), ErrTypeProvisionUndone, nil)
	}
	if err != nil {
		return res, err
	}
	res.Bootstrap, res.ZooKeeper = p.st.spec.Bootstrap, p.st.connect
	p.phase(ctx, provisionSteps, PhaseDone, 0)
	metadata := "ZooKeeper " + p.st.connect
	if p.plan.IsKRaft() {
		res.QuorumBootstrap = p.quorumBootstrap()
		metadata = fmt.Sprintf("KRaft controllers %v at %s (metadata.version %s)", p.plan.ControllerIDs(), strings.Join(res.QuorumBootstrap, ", "), p.st.kraft.metadata)
	}
	notifyHumans(ctx, activities.Notification{Cluster: p.plan.ID, Severity: activities.SeverityInfo,
		Title: "Cluster " + p.plan.ID + " created", Operation: workflow.GetInfo(ctx).WorkflowExecution.ID,
		Text: fmt.Sprintf("%d brokers over %s, %s, requested by %s.", p.plan.Brokers,
			strings.Join(p.plan.AvailabilityZones, ", "), metadata, p.in.RequestedBy)})
	return res, nil
}

// check refuses a plan before anything is launched: on its face, then
// against EC2 and kfleet.
func (p *provisioning) check(ctx workflow.Context) ([]string, error) {
	if err := p.in.Plan.Validate(); err != nil {
		return []string{err.Error()}, nil
	}
	if p.in.RequestedBy == "" {
		return []string{"requestedBy is required: say who asks for the cluster"}, nil
	}
	var c activities.PlanCheck
	err := workflow.ExecuteActivity(provisionContext(ctx, time.Minute, "check the plan"), a.CheckProvisionPlan, p.plan).Get(ctx, &c)
	return c.Refusals, err
}

// reason is what SSM commands' comments and the hosts' requested-by tag
// say.
func (p *provisioning) reason(ctx workflow.Context) string {
	return fmt.Sprintf("kfleet %s %s requested by %s", OpProvision, workflow.GetInfo(ctx).WorkflowExecution.ID, p.in.RequestedBy)
}

// errUndo is how a human's undo unwinds the build.
var errUndo = errors.New("undo")

// undo removes what this plan launched, by its tags: brokers' hosts, the
// chroot (while the ensemble still serves), the ensemble's hosts, the data
// volumes. A step that fails pauses for a human again (resume, abort).
func (p *provisioning) undo(ctx workflow.Context) error {
	rm := func(role string) func(workflow.Context) error {
		return func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(provisionContext(ctx, 30*time.Minute, "terminate the "+role+" hosts"), a.TerminateHosts,
				activities.RemoveInput{Cluster: p.plan.ID, Role: role, Plan: p.fp}).Get(ctx, nil)
		}
	}
	steps := [][]provisionStep{
		{{name: "terminate the brokers' hosts", run: rm(cloud.RoleBroker)}},
		{{name: "remove the chroot", run: func(ctx workflow.Context) error {
			if p.st.connect == "" {
				return nil // no broker was configured: nothing under it
			}
			return workflow.ExecuteActivity(provisionContext(ctx, 5*time.Minute, "remove the chroot"), a.RemoveChroot,
				fleet.ClusterSpec{ID: p.plan.ID, ZooKeeper: p.st.connect}).Get(ctx, nil)
		}}},
		{{name: "terminate the ZooKeeper hosts", run: rm(cloud.RoleZooKeeper)}},
		{{name: "delete the data volumes", run: func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(provisionContext(ctx, 30*time.Minute, "delete the data volumes"), a.DeleteDataVolumes,
				activities.RemoveInput{Cluster: p.plan.ID, Plan: p.fp}).Get(ctx, nil)
		}}},
	}
	if p.plan.IsKRaft() {
		// A KRaft plan has no ensemble, and its controllers go after
		// its brokers (a ZooKeeper plan's undo is as it was).
		steps[2] = []provisionStep{{name: "terminate the controllers' hosts", run: rm(cloud.RoleController)}}
	}
	p.gate.undoes = false // an undo that fails is resumed or aborted
	for _, s := range steps {
		if err := p.runPhase(ctx, PhaseUndo, s); err != nil {
			return err
		}
	}
	return nil
}

// provisionContext is the options of a provisioning step: a few retries
// for what a retry can fix, then a human.
func provisionContext(ctx workflow.Context, timeout time.Duration, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		// Every step heartbeats every few seconds: a worker killed
		// mid-step is noticed in seconds, and the retry finds what the
		// step made.
		HeartbeatTimeout: 15 * time.Second,
		Summary:          summary,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second, MaximumAttempts: 5,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput}},
	})
}
