package activities_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// quorumSeq answers DescribeQuorum with its quorums in turn, the last one
// from then on.
type quorumSeq struct {
	fakeKRaft
	mu      sync.Mutex
	quorums []fleet.Quorum
	// fail fails the calls of these indices (a request that met a
	// controller just stopped).
	fail    []int
	failAll bool
	calls   int
}

func (f *quorumSeq) DescribeQuorum(context.Context, fleet.ClusterSpec) (fleet.Quorum, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := f.calls
	f.calls++
	if f.failAll || slices.Contains(f.fail, i) {
		return fleet.Quorum{}, errors.New("NOT_LEADER_OR_FOLLOWER")
	}
	return f.quorums[min(i, len(f.quorums)-1)], nil
}

// quorumAt is a three-voter quorum led by leader at the leader's time t,
// each voter last caught up lag[id] before it.
func quorumAt(t time.Time, leader int32, lag map[int32]time.Duration) fleet.Quorum {
	q := fleet.Quorum{Leader: leader, Epoch: 5, HighWatermark: 100}
	for _, id := range []int32{3000, 3001, 3002} {
		at := t.Add(-lag[id])
		q.Voters = append(q.Voters, fleet.QuorumReplica{ID: id, LogEndOffset: 100, LastFetch: at, LastCaughtUp: at})
	}
	return q
}

func controllerActs(t *testing.T, hosts *fakeHosts, k activities.KRaftAdmin) *testsuite.TestActivityEnvironment {
	t.Helper()
	acts := &activities.Activities{Hosts: hosts, KRaft: k, Log: zerolog.New(zerolog.NewTestWriter(t)), PollInterval: 2 * time.Millisecond}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	return env
}

func TestControllerStopAndStartRunOnItsHost(t *testing.T) {
	var acts *activities.Activities
	zk := kraftUnitSpec()
	zk.KRaft, zk.ZooKeeper = nil, "z:2181/k"
	cases := []struct {
		name     string
		activity any
		in       activities.ControllerInput
		want     []run
		badInput string
	}{
		{"stop", acts.StopController, activities.ControllerInput{Spec: kraftUnitSpec(), Controller: 3001, Reason: "roll"},
			[]run{{"i-c1", cloud.DocStopBroker, map[string]string{cloud.ParamGracePeriodSeconds: "60"}}}, ""},
		{"start with a version", acts.StartController, activities.ControllerInput{Spec: kraftUnitSpec(), Controller: 3002, Reason: "roll", Version: "4.0.0"},
			[]run{{"i-c2", cloud.DocStartBroker, map[string]string{cloud.ParamVersion: "4.0.0"}}}, ""},
		{"a broker's id is no controller", acts.StopController, activities.ControllerInput{Spec: kraftUnitSpec(), Controller: 1},
			nil, "controller 1 is not in the cluster spec"},
		{"a ZooKeeper cluster has none", acts.StartController, activities.ControllerInput{Spec: zk, Controller: 3000},
			nil, "controller 3000 is not in the cluster spec (a zookeeper cluster)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hosts := &fakeHosts{stdout: map[string]string{}, errs: map[string]error{}}
			_, err := controllerActs(t, hosts, nil).ExecuteActivity(c.activity, c.in)
			if c.badInput != "" {
				var appErr *temporal.ApplicationError
				require.ErrorAs(t, err, &appErr)
				assert.Equal(t, activities.ErrTypeBadInput, appErr.Type())
				assert.Contains(t, err.Error(), c.badInput)
				assert.Empty(t, hosts.runs, "nothing sent")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, hosts.runs)
		})
	}
}

