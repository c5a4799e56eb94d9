package workflows

import (
	"errors"
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// ErrTypeAbortedByHuman is the error type of an operation a human aborted
// while it waited for a decision (recovery; a roll uses ErrTypeAborted).
const ErrTypeAbortedByHuman = "AbortedByHuman"

// humanGate is where an operation other than a roll stops and waits for a
// human: it holds the pause, the decide update's validator and handler.
// Its only choices are resume (try again) and abort: such an operation has
// no broker to skip.
type humanGate struct {
	paused   *Pause
	decision *Decision
	// what names the operation in messages, e.g. "recovery of broker 2".
	what string
}

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
	switch {
	case g.paused == nil || g.decision != nil:
		return fmt.Errorf("the %s is not waiting for a human: there is nothing to decide", g.what)
	case d.By == "":
		return errors.New("by is required: say who decides")
	case d.Action == DecisionSkip:
		return fmt.Errorf("the %s has nothing to skip: resume (try again) or abort", g.what)
	case d.Action != DecisionResume && d.Action != DecisionAbort:
		return fmt.Errorf("unknown action %q: want resume or abort", d.Action)
	}
	return nil
}

// ask pauses until a human decides; abort returns an error of type
// ErrTypeAbortedByHuman. onPause is called once paused and once answered,
// so the caller can refresh its UI details.
func (g *humanGate) ask(ctx workflow.Context, p Pause, onChange func()) (Decision, error) {
	p.Since = workflow.Now(ctx)
	g.paused, g.decision = &p, nil
	onChange()
	setPaused(ctx, true)
	if err := workflow.Await(ctx, func() bool { return g.decision != nil }); err != nil {
		return Decision{}, err
	}
	setPaused(ctx, false)
	d := *g.decision
	g.paused, g.decision = nil, nil
	onChange()
	if d.Action == DecisionAbort {
		return d, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s aborted by %s (%s): %s", g.what, d.By, p.Reason, d.Reason), ErrTypeAbortedByHuman, nil)
	}
	return d, nil
}
