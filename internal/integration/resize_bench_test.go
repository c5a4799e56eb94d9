package integration_test

import (
	"context"
	"testing"
	"time"

	"github.com/kfleet/kfleet/workflows"
)

// BenchmarkAddBrokers adds 3 brokers to a 6-broker cluster holding about
// 20 MB (two topics, 30 partitions, replication factor 3) while a producer
// writes, under a 1 MiB/s replication throttle, and reports the
// reassignment's throughput against what the throttle allows — each new
// broker takes in at most the throttle, so 3 MiB/s in all — and how far
// the throttle held: the highest rate any new broker took throttled
// copies in over a second, as the fleet measured it, divided by the
// throttle (1.0 is the throttle exactly; the fleet flags 1.1).
func BenchmarkAddBrokers(b *testing.B) {
	const throttle = 1 << 20
	for b.Loop() {
		stack := startResizeStack(b, 6)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		preload := newProducer(b, stack).produce(ctx, 2000, 10_000)
		l := startLoad(b, stack, 1_000)
		began := time.Now()
		op := request(ctx, b, stack, workflows.OpAddBrokers, nil, workflows.AddBrokersParams{Count: 3, MoveParams: workflows.MoveParams{ThrottleBytesPerSec: throttle}})
		var res workflows.ResizeResult
		if err := stack.Client.GetWorkflow(ctx, op.WorkflowID, "").Get(ctx, &res); err != nil {
			b.Fatal(err)
		}
		took := time.Since(began)
		l.halt()
		stats, err := stack.Fleet.ReassignmentStats("local-a")
		if err != nil {
			b.Fatal(err)
		}
		var held float64
		for _, id := range res.Added {
			held = max(held, stats.Brokers[id].PeakThrottledBytesPerSec/throttle)
		}
		ceiling := float64(throttle * len(res.Added))
		b.Logf("preloaded %d MB, %d records written meanwhile; addition %s, of which moving %.1f s: %d partitions, %d copies, %.1f MB (fleet: %.1f MB); %s",
			preload>>20, l.acked.Load(), took.Round(time.Millisecond), res.Moves.Seconds, res.Moves.Moved, res.Moves.Copies, float64(res.Moves.Bytes)/1e6,
			float64(stats.BytesMoved)/1e6, res.Moves.After)
		b.ReportMetric(took.Seconds(), "add-s")
		b.ReportMetric(res.Moves.Seconds, "move-s")
		b.ReportMetric(stats.Throughput()/1e6, "MB/s")
		b.ReportMetric(stats.Throughput()/ceiling, "throughput/throttle")
		b.ReportMetric(held, "peak/throttle")
		for _, v := range stack.Fleet.Violations("local-a") {
			b.Fatalf("violation %s: %s", v.Kind, v.Detail)
		}
		cancel()
		stack.Close()
	}
}
