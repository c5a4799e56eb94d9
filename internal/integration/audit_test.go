package integration_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/localfleet"
)

// stopsAndStarts counts each broker's stop and start requests in the audit.
func stopsAndStarts(events []localfleet.Event) (stops, starts map[int32]int) {
	stops, starts = map[int32]int{}, map[int32]int{}
	for _, e := range events {
		switch e.Kind {
		case localfleet.EventStop:
			stops[e.Broker]++
		case localfleet.EventStart:
			starts[e.Broker]++
		}
	}
	return stops, starts
}

// rollAudit is what the fleet saw of serial rolls.
type rollAudit struct {
	stops, starts map[int32]int
	stopOrder     []int32
}

// auditSerial walks the audit of serial rolls and fails the test when a
// broker went down while another was not back in sync, or a broker other
// than the one down was started.
func auditSerial(t testing.TB, events []localfleet.Event) rollAudit {
	t.Helper()
	a := rollAudit{stops: map[int32]int{}, starts: map[int32]int{}}
	down := int32(-1)
	for _, e := range events {
		switch e.Kind {
		case localfleet.EventStop:
			require.Equal(t, int32(-1), down, "broker %d stopped while broker %d was down", e.Broker, down)
			down = e.Broker
			a.stops[e.Broker]++
			a.stopOrder = append(a.stopOrder, e.Broker)
		case localfleet.EventStart:
			require.Equal(t, down, e.Broker, "start of a broker that was not the one down")
			a.starts[e.Broker]++
		case localfleet.EventInSync:
			if e.Broker == down {
				down = -1
			}
		}
	}
	return a
}
