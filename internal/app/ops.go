package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
	return requestOperation(ctx, c, cluster, workflows.UpdateRequestRestart, req)
}

// requestOperation sends an operation request update to the cluster's
// entity. A request its validator refuses is ErrRefused (nothing started).
func requestOperation(ctx context.Context, c client.Client, cluster, update string, req any) (workflows.Operation, error) {
	var op workflows.Operation
	return op, control(ctx, c, cluster, update, req, &op)
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
	return follow[workflows.RollingRestartResult](ctx, c, cluster, opID, every, func(op workflows.Operation) Progress {
		p := Progress{Operation: op}
		if op.Status == workflows.StatusRunning {
			p.Roll = rollProgress(ctx, c, op.WorkflowID)
		}
		return p
	}, onChange)
}

// WaitOperation polls the entity until operation opID finishes, calling
// onChange whenever the entity's record of it changes, and returns that
// record (with its Outcome). An operation that failed or was cancelled is
// an error, as in FollowOperation.
func WaitOperation(ctx context.Context, c client.Client, cluster, opID string, every time.Duration, onChange func(workflows.Operation)) (workflows.Operation, error) {
	var last workflows.Operation
	_, err := follow[json.RawMessage](ctx, c, cluster, opID, every, func(op workflows.Operation) workflows.Operation {
		last = op
		return op
	}, onChange)
	return last, err
}

// rollProgress queries a roll's progress; nil when it cannot be had now.
func rollProgress(ctx context.Context, c client.Client, workflowID string) *workflows.RollProgress {
	v, err := c.QueryWorkflow(ctx, workflowID, "", workflows.QueryProgress)
	if err != nil {
		return nil
	}
	var rp workflows.RollProgress
	if v.Get(&rp) != nil {
		return nil
	}
	return &rp
}

// follow polls the entity until operation opID finishes. probe describes
// the operation (with its own progress while it runs); onChange sees every
// description that differs from the last. It returns the operation
// workflow's result R.
func follow[R, P any](ctx context.Context, c client.Client, cluster, opID string, every time.Duration, probe func(workflows.Operation) P, onChange func(P)) (R, error) {
	var last []byte
	var res R
	for {
		st, err := followStatus(ctx, c, cluster, every)
		if err != nil {
			return res, err
		}
		op, ok := st.Operation(opID)
		if !ok {
			return res, fmt.Errorf("cluster %s: operation %s is not known to the cluster entity", cluster, opID)
		}
		p := probe(op)
		if key, _ := json.Marshal(p); !bytes.Equal(key, last) {
			last = key
			onChange(p)
		}
		switch op.Status {
		case workflows.StatusSucceeded:
			err := c.GetWorkflow(ctx, op.WorkflowID, "").Get(ctx, &res)
			return res, err
		case workflows.StatusFailed:
			return res, fmt.Errorf("cluster %s: %s %s failed: %s", cluster, op.Kind, op.ID, op.Error)
		case workflows.StatusCancelled:
			return res, fmt.Errorf("cluster %s: %s %s: %w by %s", cluster, op.Kind, op.ID, ErrCancelled, op.CancelledBy)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(every):
		}
	}
}

