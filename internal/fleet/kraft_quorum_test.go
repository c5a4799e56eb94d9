package fleet_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/kfleet/kfleet/internal/fleet"
)

// leaderTime is the leader's time in the quorums below.
func leaderTime() time.Time { return time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC) }

// voter is a follower that last caught up lag before the leader's time,
// behind offsets behind the leader's log end (1000).
func voter(id int32, lag time.Duration, behind int64) fleet.QuorumReplica {
	t0 := leaderTime()
	return fleet.QuorumReplica{ID: id, LogEndOffset: 1000 - behind, LastFetch: t0.Add(-lag), LastCaughtUp: t0.Add(-lag)}
}

func quorum(voters ...fleet.QuorumReplica) fleet.Quorum {
	t0 := leaderTime()
	leader := fleet.QuorumReplica{ID: 3000, LogEndOffset: 1000, LastFetch: t0, LastCaughtUp: t0}
	return fleet.Quorum{Leader: 3000, Epoch: 7, HighWatermark: 1000, Voters: append([]fleet.QuorumReplica{leader}, voters...)}
}

func TestCaughtUp(t *testing.T) {
	leader := fleet.QuorumReplica{ID: 1, LastCaughtUp: leaderTime()}
	cases := []struct {
		name  string
		voter fleet.QuorumReplica
		want  bool
	}{
		{"the leader", leader, true},
		{"just now", voter(2, 0, 0), true},
		{"at the fetch timeout", voter(2, 2*time.Second, 5), true},
		{"past the fetch timeout", voter(2, 2*time.Second+time.Millisecond, 5), false},
		{"never", fleet.QuorumReplica{ID: 2, LogEndOffset: -1}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, fleet.CaughtUp(c.voter, leader, fleet.QuorumFetchTimeout))
		})
	}
	assert.False(t, fleet.CaughtUp(voter(2, 0, 0), fleet.QuorumReplica{ID: 1}, time.Second), "leader's time unknown: nobody else counts as caught up")
}

func TestLeaderReplicaFillsAnUnknownLeaderTime(t *testing.T) {
	q := quorum(voter(3001, 500*time.Millisecond, 0), voter(3002, 3*time.Second, 0))
	q.Voters[0].LastCaughtUp, q.Voters[0].LastFetch = time.Time{}, time.Time{} // older controllers answer -1 for the leader
	l, ok := q.LeaderReplica()
	assert.True(t, ok)
	assert.Equal(t, leaderTime().Add(-500*time.Millisecond), l.LastCaughtUp, "the latest fetch bounds the leader's time")
	_, ok = fleet.Quorum{Leader: -1, Voters: q.Voters}.LeaderReplica()
	assert.False(t, ok)
}

func TestQuorumSafeWithout(t *testing.T) {
	cases := []struct {
		name   string
		q      fleet.Quorum
		node   int32
		ok     bool
		reason []string
	}{
		{"all caught up, restart a follower", quorum(voter(3001, 0, 0), voter(3002, time.Second, 3)), 3001, true,
			[]string{"without controller 3001, 2 of 3 voters are caught up (a majority is 2)"}},
		{"all caught up, restart the leader", quorum(voter(3001, 0, 0), voter(3002, 0, 0)), 3000, true,
			[]string{"2 of 3 voters are caught up"}},
		{"the other follower lags", quorum(voter(3001, 0, 0), voter(3002, 5*time.Second, 420)), 3001, false,
			[]string{"1 of 3 voters are caught up (a majority is 2)", "voter 3002 is 420 offsets behind, last caught up 5s before the leader's time"}},
		{"restarting the lagging one is safe", quorum(voter(3001, 0, 0), voter(3002, 5*time.Second, 420)), 3002, true, nil},
		{"five voters, one lags, restart another", quorum(voter(3001, 0, 0), voter(3002, 0, 0), voter(3003, 0, 0), voter(3004, time.Minute, 9)), 3003, true,
			[]string{"3 of 5"}},
		{"five voters, two lag", quorum(voter(3001, 0, 0), voter(3002, 0, 0), voter(3003, time.Minute, 1), voter(3004, time.Minute, 9)), 3002, false,
			[]string{"2 of 5 voters are caught up (a majority is 3)", "voter 3003", "voter 3004"}},
		{"a voter that never caught up", quorum(voter(3001, 0, 0), fleet.QuorumReplica{ID: 3002, LogEndOffset: -1}), 3001, false,
			[]string{"voter 3002 is log end unknown, never caught up"}},
		{"no leader", fleet.Quorum{Leader: -1, Epoch: 9, Voters: []fleet.QuorumReplica{{ID: 3000}}}, 3000, false,
			[]string{"no leader (epoch 9)"}},
		{"a broker is no voter", quorum(voter(3001, 0, 0), voter(3002, time.Minute, 1)), 1, true,
			[]string{"node 1 is not a quorum voter"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ok, reason := fleet.QuorumSafeWithout(c.q, c.node, fleet.QuorumFetchTimeout)
			assert.Equal(t, c.ok, ok, reason)
			for _, r := range c.reason {
				assert.Contains(t, reason, r)
			}
			if c.ok {
				assert.Empty(t, fleet.QuorumBlockers(c.q, c.node, fleet.QuorumFetchTimeout))
			} else {
				b := fleet.QuorumBlockers(c.q, c.node, fleet.QuorumFetchTimeout)
				if assert.Len(t, b, 1) {
					assert.Equal(t, fleet.GateQuorum, b[0].Gate)
				}
			}
		})
	}
}

