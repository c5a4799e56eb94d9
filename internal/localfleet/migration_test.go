package localfleet_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

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

// migration drives a migration through the fleet's hosts, as kfleet's
// workflows do: SSM documents only.
type migration struct {
	t       *testing.T
	f       *localfleet.Fleet
	p       *provisioner
	conn    *zk.Conn
	cluster string
	kafkaID string
	ctls    map[int32]string // controller hosts by node id
}

func newMigration(t *testing.T) *migration {
	f, z := migFleet(t)
	m := &migration{t: t, f: f, p: newProvisioner(t, f), conn: watchZK(t, z.Addr), cluster: "local-m"}
	m.kafkaID = zkClusterID(t, m.conn, m.cluster)
	return m
}

// roll stops broker id and starts it in mode, then waits until it is
// back in every ISR.
func (m *migration) roll(ctx context.Context, id int32, mode string) {
	m.t.Helper()
	host := brokerHost(m.f, m.cluster, id)
	_, err := m.p.ssm.RunDocument(ctx, host, cloud.DocStopBroker, map[string]string{cloud.ParamGracePeriodSeconds: "30"}, "migration", func() {})
	require.NoError(m.t, err)
	params := map[string]string{cloud.ParamMetadataMode: mode}
	if mode != cloud.MetadataModeZooKeeper {
		params[cloud.ParamQuorumVoters] = provVoters
	}
	in := inSyncCount(m.f, m.cluster, id)
	res, err := m.p.ssm.RunDocument(ctx, host, cloud.DocStartBroker, params, "migration", func() {})
	require.NoError(m.t, err)
	assert.Contains(m.t, res.Stdout, "metadata.mode="+mode+"\n")
	waitInSync(m.t, m.f, m.cluster, id, in+1)
}

// rollController restarts controller id in mode once the quorum is
// caught up without it.
func (m *migration) rollController(ctx context.Context, id int32, mode string) {
	m.t.Helper()
	require.Eventually(m.t, func() bool {
		q, err := m.f.Quorum(m.cluster)
		require.NoError(m.t, err)
		return q.Leader >= 3000 && q.CaughtUp == 3
	}, 5*time.Second, 20*time.Millisecond)
	_, err := m.p.ssm.RunDocument(ctx, m.ctls[id], cloud.DocStopBroker, nil, "migration", func() {})
	require.NoError(m.t, err)
	_, err = m.p.ssm.RunDocument(ctx, m.ctls[id], cloud.DocStartBroker, map[string]string{cloud.ParamMetadataMode: mode}, "migration", func() {})
	require.NoError(m.t, err)
}

func inSyncCount(f *localfleet.Fleet, cluster string, id int32) int {
	n := 0
	for _, e := range f.Audit(cluster) {
		if e.Broker == id && e.Kind == localfleet.EventInSync {
			n++
		}
	}
	return n
}

func (m *migration) status() localfleet.MigrationStatus {
	m.t.Helper()
	st, err := m.f.Migration(m.cluster)
	require.NoError(m.t, err)
	return st
}

func (m *migration) waitState(state string) localfleet.MigrationStatus {
	m.t.Helper()
	var st localfleet.MigrationStatus
	require.Eventually(m.t, func() bool {
		st = m.status()
		return st.State == state
	}, 10*time.Second, 20*time.Millisecond, "migration state %s", state)
	return st
}

// toDualWrite runs phases 1 and 2.
func (m *migration) toDualWrite(ctx context.Context) localfleet.MigrationStatus {
	m.t.Helper()
	m.ctls = migrationControllers(ctx, m.t, m.f, m.p, m.cluster, m.kafkaID)
	for _, id := range []int32{1, 2} {
		m.roll(ctx, id, cloud.MetadataModeMigration)
	}
	st := m.status()
	assert.Equal(m.t, localfleet.MigrationWaiting, st.State, "broker 3 has not registered with KRaft yet")
	assert.Equal(m.t, []int32{1, 2}, st.Brokers[cloud.MetadataModeMigration])
	assert.Equal(m.t, []int32{1, 2}, st.RegisteredWithKRaft)
	_, ok := m.znode("/brokers/ids/1")
	assert.True(m.t, ok, "a migrating broker stays registered in ZooKeeper")
	m.roll(ctx, 3, cloud.MetadataModeMigration)
	return m.waitState(localfleet.MigrationDualWrite)
}

