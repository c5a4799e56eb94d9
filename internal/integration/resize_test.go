package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// Growing and shrinking a cluster end to end, judged by the fleet's audit
// (launches, terminations, volumes, violations) and by Kafka clients no
// one in kfleet wrote the answers for (metadata, configs, every record
// produced read back).

// resizeThrottle is the replication throttle of these tests: low enough
// that the copies of a few MB take seconds, so the throttle shows, and
// above what the load writes to a partition — as in Kafka, a move whose
// partition grows faster than its throttle never ends.
const resizeThrottle = 1 << 20

// startResizeStack runs local-a with brokers over 3 racks, two topics of
// replication factor 3, and EC2 changing states in a tenth of a second.
func startResizeStack(t testing.TB, brokers int) *devstack.Stack {
	t.Helper()
	cfg := fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: brokers, Racks: 3,
		Topics: []localfleet.TopicConfig{{Name: "events", Partitions: 12}, {Name: "orders", Partitions: 18}}})
	cfg.EC2.Timing = localfleet.EC2Timing{Pending: 100 * time.Millisecond, Stopping: 100 * time.Millisecond, ShuttingDown: 100 * time.Millisecond,
		VolumeCreating: 100 * time.Millisecond, Attaching: 50 * time.Millisecond, Detaching: 50 * time.Millisecond}
	return startStackWith(t, cfg, func(o *devstack.StackOptions) { o.NotifyOut = io.Discard })
}

// load produces unique records to events with acks=all until stopped, at
// most 200 a second, and counts those acknowledged.
type load struct {
	acked, failed atomic.Int64
	stop          context.CancelFunc
	wg            sync.WaitGroup
	cl            *kgo.Client
}

func startLoad(t testing.TB, stack *devstack.Stack, size int) *load {
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Specs["local-a"].Bootstrap...), kgo.DefaultProduceTopic("events"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{stop: cancel, cl: cl}
	value := make([]byte, size)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			r := &kgo.Record{Key: []byte("load-" + strconv.Itoa(i)), Value: value}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				if ctx.Err() == nil {
					l.failed.Add(1)
				}
				continue
			}
			l.acked.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { l.halt(); cl.Close() })
	return l
}

func (l *load) halt() { l.stop(); l.wg.Wait() }

// readAll counts the records of topic from the start, read by a fresh
// consumer, until want are read or ctx ends.
func readAll(ctx context.Context, t *testing.T, stack *devstack.Stack, topic string, want int64) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Specs["local-a"].Bootstrap...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	seen := map[string]bool{}
	for int64(len(seen)) < want && ctx.Err() == nil {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		fs := cl.PollFetches(fctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Key)] = true })
	}
	return int64(len(seen))
}

// placement is the cluster's replica and preferred-leader counts per
// broker as Kafka's metadata tells a client, and its throttle configs.
func placement(ctx context.Context, t *testing.T, stack *devstack.Stack, brokers []int32) (fleet.Spread, map[int32]int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Specs["local-a"].Bootstrap...))
	require.NoError(t, err)
	defer cl.Close()
	m, err := kadm.NewClient(cl).Metadata(ctx)
	require.NoError(t, err)
	var parts []fleet.Partition
	count := map[int32]int{}
	for _, td := range m.Topics.Sorted() {
		for _, p := range td.Partitions.Sorted() {
			parts = append(parts, fleet.Partition{Topic: p.Topic, Partition: p.Partition, Replicas: p.Replicas})
			for _, r := range p.Replicas {
				count[r]++
			}
		}
	}
	return fleet.SpreadOf(parts, fleet.BalanceGoal{Brokers: brokers}), count
}

