package kraft

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var testTiming = Timing{Heartbeat: 2 * time.Second, Session: 9 * time.Second, FetchTimeout: 2 * time.Second, Election: time.Second}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// run advances m every 100ms from from to to, collecting events.
func run(m *Model, from, to time.Duration) []Event {
	var evs []Event
	for d := from; d <= to; d += 100 * time.Millisecond {
		evs = append(evs, m.Advance(at(d))...)
	}
	return evs
}

func kinds(evs []Event, k EventKind) []Event {
	var out []Event
	for _, e := range evs {
		if e.Kind == k {
			out = append(out, e)
		}
	}
	return out
}

func TestQuorumElections(t *testing.T) {
	tests := []struct {
		name string
		// act changes the 3-voter quorum (leader 1 at epoch 1) at 1s.
		act         func(t *testing.T, m *Model)
		until       time.Duration
		wantLeader  int32
		wantEpoch   int32
		wantNoQuorm bool
	}{
		{name: "steady", act: func(*testing.T, *Model) {}, until: 10 * time.Second, wantLeader: 1, wantEpoch: 1},
		{name: "follower crash keeps the leader", act: func(t *testing.T, m *Model) { mustStop(t, m, 2, false) },
			until: 10 * time.Second, wantLeader: 1, wantEpoch: 1},
		{name: "leader crash: election after fetch + election timeouts", act: func(t *testing.T, m *Model) { mustStop(t, m, 1, false) },
			until: 4 * time.Second, wantLeader: 2, wantEpoch: 2},
		{name: "leader crash: not before the timeouts", act: func(t *testing.T, m *Model) { mustStop(t, m, 1, false) },
			until: 3800 * time.Millisecond, wantLeader: NoLeader, wantEpoch: 1},
		{name: "leader clean stop: election after the election timeout", act: func(t *testing.T, m *Model) { mustStop(t, m, 1, true) },
			until: 2 * time.Second, wantLeader: 2, wantEpoch: 2},
		{name: "two voters down: no quorum", act: func(t *testing.T, m *Model) { mustStop(t, m, 1, false); mustStop(t, m, 2, false) },
			until: 10 * time.Second, wantLeader: NoLeader, wantEpoch: 1, wantNoQuorm: true},
		{name: "both followers crash: the leader resigns (check-quorum)", act: func(t *testing.T, m *Model) { mustStop(t, m, 2, false); mustStop(t, m, 3, false) },
			until: 10 * time.Second, wantLeader: NoLeader, wantEpoch: 1, wantNoQuorm: true},
		{name: "partitioned leader: the rest elect", act: func(t *testing.T, m *Model) {
			if id, err := m.PartitionLeader(); err != nil || id != 1 {
				t.Fatalf("PartitionLeader = %d, %v", id, err)
			}
		}, until: 4 * time.Second, wantLeader: 2, wantEpoch: 2},
		{name: "lagging voter loses the election to the up-to-date one", act: func(t *testing.T, m *Model) {
			if err := m.LagVoter(2); err != nil {
				t.Fatal(err)
			}
			m.Advance(at(1500 * time.Millisecond)) // a no-op record 2 does not fetch
			mustStop(t, m, 1, true)
		}, until: 3 * time.Second, wantLeader: 3, wantEpoch: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New(testTiming, []int32{3, 1, 2}, 21, t0)
			if l, e := m.Leader(); l != 1 || e != 1 {
				t.Fatalf("initial leader %d epoch %d, want 1 at 1", l, e)
			}
			evs := run(m, 0, 900*time.Millisecond)
			tc.act(t, m)
			evs = append(evs, run(m, time.Second, tc.until)...)
			if l, e := m.Leader(); l != tc.wantLeader || e != tc.wantEpoch {
				t.Fatalf("leader %d epoch %d, want %d at %d; events %v", l, e, tc.wantLeader, tc.wantEpoch, evs)
			}
			if got := len(kinds(evs, EventNoQuorum)) > 0; got != tc.wantNoQuorm {
				t.Fatalf("no-quorum events: %v, want %v", got, tc.wantNoQuorm)
			}
		})
	}
}

func mustStop(t *testing.T, m *Model, id int32, clean bool) {
	t.Helper()
	if _, err := m.StopVoter(id, clean, at(time.Second)); err != nil {
		t.Fatal(err)
	}
}

func TestQuorumReplication(t *testing.T) {
	m := New(testTiming, []int32{1, 2, 3}, 21, t0)
	run(m, 0, 3*time.Second)
	vs := m.Voters()
	for _, v := range vs {
		if v.LogEndOffset != vs[0].LogEndOffset || !v.LastCaughtUp.Equal(at(3*time.Second)) {
			t.Fatalf("voter %+v not caught up with %+v", v, vs[0])
		}
	}
	if m.HighWatermark() != vs[0].LogEndOffset || m.HighWatermark() < 6 {
		t.Fatalf("high watermark %d, leader LEO %d", m.HighWatermark(), vs[0].LogEndOffset)
	}

	// A lagged voter stops moving; the majority (leader + 3) keeps the
	// high watermark going.
	if err := m.LagVoter(2); err != nil {
		t.Fatal(err)
	}
	if err := m.LagVoter(1); err == nil {
		t.Fatal("lagging the leader: want an error")
	}
	run(m, 3100*time.Millisecond, 8*time.Second)
	vs = m.Voters()
	if vs[1].LogEndOffset >= vs[0].LogEndOffset || !vs[1].LastCaughtUp.Equal(at(3*time.Second)) {
		t.Fatalf("lagged voter moved: %+v (leader %+v)", vs[1], vs[0])
	}
	if m.HighWatermark() != vs[0].LogEndOffset {
		t.Fatalf("high watermark %d, want the leader's LEO %d", m.HighWatermark(), vs[0].LogEndOffset)
	}
	m.Heal()
	run(m, 8100*time.Millisecond, 8100*time.Millisecond)
	if vs = m.Voters(); vs[1].LogEndOffset != vs[0].LogEndOffset {
		t.Fatalf("healed voter not caught up: %+v", vs[1])
	}
}

