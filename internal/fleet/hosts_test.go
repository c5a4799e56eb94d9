package fleet_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/fleet"
)

func TestInstanceFate(t *testing.T) {
	tests := []struct {
		state string
		want  fleet.HostFate
	}{
		{"running", fleet.HostUp},
		{"pending", fleet.HostStopped},
		{"stopping", fleet.HostStopped},
		{"stopped", fleet.HostStopped},
		{"shutting-down", fleet.HostGone},
		{"terminated", fleet.HostGone},
		{"not-found", fleet.HostGone},
		{"", fleet.HostGone},
	}
	for _, tt := range tests {
		t.Run(tt.state, func(t *testing.T) {
			assert.Equal(t, tt.want, fleet.InstanceFate(tt.state))
		})
	}
}

func TestChooseDataVolume(t *testing.T) {
	const old, replacement = "i-old", "i-new"
	detached := fleet.VolumeSighting{ID: "vol-1", State: "available", AZ: "us-east-1b", SizeGiB: 100}
	onOld := fleet.VolumeSighting{ID: "vol-1", State: "in-use", AZ: "us-east-1b", InstanceID: old, AttachState: "attached", SizeGiB: 100}
	onNew := fleet.VolumeSighting{ID: "vol-1", State: "in-use", AZ: "us-east-1b", InstanceID: replacement, AttachState: "attaching"}
	failed := fleet.VolumeSighting{ID: "vol-1", State: "error", AZ: "us-east-1b"}
	other := fleet.VolumeSighting{ID: "vol-2", State: "available", AZ: "us-east-1b"}
	elsewhere := fleet.VolumeSighting{ID: "vol-3", State: "in-use", InstanceID: "i-other", AttachState: "attached"}
	tests := []struct {
		name        string
		vols        []fleet.VolumeSighting
		replacement string
		want        string // the volume chosen; "" when lost
		ambiguous   bool
	}{
		{name: "terminated host: its volume survives detached", vols: []fleet.VolumeSighting{detached}, want: "vol-1"},
		{name: "stopped host: still attached to it", vols: []fleet.VolumeSighting{onOld}, want: "vol-1"},
		{name: "an earlier attempt attached it to the new host", vols: []fleet.VolumeSighting{onNew}, replacement: replacement, want: "vol-1"},
		{name: "the new host's wins over an available one", vols: []fleet.VolumeSighting{other, onNew}, replacement: replacement, want: "vol-1"},
		{name: "the old host's wins over an available one", vols: []fleet.VolumeSighting{other, onOld}, want: "vol-1"},
		{name: "deleted: lost", vols: nil},
		{name: "failed: lost", vols: []fleet.VolumeSighting{failed}},
		{name: "a failed one beside a survivor", vols: []fleet.VolumeSighting{failed, other}, want: "vol-2"},
		{name: "two available: a human tells", vols: []fleet.VolumeSighting{detached, other}, ambiguous: true},
		{name: "only on another host: a human tells", vols: []fleet.VolumeSighting{elsewhere}, ambiguous: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fleet.ChooseDataVolume(2, tt.vols, old, tt.replacement)
			if tt.ambiguous {
				require.ErrorIs(t, err, fleet.ErrVolumeAmbiguous)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want == "", got.Lost, got.Why)
			assert.Equal(t, tt.want, got.Volume.ID)
			assert.NotEmpty(t, got.Why)
		})
	}
}

func TestCatchUpFrom(t *testing.T) {
	tests := []struct {
		name  string
		first fleet.ByteSample
		now   time.Time
		bytes int64
		want  fleet.CatchUpPace
		ok    bool
	}{
		{"no sample yet", fleet.ByteSample{}, t0, 100, fleet.CatchUpPace{Bytes: 100}, false},
		{"nothing copied", fleet.ByteSample{At: t0, Bytes: 100}, t0.Add(time.Second), 100, fleet.CatchUpPace{Bytes: 100}, false},
		{"more written than copied", fleet.ByteSample{At: t0, Bytes: 100}, t0.Add(time.Second), 120, fleet.CatchUpPace{Bytes: 120}, false},
		{"1 GiB in 10 s, 4 GiB left", fleet.ByteSample{At: t0, Bytes: 5 << 30}, t0.Add(10 * time.Second), 4 << 30,
			fleet.CatchUpPace{Bytes: 4 << 30, BytesPerSec: 1 << 30 / 10, ETA: 40 * time.Second}, true},
		{"done", fleet.ByteSample{At: t0, Bytes: 100}, t0.Add(time.Second), 0, fleet.CatchUpPace{Bytes: 0, BytesPerSec: 100}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := fleet.CatchUpFrom(tt.first, tt.now, tt.bytes)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want.Bytes, got.Bytes)
			assert.InDelta(t, tt.want.BytesPerSec, got.BytesPerSec, 1)
			assert.Equal(t, tt.want.ETA, got.ETA)
		})
	}
}
