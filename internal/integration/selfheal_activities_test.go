package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/metrics"
	"github.com/kfleet/kfleet/internal/notify"
)

// startSelfHealHarness is the activity harness with the broker metrics
// the health loop and self-healing read; configure adjusts the cluster.
func startSelfHealHarness(t *testing.T, configure ...func(*localfleet.ClusterConfig)) *activityHarness {
	t.Helper()
	h := startActivityHarness(t, configure...)
	h.acts.Metrics = metrics.Scraper{}
	return h
}

// run executes one activity and decodes its result into out (nil: none).
func (h *activityHarness) run(t *testing.T, activity, in, out any) error {
	t.Helper()
	v, err := h.env.ExecuteActivity(activity, in)
	if err != nil {
		return err
	}
	if out != nil {
		require.NoError(t, v.Get(out))
	}
	return nil
}

func applicationErrorType(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Type()
	}
	return ""
}

// TestIntegrationSelfHealActivitiesHealth: one health tick sees a dead log
// cleaner, uncleanable partitions, a broker that is down and the
// standalone ZooKeeper; the humans are told through the webhook.
func TestIntegrationSelfHealActivitiesHealth(t *testing.T) {
	t.Parallel() // its own fleet and stack; nothing it asserts depends on the machine being idle
	h := startSelfHealHarness(t)
	ctx := context.Background()
	require.NoError(t, h.fleet.InjectFault(ctx, "local-a", 1, localfleet.Fault{Kind: localfleet.FaultKillCleaner}, "test"))
	require.NoError(t, h.fleet.InjectFault(ctx, "local-a", 3, localfleet.Fault{Kind: localfleet.FaultUncleanable, Count: 2}, "test"))
	require.NoError(t, h.fleet.StopBroker(ctx, "local-a", 2, "test"))

	var rep fleet.HealthReport
	require.NoError(t, h.run(t, h.acts.CheckHealth, activities.HealthInput{Spec: h.spec}, &rep))
	assert.Equal(t, "local-a", rep.Cluster)
	require.Len(t, rep.Brokers, 3)
	policy := h.spec.Health.WithDefaults()
	for _, b := range rep.Brokers {
		if b.Broker == 2 {
			assert.NotEmpty(t, b.Error, "a stopped broker's exporter is down with it")
			assert.Empty(t, b.State)
			continue
		}
		require.Empty(t, b.Error, "broker %d", b.Broker)
		assert.Equal(t, "RUNNING", b.State)
		assert.Positive(t, b.Disk.SizeBytes)
		assert.InDelta(t, 40, b.Disk.Percent(), 1, "the fleet's default volume is 40% used")
		assert.Positive(t, b.Heap.Used)
		assert.Greater(t, b.Heap.Max, b.Heap.Used)
	}
	cleaner1, cleaner3 := rep.Brokers[0].Cleaner, rep.Brokers[2].Cleaner
	assert.Equal(t, 1, cleaner1.DeadThreads)
	why, unhealthy := fleet.CleanerUnhealthy(policy, cleaner1)
	assert.True(t, unhealthy)
	assert.Contains(t, why, "dead")
	assert.Equal(t, 0, cleaner3.DeadThreads)
	assert.Equal(t, 2, cleaner3.Uncleanable)
	_, unhealthy = fleet.CleanerUnhealthy(policy, cleaner3)
	assert.True(t, unhealthy, "uncleanable partitions need the restart too")

	require.Len(t, rep.ZooKeeper, 1)
	zk := rep.ZooKeeper[0]
	assert.True(t, zk.OK, "%+v", zk)
	assert.Equal(t, "standalone", zk.Mode)
	assert.Empty(t, zk.Error)
	assert.True(t, strings.HasPrefix(h.spec.ZooKeeper, zk.Address))

	// The finding goes to the on-call chat.
	posts := make(chan notify.Payload, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p notify.Payload
		body, _ := io.ReadAll(r.Body)
		assert.NoError(t, json.Unmarshal(body, &p))
		posts <- p
	}))
	defer hook.Close()
	h.acts.Notifier = activities.WebhookNotifier{Webhook: &notify.Webhook{URL: hook.URL + "/services/T/B/secret"}}
	require.NoError(t, h.run(t, h.acts.Notify, activities.Notification{
		Cluster: "local-a", Broker: 1, Severity: activities.SeverityWarning, Title: "Broker 1: log cleaner dead", Text: why,
		Operation: "cluster/local-a/cleaner/1",
	}, nil))
	select {
	case p := <-posts:
		assert.Contains(t, p.Text, ":warning:")
		assert.Contains(t, p.Text, "Broker 1: log cleaner dead")
		assert.Contains(t, p.Text, "cluster `local-a` · broker 1 · operation `cluster/local-a/cleaner/1`")
	case <-time.After(5 * time.Second):
		t.Fatal("nothing posted to the webhook")
	}
	hook.Close()
	err := h.run(t, h.acts.Notify, activities.Notification{Cluster: "local-a", Severity: activities.SeverityInfo, Title: "unheard"}, nil)
	require.Error(t, err, "a webhook that does not answer fails the post (retryable)")
	assert.NotContains(t, err.Error(), "secret")
}

