package activities_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/kafka"
)

// fakeCluster is a cluster whose reassignments land after a few polls of
// ListPartitionReassignments. It checks the rebalance's manners as it
// goes: moves within the limits, each throttled before it is sent.
type fakeCluster struct {
	mu         sync.Mutex
	parts      []fleet.Partition
	moving     map[string]*fakeMove
	registered []int32
	// polls is how many lists a move stays under way.
	polls int
	// throttled are the follower replicas throttled, "topic/p:b".
	throttled map[string]bool
	rate      int64
	// peakPerBroker and peakInFlight are the most moves under way seen.
	peakPerBroker, peakInFlight int
	sent, elected               int
	unthrottled                 []string
}

type fakeMove struct {
	m    fleet.Move
	left int
}

func newFakeCluster(brokers int32, topics, partitions int) *fakeCluster {
	f := &fakeCluster{moving: map[string]*fakeMove{}, throttled: map[string]bool{}, polls: 2}
	for b := int32(1); b <= brokers; b++ {
		f.registered = append(f.registered, b)
	}
	for t := range topics {
		for p := range partitions {
			rs := []int32{int32(1 + (t+p)%3), int32(1 + (t+p+1)%3), int32(1 + (t+p+2)%3)} // all on brokers 1-3
			f.parts = append(f.parts, fleet.Partition{Topic: fmt.Sprintf("t%d", t), Partition: int32(p), Leader: rs[0], Replicas: rs, ISR: rs, MinISR: 2})
		}
	}
	return f
}

func (f *fakeCluster) Replication(context.Context, fleet.ClusterSpec) (int32, []fleet.Partition, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return 1, slices.Clone(f.parts), nil
}

func (f *fakeCluster) BrokerIDs(context.Context, fleet.ClusterSpec) ([]int32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.registered), nil
}

func (f *fakeCluster) WaitBrokerRegistered(context.Context, fleet.ClusterSpec, int32, time.Duration, func()) error {
	return nil
}

func (f *fakeCluster) WaitBrokersChanged(context.Context, fleet.ClusterSpec, []int32, time.Duration, func()) ([]int32, error) {
	return nil, nil
}

func (f *fakeCluster) ElectPreferredLeaders(_ context.Context, _ fleet.ClusterSpec, ps []fleet.Partition) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.elected += len(ps)
	return nil
}

func (f *fakeCluster) Reassignments(context.Context, fleet.ClusterSpec) ([]kafka.Reassigning, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []kafka.Reassigning
	for k, mv := range f.moving {
		if mv.left--; mv.left <= 0 {
			i := slices.IndexFunc(f.parts, func(p fleet.Partition) bool { return p.Topic == mv.m.Topic && p.Partition == mv.m.Partition })
			f.parts[i].Replicas, f.parts[i].ISR = mv.m.To, mv.m.To
			delete(f.moving, k)
			continue
		}
		out = append(out, kafka.Reassigning{Topic: mv.m.Topic, Partition: mv.m.Partition, Target: mv.m.To, Adding: mv.m.Adding(), Removing: mv.m.Removing()})
	}
	return out, nil
}

func (f *fakeCluster) Reassign(_ context.Context, _ fleet.ClusterSpec, moves []fleet.Move) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range moves {
		k := fmt.Sprintf("%s/%d", m.Topic, m.Partition)
		if _, ok := f.moving[k]; ok {
			return fmt.Errorf("%s: moved while a move is under way", k)
		}
		for _, b := range m.Adding() {
			if !f.throttled[fmt.Sprintf("%s/%d:%d", m.Topic, m.Partition, b)] || f.rate == 0 {
				f.unthrottled = append(f.unthrottled, m.String())
			}
		}
		f.moving[k] = &fakeMove{m: m, left: f.polls}
		f.sent++
	}
	busy := map[int32]int{}
	for _, mv := range f.moving {
		for _, b := range append(mv.m.Adding(), mv.m.Removing()...) {
			busy[b]++
			f.peakPerBroker = max(f.peakPerBroker, busy[b])
		}
	}
	f.peakInFlight = max(f.peakInFlight, len(f.moving))
	return nil
}

func (f *fakeCluster) CancelReassignments(context.Context, fleet.ClusterSpec, []kafka.Reassigning) error {
	return nil
}

func (f *fakeCluster) SetThrottleRate(_ context.Context, _ fleet.ClusterSpec, _ []int32, rate int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rate = rate
	return nil
}

func (f *fakeCluster) ThrottleReplicas(_ context.Context, _ fleet.ClusterSpec, moves []fleet.Move) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range moves {
		for _, b := range m.Adding() {
			f.throttled[fmt.Sprintf("%s/%d:%d", m.Topic, m.Partition, b)] = true
		}
	}
	return nil
}

func (f *fakeCluster) ClearThrottles(_ context.Context, _ fleet.ClusterSpec, brokers []int32, topics []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(brokers) > 0 {
		f.rate = 0
	}
	for k := range f.throttled {
		if slices.ContainsFunc(topics, func(t string) bool { return strings.HasPrefix(k, t+"/") }) {
			delete(f.throttled, k)
		}
	}
	return nil
}

