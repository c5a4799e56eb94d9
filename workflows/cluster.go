package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

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
	// Protocol is the Kafka version and inter.broker.protocol.version the
	// brokers run, as far as kfleet knows (op_upgrade.go).
	Protocol *ProtocolLevel `json:"protocol,omitempty"`
}

// Operation is one risky operation admitted by the entity.
type Operation struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	WorkflowID  string    `json:"workflowId"`
	RequestedBy string    `json:"requestedBy"`
	RequestedAt time.Time `json:"requestedAt"`
	// ApprovedBy is who approved a request made in chat.
	ApprovedBy string `json:"approvedBy,omitempty"`
	// Brokers restricts the operation; empty means every broker.
	Brokers []int32 `json:"brokers,omitempty"`
	// Params are the kind's own parameters as admitted (op_*.go).
	Params     json.RawMessage `json:"params,omitempty"`
	Status     string          `json:"status"`
	Error      string          `json:"error,omitempty"`
	StartedAt  time.Time       `json:"startedAt,omitzero"`
	FinishedAt time.Time       `json:"finishedAt,omitzero"`
	// Existing is set in an update's answer when the request joined an
	// operation already queued or running instead of adding one.
	Existing bool `json:"existing,omitempty"`
	// CancelledBy is who cancelled the operation (the cancel update), and
	// why; set on the running one as soon as its cancellation is asked.
	CancelledBy  string `json:"cancelledBy,omitempty"`
	CancelReason string `json:"cancelReason,omitempty"`
	// Reason is why it was asked for (a health finding, a broker loss,
	// an operator's words).
	Reason string `json:"reason,omitempty"`
	// Outcome summarises what a finished operation did.
	Outcome string `json:"outcome,omitempty"`

	legacyParams
}

// legacyParams are the kind-specific fields operations carried before
// Params: states and histories recorded then still decode, and each kind
// reads its parameters from them when Params is empty (kind.legacy).
type legacyParams struct {
	MaxBatch          int       `json:"maxBatch,omitempty"`
	Upgrade           *Upgrade  `json:"upgrade,omitempty"`
	LostAt            time.Time `json:"lostAt,omitzero"`
	Requested         bool      `json:"requested,omitempty"`
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
	// expansions); 3 runs every operation in a coroutine of its own and
	// continues as new whenever its history asks, whatever runs or waits:
	// operations report their end by signal (reportEnd) and are cancelled
	// by ID. Runs recorded before a version keep its predecessor's
	// behaviour until their next continue-as-new.
	entityVersionChange = "cluster-entity"
	entityVersion       = 3
)

// ClusterWorkflow is the durable entity of one managed cluster (ID
// cluster/<id>). Every risky operation enters through its request update
// and runs as a child workflow, in the order admitted, in its kind's lane
// (kinds.go): maintenance (rolls, upgrades, cleaner restarts) one at a
// time, urgent operations (recoveries, volume expansions) beside it, at
// most one per broker (urgent_lane.go); no maintenance starts while a
// recovery is queued or running. A request for an operation already queued
// or running is answered with that operation. Operators pause (no queued
// operation starts), resume, and cancel a queued or running operation by
// update.
//
// Beside the operations it watches the cluster's broker registrations in
// ZooKeeper (brokerWatch): a broker that leaves while no operation of
// kfleet touches it is a loss, recovered once. A health loop (healthLoop)
// turns disk, cleaner and heap findings into operations.
//
// Past its event budget it continues as new whatever it is doing — a roll
// running or paused for a human for days, urgent operations, a queue, a
// pause — carrying its state. Children own their progress and outlive the
// run that started them; the entity keeps their IDs and learns their end
// from their signal (SignalOperationEnded).
func ClusterWorkflow(ctx workflow.Context, in ClusterInput) error {
	e := &entity{spec: in.Spec}
	if in.State != nil {
		e.st = *in.State
	}
	budget := in.EventBudget
	if budget <= 0 {
		budget = defaultEventBudget
	}
	e.version = workflow.GetVersion(ctx, entityVersionChange, workflow.DefaultVersion, entityVersion)
	spec, st := &e.spec, &e.st
	if st.Protocol == nil {
		st.Protocol = st.protocolFromHistory()
	}
	st.Protocol = protocolFromSpec(*spec, st.Protocol)
	e.watch = newBrokerWatch(ctx, spec, st, e.version >= 1, e.changed)
	e.ctl = &controls{e: e, spec: spec, st: st, changed: e.changed, cancelUrgent: map[string]workflow.CancelFunc{}}
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
			st.Protocol = protocolFromSpec(s, st.Protocol)
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
	if err := e.registerRequests(ctx); err != nil { // cluster_requests.go
		return err
	}
	if err := e.ctl.register(ctx); err != nil {
		return err
	}
	workflow.Go(ctx, e.watch.run)
	if e.version >= 2 {
		e.health = &healthLoop{e: e}
		e.lane = &urgentLane{e: e}
		workflow.Go(ctx, e.health.run)
		workflow.Go(ctx, e.lane.run)
	}
	if e.version >= 3 {
		e.ends = workflow.GetSignalChannel(ctx, SignalOperationEnded)
		workflow.Go(ctx, e.receiveEnds)
	}
	e.changed(ctx)

	for {
		if err := workflow.Await(ctx, func() bool { return st.nextMaintenance() >= 0 || e.mayContinueAsNew(ctx, budget) }); err != nil {
			return err
		}
		if e.mayContinueAsNew(ctx, budget) {
			// The history is long: drain handlers and the children being
			// started, carry the state.
			if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) && e.starting == 0 }); err != nil {
				return err
			}
			if e.mayContinueAsNew(ctx, budget) {
				e.stop()
				e.watch.drainTouches(ctx)
				e.drainEnds(ctx)
				workflow.GetLogger(ctx).Info("continuing as new", "Cluster", spec.ID, "Queued", len(st.Queue), "Paused", st.Paused != nil,
					"Running", st.Running != nil, "Urgent", len(st.Urgent))
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
		if e.version >= 3 {
			e.start(ctx, op)
			e.changed(ctx)
			continue
		}
		// Recorded before entity version 3: the loop waits for the
		// operation, and continues as new only between operations.
		opCtx, cancel := workflow.WithCancel(ctx)
		e.ctl.cancelRunning = cancel
		e.changed(ctx)
		rep, err := e.run(opCtx, op, func() {})
		e.ctl.cancelRunning = nil
		e.ended(ctx, op.ID, rep, err)
	}
}

