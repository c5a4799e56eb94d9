package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// ghostCluster is fakeKRaft with registrations (fencing) and
// UnregisterBroker.
type ghostCluster struct {
	*fakeKRaft
	fencing      []fleet.BrokerFencing
	unregistered []int32
}

func (g *ghostCluster) BrokerFencing(context.Context, fleet.ClusterSpec) ([]fleet.BrokerFencing, error) {
	return g.fencing, nil
}

func (g *ghostCluster) UnregisterBroker(_ context.Context, _ fleet.ClusterSpec, node int32) error {
	g.unregistered = append(g.unregistered, node)
	return nil
}

func runGhost[T any](t *testing.T, g *ghostCluster, fn any, in any) (T, error) {
	t.Helper()
	acts := &activities.Activities{KRaft: g, Fencing: g, Log: zerolog.Nop()}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	var out T
	v, err := env.ExecuteActivity(fn, in)
	if err != nil {
		return out, err
	}
	require.NoError(t, v.Get(&out))
	return out, nil
}

func TestUnregisterGhostNeverALiveNode(t *testing.T) {
	var acts *activities.Activities
	cases := []struct {
		name    string
		node    int32
		fencing []fleet.BrokerFencing
		want    string // "" : unregistered
		done    bool   // already gone: nothing sent
	}{
		{"a fenced ghost", 7, []fleet.BrokerFencing{{ID: 1}, {ID: 7, Fenced: true}}, "", false},
		{"already unregistered", 7, []fleet.BrokerFencing{{ID: 1}}, "", true},
		{"a ghost that heartbeats", 7, []fleet.BrokerFencing{{ID: 7, Fenced: false}}, "never unregisters a live node", false},
		{"a node of the spec", 2, []fleet.BrokerFencing{{ID: 2, Fenced: true}}, "it is in the spec", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &ghostCluster{fakeKRaft: &fakeKRaft{}, fencing: c.fencing}
			got, err := runGhost[activities.Ghost](t, g, acts.UnregisterGhost, activities.GhostInput{Spec: kraftUnitSpec(), Node: c.node})
			if c.want != "" {
				var appErr *temporal.ApplicationError
				require.ErrorAs(t, err, &appErr)
				assert.True(t, appErr.NonRetryable())
				assert.Contains(t, err.Error(), c.want)
				assert.Empty(t, g.unregistered, "nothing sent")
				return
			}
			require.NoError(t, err)
			assert.False(t, got.Registered)
			if c.done {
				assert.Empty(t, g.unregistered)
				return
			}
			assert.Equal(t, []int32{c.node}, g.unregistered)
		})
	}
}

func TestDescribeGhostNamesItsLastRelease(t *testing.T) {
	var acts *activities.Activities
	g := &ghostCluster{fencing: []fleet.BrokerFencing{{ID: 1}, {ID: 7, Fenced: true}}, fakeKRaft: &fakeKRaft{
		refuse: "cluster unit-k: invalid update version: broker 7 (registered but not running, Kafka 3.9.0) does not support metadata.version 4.0-IV3 (it supports 3.3-IV3..3.9-IV0)"}}
	got, err := runGhost[activities.Ghost](t, g, acts.DescribeGhost, activities.GhostInput{Spec: kraftUnitSpec(), Node: 7, Target: "4.0-IV3"})
	require.NoError(t, err)
	assert.True(t, got.Registered)
	assert.True(t, got.Fenced)
	assert.False(t, got.InSpec)
	assert.Equal(t, "3.9.0", got.LastVersion)
	assert.Contains(t, got.Why, "does not support metadata.version 4.0-IV3")
}

func TestWaitUpgradeReady(t *testing.T) {
	now := time.Now()
	quorum := fleet.Quorum{Leader: 3000, Epoch: 2, HighWatermark: 10}
	for _, id := range []int32{3000, 3001, 3002} {
		quorum.Voters = append(quorum.Voters, fleet.QuorumReplica{ID: id, LogEndOffset: 10, LastFetch: now, LastCaughtUp: now})
	}
	on40 := func(id int32) fleet.NodeSupport {
		return fleet.NodeSupport{ID: id, Known: true, MinLevel: 7, MaxLevel: 25}
	}
	on39 := func(id int32) fleet.NodeSupport {
		return fleet.NodeSupport{ID: id, Known: true, MinLevel: 7, MaxLevel: 21}
	}
	registered := []fleet.BrokerFencing{{ID: 1}, {ID: 2}, {ID: 3}}
	var acts *activities.Activities
	cases := []struct {
		name    string
		fencing []fleet.BrokerFencing
		nodes   []fleet.NodeSupport
		refuse  string
		ready   bool
		want    string
	}{
		{"every node on the new binaries", registered, []fleet.NodeSupport{on40(1), on40(2), on40(3)}, "", true, "3 broker(s) registered and unfenced"},
		{"a ghost does not stop readiness", append(registered, fleet.BrokerFencing{ID: 7, Fenced: true}), []fleet.NodeSupport{on40(1), on40(2), on40(3), {ID: 7}},
			"broker 7 (registered but not running, Kafka 3.9.0) does not support metadata.version 4.0-IV3", true, ""},
		{"a ghost and a controller on old binaries", append(registered, fleet.BrokerFencing{ID: 7, Fenced: true}), []fleet.NodeSupport{on40(1), on40(2), on40(3), {ID: 7}},
			"controller 3001 does not support metadata.version 4.0-IV3", false, "the active controller would refuse it"},
		{"a broker on old binaries", registered, []fleet.NodeSupport{on40(1), on39(2), on40(3)}, "", false, "broker 2 supports up to level 21"},
		{"a fenced broker", []fleet.BrokerFencing{{ID: 1}, {ID: 2, Fenced: true}, {ID: 3}}, []fleet.NodeSupport{on40(1), on40(2), on40(3)}, "", false, "broker 2 is fenced"},
		{"a controller on old binaries", registered, []fleet.NodeSupport{on40(1), on40(2), on40(3)}, "controller 3001 does not support metadata.version 4.0-IV3", false, "the active controller would refuse it"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := &ghostCluster{fencing: c.fencing, fakeKRaft: &fakeKRaft{quorum: quorum, current: 21, nodes: c.nodes, refuse: c.refuse}}
			v, err := runGhost[activities.ReadyVerdict](t, g, acts.WaitUpgradeReady, activities.ReadyInput{
				Spec: kraftUnitSpec(), Target: "4.0-IV3", Timeout: 20 * time.Millisecond, PollInterval: 5 * time.Millisecond})
			require.NoError(t, err)
			assert.Equal(t, c.ready, v.Ready, v.Reason)
			assert.Contains(t, v.Reason, c.want)
			assert.EqualValues(t, 21, g.current, "validate-only at most: nothing finalized")
		})
	}
}
