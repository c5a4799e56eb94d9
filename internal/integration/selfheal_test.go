package integration_test

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/kafka"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/metrics"
	"github.com/kfleet/kfleet/workflows"
)

// selfHealingPolicy ticks fast enough for a test: half-second health ticks
// and a one-second grace for a lost broker to come back by itself.
var selfHealingPolicy = fleet.HealthPolicy{Interval: 500 * time.Millisecond, RecoveryGrace: time.Second}

func startSelfHealingStack(t *testing.T, clusters ...localfleet.ClusterConfig) *devstack.Stack {
	t.Helper()
	return startStackWith(t, fastFleet(clusters...), func(o *devstack.StackOptions) { o.Health = selfHealingPolicy })
}

// finished waits until the entity's history holds an operation of kind
// that ended, and returns it.
func finished(ctx context.Context, t *testing.T, stack *devstack.Stack, cluster, kind string, within time.Duration) workflows.Operation {
	t.Helper()
	st := waitStatus(ctx, t, stack, cluster, within, "a "+kind+" operation ends", func(st workflows.ClusterStatus) bool {
		return slices.ContainsFunc(st.History, func(op workflows.Operation) bool { return op.Kind == kind })
	})
	i := slices.IndexFunc(st.History, func(op workflows.Operation) bool { return op.Kind == kind })
	return st.History[i]
}

// noViolations fails the test on any violation the fleet's audit found.
func noViolations(t *testing.T, stack *devstack.Stack, cluster string) {
	t.Helper()
	assert.Empty(t, stack.Fleet.Violations(cluster), "the fleet saw no moment of two brokers down or a partition under min ISR")
}

// TestIntegrationRecoveryBringsBackACrashedBroker: a broker killed behind
// kfleet's back is detected through ZooKeeper within its session timeout,
// recovered exactly once (diagnosed, started, log recovery waited out, ISR,
// preferred leaders), and nothing else is touched.
func TestIntegrationRecoveryBringsBackACrashedBroker(t *testing.T) {
	stack := startStackWith(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}), func(o *devstack.StackOptions) {
		o.Health, o.NotifyOut = selfHealingPolicy, io.Discard
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)

	crashed := time.Now()
	require.NoError(t, stack.Fleet.Crash(ctx, "local-a", 2, "integration-test"))
	st := waitStatus(ctx, t, stack, "local-a", zkSessionTimeout+5*time.Second, "a recovery starts", func(st workflows.ClusterStatus) bool {
		return len(st.Urgent) > 0 || slices.ContainsFunc(st.History, func(op workflows.Operation) bool { return op.Kind == workflows.OpRecovery })
	})
	t.Logf("recovery running %s after the crash (ZooKeeper session timeout %s)", time.Since(crashed).Round(time.Millisecond), zkSessionTimeout)
	require.Len(t, st.Losses, 1)

	op := finished(ctx, t, stack, "local-a", workflows.OpRecovery, time.Minute)
	require.Equal(t, workflows.StatusSucceeded, op.Status, op.Error)
	assert.Equal(t, []int32{2}, op.Brokers)
	assert.Equal(t, "cause unknown, 1 start(s)", op.Outcome)
	t.Logf("recovered %s after the crash", op.FinishedAt.Sub(crashed).Round(time.Millisecond))

	state, err := stack.Fleet.BrokerState("local-a", 2)
	require.NoError(t, err)
	assert.Equal(t, localfleet.StateRunning, state)
	stops, starts := stopsAndStarts(stack.Fleet.Audit("local-a"))
	assert.Empty(t, stops, "recovery never stops a broker")
	assert.Equal(t, map[int32]int{2: 1}, starts, "the lost broker started exactly once")
	st, err = entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	assert.Empty(t, st.OpenLosses())
	assert.Equal(t, op.ID, st.Losses[0].Recovery)
	noViolations(t, stack, "local-a")
	// The on-call channel heard of it, start and end (the local sink).
	msgs := strings.Join(stack.Notifications.Messages(), "\n")
	assert.Contains(t, msgs, "Recovering broker 2")
	assert.Contains(t, msgs, "Broker 2 recovered")
	recordHistories(ctx, t, stack.Client, map[string]string{op.WorkflowID: "recovery_crash.json"})
}

