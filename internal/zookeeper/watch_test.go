package zookeeper_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/devstack/tier"
	"github.com/kfleet/kfleet/internal/zookeeper"
)

// TestIntegrationWaitBrokersChanged runs the broker watch against a real ZooKeeper:
// it answers at once when the set already differs, blocks (ticking) while
// it does not, wakes on a registration or a departure under the chroot,
// waits for /brokers/ids to be created, and gives up when ctx ends.
func TestIntegrationWaitBrokersChanged(t *testing.T) {
	tier.Integration(t, tier.ZooKeeper)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	z, err := devstack.StartZooKeeper(ctx, t.TempDir(), 0, zerolog.New(zerolog.NewTestWriter(t)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = z.Stop() })

	admin, _, err := zk.Connect([]string{z.Addr}, 4*time.Second, zk.WithLogInfo(false))
	require.NoError(t, err)
	defer admin.Close()
	c, err := zookeeper.Dial(ctx, "test-a", z.Addr+"/kfleet/test-a")
	require.NoError(t, err)
	defer c.Close()

	var ticks atomic.Int32
	tick := func() { ticks.Add(1) }
	type result struct {
		ids []int32
		err error
	}
	wait := func(known ...int32) <-chan result {
		ch := make(chan result, 1)
		go func() {
			ids, err := c.WaitBrokersChanged(ctx, known, 20*time.Millisecond, tick)
			ch <- result{ids, err}
		}()
		return ch
	}
	blocked := func(ch <-chan result) {
		t.Helper()
		select {
		case r := <-ch:
			t.Fatalf("returned %v, %v while nothing changed", r.ids, r.err)
		case <-time.After(300 * time.Millisecond):
		}
	}
	got := func(ch <-chan result) []int32 {
		t.Helper()
		select {
		case r := <-ch:
			require.NoError(t, r.err)
			return r.ids
		case <-time.After(10 * time.Second):
			t.Fatal("the watch did not fire")
			return nil
		}
	}
	register := func(id string) {
		t.Helper()
		_, err := admin.Create("/kfleet/test-a/brokers/ids/"+id, []byte("{}"), zk.FlagEphemeral, zk.WorldACL(zk.PermAll))
		require.NoError(t, err)
	}

	// No /brokers/ids yet: an empty set, watched until it appears.
	ch := wait()
	blocked(ch)
	assert.Positive(t, ticks.Load(), "it ticks while it waits, so an activity can heartbeat")
	for _, p := range []string{"/kfleet", "/kfleet/test-a", "/kfleet/test-a/brokers", "/kfleet/test-a/brokers/ids"} {
		_, err := admin.Create(p, nil, 0, zk.WorldACL(zk.PermAll))
		require.NoError(t, err)
	}
	register("2")
	assert.Equal(t, []int32{2}, got(ch))

	// Already different: answered at once, in ascending order.
	register("1")
	register("3")
	_, err = admin.Create("/kfleet/test-a/brokers/ids/not-a-broker", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	assert.Equal(t, []int32{1, 2, 3}, got(wait(2)))

	// The same set in another order: blocks until a broker leaves.
	ch = wait(3, 1, 2)
	blocked(ch)
	require.NoError(t, admin.Delete("/kfleet/test-a/brokers/ids/2", -1))
	assert.Equal(t, []int32{1, 3}, got(ch))

	// And until one comes back.
	ch = wait(1, 3)
	blocked(ch)
	register("2")
	assert.Equal(t, []int32{1, 2, 3}, got(ch))

	// ctx ends the wait with its error.
	wctx, wcancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := c.WaitBrokersChanged(wctx, []int32{1, 2, 3}, time.Second, func() {})
		done <- err
	}()
	wcancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.Canceled)
		assert.Contains(t, err.Error(), "cluster test-a")
	case <-time.After(5 * time.Second):
		t.Fatal("the wait ignored its context")
	}
}