// TestIntegrationSelfHealActivitiesRecovery walks a "Map failed" crash
// loop the way recovery does: diagnose, raise vm.max_map_count, start,
// observe; and diagnoses hosts that are gone.
func TestIntegrationSelfHealActivitiesRecovery(t *testing.T) {
	t.Parallel() // its own fleet and stack; nothing it asserts depends on the machine being idle
	h := startSelfHealHarness(t, func(c *localfleet.ClusterConfig) {
		// A crash loop needs ~36,000 segments: recover them in seconds.
		c.Timing.RecoveryPerSegment = 100 * time.Microsecond
	})
	ctx := context.Background()
	const broker = 2
	require.NoError(t, h.fleet.InjectFault(ctx, "local-a", broker, localfleet.Fault{Kind: localfleet.FaultCrashLoop}, "test"))
	bin := activities.BrokerInput{Spec: h.spec, Broker: broker, Reason: "selfheal activity test"}

	var d activities.Diagnosis
	require.NoError(t, h.run(t, h.acts.DiagnoseBroker, bin, &d))
	assert.Equal(t, "running", d.InstanceState)
	assert.False(t, d.InstanceGone)
	assert.NotEmpty(t, d.Process)
	assert.NotEqual(t, "running", d.Process)
	assert.Equal(t, fleet.CauseMapFailed, d.Cause)
	require.NotEmpty(t, d.Evidence)
	assert.LessOrEqual(t, len(d.Evidence), 3, "only the matching lines, never the tail")
	for _, line := range d.Evidence {
		assert.Contains(t, line, "Map failed")
	}
	assert.Equal(t, int64(65530), d.MaxMapCount)
	assert.Greater(t, int64(d.Segments)*fleet.MapsPerSegment, d.MaxMapCount, "the segments need more maps than allowed")
	assert.Positive(t, d.Nofile)

	// Raise the limit the diagnosis calls for; lowering is refused.
	fix, ok := fleet.FixFor(d.Cause, d.Segments, d.MaxMapCount, d.Nofile)
	require.True(t, ok)
	limit := activities.LimitInput{Spec: h.spec, Broker: broker, Name: fix.Name, Value: fix.To, Reason: fix.Cause}
	require.NoError(t, h.run(t, h.acts.SetHostLimit, limit, nil))
	got, err := h.fleet.Limit("local-a", broker, localfleet.LimitMaxMapCount)
	require.NoError(t, err)
	assert.Equal(t, fix.To, got)
	require.NoError(t, h.run(t, h.acts.SetHostLimit, limit, nil), "the value in force: a harmless retry")
	lower := limit
	lower.Value = 65530
	err = h.run(t, h.acts.SetHostLimit, lower, nil)
	require.Error(t, err)
	assert.Equal(t, activities.ErrTypeBadInput, applicationErrorType(err))
	assert.Contains(t, err.Error(), "refusing to lower")
	got, err = h.fleet.Limit("local-a", broker, localfleet.LimitMaxMapCount)
	require.NoError(t, err)
	assert.Equal(t, fix.To, got, "a refused lowering changes nothing")
	changes := 0
	for _, e := range h.fleet.Audit("local-a") {
		if e.Broker == broker && e.Kind == localfleet.EventLimit {
			changes++
		}
	}
	assert.Equal(t, 1, changes, "one limit change in all")

	// The crash loop ends: the broker starts, recovers its logs (seen
	// through its metrics) and registers.
	require.NoError(t, h.run(t, h.acts.StartBroker, bin, nil))
	var obs activities.BrokerObservation
	sawRecovery, mostLogsLeft := false, 0
	deadline := time.Now().Add(30 * time.Second)
	for {
		obs = activities.BrokerObservation{}
		require.NoError(t, h.run(t, h.acts.ObserveBroker, bin, &obs))
		if obs.Recovering {
			sawRecovery = true
			mostLogsLeft = max(mostLogsLeft, obs.LogsLeft)
		}
		if obs.Registered && obs.Process == "running" && !obs.Recovering {
			break
		}
		require.True(t, time.Now().Before(deadline), "still not back: %+v", obs)
		time.Sleep(50 * time.Millisecond)
	}
	assert.True(t, sawRecovery, "an unclean stop is followed by log recovery")
	assert.Positive(t, mostLogsLeft, "recovery reports the logs it has left")
	assert.Empty(t, obs.MetricsError)

	// Hosts that are gone: no document can run there.
	require.NoError(t, h.fleet.InjectFault(ctx, "local-a", 3, localfleet.Fault{Kind: localfleet.FaultTerminateInstance}, "test"))
	var gone activities.Diagnosis
	require.NoError(t, h.run(t, h.acts.DiagnoseBroker, activities.BrokerInput{Spec: h.spec, Broker: 3}, &gone))
	assert.Equal(t, activities.Diagnosis{InstanceState: "terminated", InstanceGone: true, Cause: fleet.CauseUnknown}, gone)
	require.NoError(t, h.fleet.InjectFault(ctx, "local-a", 1, localfleet.Fault{Kind: localfleet.FaultStopInstance}, "test"))
	var stopped activities.Diagnosis
	require.NoError(t, h.run(t, h.acts.DiagnoseBroker, activities.BrokerInput{Spec: h.spec, Broker: 1}, &stopped))
	assert.Equal(t, activities.Diagnosis{InstanceState: "stopped", InstanceGone: true, Cause: fleet.CauseUnknown}, stopped)
}

