package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/internal/fleet"
)

// ClusterInput starts (or continues) a cluster's entity workflow.
type ClusterInput struct {
	Spec fleet.ClusterSpec `json:"spec"`
	// State is carried over continue-as-new; nil on first start.
	State *ClusterState `json:"state,omitempty"`
	// EventBudget is the history length past which the entity continues
	// as new (default 5,000, well before Temporal's 10,240-event warning);
	// tests make it small.
	EventBudget int `json:"eventBudget,omitempty"`
}

// ClusterState is the entity's operational state.
type ClusterState struct {
	Running *Operation  `json:"running,omitempty"`
	Queue   []Operation `json:"queue,omitempty"`
	// History keeps the most recent finished operations, newest last.
	History []Operation `json:"history,omitempty"`
	// Seq numbers operations within a run of the entity.
	Seq int `json:"seq"`
	// Paused is set while no queued operation may start.
	Paused *PauseState `json:"paused,omitempty"`
	// Touching are the brokers the running operation has taken down
	// (BrokerTouch signals): their registration vanishing is no loss.
	Touching []BrokerTouch `json:"touching,omitempty"`
	// Losses are brokers lost without kfleet touching them, newest last
	// (bounded; open ones are kept).
	Losses []BrokerLoss `json:"losses,omitempty"`
	// Watch is what the broker watch last saw; nil until its first answer.
	Watch *WatchState `json:"watch,omitempty"`
}

