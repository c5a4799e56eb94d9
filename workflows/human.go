package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
)

// ErrTypeAbortedByHuman is the error type of an operation a human aborted
// while it waited for a decision (a roll, a recovery).
const ErrTypeAbortedByHuman = "AbortedByHuman"

// Pause says why an operation stopped and what a human may decide.
type Pause struct {
	Broker int32     `json:"broker"`
	Step   string    `json:"step"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"`
	// Controller: Broker is a KRaft controller's node id (a KRaft roll
	// pauses at its controllers before its brokers).
	Controller bool `json:"controller,omitempty"`
	// CanSkip is true at a roll's gate: the broker was not touched yet.
	// After a step failed the broker may be down, and skipping it would
	// leave it so.
	CanSkip bool `json:"canSkip"`
}

// node names the node paused at: "broker 2", "controller 3001".
func (p Pause) node() string {
	if p.Controller {
		return fmt.Sprintf("controller %d", p.Broker)
	}
	return fmt.Sprintf("broker %d", p.Broker)
}

// Decision is a human's answer to a paused operation (the decide update).
type Decision struct {
	Action string `json:"action"` // DecisionResume, DecisionSkip or DecisionAbort
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
}

// Human decisions on a paused operation.
const (
	DecisionResume = "resume" // re-check the gate, or retry the failed step
	DecisionSkip   = "skip"   // leave this broker alone and go on with the next
	DecisionAbort  = "abort"  // end the operation here
	// DecisionUndo ends a provisioning and removes what it launched.
	DecisionUndo = "undo"
)

// humanGate is where an operation stops and waits for a human: it holds
// the pause and the decide update's validator and handler. Resume tries
// again and abort ends the operation (an error of type
// ErrTypeAbortedByHuman); skip leaves a broker alone, only in an operation
// that skips brokers and only at a pause that allows it (Pause.CanSkip).
type humanGate struct {
	// cluster and what name the operation in messages ("roll",
	// "recovery").
	cluster, what string
	// skips: the operation can leave a broker alone (a roll).
	skips bool
	// undoes: the operation can remove what it made (a provisioning).
	undoes bool
	// changed refreshes the operation's UI details; it is called once
	// paused and once answered.
	changed func(ctx workflow.Context)
	// page, if set, tells the humans on call once the operation is paused
	// (a roll pages; a recovery notifies on its own).
	page func(ctx workflow.Context, p Pause)

	paused   *Pause
	decision *Decision
}

// register sets the decide update's handler; call it once, at the start.
func (g *humanGate) register(ctx workflow.Context) error {
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateDecide,
		func(_ workflow.Context, d Decision) (Pause, error) {
			p := *g.paused
			g.decision = &d
			return p, nil
		},
		workflow.UpdateHandlerOptions{Validator: g.validate})
}

func (g *humanGate) validate(_ workflow.Context, d Decision) error {
	p := g.paused
	switch {
	case p == nil || g.decision != nil:
		return fmt.Errorf("the %s is not paused: there is nothing to decide", g.what)
	case d.By == "":
		return errors.New("by is required: say who decides")
	case d.Action == DecisionSkip && !g.skips:
		return fmt.Errorf("the %s has nothing to skip: resume (try again) or abort", g.what)
	case d.Action == DecisionSkip && !p.CanSkip:
		return fmt.Errorf("%s cannot be skipped: %s failed after it was touched; resume (retry) or abort", p.node(), p.Step)
	case d.Action == DecisionUndo && !g.undoes:
		return fmt.Errorf("the %s has nothing to undo: resume (try again) or abort", g.what)
	case d.Action == DecisionUndo:
	case d.Action != DecisionResume && d.Action != DecisionSkip && d.Action != DecisionAbort:
		if g.undoes {
			return fmt.Errorf("unknown action %q: want resume, undo or abort", d.Action)
		}
		if g.skips {
			return fmt.Errorf("unknown action %q: want resume, skip or abort", d.Action)
		}
		return fmt.Errorf("unknown action %q: want resume or abort", d.Action)
	}
	return nil
}

// ask pauses until a human decides and returns the decision; an abort
// returns an error of type ErrTypeAbortedByHuman. The Paused search
// attribute is set while it waits.
//
// The commands it records (the Paused upsert, the page, the upsert when
// answered) are in the order both operations recorded before they shared
// this gate, so their histories replay.
func (g *humanGate) ask(ctx workflow.Context, p Pause) (Decision, error) {
	p.Since = workflow.Now(ctx)
	g.paused, g.decision = &p, nil
	g.changed(ctx)
	workflow.GetLogger(ctx).Warn(g.what+" paused, waiting for a human", "Cluster", g.cluster, "Broker", p.Broker, "Step", p.Step, "Reason", p.Reason)
	setPaused(ctx, true)
	if g.page != nil {
		g.page(ctx, p)
	}
	if err := workflow.Await(ctx, func() bool { return g.decision != nil }); err != nil {
		return Decision{}, err
	}
	setPaused(ctx, false)
	d := *g.decision
	g.paused, g.decision = nil, nil
	g.changed(ctx)
	workflow.GetLogger(ctx).Info("human decision", "Cluster", g.cluster, "Broker", p.Broker, "Action", d.Action, "By", d.By)
	if d.Action == DecisionAbort {
		return d, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("cluster %s: %s aborted by %s at %s (%s): %s", g.cluster, g.what, d.By, p.node(), p.Reason, d.Reason), ErrTypeAbortedByHuman, nil)
	}
	return d, nil
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

// notifyHumans sends a notification and waits for it, a few attempts at
// most: a chat outage must not hold up or fail the operation.
func notifyHumans(ctx workflow.Context, n activities.Notification) {
	nctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 15 * time.Second,
		Summary:             "notify: " + n.Title,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Second, MaximumAttempts: 3},
	})
	if err := workflow.ExecuteActivity(nctx, a.Notify, n).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("notification not delivered", "Cluster", n.Cluster, "Title", n.Title, "Error", err)
	}
}
