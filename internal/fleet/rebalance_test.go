package fleet

import (
	"fmt"
	"slices"
	"testing"
)

// roundRobin places partitions of topics like Kafka's assignor: RF
// consecutive brokers of ids, shifted by the partition.
func roundRobin(topics, partitions, rf int, ids []int32) []Partition {
	var out []Partition
	for t := range topics {
		for p := range partitions {
			var rs []int32
			for i := range rf {
				rs = append(rs, ids[(t+p+i)%len(ids)])
			}
			out = append(out, Partition{Topic: fmt.Sprintf("t%d", t), Partition: int32(p), Leader: rs[0], Replicas: rs, ISR: rs, MinISR: 2})
		}
	}
	return out
}

func brokerRange(from, to int32) []int32 {
	var out []int32
	for b := from; b <= to; b++ {
		out = append(out, b)
	}
	return out
}

// threeRacks puts broker b in rack "az-" + b%3.
func threeRacks(ids []int32) map[int32]string {
	m := map[int32]string{}
	for _, b := range ids {
		m[b] = fmt.Sprintf("az-%d", b%3)
	}
	return m
}

// apply returns parts with the moves made, failing on a move that does
// not start from the partition's replicas or that repeats a broker.
func apply(t *testing.T, parts []Partition, moves []Move) []Partition {
	t.Helper()
	out := slices.Clone(parts)
	seen := map[string]bool{}
	for _, m := range moves {
		key := fmt.Sprintf("%s/%d", m.Topic, m.Partition)
		if seen[key] {
			t.Fatalf("partition %s moves twice", key)
		}
		seen[key] = true
		i := slices.IndexFunc(out, func(p Partition) bool { return p.Topic == m.Topic && p.Partition == m.Partition })
		if i < 0 || !slices.Equal(out[i].Replicas, m.From) {
			t.Fatalf("move %s does not start from the partition's replicas", m)
		}
		if len(m.To) != len(m.From) {
			t.Fatalf("move %s changes the replication factor", m)
		}
		for j, b := range m.To {
			if slices.Contains(m.To[:j], b) {
				t.Fatalf("move %s puts two replicas on broker %d", m, b)
			}
		}
		out[i].Replicas = slices.Clone(m.To)
	}
	return out
}

func TestPlanRebalance(t *testing.T) {
	six, nine := brokerRange(1, 6), brokerRange(1, 9)
	allOnOne := []Partition{}
	for p := range 12 {
		allOnOne = append(allOnOne, Partition{Topic: "lead", Partition: int32(p), Replicas: []int32{1, 2, 3}})
	}
	tests := []struct {
		name  string
		parts []Partition
		goal  BalanceGoal
		// dataMoves bounds the replicas copied; -1 means none at all.
		maxCopies int
		noCopies  bool
		racked    bool
		// unbalanced: racks forbid balance (broker 4's rack keeps one
		// broker), and they win.
		unbalanced bool
	}{
		{name: "add three brokers to six", parts: roundRobin(4, 30, 3, six), goal: BalanceGoal{Brokers: nine, Racks: threeRacks(nine)}, maxCopies: 4 * 30 * 3 / 3, racked: true},
		{name: "add one broker to three", parts: roundRobin(1, 50, 3, brokerRange(1, 3)), goal: BalanceGoal{Brokers: brokerRange(1, 4)}, maxCopies: 50 * 3 / 4},
		{name: "drain broker 4 of six", parts: roundRobin(3, 20, 3, six), goal: BalanceGoal{Brokers: []int32{1, 2, 3, 5, 6}}, maxCopies: 3*20*3/6 + 6},
		{name: "drain broker 4 of six keeping racks", parts: roundRobin(3, 20, 3, six), goal: BalanceGoal{Brokers: []int32{1, 2, 3, 5, 6}, Racks: threeRacks(six)},
			maxCopies: 3*20*3/6 + 6, racked: true, unbalanced: true},
		{name: "balanced already", parts: roundRobin(2, 18, 3, six), goal: BalanceGoal{Brokers: six}, noCopies: true},
		{name: "preferred leaders by reordering", parts: allOnOne, goal: BalanceGoal{Brokers: []int32{1, 2, 3}}, noCopies: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			moves, err := PlanRebalance(tt.parts, tt.goal)
			if err != nil {
				t.Fatal(err)
			}
			after := apply(t, tt.parts, moves)
			s := SpreadOf(after, tt.goal)
			if s.Elsewhere > 0 || !tt.unbalanced && !s.Balanced(DefaultBalanceTolerance) {
				t.Fatalf("not balanced after %d moves: %s", len(moves), s)
			}
			copies := 0
			for _, m := range moves {
				copies += len(m.Adding())
			}
			if tt.noCopies && copies > 0 {
				t.Fatalf("%d replica copies where none was needed", copies)
			}
			if !tt.noCopies && copies > tt.maxCopies {
				t.Fatalf("%d replica copies, want at most %d", copies, tt.maxCopies)
			}
			if tt.racked {
				pl := newPlacement(nil, tt.goal)
				for _, p := range after {
					if pl.racks(p.Replicas, -1, 0) < 3 {
						t.Fatalf("partition %s on fewer racks than before: %v", p, p.Replicas)
					}
				}
			}
			again, _ := PlanRebalance(tt.parts, tt.goal)
			if !slices.EqualFunc(moves, again, func(x, y Move) bool { return x.String() == y.String() }) {
				t.Fatal("the same placement planned twice gives other moves")
			}
			if more, _ := PlanRebalance(after, tt.goal); len(more) > 0 {
				t.Fatalf("a balanced placement plans %d more moves, first %s", len(more), more[0])
			}
		})
	}
}

func TestPlanRebalanceRefusesWhatCannotBePlaced(t *testing.T) {
	parts := roundRobin(1, 6, 3, brokerRange(1, 3))
	if _, err := PlanRebalance(parts, BalanceGoal{Brokers: []int32{1, 2}}); err == nil {
		t.Fatal("draining one of three brokers under replication factor 3 planned moves")
	}
	if _, err := PlanRebalance(parts, BalanceGoal{}); err == nil {
		t.Fatal("a goal without brokers planned moves")
	}
}

func TestWithin(t *testing.T) {
	for _, tt := range []struct {
		lo, hi int
		want   bool
	}{{10, 11, true}, {9, 11, false}, {0, 1, true}, {0, 2, false}, {90, 100, true}, {89, 100, false}} {
		if got := Within(tt.lo, tt.hi, DefaultBalanceTolerance); got != tt.want {
			t.Errorf("Within(%d, %d) = %v, want %v", tt.lo, tt.hi, got, tt.want)
		}
	}
}

// BenchmarkPlanRebalance plans adding 3 brokers to 6 holding 50,000
// partitions of replication factor 3 (OPERATIONS.md's largest cluster).
func BenchmarkPlanRebalance(b *testing.B) {
	six, nine := brokerRange(1, 6), brokerRange(1, 9)
	parts := roundRobin(500, 100, 3, six)
	goal := BalanceGoal{Brokers: nine, Racks: threeRacks(nine)}
	var moves []Move
	for b.Loop() {
		var err error
		if moves, err = PlanRebalance(parts, goal); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(moves)), "moves")
}
