package localfleet_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// The ZooKeeper-to-KRaft migration (KIP-866) against the fleet, with the
// product's own clients (SSM documents) and a real ZooKeeper.

// migFleet is a fleet with one 3-broker ZooKeeper cluster, "local-m".
func migFleet(t *testing.T) (*localfleet.Fleet, *devstack.ZooKeeper) {
	t.Helper()
	return startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-m")},
		EC2: localfleet.EC2Config{Timing: provTiming, ClusterTiming: testTiming, ControllerTiming: kraftTiming}})
}

// zkClusterID reads /cluster/id as kfleet's preflight does.
func zkClusterID(t *testing.T, conn *zk.Conn, cluster string) string {
	t.Helper()
	data, _, err := conn.Get(cloud.ZooKeeperChroot(cluster) + "/cluster/id")
	require.NoError(t, err)
	var node struct{ Version, ID string }
	require.NoError(t, json.Unmarshal(data, &node))
	require.Equal(t, "1", node.Version)
	require.Len(t, node.ID, 22)
	return node.ID
}

// migrationControllers provisions the three migration controllers of
// cluster and waits until they have a leader.
func migrationControllers(ctx context.Context, t *testing.T, f *localfleet.Fleet, p *provisioner, cluster, kafkaID string) map[int32]string {
	t.Helper()
	zkc := f.Endpoints().ZooKeeper + cloud.ZooKeeperChroot(cluster)
	hosts := map[int32]string{}
	for i, az := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		in, _ := p.controller(ctx, cluster, int32(3000+i), az, kafkaID, zkc)
		hosts[int32(3000+i)] = in.ID
	}
	require.Eventually(t, func() bool {
		q, err := f.Quorum(cluster)
		require.NoError(t, err)
		return q.Leader >= 3000
	}, 5*time.Second, 20*time.Millisecond, "the migration quorum elects a leader")
	return hosts
}

// brokerHost is broker id's instance.
func brokerHost(f *localfleet.Fleet, cluster string, id int32) string {
	for _, b := range f.Endpoints().Clusters[cluster].Brokers {
		if b.ID == id {
			return b.InstanceID
		}
	}
	return ""
}

// Phase 1: migration controllers on a ZooKeeper cluster, formatted with
// its /cluster/id; the leader waits for the brokers.
func TestIntegrationMigrationControllers(t *testing.T) {
	t.Parallel()
	f, z := migFleet(t)
	ctx := testContext(t)
	p := newProvisioner(t, f)
	conn := watchZK(t, z.Addr)
	kafkaID := zkClusterID(t, conn, "local-m")
	epoch, _, err := conn.Get("/kfleet/local-m/controller_epoch")
	require.NoError(t, err)
	assert.Equal(t, "1", string(epoch))
	id, err := f.ClusterID("local-m")
	require.NoError(t, err)
	assert.Equal(t, kafkaID, id)
	st, err := f.Migration("local-m")
	require.NoError(t, err)
	assert.Equal(t, localfleet.MigrationNone, st.State)
	assert.Equal(t, []int32{1, 2, 3}, st.Brokers[cloud.MetadataModeZooKeeper])
	assert.Equal(t, 3, st.ZooKeeperSessions)

	// Another cluster id: refused at the start, as Kafka refuses it.
	zkc := f.Endpoints().ZooKeeper + cloud.ZooKeeperChroot("local-m")
	wrong := p.launchController(ctx, "local-m", 3000, "us-east-1a")
	_, err = p.configureController(ctx, wrong.ID, "local-m", 3000, provKafkaID, zkc)
	require.NoError(t, err)
	_, err = p.start(ctx, wrong.ID)
	assert.ErrorContains(t, err, "INCONSISTENT_CLUSTER_ID")
	// Without ZooKeeperConnect a controller cannot join a ZooKeeper
	// cluster.
	plain := p.launchController(ctx, "local-m", 3001, "us-east-1a")
	_, err = p.configureController(ctx, plain.ID, "local-m", 3001, kafkaID, "")
	require.NoError(t, err)
	_, err = p.start(ctx, plain.ID)
	assert.ErrorContains(t, err, "migration controllers")

	hosts := migrationControllers(ctx, t, f, p, "local-m", kafkaID)
	res, err := p.ssm.RunDocument(ctx, hosts[3001], cloud.DocBrokerStatus, nil, "", func() {})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(res.Stdout, "running\nprocess.roles=controller\nnode.id=3001\nversion=3.9.0\nmetadata.mode=migration\n"), res.Stdout)
	res, err = p.ssm.RunDocument(ctx, brokerHost(f, "local-m", 2), cloud.DocBrokerStatus, nil, "", func() {})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(res.Stdout, "running\nmetadata.mode=zookeeper\n"), res.Stdout)

	// The leader waits for the brokers, and says so in its log.
	q, err := f.Quorum("local-m")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		res, err := p.ssm.RunDocument(ctx, hosts[q.Leader], cloud.DocTailLog, nil, "", func() {})
		require.NoError(t, err)
		return strings.Contains(res.Stdout, "No brokers are known to KRaft, waiting for brokers to register")
	}, 5*time.Second, 50*time.Millisecond)
	st, err = f.Migration("local-m")
	require.NoError(t, err)
	assert.Equal(t, localfleet.MigrationWaiting, st.State)
	assert.Equal(t, []int32{3000, 3001, 3002}, st.MigrationControllers)
	assert.True(t, slicesContainsKind(f.Audit("local-m"), localfleet.EventMigrationWaiting))
	assert.NotEmpty(t, f.Endpoints().Clusters["local-m"].ZooKeeper, "ZooKeeper is still the cluster's")
	assert.Empty(t, f.Violations("local-m"))
}
