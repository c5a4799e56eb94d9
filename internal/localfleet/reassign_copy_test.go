package localfleet_test

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kfleet/kfleet/internal/localfleet"
)

const (
	kib = 1 << 10
	mib = 1 << 20
	// chunk is the record size the tests produce, uncompressed, so that
	// a partition grows by what is produced.
	chunk = 256 * kib
)

// moveFleet is a fleet of 8 brokers without topics, whose reassignment
// copies run at 64 MiB/s unthrottled.
type moveFleet struct {
	f   *localfleet.Fleet
	cl  *kgo.Client
	adm *kadm.Client
}

func startMoveFleet(t *testing.T) moveFleet {
	cc := testCluster("local-a")
	cc.Brokers = 8
	cc.Topics = []localfleet.TopicConfig{}
	cc.Timing.CatchUp = 100 * time.Millisecond
	cc.Timing.CatchUpBytesPerSec = 64 * mib
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{cc}})
	cl, adm := kafkaClient(t, f, "local-a", kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(2*mib), kgo.ProducerBatchCompression(kgo.NoCompression()))
	return moveFleet{f: f, cl: cl, adm: adm}
}

// topic creates topic with one partition per assignment and produces
// size bytes into each partition.
func (m moveFleet) topic(t *testing.T, topic string, size int, assignment ...[]int32) {
	t.Helper()
	ctx := testContext(t)
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for p, replicas := range assignment {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(p), replicas
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, m.cl)
	require.NoError(t, err)
	require.Len(t, resp.Topics, 1)
	require.Zero(t, resp.Topics[0].ErrorCode, "create %s", topic)
	for p := range assignment {
		for range size / chunk {
			rec := &kgo.Record{Topic: topic, Partition: int32(p), Value: bytes.Repeat([]byte("m"), chunk)}
			require.NoError(t, m.cl.ProduceSync(ctx, rec).FirstErr())
		}
	}
}

func (m moveFleet) alterBroker(t *testing.T, broker int32, cfgs ...kadm.AlterConfig) {
	t.Helper()
	_, err := oneResult(t)(m.adm.AlterBrokerConfigs(testContext(t), cfgs, broker))
	require.NoError(t, err)
}

// reassign moves every partition of topic to its target.
func (m moveFleet) reassign(t *testing.T, topic string, targets ...[]int32) {
	t.Helper()
	req := kadm.AlterPartitionAssignmentsReq{}
	for p, target := range targets {
		req.Assign(topic, int32(p), target)
	}
	resp, err := m.adm.AlterPartitionAssignments(testContext(t), req)
	require.NoError(t, err)
	require.NoError(t, resp.Error())
}

// assign moves one partition of topic to target.
func (m moveFleet) assign(t *testing.T, topic string, p int32, target []int32) {
	t.Helper()
	req := kadm.AlterPartitionAssignmentsReq{}
	req.Assign(topic, p, target)
	resp, err := m.adm.AlterPartitionAssignments(testContext(t), req)
	require.NoError(t, err)
	require.NoError(t, resp.Error())
}

// events returns the audit's reassignment events of kind for topic.
func (m moveFleet) events(topic string, kind localfleet.EventKind) []localfleet.Event {
	var out []localfleet.Event
	for _, e := range m.f.Audit("local-a") {
		if e.Kind == kind && e.Reassignment != nil && e.Reassignment.Topic == topic {
			out = append(out, e)
		}
	}
	return out
}

// waitMoved waits for n completed reassignments of topic and returns the
// longest one's duration.
func (m moveFleet) waitMoved(t *testing.T, topic string, n int, within time.Duration) time.Duration {
	t.Helper()
	require.Eventually(t, func() bool { return len(m.events(topic, localfleet.EventReassignmentCompleted)) >= n },
		within, 20*time.Millisecond, "%d reassignments of %s complete", n, topic)
	var longest time.Duration
	for _, e := range m.events(topic, localfleet.EventReassignmentCompleted) {
		longest = max(longest, e.Reassignment.Duration)
	}
	return longest
}

