package kraft

import (
	"fmt"
	"slices"
	"time"
)

// Quorums that form from provisioned controllers, and voters that come
// back on a new host with an empty metadata log.

// NewForming is a freshly formatted quorum whose voters have not started
// yet: no leader until a majority of them runs (StartVoter schedules the
// election), metadata.version finalized at mv, as kafka-storage format
// wrote it on every voter.
func NewForming(t Timing, voters []int32, mv int16) *Model {
	m := &Model{t: t, leader: NoLeader, brokers: map[int32]*Broker{}, voterMV: map[int32]Range{}}
	ids := slices.Clone(voters)
	slices.Sort(ids)
	for _, id := range ids {
		m.voters = append(m.voters, &Voter{ID: id})
	}
	m.features.MetadataVersion = mv
	return m
}

// ResetVoter is voter id's metadata log lost (a new host with a blank
// log directory): its log end offset is 0 and it has never caught up.
// Once up it fetches the whole log from the leader, reaching the
// leader's log end offset after catchUp; DescribeQuorum shows it lagging
// until then. Only a stopped voter can be reset.
func (m *Model) ResetVoter(id int32, catchUp time.Duration) error {
	v, err := m.voter(id)
	if err != nil {
		return err
	}
	if v.Up {
		return fmt.Errorf("voter %d runs: its log cannot be replaced", id)
	}
	*v = Voter{ID: id}
	v.catchUp = catchUp
	v.CatchingUp = true
	return nil
}

// fetchCatchingUp is one fetch of a voter copying the leader's log from
// the beginning: its log end offset grows linearly over its catch-up
// time, counted from its first fetch, and it is caught up at the end.
func (m *Model) fetchCatchingUp(v *Voter, leaderLEO int64, now time.Time) {
	if v.fetchFrom.IsZero() {
		v.fetchFrom = now
	}
	v.LastFetch = now
	done := now.Sub(v.fetchFrom)
	if done >= v.catchUp {
		v.CatchingUp = false
		v.LogEndOffset, v.LastCaughtUp = leaderLEO, now
		return
	}
	v.LogEndOffset = max(v.LogEndOffset, int64(float64(leaderLEO)*float64(done)/float64(v.catchUp)))
}
