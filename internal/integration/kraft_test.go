package integration_test

import (
	"context"
	"io"
	"slices"
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

// fastKRaft is the local fleet's fast KRaft timing for the stack tests:
// a broker silent for 1.5 s is fenced (production: 9 s).
var fastKRaft = localfleet.KRaftTiming{
	Heartbeat:    250 * time.Millisecond,
	Session:      1500 * time.Millisecond,
	FetchTimeout: 500 * time.Millisecond,
	Election:     300 * time.Millisecond,
}

// kraftPolicy is selfHealingPolicy with KRaft sensing polling fencing at
// the fast heartbeat interval, as production polls at its 2 s one.
var kraftPolicy = func() fleet.HealthPolicy {
	p := selfHealingPolicy
	p.FencingPoll = fastKRaft.Heartbeat
	return p
}()

// auditEvents are the cluster's audit events of kind about broker.
func auditEvents(stack *devstack.Stack, cluster string, broker int32, kind localfleet.EventKind) []localfleet.Event {
	var out []localfleet.Event
	for _, e := range stack.Fleet.Audit(cluster) {
		if e.Broker == broker && e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// TestIntegrationKRaftBrokerCrashIsRecovered (issue #15): a KRaft broker
// killed behind kfleet's back stops heartbeating; the controller fences it
// one session timeout later, sensing (which polls DescribeCluster v2 with
// fenced brokers, there is no ZooKeeper) sees it within the session
// timeout + 2 s of the crash, and recovery starts it exactly once and
// waits until it is unfenced again. The fleet's audit is the judge.
func TestIntegrationKRaftBrokerCrashIsRecovered(t *testing.T) {
	t.Parallel()
	const cluster, lost = "local-k", int32(2)
	cfg := localfleet.ClusterConfig{ID: cluster, Brokers: 3, KRaft: &localfleet.KRaftConfig{Controllers: 3, Timing: fastKRaft}}
	stack := startStackWith(t, fastFleet(cfg), func(o *devstack.StackOptions) {
		o.Health, o.NotifyOut = kraftPolicy, io.Discard
	})
	spec := stack.Specs[cluster]
	require.Equal(t, fleet.ModeKRaft, spec.Mode(), "the stack registers the fleet's KRaft cluster as one")
	require.Empty(t, spec.ZooKeeper)
	require.Len(t, spec.KRaft.Controllers, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watching(ctx, t, stack, cluster, 3)

	require.NoError(t, stack.Fleet.Crash(ctx, cluster, lost, "integration-test"))
	bound := fastKRaft.Session + fleet.UncleanLossSlack
	st := waitStatus(ctx, t, stack, cluster, bound+5*time.Second, "the loss is recorded", func(st workflows.ClusterStatus) bool {
		return len(st.Losses) > 0
	})
	require.Len(t, st.Losses, 1)
	loss := st.Losses[0]
	assert.Equal(t, lost, loss.Broker)

	crashes := auditEvents(stack, cluster, lost, localfleet.EventCrash)
	require.Len(t, crashes, 1)
	crashed := crashes[0].Time
	fenced := auditEvents(stack, cluster, lost, "kraft-fenced")
	require.Len(t, fenced, 1, "fenced once, by the crash")
	assert.Contains(t, fenced[0].Detail, "unclean: no WantShutdown")
	detected := loss.At.Sub(crashed)
	t.Logf("crash at %s; fenced %s after it, loss recorded %s after it (bound: session timeout %s + %s = %s)",
		crashed.Format(time.StampMilli), fenced[0].Time.Sub(crashed).Round(time.Millisecond), detected.Round(time.Millisecond),
		fastKRaft.Session, fleet.UncleanLossSlack, bound)
	assert.LessOrEqual(t, detected, bound, "loss detected within the broker session timeout + 2 s")
	assert.False(t, loss.At.Before(fenced[0].Time), "the loss is the fencing seen, not a guess")

	op := finished(ctx, t, stack, cluster, workflows.OpRecovery, time.Minute)
	require.Equal(t, workflows.StatusSucceeded, op.Status, op.Error)
	assert.Equal(t, []int32{lost}, op.Brokers)
	assert.Equal(t, "cause unknown, 1 start(s)", op.Outcome)
	t.Logf("recovered %s after the crash", op.FinishedAt.Sub(crashed).Round(time.Millisecond))

	// The audit: recovery started the broker exactly once, after the
	// crash, stopped nothing, and the broker registered and was unfenced
	// after that start.
	stops, starts := stopsAndStarts(stack.Fleet.Audit(cluster))
	assert.Empty(t, stops, "recovery never stops a broker")
	assert.Equal(t, map[int32]int{lost: 1}, starts, "the lost broker started exactly once")
	started := auditEvents(stack, cluster, lost, localfleet.EventStart)
	require.Len(t, started, 1)
	assert.True(t, started[0].Time.After(crashed))
	unfenced := auditEvents(stack, cluster, lost, "kraft-unfenced")
	require.NotEmpty(t, unfenced)
	last := unfenced[len(unfenced)-1]
	assert.True(t, last.Time.After(started[0].Time), "unfenced after recovery's start")
	t.Logf("started %s after the crash, unfenced %s after the start", started[0].Time.Sub(crashed).Round(time.Millisecond),
		last.Time.Sub(started[0].Time).Round(time.Millisecond))

	fs, err := stack.Fleet.Status(cluster)
	require.NoError(t, err)
	i := slices.IndexFunc(fs.Brokers, func(b localfleet.BrokerStatus) bool { return b.ID == lost })
	require.GreaterOrEqual(t, i, 0)
	assert.False(t, fs.Brokers[i].Fenced, "the broker is unfenced again")
	state, err := stack.Fleet.BrokerState(cluster, lost)
	require.NoError(t, err)
	assert.Equal(t, localfleet.StateRunning, state)

	st, err = entity.ClusterStatus(ctx, stack.Client, cluster)
	require.NoError(t, err)
	assert.Empty(t, st.OpenLosses())
	assert.Equal(t, op.ID, st.Losses[0].Recovery)
	noViolations(t, stack, cluster)
}
