package activities_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/kafka"
)

// fakeKRaft is a KRaft cluster's controller: a quorum, a finalized
// metadata.version, the registered nodes' support, and what it refuses.
type fakeKRaft struct {
	quorum  fleet.Quorum
	current int16
	nodes   []fleet.NodeSupport
	// refuse answers UpdateFeatures with INVALID_UPDATE_VERSION and this
	// message when set.
	refuse  string
	updates []int16
}

func (f *fakeKRaft) DescribeQuorum(context.Context, fleet.ClusterSpec) (fleet.Quorum, error) {
	return f.quorum, nil
}

func (f *fakeKRaft) MetadataVersionSupport(_ context.Context, spec fleet.ClusterSpec) (int16, []fleet.NodeSupport, error) {
	out := make([]fleet.NodeSupport, len(f.nodes))
	for i, n := range f.nodes {
		n.InSpec = spec.InSpec(n.ID)
		out[i] = n
	}
	return f.current, out, nil
}

func (f *fakeKRaft) UpdateMetadataVersion(_ context.Context, spec fleet.ClusterSpec, level int16, validateOnly bool) error {
	if f.refuse != "" {
		return &kafka.FeatureRefusedError{Cluster: spec.ID, Feature: fleet.MetadataVersionFeature, Level: level, Message: f.refuse, Err: kerr.InvalidUpdateVersion}
	}
	f.updates = append(f.updates, level)
	if !validateOnly {
		f.current = level
	}
	return nil
}

func kraftUnitSpec() fleet.ClusterSpec {
	return fleet.ClusterSpec{ID: "unit-k", Bootstrap: []string{"b:9092"},
		Brokers: []fleet.BrokerSpec{{ID: 1, InstanceID: "i-1"}, {ID: 2, InstanceID: "i-2"}, {ID: 3, InstanceID: "i-3"}},
		KRaft: &fleet.KRaftSpec{QuorumBootstrap: []string{"c:9093"}, Controllers: []fleet.ControllerSpec{
			{ID: 3000, InstanceID: "i-c0"}, {ID: 3001, InstanceID: "i-c1"}, {ID: 3002, InstanceID: "i-c2"}}}}
}

