package fleet_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/fleet"
)

const gib = int64(1) << 30

func TestPlanExpansion(t *testing.T) {
	p := fleet.HealthPolicy{}
	cases := []struct {
		name    string
		sizeGiB int32
		used    int64 // GiB, filesystem = volume size
		growth  float64
		expand  bool
		toGiB   int32
		reason  string
	}{
		{name: "below threshold, not growing", sizeGiB: 100, used: 50, expand: false, reason: "no expansion needed"},
		{name: "at 80%, not growing: the minimum step", sizeGiB: 100, used: 80, expand: true, toGiB: 110, reason: "80.0% used"},
		{name: "minimum step is 10% of a large volume", sizeGiB: 1000, used: 850, expand: true, toGiB: 1100},
		{
			// 85 GiB used + 1 MiB/s for 6 h (21.1 GiB) = 106.1 GiB must be
			// under 80%: 132.7 GiB, rounded up.
			name: "sized for the cool-down at the observed growth", sizeGiB: 100, used: 85, growth: 1 << 20,
			expand: true, toGiB: 133,
		},
		{
			// 70 GiB used, 10 GiB to go at 1 MiB/s: 80% in 2.8 h, inside
			// the 6 h cool-down.
			name: "forecast to cross within the cool-down", sizeGiB: 100, used: 70, growth: 1 << 20,
			expand: true, toGiB: 114, reason: "within the 6h0m0s cool-down",
		},
		{name: "forecast beyond the cool-down", sizeGiB: 100, used: 70, growth: 100 << 10, expand: false},
		{name: "at the maximum size", sizeGiB: fleet.MaxVolumeGiB, used: int64(fleet.MaxVolumeGiB) * 9 / 10, expand: false, reason: "cannot grow"},
		{name: "never beyond the maximum", sizeGiB: fleet.MaxVolumeGiB - 5, used: int64(fleet.MaxVolumeGiB - 100), expand: true, toGiB: fleet.MaxVolumeGiB},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := fleet.DiskUsage{SizeBytes: int64(tc.sizeGiB) * gib, UsedBytes: tc.used * gib}
			plan := fleet.PlanExpansion(p, tc.sizeGiB, d, tc.growth)
			assert.Equal(t, tc.expand, plan.Expand, plan.Reason)
			if tc.expand {
				assert.Equal(t, tc.toGiB, plan.ToGiB)
				assert.Greater(t, plan.ToGiB, tc.sizeGiB, "never shrinks")
			}
			assert.Contains(t, plan.Reason, tc.reason)
		})
	}
}

func TestExpansionSizeKeepsTheDiskUnderThresholdForACooldown(t *testing.T) {
	p := fleet.HealthPolicy{}.WithDefaults()
	for _, growth := range []float64{0, 1 << 10, 1 << 20, 50 << 20} {
		used := 90 * gib
		to := fleet.ExpansionSize(p, 100, used, growth)
		atEnd := float64(used) + growth*p.VolumeCooldown.Seconds()
		assert.LessOrEqual(t, atEnd, float64(int64(to)*gib)*p.DiskExpandPercent/100, "growth %g", growth)
	}
}

func TestGrowthRate(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	s := func(sec int, used int64) fleet.DiskSample {
		return fleet.DiskSample{At: t0.Add(time.Duration(sec) * time.Second), UsedBytes: used}
	}
	assert.Zero(t, fleet.GrowthRate(nil))
	assert.Zero(t, fleet.GrowthRate([]fleet.DiskSample{s(0, 10)}))
	assert.InDelta(t, 100, fleet.GrowthRate([]fleet.DiskSample{s(0, 0), s(5, 300), s(10, 1000)}), 0.001)
	assert.Zero(t, fleet.GrowthRate([]fleet.DiskSample{s(0, 1000), s(10, 0)}), "retention deleting is no growth")
}

func TestHeapClimbing(t *testing.T) {
	t0 := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	const heapMax = 6 * gib
	series := func(step time.Duration, used ...int64) []fleet.HeapSample {
		out := make([]fleet.HeapSample, len(used))
		for i, u := range used {
			out[i] = fleet.HeapSample{At: t0.Add(time.Duration(i) * step), Used: u, Max: heapMax}
		}
		return out
	}
	pct := func(p float64) int64 { return int64(p * float64(heapMax) / 100) }
	cases := []struct {
		name    string
		samples []fleet.HeapSample
		leaking bool
	}{
		{"steady", series(time.Minute, pct(30), pct(30), pct(30), pct(30)), false},
		{"too few ticks", series(time.Minute, pct(30), pct(35), pct(40)), false},
		{"climbing 5%/min: full in 11 min", series(time.Minute, pct(30), pct(35), pct(40), pct(45)), true},
		{"a full GC broke the climb", series(time.Minute, pct(30), pct(35), pct(31), pct(36), pct(41)), false},
		{"climbing too slowly to matter within the horizon", series(time.Minute, pct(30), pct(30.1), pct(30.2), pct(30.3)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reason, leaking := fleet.HeapClimbing(fleet.HealthPolicy{}, tc.samples)
			assert.Equal(t, tc.leaking, leaking, reason)
			if leaking {
				assert.Contains(t, reason, "full in")
			}
		})
	}
}

