package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// TopicAdminInput is one admin lane batch (op_topic.go).
type TopicAdminInput struct {
	Spec        fleet.ClusterSpec           `json:"spec"`
	OperationID string                      `json:"operationId"`
	Action      string                      `json:"action"`
	Topics      []fleet.TopicRequest        `json:"topics"`
	Plans       map[string]fleet.TenantPlan `json:"plans"`
}

// TopicAdminWorkflow runs a batch: one activity, which decides each topic
// against the cluster now, sends one request of its action for the batch
// (CreateTopics, DeleteTopics, CreatePartitions, IncrementalAlterConfigs,
// DeleteGroups) and sends the throttled topics again after KIP-599's throttle
// time, heartbeating.
func TopicAdminWorkflow(ctx workflow.Context, in TopicAdminInput) (activities.TopicBatchResult, error) {
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s** admin lane `%s`: %s %d topic(s).", in.Spec.ID, in.OperationID, in.Action, len(in.Topics)))
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 15 * time.Minute,
		HeartbeatTimeout:    time.Minute,
		Summary:             fmt.Sprintf("%s %d topic(s)", in.Action, len(in.Topics)),
		// A retry is harmless: a topic made (or deleted) already counts
		// as done.
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second, MaximumAttempts: 10,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput}},
	})
	var res activities.TopicBatchResult
	err := workflow.ExecuteActivity(actx, a.TopicBatch, activities.TopicBatchInput{Spec: in.Spec, Action: in.Action, Topics: in.Topics, Plans: in.Plans}).Get(ctx, &res)
	if err != nil {
		return res, fmt.Errorf("cluster %s: %s %d topic(s): %w", in.Spec.ID, in.Action, len(in.Topics), err)
	}
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s** admin lane `%s`: %s.", in.Spec.ID, in.OperationID, topicOutcome(res)))
	return res, nil
}
