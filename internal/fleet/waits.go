package fleet

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// The rules of kfleet's long waits: a roll's wait for its gates and a
// recovery's wait for a broker to come back. Both run inside one
// heartbeating activity that polls, so these rules take the time as an
// argument and keep everything a retry needs to resume in small values
// (heartbeat details).

// RecoverySample is a broker's logs left to recover at one observation.
type RecoverySample struct {
	At   time.Time `json:"at"`
	Left int       `json:"left"`
}

// RateTo is log recovery's pace from s to left logs at now, in logs per
// minute, and the time the rest takes at that pace; ok is false when
// recovery did not advance since s.
func (s RecoverySample) RateTo(now time.Time, left int) (perMin float64, eta time.Duration, ok bool) {
	if s.At.IsZero() || left >= s.Left || !now.After(s.At) {
		return 0, 0, false
	}
	perMin = float64(s.Left-left) / now.Sub(s.At).Minutes()
	return perMin, time.Duration(float64(left) / perMin * float64(time.Minute)).Round(time.Second), true
}

// RecoveryPace is a broker's log-recovery pace, for operators: how fast,
// how many logs are left, and when it should be done.
type RecoveryPace struct {
	Broker int32         `json:"broker"`
	Left   int           `json:"left"`
	PerMin float64       `json:"perMin"`
	ETA    time.Duration `json:"eta"`
}

func (p RecoveryPace) String() string {
	return fmt.Sprintf("broker %d recovering at %.0f logs/min, %d left, ETA %s", p.Broker, p.PerMin, p.Left, p.ETA)
}

// Advance folds an observation of left logs at now into last, the sample
// of recovery's last progress. The pace is measured from that progress, so
// a stall shows as time since it rather than as a slower rate: last moves
// only when recovery advanced (or on the first observation). paced is
// false when no pace can be told yet; progressed reports that last moved.
func Advance(last RecoverySample, now time.Time, left int) (next RecoverySample, perMin float64, eta time.Duration, paced, progressed bool) {
	perMin, eta, paced = last.RateTo(now, left)
	if last.At.IsZero() || left < last.Left {
		return RecoverySample{At: now, Left: left}, perMin, eta, paced, true
	}
	return last, perMin, eta, paced, false
}

// GateWait is a roll's wait for shut gates. It ends at Deadline, which
// moves to now + timeout whenever a recovering broker's log recovery
// advances: a recovery that progresses is waited out however long it
// takes (OPERATIONS.md gate 3); only one that stalls needs a human.
type GateWait struct {
	Deadline time.Time `json:"deadline"`
	// Recovery is the last progress of each recovering broker of the
	// batch, and Paces their pace at it (by broker id); brokers that no
	// longer recover are dropped, so both stay as small as a batch.
	Recovery map[int32]RecoverySample `json:"recovery,omitempty"`
	Paces    []RecoveryPace           `json:"paces,omitempty"`
}

// NewGateWait starts a wait at now that ends timeout later unless log
// recovery advances.
func NewGateWait(now time.Time, timeout time.Duration) GateWait {
	return GateWait{Deadline: now.Add(timeout)}
}

// Observe folds one check in: logsLeft holds the logs left of each batch
// broker that recovers its logs. When any of them advanced since its last
// progress, the deadline moves to now + timeout and Observe reports true.
func (w *GateWait) Observe(now time.Time, timeout time.Duration, logsLeft map[int32]int) bool {
	recovery := make(map[int32]RecoverySample, len(logsLeft))
	var paces []RecoveryPace
	advanced := false
	for _, b := range slices.Sorted(maps.Keys(logsLeft)) {
		last, perMin, eta, paced, _ := Advance(w.Recovery[b], now, logsLeft[b])
		recovery[b] = last
		switch i := slices.IndexFunc(w.Paces, func(p RecoveryPace) bool { return p.Broker == b }); {
		case paced:
			advanced = true
			paces = append(paces, RecoveryPace{Broker: b, Left: logsLeft[b], PerMin: perMin, ETA: eta})
		case i >= 0:
			paces = append(paces, w.Paces[i])
		}
	}
	w.Recovery, w.Paces = recovery, paces
	if len(recovery) == 0 {
		w.Recovery = nil
	}
	if advanced {
		w.Deadline = now.Add(timeout)
	}
	return advanced
}

