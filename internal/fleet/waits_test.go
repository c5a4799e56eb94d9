package fleet_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/kfleet/kfleet/internal/fleet"
)

var t0 = time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)

// etaAt is the time left logs take at perMin logs a minute.
func etaAt(left int, perMin float64) time.Duration {
	return time.Duration(float64(left) / perMin * float64(time.Minute)).Round(time.Second)
}

func TestRecoverySampleRateTo(t *testing.T) {
	tests := []struct {
		name   string
		from   fleet.RecoverySample
		now    time.Time
		left   int
		perMin float64
		eta    time.Duration
		ok     bool
	}{
		{"no sample yet", fleet.RecoverySample{}, t0, 10, 0, 0, false},
		{"no progress", fleet.RecoverySample{At: t0, Left: 50}, t0.Add(time.Minute), 50, 0, 0, false},
		{"more logs than before", fleet.RecoverySample{At: t0, Left: 50}, t0.Add(time.Minute), 60, 0, 0, false},
		{"no time passed", fleet.RecoverySample{At: t0, Left: 50}, t0, 40, 0, 0, false},
		{"10 logs in 5 minutes", fleet.RecoverySample{At: t0, Left: 70}, t0.Add(5 * time.Minute), 60, 2, 30 * time.Minute, true},
		{"20 logs in a second", fleet.RecoverySample{At: t0, Left: 40}, t0.Add(time.Second), 20, 1200, time.Second, true},
		{"done", fleet.RecoverySample{At: t0, Left: 40}, t0.Add(time.Minute), 0, 40, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			perMin, eta, ok := tt.from.RateTo(tt.now, tt.left)
			assert.Equal(t, tt.ok, ok)
			assert.InDelta(t, tt.perMin, perMin, 1e-9)
			assert.Equal(t, tt.eta, eta)
		})
	}
}

func TestAdvance(t *testing.T) {
	tests := []struct {
		name       string
		last       fleet.RecoverySample
		left       int
		next       fleet.RecoverySample
		paced      bool
		progressed bool
	}{
		{"the first observation is progress, without a pace", fleet.RecoverySample{}, 50, fleet.RecoverySample{At: t0.Add(time.Minute), Left: 50}, false, true},
		{"fewer logs: progress with a pace", fleet.RecoverySample{At: t0, Left: 50}, 40, fleet.RecoverySample{At: t0.Add(time.Minute), Left: 40}, true, true},
		{"a stall keeps the last progress", fleet.RecoverySample{At: t0, Left: 50}, 50, fleet.RecoverySample{At: t0, Left: 50}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next, _, _, paced, progressed := fleet.Advance(tt.last, t0.Add(time.Minute), tt.left)
			assert.Equal(t, tt.next, next)
			assert.Equal(t, tt.paced, paced)
			assert.Equal(t, tt.progressed, progressed)
		})
	}
}

