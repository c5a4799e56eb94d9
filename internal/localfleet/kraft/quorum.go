// Package kraft is the local fleet's model of a KRaft cluster's controller
// quorum and of the brokers registered with it: voters, leader elections,
// epochs, the metadata log's end offsets and high watermark, broker
// registrations, heartbeats and fencing, and finalized features. kfake has
// none of these, so the fleet answers DescribeQuorum, DescribeCluster v2,
// UnregisterBroker and UpdateFeatures from this model.
//
// The model does no I/O and never sleeps: every call takes the time it
// happens at, and Advance moves the model forward to a time, returning
// what happened (events the caller audits). The caller serializes calls.
package kraft

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Timing is the quorum's and the brokers' timing, as KRaft's configs name
// it. Zero values are not defaulted here: the caller supplies them.
type Timing struct {
	Heartbeat    time.Duration // broker.heartbeat.interval.ms
	Session      time.Duration // broker.session.timeout.ms
	FetchTimeout time.Duration // controller.quorum.fetch.timeout.ms
	Election     time.Duration // controller.quorum.election.timeout.ms
}

// noOpInterval is how often an idle leader appends a record
// (metadata.max.idle.interval.ms): the log end offset moves even when
// nothing changes, as DescribeQuorum shows on a real quorum.
const noOpInterval = 500 * time.Millisecond

// NoLeader is the leader id when the quorum has none, as Kafka reports it.
const NoLeader int32 = -1

// Voter is one controller's state as DescribeQuorum reports it.
type Voter struct {
	ID           int32
	Up           bool // its process runs
	Lagged       bool // up but not fetching (fault: lag-voter)
	Partitioned  bool // cut off from every other voter (fault: partition-leader)
	LogEndOffset int64
	LastFetch    time.Time // zero: never fetched
	LastCaughtUp time.Time // zero: never caught up
	// CatchingUp: its log was lost (ResetVoter) and it is copying the
	// leader's from the beginning.
	CatchingUp bool

	catchUp   time.Duration // how long the copy takes (ResetVoter)
	fetchFrom time.Time     // its first fetch after the reset
}

// EventKind names what the model reports from a change or from Advance.
type EventKind string

// Events the caller audits.
const (
	EventElected      EventKind = "kraft-elected"       // a voter became leader (Epoch the new epoch)
	EventResigned     EventKind = "kraft-resigned"      // the leader gave up (it cannot reach a majority, or stopped)
	EventNoQuorum     EventKind = "kraft-no-quorum"     // an election found no majority of reachable voters
	EventRegistered   EventKind = "kraft-registered"    // a broker registered (Detail: its epoch and version)
	EventUnfenced     EventKind = "kraft-unfenced"      // a registered broker caught up and was unfenced
	EventFenced       EventKind = "kraft-fenced"        // a broker was fenced (Detail: why; Unclean without WantShutdown)
	EventWantShutdown EventKind = "kraft-want-shutdown" // a broker asked for controlled shutdown
	EventUnregistered EventKind = "kraft-unregistered"  // UnregisterBroker removed a broker
	EventFeature      EventKind = "kraft-feature"       // a finalized feature level changed
)

// Event is one thing that happened in the model.
type Event struct {
	Time    time.Time
	Kind    EventKind
	Node    int32 // the voter or broker concerned
	Epoch   int32 // the leader epoch after the event
	Unclean bool  // EventFenced: fenced without WantShutdown (an unclean loss)
	Detail  string
}

// Errors the model returns; wrapped with the node concerned.
var (
	ErrUnknownNode   = errors.New("unknown node")
	ErrNoLeader      = errors.New("no active controller")
	ErrNotRegistered = errors.New("broker not registered")
	ErrInvalidUpdate = errors.New("invalid update version")
)

// Model is one KRaft cluster: its voters and its registered brokers.
type Model struct {
	t      Timing
	voters []*Voter // by id
	leader int32
	epoch  int32
	hw     int64
	// electAt is when the next election is due (zero: none pending);
	// lostAt is when the leader stopped reaching its followers.
	electAt    time.Time
	lastAppend time.Time

	brokers   map[int32]*Broker
	features  Features
	voterMV   map[int32]Range // each controller's supported metadata.version
	resetHBAt time.Time       // a new leader gives every broker a fresh session
}

// New is a quorum of the given voters, all up, with the lowest id the
// leader at epoch 1 (a freshly formatted cluster's first election), and
// metadata.version finalized at mv.
func New(t Timing, voters []int32, mv int16, now time.Time) *Model {
	m := &Model{t: t, leader: NoLeader, brokers: map[int32]*Broker{}, voterMV: map[int32]Range{}}
	ids := slices.Clone(voters)
	slices.Sort(ids)
	for _, id := range ids {
		m.voters = append(m.voters, &Voter{ID: id, Up: true, LastFetch: now, LastCaughtUp: now})
	}
	m.features.MetadataVersion = mv
	m.elect(now)
	return m
}

