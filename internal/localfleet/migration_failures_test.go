package localfleet_test

import (
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// The migration's known failures from the field, and its rollback.

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
