package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
)

// ApprovalInput is a destructive action asked from chat, waiting for a
// second person.
type ApprovalInput struct {
	Action activities.Action `json:"action"`
	// Approvers may approve or deny; the requester never can.
	Approvers []string `json:"approvers"`
	// Timeout is how long the approval waits before it expires (default
	// 1 h): a stale "yes" must not restart a cluster hours later.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// ApprovalDecision is the approve update's argument.
type ApprovalDecision struct {
	By      string `json:"by"`
	Approve bool   `json:"approve"`
	Reason  string `json:"reason,omitempty"`
	// Force is the approver's: the action goes with force=true among its
	// parameters (a deletion refused while topics or tenants remain).
	// Refused for a kind whose parameters have no force.
	Force bool `json:"force,omitempty"`
}

// Approval outcomes.
const (
	ApprovalPending  = "pending"
	ApprovalApproved = "approved"
	ApprovalDenied   = "denied"
	ApprovalExpired  = "expired"
	// ApprovalFailed: approved, but the cluster's entity refused or could
	// not be reached.
	ApprovalFailed = "failed"
)

// ApprovalState is what the approval query and the workflow's result say.
type ApprovalState struct {
	Action    activities.Action `json:"action"`
	Status    string            `json:"status"`
	DecidedBy string            `json:"decidedBy,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	// Submitted is the entity's answer once approved.
	Submitted *activities.Submitted `json:"submitted,omitempty"`
	Error     string                `json:"error,omitempty"`
}

// ApprovalWorkflow holds a destructive action (restart, upgrade, expand,
// abort) asked from chat until a second, different person approves it
// (UpdateApprove, whose validator refuses the requester and anyone not
// among the approvers), then submits it to the cluster's entity. A denial
// or the timeout ends it with nothing started.
func ApprovalWorkflow(ctx workflow.Context, in ApprovalInput) (ApprovalState, error) {
	if in.Timeout <= 0 {
		in.Timeout = time.Hour
	}
	st := ApprovalState{Action: in.Action, Status: ApprovalPending}
	var decision *ApprovalDecision
	details := func() {
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s** %s on %s asked by %s: **%s**%s",
			in.Action.Verb, describeAction(in.Action), in.Action.Cluster, in.Action.RequestedBy, st.Status, suffixBy(st.DecidedBy)))
	}
	if err := workflow.SetQueryHandler(ctx, QueryApproval, func() (ApprovalState, error) { return st, nil }); err != nil {
		return st, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateApprove,
		func(ctx workflow.Context, d ApprovalDecision) (ApprovalState, error) {
			decision = &d
			if err := workflow.Await(ctx, func() bool { return st.Status != ApprovalPending }); err != nil {
				return st, err
			}
			return st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, d ApprovalDecision) error {
			switch {
			case decision != nil || st.Status != ApprovalPending:
				return fmt.Errorf("this %s of %s is already %s", in.Action.Verb, in.Action.Cluster, st.Status)
			case d.By == "":
				return errors.New("by is required: say who decides")
			case d.By == in.Action.RequestedBy:
				return fmt.Errorf("%s asked for this %s: a second, different person must approve it", d.By, in.Action.Verb)
			case !slices.Contains(in.Approvers, d.By):
				return fmt.Errorf("%s may not approve a %s of %s", d.By, in.Action.Verb, in.Action.Cluster)
			case d.Force && !d.Approve:
				return errors.New("force goes with an approval, not a denial")
			case d.Force:
				if _, err := forcedAction(in.Action); err != nil {
					return err
				}
			}
			return nil
		}},
	); err != nil {
		return st, err
	}
	details()

	decided, err := workflow.AwaitWithTimeout(ctx, in.Timeout, func() bool { return decision != nil })
	if err != nil {
		return st, err
	}
	switch {
	case !decided:
		st.Status = ApprovalExpired
	case !decision.Approve:
		st.Status, st.DecidedBy, st.Reason = ApprovalDenied, decision.By, decision.Reason
	default:
		st.DecidedBy, st.Reason = decision.By, decision.Reason
		act := in.Action
		if decision.Force {
			act, _ = forcedAction(act) // validated
			st.Action = act            // what was approved, as submitted
		}
		act.ApprovedBy = decision.By
		if decision.Reason != "" {
			act.Reason = decision.Reason
		}
		var sub activities.Submitted
		if err := workflow.ExecuteActivity(submitContext(ctx), a.SubmitAction, act).Get(ctx, &sub); err != nil {
			st.Status, st.Error = ApprovalFailed, activityMessage(err)
		} else {
			st.Status, st.Submitted = ApprovalApproved, &sub
		}
	}
	details()
	workflow.GetLogger(ctx).Info("approval decided", "Cluster", in.Action.Cluster, "Verb", in.Action.Verb, "Status", st.Status, "By", st.DecidedBy)
	// Let the approve update return the outcome before the run closes.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return st, err
	}
	return st, nil
}

// submitContext is the options of SubmitAction: a refusal is final, a
// Temporal hiccup is retried for a while.
func submitContext(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		Summary:             "submit to the cluster's entity",
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 10 * time.Second, MaximumAttempts: 10,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput}},
	})
}

func describeAction(a activities.Action) string {
	var parts []string
	if len(a.Brokers) > 0 {
		parts = append(parts, fmt.Sprintf("of broker(s) %v", a.Brokers))
	}
	if a.OperationID != "" {
		parts = append(parts, "of "+a.OperationID)
	}
	if len(a.Params) > 0 {
		parts = append(parts, string(a.Params))
	}
	return strings.Join(parts, " ")
}

func suffixBy(by string) string {
	if by == "" {
		return ""
	}
	return " by " + by
}

// forcedAction is act with force=true among its parameters, refused when
// its kind's parameters have no force (the kind's own check says so).
func forcedAction(act activities.Action) (activities.Action, error) {
	params := map[string]json.RawMessage{}
	if len(act.Params) > 0 {
		//workflowcheck:ignore JSON of kfleet's own types is deterministic (no maps iterated, no clock)
		if err := json.Unmarshal(act.Params, &params); err != nil {
			return act, fmt.Errorf("params %s: %w", act.Params, err)
		}
	}
	params["force"] = json.RawMessage("true")
	//workflowcheck:ignore encoding/json writes a map's keys sorted: the same bytes every time
	raw, err := json.Marshal(params)
	if err != nil {
		return act, err
	}
	k, err := KindOfVerb(act.Verb)
	if err != nil {
		return act, fmt.Errorf("a %s cannot be forced", act.Verb)
	}
	act.Params = raw
	if err := k.Check(Request{Kind: k.Name(), RequestedBy: act.RequestedBy, Brokers: act.Brokers, Params: raw}); err != nil {
		return act, fmt.Errorf("a %s cannot be forced: %w", act.Verb, err)
	}
	return act, nil
}