// TestIntegrationRecoveryRaisesMaxMapCountForAMapFailedCrashLoop: the
// broker dies with java.io.IOException: Map failed because its segments
// need more memory maps than vm.max_map_count allows; a plain restart
// would crash again. Recovery reads the log and the limits, raises the
// limit through SSM first, then starts it once.
func TestIntegrationRecoveryRaisesMaxMapCountForAMapFailedCrashLoop(t *testing.T) {
	cfg := localfleet.ClusterConfig{ID: "local-a", Brokers: 3}
	stack := startStackWith(t, fastFleet(cfg), func(o *devstack.StackOptions) {
		o.Health = selfHealingPolicy
		// 33,000 segments to recover at 50µs each: 1.65 s of log recovery.
		o.Fleet.Clusters[0].Timing.RecoveryPerSegment = 50 * time.Microsecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)

	require.NoError(t, stack.Fleet.InjectFault(ctx, "local-a", 2, localfleet.Fault{Kind: localfleet.FaultCrashLoop, Segments: 33000}, "integration-test"))
	op := finished(ctx, t, stack, "local-a", workflows.OpRecovery, time.Minute)
	require.Equal(t, workflows.StatusSucceeded, op.Status, op.Error)
	assert.Equal(t, "cause map-failed, 1 start(s), vm.max_map_count 65530 -> 262144", op.Outcome)

	limit, err := stack.Fleet.Limit("local-a", 2, localfleet.LimitMaxMapCount)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, limit, int64(33000*2), "the limit covers two maps per segment")
	var limitAt, startAt int
	for i, e := range stack.Fleet.Audit("local-a") {
		switch {
		case e.Broker != 2:
		case e.Kind == localfleet.EventLimit:
			limitAt = i
		case e.Kind == localfleet.EventStart:
			startAt = i
		case e.Kind == localfleet.EventStartFailed:
			t.Errorf("a start failed: the limit must be raised before the start (%s)", e.Detail)
		}
	}
	assert.Less(t, limitAt, startAt, "the limit is raised before the start")
	state, err := stack.Fleet.BrokerState("local-a", 2)
	require.NoError(t, err)
	assert.Equal(t, localfleet.StateRunning, state)
	noViolations(t, stack, "local-a")
	recordHistories(ctx, t, stack.Client, map[string]string{op.WorkflowID: "recovery_map_failed.json"})
}