func (m *migration) znode(p string) (string, bool) {
	m.t.Helper()
	data, _, err := m.conn.Get(cloud.ZooKeeperChroot(m.cluster) + p)
	if err == zk.ErrNoNode {
		return "", false
	}
	require.NoError(m.t, err)
	return string(data), true
}

func countKinds(evs []localfleet.Event, kind localfleet.EventKind) int {
	n := 0
	for _, e := range evs {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// The four phases: the leader takes over once every broker registered,
// copies the metadata and dual-writes; KRaft brokers leave ZooKeeper;
// finalized controllers release it. Clients produce throughout, and no
// roll is judged unsafe.
func TestIntegrationMigrationPhases(t *testing.T) {
	t.Parallel()
	m := newMigration(t)
	ctx := testContext(t)
	cl, adm := kafkaClient(t, m.f, m.cluster, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("orders"))
	created, err := adm.CreateTopic(ctx, 3, 3, map[string]*string{"retention.ms": kadm.StringPtr("3600000")}, "orders")
	require.NoError(t, err)
	require.NoError(t, created.Err)
	produced := 0
	produce := func() {
		for range 5 {
			require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr())
			produced++
		}
	}
	produce()
	// A producer runs through every roll.
	bg, _ := kafkaClient(t, m.f, m.cluster, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("orders"))
	var bgOK, bgFailed atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if err := bg.ProduceSync(ctx, &kgo.Record{Value: []byte("bg")}).FirstErr(); err != nil {
				bgFailed.Add(1)
			} else {
				bgOK.Add(1)
			}
		}
	}()

	md := metadata(t, adm)
	want := 1 // retention.ms
	for _, td := range md.Topics {
		want += 1 + len(td.Partitions)
	}
	st := m.toDualWrite(ctx)
	produce()
	assert.Equal(t, want, st.RecordsCopied, "a record per topic, partition and dynamic config")
	q, err := m.f.Quorum(m.cluster)
	require.NoError(t, err)
	raw, ok := m.znode("/controller")
	require.True(t, ok)
	var ctl struct {
		Version, BrokerID, KRaftControllerEpoch int32
	}
	require.NoError(t, json.Unmarshal([]byte(strings.ReplaceAll(raw, "brokerid", "brokerID")), &ctl))
	assert.Equal(t, int32(2), ctl.Version)
	assert.Equal(t, q.Leader, ctl.BrokerID, "/controller names the KRaft leader")
	assert.Equal(t, q.Epoch, ctl.KRaftControllerEpoch)
	raw, ok = m.znode("/migration")
	require.True(t, ok)
	var mig map[string]int64
	require.NoError(t, json.Unmarshal([]byte(raw), &mig))
	assert.Equal(t, int64(0), mig["version"])
	assert.Equal(t, int64(q.Leader), mig["kraft_controller_id"])
	assert.Positive(t, mig["kraft_metadata_offset"])
	epoch, _ := m.znode("/controller_epoch")
	assert.NotEqual(t, "1", epoch, "the takeover bumps /controller_epoch")
	_, ok = m.znode("/brokers/topics/orders")
	assert.True(t, ok)
	audit := m.f.Audit(m.cluster)
	for _, k := range []localfleet.EventKind{localfleet.EventMigrationWaiting, localfleet.EventMigrationStarted, localfleet.EventMetadataCopied, localfleet.EventDualWrite} {
		assert.Equal(t, 1, countKinds(audit, k), k)
	}

	// Dual-write: a topic created through the brokers lands in ZooKeeper.
	created, err = adm.CreateTopic(ctx, 2, 3, nil, "payments")
	require.NoError(t, err)
	require.NoError(t, created.Err)
	require.Eventually(t, func() bool { _, ok := m.znode("/brokers/topics/payments"); return ok }, 5*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool { return m.status().DualWrites > 0 }, 5*time.Second, 20*time.Millisecond)
	resp, err := http.Get(m.f.Endpoints().API + "/v1/clusters/local-m/migration")
	require.NoError(t, err)
	var viaHTTP localfleet.MigrationStatus
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&viaHTTP))
	resp.Body.Close()
	assert.Equal(t, localfleet.MigrationDualWrite, viaHTTP.State)
	assert.True(t, viaHTTP.ZooKeeperInUse)
	assert.Equal(t, 4, viaHTTP.ZooKeeperSessions, "three brokers' and the migration leader's")

	// Phase 3: KRaft brokers leave ZooKeeper.
	for _, id := range []int32{1, 2, 3} {
		m.roll(ctx, id, cloud.MetadataModeKRaft)
		_, ok := m.znode(fmt.Sprintf("/brokers/ids/%d", id))
		assert.False(t, ok, "broker %d's registration", id)
		produce()
	}
	st = m.waitState(localfleet.MigrationKRaft)
	assert.Equal(t, []int32{1, 2, 3}, st.Brokers[cloud.MetadataModeKRaft])
	assert.Equal(t, 1, st.ZooKeeperSessions, "the controllers' own, still dual-writing")
	waitFenced(t, m.f, m.cluster, map[int32]bool{1: false, 2: false, 3: false})

	// Phase 4: finalize the controllers, the leader last.
	q, err = m.f.Quorum(m.cluster)
	require.NoError(t, err)
	var order []int32
	for id := range m.ctls {
		if id != q.Leader {
			order = append(order, id)
		}
	}
	slices.Sort(order)
	for _, id := range append(order, q.Leader) {
		m.rollController(ctx, id, cloud.MetadataModeKRaft)
	}
	st = m.waitState(localfleet.MigrationReleased)
	assert.False(t, st.ZooKeeperInUse)
	assert.Zero(t, st.ZooKeeperSessions)
	assert.Empty(t, st.MigrationControllers)
	assert.Equal(t, 1, countKinds(m.f.Audit(m.cluster), localfleet.EventZooKeeperReleased))
	assert.Empty(t, m.f.Endpoints().Clusters[m.cluster].ZooKeeper)

	// Nothing is written to ZooKeeper any more.
	last := st.LastZooKeeperWrite
	created, err = adm.CreateTopic(ctx, 2, 3, nil, "refunds")
	require.NoError(t, err)
	require.NoError(t, created.Err)
	produce()
	time.Sleep(300 * time.Millisecond)
	_, ok = m.znode("/brokers/topics/refunds")
	assert.False(t, ok)
	assert.Equal(t, last, m.status().LastZooKeeperWrite)

	// Every record is there, and can be read.
	close(stop)
	<-done
	assert.Zero(t, bgFailed.Load(), "no produce failed through the rolls")
	assert.Greater(t, bgOK.Load(), int64(100))
	offsets, err := adm.ListEndOffsets(ctx, "orders")
	require.NoError(t, err)
	var total int64
	offsets.Each(func(o kadm.ListedOffset) { total += o.Offset })
	assert.Equal(t, int64(produced)+bgOK.Load(), total)
	consumer, _ := kafkaClient(t, m.f, m.cluster, kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var read int64
	for read < total {
		fetches := consumer.PollFetches(ctx)
		require.NoError(t, fetches.Err())
		read += int64(fetches.NumRecords())
	}
	assert.Equal(t, total, read)
	assert.Empty(t, m.f.Violations(m.cluster))
}

