package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// A KRaft cluster's roll (issue #15): its controllers first, one at a
// time, each only while the quorum stays a caught-up majority without it
// (OPERATIONS.md "KRaft"), then its brokers exactly as a ZooKeeper
// cluster's.

// versionKRaftControllers: a KRaft spec's roll restarts its controllers
// before its brokers. Asked only on a KRaft spec, so a ZooKeeper roll
// records the same commands as before it existed; a KRaft roll recorded
// before it rolls its brokers only, as it did.
const versionKRaftControllers = "roll-kraft-controllers"

// Controller steps, as shown in progress and the UI.
const (
	StepQuorumGate     = "checking the quorum gate"
	StepWaitQuorumGate = "waiting for the quorum gate"
	StepCtlStop        = "stopping controller"
	StepCtlStart       = "starting controller"
	StepCtlCaughtUp    = "waiting until caught up"
)

// NodeController is RollProgress.Node while the current node is a
// controller.
const NodeController = "controller"

// ControllerRestart is one KRaft controller's restart with each step's
// duration.
type ControllerRestart struct {
	Controller int32 `json:"controller"`
	// WasActive: it led the quorum when the roll picked it.
	WasActive bool          `json:"wasActive"`
	GateWait  time.Duration `json:"gateWait"`
	Stop      time.Duration `json:"stop"`
	Start     time.Duration `json:"start"`
	CatchUp   time.Duration `json:"catchUp"`
	Total     time.Duration `json:"total"`
}

// rollsControllers says whether this roll restarts the spec's
// controllers first (a KRaft cluster's, or a migrating one's once phase 1
// made them), and takes them out of the brokers' remaining list (a
// request may name controllers among its nodes).
func (r *roll) rollsControllers(ctx workflow.Context) bool {
	if !r.in.Spec.HasControllers() || workflow.GetVersion(ctx, versionKRaftControllers, workflow.DefaultVersion, 1) < 1 {
		return false
	}
	controllers := r.in.Spec.ControllerIDs()
	if len(r.in.Brokers) > 0 {
		controllers = slices.DeleteFunc(controllers, func(id int32) bool { return !slices.Contains(r.in.Brokers, id) })
	}
	r.progress.Remaining = slices.DeleteFunc(r.progress.Remaining, func(id int32) bool { return slices.Contains(controllers, id) })
	r.progress.ControllersRemaining = controllers
	return len(controllers) > 0
}

// rollControllers restarts the remaining controllers one at a time.
func (r *roll) rollControllers(ctx workflow.Context) error {
	for len(r.progress.ControllersRemaining) > 0 {
		if err := r.restartNextController(ctx); err != nil {
			return err
		}
	}
	r.progress.Node, r.progress.Current = "", -1
	return nil
}

// restartNextController picks the next controller on a fresh quorum (not
// caught up first, then followers, the active one last), waits for its
// gate, stops and starts it through its host, and waits until it is a
// caught-up voter again.
func (r *roll) restartNextController(ctx workflow.Context) error {
	began := workflow.Now(ctx)
	r.progress.Node, r.progress.Step, r.progress.Current, r.progress.Batch, r.progress.Blockers = NodeController, StepQuorumGate, -1, nil, nil
	next, active, skip, err := r.waitForQuorumGate(ctx)
	if err != nil {
		return err
	}
	done := func(id int32) bool { return id == next }
	if skip {
		r.result.SkippedControllers = append(r.result.SkippedControllers, next)
		r.progress.ControllersSkipped = append(r.progress.ControllersSkipped, next)
		r.progress.ControllersRemaining = slices.DeleteFunc(r.progress.ControllersRemaining, done)
		return nil
	}
	waited := workflow.Now(ctx).Sub(began)
	recordGateWait(ctx, r.in.Spec.ID, waited)
	workflow.GetLogger(ctx).Info("restarting controller", "Cluster", r.in.Spec.ID, "Controller", next, "Active", active)
	in := activities.ControllerInput{
		Spec:         r.in.Spec,
		Controller:   next,
		Reason:       fmt.Sprintf("kfleet %s %s requested by %s", OpRollingRestart, r.in.OperationID, r.in.RequestedBy),
		Version:      r.in.Version,
		MetadataMode: r.in.MetadataMode,
	}
	res := ControllerRestart{Controller: next, WasActive: active, GateWait: waited}
	steps := []struct {
		name     string
		timeout  time.Duration
		activity any
		input    any
		took     *time.Duration
	}{
		{StepCtlStop, time.Duration(fleet.GracePeriodSeconds(0))*time.Second + time.Minute, a.StopController, in, &res.Stop},
		{StepCtlStart, 10 * time.Minute, a.StartController, in, &res.Start},
		// Polled at the worker's pace (about a second), not the gates':
		// a controller catches up within a few fetches.
		{StepCtlCaughtUp, 30 * time.Minute, a.WaitControllerCaughtUp, activities.CaughtUpInput{ControllerInput: in}, &res.CatchUp},
	}
	// Past its gate a controller is finished even if the roll is
	// cancelled: one left down would cost the quorum its margin.
	bctx, _ := workflow.NewDisconnectedContext(ctx)
	for _, s := range steps {
		t0 := workflow.Now(ctx)
		if err := r.runControllerStep(bctx, next, s.name, s.timeout, s.activity, s.input); err != nil {
			return err
		}
		*s.took = workflow.Now(ctx).Sub(t0)
	}
	res.Total = workflow.Now(ctx).Sub(began)
	r.result.Controllers = append(r.result.Controllers, res)
	r.progress.ControllersDone = append(r.progress.ControllersDone, next)
	r.progress.ControllersRemaining = slices.DeleteFunc(r.progress.ControllersRemaining, done)
	return ctx.Err()
}