func runKRaft[T any](t *testing.T, f *fakeKRaft, fn any, in any) (T, error) {
	t.Helper()
	acts := &activities.Activities{KRaft: f, Log: zerolog.Nop()}
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

func TestCheckQuorumGate(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	r := func(id int32, lag time.Duration) fleet.QuorumReplica {
		return fleet.QuorumReplica{ID: id, LogEndOffset: 100, LastFetch: now.Add(-lag), LastCaughtUp: now.Add(-lag)}
	}
	f := &fakeKRaft{quorum: fleet.Quorum{Leader: 3000, Epoch: 4, HighWatermark: 100,
		Voters: []fleet.QuorumReplica{r(3000, 0), r(3001, 0), r(3002, 30*time.Second)}}}
	var acts *activities.Activities
	cases := []struct {
		node     int32
		safe     bool
		caughtUp int
	}{
		{3002, true, 2},  // the lagging one
		{3001, false, 1}, // would leave the leader alone caught up
		{3000, false, 1},
		{2, true, 2}, // a broker is no voter
	}
	for _, c := range cases {
		v, err := runKRaft[fleet.QuorumVerdict](t, f, acts.CheckQuorumGate, activities.QuorumInput{Spec: kraftUnitSpec(), Node: c.node})
		require.NoError(t, err)
		assert.Equal(t, c.safe, v.Safe, "node %d: %s", c.node, v.Reason)
		assert.Equal(t, c.caughtUp, v.CaughtUp, "node %d", c.node)
		assert.Equal(t, 3, v.Voters)
		assert.Equal(t, 2, v.Majority)
	}

	q, err := runKRaft[fleet.Quorum](t, f, acts.DescribeQuorum, activities.QuorumInput{Spec: kraftUnitSpec()})
	require.NoError(t, err)
	assert.Equal(t, f.quorum, q)

	// A ZooKeeper cluster has no quorum: bad input, not retried.
	zk := kraftUnitSpec()
	zk.KRaft, zk.ZooKeeper = nil, "z:2181/k"
	_, err = runKRaft[fleet.QuorumVerdict](t, f, acts.CheckQuorumGate, activities.QuorumInput{Spec: zk, Node: 3000})
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	assert.True(t, appErr.NonRetryable())
	assert.Contains(t, err.Error(), "a zookeeper cluster has no KRaft quorum yet")
}

func TestFinalizeMetadataVersion(t *testing.T) {
	at := func(id int32, maxLevel int16) fleet.NodeSupport {
		return fleet.NodeSupport{ID: id, Known: true, MinLevel: 7, MaxLevel: maxLevel}
	}
	var acts *activities.Activities
	cases := []struct {
		name     string
		fake     *fakeKRaft
		target   string
		want     activities.FinalizeResult
		refusals []string
		updates  []int16
	}{
		{"finalizes", &fakeKRaft{current: 19, nodes: []fleet.NodeSupport{at(1, 21), at(2, 21), at(3, 21)}}, "3.9",
			activities.FinalizeResult{From: 19, To: 21}, nil, []int16{21}},
		{"already there: nothing sent", &fakeKRaft{current: 21, nodes: []fleet.NodeSupport{at(1, 21), at(2, 21), at(3, 21)}}, "3.9-IV0",
			activities.FinalizeResult{From: 21, To: 21, AlreadyDone: true}, nil, nil},
		{"a ghost: nothing sent", &fakeKRaft{current: 19, nodes: []fleet.NodeSupport{at(1, 21), at(2, 21), at(3, 21), at(4, 14)}}, "3.9-IV0",
			activities.FinalizeResult{From: 19, To: 21, Ghosts: []int32{4}}, []string{"broker 4 supports up to 3.6-IV2 (level 14) and is a ghost"}, nil},
		{"a downgrade: nothing sent", &fakeKRaft{current: 21, nodes: []fleet.NodeSupport{at(1, 21)}}, "3.8-IV0",
			activities.FinalizeResult{From: 21, To: 20}, []string{"downgrading metadata.version is refused"}, nil},
		{"the controllers refuse", &fakeKRaft{current: 19, nodes: []fleet.NodeSupport{at(1, 21), at(2, 21), at(3, 21)},
			refuse: "Invalid update version 21 for feature metadata.version. Controller 3002 only supports versions 7-19"}, "3.9-IV0",
			activities.FinalizeResult{From: 19, To: 21}, []string{"Controller 3002 only supports versions 7-19"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, err := runKRaft[activities.FinalizeResult](t, c.fake, acts.FinalizeMetadataVersion, activities.FinalizeInput{Spec: kraftUnitSpec(), Target: c.target})
			require.NoError(t, err)
			require.Len(t, res.Refusals, len(c.refusals), "%v", res.Refusals)
			for i, r := range c.refusals {
				assert.Contains(t, res.Refusals[i], r)
			}
			res.Refusals = nil
			assert.Equal(t, c.want, res)
			assert.Equal(t, c.updates, c.fake.updates)
		})
	}

	// Bad input is refused without asking the cluster.
	f := &fakeKRaft{current: 19}
	migrating := kraftUnitSpec()
	migrating.ZooKeeper, migrating.KRaft.Mode, migrating.KRaft.Phase = "z:2181/k", fleet.ModeMigrating, fleet.PhaseDualWrite
	for name, in := range map[string]activities.FinalizeInput{
		"unknown level":   {Spec: kraftUnitSpec(), Target: "3.9-IV9"},
		"mid-migration":   {Spec: migrating, Target: "3.9"},
		"an invalid spec": {Spec: fleet.ClusterSpec{ID: "unit-k"}, Target: "3.9"},
	} {
		_, err := runKRaft[activities.FinalizeResult](t, f, acts.FinalizeMetadataVersion, in)
		var appErr *temporal.ApplicationError
		require.ErrorAs(t, err, &appErr, name)
		assert.True(t, appErr.NonRetryable(), name)
		assert.Equal(t, activities.ErrTypeBadInput, appErr.Type(), name)
	}
	assert.Nil(t, f.updates)
	_, err := runKRaft[activities.FinalizeResult](t, f, acts.FinalizeMetadataVersion, activities.FinalizeInput{Spec: migrating, Target: "3.9"})
	assert.Contains(t, err.Error(), "metadata.version must not change during a migration")
	assert.False(t, errors.Is(err, context.Canceled))
}
