package workflows

import (
	"errors"
	"fmt"
	"slices"
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
	// Urgent are the urgent operations running beside Running (recoveries,
	// volume expansions; see urgent_lane.go).
	Urgent []Operation `json:"urgent,omitempty"`
	// Health is what the health loop knows (health_loop.go).
	Health *HealthState `json:"health,omitempty"`
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
	// Reason is why kfleet itself asked for the operation (a health
	// finding, a broker loss).
	Reason string `json:"reason,omitempty"`
	// Outcome summarises what a finished operation did.
	Outcome string `json:"outcome,omitempty"`
	// LostAt is when a recovery's broker was lost.
	LostAt time.Time `json:"lostAt,omitzero"`
	// Requested marks an expansion an operator asked for: it grows the
	// volume even below the threshold.
	Requested bool `json:"requested,omitempty"`
	// GrowthBytesPerSec and CooldownUntil are a volume expansion's inputs.
	GrowthBytesPerSec float64   `json:"growthBytesPerSec,omitempty"`
	CooldownUntil     time.Time `json:"cooldownUntil,omitzero"`
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
	// 1 runs the broker watch and continues as new with queued work; 2
	// adds the health loop and the urgent lane (recoveries, volume
	// expansions). Runs recorded before a version keep its predecessor's
	// behaviour until their next continue-as-new.
	entityVersionChange = "cluster-entity"
	entityVersion       = 2
)

