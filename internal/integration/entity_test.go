package integration_test

import (
	"context"
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

// zkSessionTimeout is how long the local fleet's brokers' ZooKeeper
// sessions outlive a crash.
const zkSessionTimeout = 4 * time.Second

// waitStatus polls the entity's status until ok holds, and returns it.
func waitStatus(ctx context.Context, t testing.TB, stack *devstack.Stack, cluster string, within time.Duration, what string, ok func(workflows.ClusterStatus) bool) workflows.ClusterStatus {
	t.Helper()
	var last workflows.ClusterStatus
	require.Eventually(t, func() bool {
		st, err := entity.ClusterStatus(ctx, stack.Client, cluster)
		if err != nil {
			return false
		}
		last = st
		return ok(st)
	}, within, 100*time.Millisecond, "%s (last status: watch %+v, losses %+v)", what, last.Watch, last.Losses)
	return last
}

// watching waits until the entity's broker watch has its baseline.
func watching(ctx context.Context, t *testing.T, stack *devstack.Stack, cluster string, brokers int) {
	t.Helper()
	waitStatus(ctx, t, stack, cluster, 20*time.Second, "the broker watch has its baseline", func(st workflows.ClusterStatus) bool {
		return st.Watch != nil && len(st.Watch.Registered) == brokers
	})
}

// TestIntegrationEntityRecordsBrokerLossOnce crashes a broker behind
// kfleet's back: its ZooKeeper session expires, and the entity records
// exactly one loss within the session timeout plus a few seconds; the
// broker starting again closes it.
func TestIntegrationEntityRecordsBrokerLossOnce(t *testing.T) {
	stack := startStack(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)

	crashed := time.Now()
	require.NoError(t, stack.Fleet.Crash(ctx, "local-a", 2, "integration-test"))
	st := waitStatus(ctx, t, stack, "local-a", zkSessionTimeout+5*time.Second, "the loss is recorded", func(st workflows.ClusterStatus) bool {
		return len(st.Losses) > 0
	})
	t.Logf("loss recorded %s after the crash (session timeout %s)", time.Since(crashed).Round(time.Millisecond), zkSessionTimeout)
	require.Len(t, st.Losses, 1)
	assert.Equal(t, int32(2), st.Losses[0].Broker)
	assert.False(t, st.Losses[0].Recovered)
	assert.Equal(t, []int32{1, 3}, st.Watch.Registered)
	assert.Equal(t, []int32{2}, st.Watch.Missing)

	time.Sleep(time.Second)
	st, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	assert.Len(t, st.Losses, 1, "recorded exactly once")

	require.NoError(t, stack.Fleet.StartBroker(ctx, "local-a", 2, "integration-test"))
	st = waitStatus(ctx, t, stack, "local-a", 30*time.Second, "the broker's return closes the loss", func(st workflows.ClusterStatus) bool {
		return len(st.Losses) > 0 && st.Losses[0].Recovered
	})
	require.Len(t, st.Losses, 1)
	assert.Empty(t, st.OpenLosses())
	assert.Equal(t, []int32{1, 2, 3}, st.Watch.Registered)
}

// TestIntegrationEntityOwnRollIsNoLoss: a roll takes every broker down in
// turn; the entity sees each registration go and come back, and records no
// loss, because the roll told it which broker it was touching.
func TestIntegrationEntityOwnRollIsNoLoss(t *testing.T) {
	stack := startStack(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)

	op, err := entity.Request(ctx, stack.Client, "local-a", restartReq("integration-test"))
	require.NoError(t, err)
	res, err := entity.FollowOperation(ctx, stack.Client, "local-a", op.ID, 100*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err)
	require.Len(t, res.Brokers, 3)

	st := waitStatus(ctx, t, stack, "local-a", 10*time.Second, "every broker registered again", func(st workflows.ClusterStatus) bool {
		return st.Watch != nil && len(st.Watch.Registered) == 3
	})
	assert.Positive(t, st.Watch.Changes, "the watch saw the roll's brokers go and come back")
	assert.Empty(t, st.Losses, "kfleet's own restarts are not losses")
	assert.Empty(t, st.Touching, "the roll let go of every broker")
	t.Logf("the watch saw %d changes during the roll", st.Watch.Changes)
	assert.Empty(t, stack.Fleet.Violations("local-a"))

	recordHistories(ctx, t, stack.Client, map[string]string{
		workflows.ClusterWorkflowID("local-a"): "cluster_roll_with_broker_watch.json",
	})
}

// TestIntegrationEntityPauseHoldsQueuedRestart: while the cluster is
// paused a restart is queued and nothing is touched; resume starts it.
func TestIntegrationEntityPauseHoldsQueuedRestart(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	stack := startStack(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before := len(stack.Fleet.Audit("local-a"))

	_, err := entity.Resume(ctx, stack.Client, "local-a", workflows.ResumeRequest{By: "oncall"})
	require.ErrorIs(t, err, fleet.ErrRefused, "resume when not paused")
	assert.Contains(t, err.Error(), "not paused")
	_, err = entity.Pause(ctx, stack.Client, "no-such-cluster", workflows.PauseRequest{By: "oncall"})
	require.ErrorIs(t, err, fleet.ErrUnknownCluster)

	p, err := entity.Pause(ctx, stack.Client, "local-a", workflows.PauseRequest{By: "oncall", Reason: "change freeze"})
	require.NoError(t, err)
	assert.Equal(t, "oncall", p.By)
	op, err := entity.Request(ctx, stack.Client, "local-a", restartReq("integration-test"))
	require.NoError(t, err)

	time.Sleep(2 * time.Second)
	st, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	require.NotNil(t, st.Paused)
	assert.Equal(t, "change freeze", st.Paused.Reason)
	assert.Nil(t, st.Running, "nothing starts while paused")
	require.Len(t, st.Queue, 1)
	assert.Equal(t, op.ID, st.Queue[0].ID)
	assert.Len(t, stack.Fleet.Audit("local-a"), before, "no broker was touched")

	_, err = entity.Cancel(ctx, stack.Client, "local-a", workflows.CancelRequest{OperationID: "nope", By: "oncall"})
	require.ErrorIs(t, err, fleet.ErrRefused, "an unknown operation cannot be cancelled")

	_, err = entity.Resume(ctx, stack.Client, "local-a", workflows.ResumeRequest{By: "oncall"})
	require.NoError(t, err)
	res, err := entity.FollowOperation(ctx, stack.Client, "local-a", op.ID, 100*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err)
	assert.Len(t, res.Brokers, 3)
	stops, _ := stopsAndStarts(stack.Fleet.Audit("local-a"))
	assert.Equal(t, map[int32]int{1: 1, 2: 1, 3: 1}, stops)
	assert.Empty(t, stack.Fleet.Violations("local-a"))
}