// TestIntegrationVolumeExpansionThenEscalation: a disk forecast to pass 80%
// within the six-hour cool-down is expanded (ModifyVolume, optimizing,
// filesystem grown online, seen by EC2 and by the broker's metrics); when a
// tenant then fills it past 90% inside the cool-down, kfleet never modifies
// it again but throttles that tenant, which really slows the disk.
func TestIntegrationVolumeExpansionThenEscalation(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	const tenant = "wabash-58799"
	stack := startSelfHealingStack(t, localfleet.ClusterConfig{ID: "local-a", Brokers: 3,
		Volume: localfleet.VolumeConfig{SizeGiB: 100, UsedPercent: 75, Modifying: 300 * time.Millisecond, Optimizing: time.Second}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)

	// 1 MiB/s: 80% in 85 minutes, well inside a cool-down.
	require.NoError(t, stack.Fleet.FillDiskBy("local-a", 3, 1<<20, tenant))
	op := finished(ctx, t, stack, "local-a", workflows.OpVolumeExpansion, time.Minute)
	require.Equal(t, workflows.StatusSucceeded, op.Status, op.Error)
	require.Contains(t, op.Outcome, "expanded 100 -> ")
	vol, err := stack.Fleet.Volume("local-a", 3)
	require.NoError(t, err)
	assert.Greater(t, vol.SizeGiB, int32(110), "sized for six hours of growth, not just the minimum step")
	assert.Equal(t, int64(vol.SizeGiB)<<30, vol.FilesystemBytes, "the filesystem was grown to the volume")

	spec := stack.Specs["local-a"]
	b3, _ := spec.Broker(3)
	m, err := metrics.Scrape(ctx, b3.MetricsURL)
	require.NoError(t, err)
	assert.Equal(t, int64(vol.SizeGiB)<<30, m.FilesystemSize, "the broker sees the new size")
	st, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	cd := st.Health.Brokers[2].Cooldown
	require.NotNil(t, cd, "the cool-down is recorded in the entity")
	assert.WithinDuration(t, op.FinishedAt.Add(6*time.Hour), cd.Until, time.Minute)

	// Now the tenant floods the broker: past 90% within seconds.
	require.NoError(t, stack.Fleet.FillDiskBy("local-a", 3, 4<<30, tenant))
	st = waitStatus(ctx, t, stack, "local-a", time.Minute, "the disk is escalated", func(st workflows.ClusterStatus) bool {
		return slices.ContainsFunc(st.History, func(op workflows.Operation) bool {
			return op.Kind == workflows.OpVolumeExpansion && strings.HasPrefix(op.Outcome, workflows.ExpansionEscalated)
		})
	})
	vol, err = stack.Fleet.Volume("local-a", 3)
	require.NoError(t, err)
	assert.Less(t, vol.GrowthBytesPerSec, int64(4<<30), "the throttled tenant fills the disk slower")
	modified := 0
	for _, e := range stack.Fleet.Audit("local-a") {
		if e.Kind == localfleet.EventVolumeModified {
			modified++
		}
	}
	assert.Equal(t, 1, modified, "never a second modification inside the cool-down")

	admin, err := kafka.Dial("local-a", spec.Bootstrap)
	require.NoError(t, err)
	defer admin.Close()
	quota, set, err := admin.ProducerQuota(ctx, tenant)
	require.NoError(t, err)
	require.True(t, set, "the tenant has a producer quota now")
	assert.Less(t, quota, float64(4<<30))
	require.NoError(t, stack.Fleet.FillDiskBy("local-a", 3, 0, tenant))
	noViolations(t, stack, "local-a")
	recordHistories(ctx, t, stack.Client, map[string]string{op.WorkflowID: "volume_expansion.json"})
}

// TestIntegrationDeadCleanerIsFoundAndFixed: the log cleaner thread of a
// broker dies silently; a health tick sees DeadThreadCount, and the fix — a
// gated restart of that broker alone — runs through the entity's queue.
func TestIntegrationDeadCleanerIsFoundAndFixed(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	stack := startSelfHealingStack(t, localfleet.ClusterConfig{ID: "local-a", Brokers: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)

	require.NoError(t, stack.Fleet.InjectFault(ctx, "local-a", 1, localfleet.Fault{Kind: localfleet.FaultKillCleaner}, "integration-test"))
	op := finished(ctx, t, stack, "local-a", workflows.OpCleanerHealth, time.Minute)
	require.Equal(t, workflows.StatusSucceeded, op.Status, op.Error)
	assert.Equal(t, "restarted [1], cleaners healthy again", op.Outcome)
	assert.Equal(t, "kfleet-health", op.RequestedBy)

	a := auditSerial(t, stack.Fleet.Audit("local-a"))
	assert.Equal(t, map[int32]int{1: 1}, a.stops, "only broker 1 restarted, once")
	assert.Equal(t, map[int32]int{1: 1}, a.starts)
	spec := stack.Specs["local-a"]
	b1, _ := spec.Broker(1)
	m, err := metrics.Scrape(ctx, b1.MetricsURL)
	require.NoError(t, err)
	assert.Zero(t, m.CleanerDeadThreads)
	noViolations(t, stack, "local-a")
	recordHistories(ctx, t, stack.Client, map[string]string{
		op.WorkflowID:                          "cleaner_health.json",
		workflows.ClusterWorkflowID("local-a"): "cluster_self_healing.json",
	})
}

// TestIntegrationRecoveryObservesABrokerThatComesBackByItself: a broker
// whose ZooKeeper session expires (a long GC pause, a network blip) leaves
// ZooKeeper while its process runs, and registers again as soon as it has a
// new session. The loss starts a recovery, which sees it back within its
// grace and only observes: nothing is started or stopped.
func TestIntegrationRecoveryObservesABrokerThatComesBackByItself(t *testing.T) {
	stack := startStackWith(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}), func(o *devstack.StackOptions) {
		o.Health = fleet.HealthPolicy{Interval: 500 * time.Millisecond, RecoveryGrace: 15 * time.Second}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)

	require.NoError(t, stack.Fleet.InjectFault(ctx, "local-a", 2, localfleet.Fault{Kind: localfleet.FaultExpireSession}, "integration-test"))
	op := finished(ctx, t, stack, "local-a", workflows.OpRecovery, time.Minute)
	require.Equal(t, workflows.StatusSucceeded, op.Status, op.Error)
	assert.Equal(t, "came back by itself", op.Outcome)
	stops, starts := stopsAndStarts(stack.Fleet.Audit("local-a"))
	assert.Empty(t, stops)
	assert.Empty(t, starts, "a broker back within the grace is never started")
	noViolations(t, stack, "local-a")
}

// TestIntegrationHeapLeakIsRestartedBeforeItFallsOver: a broker's old-gen
// heap climbs tick after tick (the quota-throttling leak); kfleet restarts
// that broker alone, through a gated roll, long before the
// OutOfMemoryError the fleet would crash it with.
func TestIntegrationHeapLeakIsRestartedBeforeItFallsOver(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	stack := startSelfHealingStack(t, localfleet.ClusterConfig{ID: "local-a", Brokers: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)

	// 10% of the heap a minute: full in about 7 minutes.
	leak := localfleet.Fault{Kind: localfleet.FaultHeapLeak, PerMinute: 6 << 30 / 10}
	require.NoError(t, stack.Fleet.InjectFault(ctx, "local-a", 3, leak, "integration-test"))
	op := finished(ctx, t, stack, "local-a", workflows.OpRollingRestart, time.Minute)
	require.NoError(t, stack.Fleet.InjectFault(ctx, "local-a", 3, localfleet.Fault{Kind: localfleet.FaultClear}, "integration-test"))
	require.Equal(t, workflows.StatusSucceeded, op.Status, op.Error)
	assert.Equal(t, []int32{3}, op.Brokers)
	assert.Equal(t, "kfleet-health", op.RequestedBy)
	assert.Contains(t, op.Reason, "climbing")

	a := auditSerial(t, stack.Fleet.Audit("local-a"))
	assert.Equal(t, map[int32]int{3: 1}, a.stops, "broker 3 alone, once")
	for _, e := range stack.Fleet.Audit("local-a") {
		assert.NotEqual(t, localfleet.EventCrash, e.Kind, "restarted before an OutOfMemoryError: %s", e.Detail)
	}
	noViolations(t, stack, "local-a")
}