// throttlesLeft lists the replication throttles set on brokers and topics.
func throttlesLeft(ctx context.Context, t *testing.T, stack *devstack.Stack, brokers []int32) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Specs["local-a"].Bootstrap...))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	var left []string
	keep := func(rcs kadm.ResourceConfigs) {
		for _, rc := range rcs {
			for _, c := range rc.Configs {
				if c.Value != nil && *c.Value != "" && slices.Contains([]string{"leader.replication.throttled.rate", "follower.replication.throttled.rate",
					"leader.replication.throttled.replicas", "follower.replication.throttled.replicas"}, c.Key) {
					left = append(left, fmt.Sprintf("%s %s=%s", rc.Name, c.Key, *c.Value))
				}
			}
		}
	}
	for _, b := range brokers {
		rcs, err := adm.DescribeBrokerConfigs(ctx, b)
		require.NoError(t, err)
		keep(rcs)
	}
	rcs, err := adm.DescribeTopicConfigs(ctx, "events", "orders")
	require.NoError(t, err)
	keep(rcs)
	return left
}

func request(ctx context.Context, t testing.TB, stack *devstack.Stack, kind string, brokers []int32, params any) workflows.Operation {
	t.Helper()
	raw, err := json.Marshal(params)
	require.NoError(t, err)
	op, err := entity.Request(ctx, stack.Client, "local-a", workflows.Request{Kind: kind, RequestedBy: "alice", Brokers: brokers, Params: raw})
	require.NoError(t, err)
	return op
}

// TestIntegrationAddBrokersRebalancesUnderLoad: three brokers are added
// to a six-broker cluster while a producer writes with acks=all. The
// fleet launched three hosts and three volumes, nothing twice; replicas
// and preferred leaders end within 10% per broker (as a client's metadata
// shows), every throttle is cleared, the copies never outran the
// throttle, no violation, and every record acknowledged is read back.
func TestIntegrationAddBrokersRebalancesUnderLoad(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	stack := startResizeStack(t, 6)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 6)
	p := newProducer(t, stack)
	p.produce(ctx, 300, 10_000) // 3 MB to move
	l := startLoad(t, stack, 1_000)
	auditFrom := len(stack.Fleet.Audit("local-a"))

	op := request(ctx, t, stack, workflows.OpAddBrokers, nil, workflows.AddBrokersParams{Count: 3, MoveParams: workflows.MoveParams{ThrottleBytesPerSec: resizeThrottle}})
	done := finished(ctx, t, stack, "local-a", workflows.OpAddBrokers, 3*time.Minute)
	require.Equal(t, workflows.StatusSucceeded, done.Status, done.Error)
	require.Equal(t, op.ID, done.ID)
	t.Logf("outcome: %s", done.Outcome)
	l.halt()
	recordHistories(ctx, t, stack.Client, map[string]string{op.WorkflowID: "add_brokers.json"})

	nine := []int32{1, 2, 3, 4, 5, 6, 7, 8, 9}
	audit := stack.Fleet.Audit("local-a")[auditFrom:]
	for _, b := range []int32{7, 8, 9} {
		assert.Len(t, brokerEvents(audit, b, localfleet.EventInstanceLaunched), 1, "broker %d: one host", b)
		assert.Len(t, brokerEvents(audit, b, localfleet.EventVolumeCreated), 1, "broker %d: one volume", b)
	}
	st, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	assert.Equal(t, nine, st.Spec.BrokerIDs(), "the entity's spec names the new brokers")

	spread, count := placement(ctx, t, stack, nine)
	t.Logf("replicas per broker: %v; %s", count, spread)
	assert.True(t, spread.Balanced(fleet.DefaultBalanceTolerance), "replicas and preferred leaders within 10%%: %s", spread)
	for _, b := range []int32{7, 8, 9} {
		assert.Positive(t, count[b], "broker %d holds replicas", b)
	}
	assert.Empty(t, throttlesLeft(ctx, t, stack, nine), "every throttle cleared")
	stats, err := stack.Fleet.ReassignmentStats("local-a")
	require.NoError(t, err)
	t.Logf("reassignments: %d partitions, %d bytes, %.0f B/s", stats.PartitionsMoved, stats.BytesMoved, stats.Throughput())
	require.Positive(t, stats.PartitionsMoved, "the fleet saw partitions move")
	for _, b := range []int32{7, 8, 9} {
		s := stats.Brokers[b]
		assert.Equal(t, int64(resizeThrottle), s.ThrottleBytesPerSec, "broker %d: copies came in throttled", b)
		assert.LessOrEqual(t, s.PeakThrottledBytesPerSec, float64(resizeThrottle)*1.1, "broker %d: copies held to the throttle", b)
	}
	noViolations(t, stack, "local-a")

	acked := l.acked.Load()
	require.Positive(t, acked, "the producer wrote during the addition")
	assert.Equal(t, 300+acked, readAll(ctx, t, stack, "events", 300+acked), "every record acknowledged is read back (%d failed sends)", l.failed.Load())
}

