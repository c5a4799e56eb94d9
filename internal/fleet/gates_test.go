package fleet_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/fleet"
)

func spec3() fleet.ClusterSpec {
	return fleet.ClusterSpec{
		ID: "c1", Bootstrap: []string{"b:9092"}, ZooKeeper: "z:2181/c1",
		Brokers: []fleet.BrokerSpec{{ID: 1, InstanceID: "i-1"}, {ID: 2, InstanceID: "i-2"}, {ID: 3, InstanceID: "i-3"}},
	}
}

func part(topic string, p int32, leader int32, replicas, isr []int32, minISR int) fleet.Partition {
	return fleet.Partition{Topic: topic, Partition: p, Leader: leader, Replicas: replicas, ISR: isr, MinISR: minISR}
}

func TestHealthBlockers(t *testing.T) {
	healthy := fleet.Snapshot{Controller: 1, Registered: []int32{1, 2, 3}, Partitions: []fleet.Partition{
		part("t", 0, 1, []int32{1, 2, 3}, []int32{1, 2, 3}, 2),
	}}
	cases := []struct {
		name string
		snap func(s fleet.Snapshot) fleet.Snapshot
		want []string
	}{
		{"healthy", func(s fleet.Snapshot) fleet.Snapshot { return s }, nil},
		{"broker not registered", func(s fleet.Snapshot) fleet.Snapshot { s.Registered = []int32{1, 3}; return s },
			[]string{"broker 2 is not registered"}},
		{"offline partition", func(s fleet.Snapshot) fleet.Snapshot {
			s.Partitions = []fleet.Partition{part("t", 0, -1, []int32{1, 2, 3}, nil, 2)}
			return s
		}, []string{"partition t/0 is offline"}},
		{"under min ISR", func(s fleet.Snapshot) fleet.Snapshot {
			s.Partitions = []fleet.Partition{part("t", 0, 1, []int32{1, 2, 3}, []int32{1}, 2)}
			return s
		}, []string{"partition t/0 is under min.insync.replicas"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := fleet.HealthBlockers(spec3(), c.snap(healthy))
			require.Len(t, got, len(c.want))
			for i, w := range c.want {
				assert.Equal(t, fleet.GateHealthy, got[i].Gate)
				assert.Contains(t, got[i].Reason, w)
			}
		})
	}
}

// TestHealthBlockersOfAKRaftCluster: a KRaft cluster's brokers register
// with its controller, and a fenced one counts as not registered.
func TestHealthBlockersOfAKRaftCluster(t *testing.T) {
	spec := spec3()
	spec.ZooKeeper = ""
	spec.KRaft = &fleet.KRaftSpec{QuorumBootstrap: []string{"c:9093"}, Controllers: []fleet.ControllerSpec{
		{ID: 3000, InstanceID: "i-c0"}, {ID: 3001, InstanceID: "i-c1"}, {ID: 3002, InstanceID: "i-c2"}}}
	fenced := fleet.Snapshot{Registered: fleet.Unfenced([]fleet.BrokerFencing{{ID: 1}, {ID: 2, Fenced: true}, {ID: 3}})}
	got := fleet.HealthBlockers(spec, fenced)
	require.Len(t, got, 1)
	assert.Equal(t, "broker 2 is not registered with the KRaft controller, or is fenced", got[0].Reason)
}

func TestHealthBlockersAreBounded(t *testing.T) {
	s := fleet.Snapshot{Registered: []int32{1, 2, 3}}
	for p := range int32(500) {
		s.Partitions = append(s.Partitions, part("t", p, -1, []int32{1, 2, 3}, nil, 2))
	}
	assert.Len(t, fleet.HealthBlockers(spec3(), s), 10, "a large outage is summarized, not listed in full")
}

func TestAvailabilityBlockers(t *testing.T) {
	cases := []struct {
		name      string
		p         fleet.Partition
		batch     []int32
		blocked   bool
		permanent bool
	}{
		{"rf3 full isr", part("t", 0, 1, []int32{1, 2, 3}, []int32{1, 2, 3}, 2), []int32{1}, false, false},
		{"not hosted", part("t", 0, 1, []int32{1, 2}, []int32{1}, 2), []int32{3}, false, false},
		{"isr already short", part("t", 0, 1, []int32{1, 2, 3}, []int32{1, 2}, 2), []int32{1}, true, false},
		{"rf at min isr", part("t", 0, 1, []int32{1, 2}, []int32{1, 2}, 2), []int32{1}, true, true},
		{"batch sharing a partition", part("t", 0, 1, []int32{1, 2, 3}, []int32{1, 2, 3}, 2), []int32{1, 2}, true, true},
		{"out-of-sync replica in batch", part("t", 0, 1, []int32{1, 2, 3}, []int32{1, 2}, 2), []int32{3}, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := fleet.AvailabilityBlockers(fleet.Snapshot{Partitions: []fleet.Partition{c.p}}, c.batch)
			if !c.blocked {
				assert.Empty(t, got)
				return
			}
			require.Len(t, got, 1)
			assert.Equal(t, fleet.GateAvailability, got[0].Gate)
			assert.Equal(t, c.permanent, got[0].Permanent, got[0].Reason)
			assert.Contains(t, got[0].Reason, "t/0")
		})
	}
}

