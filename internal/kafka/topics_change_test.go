package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/internal/fleet"
)

// Against kfake: a topic's shape, partitions added and retention set in
// one request each, groups deleted: an empty one, one already gone, and
// one with a live member refused with NON_EMPTY_GROUP.
func TestTopicChangesAgainstKfake(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, _ := saslCluster(t)
	_, err := a.CreateTopicsBatch(ctx, nil, []fleet.TopicRequest{
		{Tenant: "wabash-1", Name: "wabash-1.a", Partitions: 3, ReplicationFactor: 1, RetentionMs: 86_400_000},
		{Tenant: "wabash-1", Name: "wabash-1.b", Partitions: 1, ReplicationFactor: 1, RetentionMs: 86_400_000},
	})
	require.NoError(t, err)

	shapes, err := a.TopicShapes(ctx, []string{"wabash-1.a", "wabash-1.missing"})
	require.NoError(t, err)
	require.Len(t, shapes, 1, "a topic that does not exist is absent")
	assert.Equal(t, 3, shapes["wabash-1.a"].Partitions)
	assert.Equal(t, 1, shapes["wabash-1.a"].ReplicationFactor)
	assert.Equal(t, int64(86_400_000), shapes["wabash-1.a"].RetentionMs)

	// (kfake takes an equal total as success; the activity refuses one
	// before asking.)
	ans, err := a.CreatePartitionsBatch(ctx, []fleet.TopicRequest{{Name: "wabash-1.a", Partitions: 6}})
	require.NoError(t, err)
	assert.Equal(t, TopicAnswer{}, ans["wabash-1.a"])
	ans, err = a.AlterRetentionBatch(ctx, []fleet.TopicRequest{{Name: "wabash-1.a", RetentionMs: 129_600_000}})
	require.NoError(t, err)
	assert.Equal(t, TopicAnswer{}, ans["wabash-1.a"])
	shapes, err = a.TopicShapes(ctx, []string{"wabash-1.a"})
	require.NoError(t, err)
	assert.Equal(t, 6, shapes["wabash-1.a"].Partitions)
	assert.Equal(t, int64(129_600_000), shapes["wabash-1.a"].RetentionMs)

	// An empty group (its offsets committed, no member) and a live one.
	adm := kadm.NewClient(a.client)
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "wabash-1.a", Partition: 0, At: 0, LeaderEpoch: -1})
	_, err = adm.CommitOffsets(ctx, "wabash-1.idle", offsets)
	require.NoError(t, err)
	live := liveMember(ctx, t, a, "wabash-1.live", "wabash-1.a")
	ans, err = a.DeleteGroupsBatch(ctx, []string{"wabash-1.idle", "wabash-1.live", "wabash-1.gone"})
	require.NoError(t, err)
	assert.Equal(t, TopicAnswer{}, ans["wabash-1.idle"])
	assert.Equal(t, "group wabash-1.live has live members (NON_EMPTY_GROUP): stop its consumers, then ask again", ans["wabash-1.live"].Err)
	assert.True(t, ans["wabash-1.gone"].Exists, "a group already gone is done")
	live.Close()
}

// liveMember is a consumer of topic in group, joined.
func liveMember(ctx context.Context, t *testing.T, a *Admin, group, topic string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(a.client.Opts(), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic))...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(a.client)
	require.Eventually(t, func() bool {
		pctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		cl.PollFetches(pctx)
		g, err := adm.DescribeGroups(ctx, group)
		return err == nil && len(g[group].Members) > 0
	}, 15*time.Second, 50*time.Millisecond, "the consumer joins its group")
	return cl
}
