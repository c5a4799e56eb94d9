package localfleet_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/localfleet"
)

// Brokers register in ZooKeeper as ZooKeeper-mode Kafka does, under the
// cluster's chroot, and a stop closes the broker's session so its ephemeral
// node vanishes at once.
func TestIntegrationZooKeeperRegistrations(t *testing.T) {
	f, z := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a"), testCluster("local-b")}})
	ctx := testContext(t)
	ep := f.Endpoints().Clusters["local-a"]
	require.Equal(t, z.Addr+"/kfleet/local-a", ep.ZooKeeper)

	conn, _, err := zk.Connect([]string{z.Addr}, 4*time.Second, zk.WithLogger(discardLogger{}))
	require.NoError(t, err)
	t.Cleanup(conn.Close)
	root := strings.TrimPrefix(ep.ZooKeeper, z.Addr)

	ids := func(cluster string) []string {
		children, _, err := conn.Children("/kfleet/" + cluster + "/brokers/ids")
		require.NoError(t, err)
		return children
	}
	controller := func() (int32, bool) {
		data, _, err := conn.Get(root + "/controller")
		if err == zk.ErrNoNode {
			return 0, false
		}
		require.NoError(t, err)
		var c struct {
			BrokerID int32 `json:"brokerid"`
		}
		require.NoError(t, json.Unmarshal(data, &c))
		return c.BrokerID, true
	}

	assert.ElementsMatch(t, []string{"1", "2", "3"}, ids("local-a"))
	assert.ElementsMatch(t, []string{"1", "2", "3"}, ids("local-b"), "each cluster has its own chroot")
	data, stat, err := conn.Get(root + "/brokers/ids/2")
	require.NoError(t, err)
	assert.NotZero(t, stat.EphemeralOwner, "registration is ephemeral")
	var reg struct {
		Endpoints []string `json:"endpoints"`
		Host      string   `json:"host"`
		Port      int      `json:"port"`
		Version   int      `json:"version"`
	}
	require.NoError(t, json.Unmarshal(data, &reg))
	assert.Equal(t, []string{"PLAINTEXT://" + ep.Brokers[1].Address}, reg.Endpoints)
	assert.Equal(t, "127.0.0.1", reg.Host)
	assert.Equal(t, 5, reg.Version)
	id, ok := controller()
	require.True(t, ok)
	assert.Equal(t, int32(1), id)

	// Each broker owns its own session.
	_, stat1, err := conn.Get(root + "/brokers/ids/1")
	require.NoError(t, err)
	assert.NotEqual(t, stat.EphemeralOwner, stat1.EphemeralOwner)

	require.NoError(t, f.StopBroker(ctx, "local-a", 1, "test"))
	assert.ElementsMatch(t, []string{"2", "3"}, ids("local-a"), "gone as soon as the stop returns")
	id, ok = controller()
	require.True(t, ok)
	assert.Equal(t, int32(2), id, "/controller moves with the controller")
	assert.ElementsMatch(t, []string{"1", "2", "3"}, ids("local-b"), "other clusters are untouched")

	require.NoError(t, f.StartBroker(ctx, "local-a", 1, "test"))
	assert.ElementsMatch(t, []string{"1", "2", "3"}, ids("local-a"), "registered when the start returns")

	require.NoError(t, f.Close())
	assert.Empty(t, ids("local-a"), "Close deregisters every broker")
	_, ok = controller()
	assert.False(t, ok)
}

// discardLogger silences go-zookeeper, whose goroutines may still log
// after the test has ended (which testing.T does not allow).
type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}
