package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// RollingRestartInput asks for a rolling restart of a cluster.
type RollingRestartInput struct {
	Spec        fleet.ClusterSpec `json:"spec"`
	OperationID string            `json:"operationId"`
	RequestedBy string            `json:"requestedBy"`
	// Brokers restricts the roll; empty means every broker of the spec.
	Brokers []int32 `json:"brokers,omitempty"`
	// MaxBatch lets up to this many brokers that share no partition (with
	// rack-aware placement: brokers of one rack) restart together when the
	// availability gate holds for the whole batch; 0 or 1 is one at a time.
	MaxBatch int `json:"maxBatch,omitempty"`
	// GatePollInterval paces re-checks of a shut gate, inside the wait
	// activity (default 10 s).
	GatePollInterval time.Duration `json:"gatePollInterval,omitempty"`
	// GateTimeout is how long a gate may stay shut before the roll stops
	// and says why (default 30 min).
	GateTimeout time.Duration `json:"gateTimeout,omitempty"`
	// Version is the Kafka version every broker starts with (upgrades);
	// empty keeps the installed one.
	Version string `json:"version,omitempty"`
	// InterBrokerProtocolVersion is set in every broker's server.properties
	// before it starts (the two rolls of an upgrade); empty keeps it.
	InterBrokerProtocolVersion string `json:"interBrokerProtocolVersion,omitempty"`
	// MetadataMode is the metadata mode every node starts in, and
	// QuorumVoters the brokers' controller.quorum.voters (the
	// ZooKeeper-to-KRaft migration's rolls, cloud.MetadataMode*); empty
	// keeps each node's.
	MetadataMode string `json:"metadataMode,omitempty"`
	QuorumVoters string `json:"quorumVoters,omitempty"`
}

// RollingRestartResult records what the roll did, per broker, in order.
type RollingRestartResult struct {
	Brokers []BrokerRestart `json:"brokers"`
	// Skipped are brokers a human chose to leave alone.
	Skipped []int32 `json:"skipped,omitempty"`
	// Controllers are a KRaft cluster's controllers, restarted before its
	// brokers, in order; SkippedControllers those a human left alone.
	Controllers        []ControllerRestart `json:"controllers,omitempty"`
	SkippedControllers []int32             `json:"skippedControllers,omitempty"`
}

// BrokerRestart is one broker's restart with each step's duration.
type BrokerRestart struct {
	Broker int32 `json:"broker"`
	// Batch numbers the roll's steps from 0; brokers restarted together
	// share it.
	Batch         int           `json:"batch"`
	WasController bool          `json:"wasController"`
	GateWait      time.Duration `json:"gateWait"`
	Stop          time.Duration `json:"stop"`
	Start         time.Duration `json:"start"`
	Register      time.Duration `json:"register"`
	CatchUp       time.Duration `json:"catchUp"`
	Elect         time.Duration `json:"elect"`
	Total         time.Duration `json:"total"`
}

// RollProgress is what the progress query answers while a roll runs.
type RollProgress struct {
	Done      []int32 `json:"done"`
	Remaining []int32 `json:"remaining"`
	Skipped   []int32 `json:"skipped,omitempty"`
	Current   int32   `json:"current"` // -1 between brokers
	// Batch is every broker of the current step (Current is its first).
	Batch    []int32  `json:"batch,omitempty"`
	Step     string   `json:"step"`
	Blockers []string `json:"blockers,omitempty"`
	// Paused is set while the roll waits for a human decision.
	Paused *Pause `json:"paused,omitempty"`
	// Node is NodeController while Current is a KRaft controller; empty
	// for a broker.
	Node string `json:"node,omitempty"`
	// A KRaft roll's controllers, which go before its brokers.
	ControllersDone      []int32 `json:"controllersDone,omitempty"`
	ControllersRemaining []int32 `json:"controllersRemaining,omitempty"`
	ControllersSkipped   []int32 `json:"controllersSkipped,omitempty"`
}

// Roll steps, as shown in progress and the UI.
const (
	StepGates     = "checking gates"
	StepWaitGates = "waiting for gates"
	StepStop      = "controlled shutdown"
	StepStart     = "starting"
	StepRegister  = "waiting for registration"
	StepCatchUp   = "waiting for ISR"
	StepElect     = "preferred leader election"
	StepPaused    = "paused: waiting for a human"
	StepDone      = "done"
)

