package fleet

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// Rebalancing (OPERATIONS.md "Provisioning and hosts"): adding brokers
// moves replicas onto them, removing one drains it, and either ends with
// every broker's replica count — and preferred-leader count — within
// DefaultBalanceTolerance of the others'. PlanRebalance decides the moves
// from the cluster's placement alone, so the activity that runs them can
// plan again after a crash from what it finds and converge on the same
// end: a partition moved already is in place, one moving is counted at
// its target.

// DefaultBalanceTolerance: brokers' counts within 10% of each other.
const DefaultBalanceTolerance = 0.10

// Move is one partition's reassignment: its replicas from From to To, To[0]
// the preferred leader. A move that only reorders copies no data.
type Move struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	From      []int32 `json:"from"`
	To        []int32 `json:"to"`
}

func (m Move) String() string { return fmt.Sprintf("%s/%d %v->%v", m.Topic, m.Partition, m.From, m.To) }

// Adding are the brokers that receive a copy of the partition.
func (m Move) Adding() []int32 { return idsNotIn(m.To, m.From) }

// Removing are the brokers whose replica is dropped.
func (m Move) Removing() []int32 { return idsNotIn(m.From, m.To) }

func idsNotIn(a, b []int32) []int32 {
	var out []int32
	for _, id := range a {
		if !slices.Contains(b, id) {
			out = append(out, id)
		}
	}
	return out
}

// BalanceGoal is where replicas should end up.
type BalanceGoal struct {
	// Brokers hold every replica when done; a replica on any other broker
	// (one being removed) moves.
	Brokers []int32
	// Racks are the brokers' racks (broker.rack); a move keeps a
	// partition's replicas on as many racks as it had. Empty: no racks.
	Racks map[int32]string
	// Tolerance is how far apart brokers' counts may be, as a fraction of
	// the largest (default DefaultBalanceTolerance); a difference of one
	// is always within it.
	Tolerance float64
}

func (g BalanceGoal) tolerance() float64 { return cmp.Or(g.Tolerance, DefaultBalanceTolerance) }

// Within reports whether counts from lo to hi are within tol of each other.
func Within(lo, hi int, tol float64) bool {
	return hi-lo <= max(1, int(tol*float64(hi)))
}

// Spread is how evenly replicas and preferred leaders sit on brokers.
type Spread struct {
	MinReplicas int `json:"minReplicas"`
	MaxReplicas int `json:"maxReplicas"`
	MinLeaders  int `json:"minLeaders"`
	MaxLeaders  int `json:"maxLeaders"`
	// Elsewhere counts replicas on brokers outside the goal's.
	Elsewhere int `json:"elsewhere,omitempty"`
}

func (s Spread) String() string {
	out := fmt.Sprintf("replicas %d-%d per broker, preferred leaders %d-%d", s.MinReplicas, s.MaxReplicas, s.MinLeaders, s.MaxLeaders)
	if s.Elsewhere > 0 {
		out += fmt.Sprintf(", %d replica(s) on brokers leaving", s.Elsewhere)
	}
	return out
}

// Balanced reports whether the spread meets the goal's tolerance with
// nothing left on brokers outside it.
func (s Spread) Balanced(tol float64) bool {
	return s.Elsewhere == 0 && Within(s.MinReplicas, s.MaxReplicas, tol) && Within(s.MinLeaders, s.MaxLeaders, tol)
}

// SpreadOf measures parts' placement over the goal's brokers.
func SpreadOf(parts []Partition, goal BalanceGoal) Spread {
	replicas, leaders := map[int32]int{}, map[int32]int{}
	for _, b := range goal.Brokers {
		replicas[b], leaders[b] = 0, 0
	}
	var s Spread
	for _, p := range parts {
		for i, r := range p.Replicas {
			if _, ok := replicas[r]; !ok {
				s.Elsewhere++
				continue
			}
			replicas[r]++
			if i == 0 {
				leaders[r]++
			}
		}
	}
	s.MinReplicas, s.MaxReplicas = minMax(replicas)
	s.MinLeaders, s.MaxLeaders = minMax(leaders)
	return s
}

func minMax(m map[int32]int) (lo, hi int) {
	first := true
	for _, n := range m {
		if first {
			lo, hi, first = n, n, false
		}
		lo, hi = min(lo, n), max(hi, n)
	}
	return lo, hi
}

