package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
)

// ScheduledActionWorkflow is what a cluster's maintenance window starts
// (a Temporal Schedule): it submits its action — a rolling restart, a
// cleaner check — to the cluster's entity, which queues it under its
// admission rules like any other request, and returns the entity's
// answer. It does not wait for the operation: the schedule's next run
// must not overlap a long roll it merely asked for.
func ScheduledActionWorkflow(ctx workflow.Context, act activities.Action) (activities.Submitted, error) {
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("scheduled **%s** of %s: submitting to the cluster's entity", act.Verb, act.Cluster))
	var sub activities.Submitted
	if err := workflow.ExecuteActivity(submitContext(ctx), a.SubmitAction, act).Get(ctx, &sub); err != nil {
		return sub, err
	}
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("scheduled **%s** of %s: %s", act.Verb, act.Cluster, sub.Text))
	return sub, nil
}