// Change ids of workflow.GetVersion in rolls: each marks where a history
// recorded before the change takes the old path.
const (
	// versionGateWait: shut gates are waited out in one heartbeating
	// activity (WaitRestartGates), not a check and a timer per poll.
	versionGateWait = "roll-gate-wait-activity"
)

// RollingRestartWorkflow restarts a cluster's brokers one at a time, the
// controller last, opening every gate of OPERATIONS.md on a fresh snapshot
// right before each broker (a KRaft cluster's controllers go first, one at
// a time, each gated on the quorum: rolling_restart_kraft.go):
//
//  1. pick the next broker (controller last) and check the gates;
//     while a gate is shut, wait in one heartbeating activity that polls;
//  2. controlled shutdown with a grace period sized to its partitions;
//  3. start it;
//  4. wait until it is registered in ZooKeeper again;
//  5. wait until every one of its replicas is back in the ISR;
//  6. elect preferred leaders, then go on with the next broker.
//
// A gate still shut at its deadline, a gate no wait can open, or a step
// that keeps failing pauses the roll and asks a human (the decide update:
// resume, skip the broker, abort); it never fails half-way on its own and
// never touches another broker meanwhile. Each step is an idempotent
// activity, so after any crash the roll resumes where it was and no broker
// is stopped twice.
func RollingRestartWorkflow(ctx workflow.Context, in RollingRestartInput) (RollingRestartResult, error) {
	r := &roll{in: in.withDefaults()}
	r.progress = RollProgress{Remaining: slices.Clone(r.in.Brokers), Current: -1, Step: StepGates}
	if len(r.progress.Remaining) == 0 {
		r.progress.Remaining = r.in.Spec.BrokerIDs()
	}
	r.human = humanGate{cluster: r.in.Spec.ID, what: "roll", skips: true, changed: r.setDetails, page: r.page}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (RollProgress, error) {
		p := r.progress
		p.Paused = r.human.paused
		return p, nil
	}); err != nil {
		return RollingRestartResult{}, err
	}
	if err := r.human.register(ctx); err != nil {
		return RollingRestartResult{}, err
	}
	if r.rollsControllers(ctx) {
		if err := r.rollControllers(ctx); err != nil {
			return r.result, err
		}
	}
	for len(r.progress.Remaining) > 0 {
		if err := r.restartNext(ctx); err != nil {
			return r.result, err
		}
	}
	r.progress.Step, r.progress.Current = StepDone, -1
	r.setDetails(ctx)
	return r.result, nil
}

// roll is one rolling restart's state.
type roll struct {
	in       RollingRestartInput
	progress RollProgress
	result   RollingRestartResult
	// human is where the roll asks a human (the decide update).
	human humanGate
	// batches counts the steps (batches of brokers) done.
	batches int
}