func TestCaughtUpWithout(t *testing.T) {
	tests := []struct {
		name      string
		prepare   func(m *Model)
		without   int32
		wantCount int
	}{
		{name: "all caught up, restart a follower", prepare: func(*Model) {}, without: 2, wantCount: 2},
		{name: "one follower down, restart the other", prepare: func(m *Model) { _, _ = m.StopVoter(3, true, at(time.Second)) }, without: 2, wantCount: 1},
		{name: "lagged follower, restart the other", prepare: func(m *Model) { _ = m.LagVoter(3) }, without: 2, wantCount: 1},
		{name: "lagged follower, restart the leader", prepare: func(m *Model) { _ = m.LagVoter(3) }, without: 1, wantCount: 1},
		{name: "no leader", prepare: func(m *Model) {
			_, _ = m.StopVoter(1, false, at(time.Second))
			_, _ = m.StopVoter(3, false, at(time.Second))
		}, without: 2, wantCount: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New(testTiming, []int32{1, 2, 3}, 21, t0)
			run(m, 0, 900*time.Millisecond)
			tc.prepare(m)
			// The leader moves on past the lagged voter's fetch timeout.
			run(m, time.Second, 4*time.Second)
			n, maj := m.CaughtUpWithout(tc.without)
			if n != tc.wantCount || maj != 2 {
				t.Fatalf("CaughtUpWithout(%d) = %d of %d, want %d of 2", tc.without, n, maj, tc.wantCount)
			}
		})
	}
}

func TestStartVoterRejoins(t *testing.T) {
	m := New(testTiming, []int32{1, 2, 3}, 21, t0)
	mustStop(t, m, 1, false)
	mustStop(t, m, 2, false)
	run(m, time.Second, 6*time.Second)
	if l, _ := m.Leader(); l != NoLeader {
		t.Fatalf("leader %d with two of three voters down", l)
	}
	if err := m.StartVoter(2, at(6*time.Second)); err != nil {
		t.Fatal(err)
	}
	evs := run(m, 6100*time.Millisecond, 8*time.Second)
	if l, e := m.Leader(); l == NoLeader || e != 2 {
		t.Fatalf("leader %d epoch %d after a voter came back; events %v", l, e, evs)
	}
	if err := m.StartVoter(9, at(8*time.Second)); !errors.Is(err, ErrUnknownNode) {
		t.Fatalf("StartVoter(9) = %v, want ErrUnknownNode", err)
	}
}

func TestPartitionedLeaderResigns(t *testing.T) {
	m := New(testTiming, []int32{1, 2, 3}, 21, t0)
	run(m, 0, 900*time.Millisecond)
	if _, err := m.PartitionLeader(); err != nil {
		t.Fatal(err)
	}
	evs := run(m, time.Second, 4*time.Second)
	res := kinds(evs, EventResigned)
	if len(res) != 1 || res[0].Node != 1 || !strings.Contains(res[0].Detail, "majority") {
		t.Fatalf("resigned events %v", res)
	}
	m.Heal()
	run(m, 4100*time.Millisecond, 4200*time.Millisecond)
	vs := m.Voters()
	if vs[0].LogEndOffset != vs[1].LogEndOffset {
		t.Fatalf("old leader did not rejoin as a follower: %+v", vs)
	}
}

func TestFiveVoters(t *testing.T) {
	tests := []struct {
		name       string
		down       []int32
		wantLeader bool
		wantCaught int
	}{
		{name: "two followers down", down: []int32{2, 3}, wantLeader: true, wantCaught: 3},
		{name: "leader and a follower down", down: []int32{1, 2}, wantLeader: true, wantCaught: 3},
		{name: "three down", down: []int32{1, 2, 3}, wantLeader: false, wantCaught: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New(testTiming, []int32{1, 2, 3, 4, 5}, 21, t0)
			run(m, 0, 900*time.Millisecond)
			for _, id := range tc.down {
				mustStop(t, m, id, false)
			}
			run(m, time.Second, 6*time.Second)
			if l, _ := m.Leader(); (l != NoLeader) != tc.wantLeader {
				t.Fatalf("leader %d, want a leader: %v", l, tc.wantLeader)
			}
			if n, maj := m.CaughtUpWithout(-1); n != tc.wantCaught || maj != 3 {
				t.Fatalf("caught up %d of majority %d, want %d of 3", n, maj, tc.wantCaught)
			}
		})
	}
}