func (m moveFleet) stats(t *testing.T) localfleet.ReassignmentStats {
	t.Helper()
	s, err := m.f.ReassignmentStats("local-a")
	require.NoError(t, err)
	return s
}

// A reassignment's copies run at the throttle the configs set, or at
// the cluster's copy rate without one; lifting the throttle mid-copy
// speeds it up. Each case moves replicas from broker 1 (the leader) to a
// broker of its own, so that every broker's measurements are the case's.
func TestIntegrationReassignmentThrottle(t *testing.T) {
	m := startMoveFleet(t)
	tests := []struct {
		name         string
		to           int32 // the adding broker
		partitions   int
		size         int   // bytes per partition
		followerRate int64 // on the adding broker; 0: none
		leaderRate   int64 // on broker 1, the leader; 0: none
		lift         time.Duration
		// The effective throttle on the adding broker's inbound copies
		// (0: none), and the bounds on the longest copy.
		throttle int64
		min, max time.Duration
	}{
		{name: "follower throttle", to: 3, partitions: 1, size: mib, followerRate: 512 * kib,
			throttle: 512 * kib, min: 1800 * time.Millisecond, max: 6 * time.Second},
		{name: "leader throttle below the follower's", to: 4, partitions: 1, size: mib, followerRate: 4 * mib, leaderRate: 512 * kib,
			throttle: 512 * kib, min: 1800 * time.Millisecond, max: 6 * time.Second},
		{name: "copies share their broker's throttle", to: 5, partitions: 2, size: 512 * kib, followerRate: 512 * kib,
			throttle: 512 * kib, min: 1800 * time.Millisecond, max: 6 * time.Second},
		{name: "unthrottled", to: 6, partitions: 1, size: 2 * mib,
			min: 100 * time.Millisecond, max: 1500 * time.Millisecond},
		{name: "throttle lifted mid-copy", to: 7, partitions: 1, size: 2 * mib, followerRate: 256 * kib, lift: time.Second,
			throttle: 256 * kib, min: 900 * time.Millisecond, max: 4 * time.Second},
	}
	var moved int
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := "move-" + strconv.Itoa(int(tt.to))
			var assignment, targets [][]int32
			var follower, leader []string
			for p := range tt.partitions {
				assignment, targets = append(assignment, []int32{1, 2}), append(targets, []int32{tt.to, 2})
				follower, leader = append(follower, fmt.Sprintf("%d:%d", p, tt.to)), append(leader, fmt.Sprintf("%d:1", p))
			}
			m.topic(t, topic, tt.size, assignment...)
			var throttles []kadm.AlterConfig
			if tt.followerRate > 0 {
				m.alterBroker(t, tt.to, setConfig(followerRate, strconv.FormatInt(tt.followerRate, 10)))
				throttles = append(throttles, setConfig(followerReplicas, strings.Join(follower, ",")))
			}
			if tt.leaderRate > 0 {
				m.alterBroker(t, 1, setConfig(leaderRate, strconv.FormatInt(tt.leaderRate, 10)))
				throttles = append(throttles, setConfig(leaderReplicas, strings.Join(leader, ",")))
			}
			if len(throttles) > 0 {
				_, err := oneResult(t)(m.adm.AlterTopicConfigs(testContext(t), throttles, topic))
				require.NoError(t, err)
			}

			m.reassign(t, topic, targets...)
			if tt.lift > 0 {
				time.Sleep(tt.lift)
				m.alterBroker(t, tt.to, deleteConfig(followerRate))
			}
			took := m.waitMoved(t, topic, tt.partitions, 15*time.Second)
			moved += tt.partitions
			t.Logf("%d x %d bytes into broker %d took %s", tt.partitions, tt.size, tt.to, took)
			assert.GreaterOrEqual(t, took, tt.min)
			assert.LessOrEqual(t, took, tt.max)

			meta := metadata(t, m.adm).Topics[topic]
			for p := range tt.partitions {
				assert.Equal(t, []int32{tt.to, 2}, meta.Partitions[int32(p)].Replicas)
				assert.ElementsMatch(t, []int32{tt.to, 2}, meta.Partitions[int32(p)].ISR)
			}
			started := m.events(topic, localfleet.EventReassignmentStarted)
			require.Len(t, started, tt.partitions)
			assert.Equal(t, "client", started[0].Who)
			assert.Equal(t, []int32{1, 2}, started[0].Reassignment.From)
			assert.GreaterOrEqual(t, started[0].Reassignment.Bytes, int64(tt.size), "what the adding replica must copy")

			bs := m.stats(t).Brokers[tt.to]
			t.Logf("broker %d: %+v", tt.to, bs)
			assert.GreaterOrEqual(t, bs.BytesIn, int64(tt.partitions*tt.size))
			if tt.throttle > 0 {
				assert.Positive(t, bs.PeakThrottledBytesPerSec)
				assert.LessOrEqual(t, bs.PeakThrottledBytesPerSec, 1.1*float64(tt.throttle), "the throttle held")
			}
			if tt.followerRate > 0 {
				assert.Equal(t, tt.followerRate, bs.ThrottleBytesPerSec)
			}
			if tt.leaderRate > 0 {
				leader := m.stats(t).Brokers[1]
				assert.Equal(t, tt.leaderRate, leader.LeaderThrottleBytesPerSec)
				assert.LessOrEqual(t, leader.PeakThrottledOutBytesPerSec, 1.1*float64(tt.leaderRate))
			}
			if tt.lift > 0 {
				assert.Greater(t, bs.PeakBytesPerSec, float64(tt.followerRate), "unthrottled once lifted")
			}
		})
	}

	s := m.stats(t)
	assert.Equal(t, moved, s.PartitionsMoved)
	assert.Zero(t, s.InFlight)
	assert.True(t, s.FirstStart.Before(s.LastEnd))
	assert.Positive(t, s.Throughput())
	assert.Empty(t, m.f.Violations("local-a"), "no throttle exceeded")
	assert.Equal(t, float64(s.Brokers[3].BytesIn), scrapeCounter(t, m.f, 3, localfleet.MetricReassignmentBytesIn),
		"the broker's metrics count what it took in")
}