// TestIntegrationSelfHealActivitiesVolume grows a broker's volume online
// step by step, checks what EC2 and the broker see, and meets EBS's
// cool-down.
func TestIntegrationSelfHealActivitiesVolume(t *testing.T) {
	t.Parallel() // its own fleet and stack; nothing it asserts depends on the machine being idle
	h := startSelfHealHarness(t, func(c *localfleet.ClusterConfig) {
		c.Volume = localfleet.VolumeConfig{SizeGiB: 100, UsedPercent: 85, Modifying: 300 * time.Millisecond, Optimizing: 500 * time.Millisecond}
	})
	ctx := context.Background()
	const broker = 1
	bin := activities.BrokerInput{Spec: h.spec, Broker: broker, Reason: "selfheal activity test"}
	host, _ := h.spec.Broker(broker)

	var disk activities.DiskState
	require.NoError(t, h.run(t, h.acts.DescribeDisk, bin, &disk))
	assert.NotEmpty(t, disk.VolumeID)
	assert.Equal(t, int32(100), disk.SizeGiB)
	assert.Empty(t, disk.Modification)
	assert.True(t, disk.ModificationStart.IsZero())
	assert.Equal(t, int64(100)<<30, disk.Filesystem.SizeBytes)
	assert.InDelta(t, 85, disk.Filesystem.Percent(), 1)

	plan := fleet.PlanExpansion(h.spec.Health, disk.SizeGiB, disk.Filesystem, 0)
	require.True(t, plan.Expand, plan.Reason)
	ein := activities.ExpandInput{Spec: h.spec, Broker: broker, TargetGiB: plan.ToGiB, Reason: plan.Reason}
	var change activities.VolumeChange
	require.NoError(t, h.run(t, h.acts.ExpandVolume, ein, &change))
	assert.Equal(t, activities.VolumeChange{VolumeID: disk.VolumeID, FromGiB: 100, ToGiB: plan.ToGiB}, change)
	var retry activities.VolumeChange
	require.NoError(t, h.run(t, h.acts.ExpandVolume, ein, &retry))
	assert.Equal(t, activities.VolumeChange{VolumeID: disk.VolumeID, FromGiB: 100, ToGiB: plan.ToGiB, AlreadyModified: true}, retry,
		"a retry after EBS accepted it modifies nothing")

	var state string
	require.NoError(t, h.run(t, h.acts.WaitVolumeModification, bin, &state))
	assert.Contains(t, []string{"optimizing", "completed"}, state)
	require.NoError(t, h.run(t, h.acts.GrowFilesystem, ein, nil))
	require.NoError(t, h.run(t, h.acts.GrowFilesystem, ein, nil), "growing a grown filesystem is a no-op")
	var after fleet.DiskUsage
	require.NoError(t, h.run(t, h.acts.VerifyFilesystem, ein, &after))
	assert.Equal(t, int64(plan.ToGiB)<<30, after.SizeBytes)
	assert.Less(t, after.Percent(), 80.0)

	vol, err := h.ec2.DescribeVolumeOf(ctx, host.InstanceID)
	require.NoError(t, err)
	assert.Equal(t, plan.ToGiB, vol.SizeGiB)
	m, err := metrics.Scrape(ctx, host.MetricsURL)
	require.NoError(t, err)
	assert.Equal(t, int64(plan.ToGiB)<<30, m.FilesystemSize, "the broker sees the grown filesystem")
	modified, grown := 0, 0
	for _, e := range h.fleet.Audit("local-a") {
		switch e.Kind {
		case localfleet.EventVolumeModified:
			modified++
		case localfleet.EventFilesystemGrown:
			grown++
		}
	}
	assert.Equal(t, 1, modified, "one ModifyVolume in all")
	assert.Equal(t, 1, grown, "one filesystem growth in all")

	// Inside the six-hour cool-down EBS refuses a second modification,
	// once the first has completed.
	require.Eventually(t, func() bool {
		mod, err := h.ec2.LatestModification(ctx, vol.ID)
		return err == nil && mod.State == cloud.ModificationCompleted
	}, 10*time.Second, 50*time.Millisecond)
	require.NoError(t, h.run(t, h.acts.DescribeDisk, bin, &disk))
	assert.Equal(t, "completed", disk.Modification)
	assert.WithinDuration(t, time.Now(), disk.ModificationStart, time.Minute)
	bigger := ein
	bigger.TargetGiB = plan.ToGiB + 50
	err = h.run(t, h.acts.ExpandVolume, bigger, nil)
	require.Error(t, err)
	assert.Equal(t, activities.ErrTypeVolumeCooldown, applicationErrorType(err), err.Error())
	vol, err = h.ec2.DescribeVolumeOf(ctx, host.InstanceID)
	require.NoError(t, err)
	assert.Equal(t, plan.ToGiB, vol.SizeGiB, "the refused modification changed nothing")

	too := ein
	too.TargetGiB = fleet.MaxVolumeGiB + 1
	err = h.run(t, h.acts.ExpandVolume, too, nil)
	assert.Equal(t, activities.ErrTypeBadInput, applicationErrorType(err))
}

