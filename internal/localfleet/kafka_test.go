package localfleet_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/internal/localfleet"
)

// Clients bootstrapped through the proxies see the fleet's brokers and can
// create topics, produce, consume and elect leaders.
func TestIntegrationKafkaThroughProxies(t *testing.T) {
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")}})
	ep := f.Endpoints().Clusters["local-a"]
	cl, adm := kafkaClient(t, f, "local-a", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := testContext(t)

	m := metadata(t, adm)
	require.Equal(t, []int32{1, 2, 3}, m.Brokers.NodeIDs())
	for _, b := range m.Brokers {
		assert.Equal(t, ep.Brokers[b.NodeID-1].Address, net.JoinHostPort(b.Host, fmt.Sprint(b.Port)),
			"brokers must be advertised at their proxy address")
	}
	require.Equal(t, int32(1), m.Controller)
	events := m.Topics["events"]
	require.Len(t, events.Partitions, 8, "the default topic is seeded")
	for _, p := range events.Partitions {
		require.Len(t, p.Replicas, 3)
		assert.Equal(t, p.Replicas[0], p.Leader, "leader is the preferred replica")
		assert.ElementsMatch(t, p.Replicas, p.ISR)
	}

	// CreateTopics is routed to kfake's controller whichever broker the
	// client picks.
	resp, err := adm.CreateTopic(ctx, 3, 2, nil, "orders")
	require.NoError(t, err)
	require.NoError(t, resp.Err)
	require.Eventually(t, func() bool {
		return len(metadata(t, adm).Topics["orders"].Partitions) == 3
	}, 5*time.Second, 20*time.Millisecond)
	for _, p := range metadata(t, adm).Topics["orders"].Partitions {
		assert.Len(t, p.Replicas, 2, "replication factor of the created topic")
	}

	produced := &kgo.Record{Topic: "orders", Partition: 1, Key: []byte("k"), Value: []byte("v1")}
	require.NoError(t, cl.ProduceSync(ctx, produced).FirstErr())

	consumer, _ := kafkaClient(t, f, "local-a", kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		"orders": {1: kgo.NewOffset().AtStart()},
	}))
	got := pollOne(t, consumer)
	assert.Equal(t, "v1", string(got.Value))

	// Every leader is preferred: no election needed.
	res, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"events": {0: {}, 1: {}}})
	require.NoError(t, err)
	for _, r := range res["events"] {
		assert.ErrorIs(t, r.Err, kerr.ElectionNotNeeded)
	}
	res, err = adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"nope": {0: {}}})
	require.NoError(t, err)
	assert.ErrorIs(t, res["nope"][0].Err, kerr.UnknownTopicOrPartition)
}

// A stopped broker leaves metadata, every ISR and the leadership; the
// controller moves; after start and catch-up it is back in every ISR, and a
// preferred election gives it its leadership back.
func TestIntegrationStopStartReflectedInMetadata(t *testing.T) {
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")}})
	_, adm := kafkaClient(t, f, "local-a")
	ctx := testContext(t)
	ep := f.Endpoints().Clusters["local-a"]

	require.NoError(t, f.StopBroker(ctx, "local-a", 1, "test"))
	require.NoError(t, f.StopBroker(ctx, "local-a", 1, "test"), "stopping a stopped broker is a no-op")
	state, err := f.BrokerState("local-a", 1)
	require.NoError(t, err)
	require.Equal(t, localfleet.StateStopped, state)

	m := metadata(t, adm)
	assert.Equal(t, []int32{2, 3}, m.Brokers.NodeIDs())
	assert.Equal(t, int32(2), m.Controller, "controller moves to the lowest running broker")
	for _, p := range m.Topics["events"].Partitions {
		assert.NotEqual(t, int32(1), p.Leader, "partition %d", p.Partition)
		assert.NotContains(t, p.ISR, int32(1), "partition %d", p.Partition)
		assert.Equal(t, []int32{1}, p.OfflineReplicas, "partition %d", p.Partition)
		assert.Len(t, p.ISR, 2)
	}
	_, err = net.DialTimeout("tcp", ep.Brokers[0].Address, time.Second)
	require.Error(t, err, "a stopped broker refuses connections")

	require.NoError(t, f.StartBroker(ctx, "local-a", 1, "test"))
	m = metadata(t, adm)
	assert.Equal(t, []int32{1, 2, 3}, m.Brokers.NodeIDs(), "registered again")
	assert.Equal(t, int32(2), m.Controller, "the controller does not move back")

	require.Eventually(t, func() bool {
		for _, p := range metadata(t, adm).Topics["events"].Partitions {
			if !slices.Contains(p.ISR, 1) {
				return false
			}
		}
		return true
	}, 5*time.Second, 50*time.Millisecond, "broker 1 rejoins every ISR after catch-up")
	for _, p := range metadata(t, adm).Topics["events"].Partitions {
		assert.NotEqual(t, int32(1), p.Leader, "no leadership before the preferred election")
	}

	res, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, nil)
	require.NoError(t, err)
	require.NotEmpty(t, res["events"])
	for _, r := range res["events"] {
		assert.NoError(t, r.Err, "partition %d", r.Partition)
	}
	for _, p := range metadata(t, adm).Topics["events"].Partitions {
		assert.Equal(t, p.Replicas[0], p.Leader, "preferred leader restored on partition %d", p.Partition)
	}

	kinds := func() []localfleet.EventKind {
		var out []localfleet.EventKind
		for _, e := range f.Audit("local-a") {
			out = append(out, e.Kind)
		}
		return out
	}
	assert.Equal(t, []localfleet.EventKind{"stop", "stopped", "start", "started", "in-sync"}, kinds())
	assert.Empty(t, f.Violations("local-a"), "one broker at a time with RF 3, min ISR 2 is safe")
}

// Producing and consuming (in a group) keep working while a broker is
// stopped and started again.
func TestIntegrationProduceConsumeThroughStop(t *testing.T) {
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")}})
	ctx := testContext(t)
	producer, _ := kafkaClient(t, f, "local-a", kgo.DefaultProduceTopic("events"), kgo.RequiredAcks(kgo.AllISRAcks()))
	consumer, _ := kafkaClient(t, f, "local-a",
		kgo.ConsumeTopics("events"), kgo.ConsumerGroup("readers"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(500*time.Millisecond))

	const total = 60
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range total {
			r := &kgo.Record{Value: []byte(fmt.Sprint(i))}
			assert.NoError(t, producer.ProduceSync(ctx, r).FirstErr(), "record %d", i)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	// Broker 3 is kfake's controller; stopping it must not matter.
	for _, b := range []int32{2, 3} {
		require.NoError(t, f.StopBroker(ctx, "local-a", b, "test"))
		require.NoError(t, f.StartBroker(ctx, "local-a", b, "test"))
		waitInSync(t, f, "local-a", b, 1)
	}
	wg.Wait()

	seen := map[string]bool{}
	for len(seen) < total {
		fetches := consumer.PollFetches(ctx)
		require.NoError(t, ctx.Err(), "consumed %d of %d", len(seen), total)
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Logf("fetch error %s-%d: %v", topic, p, err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	require.NoError(t, consumer.CommitUncommittedOffsets(ctx))
}

func pollOne(t *testing.T, cl *kgo.Client) *kgo.Record {
	t.Helper()
	ctx := testContext(t)
	for {
		fetches := cl.PollRecords(ctx, 1)
		require.NoError(t, ctx.Err())
		if recs := fetches.Records(); len(recs) > 0 {
			return recs[0]
		}
	}
}
