package integration_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// BenchmarkRecovery crashes a broker behind kfleet's back (the fleet's
// default timing: 2,000 segments of log recovery at 2 ms, a ZooKeeper
// session of 4 s) and reports:
//
//   - detect-s: crash to RecoveryWorkflow start (target: the ZooKeeper
//     session timeout plus 2 s; Cruise Control's defaults detect in 300 s
//     and heal after 1,800 s);
//   - healed-s: crash to every partition back in the ISR with preferred
//     leaders restored;
//   - healed/broker-side: that divided by the broker's own time — its log
//     recovery and startup (start to registered) plus its catch-up into
//     the ISR, from the fleet's audit. The rest is detection (the session
//     timeout), the grace, and kfleet's overhead;
//   - acting/broker-side: the same without detection and the grace.
func BenchmarkRecovery(b *testing.B) {
	const grace = 2 * time.Second
	stack := startStackWith(b, localfleet.Config{Clusters: []localfleet.ClusterConfig{{ID: "bench", Brokers: 3}}},
		func(o *devstack.StackOptions) { o.Health = fleet.HealthPolicy{RecoveryGrace: grace} })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	waitIdle := func() {
		for {
			st, err := entity.ClusterStatus(ctx, stack.Client, "bench")
			if err == nil && st.Watch != nil && len(st.Watch.Missing) == 0 && len(st.Urgent) == 0 && len(st.Queue) == 0 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitIdle()
	broker := int32(2)
	for b.Loop() {
		before := len(stack.Fleet.Audit("bench"))
		done := 0
		if st, err := entity.ClusterStatus(ctx, stack.Client, "bench"); err == nil {
			done = len(st.History)
		}
		crashed := time.Now()
		if err := stack.Fleet.Crash(ctx, "bench", broker, "bench"); err != nil {
			b.Fatal(err)
		}
		var op workflows.Operation
		for op.FinishedAt.IsZero() {
			time.Sleep(50 * time.Millisecond)
			st, err := entity.ClusterStatus(ctx, stack.Client, "bench")
			if err != nil || len(st.History) <= done {
				continue
			}
			i := slices.IndexFunc(st.History[done:], func(o workflows.Operation) bool { return o.Kind == workflows.OpRecovery })
			if i >= 0 {
				op = st.History[done+i]
			}
		}
		if op.Status != workflows.StatusSucceeded {
			b.Fatalf("recovery %s: %s", op.Status, op.Error)
		}
		own := brokerSideTime(stack.Fleet.Audit("bench")[before:])
		healed := op.FinishedAt.Sub(crashed)
		b.ReportMetric(op.StartedAt.Sub(crashed).Seconds(), "detect-s")
		b.ReportMetric(healed.Seconds(), "healed-s")
		b.ReportMetric(own.Seconds(), "broker-side-s")
		b.ReportMetric(healed.Seconds()/own.Seconds(), "healed/broker-side")
		b.ReportMetric(grace.Seconds(), "grace-s")
		// Without detection and the grace: what kfleet adds to the
		// broker's own time once it acts.
		b.ReportMetric((healed-op.StartedAt.Sub(crashed)-grace).Seconds()/own.Seconds(), "acting/broker-side")
		if v := stack.Fleet.Violations("bench"); len(v) > 0 {
			b.Fatalf("violations: %+v", v)
		}
		broker = broker%3 + 1
		waitIdle()
	}
}
