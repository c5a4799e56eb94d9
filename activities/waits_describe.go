package activities

import (
	"fmt"
	"time"
)

// DescribeWait says, for humans, what a pending wait activity's last
// heartbeat says: what it waits for, and how it goes. decode reads the
// heartbeat's details. ok is false for an activity that is no wait, or a
// wait that has not heartbeated yet. The workflow waiting knows only what
// the wait first saw; this is how status shows it live.
func DescribeWait(activityType string, decode func(any) error) (string, bool) {
	switch activityType {
	case "WaitRestartGates":
		var p GateWaitProgress
		if decode(&p) != nil || p.Checks == 0 {
			return "", false
		}
		s := fmt.Sprintf("waiting for the gates of broker %d: %d check(s), %d blocker(s)", p.Next, p.Checks, p.Blockers)
		if p.First != "" {
			s += " (" + p.First + ")"
		}
		for _, pace := range p.Wait.Paces {
			s += "; " + pace.String()
		}
		if !p.Wait.Deadline.IsZero() {
			s += fmt.Sprintf("; asks a human at %s UTC unless they open or recovery advances", p.Wait.Deadline.UTC().Format(time.DateTime))
		}
		return s, true
	case "WaitBrokerBack":
		var p BrokerBackProgress
		if decode(&p) != nil || p.Wait.LastProgress.IsZero() {
			return "", false
		}
		s := fmt.Sprintf("waiting for broker %d to come back: process %s", p.Wait.Broker, orUnknown(p.Observation.Process))
		if p.Observation.Recovering {
			s += fmt.Sprintf(", recovering its logs, %d left", p.Observation.LogsLeft)
		}
		if p.Wait.Pace.PerMin > 0 {
			s += fmt.Sprintf(" at %.0f logs/min, ETA %s", p.Wait.Pace.PerMin, p.Wait.Pace.ETA)
		}
		s += fmt.Sprintf("; last progress %s UTC", p.Wait.LastProgress.UTC().Format(time.DateTime))
		return s, true
	case "WaitCatchUp":
		var p CatchUpProgress
		if decode(&p) != nil || p.Now.Replicas == 0 {
			return "", false
		}
		return describeCatchUp(p), true
	case "StartStoppedInstance":
		var p instanceStartProgress
		if decode(&p) != nil || p.State == "" {
			return "", false
		}
		s := "starting the broker's stopped instance: it is " + p.State
		if !p.Started.IsZero() {
			s += fmt.Sprintf(", started %s UTC", p.Started.UTC().Format(time.DateTime))
		}
		return s, true
	case "WaitBrokerGrace":
		var obs BrokerObservation
		if decode(&obs) != nil {
			return "", false
		}
		return fmt.Sprintf("grace: the broker's process is %s, registered %t", orUnknown(obs.Process), obs.Registered), true
	}
	return "", false
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