func (f *fakeCluster) ThrottlesLeft(context.Context, fleet.ClusterSpec, []int32, []string) ([]string, error) {
	return nil, nil
}

func (f *fakeCluster) PartitionSizes(context.Context, fleet.ClusterSpec) (map[string]map[int32]int64, error) {
	out := map[string]map[int32]int64{}
	for _, p := range f.parts {
		if out[p.Topic] == nil {
			out[p.Topic] = map[int32]int64{}
		}
		out[p.Topic][p.Partition] = 1000
	}
	return out, nil
}

func rebalanceUnit(f *fakeCluster) (*activities.Activities, *testsuite.TestActivityEnvironment) {
	acts := &activities.Activities{Kafka: f, ZooKeeper: f, Reassigner: f, Log: zerolog.Nop(), PollInterval: time.Millisecond}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	return acts, env
}

func sixBrokers() fleet.ClusterSpec {
	spec := fleet.ClusterSpec{ID: "unit-a", Bootstrap: []string{"127.0.0.1:9092"}, ZooKeeper: "127.0.0.1:2181/kfleet/unit-a"}
	for b := int32(1); b <= 6; b++ {
		spec.Brokers = append(spec.Brokers, fleet.BrokerSpec{ID: b, InstanceID: fmt.Sprintf("i-%d", b)})
	}
	return spec
}

// Partitions all on brokers 1-3 of six spread over the six: never more
// than the limits under way, every copy throttled before it is sent,
// throttles cleared and leaders elected at the end.
func TestRebalanceKeepsItsLimits(t *testing.T) {
	for _, tt := range []struct {
		name                 string
		perBroker, inFlight  int
		wantPerBroker, wantN int
	}{
		{"defaults", 0, 0, activities.DefaultMovesPerBroker, 0},
		{"two per broker", 2, 0, 2, 0},
		{"three in all", 0, 3, 0, 3},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeCluster(6, 4, 30)
			acts, env := rebalanceUnit(f)
			v, err := env.ExecuteActivity(acts.Rebalance, activities.RebalanceInput{Spec: sixBrokers(), MovesPerBroker: tt.perBroker, MovesInFlight: tt.inFlight, ThrottleBytesPerSec: 1 << 20})
			require.NoError(t, err)
			var res activities.RebalanceResult
			require.NoError(t, v.Get(&res))
			assert.True(t, res.After.Balanced(fleet.DefaultBalanceTolerance), res.After.String())
			assert.Equal(t, f.sent, res.Moved)
			assert.Equal(t, int64(res.Copies)*1000, res.Bytes)
			if tt.wantPerBroker > 0 {
				assert.LessOrEqual(t, f.peakPerBroker, tt.wantPerBroker, "moves under way per broker")
				assert.Equal(t, tt.wantPerBroker, f.peakPerBroker, "the limit is used")
			}
			if tt.wantN > 0 {
				assert.LessOrEqual(t, f.peakInFlight, tt.wantN, "moves under way in all")
			}
			assert.Empty(t, f.unthrottled, "every copy throttled before it was sent")
			assert.Zero(t, f.rate, "the brokers' throttle cleared")
			assert.Empty(t, f.throttled, "every topic's throttled replicas cleared")
		})
	}
}

// While a broker is not registered, no new move is sent; held past the
// rebalance's hold, a human is asked (GateHeld), with the moves under way
// left to land.
func TestRebalanceHeldByTheAvailabilityGate(t *testing.T) {
	f := newFakeCluster(6, 1, 12)
	f.registered = []int32{1, 2, 3, 4, 5} // broker 6 is down
	acts, env := rebalanceUnit(f)
	_, err := env.ExecuteActivity(acts.Rebalance, activities.RebalanceInput{Spec: sixBrokers(), GateHold: 20 * time.Millisecond})
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	assert.Equal(t, activities.ErrTypeGateHeld, appErr.Type())
	assert.Contains(t, appErr.Message(), "broker 6 is not registered")
	assert.Zero(t, f.sent, "no move sent while the gate was shut")
}

// A drain moves every replica off the leaving broker; a removal that
// would leave fewer brokers than a partition's replicas is refused.
func TestRebalanceDrains(t *testing.T) {
	f := newFakeCluster(4, 1, 6) // replicas on 1-3, broker 4 empty
	spec := sixBrokers()
	spec.Brokers = spec.Brokers[:4]
	acts, env := rebalanceUnit(f)
	v, err := env.ExecuteActivity(acts.Rebalance, activities.RebalanceInput{Spec: spec, Leaving: []int32{1}})
	require.NoError(t, err)
	var res activities.RebalanceResult
	require.NoError(t, v.Get(&res))
	assert.Zero(t, res.After.Elsewhere)
	for _, p := range f.parts {
		assert.False(t, p.HostedOn(1), "%s on broker 1", p)
	}

	spec.Brokers = spec.Brokers[:3]
	_, err = env.ExecuteActivity(acts.Rebalance, activities.RebalanceInput{Spec: spec, Leaving: []int32{1}})
	require.ErrorContains(t, err, "only 2 broker(s) would remain")
}