// TestIntegrationRemoveBroker: broker 4 of four leaves: drained by
// reassignment, stopped, its host terminated and its volume deleted (once
// each, asked by the removal), out of the entity's spec and of every
// replica list; no recovery, no violation. A removal that would leave
// fewer brokers than the default replication factor, and one of a broker
// not in the cluster, are refused with nothing started.
func TestIntegrationRemoveBroker(t *testing.T) {
	t.Parallel()
	stack := startResizeStack(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 4)
	newProducer(t, stack).produce(ctx, 100, 10_000)
	auditFrom := len(stack.Fleet.Audit("local-a"))

	_, err := entity.Request(ctx, stack.Client, "local-a", workflows.Request{Kind: workflows.OpRemoveBroker, RequestedBy: "alice", Brokers: []int32{9}})
	require.ErrorContains(t, err, "broker 9 is not in cluster local-a")

	op := request(ctx, t, stack, workflows.OpRemoveBroker, []int32{4}, workflows.RemoveBrokerParams{MoveParams: workflows.MoveParams{ThrottleBytesPerSec: resizeThrottle}})
	done := finished(ctx, t, stack, "local-a", workflows.OpRemoveBroker, 2*time.Minute)
	require.Equal(t, workflows.StatusSucceeded, done.Status, done.Error)
	t.Logf("outcome: %s", done.Outcome)
	recordHistories(ctx, t, stack.Client, map[string]string{op.WorkflowID: "remove_broker.json"})

	audit := stack.Fleet.Audit("local-a")[auditFrom:]
	terminated := brokerEvents(audit, 4, localfleet.EventInstanceTerminated)
	require.Len(t, terminated, 1, "its host terminated once")
	stopped := brokerEvents(audit, 4, localfleet.EventStop)
	require.Len(t, stopped, 1, "stopped once, before its host went")
	assert.Contains(t, stopped[0].Who, op.ID, "by the removal (its SSM command's comment)")
	assert.False(t, terminated[0].Time.Before(stopped[0].Time), "terminated after it stopped")
	assert.Len(t, brokerEvents(audit, 4, localfleet.EventVolumeDeleted), 1, "its volume deleted once")
	st, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	assert.Equal(t, []int32{1, 2, 3}, st.Spec.BrokerIDs(), "out of the entity's spec")
	require.NotNil(t, st.Watch)
	assert.Empty(t, st.Watch.Missing, "status does not show it missing")
	assert.False(t, slices.ContainsFunc(st.History, func(o workflows.Operation) bool { return o.Kind == workflows.OpRecovery }), "its stop was no loss to recover")
	_, count := placement(ctx, t, stack, []int32{1, 2, 3})
	assert.Zero(t, count[4], "no replica left on broker 4")
	noViolations(t, stack, "local-a")

	_, err = entity.Request(ctx, stack.Client, "local-a", workflows.Request{Kind: workflows.OpRemoveBroker, RequestedBy: "alice", Brokers: []int32{3}})
	require.ErrorContains(t, err, "fewer than the default replication factor", "three brokers left: none may go")
}