// PlanRebalance returns the moves that take parts (their Replicas, the
// target of any reassignment under way) to the goal: first every replica
// off brokers outside it, then replicas from the fullest broker to the
// emptiest until their counts are within the tolerance, then preferred
// leaders the same way by reordering replicas (no data moves). Each
// partition moves at most once, followers before leaders, racks kept as
// diverse as they were. It is deterministic: the same placement gives the
// same moves. A partition with more replicas than the goal has brokers
// cannot be placed: an error, and no moves.
func PlanRebalance(parts []Partition, goal BalanceGoal) ([]Move, error) {
	if len(goal.Brokers) == 0 {
		return nil, fmt.Errorf("rebalance: no brokers to place replicas on")
	}
	pl := newPlacement(parts, goal)
	for _, p := range parts {
		if len(p.Replicas) > len(goal.Brokers) {
			return nil, fmt.Errorf("rebalance: partition %s has %d replicas and only %d broker(s) would remain", p, len(p.Replicas), len(goal.Brokers))
		}
	}
	if err := pl.drain(); err != nil {
		return nil, err
	}
	pl.balanceReplicas()
	pl.balanceLeaders()
	var moves []Move
	for i, p := range parts {
		if !slices.Equal(p.Replicas, pl.replicas[i]) {
			moves = append(moves, Move{Topic: p.Topic, Partition: p.Partition, From: slices.Clone(p.Replicas), To: pl.replicas[i]})
		}
	}
	slices.SortFunc(moves, func(x, y Move) int {
		return cmp.Or(cmp.Compare(x.Topic, y.Topic), cmp.Compare(x.Partition, y.Partition))
	})
	return moves, nil
}

// placement is a plan in the making: each partition's replicas, brokers'
// counts, and which partitions each broker hosts (an index kept lazily:
// entries of partitions that left a broker are dropped when met).
type placement struct {
	goal     BalanceGoal
	parts    []Partition
	replicas [][]int32
	count    map[int32]int
	leaders  map[int32]int
	hosted   map[int32][]int
	in       map[int32]bool
	tol      float64
	// hopeless are broker pairs (from, to) a whole scan found no replica
	// to move between (racks forbid it): not scanned again.
	hopeless map[[2]int32]bool
}

func newPlacement(parts []Partition, goal BalanceGoal) *placement {
	pl := &placement{goal: goal, parts: parts, replicas: make([][]int32, len(parts)), count: map[int32]int{}, leaders: map[int32]int{},
		hosted: map[int32][]int{}, in: map[int32]bool{}, tol: goal.tolerance(), hopeless: map[[2]int32]bool{}}
	for _, b := range goal.Brokers {
		pl.in[b], pl.count[b], pl.leaders[b] = true, 0, 0
	}
	for i, p := range parts {
		pl.replicas[i] = slices.Clone(p.Replicas)
		for j, r := range p.Replicas {
			pl.count[r]++
			if j == 0 {
				pl.leaders[r]++
			}
			pl.hosted[r] = append(pl.hosted[r], i)
		}
	}
	return pl
}

// brokers are the goal's brokers in id order.
func (pl *placement) brokers() []int32 { return slices.Sorted(maps.Keys(pl.in)) }

// racks counts the distinct racks of replicas, with the one at pos (if
// pos >= 0) taken as broker at (brokers without a rack count as one
// each). Replica lists are short: two loops beat a map.
func (pl *placement) racks(replicas []int32, pos int, at int32) int {
	rackAt := func(j int) string {
		if j == pos {
			return pl.goal.Racks[at]
		}
		return pl.goal.Racks[replicas[j]]
	}
	n := 0
	for j := range replicas {
		r := rackAt(j)
		dup := false
		for k := 0; k < j && r != ""; k++ {
			if rackAt(k) == r {
				dup = true
				break
			}
		}
		if !dup {
			n++
		}
	}
	return n
}

// replace moves partition i's replica at position pos to broker to.
func (pl *placement) replace(i, pos int, to int32) {
	from := pl.replicas[i][pos]
	pl.replicas[i][pos] = to
	pl.count[from]--
	pl.count[to]++
	if pos == 0 {
		pl.leaders[from]--
		pl.leaders[to]++
	}
	pl.hosted[to] = append(pl.hosted[to], i)
}

// keepsRacks reports whether putting to in place of partition i's replica
// at pos keeps its replicas on as many racks.
func (pl *placement) keepsRacks(i, pos int, to int32) bool {
	if len(pl.goal.Racks) == 0 {
		return true
	}
	return pl.racks(pl.replicas[i], pos, to) >= pl.racks(pl.replicas[i], -1, 0)
}

