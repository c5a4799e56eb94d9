package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// ErrUnknownCluster is returned for a cluster that has no entity workflow.
var ErrUnknownCluster = errors.New("unknown cluster")

// RegisterCluster starts the cluster's entity workflow, or hands the spec to
// the running one, in one Update-with-Start call: registering twice is safe.
func RegisterCluster(ctx context.Context, c client.Client, spec fleet.ClusterSpec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	start := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       workflows.ClusterWorkflowID(spec.ID),
		TaskQueue:                workflows.TaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            fmt.Sprintf("Cluster entity of **%s** (%d brokers)", spec.ID, len(spec.Brokers)),
		TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.AttrClusterID.ValueSet(spec.ID)),
	}, workflows.ClusterWorkflow, workflows.ClusterInput{Spec: spec})
	h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   workflows.UpdateSetSpec,
			Args:         []any{spec},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		return fmt.Errorf("register cluster %s: %w", spec.ID, err)
	}
	return h.Get(ctx, nil)
}

// RequestRestart asks the cluster's entity for a rolling restart and returns
// the operation it admitted (or the one already queued or running).
func RequestRestart(ctx context.Context, c client.Client, cluster string, req workflows.RestartRequest) (workflows.Operation, error) {
	var op workflows.Operation
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflows.ClusterWorkflowID(cluster),
		UpdateName:   workflows.UpdateRequestRestart,
		Args:         []any{req},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return op, clusterError(cluster, "request restart", err)
	}
	if err := h.Get(ctx, &op); err != nil {
		return op, fmt.Errorf("cluster %s: restart refused: %w", cluster, err)
	}
	return op, nil
}

// ClusterStatus queries the cluster's entity.
func ClusterStatus(ctx context.Context, c client.Client, cluster string) (workflows.ClusterStatus, error) {
	var st workflows.ClusterStatus
	v, err := c.QueryWorkflow(ctx, workflows.ClusterWorkflowID(cluster), "", workflows.QueryStatus)
	if err != nil {
		return st, clusterError(cluster, "status", err)
	}
	if err := v.Get(&st); err != nil {
		return st, fmt.Errorf("cluster %s: decode status: %w", cluster, err)
	}
	return st, nil
}

// Progress reports an operation's state while FollowOperation waits.
type Progress struct {
	Operation workflows.Operation
	// Roll is the roll's own progress while it runs.
	Roll *workflows.RollProgress
}

// FollowOperation polls the entity until the operation finishes, calling
// onChange whenever what it reports changes, and returns the roll's result.
func FollowOperation(ctx context.Context, c client.Client, cluster, opID string, every time.Duration, onChange func(Progress)) (workflows.RollingRestartResult, error) {
	var last string
	var res workflows.RollingRestartResult
	for {
		st, err := ClusterStatus(ctx, c, cluster)
		if err != nil {
			return res, err
		}
		op, ok := st.Operation(opID)
		if !ok {
			return res, fmt.Errorf("cluster %s: operation %s is not known to the cluster entity", cluster, opID)
		}
		p := Progress{Operation: op}
		if op.Status == workflows.StatusRunning {
			if v, err := c.QueryWorkflow(ctx, op.WorkflowID, "", workflows.QueryProgress); err == nil {
				var rp workflows.RollProgress
				if v.Get(&rp) == nil {
					p.Roll = &rp
				}
			}
		}
		if key := fmt.Sprint(p.Operation.Status, p.Roll); key != last {
			last = key
			onChange(p)
		}
		switch op.Status {
		case workflows.StatusSucceeded:
			err := c.GetWorkflow(ctx, op.WorkflowID, "").Get(ctx, &res)
			return res, err
		case workflows.StatusFailed:
			return res, fmt.Errorf("cluster %s: %s %s failed: %s", cluster, op.Kind, op.ID, op.Error)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(every):
		}
	}
}

func clusterError(cluster, what string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("cluster %s: %w: no entity workflow %s is running (register the cluster first)", cluster, ErrUnknownCluster, workflows.ClusterWorkflowID(cluster))
	}
	return fmt.Errorf("cluster %s: %s: %w", cluster, what, err)
}

// ErrNothingRunning is returned when a cluster has no operation to decide on.
var ErrNothingRunning = errors.New("no operation is running")

// Decide answers the running roll of a cluster that paused for a human.
// It returns the pause the decision answered.
func Decide(ctx context.Context, c client.Client, cluster string, d workflows.Decision) (workflows.Pause, error) {
	var p workflows.Pause
	st, err := ClusterStatus(ctx, c, cluster)
	if err != nil {
		return p, err
	}
	if st.Running == nil {
		return p, fmt.Errorf("cluster %s: %w", cluster, ErrNothingRunning)
	}
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   st.Running.WorkflowID,
		UpdateName:   workflows.UpdateDecide,
		Args:         []any{d},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return p, fmt.Errorf("cluster %s: %s %s: %w", cluster, st.Running.Kind, st.Running.ID, err)
	}
	if err := h.Get(ctx, &p); err != nil {
		return p, fmt.Errorf("cluster %s: %s %s: decision refused: %w", cluster, st.Running.Kind, st.Running.ID, err)
	}
	return p, nil
}