// restartNext takes the next batch (one broker unless batching) through
// the gates and every step. The brokers of a batch move in lockstep: all
// stop, then all start, and so on, so each step's gate (registered, in
// sync) holds for the whole batch before the next step.
func (r *roll) restartNext(ctx workflow.Context) error {
	began := workflow.Now(ctx)
	r.progress.Step, r.progress.Current, r.progress.Batch, r.progress.Blockers = StepGates, -1, nil, nil
	gate, skip, err := r.waitForGates(ctx)
	if err != nil {
		return err
	}
	batch := gate.Batch
	if len(batch) == 0 {
		batch = []int32{gate.Next}
	}
	inBatch := func(id int32) bool { return slices.Contains(batch, id) }
	if skip {
		r.result.Skipped = append(r.result.Skipped, batch...)
		r.progress.Skipped = append(r.progress.Skipped, batch...)
		r.progress.Remaining = slices.DeleteFunc(r.progress.Remaining, inBatch)
		return nil
	}
	r.progress.Current, r.progress.Batch = gate.Next, batch
	waited := workflow.Now(ctx).Sub(began)
	recordGateWait(ctx, r.in.Spec.ID, waited)
	if err := workflow.UpsertTypedSearchAttributes(ctx, AttrBrokerID.ValueSet(int64(gate.Next))); err != nil {
		return err
	}
	workflow.GetLogger(ctx).Info("restarting brokers", "Cluster", r.in.Spec.ID, "Brokers", batch, "Controller", gate.NextIsControl, "Partitions", gate.Partitions)

	grace := fleet.GracePeriodSeconds(gate.Partitions)
	inputs := make(map[int32]activities.BrokerInput, len(batch))
	restarts := make([]BrokerRestart, len(batch))
	for i, b := range batch {
		inputs[b] = activities.BrokerInput{
			Spec:                       r.in.Spec,
			Broker:                     b,
			Reason:                     fmt.Sprintf("kfleet %s %s requested by %s", OpRollingRestart, r.in.OperationID, r.in.RequestedBy),
			GracePeriodSeconds:         grace,
			Version:                    r.in.Version,
			InterBrokerProtocolVersion: r.in.InterBrokerProtocolVersion,
			MetadataMode:               r.in.MetadataMode,
			QuorumVoters:               r.in.QuorumVoters,
		}
		restarts[i] = BrokerRestart{Broker: b, Batch: r.batches, WasController: b == gate.Controller, GateWait: waited}
	}
	steps := []struct {
		name     string
		timeout  time.Duration
		activity any
		took     func(*BrokerRestart) *time.Duration
	}{
		{StepStop, time.Duration(grace)*time.Second + time.Minute, a.StopBroker, func(b *BrokerRestart) *time.Duration { return &b.Stop }},
		{StepStart, 10 * time.Minute, a.StartBroker, func(b *BrokerRestart) *time.Duration { return &b.Start }},
		{StepRegister, 30 * time.Minute, a.WaitBrokerRegistered, func(b *BrokerRestart) *time.Duration { return &b.Register }},
		{StepCatchUp, 2 * time.Hour, a.WaitReplicasInSync, func(b *BrokerRestart) *time.Duration { return &b.CatchUp }},
		{StepElect, 5 * time.Minute, a.ElectPreferredLeaders, func(b *BrokerRestart) *time.Duration { return &b.Elect }},
	}
	// Once a batch is past its gates it is finished even if the roll is
	// cancelled: cancelling mid-step would leave brokers down. The roll
	// stops at the next gate instead.
	bctx, _ := workflow.NewDisconnectedContext(ctx)
	// The cluster entity is told which brokers this roll takes down, so
	// their registrations vanishing are not losses (broker_touch.go).
	notify := workflow.GetVersion(ctx, "notify-entity", workflow.DefaultVersion, 1) >= 1
	for _, s := range steps {
		if notify && s.name == StepStop {
			for _, b := range batch {
				notifyEntity(bctx, b, true)
			}
		}
		t0 := workflow.Now(ctx)
		if err := r.runStep(bctx, s.name, s.timeout, s.activity, batch, inputs); err != nil {
			return err
		}
		for i := range restarts {
			*s.took(&restarts[i]) = workflow.Now(ctx).Sub(t0)
		}
		if notify && s.name == StepCatchUp {
			for _, b := range batch {
				notifyEntity(bctx, b, false)
			}
		}
	}
	for i := range restarts {
		restarts[i].Total = workflow.Now(ctx).Sub(began)
	}
	r.batches++
	r.result.Brokers = append(r.result.Brokers, restarts...)
	r.progress.Done = append(r.progress.Done, batch...)
	r.progress.Remaining = slices.DeleteFunc(r.progress.Remaining, inBatch)
	// A cancellation that arrived during the batch takes effect now, with
	// every broker of the batch back in sync.
	return ctx.Err()
}

// runStep runs one step's activity for every broker of the batch at once
// and waits for all. Brokers whose activity failed after its retries pause
// the roll; resume retries the step for them, and only for them.
func (r *roll) runStep(ctx workflow.Context, name string, timeout time.Duration, activity any, batch []int32, inputs map[int32]activities.BrokerInput) error {
	pending := batch
	for len(pending) > 0 {
		r.progress.Step = name
		r.setDetails(ctx)
		futures := make([]workflow.Future, len(pending))
		for i, b := range pending {
			actx := brokerActivityContext(ctx, timeout, fmt.Sprintf("broker %d: %s", b, name))
			futures[i] = workflow.ExecuteActivity(actx, activity, inputs[b])
		}
		var failed []int32
		var reasons []string
		for i, f := range futures {
			if err := f.Get(ctx, nil); err != nil {
				failed = append(failed, pending[i])
				reasons = append(reasons, fmt.Sprintf("broker %d: %s failed: %s", pending[i], name, activityMessage(err)))
			}
		}
		if len(failed) == 0 {
			return nil
		}
		// Retries are spent: stop here, touch nothing else, ask.
		if _, err := r.ask(ctx, failed[0], name, strings.Join(reasons, "; "), false); err != nil {
			return err
		}
		pending = failed
	}
	return nil
}