func scrapeCounter(t *testing.T, f *localfleet.Fleet, broker int32, name string) float64 {
	t.Helper()
	resp, err := http.Get(f.MetricsURL("local-a", broker))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	parser := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	mf, ok := fams[name]
	require.True(t, ok, "%s served", name)
	require.Len(t, mf.GetMetric(), 1)
	return mf.GetMetric()[0].GetCounter().GetValue()
}

// While it copies, an adding replica's log grows in DescribeLogDirs; a
// copy into a stopped broker waits for it (its catch-up does not put it
// in the ISR); cancelling and superseding still work.
func TestIntegrationReassignmentCopyLifecycle(t *testing.T) {
	m := startMoveFleet(t)
	ctx := testContext(t)
	size := mib
	m.topic(t, "slow", size, []int32{1, 2}, []int32{1, 2}, []int32{1, 2})
	m.alterBroker(t, 3, setConfig(followerRate, strconv.Itoa(256*kib)))
	m.alterBroker(t, 4, setConfig(followerRate, strconv.Itoa(256*kib)))
	_, err := oneResult(t)(m.adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{setConfig(followerReplicas, "*")}, "slow"))
	require.NoError(t, err)

	copied := func(broker int32, p int32) int64 {
		dirs, err := m.adm.DescribeBrokerLogDirs(ctx, broker, kadm.TopicsSet{"slow": {p: {}}})
		require.NoError(t, err)
		for _, d := range dirs {
			require.NoError(t, d.Err)
			if dp, ok := d.Topics["slow"][p]; ok {
				return dp.Size
			}
		}
		return -1
	}

	t.Run("an adding replica's log grows", func(t *testing.T) {
		m.reassign(t, "slow", []int32{3, 2})
		time.Sleep(time.Second)
		first := copied(3, 0)
		time.Sleep(500 * time.Millisecond)
		second := copied(3, 0)
		t.Logf("copied %d, then %d of %d", first, second, size)
		assert.Positive(t, first)
		assert.Greater(t, second, first)
		assert.Less(t, second, int64(size))
	})

	t.Run("superseded: the dropped replica leaves, the new one copies", func(t *testing.T) {
		m.reassign(t, "slow", []int32{4, 2})
		inProgress, err := m.adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"slow": {0: {}}})
		require.NoError(t, err)
		r := inProgress["slow"][0]
		assert.Equal(t, []int32{4}, r.AddingReplicas)
		assert.Equal(t, []int32{4, 2, 1}, r.Replicas, "broker 3 is no replica any more")
		assert.Equal(t, int64(-1), copied(3, 0), "broker 3 holds no replica of it")
	})

	t.Run("cancelled", func(t *testing.T) {
		time.Sleep(500 * time.Millisecond) // broker 4 copies some
		req := kadm.AlterPartitionAssignmentsReq{}
		req.CancelAssign("slow", 0)
		resp, err := m.adm.AlterPartitionAssignments(ctx, req)
		require.NoError(t, err)
		require.NoError(t, resp.Error())
		p := metadata(t, m.adm).Topics["slow"].Partitions[0]
		assert.Equal(t, []int32{1, 2}, p.Replicas)
		assert.Equal(t, []int32{1, 2}, p.ISR)
		cancelled := m.events("slow", localfleet.EventReassignmentCancelled)
		require.Len(t, cancelled, 1)
		assert.Positive(t, cancelled[0].Reassignment.Bytes, "what was copied before")
		assert.Empty(t, m.events("slow", localfleet.EventReassignmentCompleted))
	})

	t.Run("a copy into a stopped broker waits for it", func(t *testing.T) {
		m.alterBroker(t, 5, setConfig(followerRate, strconv.Itoa(mib)))
		m.assign(t, "slow", 1, []int32{5, 2})
		require.NoError(t, m.f.StopBroker(ctx, "local-a", 5, "test"))
		before := m.stats(t).Brokers[5].BytesIn
		time.Sleep(700 * time.Millisecond)
		assert.Equal(t, before, m.stats(t).Brokers[5].BytesIn, "no byte moves into a stopped broker")
		require.NoError(t, m.f.StartBroker(ctx, "local-a", 5, "test"))
		waitInSync(t, m.f, "local-a", 5, 1)
		assert.Empty(t, m.events("slow", localfleet.EventReassignmentCompleted), "its catch-up does not make the copy in sync")
		m.waitMoved(t, "slow", 1, 10*time.Second)
		p := metadata(t, m.adm).Topics["slow"].Partitions[1]
		assert.Equal(t, []int32{5, 2}, p.Replicas)
		assert.GreaterOrEqual(t, copied(5, 1), int64(size), "the whole log")
	})

	t.Run("a reassignment onto a broker that is not alive is refused", func(t *testing.T) {
		require.NoError(t, m.f.StopBroker(ctx, "local-a", 6, "test"))
		req := kadm.AlterPartitionAssignmentsReq{}
		req.Assign("slow", 2, []int32{6, 2})
		resp, err := m.adm.AlterPartitionAssignments(ctx, req)
		require.NoError(t, err)
		r := resp["slow"][2]
		assert.ErrorIs(t, r.Err, kerr.InvalidReplicaAssignment)
		assert.Contains(t, r.ErrMessage, "brokers that are not alive")
		require.NoError(t, m.f.StartBroker(ctx, "local-a", 6, "test"))
	})
	assert.Empty(t, m.f.Violations("local-a"))
	assert.True(t, slices.ContainsFunc(m.f.Audit("local-a"), func(e localfleet.Event) bool {
		return e.Kind == localfleet.EventReassignmentStarted && e.Reassignment.Partition == 1
	}))
}