// Operation is one risky operation admitted by the entity.
type Operation struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	WorkflowID  string    `json:"workflowId"`
	RequestedBy string    `json:"requestedBy"`
	RequestedAt time.Time `json:"requestedAt"`
	// Brokers restricts the operation; empty means every broker.
	Brokers []int32 `json:"brokers,omitempty"`
	// MaxBatch is the roll's batch size (RestartRequest.MaxBatch).
	MaxBatch   int       `json:"maxBatch,omitempty"`
	Status     string    `json:"status"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Existing is set in an update's answer when the request joined an
	// operation already queued or running instead of adding one.
	Existing bool `json:"existing,omitempty"`
	// CancelledBy is who cancelled the operation (the cancel update), and
	// why; set on the running one as soon as its cancellation is asked.
	CancelledBy  string `json:"cancelledBy,omitempty"`
	CancelReason string `json:"cancelReason,omitempty"`
	// Upgrade holds the versions of a rolling upgrade (rolling_upgrade.go).
	Upgrade *Upgrade `json:"upgrade,omitempty"`
}

// Operation statuses.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// RestartRequest asks the entity for a rolling restart.
type RestartRequest struct {
	RequestedBy string  `json:"requestedBy"`
	Brokers     []int32 `json:"brokers,omitempty"`
	// MaxBatch lets brokers that share no partition restart together;
	// 0 or 1 is one at a time (see RollingRestartInput.MaxBatch).
	MaxBatch int `json:"maxBatch,omitempty"`
}

// ClusterStatus is what the status query answers.
type ClusterStatus struct {
	Spec fleet.ClusterSpec `json:"spec"`
	ClusterState
}

const (
	historyKept = 20
	// defaultEventBudget continues-as-new well before Temporal's
	// 10,240-event warning, whatever the server suggests.
	defaultEventBudget = 5000
	// entityVersion versions the entity's commands (workflow.GetVersion):
	// 1 runs the broker watch and continues as new with queued work.
	// Runs recorded before it (DefaultVersion) keep neither until their
	// next continue-as-new.
	entityVersionChange = "cluster-entity"
	entityVersion       = 1
)

// ClusterWorkflow is the durable entity of one managed cluster (ID
// cluster/<id>). Every risky operation enters through its updates and runs
// as a child workflow, one at a time, in the order admitted. A request for an
// operation already queued or running is answered with that operation.
// Operators pause (no queued operation starts), resume, and cancel a queued
// or running operation by update.
//
// Beside the operations it watches the cluster's broker registrations in
// ZooKeeper (brokerWatch): a broker that leaves while no operation of
// kfleet touches it is recorded as a loss, once.
//
// Past its event budget it continues as new, carrying its state and queue,
// once no operation runs and every update handler has finished.
func ClusterWorkflow(ctx workflow.Context, in ClusterInput) error {
	spec := in.Spec
	st := ClusterState{}
	if in.State != nil {
		st = *in.State
	}
	budget := in.EventBudget
	if budget <= 0 {
		budget = defaultEventBudget
	}
	version := workflow.GetVersion(ctx, entityVersionChange, workflow.DefaultVersion, entityVersion)
	changed := func(ctx workflow.Context) { setDetails(ctx, spec, st) }
	watch := newBrokerWatch(ctx, &spec, &st, version >= 1, changed)
	ctl := &controls{spec: &spec, st: &st, changed: changed}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (ClusterStatus, error) {
		return ClusterStatus{Spec: spec, ClusterState: st}, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateSetSpec,
		func(ctx workflow.Context, s fleet.ClusterSpec) (fleet.ClusterSpec, error) {
			old := spec
			spec = s
			watch.respec(old)
			return spec, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, s fleet.ClusterSpec) error {
			if s.ID != spec.ID {
				return fmt.Errorf("spec is for cluster %q, this entity is cluster %q", s.ID, spec.ID)
			}
			return s.Validate()
		}},
	); err != nil {
		return err
	}
	if err := setUpgradeHandler(ctx, &spec, &st); err != nil { // rolling_upgrade.go
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRequestRestart,
		func(ctx workflow.Context, req RestartRequest) (Operation, error) {
			if op, ok := st.find(OpRollingRestart); ok {
				op.Existing = true
				return op, nil
			}
			op := st.newOperation(ctx, spec.ID, OpRollingRestart, "roll", req.RequestedBy)
			op.Brokers, op.MaxBatch = req.Brokers, req.MaxBatch
			st.Queue = append(st.Queue, op)
			changed(ctx)
			return op, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, req RestartRequest) error {
			if req.RequestedBy == "" {
				return errors.New("requestedBy is required: say who asks for the restart")
			}
			for _, b := range req.Brokers {
				if _, ok := spec.Broker(b); !ok {
					return fmt.Errorf("broker %d is not in cluster %s (brokers %v)", b, spec.ID, spec.BrokerIDs())
				}
			}
			if req.MaxBatch < 0 || req.MaxBatch > len(spec.Brokers) {
				return fmt.Errorf("maxBatch %d: want 0..%d (the cluster's broker count)", req.MaxBatch, len(spec.Brokers))
			}
			return nil
		}},
	); err != nil {
		return err
	}

	if err := ctl.register(ctx); err != nil {
		return err
	}
	workflow.Go(ctx, watch.run)
	changed(ctx)

	// Runs recorded before entityVersion continued as new only when idle.
	carry := func() bool { return len(st.Queue) == 0 || st.Paused != nil || version >= 1 }
	for {
		if err := workflow.Await(ctx, func() bool { return st.startable() || shouldContinueAsNew(ctx, budget) }); err != nil {
			return err
		}
		// Never while an operation runs (this loop is waiting for it
		// then): the history is long, drain handlers, carry the state.
		if shouldContinueAsNew(ctx, budget) && carry() {
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return err
			}
			if carry() {
				watch.stop()
				watch.drainTouches(ctx)
				workflow.GetLogger(ctx).Info("continuing as new", "Cluster", spec.ID, "Queued", len(st.Queue), "Paused", st.Paused != nil)
				return workflow.NewContinueAsNewError(ctx, ClusterWorkflow, ClusterInput{Spec: spec, State: &st, EventBudget: in.EventBudget})
			}
		}
		op := st.Queue[0]
		st.Queue = st.Queue[1:]
		op.Status, op.StartedAt = StatusRunning, workflow.Now(ctx)
		st.Running = &op
		opCtx, cancel := workflow.WithCancel(ctx)
		ctl.cancelRunning = cancel
		changed(ctx)
		err := runOperation(opCtx, spec, op)
		ctl.cancelRunning = nil
		op.FinishedAt = workflow.Now(ctx)
		switch {
		case err == nil:
			op.Status = StatusSucceeded
		case op.CancelledBy != "":
			op.Status, op.Error = StatusCancelled, err.Error()
			workflow.GetLogger(ctx).Warn("operation cancelled", "Cluster", spec.ID, "Operation", op.ID, "By", op.CancelledBy, "Error", err)
		default:
			op.Status, op.Error = StatusFailed, err.Error()
			workflow.GetLogger(ctx).Error("operation failed", "Cluster", spec.ID, "Operation", op.ID, "Error", err)
		}
		st.Running = nil
		watch.release(op)
		st.record(op)
		changed(ctx)
	}
}

// runOperation runs op as a child workflow and waits for it.
func runOperation(ctx workflow.Context, spec fleet.ClusterSpec, op Operation) error {
	if op.Kind == OpRollingUpgrade {
		return runUpgrade(ctx, spec, op) // rolling_upgrade.go
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:    op.WorkflowID,
		StaticSummary: fmt.Sprintf("Rolling restart of **%s** (%d brokers), requested by %s", spec.ID, len(spec.Brokers), op.RequestedBy),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			AttrClusterID.ValueSet(spec.ID),
			AttrOperation.ValueSet(op.Kind),
		),
		// The entity continues-as-new only when idle, but a terminated
		// entity must not leave a roll half-done: the roll finishes on its own.
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
	})
	in := RollingRestartInput{Spec: spec, OperationID: op.ID, RequestedBy: op.RequestedBy, Brokers: op.Brokers, MaxBatch: op.MaxBatch}
	return workflow.ExecuteChildWorkflow(cctx, RollingRestartWorkflow, in).Get(ctx, nil)
}

// newOperation numbers a new queued operation of kind. Its id ends the
// entity's run id's tail, the random part (the head is a timestamp), so ids
// stay unique across re-registrations; slug names it in the workflow id.
func (st *ClusterState) newOperation(ctx workflow.Context, cluster, kind, slug, requestedBy string) Operation {
	st.Seq++
	runID := workflow.GetInfo(ctx).WorkflowExecution.RunID
	id := fmt.Sprintf("%s-%d", runID[max(0, len(runID)-8):], st.Seq)
	return Operation{
		ID:          id,
		Kind:        kind,
		WorkflowID:  OperationWorkflowID(cluster, slug, id),
		RequestedBy: requestedBy,
		RequestedAt: workflow.Now(ctx),
		Status:      StatusQueued,
	}
}

// find returns the queued or running operation of kind.
func (st ClusterState) find(kind string) (Operation, bool) {
	if st.Running != nil && st.Running.Kind == kind {
		return *st.Running, true
	}
	for _, op := range st.Queue {
		if op.Kind == kind {
			return op, true
		}
	}
	return Operation{}, false
}

func shouldContinueAsNew(ctx workflow.Context, budget int) bool {
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() > budget
}

// Operation finds an operation by id among running, queued and recent ones.
func (st ClusterState) Operation(id string) (Operation, bool) {
	if st.Running != nil && st.Running.ID == id {
		return *st.Running, true
	}
	for _, ops := range [][]Operation{st.Queue, st.History} {
		for _, op := range ops {
			if op.ID == id {
				return op, true
			}
		}
	}
	return Operation{}, false
}