// a is how workflows name activities: methods of a nil *Activities.
var a *activities.Activities

// waitForGates returns the verdict for the next broker once every gate is
// open. A quick check answers when they are; while one is shut the roll
// shows why and waits in one heartbeating activity (WaitRestartGates), so
// its history does not grow with the wait, however long a broker takes to
// recover its logs. A gate that no wait can open, or one still shut at the
// deadline, pauses the roll for a human; skip reports that the human chose
// to leave this broker alone.
func (r *roll) waitForGates(ctx workflow.Context) (rep activities.GateReport, skip bool, err error) {
	if workflow.GetVersion(ctx, versionGateWait, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return r.pollGates(ctx)
	}
	for {
		gin := activities.GateInput{Spec: r.in.Spec, Remaining: r.progress.Remaining, MaxBatch: r.in.MaxBatch}
		if rep, err = r.checkGates(ctx, gin); err != nil || len(rep.Blockers) == 0 {
			return rep, false, err
		}
		r.showBlockers(rep, nil)
		r.setDetails(ctx)
		timedOut := false
		if !permanentBlocker(rep.Blockers) {
			var w activities.GateWait
			win := activities.GateWaitInput{Gates: gin, Timeout: r.in.GateTimeout, PollInterval: r.in.GatePollInterval}
			// As long as log recovery advances; a retry resumes from the
			// heartbeat (deadline, recovery's last progress).
			wctx := waitContext(ctx, max(24*time.Hour, 2*r.in.GateTimeout), "wait for restart gates", 0)
			if err := workflow.ExecuteActivity(wctx, a.WaitRestartGates, win).Get(ctx, &w); err != nil {
				return rep, false, fmt.Errorf("cluster %s: wait for the gates of broker %d: %w", r.in.Spec.ID, rep.Next, err)
			}
			if rep = w.Report; len(rep.Blockers) == 0 {
				return rep, false, nil
			}
			r.showBlockers(rep, w.Paces)
			timedOut = w.TimedOut || !permanentBlocker(rep.Blockers)
		}
		reasons := strings.Join(r.progress.Blockers, "; ")
		why := fmt.Sprintf("broker %d: a gate no wait can open: %s", rep.Next, reasons)
		if timedOut {
			why = fmt.Sprintf("broker %d: gates still shut after %s: %s", rep.Next, r.in.GateTimeout, reasons)
		}
		d, err := r.ask(ctx, rep.Next, StepWaitGates, why, true)
		if err != nil {
			return rep, false, err
		}
		if d.Action == DecisionSkip {
			return rep, true, nil
		}
		// resume: check again, and wait with a fresh deadline.
		r.progress.Step = StepGates
	}
}

// checkGates runs one check of the gates (CheckRestartGates).
func (r *roll) checkGates(ctx workflow.Context, gin activities.GateInput) (activities.GateReport, error) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// Short: a check takes seconds, and after a worker crash the retry
		// waits for this timeout.
		StartToCloseTimeout: time.Minute,
		Summary:             "check restart gates",
		RetryPolicy:         &temporal.RetryPolicy{MaximumInterval: 30 * time.Second},
	})
	// A fresh value each time: decoding into the last report would keep
	// its blockers when the new one omits them.
	var rep activities.GateReport
	if err := workflow.ExecuteActivity(actx, a.CheckRestartGates, gin).Get(ctx, &rep); err != nil {
		return rep, fmt.Errorf("cluster %s: check gates: %w", r.in.Spec.ID, err)
	}
	return rep, nil
}

// showBlockers puts a gate report's blockers, and the pace of each broker
// recovering its logs, in the roll's progress.
func (r *roll) showBlockers(rep activities.GateReport, paces []fleet.RecoveryPace) {
	r.progress.Step, r.progress.Current, r.progress.Blockers = StepWaitGates, rep.Next, nil
	for _, b := range rep.Blockers {
		r.progress.Blockers = append(r.progress.Blockers, b.String())
	}
	for _, p := range paces {
		r.progress.Blockers = append(r.progress.Blockers, fleet.GateRecovering+": "+p.String())
	}
}

