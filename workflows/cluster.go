package workflows

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/internal/fleet"
)

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
	// by ID; 4 senses registrations and health in one long-lived Sense
	// activity that reports only on change (broker_watch.go), instead of a
	// watch and a health activity and timer a minute. Runs recorded before
	// a version keep its predecessor's behaviour until their next
	// continue-as-new.
	entityVersionChange = "cluster-entity"
	entityVersion       = 4
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
// Beside the operations it senses the cluster (brokerWatch): one
// long-lived Sense activity on the sensing task queue watches the broker
// registrations in ZooKeeper and runs the health tick, and reports only
// what changed. A broker that leaves while no operation of kfleet touches
// it is a loss, recovered once; the health loop (healthLoop) turns disk,
// cleaner and heap concerns into operations.
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
	e.overview = newOverviewMemo(ctx) // overview.go
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
		e.watch.sense, e.watch.sensed = e.version >= 4, e.health.sensed
		workflow.Go(ctx, e.health.run)
		workflow.Go(ctx, e.lane.run)
	}
	if e.version >= 3 {
		e.ends = workflow.GetSignalChannel(ctx, SignalOperationEnded)
		workflow.Go(ctx, e.receiveEnds)
		workflow.Go(ctx, e.tenantRetirements) // tenant_state.go
	}
	e.changed(ctx)

	for {
		if err := workflow.Await(ctx, func() bool {
			return st.nextMaintenance() >= 0 || e.mayContinueAsNew(ctx, budget) || e.deleted
		}); err != nil {
			return err
		}
		if e.deleted {
			return e.end(ctx) // cluster_end.go
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
	// deleted: a deletion succeeded; the entity ends.
	deleted bool
	// overview keeps the memo the fleet overview lists.
	overview *overviewMemo
}

// changed refreshes the entity's current details in the UI and its
// overview memo.
func (e *entity) changed(ctx workflow.Context) {
	setDetails(ctx, e.spec, e.st)
	e.overview.publish(ctx, e.spec, e.st)
}

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
		// A kind that batches (topic-admin) joins a queued operation by
		// adding the request's parameters to it: its joins answers the
		// operation with the parameters it has now.
		if i := slices.IndexFunc(e.st.Queue, func(q Operation) bool { return q.ID == op.ID }); i >= 0 && !bytes.Equal(e.st.Queue[i].Params, op.Params) {
			e.st.Queue[i].Params = op.Params
			e.changed(ctx)
		}
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
	if e.health != nil || e.st.Health != nil {
		// Even before the first health report: a volume's cool-down must
		// be remembered.
		e.st.health().finished(op, rep)
	}
	e.st.tenantEnded(op, rep, err, op.FinishedAt) // tenant_state.go
	if rep.Deleted && err == nil {
		e.deleted = true
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

func shouldContinueAsNew(ctx workflow.Context, budget int) bool {
	info := workflow.GetInfo(ctx)
	return info.GetContinueAsNewSuggested() || info.GetCurrentHistoryLength() > budget
}
