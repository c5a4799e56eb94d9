// Package entity is the typed client of kfleet's cluster entities
// (workflows.ClusterWorkflow, one per cluster): register a cluster, ask
// for an operation of any kind, follow it, answer it when it waits for a
// human, pause, resume and cancel, read and render a cluster's status, and
// submit operators' actions (chat, approvals, schedules). Refusals wrap
// fleet.ErrRefused or fleet.ErrUnknownCluster: nothing was started.
package entity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// RegisterOption tunes a cluster's entity when its registration starts it.
type RegisterOption func(*workflows.ClusterInput)

// WithEventBudget sets the history length past which the entity continues
// as new (default 5,000); tests make it small to see it happen.
func WithEventBudget(events int) RegisterOption {
	return func(in *workflows.ClusterInput) { in.EventBudget = events }
}

// RegisterCluster starts the cluster's entity workflow, or hands the spec to
// the running one, in one Update-with-Start call: registering twice is safe.
// Options apply only when this call starts the entity.
func RegisterCluster(ctx context.Context, c client.Client, spec fleet.ClusterSpec, opts ...RegisterOption) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	in := workflows.ClusterInput{Spec: spec}
	for _, o := range opts {
		o(&in)
	}
	start := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       workflows.ClusterWorkflowID(spec.ID),
		TaskQueue:                workflows.QueueFromEnv(),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            fmt.Sprintf("Cluster entity of **%s** (%d brokers)", spec.ID, len(spec.Brokers)),
		TypedSearchAttributes:    temporal.NewSearchAttributes(workflows.AttrClusterID.ValueSet(spec.ID)),
	}, workflows.ClusterWorkflow, in)
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

// Request asks the cluster's entity for an operation of any kind and
// returns the operation it admitted (or the one already queued or running
// that the request joins). A request that is invalid on its face (an
// unknown kind, malformed parameters, a bad version) is refused before
// Temporal is asked; one the entity's validator refuses (a broker not in
// the cluster, a cool-down) is refused by the entity: nothing started.
func Request(ctx context.Context, c client.Client, cluster string, req workflows.Request) (workflows.Operation, error) {
	var op workflows.Operation
	k, err := workflows.KindNamed(req.Kind)
	if err == nil {
		req, err = resolvePlan(req) // tenants.go
	}
	if err == nil {
		err = k.Check(req)
	}
	if err != nil {
		return op, fmt.Errorf("cluster %s: %s: %w: %w", cluster, req.Kind, fleet.ErrRefused, err)
	}
	return op, control(ctx, c, cluster, workflows.UpdateRequest, req, &op)
}

// ClusterStatus queries the cluster's entity.
func ClusterStatus(ctx context.Context, c client.Client, cluster string) (workflows.ClusterStatus, error) {
	var st workflows.ClusterStatus
	v, err := queryWaitingForPoller(ctx, c, workflows.ClusterWorkflowID(cluster), workflows.QueryStatus)
	if err != nil {
		return st, clusterError(cluster, "status", err)
	}
	if err := v.Get(&st); err != nil {
		return st, fmt.Errorf("cluster %s: decode status: %w", cluster, err)
	}
	return st, nil
}

// Progress is an operation as the entity last reported it and, while it
// runs, its own progress as its kind reads it (workflows.Kind.Progress).
type Progress struct {
	Operation workflows.Operation `json:"operation"`
	Lines     []string            `json:"lines,omitempty"`
}

// Follow polls the entity until operation opID finishes, calling onChange
// whenever what it reports changes, and returns the operation's workflow
// result R (a roll's per-broker times, an upgrade's two rolls) and the
// operation as the entity recorded its end (with its Outcome). An
// operation that failed or was cancelled is an error.
func Follow[R any](ctx context.Context, c client.Client, cluster, opID string, every time.Duration, onChange func(Progress)) (R, workflows.Operation, error) {
	var last workflows.Operation
	res, err := follow[R](ctx, c, cluster, opID, every, func(op workflows.Operation) Progress {
		last = op
		p := Progress{Operation: op}
		if op.Status == workflows.StatusRunning {
			p.Lines = OperationProgress(ctx, c, op)
		}
		return p
	}, onChange)
	return res, last, err
}

// FollowOperation is Follow for a rolling restart.
func FollowOperation(ctx context.Context, c client.Client, cluster, opID string, every time.Duration, onChange func(Progress)) (workflows.RollingRestartResult, error) {
	res, _, err := Follow[workflows.RollingRestartResult](ctx, c, cluster, opID, every, onChange)
	return res, err
}