// entity is a ClusterWorkflow run's state and parts.
type entity struct {
	spec    fleet.ClusterSpec
	st      ClusterState
	version workflow.Version
	watch   *brokerWatch
	ctl     *controls
	health  *healthLoop // nil before entity version 2
	lane    *urgentLane // nil before entity version 2
	// ends receives operations' ends (version 3).
	ends workflow.ReceiveChannel
	// starting counts children being started: the entity continues as new
	// only once each has started (or failed to), so none is lost.
	starting int
	stopped  bool
}

// changed refreshes the entity's current details in the UI.
func (e *entity) changed(ctx workflow.Context) { setDetails(ctx, e.spec, e.st) }

// mayContinueAsNew reports whether the run should end here and carry its
// state: its history is past the budget and, for runs recorded before
// entity version 3, nothing runs.
func (e *entity) mayContinueAsNew(ctx workflow.Context, budget int) bool {
	if !shouldContinueAsNew(ctx, budget) {
		return false
	}
	if e.version >= 3 {
		return true
	}
	st := &e.st
	return (len(st.Queue) == 0 || st.Paused != nil || e.version >= 1) && len(st.Urgent) == 0
}

// request admits a request: the operation queued, or the one it joins.
func (e *entity) request(ctx workflow.Context, req Request) (Operation, error) {
	k, err := KindNamed(req.Kind)
	if err != nil {
		return Operation{}, err
	}
	op, joined, err := k.admit(e.admission(ctx), req)
	if err != nil {
		return Operation{}, err
	}
	if joined {
		op.Existing = true
		return op, nil
	}
	return e.enqueue(ctx, op), nil
}

func (e *entity) admission(ctx workflow.Context) admission {
	return admission{spec: e.spec, st: &e.st, now: workflow.Now(ctx), healthLoop: e.health != nil}
}

// enqueue numbers and queues an admitted operation (or one kfleet itself
// asks for).
func (e *entity) enqueue(ctx workflow.Context, op Operation) Operation {
	queued := e.st.newOperation(ctx, e.spec.ID, op.Kind, op.RequestedBy)
	op.ID, op.WorkflowID, op.RequestedAt, op.Status = queued.ID, queued.WorkflowID, queued.RequestedAt, queued.Status
	e.st.Queue = append(e.st.Queue, op)
	e.changed(ctx)
	return op
}

// run runs op's child workflow and waits for it.
func (e *entity) run(ctx workflow.Context, op Operation, started func()) (Report, error) {
	k, err := KindNamed(op.Kind)
	if err != nil {
		started()
		return Report{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadRequest, err)
	}
	return k.run(ctx, e.spec, op, started)
}

// start runs an operation that became Running or Urgent in a coroutine of
// its own (entity version 3): the entity goes on (and may continue as
// new) while it runs.
func (e *entity) start(ctx workflow.Context, op Operation) {
	e.starting++
	workflow.Go(ctx, func(gctx workflow.Context) {
		rep, err := e.run(gctx, op, func() { e.starting-- })
		if e.stopped {
			return // this run is over; the next one hears the end by signal
		}
		e.ended(gctx, op.ID, rep, err)
	})
}

// receiveEnds applies operations' ends as they arrive (version 3).
// It ends when the run stops, leaving what arrives after to the next run.
func (e *entity) receiveEnds(ctx workflow.Context) {
	for {
		if err := workflow.Await(ctx, func() bool { return e.stopped || e.ends.Len() > 0 }); err != nil || e.stopped {
			return
		}
		e.drainEnds(ctx)
	}
}