// Expired reports whether the wait is over at now.
func (w GateWait) Expired(now time.Time) bool { return !now.Before(w.Deadline) }

// ProcessUp reports whether a Kafka service state (kfleet-BrokerStatus'
// first line) means the process runs: it may still be recovering its logs
// or registering.
func ProcessUp(state string) bool {
	return slices.Contains([]string{"running", "starting", "recovering"}, state)
}

// BrokerSighting is one observation of a broker that is coming back.
type BrokerSighting struct {
	Registered bool
	// Process is the service state; "" when it could not be told.
	Process    string
	Recovering bool
	LogsLeft   int
}

// ComeBackVerdict is why a wait for a broker to come back ended.
type ComeBackVerdict string

// Verdicts of ComeBack.Observe.
const (
	// ComeBackWaiting: nothing to report; keep waiting.
	ComeBackWaiting ComeBackVerdict = ""
	// ComeBackRegistered: the broker is registered again.
	ComeBackRegistered ComeBackVerdict = "registered"
	// ComeBackDown: its process went down again; diagnose anew.
	ComeBackDown ComeBackVerdict = "down"
	// ComeBackRecovering: it began recovering its logs (reported once,
	// so the operation can say so).
	ComeBackRecovering ComeBackVerdict = "recovering"
	// ComeBackStalled: no progress for the stall timeout; a human
	// decides (it is never restarted while it recovers).
	ComeBackStalled ComeBackVerdict = "stalled"
)

// ComeBack follows a started broker until it is registered, without
// touching it. Progress is the first observation of log recovery and every
// fall of its logs left; the stall clock runs from the last progress, or
// from the start of the wait.
type ComeBack struct {
	Broker int32 `json:"broker"`
	// LastProgress is when the wait began or recovery last advanced.
	LastProgress time.Time `json:"lastProgress"`
	// Last is recovery's last progress (zero until it is seen).
	Last RecoverySample `json:"last"`
	// LastRecovering is the last time the broker was seen recovering.
	LastRecovering time.Time `json:"lastRecovering,omitzero"`
	// ReportedRecovering is set once ComeBackRecovering was returned.
	ReportedRecovering bool `json:"reportedRecovering,omitempty"`
	// Pace is the last pace measured, with the logs left then (zero
	// until recovery advanced once).
	Pace RecoveryPace `json:"pace,omitzero"`
}

// Observe folds a sighting at now in and says whether the wait is over.
// Registration wins over everything; a process that is known and not up
// went down again.
func (c *ComeBack) Observe(now time.Time, s BrokerSighting, stall time.Duration) ComeBackVerdict {
	switch {
	case s.Registered:
		return ComeBackRegistered
	case s.Recovering:
		c.LastRecovering = now
		var perMin float64
		var eta time.Duration
		var paced, progressed bool
		c.Last, perMin, eta, paced, progressed = Advance(c.Last, now, s.LogsLeft)
		if paced {
			c.Pace = RecoveryPace{Broker: c.Broker, Left: s.LogsLeft, PerMin: perMin, ETA: eta}
		}
		if progressed {
			c.LastProgress = now
		}
		if !c.ReportedRecovering {
			c.ReportedRecovering = true
			return ComeBackRecovering
		}
	case !ProcessUp(s.Process) && s.Process != "":
		return ComeBackDown
	}
	if now.Sub(c.LastProgress) >= stall {
		return ComeBackStalled
	}
	return ComeBackWaiting
}