func TestGateWait(t *testing.T) {
	const timeout = 10 * time.Minute
	type check struct {
		after    time.Duration        // since t0
		logsLeft map[int32]int        // recovering brokers
		paces    []fleet.RecoveryPace // want
		deadline time.Duration        // want, since t0
		expired  bool                 // want
	}
	tests := []struct {
		name   string
		checks []check
	}{
		{"a shut gate without recovery ends at the deadline", []check{
			{after: 0, deadline: timeout},
			{after: 5 * time.Minute, deadline: timeout},
			{after: 10 * time.Minute, deadline: timeout, expired: true},
		}},
		{"recovery that advances moves the deadline, however long it takes", []check{
			{after: 0, logsLeft: map[int32]int{3: 100}, deadline: timeout},
			{after: 5 * time.Minute, logsLeft: map[int32]int{3: 90},
				paces: []fleet.RecoveryPace{{Broker: 3, Left: 90, PerMin: 2, ETA: 45 * time.Minute}}, deadline: 15 * time.Minute},
			{after: 72 * time.Hour, logsLeft: map[int32]int{3: 10},
				paces:    []fleet.RecoveryPace{{Broker: 3, Left: 10, PerMin: 80.0 / (72*60 - 5), ETA: etaAt(10, 80.0/(72*60-5))}},
				deadline: 72*time.Hour + timeout},
		}},
		{"a stalled recovery runs out the clock from its last progress; a broker done recovering is dropped", []check{
			{after: 0, logsLeft: map[int32]int{3: 100}, deadline: timeout},
			{after: 5 * time.Minute, logsLeft: map[int32]int{3: 90},
				paces: []fleet.RecoveryPace{{Broker: 3, Left: 90, PerMin: 2, ETA: 45 * time.Minute}}, deadline: 15 * time.Minute},
			{after: 10 * time.Minute, logsLeft: map[int32]int{3: 90}, deadline: 15 * time.Minute,
				paces: []fleet.RecoveryPace{{Broker: 3, Left: 90, PerMin: 2, ETA: 45 * time.Minute}}},
			{after: 15 * time.Minute, logsLeft: map[int32]int{3: 90}, deadline: 15 * time.Minute, expired: true,
				paces: []fleet.RecoveryPace{{Broker: 3, Left: 90, PerMin: 2, ETA: 45 * time.Minute}}},
			{after: 16 * time.Minute, deadline: 15 * time.Minute, expired: true},
		}},
		{"paces come by broker id, kept at each one's last progress; one advancing broker is enough", []check{
			{after: 0, logsLeft: map[int32]int{4: 10, 2: 10}, deadline: timeout},
			{after: time.Minute, logsLeft: map[int32]int{4: 5, 2: 8}, deadline: 11 * time.Minute, paces: []fleet.RecoveryPace{
				{Broker: 2, Left: 8, PerMin: 2, ETA: 4 * time.Minute}, {Broker: 4, Left: 5, PerMin: 5, ETA: time.Minute}}},
			{after: 2 * time.Minute, logsLeft: map[int32]int{4: 5, 2: 7}, deadline: 12 * time.Minute, paces: []fleet.RecoveryPace{
				{Broker: 2, Left: 7, PerMin: 1, ETA: 7 * time.Minute}, {Broker: 4, Left: 5, PerMin: 5, ETA: time.Minute}}},
			{after: 3 * time.Minute, logsLeft: map[int32]int{2: 7}, deadline: 12 * time.Minute, paces: []fleet.RecoveryPace{
				{Broker: 2, Left: 7, PerMin: 1, ETA: 7 * time.Minute}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := fleet.NewGateWait(t0, timeout)
			for i, c := range tt.checks {
				now := t0.Add(c.after)
				// Observe reports an advance exactly when it moved the deadline.
				moved := c.after > 0 && c.deadline == c.after+timeout
				assert.Equal(t, moved, w.Observe(now, timeout, c.logsLeft), "check %d", i)
				paces := w.Paces
				assert.Equal(t, len(c.paces), len(paces), "check %d: %v", i, paces)
				for j := range min(len(c.paces), len(paces)) {
					assert.Equal(t, c.paces[j].Broker, paces[j].Broker, "check %d", i)
					assert.Equal(t, c.paces[j].Left, paces[j].Left, "check %d", i)
					assert.InDelta(t, c.paces[j].PerMin, paces[j].PerMin, 1e-9, "check %d", i)
					assert.Equal(t, c.paces[j].ETA, paces[j].ETA, "check %d", i)
				}
				assert.Equal(t, t0.Add(c.deadline), w.Deadline, "check %d", i)
				assert.Equal(t, c.expired, w.Expired(now), "check %d", i)
				assert.Len(t, w.Recovery, len(c.logsLeft), "check %d: only brokers still recovering are kept", i)
			}
		})
	}
}

func TestRecoveryPaceString(t *testing.T) {
	p := fleet.RecoveryPace{Broker: 3, Left: 60, PerMin: 2, ETA: 30 * time.Minute}
	assert.Equal(t, "broker 3 recovering at 2 logs/min, 60 left, ETA 30m0s", p.String())
}

func TestProcessUp(t *testing.T) {
	for state, up := range map[string]bool{"running": true, "starting": true, "recovering": true, "crashed": false, "failed": false, "stopped": false, "": false} {
		assert.Equal(t, up, fleet.ProcessUp(state), state)
	}
}

func TestComeBack(t *testing.T) {
	const stall = 10 * time.Minute
	type sight struct {
		after time.Duration
		s     fleet.BrokerSighting
		want  fleet.ComeBackVerdict
	}
	recovering := func(left int) fleet.BrokerSighting {
		return fleet.BrokerSighting{Process: "recovering", Recovering: true, LogsLeft: left}
	}
	tests := []struct {
		name     string
		sights   []sight
		pace     fleet.RecoveryPace // want at the end
		lastSeen time.Duration      // want LastRecovering, since t0; -1: never
	}{
		{"registered at once", []sight{{0, fleet.BrokerSighting{Registered: true, Process: "running"}, fleet.ComeBackRegistered}}, fleet.RecoveryPace{}, -1},
		{"registered wins over recovering", []sight{{0, fleet.BrokerSighting{Registered: true, Recovering: true, LogsLeft: 3}, fleet.ComeBackRegistered}}, fleet.RecoveryPace{}, -1},
		{"went down again", []sight{
			{0, fleet.BrokerSighting{Process: "starting"}, fleet.ComeBackWaiting},
			{time.Second, fleet.BrokerSighting{Process: "failed"}, fleet.ComeBackDown},
		}, fleet.RecoveryPace{}, -1},
		{"an unknown process state is waited on", []sight{{time.Second, fleet.BrokerSighting{}, fleet.ComeBackWaiting}}, fleet.RecoveryPace{}, -1},
		{"recovery is reported once, then waited out for hours while it advances", []sight{
			{0, fleet.BrokerSighting{Process: "starting"}, fleet.ComeBackWaiting},
			{time.Minute, recovering(40000), fleet.ComeBackRecovering},
			{2 * time.Minute, recovering(39900), fleet.ComeBackWaiting},
			{3 * time.Hour, recovering(20000), fleet.ComeBackWaiting},
			{6 * time.Hour, fleet.BrokerSighting{Registered: true, Process: "running"}, fleet.ComeBackRegistered},
		}, fleet.RecoveryPace{Broker: 2, Left: 20000, PerMin: 19900.0 / (3*60 - 2), ETA: etaAt(20000, 19900.0/(3*60-2))}, 3 * time.Hour},
		{"a recovery without progress stalls from its last progress", []sight{
			{time.Minute, recovering(50), fleet.ComeBackRecovering},
			{2 * time.Minute, recovering(40), fleet.ComeBackWaiting},
			{11 * time.Minute, recovering(40), fleet.ComeBackWaiting},
			{12 * time.Minute, recovering(40), fleet.ComeBackStalled},
		}, fleet.RecoveryPace{Broker: 2, Left: 40, PerMin: 10, ETA: 4 * time.Minute}, 12 * time.Minute},
		{"a broker that neither recovers nor registers stalls from the start", []sight{
			{5 * time.Minute, fleet.BrokerSighting{Process: "starting"}, fleet.ComeBackWaiting},
			{10 * time.Minute, fleet.BrokerSighting{Process: "starting"}, fleet.ComeBackStalled},
		}, fleet.RecoveryPace{}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := fleet.ComeBack{Broker: 2, LastProgress: t0}
			for i, s := range tt.sights {
				assert.Equal(t, s.want, c.Observe(t0.Add(s.after), s.s, stall), "sighting %d", i)
			}
			assert.Equal(t, tt.pace.Broker, c.Pace.Broker)
			assert.Equal(t, tt.pace.Left, c.Pace.Left)
			assert.InDelta(t, tt.pace.PerMin, c.Pace.PerMin, 1e-9)
			assert.Equal(t, tt.pace.ETA, c.Pace.ETA)
			if tt.lastSeen < 0 {
				assert.True(t, c.LastRecovering.IsZero())
			} else {
				assert.Equal(t, t0.Add(tt.lastSeen), c.LastRecovering)
			}
		})
	}
}
