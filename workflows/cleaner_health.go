package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// CleanerHealthInput asks to check the log cleaner of a cluster's brokers.
type CleanerHealthInput struct {
	Spec        fleet.ClusterSpec `json:"spec"`
	OperationID string            `json:"operationId"`
	RequestedBy string            `json:"requestedBy"`
	// Brokers restricts the check; empty means every broker.
	Brokers []int32 `json:"brokers,omitempty"`
}

// CleanerHealthResult says which cleaners were found unhealthy and whether
// their brokers' restart fixed them.
type CleanerHealthResult struct {
	// Unhealthy maps each broker found unhealthy to why.
	Unhealthy []CleanerFinding `json:"unhealthy,omitempty"`
	// Restarted are the brokers the gated roll restarted.
	Restarted []int32 `json:"restarted,omitempty"`
	// StillUnhealthy are brokers whose cleaner is still unhealthy after
	// their restart: a human must look (a corrupt segment, a message
	// larger than the cleaner's buffer).
	StillUnhealthy []CleanerFinding `json:"stillUnhealthy,omitempty"`
}

// CleanerFinding is one broker's unhealthy cleaner.
type CleanerFinding struct {
	Broker int32  `json:"broker"`
	Reason string `json:"reason"`
}

// CleanerHealthWorkflow checks every broker's log cleaner (dead threads,
// time since its last run, uncleanable partitions) and restarts the brokers
// whose cleaner is dead or stuck with a rolling restart of those brokers:
// every gate of a roll applies, one broker at a time. Then it checks again
// that the restart fixed them.
func CleanerHealthWorkflow(ctx workflow.Context, in CleanerHealthInput) (CleanerHealthResult, error) {
	var res CleanerHealthResult
	policy := in.Spec.Health.WithDefaults()
	details := func(s string) {
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s** log cleaner check `%s`: %s.", in.Spec.ID, in.OperationID, s))
	}
	details("checking every broker's cleaner")
	var err error
	if res.Unhealthy, err = cleanerFindings(ctx, in, policy); err != nil {
		return res, err
	}
	if len(res.Unhealthy) == 0 {
		details("every cleaner is healthy")
		return res, nil
	}
	for _, f := range res.Unhealthy {
		res.Restarted = append(res.Restarted, f.Broker)
	}
	notifyHumans(ctx, activities.Notification{Cluster: in.Spec.ID, Severity: activities.SeverityWarning,
		Title:     fmt.Sprintf("Log cleaner unhealthy on broker(s) %v", res.Restarted),
		Text:      describeFindings(res.Unhealthy) + ". kfleet restarts them one at a time through the safe path.",
		Operation: workflow.GetInfo(ctx).WorkflowExecution.ID})

	details(fmt.Sprintf("restarting broker(s) %v: %s", res.Restarted, describeFindings(res.Unhealthy)))
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		// From the input, not the own ID: a replay must name the same child.
		WorkflowID:    CleanerRestartWorkflowID(OperationWorkflowID(in.Spec.ID, OpCleanerHealth, in.OperationID)),
		StaticSummary: fmt.Sprintf("Restart of **%s** broker(s) %v: log cleaner unhealthy", in.Spec.ID, res.Restarted),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			AttrClusterID.ValueSet(in.Spec.ID),
			AttrOperation.ValueSet(OpRollingRestart),
		),
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
	})
	roll := RollingRestartInput{Spec: in.Spec, OperationID: in.OperationID,
		RequestedBy: fmt.Sprintf("%s (%s: log cleaner)", in.RequestedBy, OpCleanerHealth), Brokers: res.Restarted}
	if err := workflow.ExecuteChildWorkflow(cctx, RollingRestartWorkflow, roll).Get(ctx, nil); err != nil {
		return res, err
	}

	details("checking the restarted brokers' cleaners")
	after := in
	after.Brokers = res.Restarted
	if res.StillUnhealthy, err = cleanerFindings(ctx, after, policy); err != nil {
		return res, err
	}
	if len(res.StillUnhealthy) > 0 {
		notifyHumans(ctx, activities.Notification{Cluster: in.Spec.ID, Severity: activities.SeverityPage,
			Title:     "Log cleaner still unhealthy after a restart",
			Text:      describeFindings(res.StillUnhealthy) + ". A restart did not fix it: look at the broker's log (a corrupt segment, a message larger than the cleaner's buffer).",
			Operation: workflow.GetInfo(ctx).WorkflowExecution.ID})
		details("still unhealthy after the restart: " + describeFindings(res.StillUnhealthy))
		return res, nil
	}
	details(fmt.Sprintf("restarted broker(s) %v; every cleaner is healthy", res.Restarted))
	return res, nil
}

// cleanerFindings checks the brokers' cleaners now. A broker whose metrics
// cannot be read is left to the broker watch and recovery.
func cleanerFindings(ctx workflow.Context, in CleanerHealthInput, policy fleet.HealthPolicy) ([]CleanerFinding, error) {
	var rep fleet.HealthReport
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		HeartbeatTimeout:    15 * time.Second,
		Summary:             "scrape every broker's cleaner metrics",
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second, MaximumAttempts: 10,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput}},
	})
	if err := workflow.ExecuteActivity(actx, a.CheckHealth, activities.HealthInput{Spec: in.Spec}).Get(ctx, &rep); err != nil {
		return nil, err
	}
	var out []CleanerFinding
	for _, b := range rep.Brokers {
		if b.Error != "" || (len(in.Brokers) > 0 && !slices.Contains(in.Brokers, b.Broker)) {
			continue
		}
		if why, bad := fleet.CleanerUnhealthy(policy, b.Cleaner); bad {
			out = append(out, CleanerFinding{Broker: b.Broker, Reason: why})
		}
	}
	return out, nil
}

func describeFindings(fs []CleanerFinding) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = fmt.Sprintf("broker %d: %s", f.Broker, f.Reason)
	}
	return strings.Join(parts, "; ")
}