// drain moves every replica off brokers outside the goal, each to the
// goal broker with the fewest replicas that the partition lacks,
// preferring one that keeps its racks.
func (pl *placement) drain() error {
	brokers := pl.brokers()
	for i := range pl.replicas {
		for pos, r := range pl.replicas[i] {
			if pl.in[r] {
				continue
			}
			best, bestKeeps := int32(-1), false
			for _, b := range brokers {
				if slices.Contains(pl.replicas[i], b) {
					continue
				}
				keeps := pl.keepsRacks(i, pos, b)
				if best < 0 || (keeps && !bestKeeps) || (keeps == bestKeeps && pl.count[b] < pl.count[best]) {
					best, bestKeeps = b, keeps
				}
			}
			if best < 0 {
				return fmt.Errorf("rebalance: no broker to move partition %s's replica on broker %d to", pl.parts[i], r)
			}
			pl.replace(i, pos, best)
		}
	}
	return nil
}

// scanLimit bounds how far a search for a follower to move looks before
// it settles for a leader: leaders move too, but a move of a follower
// keeps the partition's leadership where it is.
const scanLimit = 64

// balanceReplicas moves replicas from the fullest brokers to the emptiest
// until their counts are within the tolerance, or no move helps.
func (pl *placement) balanceReplicas() {
	for {
		order := pl.brokers()
		slices.SortStableFunc(order, func(x, y int32) int { return cmp.Compare(pl.count[y], pl.count[x]) })
		if Within(pl.count[order[len(order)-1]], pl.count[order[0]], pl.tol) {
			return
		}
		if !pl.moveOne(order) {
			return
		}
	}
}

// moveOne moves one replica from a broker as full as possible to one as
// empty as possible (order: fullest first); false when no pair allows it.
func (pl *placement) moveOne(order []int32) bool {
	for h := 0; h < len(order); h++ {
		for l := len(order) - 1; l > h; l-- {
			hi, lo := order[h], order[l]
			if pl.count[hi]-pl.count[lo] < 2 {
				break // emptier brokers come later in order: none is 2 below hi
			}
			if pl.hopeless[[2]int32{hi, lo}] {
				continue
			}
			if i, pos, ok := pl.findMovable(hi, lo); ok {
				pl.replace(i, pos, lo)
				return true
			}
			pl.hopeless[[2]int32{hi, lo}] = true
		}
	}
	return false
}

// findMovable finds a replica on hi of a partition lo lacks, whose move to
// lo keeps its racks: a follower if one is found within scanLimit, else a
// leader.
func (pl *placement) findMovable(hi, lo int32) (i, pos int, ok bool) {
	list := pl.hosted[hi]
	kept := list[:0]
	leaderI, leaderPos, scanned := -1, -1, 0
	defer func() { pl.hosted[hi] = kept }()
	for k, idx := range list {
		p := slices.Index(pl.replicas[idx], hi)
		if p < 0 {
			continue // moved off hi earlier: dropped from the index
		}
		kept = append(kept, idx)
		scanned++
		if !slices.Contains(pl.replicas[idx], lo) && pl.keepsRacks(idx, p, lo) {
			if p > 0 {
				kept = append(kept, list[k+1:]...)
				return idx, p, true
			}
			if leaderI < 0 {
				leaderI, leaderPos = idx, p
			}
		}
		if scanned >= scanLimit && leaderI >= 0 {
			kept = append(kept, list[k+1:]...)
			break
		}
	}
	if leaderI >= 0 {
		return leaderI, leaderPos, true
	}
	return 0, 0, false
}

// balanceLeaders evens out preferred leaders by swapping a partition's
// first replica with another of its replicas on a broker that leads fewer.
func (pl *placement) balanceLeaders() {
	for {
		order := pl.brokers()
		slices.SortStableFunc(order, func(x, y int32) int { return cmp.Compare(pl.leaders[y], pl.leaders[x]) })
		if Within(pl.leaders[order[len(order)-1]], pl.leaders[order[0]], pl.tol) || !pl.swapOne(order) {
			return
		}
	}
}

// swapOne makes a broker leading fewer partitions the preferred leader of
// one partition the most leading broker leads (order: most first).
func (pl *placement) swapOne(order []int32) bool {
	for h := 0; h < len(order); h++ {
		for l := len(order) - 1; l > h; l-- {
			hi, lo := order[h], order[l]
			if pl.leaders[hi]-pl.leaders[lo] < 2 {
				break
			}
			for _, idx := range pl.hosted[hi] {
				rs := pl.replicas[idx]
				if len(rs) == 0 || rs[0] != hi {
					continue
				}
				if j := slices.Index(rs, lo); j > 0 {
					rs[0], rs[j] = lo, hi
					pl.leaders[hi]--
					pl.leaders[lo]++
					return true
				}
			}
		}
	}
	return false
}