func TestControllerRollOrder(t *testing.T) {
	cases := []struct {
		name string
		q    fleet.Quorum
		want []int32
	}{
		{"followers by id, leader last", quorum(voter(3002, 0, 0), voter(3001, 0, 0)), []int32{3001, 3002, 3000}},
		{"unready first", quorum(voter(3001, 0, 0), voter(3002, time.Minute, 50)), []int32{3002, 3001, 3000}},
		{"no leader: all unready by id", fleet.Quorum{Leader: -1, Voters: []fleet.QuorumReplica{{ID: 3002}, {ID: 3000}}}, []int32{3000, 3002}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, fleet.ControllerRollOrder(c.q, fleet.QuorumFetchTimeout))
		})
	}
}

func TestNextController(t *testing.T) {
	q := quorum(voter(3001, 0, 0), voter(3002, time.Minute, 50))
	cases := []struct {
		remaining []int32
		want      int32
		ok        bool
	}{
		{[]int32{3000, 3001, 3002}, 3002, true},
		{[]int32{3000, 3001}, 3001, true},
		{[]int32{3000}, 3000, true},
		{[]int32{3000, 3005}, 3005, true}, // not a voter: holds nothing
		{nil, 0, false},
	}
	for _, c := range cases {
		got, ok := fleet.NextController(q, c.remaining, fleet.QuorumFetchTimeout)
		assert.Equal(t, c.ok, ok, "remaining %v", c.remaining)
		assert.Equal(t, c.want, got, "remaining %v", c.remaining)
	}
}

func TestJudgeFencing(t *testing.T) {
	brokers := []fleet.BrokerFencing{
		{ID: 1}, {ID: 2, Fenced: true}, {ID: 3, Fenced: true}, {ID: 4, Fenced: true, WantShutdown: true}, {ID: 6, Fenced: true},
	}
	cases := []struct {
		name     string
		stopping []int32
		want     fleet.FencingVerdict
	}{
		{"nobody stopping", nil, fleet.FencingVerdict{Unclean: []int32{2, 3, 6}, Expected: []int32{4}, Missing: []int32{5}}},
		{"kfleet stops 3", []int32{3}, fleet.FencingVerdict{Unclean: []int32{2, 6}, Expected: []int32{3, 4}, Missing: []int32{5}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, fleet.JudgeFencing(brokers, c.stopping, []int32{1, 2, 3, 4, 5, 6}))
		})
	}
	assert.Equal(t, fleet.FencingVerdict{}, fleet.JudgeFencing([]fleet.BrokerFencing{{ID: 1}}, nil, []int32{1}))
	assert.Equal(t, 11*time.Second, fleet.BrokerSessionTimeout+fleet.UncleanLossSlack, "issue #15: detection within the session timeout + 2 s")
}

func TestUnfenced(t *testing.T) {
	cases := []struct {
		name    string
		brokers []fleet.BrokerFencing
		want    []int32
	}{
		{"none registered", nil, []int32{}},
		{"all unfenced, unsorted", []fleet.BrokerFencing{{ID: 3}, {ID: 1}, {ID: 2}}, []int32{1, 2, 3}},
		{"a crashed broker is fenced", []fleet.BrokerFencing{{ID: 1}, {ID: 2, Fenced: true}, {ID: 3}}, []int32{1, 3}},
		{"a controlled stop is fenced too", []fleet.BrokerFencing{{ID: 1, Fenced: true, WantShutdown: true}, {ID: 2}}, []int32{2}},
		{"all fenced", []fleet.BrokerFencing{{ID: 1, Fenced: true}, {ID: 2, Fenced: true}}, []int32{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, fleet.Unfenced(c.brokers))
		})
	}
}

func TestJudgeQuorumWithoutCounts(t *testing.T) {
	q := quorum(voter(3001, 0, 0), voter(3002, 0, 0), voter(3003, time.Minute, 1), voter(3004, time.Minute, 9))
	v := fleet.JudgeQuorumWithout(q, 3002, fleet.QuorumFetchTimeout)
	assert.Equal(t, fleet.QuorumVerdict{Safe: false, Voters: 5, CaughtUp: 2, Majority: 3, Lagging: []int32{3003, 3004}, Reason: v.Reason}, v)
	v = fleet.JudgeQuorumWithout(q, 3003, fleet.QuorumFetchTimeout)
	assert.True(t, v.Safe)
	assert.Equal(t, 3, v.CaughtUp)
	assert.Equal(t, []int32{3004}, v.Lagging)
}
