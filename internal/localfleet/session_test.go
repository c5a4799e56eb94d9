package localfleet_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/localfleet"
)

// watchZK opens a test session of its own on the fleet's ZooKeeper.
func watchZK(t *testing.T, zkAddr string) *zk.Conn {
	t.Helper()
	conn, _, err := zk.Connect([]string{zkAddr}, 4*time.Second, zk.WithLogger(discardLogger{}))
	require.NoError(t, err)
	t.Cleanup(conn.Close)
	return conn
}

// awaitDeleted waits for node's deletion, reported by a watch set while it
// exists.
func awaitDeleted(t *testing.T, conn *zk.Conn, node string) {
	t.Helper()
	exists, _, watch, err := conn.ExistsW(node)
	require.NoError(t, err)
	require.True(t, exists, "%s exists", node)
	select {
	case ev := <-watch:
		require.Equal(t, zk.EventNodeDeleted, ev.Type)
	case <-testContext(t).Done():
		t.Fatalf("%s never vanished", node)
	}
}

func hasEvent(events []localfleet.Event, broker int32, kind localfleet.EventKind) bool {
	for _, e := range events {
		if e.Broker == broker && e.Kind == kind {
			return true
		}
	}
	return false
}

// A running broker whose ZooKeeper session expires (expire-session) keeps
// running: its registration vanishes at session expiry and comes back with
// a new session, as a Kafka broker registers again; it held /controller,
// which comes back too.
func TestIntegrationExpireSessionReregisters(t *testing.T) {
	t.Parallel()
	f, zkAddr := startFaultFleet(t, faultCluster("local-a"))
	ctx := testContext(t)
	conn := watchZK(t, zkAddr)
	node := "/kfleet/local-a/brokers/ids/1"
	before, stat, err := conn.Get(node)
	require.NoError(t, err)
	oldOwner := stat.EphemeralOwner
	ctrl, _, err := conn.Get("/kfleet/local-a/controller")
	require.NoError(t, err)
	require.Contains(t, string(ctrl), `"brokerid":1`, "broker 1 is the controller")

	exists, _, watch, err := conn.ExistsW(node)
	require.NoError(t, err)
	require.True(t, exists)
	expired := time.Now()
	status, body := postFault(ctx, t, f, "local-a", 1, string(localfleet.FaultExpireSession), "")
	require.Equal(t, http.StatusOK, status, body)
	select {
	case ev := <-watch:
		require.Equal(t, zk.EventNodeDeleted, ev.Type)
	case <-ctx.Done():
		t.Fatal("registration never vanished")
	}
	gone := time.Since(expired)
	assert.Greater(t, gone, 3*time.Second, "vanished at session expiry, not at once")
	assert.Less(t, gone, 8*time.Second)
	assert.Equal(t, localfleet.StateRunning, brokerState(t, f, "local-a", 1), "the process keeps running")

	require.Eventually(t, func() bool {
		ok, _, err := conn.Exists(node)
		return err == nil && ok
	}, 5*time.Second, 50*time.Millisecond, "broker 1 registers again")
	after, stat, err := conn.Get(node)
	require.NoError(t, err)
	assert.NotEqual(t, oldOwner, stat.EphemeralOwner, "owned by a new session")
	var reg, prev map[string]any
	require.NoError(t, json.Unmarshal(before, &prev))
	require.NoError(t, json.Unmarshal(after, &reg))
	assert.Equal(t, prev, reg, "the same registration")
	require.Eventually(t, func() bool {
		_, _, err := conn.Get("/kfleet/local-a/controller")
		return err == nil
	}, 5*time.Second, 50*time.Millisecond, "a controller is elected again")
	assert.Equal(t, localfleet.StateRunning, brokerState(t, f, "local-a", 1))

	audit := f.Audit("local-a")
	assert.Equal(t, []localfleet.EventKind{localfleet.EventFault, localfleet.EventReregistered}, auditKinds(audit, 1))
	assert.Empty(t, f.Violations("local-a"))
	log, err := f.BrokerLog("local-a", 1, 10)
	require.NoError(t, err)
	assert.Contains(t, log[len(log)-1], "Registered broker 1 at path /brokers/ids/1")

	// A second expiry is handled as the first.
	status, body = postFault(ctx, t, f, "local-a", 1, string(localfleet.FaultExpireSession), "")
	require.Equal(t, http.StatusOK, status, body)
	awaitDeleted(t, conn, node)
	require.Eventually(t, func() bool {
		ok, _, err := conn.Exists(node)
		return err == nil && ok
	}, 5*time.Second, 50*time.Millisecond, "broker 1 registers again")
}

// A broker that crashes while its session is expiring never registers
// again, nor does a crashed or stopped broker have a session to expire.
func TestIntegrationExpireSessionCrashedNeverReregisters(t *testing.T) {
	t.Parallel()
	f, zkAddr := startFaultFleet(t, faultCluster("local-a"))
	ctx := testContext(t)
	conn := watchZK(t, zkAddr)
	node := "/kfleet/local-a/brokers/ids/2"

	status, body := postFault(ctx, t, f, "local-a", 2, string(localfleet.FaultExpireSession), "")
	require.Equal(t, http.StatusOK, status, body)
	require.NoError(t, f.Crash(ctx, "local-a", 2, "chaos"))
	awaitDeleted(t, conn, node)
	time.Sleep(3 * time.Second) // a live broker would be back by now
	exists, _, err := conn.Exists(node)
	require.NoError(t, err)
	assert.False(t, exists, "a crashed broker never registers again")
	assert.Equal(t, localfleet.StateCrashed, brokerState(t, f, "local-a", 2))
	assert.False(t, hasEvent(f.Audit("local-a"), 2, localfleet.EventReregistered))

	status, body = postFault(ctx, t, f, "local-a", 2, string(localfleet.FaultExpireSession), "")
	assert.Equal(t, http.StatusBadRequest, status, body)
	require.NoError(t, f.StopBroker(ctx, "local-a", 3, "me"))
	status, body = postFault(ctx, t, f, "local-a", 3, string(localfleet.FaultExpireSession), "")
	assert.Equal(t, http.StatusBadRequest, status, body)
}