// A /migration left by an earlier attempt: the leader skips the copy and
// syncs its empty metadata to ZooKeeper; the topics are gone.
func TestIntegrationMigrationLeftoverZNodeWipesTopics(t *testing.T) {
	t.Parallel()
	m := newMigration(t)
	ctx := testContext(t)
	_, adm := kafkaClient(t, m.f, m.cluster)
	created, err := adm.CreateTopic(ctx, 3, 3, nil, "orders")
	require.NoError(t, err)
	require.NoError(t, created.Err)
	_, err = m.conn.Create("/kfleet/local-m/migration",
		[]byte(`{"version":0,"kraft_metadata_offset":41,"kraft_metadata_epoch":2,"kraft_controller_id":3000,"kraft_controller_epoch":2}`), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)

	st := m.toDualWrite(ctx)
	assert.Zero(t, st.RecordsCopied)
	require.Eventually(t, func() bool {
		topics, err := adm.ListTopics(ctx)
		require.NoError(t, err)
		return !topics.Has("orders")
	}, 5*time.Second, 50*time.Millisecond, "the topic is really gone")
	_, ok := m.znode("/brokers/topics/orders")
	assert.False(t, ok)
	vs := m.f.Violations(m.cluster)
	require.Len(t, vs, 1)
	assert.Equal(t, localfleet.ViolationMetadataWiped, vs[0].Kind)
	assert.Contains(t, vs[0].Detail, "orders")
	assert.Zero(t, countKinds(m.f.Audit(m.cluster), localfleet.EventMetadataCopied))
}

