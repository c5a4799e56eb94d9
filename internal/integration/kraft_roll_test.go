package integration_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// kraftRollAudit is what the fleet saw of a KRaft roll.
type kraftRollAudit struct {
	// ctlStops and ctlStarts count each controller's stops and starts,
	// ctlOrder is the order they stopped in.
	ctlStops, ctlStarts map[int32]int
	ctlOrder            []int32
	// maxCtlDown is the most controllers down at one moment (from a stop
	// to its started-again event).
	maxCtlDown int
	// lastCtlUp is when the last controller was running again, firstBrokerStop
	// when the first broker stopped.
	lastCtlUp, firstBrokerStop time.Time
}

func judgeKRaftRoll(events []localfleet.Event) kraftRollAudit {
	a := kraftRollAudit{ctlStops: map[int32]int{}, ctlStarts: map[int32]int{}}
	down := map[int32]bool{}
	for _, e := range events {
		switch e.Kind {
		case localfleet.EventControllerStop, localfleet.EventControllerCrash:
			a.ctlStops[e.Broker]++
			a.ctlOrder = append(a.ctlOrder, e.Broker)
			down[e.Broker] = true
			a.maxCtlDown = max(a.maxCtlDown, len(down))
		case localfleet.EventControllerStart:
			a.ctlStarts[e.Broker]++
		case localfleet.EventControllerStarted:
			delete(down, e.Broker)
			a.lastCtlUp = e.Time
		case localfleet.EventStop:
			if a.firstBrokerStop.IsZero() {
				a.firstBrokerStop = e.Time
			}
		}
	}
	return a
}

// TestIntegrationKRaftRoll (issue #15): a rolling restart of a KRaft
// cluster of 3 controllers and 6 brokers, requested through the entity.
// Judged by the fleet's audit: every controller and broker stopped and
// started once, the controllers one at a time and before any broker, the
// controller active at the roll's start last among them, and no
// violation (no quorum without a caught-up majority, no two brokers
// sharing a partition down, no partition under min ISR).
func TestIntegrationKRaftRoll(t *testing.T) {
	t.Parallel()
	const cluster = "local-kr"
	cfg := localfleet.ClusterConfig{ID: cluster, Brokers: 6, KRaft: &localfleet.KRaftConfig{Controllers: 3, Timing: fastKRaft}}
	stack := startStackWith(t, fastFleet(cfg), func(o *devstack.StackOptions) {
		o.Health, o.NotifyOut = kraftPolicy, io.Discard
	})
	spec := stack.Specs[cluster]
	require.Equal(t, fleet.ModeKRaft, spec.Mode())
	require.Len(t, spec.KRaft.Controllers, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watching(ctx, t, stack, cluster, 6)

	q, err := stack.Fleet.Quorum(cluster)
	require.NoError(t, err)
	active := q.Leader
	require.True(t, spec.InSpec(active), "the quorum has a leader among the spec's controllers: %d", active)
	auditBefore := len(stack.Fleet.Audit(cluster))

	began := time.Now()
	op, err := entity.Request(ctx, stack.Client, cluster, restartReq("integration-test"))
	require.NoError(t, err)
	res, err := entity.FollowOperation(ctx, stack.Client, cluster, op.ID, 200*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err)
	took := time.Since(began)

	// The workflow's own account.
	require.Len(t, res.Controllers, 3)
	require.Len(t, res.Brokers, 6)
	assert.Equal(t, active, res.Controllers[2].Controller, "the active controller is restarted last")
	assert.True(t, res.Controllers[2].WasActive)
	for _, c := range res.Controllers {
		t.Logf("controller %d (active %t): gate %s, stop %s, start %s, caught up %s, total %s", c.Controller, c.WasActive,
			c.GateWait.Round(time.Millisecond), c.Stop.Round(time.Millisecond), c.Start.Round(time.Millisecond),
			c.CatchUp.Round(time.Millisecond), c.Total.Round(time.Millisecond))
	}
	for _, b := range res.Brokers {
		t.Logf("broker %d: total %s", b.Broker, b.Total.Round(time.Millisecond))
	}

	// The fleet's account.
	events := stack.Fleet.Audit(cluster)[auditBefore:]
	a := assertKRaftRolledOnce(t, spec, events, active)
	noViolations(t, stack, cluster)

	q, err = stack.Fleet.Quorum(cluster)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, q.CaughtUp, q.Majority, "the quorum is a caught-up majority at the end")
	st, err := entity.ClusterStatus(ctx, stack.Client, cluster)
	require.NoError(t, err)
	require.NotEmpty(t, st.History)
	last := st.History[len(st.History)-1]
	assert.Equal(t, workflows.StatusSucceeded, last.Status, last.Error)
	assert.Equal(t, "3 controller(s) then 6 broker(s) restarted", last.Outcome)
	assert.Empty(t, st.Losses, "kfleet's own restarts are no losses")
	// The replay tests keep this roll's history replaying (the
	// controllers' branch behind its GetVersion).
	recordHistories(ctx, t, stack.Client, map[string]string{op.WorkflowID: "rolling_restart_kraft.json"})
	t.Logf("roll of 3 controllers and 6 brokers took %s; controllers done %s after the start, first broker stop %s after the last controller was up; new leader %d at epoch %d",
		took.Round(time.Millisecond), a.lastCtlUp.Sub(began).Round(time.Millisecond), a.firstBrokerStop.Sub(a.lastCtlUp).Round(time.Millisecond), q.Leader, q.Epoch)
}

// assertKRaftRolledOnce judges a roll of every node of a KRaft cluster by
// the fleet's audit events: each controller and broker stopped and
// started once, the controllers one at a time and all back before the
// first broker stopped, the one active at the roll's start last, the
// brokers one at a time as in a ZooKeeper cluster's roll (controllers'
// events are of their own kinds). It returns what it judged.
func assertKRaftRolledOnce(t *testing.T, spec fleet.ClusterSpec, events []localfleet.Event, active int32) kraftRollAudit {
	t.Helper()
	a := judgeKRaftRoll(events)
	for _, id := range spec.ControllerIDs() {
		assert.Equal(t, 1, a.ctlStops[id], "controller %d stops once", id)
		assert.Equal(t, 1, a.ctlStarts[id], "controller %d starts once", id)
	}
	require.Len(t, a.ctlOrder, 3)
	assert.Equal(t, active, a.ctlOrder[2], "the fleet saw the active controller (at the roll's start) stop last")
	assert.Equal(t, 1, a.maxCtlDown, "never two controllers down at once")
	require.False(t, a.firstBrokerStop.IsZero())
	assert.True(t, a.lastCtlUp.Before(a.firstBrokerStop), "every controller back before the first broker stops")
	brokers := auditSerial(t, events)
	for _, id := range spec.BrokerIDs() {
		assert.Equal(t, 1, brokers.stops[id], "broker %d stops once", id)
		assert.Equal(t, 1, brokers.starts[id], "broker %d starts once", id)
	}
	return a
}
