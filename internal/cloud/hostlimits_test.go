package cloud_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
)

func TestParseHostLimits(t *testing.T) {
	tests := []struct {
		name    string
		stdout  string
		want    cloud.HostLimits
		errs    []string // substrings the error must contain; none: no error
		notErrs []string // substrings it must not contain
	}{
		{
			name: "every key",
			stdout: "vm.max_map_count=65530\nfs.file-max=9223372036854775807\nnofile=100000\n" +
				"segments=36000\nmaps=72011\nopen_files=55024\n",
			want: cloud.HostLimits{MaxMapCount: 65530, FileMax: math.MaxInt64, Nofile: 100000, Segments: 36000, Maps: 72011, OpenFiles: 55024},
		},
		{
			name:   "process down, unknown keys and noise ignored, spaces and CRLF tolerated",
			stdout: "kfleet-HostLimits v2\r\n vm.max_map_count = 262144\r\nnofile=infinity\nsegments=0\nmaps=0\nopen_files=0\nswappiness=60\n\n",
			want:   cloud.HostLimits{MaxMapCount: 262144, Nofile: math.MaxInt64},
		},
		{
			name:   "optional keys absent",
			stdout: "vm.max_map_count=65530\nnofile=4096\nsegments=12\n",
			want:   cloud.HostLimits{MaxMapCount: 65530, Nofile: 4096, Segments: 12},
		},
		{
			name:    "required keys missing, named together",
			stdout:  "fs.file-max=100\nmaps=3\n",
			errs:    []string{"vm.max_map_count", "nofile", "segments"},
			notErrs: []string{"fs.file-max", "maps"},
		},
		{
			name:   "bad numbers",
			stdout: "vm.max_map_count=lots\nnofile=-1\nsegments=12\nmaps=1e3\n",
			errs:   []string{`vm.max_map_count="lots"`, `nofile="-1"`, `maps="1e3"`},
		},
		{name: "empty", stdout: "", errs: []string{"missing vm.max_map_count, nofile, segments"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := cloud.ParseHostLimits(tt.stdout)
			if len(tt.errs) == 0 {
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				return
			}
			require.ErrorIs(t, err, cloud.ErrBadHostLimits)
			for _, s := range tt.errs {
				assert.ErrorContains(t, err, s)
			}
			for _, s := range tt.notErrs {
				assert.NotContains(t, err.Error(), s)
			}
			assert.Zero(t, got, "no partial result on error")
		})
	}
}

// kfleet-HostLimits through the product's SSM runner against the local
// fleet, read back with ParseHostLimits.
func TestIntegrationHostLimitsDocument(t *testing.T) {
	f, cfg := startFleet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	broker := f.Endpoints().Clusters["local-a"].Brokers[0]
	run := cloud.NewSSM(cfg, f.Endpoints().AWS.Endpoint)

	res, err := run.RunDocument(ctx, broker.InstanceID, cloud.DocHostLimits, nil, "diagnose/test", func() {})
	require.NoError(t, err)
	l, err := cloud.ParseHostLimits(res.Stdout)
	require.NoError(t, err, res.Stdout)
	assert.Equal(t, int64(65530), l.MaxMapCount)
	assert.Equal(t, int64(math.MaxInt64), l.FileMax)
	assert.Positive(t, l.Nofile)
	assert.Positive(t, l.Segments)
	assert.Equal(t, 2*int64(l.Segments), l.Maps, "2 maps per segment while the broker runs")
	assert.Positive(t, l.OpenFiles)

	require.NoError(t, f.Crash(ctx, "local-a", broker.ID, "test"))
	res, err = run.RunDocument(ctx, broker.InstanceID, cloud.DocHostLimits, nil, "diagnose/test", func() {})
	require.NoError(t, err)
	down, err := cloud.ParseHostLimits(res.Stdout)
	require.NoError(t, err, res.Stdout)
	assert.Equal(t, l.Segments, down.Segments, "segments stay on disk")
	assert.Zero(t, down.Maps, "no process, no maps")
	assert.Zero(t, down.OpenFiles)
}