// TestIntegrationSelfHealActivitiesThrottle throttles the tenant filling a
// broker's disk: the quota is set through the Kafka protocol, where
// DescribeClientQuotas shows it, and it caps the tenant's fill rate.
func TestIntegrationSelfHealActivitiesThrottle(t *testing.T) {
	t.Parallel() // its own fleet and stack; nothing it asserts depends on the machine being idle
	h := startSelfHealHarness(t)
	ctx := context.Background()
	const broker = 2
	const heavy, light = "wabash-58799", "ozark-11872"
	require.NoError(t, h.fleet.FillDiskBy("local-a", broker, 64<<20, heavy))
	require.NoError(t, h.fleet.FillDiskBy("local-a", broker, 8<<20, light))

	in := activities.ThrottleInput{Spec: h.spec, Broker: broker, Max: 1, Factor: 0.5, Reason: "disk 91% during cool-down"}
	var got []activities.Throttle
	require.NoError(t, h.run(t, h.acts.ThrottleHeaviestProducers, in, &got))
	require.Len(t, got, 1)
	assert.Equal(t, activities.Throttle{User: heavy, ObservedRate: 64 << 20, QuotaBytesPerSec: 32 << 20}, got[0])

	rate, set, err := h.acts.Quotas.ProducerQuota(ctx, h.spec, heavy)
	require.NoError(t, err)
	assert.True(t, set, "DescribeClientQuotas shows the quota")
	assert.InDelta(t, 32<<20, rate, 1)
	_, set, err = h.acts.Quotas.ProducerQuota(ctx, h.spec, light)
	require.NoError(t, err)
	assert.False(t, set, "only the heaviest tenant is throttled")

	vol, err := h.fleet.Volume("local-a", broker)
	require.NoError(t, err)
	assert.Equal(t, int64(32<<20), vol.ProduceBytesPerSec[heavy], "the quota caps the tenant's fill rate")
	assert.Equal(t, int64(8<<20), vol.ProduceBytesPerSec[light])

	// A second escalation halves it again, down to the floor; a quota at
	// or below what the throttle would set is never loosened.
	require.NoError(t, h.acts.Quotas.SetProducerQuota(ctx, h.spec, heavy, activities.MinProducerQuota))
	in.Max = 2
	require.NoError(t, h.run(t, h.acts.ThrottleHeaviestProducers, in, &got))
	require.Len(t, got, 2)
	assert.Equal(t, activities.Throttle{User: light, ObservedRate: 8 << 20, QuotaBytesPerSec: 4 << 20}, got[0])
	assert.Equal(t, activities.Throttle{User: heavy, ObservedRate: 1 << 20, QuotaBytesPerSec: activities.MinProducerQuota, Unchanged: true}, got[1])
	rate, _, err = h.acts.Quotas.ProducerQuota(ctx, h.spec, heavy)
	require.NoError(t, err)
	assert.InDelta(t, activities.MinProducerQuota, rate, 1)

	in.Factor = 1.5
	err = h.run(t, h.acts.ThrottleHeaviestProducers, in, nil)
	assert.Equal(t, activities.ErrTypeBadInput, applicationErrorType(err))
}
