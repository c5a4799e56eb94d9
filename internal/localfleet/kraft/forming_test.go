package kraft

import (
	"testing"
	"time"
)

// A formed-from-hosts quorum elects once a majority of its voters runs.
func TestFormingQuorum(t *testing.T) {
	tests := []struct {
		name       string
		start      []int32 // voters started at 0s
		wantLeader bool
	}{
		{"none", nil, false},
		{"one of three", []int32{3001}, false},
		{"two of three", []int32{3001, 3002}, true},
		{"all", []int32{3000, 3001, 3002}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := NewForming(testTiming, []int32{3002, 3000, 3001}, 21)
			if l, _ := m.Leader(); l != NoLeader {
				t.Fatalf("leader %d before any voter runs", l)
			}
			for _, id := range tc.start {
				if err := m.StartVoter(id, at(0)); err != nil {
					t.Fatal(err)
				}
			}
			evs := run(m, 0, 5*time.Second)
			l, epoch := m.Leader()
			if got := l != NoLeader; got != tc.wantLeader {
				t.Fatalf("leader %d, want one: %v (events %v)", l, tc.wantLeader, evs)
			}
			if tc.wantLeader {
				if epoch != 1 || len(kinds(evs, EventElected)) != 1 {
					t.Errorf("epoch %d after %d elections, want the first", epoch, len(kinds(evs, EventElected)))
				}
				if l != tc.start[0] {
					t.Errorf("leader %d, want the lowest running id %d", l, tc.start[0])
				}
			}
			if m.Features().MetadataVersion != 21 {
				t.Errorf("metadata.version level %d, want 21", m.Features().MetadataVersion)
			}
		})
	}
}

// A voter whose log was lost copies the leader's over its catch-up time:
// its log end offset grows from 0, and it is caught up only at the end.
func TestResetVoterCatchesUp(t *testing.T) {
	m := New(testTiming, []int32{1, 2, 3}, 21, at(0))
	run(m, 0, 10*time.Second) // a log of idle no-op records
	if _, err := m.StopVoter(3, true, at(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := m.ResetVoter(3, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := m.StartVoter(3, at(10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := m.ResetVoter(3, time.Second); err == nil {
		t.Error("a running voter's log was replaced")
	}
	var prev int64 = -1
	for d := 10 * time.Second; d <= 13*time.Second; d += 100 * time.Millisecond {
		m.Advance(at(d))
		v := m.Voters()[2]
		caught, _ := m.CaughtUpWithout(-1)
		switch {
		case d < 12*time.Second:
			if !v.CatchingUp || caught != 2 {
				t.Fatalf("at %s: catching up %v, %d caught up; want it lagging", d, v.CatchingUp, caught)
			}
			if v.LogEndOffset < prev || v.LogEndOffset >= m.Voters()[0].LogEndOffset {
				t.Fatalf("at %s: log end offset %d (was %d, leader's %d)", d, v.LogEndOffset, prev, m.Voters()[0].LogEndOffset)
			}
		case d >= 12100*time.Millisecond:
			if v.CatchingUp || caught != 3 || v.LogEndOffset != m.Voters()[0].LogEndOffset {
				t.Fatalf("at %s: catching up %v, %d caught up, LEO %d; want it caught up", d, v.CatchingUp, caught, v.LogEndOffset)
			}
		}
		prev = v.LogEndOffset
	}
}