// ClusterWorkflow is the durable entity of one managed cluster (ID
// cluster/<id>). Every risky operation enters through its updates and runs
// as a child workflow, in the order admitted: maintenance (rolls, upgrades,
// cleaner restarts) one at a time, urgent operations (recoveries, volume
// expansions) beside it, at most one per broker (urgent_lane.go); no
// maintenance starts while a recovery is queued or running. A request for
// an operation already queued or running is answered with that operation.
// Operators pause (no queued operation starts), resume, and cancel a queued
// or running operation by update.
//
// Beside the operations it watches the cluster's broker registrations in
// ZooKeeper (brokerWatch): a broker that leaves while no operation of
// kfleet touches it is a loss, recovered once if it does not come back
// within a grace. A health loop (healthLoop) turns disk, cleaner and heap
// findings into operations.
//
// Past its event budget it continues as new, carrying its state and queue,
// once no operation runs and every update handler has finished.
func ClusterWorkflow(ctx workflow.Context, in ClusterInput) error {
	e := &entity{spec: in.Spec}
	if in.State != nil {
		e.st = *in.State
	}
	budget := in.EventBudget
	if budget <= 0 {
		budget = defaultEventBudget
	}
	version := workflow.GetVersion(ctx, entityVersionChange, workflow.DefaultVersion, entityVersion)
	spec, st := &e.spec, &e.st
	e.watch = newBrokerWatch(ctx, spec, st, version >= 1, e.changed)
	e.ctl = &controls{spec: spec, st: st, changed: e.changed, cancelUrgent: map[string]workflow.CancelFunc{}}
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (ClusterStatus, error) {
		return ClusterStatus{Spec: *spec, ClusterState: *st}, nil
	}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateSetSpec,
		func(ctx workflow.Context, s fleet.ClusterSpec) (fleet.ClusterSpec, error) {
			old := *spec
			*spec = s
			e.watch.respec(old)
			return *spec, nil
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
	if err := setUpgradeHandler(ctx, spec, st); err != nil { // rolling_upgrade.go
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRequestRestart,
		func(ctx workflow.Context, req RestartRequest) (Operation, error) {
			if op, ok := st.covering(OpRollingRestart, req.Brokers); ok {
				op.Existing = true
				return op, nil
			}
			op := st.newOperation(ctx, spec.ID, OpRollingRestart, "roll", req.RequestedBy)
			op.Brokers, op.MaxBatch = req.Brokers, req.MaxBatch
			st.Queue = append(st.Queue, op)
			e.changed(ctx)
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

	if err := e.ctl.register(ctx); err != nil {
		return err
	}
	if err := e.registerRequests(ctx); err != nil { // cluster_requests.go
		return err
	}
	workflow.Go(ctx, e.watch.run)
	if version >= 2 {
		e.health = &healthLoop{e: e}
		e.lane = &urgentLane{e: e}
		workflow.Go(ctx, e.health.run)
		workflow.Go(ctx, e.lane.run)
	}
	e.changed(ctx)

	// Runs recorded before entityVersion 1 continued as new only when idle.
	carry := func() bool {
		return (len(st.Queue) == 0 || st.Paused != nil || version >= 1) && len(st.Urgent) == 0
	}
	for {
		if err := workflow.Await(ctx, func() bool { return st.nextMaintenance() >= 0 || shouldContinueAsNew(ctx, budget) && carry() }); err != nil {
			return err
		}
		// Never while an operation runs (this loop is waiting for it
		// then): the history is long, drain handlers, carry the state.
		if shouldContinueAsNew(ctx, budget) && carry() {
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
				return err
			}
			if carry() {
				e.stop()
				e.watch.drainTouches(ctx)
				workflow.GetLogger(ctx).Info("continuing as new", "Cluster", spec.ID, "Queued", len(st.Queue), "Paused", st.Paused != nil)
				return workflow.NewContinueAsNewError(ctx, ClusterWorkflow, ClusterInput{Spec: *spec, State: st, EventBudget: in.EventBudget})
			}
		}
		i := st.nextMaintenance()
		if i < 0 {
			continue
		}
		op := st.Queue[i]
		st.Queue = slices.Delete(st.Queue, i, i+1)
		op.Status, op.StartedAt = StatusRunning, workflow.Now(ctx)
		st.Running = &op
		opCtx, cancel := workflow.WithCancel(ctx)
		e.ctl.cancelRunning = cancel
		e.changed(ctx)
		res, err := runOperation(opCtx, *spec, op)
		e.ctl.cancelRunning = nil
		done := *st.Running
		st.Running = nil
		e.finish(ctx, done, res, err)
	}
}

// entity is a ClusterWorkflow run's state and parts.
type entity struct {
	spec   fleet.ClusterSpec
	st     ClusterState
	watch  *brokerWatch
	ctl    *controls
	health *healthLoop // nil before entity version 2
	lane   *urgentLane // nil before entity version 2
}

// changed refreshes the entity's current details in the UI.
func (e *entity) changed(ctx workflow.Context) { setDetails(ctx, e.spec, e.st) }

// enqueue numbers and queues an operation kfleet itself asks for.
func (e *entity) enqueue(ctx workflow.Context, op Operation) Operation {
	slug := op.Kind
	if op.Kind == OpRollingRestart {
		slug = "roll"
	}
	queued := e.st.newOperation(ctx, e.spec.ID, op.Kind, slug, op.RequestedBy)
	op.ID, op.WorkflowID, op.RequestedAt, op.Status = queued.ID, queued.WorkflowID, queued.RequestedAt, queued.Status
	e.st.Queue = append(e.st.Queue, op)
	e.changed(ctx)
	return op
}

// finish records how an operation ended, lets go of what it held and
// remembers what it taught (a volume's cool-down).
func (e *entity) finish(ctx workflow.Context, op Operation, res operationResult, err error) {
	op.FinishedAt, op.Outcome = workflow.Now(ctx), res.Outcome
	switch {
	case err == nil:
		op.Status = StatusSucceeded
	case op.CancelledBy != "":
		op.Status, op.Error = StatusCancelled, err.Error()
		workflow.GetLogger(ctx).Warn("operation cancelled", "Cluster", e.spec.ID, "Operation", op.ID, "By", op.CancelledBy, "Error", err)
	default:
		op.Status, op.Error = StatusFailed, err.Error()
		workflow.GetLogger(ctx).Error("operation failed", "Cluster", e.spec.ID, "Operation", op.ID, "Error", err)
	}
	countOperation(ctx, e.spec.ID, op.Kind, op.Status) // metrics.go
	e.watch.release(op)
	if e.st.Health != nil {
		e.st.Health.finished(op, res)
	}
	e.st.record(op)
	e.changed(ctx)
}

// stop ends the entity's coroutines' work before continue-as-new.
func (e *entity) stop() {
	e.watch.stop()
	if e.health != nil {
		e.health.stop()
		e.lane.stop()
	}
}

// operationResult is what the entity keeps from an operation's result.
type operationResult struct {
	Outcome string
	Volume  *VolumeExpansionResult
}

// runOperation runs op as a child workflow and waits for it.
func runOperation(ctx workflow.Context, spec fleet.ClusterSpec, op Operation) (operationResult, error) {
	if op.Kind == OpRollingUpgrade {
		return operationResult{}, runUpgrade(ctx, spec, op) // rolling_upgrade.go
	}
	brokers := fmt.Sprintf("%d brokers", len(spec.Brokers))
	if len(op.Brokers) > 0 {
		brokers = fmt.Sprintf("broker(s) %v", op.Brokers)
	}
	attrs := []temporal.SearchAttributeUpdate{AttrClusterID.ValueSet(spec.ID), AttrOperation.ValueSet(op.Kind)}
	if len(op.Brokers) == 1 {
		attrs = append(attrs, AttrBrokerID.ValueSet(int64(op.Brokers[0])))
	}
	why := "requested by " + op.RequestedBy
	if op.Reason != "" {
		why += ": " + op.Reason
	}
	opts := workflow.ChildWorkflowOptions{
		WorkflowID:            op.WorkflowID,
		TypedSearchAttributes: temporal.NewSearchAttributes(attrs...),
		// The entity continues-as-new only when idle, but a terminated
		// entity must not leave an operation half-done: it finishes on its own.
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
	}
	run := func(summary string, wf, in, out any) error {
		opts.StaticSummary = fmt.Sprintf(summary, spec.ID) + ", " + why
		return workflow.ExecuteChildWorkflow(workflow.WithChildOptions(ctx, opts), wf, in).Get(ctx, out)
	}
	switch op.Kind {
	case OpRecovery:
		var res RecoveryResult
		in := RecoveryInput{Spec: spec, Broker: op.Brokers[0], LostAt: op.LostAt, OperationID: op.ID, Grace: spec.Health.WithDefaults().RecoveryGrace}
		err := run("Recovery of **%s** broker "+fmt.Sprint(op.Brokers[0]), RecoveryWorkflow, in, &res)
		return operationResult{Outcome: recoveryOutcome(res)}, err
	case OpVolumeExpansion:
		var res VolumeExpansionResult
		in := VolumeExpansionInput{Spec: spec, Broker: op.Brokers[0], OperationID: op.ID, RequestedBy: op.RequestedBy,
			GrowthBytesPerSec: op.GrowthBytesPerSec, CooldownUntil: op.CooldownUntil, Requested: op.Requested}
		err := run("Volume expansion of **%s** broker "+fmt.Sprint(op.Brokers[0]), VolumeExpansionWorkflow, in, &res)
		return operationResult{Outcome: volumeOutcome(res), Volume: &res}, err
	case OpCleanerHealth:
		var res CleanerHealthResult
		in := CleanerHealthInput{Spec: spec, OperationID: op.ID, RequestedBy: op.RequestedBy, Brokers: op.Brokers}
		err := run("Log cleaner check of **%s** "+brokers, CleanerHealthWorkflow, in, &res)
		return operationResult{Outcome: cleanerOutcome(res)}, err
	}
	in := RollingRestartInput{Spec: spec, OperationID: op.ID, RequestedBy: op.RequestedBy, Brokers: op.Brokers, MaxBatch: op.MaxBatch}
	return operationResult{}, run("Rolling restart of **%s** ("+brokers+")", RollingRestartWorkflow, in, nil)
}

func recoveryOutcome(r RecoveryResult) string {
	if r.CameBack {
		return "came back by itself"
	}
	s := fmt.Sprintf("cause %s, %d start(s)", r.Cause, r.Starts)
	for _, f := range r.Fixes {
		s += fmt.Sprintf(", %s %d -> %d", f.Name, f.From, f.To)
	}
	return s
}

func volumeOutcome(r VolumeExpansionResult) string {
	switch r.Outcome {
	case ExpansionExpanded:
		return fmt.Sprintf("expanded %d -> %d GiB", r.FromGiB, r.ToGiB)
	case "":
		return ""
	}
	return r.Outcome + ": " + r.Reason
}

func cleanerOutcome(r CleanerHealthResult) string {
	switch {
	case len(r.Unhealthy) == 0:
		return "every cleaner healthy"
	case len(r.StillUnhealthy) > 0:
		return fmt.Sprintf("restarted %v, still unhealthy: %s", r.Restarted, describeFindings(r.StillUnhealthy))
	}
	return fmt.Sprintf("restarted %v, cleaners healthy again", r.Restarted)
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

// covering returns the queued or running operation of kind whose brokers
// include brokers (no brokers: every broker), which a new request joins.
func (st ClusterState) covering(kind string, brokers []int32) (Operation, bool) {
	covers := func(op Operation) bool {
		if op.Kind != kind {
			return false
		}
		if len(op.Brokers) == 0 {
			return true
		}
		return len(brokers) > 0 && !slices.ContainsFunc(brokers, func(b int32) bool { return !slices.Contains(op.Brokers, b) })
	}
	if st.Running != nil && covers(*st.Running) {
		return *st.Running, true
	}
	for _, op := range st.Queue {
		if covers(op) {
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
	for _, ops := range [][]Operation{st.Urgent, st.Queue, st.History} {
		for _, op := range ops {
			if op.ID == id {
				return op, true
			}
		}
	}
	return Operation{}, false
}
