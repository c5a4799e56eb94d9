package workflows

import (
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"
)

// urgentLane runs the entity's urgent operations (recoveries, volume
// expansions) beside the maintenance operation, in its own coroutine:
// neither takes a broker down, and a recovery queued behind a roll that
// waits for the cluster to be healthy again would wait forever. At most
// one urgent operation runs per broker; a pause holds them like any
// other. It also turns each broker loss into a recovery, exactly once, at
// once: the recovery itself gives the broker a grace to come back.
type urgentLane struct {
	e       *entity
	stopped bool
}

func (l *urgentLane) run(ctx workflow.Context) {
	st := &l.e.st
	for !l.stopped && ctx.Err() == nil {
		l.scheduleRecoveries(ctx)
		if i := st.nextUrgent(); i >= 0 {
			l.start(ctx, i)
			continue
		}
		if err := workflow.Await(ctx, func() bool {
			return l.stopped || st.nextUrgent() >= 0 || st.lossAwaitingRecovery()
		}); err != nil {
			return
		}
	}
}

// stop starts no more urgent operations (continue-as-new).
func (l *urgentLane) stop() { l.stopped = true }

// scheduleRecoveries queues a recovery for every open loss that has none.
func (l *urgentLane) scheduleRecoveries(ctx workflow.Context) {
	st := &l.e.st
	for i := range st.Losses {
		loss := &st.Losses[i]
		if loss.Recovered || loss.Recovery != "" {
			continue
		}
		reason := fmt.Sprintf("broker %d left ZooKeeper at %s without kfleet touching it", loss.Broker, loss.At.Format(time.RFC3339))
		op := recoveryOperation(loss.Broker, loss.At)
		op.RequestedBy, op.Reason = "kfleet-broker-watch", reason
		op = l.e.enqueue(ctx, op)
		loss.Recovery = op.ID
		hs := st.health()
		hs.record(Finding{Kind: FindingLoss, Broker: loss.Broker, Reason: reason, At: workflow.Now(ctx), Operation: op.ID})
		workflow.GetLogger(ctx).Warn("recovery queued", "Cluster", l.e.spec.ID, "Broker", loss.Broker, "Operation", op.ID, "LostAt", loss.At)
	}
}

// start runs the queued urgent operation at i in a coroutine of its own.
func (l *urgentLane) start(ctx workflow.Context, i int) {
	e, st := l.e, &l.e.st
	op := st.Queue[i]
	st.Queue = slices.Delete(st.Queue, i, i+1)
	op.Status, op.StartedAt = StatusRunning, workflow.Now(ctx)
	st.Urgent = append(st.Urgent, op)
	if e.version >= 3 {
		e.start(ctx, op)
		e.changed(ctx)
		return
	}
	// Recorded before entity version 3: cancelled through its context.
	opCtx, cancel := workflow.WithCancel(ctx)
	e.ctl.cancelUrgent[op.ID] = cancel
	e.changed(ctx)
	workflow.Go(opCtx, func(gctx workflow.Context) {
		rep, err := e.run(gctx, op, func() {})
		e.ended(ctx, op.ID, rep, err)
	})
}

// nextUrgent is the index in the queue of the first urgent operation that
// may start now: not paused, and no urgent operation running on its
// broker; -1 when none.
func (st ClusterState) nextUrgent() int {
	if st.Paused != nil {
		return -1
	}
	return slices.IndexFunc(st.Queue, func(op Operation) bool {
		if laneOf(op.Kind) != LaneUrgent {
			return false
		}
		return !slices.ContainsFunc(st.Urgent, func(u Operation) bool { return sharesBroker(u, op) })
	})
}

// lossAwaitingRecovery reports whether an open loss has no recovery yet:
// scheduleRecoveries gives every one a recovery, so this is a new loss.
func (st ClusterState) lossAwaitingRecovery() bool {
	return slices.ContainsFunc(st.Losses, func(l BrokerLoss) bool { return !l.Recovered && l.Recovery == "" })
}

// recovering reports whether a recovery is queued or running: maintenance
// waits for it (recovery pre-empts maintenance).
func (st ClusterState) recovering() bool {
	isRecovery := func(op Operation) bool { return op.Kind == OpRecovery }
	return slices.ContainsFunc(st.Urgent, isRecovery) || slices.ContainsFunc(st.Queue, isRecovery)
}

// sharesBroker reports whether two operations concern a common broker (an
// operation on no broker in particular concerns them all).
func sharesBroker(x, y Operation) bool {
	if len(x.Brokers) == 0 || len(y.Brokers) == 0 {
		return true
	}
	return slices.ContainsFunc(x.Brokers, func(b int32) bool { return slices.Contains(y.Brokers, b) })
}