func TestWaitControllerCaughtUp(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	var acts *activities.Activities
	cases := []struct {
		name    string
		node    int32
		quorums []fleet.Quorum
		fail    []int
		checks  int
		leader  int32
	}{
		{
			// Down for less than a fetch timeout, DescribeQuorum still
			// shows it "caught up" by its old time: not enough, a fetch
			// after the mark is.
			"a stale caught-up time is not a fetch", 3001,
			[]fleet.Quorum{
				quorumAt(t0, 3000, map[int32]time.Duration{3001: 800 * ms}),
				quorumAt(t0.Add(500*ms), 3000, map[int32]time.Duration{3001: 1300 * ms}),
				quorumAt(t0.Add(time.Second), 3000, nil),
			}, nil, 3, 3000,
		},
		{
			"no leader yet, then caught up", 3002,
			[]fleet.Quorum{
				{Leader: -1, Epoch: 5, Voters: quorumAt(t0, 3000, nil).Voters},
				quorumAt(t0.Add(time.Second), 3000, map[int32]time.Duration{3002: 5 * time.Second}),
				quorumAt(t0.Add(2*time.Second), 3000, nil),
			}, nil, 3, 3000,
		},
		{
			"elected leader after its restart", 3001,
			[]fleet.Quorum{quorumAt(t0, 3001, nil)}, nil, 2, 3001,
		},
		{
			"failed reads are tried again", 3001,
			[]fleet.Quorum{quorumAt(t0, 3000, nil), quorumAt(t0, 3000, nil), quorumAt(t0, 3000, nil), quorumAt(t0.Add(time.Second), 3000, nil)},
			[]int{1, 2}, 2, 3000,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := &quorumSeq{quorums: c.quorums, fail: c.fail}
			v, err := controllerActs(t, nil, k).ExecuteActivity(acts.WaitControllerCaughtUp,
				activities.CaughtUpInput{ControllerInput: activities.ControllerInput{Spec: kraftUnitSpec(), Controller: c.node}})
			require.NoError(t, err)
			var res activities.ControllerCaughtUp
			require.NoError(t, v.Get(&res))
			assert.Equal(t, c.checks, res.Checks)
			assert.Equal(t, c.leader, res.Leader)
		})
	}
	// Reads that keep failing longer than an election end the attempt,
	// naming the controller; Temporal retries it.
	if testing.Short() {
		return
	}
	k := &quorumSeq{quorums: []fleet.Quorum{quorumAt(t0, 3000, nil)}, failAll: true}
	_, err := controllerActs(t, nil, k).ExecuteActivity(acts.WaitControllerCaughtUp,
		activities.CaughtUpInput{ControllerInput: activities.ControllerInput{Spec: kraftUnitSpec(), Controller: 3001}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cluster unit-k controller 3001: wait until caught up")
	assert.Contains(t, err.Error(), "NOT_LEADER_OR_FOLLOWER")
}

func TestWaitQuorumGate(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	lagging := quorumAt(t0, 3000, map[int32]time.Duration{3002: 30 * time.Second})
	var acts *activities.Activities
	cases := []struct {
		name     string
		quorums  []fleet.Quorum
		timeout  time.Duration
		safe     bool
		timedOut bool
		checks   int
	}{
		{"opens when the lagging voter catches up", []fleet.Quorum{lagging, lagging, quorumAt(t0.Add(time.Second), 3000, nil)}, time.Minute, true, false, 3},
		{"still shut at the deadline", []fleet.Quorum{lagging}, 30 * time.Millisecond, false, true, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k := &quorumSeq{quorums: c.quorums}
			v, err := controllerActs(t, nil, k).ExecuteActivity(acts.WaitQuorumGate, activities.QuorumGateWaitInput{
				QuorumInput: activities.QuorumInput{Spec: kraftUnitSpec(), Node: 3001}, Timeout: c.timeout})
			require.NoError(t, err)
			var w activities.QuorumGateWait
			require.NoError(t, v.Get(&w))
			assert.Equal(t, c.safe, w.Verdict.Safe, w.Verdict.Reason)
			assert.Equal(t, c.timedOut, w.TimedOut)
			if c.checks > 0 {
				assert.Equal(t, c.checks, w.Checks)
			}
			if !c.safe {
				assert.Contains(t, w.Verdict.Reason, "voter 3002 is 0 offsets behind, last caught up 30s before the leader's time")
			}
		})
	}
	// A wait without a deadline is bad input, before the cluster is asked.
	k := &quorumSeq{quorums: []fleet.Quorum{lagging}}
	_, err := controllerActs(t, nil, k).ExecuteActivity(acts.WaitQuorumGate, activities.QuorumGateWaitInput{QuorumInput: activities.QuorumInput{Spec: kraftUnitSpec(), Node: 3001}})
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	assert.Equal(t, activities.ErrTypeBadInput, appErr.Type())
	assert.Zero(t, k.calls)
}