// followStatus is ClusterStatus for callers that follow an operation: a
// query needs a worker to answer it, so while a worker restarts (or
// Temporal does) queries time out; that is waited out, not reported, until
// ctx ends. An unknown cluster is reported at once.
func followStatus(ctx context.Context, c client.Client, cluster string, every time.Duration) (workflows.ClusterStatus, error) {
	for {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := ClusterStatus(qctx, c, cluster)
		cancel()
		if err == nil || errors.Is(err, ErrUnknownCluster) || ctx.Err() != nil {
			return st, err
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
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

// ErrCancelled is returned by a follow whose operation was cancelled.
var ErrCancelled = errors.New("cancelled")

// ErrNothingRunning is returned when a cluster has no operation to decide on.
var ErrNothingRunning = errors.New("no operation is running")

// Decide answers an operation of a cluster that paused for a human: the
// operation opID (empty: the running roll, else the first running
// recovery or expansion that is waiting). It returns the pause the
// decision answered. An operation that is not waiting refuses (ErrRefused).
func Decide(ctx context.Context, c client.Client, cluster, opID string, d workflows.Decision) (workflows.Pause, error) {
	var p workflows.Pause
	st, err := ClusterStatus(ctx, c, cluster)
	if err != nil {
		return p, err
	}
	var candidates []workflows.Operation
	if st.Running != nil {
		candidates = append(candidates, *st.Running)
	}
	candidates = append(candidates, st.Urgent...)
	if opID != "" {
		candidates = slices.DeleteFunc(candidates, func(op workflows.Operation) bool { return op.ID != opID })
		if len(candidates) == 0 {
			return p, fmt.Errorf("cluster %s: operation %q is not running: %w", cluster, opID, ErrNothingRunning)
		}
	}
	if len(candidates) == 0 {
		return p, fmt.Errorf("cluster %s: %w", cluster, ErrNothingRunning)
	}
	var refusals []error
	for _, op := range candidates {
		target, err := decisionTarget(ctx, c, cluster, op)
		if err != nil {
			refusals = append(refusals, err)
			continue
		}
		h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
			WorkflowID:   target,
			UpdateName:   workflows.UpdateDecide,
			Args:         []any{d},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		})
		if err != nil {
			return p, fmt.Errorf("cluster %s: %s %s: %w", cluster, op.Kind, op.ID, err)
		}
		if err := h.Get(ctx, &p); err != nil {
			refusals = append(refusals, fmt.Errorf("%s %s: %w", op.Kind, op.ID, err))
			continue
		}
		return p, nil
	}
	return p, fmt.Errorf("cluster %s: decision %w: %w", cluster, ErrRefused, errors.Join(refusals...))
}

// decisionTarget is the workflow that takes op's decisions: a roll's own,
// an upgrade's or a cleaner check's running roll, a recovery's own.
func decisionTarget(ctx context.Context, c client.Client, cluster string, op workflows.Operation) (string, error) {
	switch op.Kind {
	case workflows.OpRollingUpgrade:
		up, err := upgradeProgress(ctx, c, op.WorkflowID)
		if err != nil {
			return "", fmt.Errorf("cluster %s: %s %s: %w", cluster, op.Kind, op.ID, err)
		}
		if up.RollWorkflowID == "" {
			return "", fmt.Errorf("cluster %s: %s %s is between rolls: %w", cluster, op.Kind, op.ID, ErrNothingRunning)
		}
		return up.RollWorkflowID, nil
	case workflows.OpCleanerHealth:
		return workflows.CleanerRestartWorkflowID(op.WorkflowID), nil
	}
	return op.WorkflowID, nil
}

// ErrRefused is returned when the cluster's entity refuses a request (bad
// versions, a conflicting operation): nothing was started.
var ErrRefused = errors.New("request refused")

// RequestUpgrade asks the cluster's entity for a rolling upgrade and returns
// the operation it admitted (or the same upgrade already queued or running).
// A request that is invalid on its face is refused before Temporal is asked.
func RequestUpgrade(ctx context.Context, c client.Client, cluster string, req workflows.UpgradeRequest) (workflows.Operation, error) {
	var op workflows.Operation
	if err := req.Validate(); err != nil {
		return op, fmt.Errorf("cluster %s: upgrade: %w: %w", cluster, ErrRefused, err)
	}
	return requestOperation(ctx, c, cluster, workflows.UpdateRequestUpgrade, req)
}

// UpgradeProgress reports an upgrade's state while FollowUpgrade waits.
type UpgradeProgress struct {
	Operation workflows.Operation
	// Upgrade is the upgrade's own progress (phase, roll) while it runs.
	Upgrade *workflows.UpgradeProgress
	// Roll is the running phase's roll progress.
	Roll *workflows.RollProgress
}

// FollowUpgrade polls the entity until the upgrade finishes, calling
// onChange whenever what it reports changes, and returns the upgrade's
// result.
func FollowUpgrade(ctx context.Context, c client.Client, cluster, opID string, every time.Duration, onChange func(UpgradeProgress)) (workflows.RollingUpgradeResult, error) {
	return follow[workflows.RollingUpgradeResult](ctx, c, cluster, opID, every, func(op workflows.Operation) UpgradeProgress {
		p := UpgradeProgress{Operation: op}
		if op.Status != workflows.StatusRunning {
			return p
		}
		if up, err := upgradeProgress(ctx, c, op.WorkflowID); err == nil {
			p.Upgrade = &up
			if up.RollWorkflowID != "" {
				p.Roll = rollProgress(ctx, c, up.RollWorkflowID)
			}
		}
		return p
	}, onChange)
}

func upgradeProgress(ctx context.Context, c client.Client, workflowID string) (workflows.UpgradeProgress, error) {
	var up workflows.UpgradeProgress
	v, err := c.QueryWorkflow(ctx, workflowID, "", workflows.QueryProgress)
	if err != nil {
		return up, fmt.Errorf("query %s: %w", workflowID, err)
	}
	if err := v.Get(&up); err != nil {
		return up, fmt.Errorf("decode progress of %s: %w", workflowID, err)
	}
	return up, nil
}

// Pause stops the cluster's entity from starting queued operations; the
// running one goes on. It returns the pause in force.
func Pause(ctx context.Context, c client.Client, cluster string, req workflows.PauseRequest) (workflows.PauseState, error) {
	var p workflows.PauseState
	return p, control(ctx, c, cluster, workflows.UpdatePause, req, &p)
}

// Resume lifts the cluster's pause and returns the pause it lifted.
func Resume(ctx context.Context, c client.Client, cluster string, req workflows.ResumeRequest) (workflows.PauseState, error) {
	var p workflows.PauseState
	return p, control(ctx, c, cluster, workflows.UpdateResume, req, &p)
}

// Cancel removes a queued operation, or asks the running one to stop (its
// workflow is cancelled; FollowOperation tells when it ended). It returns
// the operation as the entity answered.
func Cancel(ctx context.Context, c client.Client, cluster string, req workflows.CancelRequest) (workflows.Operation, error) {
	var op workflows.Operation
	return op, control(ctx, c, cluster, workflows.UpdateCancel, req, &op)
}

// control sends an update to the cluster's entity (a request, a control)
// and waits for its answer; a validator's rejection (resume when not
// paused, a broker not in the cluster, ...) is ErrRefused: nothing changed.
func control(ctx context.Context, c client.Client, cluster, update string, arg, answer any) error {
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflows.ClusterWorkflowID(cluster),
		UpdateName:   update,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, answer)
	}
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &appErr):
		return fmt.Errorf("cluster %s: %s: %w: %s", cluster, update, ErrRefused, appErr.Message())
	default:
		return clusterError(cluster, update, err)
	}
}
