package localfleet_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/internal/localfleet"
)

// A cluster over racks advertises broker.rack and places every partition's
// replicas on distinct racks, as Kafka's rack-aware assignment does.
func TestIntegrationRacksAndRackAwarePlacement(t *testing.T) {
	cc := testCluster("local-b")
	cc.Brokers, cc.Racks = 6, 3
	cc.Topics = []localfleet.TopicConfig{{Name: "orders", Partitions: 12, ReplicationFactor: 3}}
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{cc}})
	_, adm := kafkaClient(t, f, "local-b")

	m := metadata(t, adm)
	rackOf := map[int32]string{}
	for _, b := range m.Brokers {
		require.NotNil(t, b.Rack, "broker %d has a rack", b.NodeID)
		rackOf[b.NodeID] = *b.Rack
	}
	assert.Len(t, rackOf, 6)
	assert.ElementsMatch(t, []string{"us-east-1a", "us-east-1b", "us-east-1c"}, uniq(rackOf))
	for _, p := range m.Topics["orders"].Partitions {
		racks := map[string]bool{}
		for _, r := range p.Replicas {
			assert.False(t, racks[rackOf[r]], "partition %d: two replicas on rack %s (%v)", p.Partition, rackOf[r], p.Replicas)
			racks[rackOf[r]] = true
		}
	}
	for _, b := range f.Endpoints().Clusters["local-b"].Brokers {
		assert.Equal(t, rackOf[b.ID], b.Rack, "endpoints carry the rack")
	}
}

func uniq(m map[int32]string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range m {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// DescribeLogDirs answers per broker with only the replicas that broker
// hosts, and their sizes grow with what is produced.
func TestIntegrationDescribeLogDirsPerBroker(t *testing.T) {
	cc := testCluster("local-a")
	cc.Brokers = 4
	cc.Topics = []localfleet.TopicConfig{{Name: "events", Partitions: 4, ReplicationFactor: 2}}
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{cc}})
	// Uncompressed, so that the log grows by what is produced (Kafka
	// stores batches as compressed on the wire).
	cl, adm := kafkaClient(t, f, "local-a", kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx := testContext(t)
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: "events", Partition: 0, Value: bytes.Repeat([]byte("x"), 4096)}).FirstErr())

	m := metadata(t, adm)
	dirs, err := adm.DescribeAllLogDirs(ctx, nil)
	require.NoError(t, err)
	for _, b := range []int32{1, 2, 3, 4} {
		var want []int32
		for _, p := range m.Topics["events"].Partitions.Sorted() {
			if contains(p.Replicas, b) {
				want = append(want, p.Partition)
			}
		}
		var got []int32
		for _, d := range dirs[b] {
			require.NoError(t, d.Err)
			for _, p := range d.Topics["events"] {
				got = append(got, p.Partition)
				if p.Partition == 0 {
					assert.GreaterOrEqual(t, p.Size, int64(4096), "broker %d: partition 0 holds what was produced", b)
				} else {
					assert.Zero(t, p.Size)
				}
			}
		}
		assert.ElementsMatch(t, want, got, "broker %d lists only its replicas", b)
	}
}

func contains(ids []int32, id int32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// AlterPartitionAssignments really moves replicas: the target replicas are
// added, listed as in progress while they catch up, then the old ones are
// dropped and leadership follows.
func TestIntegrationReassignmentMovesReplicas(t *testing.T) {
	cc := testCluster("local-a")
	cc.Brokers = 4
	cc.Timing.CatchUp = 400 * time.Millisecond
	cc.Topics = []localfleet.TopicConfig{{Name: "events", Partitions: 1, ReplicationFactor: 2}}
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{cc}})
	_, adm := kafkaClient(t, f, "local-a")
	ctx := testContext(t)

	before := metadata(t, adm).Topics["events"].Partitions[0]
	var target []int32
	for _, b := range []int32{1, 2, 3, 4} {
		if !contains(before.Replicas, b) {
			target = append(target, b)
		}
	}
	req := kadm.AlterPartitionAssignmentsReq{}
	req.Assign("events", 0, target)
	resp, err := adm.AlterPartitionAssignments(ctx, req)
	require.NoError(t, err)
	require.NoError(t, resp.Error())

	inProgress, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"events": {0: {}}})
	require.NoError(t, err)
	r := inProgress["events"][0]
	assert.ElementsMatch(t, target, r.AddingReplicas)
	assert.ElementsMatch(t, before.Replicas, r.RemovingReplicas)
	assert.Len(t, r.Replicas, 4, "the union of old and new while in progress")

	require.Eventually(t, func() bool {
		p := metadata(t, adm).Topics["events"].Partitions[0]
		return assert.ObjectsAreEqual(target, p.Replicas)
	}, 10*time.Second, 50*time.Millisecond, "replicas become the target")
	after := metadata(t, adm).Topics["events"].Partitions[0]
	assert.ElementsMatch(t, target, after.ISR)
	assert.Contains(t, target, after.Leader, "leadership moved to a new replica")
	done, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"events": {0: {}}})
	require.NoError(t, err)
	assert.Empty(t, done["events"], "nothing in progress once complete")

	bad := kadm.AlterPartitionAssignmentsReq{}
	bad.Assign("events", 0, []int32{1, 9})
	resp, err = adm.AlterPartitionAssignments(ctx, bad)
	require.NoError(t, err)
	assert.Error(t, resp.Error(), "a replica on an unknown broker is refused")
}

// A broker that was away while data was written takes longer to rejoin the
// ISR, in proportion to what it missed.
func TestIntegrationCatchUpGrowsWithDataMissed(t *testing.T) {
	cc := testCluster("local-a")
	cc.Timing.CatchUp = 100 * time.Millisecond
	cc.Timing.CatchUpBytesPerSec = 1 << 20 // 1 MiB/s
	cc.Topics = []localfleet.TopicConfig{{Name: "events", Partitions: 1, ReplicationFactor: 3}}
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{cc}})
	cl, _ := kafkaClient(t, f, "local-a", kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerBatchMaxBytes(2<<20), kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx := testContext(t)

	catchUp := func(produce int) time.Duration {
		require.NoError(t, f.StopBroker(ctx, "local-a", 2, "test"))
		for range produce {
			rec := &kgo.Record{Topic: "events", Partition: 0, Value: bytes.Repeat([]byte("y"), 256<<10)}
			require.NoError(t, cl.ProduceSync(ctx, rec).FirstErr())
		}
		n := countInSync(f, 2)
		require.NoError(t, f.StartBroker(ctx, "local-a", 2, "test"))
		start := time.Now()
		waitInSync(t, f, "local-a", 2, n+1)
		return time.Since(start)
	}
	quiet := catchUp(0)
	busy := catchUp(4) // 1 MiB missed: about one more second at 1 MiB/s
	t.Logf("catch-up after nothing written: %s, after 1 MiB: %s", quiet, busy)
	assert.Greater(t, busy-quiet, 700*time.Millisecond)
}

func countInSync(f *localfleet.Fleet, broker int32) int {
	n := 0
	for _, e := range f.Audit("local-a") {
		if e.Broker == broker && e.Kind == localfleet.EventInSync {
			n++
		}
	}
	return n
}
