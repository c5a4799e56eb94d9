package integration_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// BenchmarkProvision creates clusters from nothing through the product
// against the fleet's default EC2 and broker timing (a host pending 1 s, a
// volume creating 0.5 s, attaching 0.2 s, a broker starting 0.5 s), and
// divides the time to a registered cluster by the fleet's own boot and
// start path — max(pending, volume creating) + attaching + startup: what
// no orchestration can beat, with every host and volume made at once. The
// rest is kfleet's: the check, SSM round trips, waiters' polls, the
// ensemble, the verification, the registration.
func BenchmarkProvision(b *testing.B) {
	for _, brokers := range []int{3, 12} {
		b.Run(fmt.Sprintf("brokers=%d", brokers), func(b *testing.B) {
			stack := startStack(b, localfleet.Config{Clusters: []localfleet.ClusterConfig{{ID: "local-a", Brokers: 3}}})
			ec2 := localfleet.EC2Config{}.WithDefaults()
			floor := max(ec2.Timing.Pending, ec2.Timing.VolumeCreating) + ec2.Timing.Attaching + ec2.ClusterTiming.Startup
			n := 0
			for b.Loop() {
				n++
				id := fmt.Sprintf("bench-%d-%d", brokers, n)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				began := time.Now()
				if _, err := entity.Provision(ctx, stack.Client, ordersPlan(id, brokers), "bench"); err != nil {
					b.Fatal(err)
				}
				if _, err := entity.FollowProvision(ctx, stack.Client, id, 50*time.Millisecond, func(workflows.ProvisionProgress) {}); err != nil {
					b.Fatal(err)
				}
				took := time.Since(began)
				b.Logf("%s: %s; slowest step of each kind: %s", id, took.Round(time.Millisecond), slowestSteps(ctx, b, stack, workflows.ProvisionWorkflowID(id)))
				cancel()
				b.ReportMetric(took.Seconds(), "create-s")
				b.ReportMetric(floor.Seconds(), "fleet-boot-start-s")
				b.ReportMetric(took.Seconds()/floor.Seconds(), "create/fleet")
				for _, v := range stack.Fleet.Violations(id) {
					b.Fatalf("violation %s: %s", v.Kind, v.Detail)
				}
			}
		})
	}
}

// slowestSteps reads a workflow's history: each activity type's slowest
// run, scheduled to completed, and the workflow's span from its first
// event to its last.
func slowestSteps(ctx context.Context, b *testing.B, stack *devstack.Stack, workflowID string) string {
	scheduled := map[int64]*historypb.HistoryEvent{}
	slowest := map[string]time.Duration{}
	var first, last time.Time
	it := stack.Client.GetWorkflowHistory(ctx, workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			b.Fatal(err)
		}
		if first.IsZero() {
			first = ev.GetEventTime().AsTime()
		}
		last = ev.GetEventTime().AsTime()
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil {
			scheduled[ev.GetEventId()] = ev
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil {
			s := scheduled[a.GetScheduledEventId()]
			typ := s.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName()
			slowest[typ] = max(slowest[typ], ev.GetEventTime().AsTime().Sub(s.GetEventTime().AsTime()))
		}
	}
	var parts []string
	for _, typ := range slices.Sorted(maps.Keys(slowest)) {
		parts = append(parts, fmt.Sprintf("%s %s", typ, slowest[typ].Round(10*time.Millisecond)))
	}
	return fmt.Sprintf("%s (workflow %s)", strings.Join(parts, ", "), last.Sub(first).Round(10*time.Millisecond))
}