// follow polls the entity until operation opID finishes. probe describes
// the operation (with its own progress while it runs); onChange sees every
// description that differs from the last. It returns the operation
// workflow's result R.
func follow[R, P any](ctx context.Context, c client.Client, cluster, opID string, every time.Duration, probe func(workflows.Operation) P, onChange func(P)) (R, error) {
	var last []byte
	var res R
	for {
		st, err := FollowStatus(ctx, c, cluster, every)
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

// FollowStatus is ClusterStatus for callers that follow an operation: a
// query needs a worker to answer it, so while a worker restarts (or
// Temporal does) queries time out; that is waited out, not reported, until
// ctx ends. An unknown cluster is reported at once.
func FollowStatus(ctx context.Context, c client.Client, cluster string, every time.Duration) (workflows.ClusterStatus, error) {
	for {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		st, err := ClusterStatus(qctx, c, cluster)
		cancel()
		if err == nil || errors.Is(err, fleet.ErrUnknownCluster) || ctx.Err() != nil {
			return st, err
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(every):
		}
	}
}

// queryPollerWait is how long a query waits for a worker to poll its task
// queue again: a worker restarting (a rollout, a crash, a loaded host)
// leaves it without pollers for seconds, and Temporal then refuses the
// query at once ("no poller seen for task queue recently").
const queryPollerWait = 15 * time.Second

// queryWaitingForPoller queries a workflow, asking again while Temporal
// refuses for want of a recent poller, within queryPollerWait and ctx.
func queryWaitingForPoller(ctx context.Context, c client.Client, workflowID, query string) (converter.EncodedValue, error) {
	deadline := time.Now().Add(queryPollerWait)
	for {
		v, err := c.QueryWorkflow(ctx, workflowID, "", query)
		var fp *serviceerror.FailedPrecondition
		if err == nil || !errors.As(err, &fp) || !strings.Contains(fp.Error(), "no poller seen") || time.Now().After(deadline) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func clusterError(cluster, what string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("cluster %s: %w: no entity workflow %s is running (register the cluster first)", cluster, fleet.ErrUnknownCluster, workflows.ClusterWorkflowID(cluster))
	}
	return fmt.Errorf("cluster %s: %s: %w", cluster, what, err)
}

// ErrCancelled is returned by a follow whose operation was cancelled.
var ErrCancelled = errors.New("cancelled")

// ErrNothingWaiting is returned when a cluster has no operation waiting
// for a decision; it is a refusal (errors.Is(err, fleet.ErrRefused)).
var ErrNothingWaiting = fmt.Errorf("%w: no operation is waiting for a human", fleet.ErrRefused)

// Decide answers an operation of a cluster that paused for a human: the
// operation opID (empty: the running maintenance operation, else the first
// urgent one that is waiting). Each kind names the workflows that may be
// waiting (a roll's own, an upgrade's phase rolls, a cleaner check's roll);
// the one paused takes the decision. It returns the pause the decision
// answered; an operation that is not waiting refuses (fleet.ErrRefused).
func Decide(ctx context.Context, c client.Client, cluster, opID string, d workflows.Decision) (workflows.Pause, error) {
	var p workflows.Pause
	st, err := ClusterStatus(ctx, c, cluster)
	if errors.Is(err, fleet.ErrUnknownCluster) {
		// No entity yet: the cluster may be being created.
		return DecideProvision(ctx, c, cluster, d)
	}
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
			return p, fmt.Errorf("cluster %s: operation %q is not running: %w", cluster, opID, ErrNothingWaiting)
		}
	}
	var refusals []error
	for _, op := range candidates {
		k, err := workflows.KindNamed(op.Kind)
		if err != nil {
			refusals = append(refusals, err)
			continue
		}
		targets := k.DecisionWorkflows(op)
		switch {
		case len(targets) == 0:
			refusals = append(refusals, fmt.Errorf("%s %s never waits for a human", op.Kind, op.ID))
		case !slices.Contains(k.Decisions(), d.Action):
			refusals = append(refusals, fmt.Errorf("%s %s takes %s, not %s", op.Kind, op.ID, strings.Join(k.Decisions(), ", "), d.Action))
			targets = nil
		}
		for _, target := range targets {
			h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
				WorkflowID:   target,
				UpdateName:   workflows.UpdateDecide,
				Args:         []any{d},
				WaitForStage: client.WorkflowUpdateStageCompleted,
			})
			var nf *serviceerror.NotFound
			switch {
			case errors.As(err, &nf):
				continue // a phase not started yet, or closed
			case err != nil:
				return p, fmt.Errorf("cluster %s: %s %s: %w", cluster, op.Kind, op.ID, err)
			}
			if err := h.Get(ctx, &p); err != nil {
				refusals = append(refusals, fmt.Errorf("%s %s: %w", op.Kind, op.ID, err))
				continue
			}
			return p, nil
		}
	}
	if len(refusals) == 0 {
		return p, fmt.Errorf("cluster %s: %w", cluster, ErrNothingWaiting)
	}
	return p, fmt.Errorf("cluster %s: decision %w: %w", cluster, fleet.ErrRefused, errors.Join(refusals...))
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
//
// Under a storm of requests (the admin lane's tenants asking at once) an
// update may wait longer than the SDK's 60 s call to be admitted; it is
// then asked again under the same update id, which Temporal deduplicates,
// until ctx ends: the request neither fails for the crowd nor runs twice.
func control(ctx context.Context, c client.Client, cluster, update string, arg, answer any) error {
	opts := client.UpdateWorkflowOptions{
		UpdateID:     uuid.NewString(),
		WorkflowID:   workflows.ClusterWorkflowID(cluster),
		UpdateName:   update,
		Args:         []any{arg},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	}
	h, err := c.UpdateWorkflow(ctx, opts)
	var slow *client.WorkflowUpdateServiceTimeoutOrCanceledError
	for err != nil && errors.As(err, &slow) && ctx.Err() == nil {
		h, err = c.UpdateWorkflow(ctx, opts)
	}
	if err == nil {
		err = h.Get(ctx, answer)
	}
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &appErr):
		return fmt.Errorf("cluster %s: %s: %w: %s", cluster, update, fleet.ErrRefused, appErr.Message())
	default:
		return clusterError(cluster, update, err)
	}
}