// runControllerStep runs one step of a controller's restart; once its
// retries are spent it pauses the roll, and resume runs it again.
func (r *roll) runControllerStep(ctx workflow.Context, id int32, name string, timeout time.Duration, activity, input any) error {
	for {
		r.progress.Step = name
		r.setDetails(ctx)
		actx := brokerActivityContext(ctx, timeout, fmt.Sprintf("controller %d: %s", id, name))
		err := workflow.ExecuteActivity(actx, activity, input).Get(ctx, nil)
		if err == nil {
			return nil
		}
		why := fmt.Sprintf("controller %d: %s failed: %s", id, name, activityMessage(err))
		if _, err := r.askAt(ctx, Pause{Broker: id, Controller: true, Step: name, Reason: why}); err != nil {
			return err
		}
	}
}

// waitForQuorumGate re-reads the quorum, picks the next controller
// (fleet.NextController) and returns it once restarting it keeps a
// caught-up majority (CheckQuorumGate). While the gate is shut the roll
// shows why and waits in one heartbeating activity (WaitQuorumGate) up to
// GateTimeout; still shut, it asks a human. Skip leaves that controller
// alone; resume reads the quorum again (the next pick may differ).
func (r *roll) waitForQuorumGate(ctx workflow.Context) (next int32, active, skip bool, err error) {
	for {
		r.progress.Step, r.progress.Blockers = StepQuorumGate, nil
		var q fleet.Quorum
		qin := activities.QuorumInput{Spec: r.in.Spec}
		if err := workflow.ExecuteActivity(quorumCheckContext(ctx, "describe the quorum"), a.DescribeQuorum, qin).Get(ctx, &q); err != nil {
			return 0, false, false, fmt.Errorf("cluster %s: describe the quorum: %w", r.in.Spec.ID, err)
		}
		next, _ = fleet.NextController(q, r.progress.ControllersRemaining, fleet.QuorumFetchTimeout)
		active = next == q.Leader
		r.progress.Current = next
		qin.Node = next
		var v fleet.QuorumVerdict
		if err := workflow.ExecuteActivity(quorumCheckContext(ctx, fmt.Sprintf("controller %d: check the quorum gate", next)), a.CheckQuorumGate, qin).Get(ctx, &v); err != nil {
			return next, active, false, fmt.Errorf("cluster %s controller %d: check the quorum gate: %w", r.in.Spec.ID, next, err)
		}
		if v.Safe {
			return next, active, false, nil
		}
		r.progress.Step, r.progress.Blockers = StepWaitQuorumGate, []string{fleet.GateQuorum + ": " + v.Reason}
		r.setDetails(ctx)
		var w activities.QuorumGateWait
		win := activities.QuorumGateWaitInput{QuorumInput: qin, Timeout: r.in.GateTimeout, PollInterval: r.in.GatePollInterval}
		wctx := waitContext(ctx, 2*r.in.GateTimeout+time.Hour, fmt.Sprintf("controller %d: wait for the quorum gate", next), 0)
		if err := workflow.ExecuteActivity(wctx, a.WaitQuorumGate, win).Get(ctx, &w); err != nil {
			return next, active, false, fmt.Errorf("cluster %s controller %d: wait for the quorum gate: %w", r.in.Spec.ID, next, err)
		}
		if w.Verdict.Safe {
			return next, active, false, nil
		}
		r.progress.Blockers = []string{fleet.GateQuorum + ": " + w.Verdict.Reason}
		why := fmt.Sprintf("controller %d: quorum gate still shut after %s: %s", next, r.in.GateTimeout, w.Verdict.Reason)
		d, err := r.askAt(ctx, Pause{Broker: next, Controller: true, Step: StepWaitQuorumGate, Reason: why, CanSkip: true})
		if err != nil {
			return next, active, false, err
		}
		if d.Action == DecisionSkip {
			return next, active, true, nil
		}
	}
}

// askAt pauses the roll at p until a human decides (ask, for any node).
func (r *roll) askAt(ctx workflow.Context, p Pause) (Decision, error) {
	r.progress.Step, r.progress.Current = StepPaused, p.Broker
	d, err := r.human.ask(ctx, p)
	if err == nil {
		r.progress.Step = p.Step
	}
	return d, err
}

// quorumCheckContext is the options of one quorum read: seconds, retried
// (a read that met the controller just stopped), never on bad input.
func quorumCheckContext(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{
			MaximumInterval:        30 * time.Second,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput},
		},
	})
}
