package activities_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

func TestDescribeWait(t *testing.T) {
	at := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	cases := []struct {
		name, activity string
		details        any
		want           string
		ok             bool
	}{
		{"gates", "WaitRestartGates", activities.GateWaitProgress{Checks: 12, Next: 2, Blockers: 1, First: "recovering: broker 3",
			Wait: fleet.GateWait{Deadline: at, Paces: []fleet.RecoveryPace{{Broker: 3, Left: 400, PerMin: 1200, ETA: 20 * time.Second}}}},
			"waiting for the gates of broker 2: 12 check(s), 1 blocker(s) (recovering: broker 3); broker 3 recovering at 1200 logs/min, 400 left, ETA 20s; asks a human at 2026-12-01 03:00:00 UTC unless they open or recovery advances", true},
		{"gates before a check", "WaitRestartGates", activities.GateWaitProgress{}, "", false},
		{"coming back", "WaitBrokerBack", activities.BrokerBackProgress{
			Wait:        fleet.ComeBack{Broker: 2, LastProgress: at, Pace: fleet.RecoveryPace{Broker: 2, Left: 9000, PerMin: 3000, ETA: 3 * time.Minute}},
			Observation: activities.BrokerObservation{Process: "recovering", Recovering: true, LogsLeft: 9000}},
			"waiting for broker 2 to come back: process recovering, recovering its logs, 9000 left at 3000 logs/min, ETA 3m0s; last progress 2026-12-01 03:00:00 UTC", true},
		{"grace", "WaitBrokerGrace", activities.BrokerObservation{Process: "stopped"}, "grace: the broker's process is stopped, registered false", true},
		{"no wait", "StopBroker", struct{}{}, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw, err := json.Marshal(c.details)
			assert.NoError(t, err)
			got, ok := activities.DescribeWait(c.activity, func(v any) error { return json.Unmarshal(raw, v) })
			assert.Equal(t, c.ok, ok)
			assert.Equal(t, c.want, got)
		})
	}
}