// Leader is the active controller (NoLeader without one) and its epoch.
func (m *Model) Leader() (int32, int32) { return m.leader, m.epoch }

// HighWatermark is the metadata log's high watermark.
func (m *Model) HighWatermark() int64 { return m.hw }

// Voters is a copy of the voters' states, by id.
func (m *Model) Voters() []Voter {
	out := make([]Voter, len(m.voters))
	for i, v := range m.voters {
		out[i] = *v
	}
	return out
}

func (m *Model) voter(id int32) (*Voter, error) {
	for _, v := range m.voters {
		if v.ID == id {
			return v, nil
		}
	}
	return nil, fmt.Errorf("voter %d: %w", id, ErrUnknownNode)
}

// majority is how many voters make a quorum.
func (m *Model) majority() int { return len(m.voters)/2 + 1 }

// reachable is whether voter v can take part in the quorum with the others:
// up and not cut off.
func reachable(v *Voter) bool { return v.Up && !v.Partitioned }

// StopVoter stops voter id's process. A clean stop of the leader resigns
// at once (EndQuorumEpoch), so the election follows after the election
// timeout; an unclean one (a crash) is noticed only when the followers'
// fetch timeout passes.
func (m *Model) StopVoter(id int32, clean bool, now time.Time) ([]Event, error) {
	v, err := m.voter(id)
	if err != nil {
		return nil, err
	}
	if !v.Up {
		return nil, nil
	}
	v.Up, v.Lagged = false, false
	if id != m.leader {
		return nil, nil
	}
	return m.loseLeader(now, clean, "stopped"), nil
}

// loseLeader ends the current leadership and schedules the election.
func (m *Model) loseLeader(now time.Time, resigned bool, why string) []Event {
	old := m.leader
	m.leader = NoLeader
	wait := m.t.Election
	if !resigned {
		wait += m.t.FetchTimeout
	}
	m.electAt = now.Add(wait)
	return []Event{{Time: now, Kind: EventResigned, Node: old, Epoch: m.epoch, Detail: why}}
}

// StartVoter starts voter id's process: it fetches from the leader from
// the next Advance, catching up from its own log end offset, and takes
// part in the next election.
func (m *Model) StartVoter(id int32, now time.Time) error {
	v, err := m.voter(id)
	if err != nil {
		return err
	}
	if v.Up {
		return nil
	}
	v.Up = true
	if m.leader == NoLeader && m.electAt.IsZero() {
		m.electAt = now.Add(m.t.Election)
	}
	return nil
}

// LagVoter makes voter id fall behind (a slow disk, a GC storm): it still
// fetches, but its log end offset and last caught-up time stop moving. A
// lagging leader is not modelled: the fault applies to followers.
func (m *Model) LagVoter(id int32) error {
	v, err := m.voter(id)
	if err != nil {
		return err
	}
	if id == m.leader {
		return fmt.Errorf("voter %d is the leader: lag a follower", id)
	}
	v.Lagged = true
	return nil
}

// PartitionLeader cuts the leader off from every other voter: the
// followers stop fetching; after the fetch timeout the old leader resigns,
// as it has not heard from a majority (check-quorum), and after the
// election timeout the rest elect a new leader.
func (m *Model) PartitionLeader() (int32, error) {
	if m.leader == NoLeader {
		return NoLeader, ErrNoLeader
	}
	v, _ := m.voter(m.leader)
	v.Partitioned = true
	return v.ID, nil
}

// Heal ends every voter's lag and partition; they fetch again.
func (m *Model) Heal() {
	for _, v := range m.voters {
		v.Lagged, v.Partitioned = false, false
	}
}

// Append appends n records to the leader's log (a registration, a
// fencing, a feature change). Without a leader nothing is written.
func (m *Model) Append(n int64, now time.Time) {
	if m.leader == NoLeader {
		return
	}
	v, _ := m.voter(m.leader)
	v.LogEndOffset += n
	v.LastFetch, v.LastCaughtUp = now, now
	m.lastAppend = now
}

