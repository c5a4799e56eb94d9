package localfleet_test

import (
	"net/http"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/localfleet"
)

// Each broker serves the names production's JMX exporter and node
// exporter use, with their labels.
func TestIntegrationBrokerMetricsExposition(t *testing.T) {
	t.Parallel()
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")}})
	url := f.Endpoints().Clusters["local-a"].Brokers[1].MetricsURL
	require.Equal(t, f.MetricsURL("local-a", 2), url)

	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, resp.Header.Get("Content-Type"), "text/plain; version=0.0.4")
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)

	tests := []struct {
		name   string
		labels map[string]string
		want   float64 // -1: any value
	}{
		{localfleet.MetricBrokerState, nil, 3},
		{localfleet.MetricCleanerDeadThreads, nil, 0},
		{localfleet.MetricTimeSinceLastRunMs, nil, -1},
		{localfleet.MetricLogsToRecover, map[string]string{"dir": "/var/lib/kafka/data"}, 0},
		{localfleet.MetricJVMMemoryUsed, map[string]string{"area": "heap"}, -1},
		{localfleet.MetricJVMMemoryMax, map[string]string{"area": "heap"}, 6 << 30},
		{localfleet.MetricUncleanablePartitions, map[string]string{"logDirectory": "/var/lib/kafka/data"}, 0},
		{localfleet.MetricJVMMemoryPoolUsed, map[string]string{"pool": localfleet.OldGenPool}, -1},
		{localfleet.MetricJVMMemoryPoolMax, map[string]string{"pool": localfleet.OldGenPool}, 6 << 30},
		{localfleet.MetricFilesystemSize, map[string]string{"mountpoint": localfleet.DataMountpoint}, -1},
		{localfleet.MetricFilesystemAvail, map[string]string{"mountpoint": localfleet.DataMountpoint}, -1},
	}
	_, produces := fams[localfleet.MetricProduceByteRate]
	assert.False(t, produces, "no tenant produces yet: no produce byte-rate samples")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mf, ok := fams[tt.name]
			require.True(t, ok, "served")
			found := false
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, lp := range m.GetLabel() {
					labels[lp.GetName()] = lp.GetValue()
				}
				match := true
				for k, v := range tt.labels {
					match = match && labels[k] == v
				}
				if match {
					found = true
					if tt.want >= 0 {
						assert.Equal(t, tt.want, m.GetGauge().GetValue())
					}
				}
			}
			assert.True(t, found, "sample with labels %v", tt.labels)
		})
	}
}
