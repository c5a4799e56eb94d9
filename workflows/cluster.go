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
}

// ClusterState is the entity's operational state.
type ClusterState struct {
	Running *Operation  `json:"running,omitempty"`
	Queue   []Operation `json:"queue,omitempty"`
	// History keeps the most recent finished operations, newest last.
	History []Operation `json:"history,omitempty"`
	// Seq numbers operations within a run of the entity.
	Seq int `json:"seq"`
}

// Operation is one risky operation admitted by the entity.
type Operation struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	WorkflowID  string    `json:"workflowId"`
	RequestedBy string    `json:"requestedBy"`
	RequestedAt time.Time `json:"requestedAt"`
	// Brokers restricts the operation; empty means every broker.
	Brokers    []int32   `json:"brokers,omitempty"`
	Status     string    `json:"status"`
	Error      string    `json:"error,omitempty"`
	StartedAt  time.Time `json:"startedAt,omitzero"`
	FinishedAt time.Time `json:"finishedAt,omitzero"`
	// Existing is set in an update's answer when the request joined an
	// operation already queued or running instead of adding one.
	Existing bool `json:"existing,omitempty"`
}

// Operation statuses.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// RestartRequest asks the entity for a rolling restart.
type RestartRequest struct {
	RequestedBy string  `json:"requestedBy"`
	Brokers     []int32 `json:"brokers,omitempty"`
}

// ClusterStatus is what the status query answers.
type ClusterStatus struct {
	Spec fleet.ClusterSpec `json:"spec"`
	ClusterState
}

const (
	historyKept = 20
	// eventBudget continues-as-new well before Temporal's 10,240-event
	// warning, whatever the server suggests.
	eventBudget = 5000
)

// ClusterWorkflow is the durable entity of one managed cluster (ID
// cluster/<id>). Every risky operation enters through its updates and runs
// as a child workflow, one at a time, in the order admitted. A request for an
// operation already queued or running is answered with that operation.
func ClusterWorkflow(ctx workflow.Context, in ClusterInput) error {
	spec := in.Spec
	st := ClusterState{}
	if in.State != nil {
		st = *in.State
	}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (ClusterStatus, error) {
		return ClusterStatus{Spec: spec, ClusterState: st}, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateSetSpec,
		func(ctx workflow.Context, s fleet.ClusterSpec) (fleet.ClusterSpec, error) {
			spec = s
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
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRequestRestart,
		func(ctx workflow.Context, req RestartRequest) (Operation, error) {
			if op, ok := st.find(OpRollingRestart); ok {
				op.Existing = true
				return op, nil
			}
			st.Seq++
			// The run id's tail is its random part (its head is a
			// timestamp), so ids stay unique across re-registrations.
			runID := workflow.GetInfo(ctx).WorkflowExecution.RunID
			id := fmt.Sprintf("%s-%d", runID[max(0, len(runID)-8):], st.Seq)
			op := Operation{
				ID:          id,
				Kind:        OpRollingRestart,
				WorkflowID:  OperationWorkflowID(spec.ID, "roll", id),
				RequestedBy: req.RequestedBy,
				RequestedAt: workflow.Now(ctx),
				Brokers:     req.Brokers,
				Status:      StatusQueued,
			}
			st.Queue = append(st.Queue, op)
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
			return nil
		}},
	); err != nil {
		return err
	}

	for {
		if err := workflow.Await(ctx, func() bool { return len(st.Queue) > 0 || shouldContinueAsNew(ctx) }); err != nil {
			return err
		}
		if len(st.Queue) == 0 {
			// Idle and the history is long: drain handlers, carry the state.
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return err
			}
			if len(st.Queue) == 0 {
				return workflow.NewContinueAsNewError(ctx, ClusterWorkflow, ClusterInput{Spec: spec, State: &st})
			}
		}
		op := st.Queue[0]
		st.Queue = st.Queue[1:]
		op.Status, op.StartedAt = StatusRunning, workflow.Now(ctx)
		st.Running = &op
		err := runOperation(ctx, spec, op)
		op.FinishedAt = workflow.Now(ctx)
		op.Status = StatusSucceeded
		if err != nil {
			op.Status, op.Error = StatusFailed, err.Error()
			workflow.GetLogger(ctx).Error("operation failed", "Cluster", spec.ID, "Operation", op.ID, "Error", err)
		}
		st.Running = nil
		st.History = append(st.History, op)
		if len(st.History) > historyKept {
			st.History = st.History[len(st.History)-historyKept:]
		}
	}
}

// runOperation runs op as a child workflow and waits for it.
func runOperation(ctx workflow.Context, spec fleet.ClusterSpec, op Operation) error {
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
	in := RollingRestartInput{Spec: spec, OperationID: op.ID, RequestedBy: op.RequestedBy, Brokers: op.Brokers}
	return workflow.ExecuteChildWorkflow(cctx, RollingRestartWorkflow, in).Get(ctx, nil)
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

func shouldContinueAsNew(ctx workflow.Context) bool {
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() > eventBudget
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
