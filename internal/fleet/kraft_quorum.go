package fleet

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// GateQuorum names the controller-restart gate: the quorum stays a
// caught-up majority without the controller.
const GateQuorum = "quorum"

// Quorum is one DescribeQuorum answer for the metadata log
// (__cluster_metadata-0). Its timestamps are the leader's wall clock, so
// they are compared with each other, never with kfleet's clock.
type Quorum struct {
	// Leader is the active controller's node id, -1 when there is none.
	Leader        int32           `json:"leader"`
	Epoch         int32           `json:"epoch"`
	HighWatermark int64           `json:"highWatermark"`
	Voters        []QuorumReplica `json:"voters"`
	// Observers are the brokers (and controllers not voting) following
	// the log.
	Observers []QuorumReplica `json:"observers,omitempty"`
}

// QuorumReplica is one voter's or observer's replication state.
type QuorumReplica struct {
	ID int32 `json:"id"`
	// LogEndOffset is -1 when unknown.
	LogEndOffset int64 `json:"logEndOffset"`
	// LastFetch and LastCaughtUp are zero when unknown (Kafka's -1).
	LastFetch    time.Time `json:"lastFetch,omitzero"`
	LastCaughtUp time.Time `json:"lastCaughtUp,omitzero"`
}

// IsVoter reports whether node votes in the quorum.
func (q Quorum) IsVoter(node int32) bool {
	return slices.ContainsFunc(q.Voters, func(r QuorumReplica) bool { return r.ID == node })
}

// VoterIDs returns the voters' ids in ascending order.
func (q Quorum) VoterIDs() []int32 {
	ids := make([]int32, 0, len(q.Voters))
	for _, v := range q.Voters {
		ids = append(ids, v.ID)
	}
	slices.Sort(ids)
	return ids
}

// LeaderReplica returns the leader's own state, its LastCaughtUp set to
// the leader's time when Kafka left it unknown: older controllers answer
// -1 for the leader, and then the latest fetch any replica made (stamped
// by the leader's clock) is the best bound on the leader's time.
func (q Quorum) LeaderReplica() (QuorumReplica, bool) {
	i := slices.IndexFunc(q.Voters, func(r QuorumReplica) bool { return r.ID == q.Leader })
	if q.Leader < 0 || i < 0 {
		return QuorumReplica{}, false
	}
	l := q.Voters[i]
	if l.LastCaughtUp.IsZero() {
		for _, r := range slices.Concat(q.Voters, q.Observers) {
			l.LastCaughtUp = maxTime(l.LastCaughtUp, r.LastFetch, r.LastCaughtUp)
		}
	}
	return l, true
}