func permanentBlocker(blockers []fleet.Blocker) bool {
	return slices.ContainsFunc(blockers, func(b fleet.Blocker) bool { return b.Permanent })
}

// ask pauses the roll at broker until a human decides (human.go); it
// returns the decision, or an error when the human aborted.
func (r *roll) ask(ctx workflow.Context, broker int32, step, reason string, canSkip bool) (Decision, error) {
	return r.askAt(ctx, Pause{Broker: broker, Step: step, Reason: reason, CanSkip: canSkip})
}

// page tells the on-call channel that the roll waits for a decision.
func (r *roll) page(ctx workflow.Context, p Pause) {
	if workflow.GetVersion(ctx, "notify-roll-pause", workflow.DefaultVersion, 1) < 1 {
		return
	}
	choices := "resume|abort"
	if p.CanSkip {
		choices = "resume|skip|abort"
	}
	notifyHumans(ctx, activities.Notification{Cluster: r.in.Spec.ID, Broker: p.Broker, Severity: activities.SeverityPage,
		Title:     "Roll paused at " + p.node(),
		Text:      fmt.Sprintf("%s (%s). Nothing else is touched until someone decides: `starter decide --cluster %s %s`.", p.Reason, p.Step, r.in.Spec.ID, choices),
		Operation: workflow.GetInfo(ctx).WorkflowExecution.ID})
}

func brokerActivityContext(ctx workflow.Context, timeout time.Duration, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		// Every broker activity heartbeats at least every poll (a second);
		// a worker that died is noticed in seconds, not at the end of a
		// long timeout.
		HeartbeatTimeout: 10 * time.Second,
		Summary:          summary,
		// A step that still fails after a few attempts needs a human, not
		// an endless retry loop with a broker down.
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        5,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput},
		},
	})
}

// waitHeartbeat is the heartbeat timeout of the long waits: a worker that
// died is noticed within it, and since the SDK records at most one
// heartbeat per 0.8 x this timeout, it also sets what an hour of waiting
// costs (Temporal Cloud bills every recorded heartbeat).
const waitHeartbeat = 30 * time.Second

// waitContext is the options of a long wait (activities/waits.go): hours
// to run, a heartbeat to notice a dead worker and to resume from, retried
// up to attempts times (0: without limit), never on bad input.
func waitContext(ctx workflow.Context, timeout time.Duration, summary string, attempts int32) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    waitHeartbeat,
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        attempts,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput},
		},
	})
}

// setDetails shows where the roll is in the Temporal UI.
func (r *roll) setDetails(ctx workflow.Context) {
	p := r.progress
	details := fmt.Sprintf("**%s** rolling restart `%s`: %d/%d brokers done.", r.in.Spec.ID, r.in.OperationID, len(p.Done), len(p.Done)+len(p.Remaining))
	if n := len(p.ControllersDone) + len(p.ControllersRemaining) + len(p.ControllersSkipped); n > 0 {
		details += fmt.Sprintf(" %d/%d controllers done.", len(p.ControllersDone), n)
	}
	if pause := r.human.paused; pause != nil {
		details += fmt.Sprintf("\n\n**PAUSED** at %s (%s): %s\n\nDecide with `starter decide --cluster %s resume|abort", pause.node(), pause.Step, pause.Reason, r.in.Spec.ID)
		if pause.CanSkip {
			details += "|skip"
		}
		details += "`."
	} else if p.Current >= 0 {
		node := "Broker"
		if p.Node == NodeController {
			node = "Controller"
		}
		details += fmt.Sprintf(" %s %d: %s.", node, p.Current, p.Step)
		if p.Step == StepWaitGates {
			details += " Live progress: the wait activity's heartbeat."
		}
	}
	for _, b := range p.Blockers {
		details += "\n- " + b
	}
	workflow.SetCurrentDetails(ctx, details)
}

func (in RollingRestartInput) withDefaults() RollingRestartInput {
	if in.GatePollInterval <= 0 {
		in.GatePollInterval = 10 * time.Second
	}
	if in.GateTimeout <= 0 {
		in.GateTimeout = 30 * time.Minute
	}
	return in
}