func TestNextBrokerControllerLast(t *testing.T) {
	cases := []struct {
		controller int32
		remaining  []int32
		want       int32
	}{
		{3, []int32{3, 1, 2}, 1},
		{1, []int32{1, 2, 3}, 2},
		{2, []int32{2}, 2},
		{-1, []int32{3, 2}, 2},
		{2, []int32{2, 3}, 3},
	}
	for _, c := range cases {
		got, ok := fleet.NextBroker(fleet.Snapshot{Controller: c.controller}, c.remaining)
		assert.True(t, ok)
		assert.Equal(t, c.want, got, "controller %d remaining %v", c.controller, c.remaining)
	}
	_, ok := fleet.NextBroker(fleet.Snapshot{}, nil)
	assert.False(t, ok)
}

func TestGracePeriodGrowsWithPartitionsAndIsCapped(t *testing.T) {
	assert.Equal(t, 60, fleet.GracePeriodSeconds(0))
	assert.Greater(t, fleet.GracePeriodSeconds(4000), fleet.GracePeriodSeconds(100))
	assert.Equal(t, 1800, fleet.GracePeriodSeconds(1_000_000))
}

func TestClusterSpecValidate(t *testing.T) {
	ok := spec3()
	require.NoError(t, ok.Validate())
	bad := fleet.ClusterSpec{ID: "Bad_ID", Brokers: []fleet.BrokerSpec{{ID: 1}, {ID: 1, InstanceID: "i"}}}
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{"cluster id", "bootstrap", "zookeeper", "broker 1: instanceId", "broker 1: listed twice"} {
		assert.True(t, strings.Contains(err.Error(), want), "%q missing from %v", want, err)
	}
}

func TestNextBatchSharesNoPartitionControllerAlone(t *testing.T) {
	// Six brokers; any two brokers that share no partition may go together.
	s := fleet.Snapshot{Controller: 1}
	for p, reps := range [][]int32{{1, 2, 3}, {4, 5, 6}, {1, 5, 3}, {4, 2, 6}, {1, 5, 6}} {
		s.Partitions = append(s.Partitions, part("t", int32(p), reps[0], reps, reps, 2))
	}
	cases := []struct {
		remaining []int32
		max       int
		want      []int32
	}{
		{[]int32{1, 2, 3, 4, 5, 6}, 1, []int32{2}},
		{[]int32{1, 2, 3, 4, 5, 6}, 3, []int32{2, 5}},
		{[]int32{1, 3, 4, 6}, 3, []int32{3, 4}}, // 3 and 4 share nothing; 6 shares with 4
		{[]int32{1, 4}, 3, []int32{4}},
		{[]int32{1}, 3, []int32{1}},
	}
	for _, c := range cases {
		got := fleet.NextBatch(s, c.remaining, c.max, nil)
		assert.Equal(t, c.want, got, "remaining %v max %d", c.remaining, c.max)
		for i, a := range got {
			for _, b := range got[i+1:] {
				for _, p := range s.Partitions {
					assert.False(t, p.HostedOn(a) && p.HostedOn(b), "brokers %d and %d share %s", a, b, p)
				}
			}
		}
	}
}

func TestNextBatchPrefersTheFirstBrokersRack(t *testing.T) {
	// Twelve brokers over three racks, replicas rack-aware: a partition
	// has one replica per rack. Broker 7 (rack a) happens to share no
	// partition with broker 2 (rack b), but a batch is a whole rack.
	rack := func(id int32) string { return string(rune('a' + (id-1)%3)) }
	s := fleet.Snapshot{Controller: 1}
	for p, reps := range [][]int32{{1, 2, 3}, {4, 5, 6}, {10, 8, 9}, {7, 11, 12}, {4, 11, 3}, {10, 5, 12}, {1, 8, 6}, {7, 5, 9}} {
		s.Partitions = append(s.Partitions, part("t", int32(p), reps[0], reps, reps, 2))
	}
	all := []int32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	assert.Equal(t, []int32{2, 5, 8, 11}, fleet.NextBatch(s, all, 4, rack))
	assert.Equal(t, []int32{2, 5, 8}, fleet.NextBatch(s, all, 3, rack), "at most maxBatch")
}