// Advance moves the quorum and the brokers to now: the leader's idle
// no-op records, the followers' fetches (LEO, last fetch, last caught-up),
// the high watermark, due elections, and the brokers' heartbeats, fencing
// and unfencing. Events are in the order they happened.
func (m *Model) Advance(now time.Time) []Event {
	var evs []Event
	if m.leader != NoLeader && !m.heardFromMajority(now) {
		// Check-quorum: a leader that has not had fetches from a
		// majority within the fetch timeout (its followers are down or
		// cut off) resigns; the rest elect after the election timeout
		// if they are a majority. Kafka's leader waits 1.5 fetch
		// timeouts; the model uses one, the followers' own timeout.
		evs = append(evs, m.loseLeader(now, true, "no fetch from a majority of voters within the fetch timeout")...)
	}
	if m.leader != NoLeader {
		m.replicate(now)
	}
	if m.leader == NoLeader && !m.electAt.IsZero() && !now.Before(m.electAt) {
		evs = append(evs, m.elect(now)...)
	}
	evs = append(evs, m.advanceBrokers(now)...)
	return evs
}

// heardFromMajority is whether the leader and the voters that fetched from
// it within the fetch timeout are a majority.
func (m *Model) heardFromMajority(now time.Time) bool {
	n := 0
	for _, v := range m.voters {
		if v.ID == m.leader || now.Sub(v.LastFetch) <= m.t.FetchTimeout {
			n++
		}
	}
	return n >= m.majority()
}

// replicate is one round of fetches from the leader. A lagged voter
// fetches but does not catch up: its last fetch moves, its log end offset
// and last caught-up time do not.
func (m *Model) replicate(now time.Time) {
	ldr, _ := m.voter(m.leader)
	if now.Sub(m.lastAppend) >= noOpInterval {
		ldr.LogEndOffset++
		m.lastAppend = now
	}
	ldr.LastFetch, ldr.LastCaughtUp = now, now
	for _, v := range m.voters {
		if v == ldr || !reachable(v) || ldr.Partitioned {
			continue
		}
		if v.CatchingUp {
			m.fetchCatchingUp(v, ldr.LogEndOffset, now) // forming.go
			continue
		}
		v.LastFetch = now
		if !v.Lagged {
			v.LogEndOffset = ldr.LogEndOffset
			v.LastCaughtUp = now
		}
	}
	// The high watermark is the highest offset a majority has.
	leos := make([]int64, 0, len(m.voters))
	for _, v := range m.voters {
		leos = append(leos, v.LogEndOffset)
	}
	slices.Sort(leos)
	slices.Reverse(leos)
	if hw := leos[m.majority()-1]; hw > m.hw {
		m.hw = hw
	}
}

// elect holds an election among the reachable voters:
// it needs a majority of all voters, and the winner has the longest log
// (Raft's up-to-date rule), ties going to the lowest id.
func (m *Model) elect(now time.Time) []Event {
	var cands []*Voter
	for _, v := range m.voters {
		if reachable(v) {
			cands = append(cands, v)
		}
	}
	if len(cands) < m.majority() {
		m.electAt = now.Add(m.t.Election) // candidates time out and retry
		return []Event{{Time: now, Kind: EventNoQuorum, Node: NoLeader, Epoch: m.epoch,
			Detail: fmt.Sprintf("%d of %d voters reachable, %d needed", len(cands), len(m.voters), m.majority())}}
	}
	best := cands[0]
	for _, v := range cands[1:] {
		if v.LogEndOffset > best.LogEndOffset {
			best = v
		}
	}
	m.leader, m.electAt = best.ID, time.Time{}
	m.epoch++
	// The new leader's first record is its leader-change record.
	best.LogEndOffset++
	best.Lagged = false
	m.lastAppend = now
	m.resetHBAt = now
	m.replicate(now)
	return []Event{{Time: now, Kind: EventElected, Node: best.ID, Epoch: m.epoch,
		Detail: fmt.Sprintf("leader %d at epoch %d", best.ID, m.epoch)}}
}

// caughtUp is whether voter v counts as caught up: the leader, or a
// voter whose last caught-up time is within the fetch timeout of the
// leader's (OPERATIONS.md's rule for a safe controller restart).
func (m *Model) caughtUp(v *Voter) bool {
	if m.leader == NoLeader || !v.Up {
		return false
	}
	if v.ID == m.leader {
		return !v.Partitioned
	}
	ldr, _ := m.voter(m.leader)
	return reachable(v) && ldr.LastCaughtUp.Sub(v.LastCaughtUp) <= m.t.FetchTimeout
}

// CaughtUpWithout counts the caught-up voters if voter id went down (id
// < 0: as they are), against the majority the quorum needs. A restart of
// id is safe only when caught >= majority.
func (m *Model) CaughtUpWithout(id int32) (caught, majority int) {
	for _, v := range m.voters {
		if v.ID != id && m.caughtUp(v) {
			caught++
		}
	}
	return caught, m.majority()
}
