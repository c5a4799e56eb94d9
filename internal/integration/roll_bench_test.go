package integration_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// BenchmarkRoll measures a whole rolling restart through the cluster entity
// against the fleet's default broker timing, and divides it by the time the
// brokers themselves needed as the fleet's audit reports it (controlled
// shutdown, startup, catch-up into the ISR): the rest is kfleet's overhead.
// Serial rolls pay every broker's time in turn; batched rolls overlap
// brokers that share no partition (one rack at a time on 3 racks).
func BenchmarkRoll(b *testing.B) {
	cases := []struct {
		brokers, racks, maxBatch int
	}{
		{3, 0, 1},
		{6, 3, 1},
		{12, 3, 1},
		{12, 3, 4},
	}
	for _, c := range cases {
		b.Run(fmt.Sprintf("brokers=%d/racks=%d/batch=%d", c.brokers, c.racks, c.maxBatch), func(b *testing.B) {
			cc := localfleet.ClusterConfig{ID: "bench", Brokers: c.brokers, Racks: c.racks}
			stack := startStack(b, localfleet.Config{Clusters: []localfleet.ClusterConfig{cc}})
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
				before := len(stack.Fleet.Audit("bench"))
				began := time.Now()
				op, err := entity.Request(ctx, stack.Client, "bench", batchedRestartReq("bench", c.maxBatch))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := entity.FollowOperation(ctx, stack.Client, "bench", op.ID, 100*time.Millisecond, func(entity.Progress) {}); err != nil {
					b.Fatal(err)
				}
				roll := time.Since(began)
				cancel()
				brokerSide := brokerSideTime(stack.Fleet.Audit("bench")[before:])
				b.ReportMetric(roll.Seconds(), "roll-s")
				b.ReportMetric(brokerSide.Seconds(), "broker-side-s")
				b.ReportMetric(roll.Seconds()/brokerSide.Seconds(), "roll/broker-side")
				b.ReportMetric(roll.Seconds()/float64(c.brokers), "s/broker")
				for _, v := range stack.Fleet.Violations("bench") {
					b.Fatalf("violation %s: %s", v.Kind, v.Detail)
				}
			}
		})
	}
}

// brokerSideTime sums, per broker, stop→stopped, start→started and
// started→in-sync from the fleet's audit.
func brokerSideTime(events []localfleet.Event) time.Duration {
	var total time.Duration
	last := map[int32]map[localfleet.EventKind]time.Time{}
	for _, e := range events {
		if last[e.Broker] == nil {
			last[e.Broker] = map[localfleet.EventKind]time.Time{}
		}
		last[e.Broker][e.Kind] = e.Time
		since := func(k localfleet.EventKind) time.Duration {
			if t, ok := last[e.Broker][k]; ok {
				return e.Time.Sub(t)
			}
			return 0
		}
		switch e.Kind {
		case localfleet.EventStopped:
			total += since(localfleet.EventStop)
		case localfleet.EventStarted:
			total += since(localfleet.EventStart)
		case localfleet.EventInSync:
			total += since(localfleet.EventStarted)
		}
	}
	return total
}
