package workflows

import (
	"errors"
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
	// GatePollInterval paces re-checks of a shut gate (default 10 s).
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
}

// RollingRestartResult records what the roll did, per broker, in order.
type RollingRestartResult struct {
	Brokers []BrokerRestart `json:"brokers"`
	// Skipped are brokers a human chose to leave alone.
	Skipped []int32 `json:"skipped,omitempty"`
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
}

// Pause says why a roll stopped and what a human may decide.
type Pause struct {
	Broker int32     `json:"broker"`
	Step   string    `json:"step"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	// CanSkip is true at a gate: the broker was not touched yet. After a
	// step failed the broker may be down, and skipping it would leave it so.
	CanSkip bool `json:"canSkip"`
}

// Decision is a human's answer to a paused roll (the decide update).
type Decision struct {
	Action string `json:"action"` // DecisionResume, DecisionSkip or DecisionAbort
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
}

// Human decisions on a paused roll.
const (
	DecisionResume = "resume" // re-check the gate, or retry the failed step
	DecisionSkip   = "skip"   // leave this broker alone and go on with the next
	DecisionAbort  = "abort"  // end the roll here
)

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
	// ErrTypeAborted is the error type of a roll a human aborted.
	ErrTypeAborted = "RollAborted"
)

// RollingRestartWorkflow restarts a cluster's brokers one at a time, the
// controller last, opening every gate of OPERATIONS.md on a fresh snapshot
// right before each broker:
//
//  1. pick the next broker (controller last) and check the gates;
//     while a gate is shut, wait on a durable timer;
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
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (RollProgress, error) { return r.progress, nil }); err != nil {
		return RollingRestartResult{}, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateDecide, r.decide,
		workflow.UpdateHandlerOptions{Validator: r.validateDecision}); err != nil {
		return RollingRestartResult{}, err
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
	// decision is a human's answer, set by the decide update while paused.
	decision *Decision
	// batches counts the steps (batches of brokers) done.
	batches int
	// recovery is the last log-recovery sample per broker, for the rate.
	recovery map[int32]recoverySample
}

// recoverySample is a broker's logs left to recover at one observation.
type recoverySample struct {
	at   time.Time
	left int
}

// rateTo is log recovery's pace from s to left logs at now, in logs per
// minute, and the time the rest takes at that pace; ok is false when
// recovery did not advance since s.
func (s recoverySample) rateTo(now time.Time, left int) (perMin float64, eta time.Duration, ok bool) {
	if s.at.IsZero() || left >= s.left || !now.After(s.at) {
		return 0, 0, false
	}
	perMin = float64(s.left-left) / now.Sub(s.at).Minutes()
	return perMin, time.Duration(float64(left) / perMin * float64(time.Minute)).Round(time.Second), true
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
		if _, err := r.askHuman(ctx, failed[0], name, strings.Join(reasons, "; "), false); err != nil {
			return err
		}
		pending = failed
	}
	return nil
}

// a is how workflows name activities: methods of a nil *Activities.
var a *activities.Activities

// waitForGates returns the verdict for the next broker once every gate is
// open, re-checking on a durable timer. A gate that no wait can open, or
// one still shut at the deadline, pauses the roll for a human; skip reports
// that the human chose to leave this broker alone.
func (r *roll) waitForGates(ctx workflow.Context) (rep activities.GateReport, skip bool, err error) {
	deadline := workflow.Now(ctx).Add(r.in.GateTimeout)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// Short: a check takes seconds, and after a worker crash the retry
		// waits for this timeout.
		StartToCloseTimeout: time.Minute,
		Summary:             "check restart gates",
		RetryPolicy:         &temporal.RetryPolicy{MaximumInterval: 30 * time.Second},
	})
	for {
		// A fresh value each time: decoding into the last report would
		// keep its blockers when the new one omits them.
		rep = activities.GateReport{}
		gin := activities.GateInput{Spec: r.in.Spec, Remaining: r.progress.Remaining, MaxBatch: r.in.MaxBatch}
		if err := workflow.ExecuteActivity(actx, a.CheckRestartGates, gin).Get(ctx, &rep); err != nil {
			return rep, false, fmt.Errorf("cluster %s: check gates: %w", r.in.Spec.ID, err)
		}
		if len(rep.Blockers) == 0 {
			return rep, false, nil
		}
		r.progress.Step, r.progress.Current, r.progress.Blockers = StepWaitGates, rep.Next, nil
		permanent := false
		for _, b := range rep.Blockers {
			r.progress.Blockers = append(r.progress.Blockers, b.String())
			permanent = permanent || b.Permanent
		}
		if r.recoveryProgressed(ctx, rep) {
			// Recovery is moving: waiting is the right thing, however
			// long it takes. Only a stalled recovery needs a human.
			deadline = workflow.Now(ctx).Add(r.in.GateTimeout)
		}
		reasons := strings.Join(r.progress.Blockers, "; ")
		if permanent || !workflow.Now(ctx).Before(deadline) {
			why := fmt.Sprintf("broker %d: gates still shut after %s: %s", rep.Next, r.in.GateTimeout, reasons)
			if permanent {
				why = fmt.Sprintf("broker %d: a gate no wait can open: %s", rep.Next, reasons)
			}
			d, err := r.askHuman(ctx, rep.Next, StepWaitGates, why, true)
			if err != nil {
				return rep, false, err
			}
			if d.Action == DecisionSkip {
				return rep, true, nil
			}
			deadline = workflow.Now(ctx).Add(r.in.GateTimeout)
			continue // resume: re-check now
		}
		r.setDetails(ctx)
		if err := workflow.Sleep(ctx, r.in.GatePollInterval); err != nil {
			return rep, false, err
		}
	}
}

// recoveryProgressed compares the recovering brokers' logs left with the
// last check, adds each one's rate and ETA to the progress blockers, and
// reports whether any of them advanced.
func (r *roll) recoveryProgressed(ctx workflow.Context, rep activities.GateReport) bool {
	if r.recovery == nil {
		r.recovery = map[int32]recoverySample{}
	}
	now := workflow.Now(ctx)
	progressed := false
	for _, rec := range rep.Recovering {
		perMin, eta, ok := r.recovery[rec.Broker].rateTo(now, rec.LogsLeft)
		r.recovery[rec.Broker] = recoverySample{at: now, left: rec.LogsLeft}
		if !ok {
			continue
		}
		progressed = true
		r.progress.Blockers = append(r.progress.Blockers,
			fmt.Sprintf("%s: broker %d recovering at %.0f logs/min, %d left, ETA %s", fleet.GateRecovering, rec.Broker, perMin, rec.LogsLeft, eta))
	}
	return progressed
}

// askHuman pauses the roll until a human decides; it returns the decision,
// or an error when the human aborted.
func (r *roll) askHuman(ctx workflow.Context, broker int32, step, reason string, canSkip bool) (Decision, error) {
	r.progress.Paused = &Pause{Broker: broker, Step: step, Reason: reason, Since: workflow.Now(ctx), CanSkip: canSkip}
	r.progress.Step, r.progress.Current = StepPaused, broker
	r.decision = nil
	r.setDetails(ctx)
	workflow.GetLogger(ctx).Warn("roll paused, waiting for a human", "Cluster", r.in.Spec.ID, "Broker", broker, "Reason", reason)
	setPaused(ctx, true)
	if workflow.GetVersion(ctx, "notify-roll-pause", workflow.DefaultVersion, 1) >= 1 {
		choices := "resume|abort"
		if canSkip {
			choices = "resume|skip|abort"
		}
		notifyHumans(ctx, activities.Notification{Cluster: r.in.Spec.ID, Broker: broker, Severity: activities.SeverityPage,
			Title:     fmt.Sprintf("Roll paused at broker %d", broker),
			Text:      fmt.Sprintf("%s (%s). Nothing else is touched until someone decides: `starter decide --cluster %s %s`.", reason, step, r.in.Spec.ID, choices),
			Operation: workflow.GetInfo(ctx).WorkflowExecution.ID})
	}
	if err := workflow.Await(ctx, func() bool { return r.decision != nil }); err != nil {
		return Decision{}, err
	}
	setPaused(ctx, false)
	d := *r.decision
	r.decision, r.progress.Paused = nil, nil
	workflow.GetLogger(ctx).Info("human decision", "Cluster", r.in.Spec.ID, "Broker", broker, "Action", d.Action, "By", d.By)
	if d.Action == DecisionAbort {
		return d, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("cluster %s: roll aborted by %s at broker %d (%s): %s", r.in.Spec.ID, d.By, broker, reason, d.Reason), ErrTypeAborted, nil)
	}
	return d, nil
}

func (r *roll) validateDecision(_ workflow.Context, d Decision) error {
	p := r.progress.Paused
	switch {
	case p == nil || r.decision != nil:
		return errors.New("the roll is not paused: there is nothing to decide")
	case d.By == "":
		return errors.New("by is required: say who decides")
	case d.Action == DecisionSkip && !p.CanSkip:
		return fmt.Errorf("broker %d cannot be skipped: %s failed after it was touched; resume (retry) or abort", p.Broker, p.Step)
	case d.Action != DecisionResume && d.Action != DecisionSkip && d.Action != DecisionAbort:
		return fmt.Errorf("unknown action %q: want resume, skip or abort", d.Action)
	}
	return nil
}

func (r *roll) decide(_ workflow.Context, d Decision) (Pause, error) {
	p := *r.progress.Paused
	r.decision = &d
	return p, nil
}

// activityMessage is what an activity failed with, without the SDK's
// wrapping (activity type, event ids, the same cause printed again), so a
// human reads the host's own words.
func activityMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	return err.Error()
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

// setDetails shows where the roll is in the Temporal UI.
func (r *roll) setDetails(ctx workflow.Context) {
	p := r.progress
	details := fmt.Sprintf("**%s** rolling restart `%s`: %d/%d brokers done.", r.in.Spec.ID, r.in.OperationID, len(p.Done), len(p.Done)+len(p.Remaining))
	if p.Paused != nil {
		details += fmt.Sprintf("\n\n**PAUSED** at broker %d (%s): %s\n\nDecide with `starter decide --cluster %s resume|abort", p.Paused.Broker, p.Paused.Step, p.Paused.Reason, r.in.Spec.ID)
		if p.Paused.CanSkip {
			details += "|skip"
		}
		details += "`."
	} else if p.Current >= 0 {
		details += fmt.Sprintf(" Broker %d: %s.", p.Current, p.Step)
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
