package localfleet

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The hosts model alone, on a hand-moved clock: no fleet, no servers.

type stepClock struct{ t time.Time }

func (c *stepClock) now() time.Time { return c.t }

func newTestHosts(t *testing.T, v VolumeConfig) (*hosts, *stepClock, string, string) {
	t.Helper()
	clock := &stepClock{t: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}
	cfg := Config{Clusters: []ClusterConfig{{ID: "c", Brokers: 2, Volume: v}}}.withDefaults()
	require.NoError(t, cfg.Validate())
	h := newHosts(cfg, clock.now)
	return h, clock, instanceID("c", 1), volumeID("c", 1)
}

func TestVolumeModificationStates(t *testing.T) {
	h, clock, _, vol := newTestHosts(t, VolumeConfig{Modifying: 10 * time.Second, Optimizing: 90 * time.Second})
	_, m, err := h.modify(vol, 200)
	require.NoError(t, err)
	start := m.start
	tests := []struct {
		after    time.Duration
		state    string
		progress int64
	}{
		{0, ModificationModifying, 0},
		{5 * time.Second, ModificationModifying, 5},
		{10 * time.Second, ModificationOptimizing, 10},
		{99 * time.Second, ModificationOptimizing, 99},
		{100 * time.Second, ModificationCompleted, 100},
		{time.Hour, ModificationCompleted, 100},
	}
	for _, tt := range tests {
		clock.t = start.Add(tt.after)
		v, err := h.volume(vol)
		require.NoError(t, err)
		assert.Equal(t, tt.state, v.lastMod.state, "after %s", tt.after)
		assert.Equal(t, tt.progress, v.lastMod.progress, "after %s", tt.after)
		if tt.state == ModificationCompleted {
			assert.Equal(t, start.Add(100*time.Second), v.lastMod.end)
		}
	}
}

func TestVolumeModifyRules(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(h *hosts, c *stepClock, vol string)
		size    int32
		want    error
	}{
		{"grow", nil, 200, nil},
		{"shrink", nil, 50, ErrVolumeShrink},
		{"same size", nil, 100, ErrVolumeSameSize},
		{"above gp3 maximum", nil, maxVolumeSizeGiB + 1, ErrVolumeTooLarge},
		{"while optimizing", func(h *hosts, c *stepClock, vol string) {
			_, _, _ = h.modify(vol, 150)
			c.t = c.t.Add(time.Minute)
		}, 200, ErrModificationInProgress},
		{"completed, within 6 hours", func(h *hosts, c *stepClock, vol string) {
			_, _, _ = h.modify(vol, 150)
			c.t = c.t.Add(6*time.Hour - time.Second)
		}, 200, ErrModificationRate},
		{"6 hours after the previous start", func(h *hosts, c *stepClock, vol string) {
			_, _, _ = h.modify(vol, 150)
			c.t = c.t.Add(6 * time.Hour)
		}, 200, nil},
		{"unknown volume", func(h *hosts, c *stepClock, vol string) {}, 200, ErrUnknownVolume},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, clock, _, vol := newTestHosts(t, VolumeConfig{Modifying: time.Second, Optimizing: 2 * time.Minute})
			if tt.prepare != nil {
				tt.prepare(h, clock, vol)
			}
			if errors.Is(tt.want, ErrUnknownVolume) {
				vol = "vol-00000000000000000"
			}
			before, _ := h.volume(vol)
			_, _, err := h.modify(vol, tt.size)
			if tt.want == nil {
				require.NoError(t, err)
				after, _ := h.volume(vol)
				assert.Equal(t, tt.size, after.sizeGiB)
				return
			}
			require.ErrorIs(t, err, tt.want)
			assert.Contains(t, err.Error(), vol, "the error names the volume")
			after, _ := h.volume(vol)
			assert.Equal(t, before.sizeGiB, after.sizeGiB, "a refused modification changes nothing")
		})
	}
}

func TestVolumeUsage(t *testing.T) {
	h, clock, inst, vol := newTestHosts(t, VolumeConfig{SizeGiB: 10, UsedPercent: 50, Modifying: time.Second, Optimizing: time.Second})
	step := func(d time.Duration) { clock.t = clock.t.Add(d) }
	tests := []struct {
		name string
		act  func()
		size int64
		used int64
	}{
		{"initial", func() {}, 10 * gib, 5 * gib},
		{"no growth by default", func() { step(time.Hour) }, 10 * gib, 5 * gib},
		{"fill at 1 GiB/s", func() { _, err := h.setRate(inst, "", gib); require.NoError(t, err); step(2 * time.Second) }, 10 * gib, 7 * gib},
		{"full stays full", func() { step(time.Hour) }, 10 * gib, 10 * gib},
		{"volume grown, filesystem not yet", func() {
			_, _, err := h.modify(vol, 20)
			require.NoError(t, err)
		}, 10 * gib, 10 * gib},
		{"filesystem grown: room again", func() {
			step(time.Second) // optimizing
			_, _, grown, err := h.growFilesystem(inst)
			require.NoError(t, err)
			require.True(t, grown)
			step(3 * time.Second)
		}, 20 * gib, 13 * gib},
	}
	for _, tt := range tests {
		tt.act()
		size, used, ok := h.usage(inst)
		require.True(t, ok, tt.name)
		assert.Equal(t, tt.size, size, tt.name)
		assert.Equal(t, tt.used, used, tt.name)
	}
	_, _, ok := h.usage("i-00000000000000000")
	assert.False(t, ok)
}

func TestVolumeConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		v    VolumeConfig
		err  string
	}{
		{"defaults", VolumeConfig{}, ""},
		{"too large", VolumeConfig{SizeGiB: maxVolumeSizeGiB + 1}, "volume.sizeGiB"},
		{"used over 100", VolumeConfig{UsedPercent: 101}, "volume.usedPercent"},
		{"negative growth", VolumeConfig{GrowthBytesPerSec: -1}, "volume.growthBytesPerSec"},
		{"negative timing", VolumeConfig{Optimizing: -time.Second}, "volume.modifying"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Config{Clusters: []ClusterConfig{{ID: "c", Volume: tt.v}}}.withDefaults().Validate()
			if tt.err == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.err)
		})
	}
}

func TestVolumeConfigYAML(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fleet.yaml")
	require.NoError(t, os.WriteFile(path, []byte(`clusters:
  - id: local-a
    volume: {sizeGiB: 500, usedPercent: 75, growthBytesPerSec: 1048576, modifying: 2s, optimizing: 1m}
`), 0o600))
	cfg, err := LoadConfig(path)
	require.NoError(t, err)
	assert.Equal(t, VolumeConfig{SizeGiB: 500, UsedPercent: 75, GrowthBytesPerSec: 1 << 20, Modifying: 2 * time.Second, Optimizing: time.Minute},
		cfg.Clusters[0].Volume)
}

// A broker's disk grows at the sum of its users' rates, each capped by the
// user's producer quota (its own, else the <default> user's), plus
// unattributed growth; a rate or quota change never rewrites the past.
func TestProduceQuotas(t *testing.T) {
	h, clock, inst1, _ := newTestHosts(t, VolumeConfig{SizeGiB: 1000, UsedPercent: 10})
	inst2 := instanceID("c", 2)
	quota := func(n int64) *int64 { return &n }
	steps := []struct {
		name    string
		act     func(t *testing.T)
		growth1 int64            // broker 1's growth rate afterwards
		produce map[string]int64 // broker 1's per-user rates afterwards
		growth2 int64
	}{
		{"unattributed growth", func(t *testing.T) {
			_, err := h.setRate(inst1, "", 100)
			require.NoError(t, err)
		}, 100, nil, 0},
		{"a tenant fills broker 1 and broker 2", func(t *testing.T) {
			eff, err := h.setRate(inst1, "wabash-58799", 400)
			require.NoError(t, err)
			assert.Equal(t, int64(400), eff, "no quota yet")
			_, err = h.setRate(inst2, "wabash-58799", 300)
			require.NoError(t, err)
		}, 500, map[string]int64{"wabash-58799": 400}, 300},
		{"its quota caps it on every broker", func(t *testing.T) {
			h.setProduceQuota("c", "wabash-58799", quota(100))
		}, 200, map[string]int64{"wabash-58799": 100}, 100},
		{"a quota on another cluster changes nothing", func(t *testing.T) {
			h.setProduceQuota("other", "wabash-58799", quota(1))
		}, 200, map[string]int64{"wabash-58799": 100}, 100},
		{"the default quota caps users without their own", func(t *testing.T) {
			eff, err := h.setRate(inst1, "sequoia-12", 1000)
			require.NoError(t, err)
			assert.Equal(t, int64(1000), eff)
			h.setProduceQuota("c", defaultQuotaUser, quota(50))
		}, 250, map[string]int64{"wabash-58799": 100, "sequoia-12": 50}, 100},
		{"lifting a user's quota leaves the default in force", func(t *testing.T) {
			h.setProduceQuota("c", "wabash-58799", nil)
		}, 200, map[string]int64{"wabash-58799": 50, "sequoia-12": 50}, 50},
		{"a quota above the rate changes nothing", func(t *testing.T) {
			h.setProduceQuota("c", "sequoia-12", quota(5000))
		}, 1150, map[string]int64{"wabash-58799": 50, "sequoia-12": 1000}, 50},
		{"a tenant that stops producing leaves no rate", func(t *testing.T) {
			_, err := h.setRate(inst1, "sequoia-12", 0)
			require.NoError(t, err)
		}, 150, map[string]int64{"wabash-58799": 50}, 50},
	}
	_, want1, _ := h.usage(inst1)
	for _, st := range steps {
		st.act(t)
		v1, err := h.dataVolumeOf(inst1)
		require.NoError(t, err)
		v2, err := h.dataVolumeOf(inst2)
		require.NoError(t, err)
		assert.Equal(t, st.growth1, v1.growth, st.name)
		assert.Equal(t, st.produce, v1.produce, st.name)
		assert.Equal(t, st.produce, h.produceRates(inst1), st.name)
		assert.Equal(t, st.growth2, v2.growth, st.name)

		clock.t = clock.t.Add(10 * time.Second)
		want1 += 10 * st.growth1
		_, used1, _ := h.usage(inst1)
		assert.Equal(t, want1, used1, "%s: 10s of growth at the rate in force", st.name)
	}
}