// Finalizing a controller while a broker is still a ZooKeeper broker:
// "finalization before brokers re-register".
func TestIntegrationMigrationFinalizedEarly(t *testing.T) {
	t.Parallel()
	m := newMigration(t)
	ctx := testContext(t)
	m.toDualWrite(ctx)
	m.roll(ctx, 1, cloud.MetadataModeKRaft)
	q, err := m.f.Quorum(m.cluster)
	require.NoError(t, err)
	follower := int32(3000)
	if q.Leader == follower {
		follower = 3001
	}
	m.rollController(ctx, follower, cloud.MetadataModeKRaft)
	vs := m.f.Violations(m.cluster)
	require.NotEmpty(t, vs)
	assert.Equal(t, localfleet.ViolationMigrationFinalizedEarly, vs[0].Kind)
	assert.Contains(t, vs[0].Detail, "[2 3]")
	// Brokers 2 and 3 left every ISR: what only broker 1 holds in sync
	// is below min.insync.replicas.
	for _, v := range vs[1:] {
		assert.Equal(t, localfleet.ViolationUnderMinISR, v.Kind)
	}
	assert.Equal(t, 2, countKinds(m.f.Audit(m.cluster), localfleet.EventMetadataLost))
	assert.Equal(t, localfleet.MigrationDualWrite, m.status().State, "not released: two controllers still migrate")
}

// Rollback from dual-write: the controllers stop, kfleet deletes
// /controller and /migration, the brokers come back as ZooKeeper brokers
// and elect a controller among themselves; without the deletion of
// /controller none can.
func TestIntegrationMigrationRollback(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name         string
		deleteZNodes bool
		want         []localfleet.ViolationKind
	}{
		{"clean", true, nil},
		{"controller znode left", false, []localfleet.ViolationKind{localfleet.ViolationZKControllerStuck}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := newMigration(t)
			ctx := testContext(t)
			m.toDualWrite(ctx)
			for _, id := range []int32{3000, 3001, 3002} {
				_, err := m.p.ssm.RunDocument(ctx, m.ctls[id], cloud.DocStopBroker, nil, "rollback", func() {})
				require.NoError(t, err)
			}
			if tc.deleteZNodes {
				require.NoError(t, m.conn.Delete("/kfleet/local-m/controller", -1))
				require.NoError(t, m.conn.Delete("/kfleet/local-m/migration", -1))
			}
			for _, id := range []int32{1, 2, 3} {
				m.roll(ctx, id, cloud.MetadataModeZooKeeper)
			}
			for _, host := range m.ctls {
				_, err := m.p.ec2.TerminateInstance(ctx, host)
				require.NoError(t, err)
			}
			st := m.waitState(localfleet.MigrationNone)
			assert.Equal(t, []int32{1, 2, 3}, st.Brokers[cloud.MetadataModeZooKeeper])
			assert.Equal(t, 3, st.ZooKeeperSessions, "the brokers' own, no controller's")
			var kinds []localfleet.ViolationKind
			for _, v := range m.f.Violations(m.cluster) {
				kinds = append(kinds, v.Kind)
			}
			assert.Equal(t, tc.want, kinds)
			raw, ok := m.znode("/controller")
			require.True(t, ok)
			status, err := m.f.Status(m.cluster)
			require.NoError(t, err)
			if tc.deleteZNodes {
				assert.Contains(t, raw, `"version":1`, "a ZooKeeper broker is controller")
				assert.Positive(t, status.Controller)
			} else {
				assert.Contains(t, raw, "kraftControllerEpoch")
				assert.Equal(t, int32(-1), status.Controller)
			}
		})
	}
}
