package integration_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/kafka"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// TestIntegrationRebalanceTakesOverFromADeadAttempt: an earlier attempt of
// the rebalance (a worker killed mid-move) left half its moves under way
// and its throttles set. The next attempt plans from the cluster as it
// is: it counts those moves at their targets and waits for them, moves
// the rest, and ends with broker 4 drained — in the fleet's audit no
// partition's move starts while another is under way, none is cancelled,
// and the dead attempt's copies are not made again — every throttle
// cleared, and no violation.
func TestIntegrationRebalanceTakesOverFromADeadAttempt(t *testing.T) {
	t.Parallel() // its own fleet and stack; nothing it asserts depends on the machine being idle
	h := startActivityHarness(t, func(c *localfleet.ClusterConfig) {
		c.Brokers, c.Racks = 4, 2
		c.Topics = []localfleet.TopicConfig{{Name: "events", Partitions: 8}, {Name: "orders", Partitions: 12}}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool := h.acts.Kafka.(*kafka.Pool)
	h.acts.Reassigner = pool
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.spec.Bootstrap...), kgo.DefaultProduceTopic("events"), kgo.RequiredAcks(kgo.AllISRAcks()))
	require.NoError(t, err)
	defer cl.Close()
	for i := range 200 {
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i)), Value: make([]byte, 5_000)}).FirstErr())
	}
	const throttle = 128 << 10

	// The dead attempt: the first half of the plan sent, throttled.
	_, parts, err := pool.Replication(ctx, h.spec)
	require.NoError(t, err)
	goal := fleet.BalanceGoal{Brokers: []int32{1, 2, 3}}
	plan, err := fleet.PlanRebalance(parts, goal)
	require.NoError(t, err)
	require.Greater(t, len(plan), 4)
	sent := plan[:len(plan)/2]
	require.NoError(t, pool.SetThrottleRate(ctx, h.spec, h.spec.BrokerIDs(), throttle))
	require.NoError(t, pool.ThrottleReplicas(ctx, h.spec, sent))
	require.NoError(t, pool.Reassign(ctx, h.spec, sent))
	under, err := pool.Reassignments(ctx, h.spec)
	require.NoError(t, err)
	require.NotEmpty(t, under, "the dead attempt's moves are under way when the next one starts")

	v, err := h.env.ExecuteActivity(h.acts.Rebalance, activities.RebalanceInput{Spec: h.spec, Leaving: []int32{4}, ThrottleBytesPerSec: throttle})
	require.NoError(t, err)
	var res activities.RebalanceResult
	require.NoError(t, v.Get(&res))
	t.Logf("took over %d moves under way; moved %d, %d copies, %d bytes in %.1f s; %s", len(under), res.Moved, res.Copies, res.Bytes, res.Seconds, res.After)

	assert.Zero(t, res.After.Elsewhere, "broker 4 drained")
	// Each partition's moves one after another, none cancelled or
	// superseded: a move's start is followed by its end before the next.
	moving, moves, copies := map[string]bool{}, map[string]int{}, map[string]int{}
	for _, e := range h.fleet.Audit("local-a") {
		if e.Reassignment == nil {
			continue
		}
		p := fmt.Sprintf("%s/%d", e.Reassignment.Topic, e.Reassignment.Partition)
		switch e.Kind {
		case localfleet.EventReassignmentStarted:
			assert.False(t, moving[p], "partition %s: a second move while one was under way", p)
			moving[p] = true
			moves[p]++
			for _, b := range e.Reassignment.To {
				if !slices.Contains(e.Reassignment.From, b) {
					copies[p]++
				}
			}
		case localfleet.EventReassignmentCompleted:
			moving[p] = false
		case localfleet.EventReassignmentCancelled:
			t.Errorf("partition %s: a move cancelled", p)
		}
	}
	total := 0
	for _, n := range moves {
		total += n
	}
	t.Logf("%d partitions moved in %d moves (the plan had %d)", len(moves), total, len(plan))
	for _, m := range sent {
		p := fmt.Sprintf("%s/%d", m.Topic, m.Partition)
		assert.Equal(t, len(m.Adding()), copies[p], "%s: the dead attempt's move is not made again (a later reorder of its leaders copies nothing)", m)
	}
	left, err := pool.ThrottlesLeft(ctx, h.spec, h.spec.BrokerIDs(), []string{"events", "orders"})
	require.NoError(t, err)
	assert.Empty(t, left, "every throttle cleared, the dead attempt's too")
	assert.Empty(t, h.fleet.Violations("local-a"))
	_, after, err := pool.Replication(ctx, h.spec)
	require.NoError(t, err)
	for _, p := range after {
		assert.False(t, p.HostedOn(4), "partition %s still on broker 4: %v", p, p.Replicas)
		assert.True(t, len(p.Replicas) == 3 || strings.HasPrefix(p.Topic, "__"), "partition %s keeps 3 replicas", p)
	}
}