// drainEnds applies the ends that arrived in this workflow task, before
// the run continues as new.
func (e *entity) drainEnds(ctx workflow.Context) {
	if e.ends == nil {
		return
	}
	var end OperationEnd
	for e.ends.ReceiveAsync(&end) {
		e.applyEnd(ctx, end)
		end = OperationEnd{}
	}
}

// applyEnd finishes the running operation an end signal is about.
func (e *entity) applyEnd(ctx workflow.Context, end OperationEnd) {
	op, ok := e.st.runningByWorkflow(end.WorkflowID)
	if !ok {
		return // already finished (its future answered first), or not ours
	}
	var err error
	if end.Error != "" {
		err = errors.New(end.Error)
	}
	e.ended(ctx, op.ID, end.Report, err)
}

// ended records the end of the running or urgent operation id, whichever
// of its future and its end signal told first.
func (e *entity) ended(ctx workflow.Context, id string, rep Report, err error) {
	st := &e.st
	var op Operation
	switch i := slices.IndexFunc(st.Urgent, func(u Operation) bool { return u.ID == id }); {
	case st.Running != nil && st.Running.ID == id:
		op, st.Running = *st.Running, nil
	case i >= 0:
		op = st.Urgent[i]
		st.Urgent = slices.Delete(st.Urgent, i, i+1)
		delete(e.ctl.cancelUrgent, id)
	default:
		return
	}
	e.finish(ctx, op, rep, err)
}

// finish records how an operation ended, lets go of what it held and
// remembers what it taught (a volume's cool-down, a protocol level).
func (e *entity) finish(ctx workflow.Context, op Operation, rep Report, err error) {
	op.FinishedAt, op.Outcome = workflow.Now(ctx), rep.Outcome
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
		e.st.Health.finished(op, rep)
	}
	if p := rep.Protocol; p != nil {
		level := *p
		level.Since, level.By = op.FinishedAt, op.ID
		if level.Uncertain != "" && e.st.Protocol != nil {
			level.KafkaVersion, level.InterBrokerProtocol = e.st.Protocol.KafkaVersion, e.st.Protocol.InterBrokerProtocol
		}
		e.st.Protocol = &level
	}
	e.st.record(op)
	e.changed(ctx)
}

// stop ends the entity's coroutines' work before continue-as-new.
func (e *entity) stop() {
	e.stopped = true
	e.watch.stop()
	if e.health != nil {
		e.health.stop()
		e.lane.stop()
	}
}

// newOperation numbers a new queued operation of kind. Its id ends the
// entity's run id's tail, the random part (the head is a timestamp), so ids
// stay unique across re-registrations; the kind's slug names it in the
// workflow id.
func (st *ClusterState) newOperation(ctx workflow.Context, cluster, kind, requestedBy string) Operation {
	st.Seq++
	runID := workflow.GetInfo(ctx).WorkflowExecution.RunID
	id := fmt.Sprintf("%s-%d", runID[max(0, len(runID)-8):], st.Seq)
	return Operation{
		ID:          id,
		Kind:        kind,
		WorkflowID:  OperationWorkflowID(cluster, kindSlug(kind), id),
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

// runningByWorkflow finds the running or urgent operation whose workflow
// is workflowID.
func (st ClusterState) runningByWorkflow(workflowID string) (Operation, bool) {
	if st.Running != nil && st.Running.WorkflowID == workflowID {
		return *st.Running, true
	}
	for _, op := range st.Urgent {
		if op.WorkflowID == workflowID {
			return op, true
		}
	}
	return Operation{}, false
}

// protocolFromHistory is the protocol level the last upgrade in the
// history left, for states carried over from runs that did not keep it.
func (st ClusterState) protocolFromHistory() *ProtocolLevel {
	for i := len(st.History) - 1; i >= 0; i-- {
		op := st.History[i]
		if op.Kind != OpRollingUpgrade {
			continue
		}
		p, err := paramsOf(op, legacyUpgrade)
		if err != nil || p.Version == "" {
			return nil
		}
		if op.Status != StatusSucceeded {
			return &ProtocolLevel{Uncertain: fmt.Sprintf("the last upgrade (%s to %s) %s, so brokers may run either protocol", op.ID, p.Version, op.Status), By: op.ID, Since: op.FinishedAt}
		}
		return &ProtocolLevel{KafkaVersion: p.Version, InterBrokerProtocol: p.TargetIBP, By: op.ID, Since: op.FinishedAt}
	}
	return nil
}

// protocolFromSpec is the protocol level with the spec's say: the spec
// seeds it, and corrects a level that came from a spec; a level an
// upgrade through kfleet set wins over a spec written before it.
func protocolFromSpec(spec fleet.ClusterSpec, level *ProtocolLevel) *ProtocolLevel {
	if spec.InterBrokerProtocol == "" && spec.KafkaVersion == "" {
		return level
	}
	if level != nil && level.By != "" {
		return level
	}
	return &ProtocolLevel{KafkaVersion: spec.KafkaVersion, InterBrokerProtocol: spec.InterBrokerProtocol}
}