func TestCleanerUnhealthy(t *testing.T) {
	cases := []struct {
		name   string
		c      fleet.CleanerHealth
		reason string
	}{
		{"healthy", fleet.CleanerHealth{SinceLastRun: 10 * time.Second}, ""},
		{"dead thread", fleet.CleanerHealth{DeadThreads: 1, SinceLastRun: 3 * time.Minute}, "thread(s) dead"},
		{"stale", fleet.CleanerHealth{SinceLastRun: 2 * time.Hour}, "has not run for 2h0m0s"},
		{"uncleanable", fleet.CleanerHealth{Uncleanable: 2}, "2 partition(s) marked uncleanable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reason, bad := fleet.CleanerUnhealthy(fleet.HealthPolicy{}, tc.c)
			assert.Equal(t, tc.reason != "", bad)
			assert.Contains(t, reason, tc.reason)
		})
	}
}

func TestHealthPolicyValidate(t *testing.T) {
	require.NoError(t, fleet.HealthPolicy{}.Validate())
	assert.ErrorContains(t, fleet.HealthPolicy{DiskExpandPercent: 92}.Validate(), "must be above")
	assert.ErrorContains(t, fleet.HealthPolicy{Interval: time.Millisecond}.Validate(), "at least 100ms")
	assert.ErrorContains(t, fleet.HealthPolicy{RecoveryGrace: -time.Second}.Validate(), "negative")
	assert.ErrorContains(t, fleet.HealthPolicy{FencingPoll: 10 * time.Millisecond}.Validate(), "fencingPoll 10ms: want at least 100ms")
	assert.ErrorContains(t, fleet.HealthPolicy{FencingPoll: -time.Second}.Validate(), "negative")
	assert.Equal(t, fleet.BrokerHeartbeatInterval, fleet.HealthPolicy{}.WithDefaults().FencingPoll, "KRaft sensing polls at the heartbeat interval")
	s := spec3()
	s.Health.DiskEscalatePercent = 150
	assert.ErrorContains(t, s.Validate(), "below 100")
}

func TestClassifyCrash(t *testing.T) {
	cases := []struct {
		name  string
		lines []string
		cause fleet.CrashCause
	}{
		{"map failed", []string{"INFO starting", "ERROR Error while loading log dir", "java.io.IOException: Map failed", "\tat kafka.log.AbstractIndex.resize"}, fleet.CauseMapFailed},
		{"open files", []string{"ERROR There was an error in one of the threads during logs loading: java.io.IOException: Too many open files"}, fleet.CauseTooManyOpenFiles},
		{"heap", []string{"ERROR Unexpected error", "java.lang.OutOfMemoryError: Java heap space"}, fleet.CauseOutOfMemory},
		{"the newest failure wins", []string{"java.lang.OutOfMemoryError: Java heap space", "INFO started", "java.io.IOException: Map failed"}, fleet.CauseMapFailed},
		{"nothing known", []string{"INFO [KafkaServer id=1] shutting down"}, fleet.CauseUnknown},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cause, evidence := fleet.ClassifyCrash(tc.lines)
			assert.Equal(t, tc.cause, cause)
			if cause != fleet.CauseUnknown {
				require.NotEmpty(t, evidence)
			}
		})
	}
	long := strings.Repeat("x", 5000) + " java.io.IOException: Map failed"
	_, ev := fleet.ClassifyCrash([]string{long})
	assert.Less(t, len(ev[0]), 400, "evidence is cut short")
}

func TestFixFor(t *testing.T) {
	// 36,044 segments need 72,088 maps, over the default 65,530.
	fix, ok := fleet.FixFor(fleet.CauseMapFailed, 36044, 65530, 100000)
	require.True(t, ok)
	assert.Equal(t, fleet.LimitMaxMapCount, fix.Name)
	assert.GreaterOrEqual(t, fix.To, int64(36044*2*3/2), "covers the maps with headroom")
	assert.Equal(t, int64(262144), fix.To, "Kafka's recommended floor")

	fix, ok = fleet.FixFor(fleet.CauseMapFailed, 200000, 262144, 100000)
	require.True(t, ok)
	assert.Equal(t, int64(655360), fix.To, "600,000 maps rounded up to 64 Ki")

	_, ok = fleet.FixFor(fleet.CauseMapFailed, 1000, 262144, 100000)
	assert.False(t, ok, "the limit already covers the segments: nothing to raise")

	fix, ok = fleet.FixFor(fleet.CauseTooManyOpenFiles, 100000, 0, 100000)
	require.True(t, ok)
	assert.Equal(t, fleet.LimitNofile, fix.Name)
	assert.Greater(t, fix.To, int64(150000))

	_, ok = fleet.FixFor(fleet.CauseOutOfMemory, 100000, 65530, 100000)
	assert.False(t, ok, "no limit fixes a heap")
}

func TestBytes(t *testing.T) {
	assert.Equal(t, "512 B", fleet.Bytes(512))
	assert.Equal(t, "1.5 KiB", fleet.Bytes(1536))
	assert.Equal(t, "6.0 GiB", fleet.Bytes(6*gib))
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB", 3 << 40: "3.0 TiB"} {
		assert.Equal(t, want, fleet.Bytes(n))
	}
}
