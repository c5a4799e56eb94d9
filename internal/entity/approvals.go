package entity

import (
	"context"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// Propose starts the approval of a destructive action asked from chat and
// returns the approval's workflow ID. id makes it unique (the chat server
// derives it from the request); proposing the same id twice returns the
// same approval. The cluster must be registered.
func Propose(ctx context.Context, c client.Client, act activities.Action, approvers []string, id string) (string, error) {
	if err := CheckAction(act); err != nil {
		return "", err
	}
	if _, err := ClusterStatus(ctx, c, act.Cluster); err != nil {
		return "", err
	}
	wid := workflows.ApprovalWorkflowID(act.Cluster, id)
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       wid,
		TaskQueue:                workflows.QueueFromEnv(),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            fmt.Sprintf("Approval of a **%s** of %s asked by %s", act.Verb, act.Cluster, act.RequestedBy),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.AttrClusterID.ValueSet(act.Cluster),
			workflows.AttrOperation.ValueSet(workflows.OpApproval),
		),
	}, workflows.ApprovalWorkflow, workflows.ApprovalInput{Action: act, Approvers: approvers})
	if err != nil {
		return "", fmt.Errorf("cluster %s: start approval of %s: %w", act.Cluster, act.Verb, err)
	}
	return wid, nil
}

// Approve approves or denies an approval as d.By and returns its outcome
// (with the operation started, when approved). The approval refuses the
// requester and anyone not among its approvers (fleet.ErrRefused).
func Approve(ctx context.Context, c client.Client, approvalID string, d workflows.ApprovalDecision) (workflows.ApprovalState, error) {
	var st workflows.ApprovalState
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   approvalID,
		UpdateName:   workflows.UpdateApprove,
		Args:         []any{d},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return st, fmt.Errorf("approval %s: %w", approvalID, err)
	}
	if err := h.Get(ctx, &st); err != nil {
		return st, fmt.Errorf("approval %s: %w: %w", approvalID, fleet.ErrRefused, err)
	}
	return st, nil
}

// ApprovalStatus queries an approval.
func ApprovalStatus(ctx context.Context, c client.Client, approvalID string) (workflows.ApprovalState, error) {
	var st workflows.ApprovalState
	v, err := c.QueryWorkflow(ctx, approvalID, "", workflows.QueryApproval)
	if err != nil {
		return st, fmt.Errorf("approval %s: %w", approvalID, err)
	}
	return st, v.Get(&st)
}
