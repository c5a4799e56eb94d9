package activities_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// fencingStep is one DescribeCluster answer of scriptedFencing.
type fencingStep struct {
	brokers []fleet.BrokerFencing
	err     error
}

// scriptedFencing answers its steps in order, the last one again and
// again, and counts the calls.
type scriptedFencing struct {
	mu    sync.Mutex
	steps []fencingStep
	calls int
}

func (f *scriptedFencing) BrokerFencing(context.Context, fleet.ClusterSpec) ([]fleet.BrokerFencing, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.steps[min(f.calls, len(f.steps)-1)]
	f.calls++
	return s.brokers, s.err
}

// unfenced and fenced2 are DescribeCluster's brokers of a healthy KRaft
// cluster and of one whose broker 2 crashed.
var (
	unfenced = []fleet.BrokerFencing{{ID: 1}, {ID: 2}, {ID: 3}}
	fenced2  = []fleet.BrokerFencing{{ID: 1}, {ID: 2, Fenced: true}, {ID: 3}}
	errDown  = errors.New("describe cluster: connection refused")
)

// kraftSenseUnit is newUnit's cluster as a KRaft cluster whose
// registrations come from f, polled every 100 ms, health ticks off.
func kraftSenseUnit(t *testing.T, f activities.Fencing) *unit {
	u := newUnit(t)
	u.acts.Fencing = f
	// A KRaft cluster has no ZooKeeper: asking it is a bug.
	u.acts.ZooKeeper, u.acts.Ensemble = nil, nil
	spec := kraftUnitSpec()
	spec.Brokers = u.spec.Brokers
	spec.Health = fleet.HealthPolicy{FencingPoll: 100 * time.Millisecond, Disabled: true}
	u.spec = spec
	return u
}

func TestSenseKRaftRegistrationsFromFencing(t *testing.T) {
	cases := []struct {
		name    string
		known   []int32
		steps   []fencingStep
		want    []int32
		wantErr string
		polls   int
	}{
		{"a crashed broker is fenced", []int32{1, 2, 3}, []fencingStep{{brokers: unfenced}, {brokers: fenced2}}, []int32{1, 3}, "", 2},
		{"a fenced broker is unfenced again", []int32{1, 3}, []fencingStep{{brokers: fenced2}, {brokers: unfenced}}, []int32{1, 2, 3}, "", 2},
		{"a broker unregistered is gone too", []int32{1, 2, 3}, []fencingStep{{brokers: []fleet.BrokerFencing{{ID: 1}, {ID: 3}}}}, []int32{1, 3}, "", 1},
		{"a failed poll is tried again", []int32{1, 2, 3}, []fencingStep{{err: errDown}, {brokers: unfenced}, {err: errDown}, {err: errDown}, {brokers: fenced2}}, []int32{1, 3}, "", 5},
		{"three failed polls in a row end the run", []int32{1, 2, 3}, []fencingStep{{brokers: unfenced}, {err: errDown}}, nil, "3 polls in a row failed", 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &scriptedFencing{steps: c.steps}
			u := kraftSenseUnit(t, f)
			var rep activities.SenseReport
			err := u.exec(t, u.acts.Sense, activities.SenseInput{Spec: u.spec, Known: c.known}, &rep)
			if c.wantErr != "" {
				require.ErrorContains(t, err, c.wantErr)
				assert.ErrorContains(t, err, "cluster unit-k")
			} else {
				require.NoError(t, err)
				assert.Equal(t, activities.SenseRegistrations, rep.Why)
				assert.Equal(t, c.want, rep.Registered)
			}
			assert.Equal(t, c.polls, f.calls)
		})
	}
}

func TestSenseKRaftBaselineAndPollInterval(t *testing.T) {
	f := &scriptedFencing{steps: []fencingStep{{brokers: fenced2}}}
	u := kraftSenseUnit(t, f)
	rep := u.sense(t, activities.SenseInput{Spec: u.spec, Initial: true})
	assert.Equal(t, []int32{1, 3}, rep.Registered, "registered = listed and unfenced")

	// Three polls at 100 ms: the third, 200 ms after the first, answers.
	f = &scriptedFencing{steps: []fencingStep{{brokers: unfenced}, {brokers: unfenced}, {brokers: fenced2}}}
	u = kraftSenseUnit(t, f)
	began := time.Now()
	rep = u.sense(t, activities.SenseInput{Spec: u.spec, Known: []int32{1, 2, 3}})
	took := time.Since(began)
	assert.Equal(t, []int32{1, 3}, rep.Registered)
	assert.GreaterOrEqual(t, took, 200*time.Millisecond)
	assert.Less(t, took, 2*time.Second)
}

func TestKRaftHealthTickAsksNoZooKeeper(t *testing.T) {
	u := kraftSenseUnit(t, &scriptedFencing{steps: []fencingStep{{brokers: unfenced}}})
	for _, b := range u.spec.Brokers {
		u.m.set(b.MetricsURL, healthyMetrics())
	}
	// An ensemble that a KRaft spec would fail (no connect string).
	u.acts.Ensemble = fakeEnsembleErr{}
	u.spec.Health.Disabled = false
	u.spec.Health.Interval = 100 * time.Millisecond
	rep := u.sense(t, activities.SenseInput{Spec: u.spec, Known: []int32{1, 2, 3}})
	assert.Equal(t, activities.SenseVerdict, rep.Why)
	require.NotNil(t, rep.Health)
	assert.Empty(t, rep.Health.ZooKeeper)
}

type fakeEnsembleErr struct{}

func (fakeEnsembleErr) ServerHealth(_ context.Context, spec fleet.ClusterSpec) ([]fleet.ZooKeeperServer, error) {
	return nil, errors.New("zookeeper connect string \"\": no servers")
}

func TestKRaftRecoveryReadsFencing(t *testing.T) {
	f := &scriptedFencing{steps: []fencingStep{{brokers: fenced2}}}
	u := kraftSenseUnit(t, f)
	u.hosts.stdout[cloud.DocBrokerStatus] = "crashed\n"
	var obs activities.BrokerObservation
	require.NoError(t, u.exec(t, u.acts.ObserveBroker, activities.BrokerInput{Spec: u.spec, Broker: 2, Reason: "test"}, &obs))
	assert.False(t, obs.Registered, "a fenced broker is not registered")
	require.NoError(t, u.exec(t, u.acts.ObserveBroker, activities.BrokerInput{Spec: u.spec, Broker: 1, Reason: "test"}, &obs))
	assert.True(t, obs.Registered)

	// WaitBrokerRegistered returns once broker 2 is unfenced.
	f = &scriptedFencing{steps: []fencingStep{{brokers: fenced2}, {err: errDown}, {brokers: unfenced}}}
	u = kraftSenseUnit(t, f)
	require.NoError(t, u.exec(t, u.acts.WaitBrokerRegistered, activities.BrokerInput{Spec: u.spec, Broker: 2, Reason: "test"}, nil))
	assert.Equal(t, 3, f.calls)
}

func TestKRaftRegistrationsNeedAFencingClient(t *testing.T) {
	u := kraftSenseUnit(t, nil)
	u.acts.Fencing = nil
	err := u.exec(t, u.acts.Sense, activities.SenseInput{Spec: u.spec, Initial: true}, nil)
	requireBadInput(t, err, "cluster unit-k: a KRaft cluster's registrations need a fencing client")
}