func maxTime(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// CaughtUp reports whether voter is caught up with leader: it is the
// leader, or it last caught up within fetchTimeout of the leader's time
// (leader.LastCaughtUp, see LeaderReplica). A follower that stopped
// fetching falls behind after one fetch timeout, the same time the quorum
// itself takes to notice.
func CaughtUp(voter, leader QuorumReplica, fetchTimeout time.Duration) bool {
	if voter.ID == leader.ID {
		return true
	}
	if voter.LastCaughtUp.IsZero() || leader.LastCaughtUp.IsZero() {
		return false
	}
	return leader.LastCaughtUp.Sub(voter.LastCaughtUp) <= fetchTimeout
}

// QuorumVerdict is the quorum gate's answer for restarting one node.
type QuorumVerdict struct {
	Safe   bool   `json:"safe"`
	Reason string `json:"reason"`
	// Voters is the quorum's size, CaughtUp the voters caught up without
	// the node, Majority how many must be.
	Voters   int `json:"voters"`
	CaughtUp int `json:"caughtUp"`
	Majority int `json:"majority"`
	// Lagging are the voters, other than the node, not caught up.
	Lagging []int32 `json:"lagging,omitempty"`
}

// QuorumSafeWithout decides whether restarting node keeps the quorum
// available: without it, the caught-up voters must still be a majority of
// all voters (the restarted node still counts as a voter: the quorum's
// size does not shrink while it is down). A node that is not a voter (a
// broker, an observer) is safe to restart as far as the quorum goes. The
// reason says how many voters are caught up and, on refusal, names each
// lagging voter and its lag.
func QuorumSafeWithout(q Quorum, node int32, fetchTimeout time.Duration) (bool, string) {
	v := JudgeQuorumWithout(q, node, fetchTimeout)
	return v.Safe, v.Reason
}

// JudgeQuorumWithout is QuorumSafeWithout with its counts.
func JudgeQuorumWithout(q Quorum, node int32, fetchTimeout time.Duration) QuorumVerdict {
	v := QuorumVerdict{Voters: len(q.Voters), Majority: len(q.Voters)/2 + 1}
	leader, ok := q.LeaderReplica()
	if !ok {
		v.Reason = fmt.Sprintf("the quorum has no leader (epoch %d): no controller may restart until one is elected", q.Epoch)
		return v
	}
	var lagging []string
	for _, r := range sortedReplicas(q.Voters) {
		if r.ID == node {
			continue
		}
		if CaughtUp(r, leader, fetchTimeout) {
			v.CaughtUp++
			continue
		}
		v.Lagging = append(v.Lagging, r.ID)
		lagging = append(lagging, voterLag(r, leader, q.HighWatermark))
	}
	if !q.IsVoter(node) {
		v.Safe, v.Reason = true, fmt.Sprintf("node %d is not a quorum voter", node)
		return v
	}
	v.Reason = fmt.Sprintf("without controller %d, %d of %d voters are caught up (a majority is %d)", node, v.CaughtUp, v.Voters, v.Majority)
	if v.CaughtUp >= v.Majority {
		v.Safe = true
		return v
	}
	if len(lagging) > 0 {
		v.Reason += ": " + strings.Join(lagging, "; ")
	}
	return v
}

// voterLag says how far a voter is behind: offsets behind the leader's log
// end (or the high watermark when the leader's is unknown) and how long
// before the leader's time it last caught up.
func voterLag(v, leader QuorumReplica, hw int64) string {
	end := leader.LogEndOffset
	if end < 0 {
		end = hw
	}
	offsets := "log end unknown"
	if v.LogEndOffset >= 0 && end >= 0 {
		offsets = fmt.Sprintf("%d offsets behind", max(end-v.LogEndOffset, 0))
	}
	caught := "never caught up"
	if !v.LastCaughtUp.IsZero() {
		caught = fmt.Sprintf("last caught up %s before the leader's time", leader.LastCaughtUp.Sub(v.LastCaughtUp).Round(time.Millisecond))
	}
	return fmt.Sprintf("voter %d is %s, %s", v.ID, offsets, caught)
}

func sortedReplicas(rs []QuorumReplica) []QuorumReplica {
	out := slices.Clone(rs)
	slices.SortFunc(out, func(a, b QuorumReplica) int { return int(a.ID - b.ID) })
	return out
}

// ControllerRollOrder orders a roll's controllers: voters that are not
// caught up first (restarting one costs the quorum nothing it has), then
// the caught-up followers, the active controller last (one leader move,
// not one per controller). Ids are ascending within each group. The
// brokers follow the controllers with the usual gates and NextBatch. A
// roll re-reads the quorum before each step (NextController): the leader
// moves and followers fall behind.
func ControllerRollOrder(q Quorum, fetchTimeout time.Duration) []int32 {
	leader, hasLeader := q.LeaderReplica()
	var unready, followers []int32
	for _, v := range sortedReplicas(q.Voters) {
		switch {
		case hasLeader && v.ID == leader.ID:
		case hasLeader && CaughtUp(v, leader, fetchTimeout):
			followers = append(followers, v.ID)
		default:
			unready = append(unready, v.ID)
		}
	}
	out := append(unready, followers...)
	if hasLeader {
		out = append(out, leader.ID)
	}
	return out
}

// NextController picks the next controller of a roll among remaining from
// a fresh quorum: the first of ControllerRollOrder still remaining; a
// remaining node that is not a voter (e.g. just removed) goes first, as it
// holds nothing of the quorum.
func NextController(q Quorum, remaining []int32, fetchTimeout time.Duration) (int32, bool) {
	if len(remaining) == 0 {
		return 0, false
	}
	sorted := slices.Clone(remaining)
	slices.Sort(sorted)
	for _, id := range sorted {
		if !q.IsVoter(id) {
			return id, true
		}
	}
	for _, id := range ControllerRollOrder(q, fetchTimeout) {
		if slices.Contains(remaining, id) {
			return id, true
		}
	}
	return sorted[0], true
}

// QuorumBlockers is the quorum gate in the shape of the other gates: one
// blocker when restarting node is not QuorumSafeWithout.
func QuorumBlockers(q Quorum, node int32, fetchTimeout time.Duration) []Blocker {
	if ok, reason := QuorumSafeWithout(q, node, fetchTimeout); !ok {
		return []Blocker{{Gate: GateQuorum, Reason: reason}}
	}
	return nil
}

// BrokerFencing is one broker as DescribeCluster v2 with
// IncludeFencedBrokers reports it, with what kfleet knows of its shutdown.
type BrokerFencing struct {
	ID     int32 `json:"id"`
	Fenced bool  `json:"fenced"`
	// WantShutdown: the broker asked to shut down (a controlled shutdown
	// seen in its heartbeat), known from the controller's side when
	// sensing has it; false when unknown.
	WantShutdown bool `json:"wantShutdown,omitempty"`
}

// Unfenced returns the ids of the brokers that are registered and not
// fenced, ascending: a KRaft cluster's equivalent of ZooKeeper's
// /brokers/ids. A fenced broker is still registered, but it holds no
// leadership and no ISR place until it heartbeats again, so for sensing and
// recovery it is as gone as a broker whose znode vanished.
func Unfenced(brokers []BrokerFencing) []int32 {
	ids := make([]int32, 0, len(brokers))
	for _, b := range brokers {
		if !b.Fenced {
			ids = append(ids, b.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// FencingVerdict sorts a cluster's fenced brokers for sensing.
type FencingVerdict struct {
	// Unclean are fenced brokers nobody stopped: kfleet is not stopping
	// them and no shutdown was asked for. Each is an unclean loss, to be
	// recovered.
	Unclean []int32 `json:"unclean,omitempty"`
	// Expected are fenced brokers kfleet is stopping or that asked to shut
	// down: a roll's or an operator's, not a loss.
	Expected []int32 `json:"expected,omitempty"`
	// Missing are spec brokers DescribeCluster does not list at all:
	// never registered, or unregistered.
	Missing []int32 `json:"missing,omitempty"`
}

// JudgeFencing sorts DescribeCluster's brokers: a fenced broker that kfleet
// is not stopping (stopping) and that did not ask to shut down is an
// unclean loss. KRaft fences a broker one session timeout after its last
// heartbeat, so a loss is seen within BrokerSessionTimeout of the crash.
// specBrokers are the spec's broker ids, for Missing.
func JudgeFencing(brokers []BrokerFencing, stopping, specBrokers []int32) FencingVerdict {
	var v FencingVerdict
	listed := make(map[int32]bool, len(brokers))
	for _, b := range brokers {
		listed[b.ID] = true
		if !b.Fenced {
			continue
		}
		if b.WantShutdown || slices.Contains(stopping, b.ID) {
			v.Expected = append(v.Expected, b.ID)
		} else {
			v.Unclean = append(v.Unclean, b.ID)
		}
	}
	for _, id := range specBrokers {
		if !listed[id] {
			v.Missing = append(v.Missing, id)
		}
	}
	slices.Sort(v.Unclean)
	slices.Sort(v.Expected)
	slices.Sort(v.Missing)
	return v
}
