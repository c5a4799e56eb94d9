package metrics_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/metrics"
)

// full is an exposition with every gauge, shaped as the JMX exporter and
// node exporter write it (untyped MBean attributes, extra labels, other
// mountpoints).
const full = `# HELP kafka_server_kafkaserver_brokerstate Attribute exposed for management
# TYPE kafka_server_kafkaserver_brokerstate untyped
kafka_server_kafkaserver_brokerstate 2.0
# TYPE kafka_log_logcleaner_deadthreadcount untyped
kafka_log_logcleaner_deadthreadcount 1.0
# TYPE kafka_log_logcleanermanager_time_since_last_run_ms untyped
kafka_log_logcleanermanager_time_since_last_run_ms 3600000.0
# TYPE kafka_log_logcleanermanager_uncleanable_partitions_count untyped
kafka_log_logcleanermanager_uncleanable_partitions_count{logDirectory="/var/lib/kafka/data"} 2.0
kafka_log_logcleanermanager_uncleanable_partitions_count{logDirectory="/var/lib/kafka/data2"} 1.0
# TYPE kafka_log_logmanager_remaininglogstorecover untyped
kafka_log_logmanager_remaininglogstorecover{dir="/var/lib/kafka/data"} 5.0
kafka_log_logmanager_remaininglogstorecover{dir="/var/lib/kafka/data2"} 2.0
# TYPE jvm_memory_bytes_used gauge
jvm_memory_bytes_used{area="heap"} 1.5e+09
jvm_memory_bytes_used{area="nonheap"} 1.2e+08
# TYPE jvm_memory_bytes_max gauge
jvm_memory_bytes_max{area="heap"} 6.442450944e+09
jvm_memory_bytes_max{area="nonheap"} -1
# TYPE node_filesystem_size_bytes gauge
node_filesystem_size_bytes{device="/dev/nvme0n1p1",fstype="ext4",mountpoint="/"} 8.589934592e+09
node_filesystem_size_bytes{device="/dev/nvme1n1",fstype="xfs",mountpoint="/var/lib/kafka"} 1.073741824e+11
# TYPE node_filesystem_avail_bytes gauge
node_filesystem_avail_bytes{device="/dev/nvme0n1p1",fstype="ext4",mountpoint="/"} 1e+09
node_filesystem_avail_bytes{device="/dev/nvme1n1",fstype="xfs",mountpoint="/var/lib/kafka"} 2.147483648e+10
`

// pools is the JMX exporter's memory-pool collector: G1's young pools have
// no max (-1); the old gen's max is the heap's.
const pools = `# TYPE jvm_memory_pool_bytes_used gauge
jvm_memory_pool_bytes_used{pool="CodeHeap 'non-nmethods'"} 1.5e+06
jvm_memory_pool_bytes_used{pool="G1 Eden Space"} 3.0e+08
jvm_memory_pool_bytes_used{pool="G1 Old Gen"} 1.1e+09
jvm_memory_pool_bytes_used{pool="G1 Survivor Space"} 1.0e+08
# TYPE jvm_memory_pool_bytes_max gauge
jvm_memory_pool_bytes_max{pool="CodeHeap 'non-nmethods'"} 5.8e+06
jvm_memory_pool_bytes_max{pool="G1 Eden Space"} -1
jvm_memory_pool_bytes_max{pool="G1 Old Gen"} 6.442450944e+09
jvm_memory_pool_bytes_max{pool="G1 Survivor Space"} -1
`

// produce is Strimzi's rule for kafka.server<type=Produce, user=U,
// client-id=C><>byte-rate: one sample per user and client id, and one
// without a user (no user quota configured for it).
const produce = `# TYPE kafka_server_produce_byte_rate gauge
kafka_server_produce_byte_rate{user="wabash-58799",client_id="orders-1"} 3.0e+06
kafka_server_produce_byte_rate{user="wabash-58799",client_id="orders-2"} 1.0e+06
kafka_server_produce_byte_rate{user="sequoia-12",client_id=""} 2048
kafka_server_produce_byte_rate{user="",client_id="legacy"} 512
`

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    metrics.BrokerMetrics
		missing []string // metric names the error must name
		wantErr bool     // any other error
	}{
		{
			name: "required gauges only: old gen is the heap, no produce rates",
			body: full,
			want: metrics.BrokerMetrics{
				BrokerState: metrics.BrokerRecovery, CleanerDeadThreads: 1, TimeSinceLastCleanMs: 3600000,
				UncleanablePartitions: 3, LogsLeftToRecover: 7, HeapUsed: 1.5e9, HeapMax: 6442450944,
				OldGenUsed: 1.5e9, OldGenMax: 6442450944,
				FilesystemSize: 107374182400, FilesystemAvail: 21474836480,
			},
		},
		{
			name: "with memory pools and produce rates",
			body: full + pools + produce,
			want: metrics.BrokerMetrics{
				BrokerState: metrics.BrokerRecovery, CleanerDeadThreads: 1, TimeSinceLastCleanMs: 3600000,
				UncleanablePartitions: 3, LogsLeftToRecover: 7, HeapUsed: 1.5e9, HeapMax: 6442450944,
				OldGenUsed: 1.1e9, OldGenMax: 6442450944,
				FilesystemSize: 107374182400, FilesystemAvail: 21474836480,
				ProduceByteRates: map[string]float64{"wabash-58799": 4e6, "sequoia-12": 2048},
			},
		},
		{
			name: "parallel collector, old gen max undefined",
			body: full + strings.ReplaceAll(strings.ReplaceAll(pools, "G1 Old Gen", "PS Old Gen"), "6.442450944e+09", "-1"),
			want: metrics.BrokerMetrics{
				BrokerState: metrics.BrokerRecovery, CleanerDeadThreads: 1, TimeSinceLastCleanMs: 3600000,
				UncleanablePartitions: 3, LogsLeftToRecover: 7, HeapUsed: 1.5e9, HeapMax: 6442450944,
				OldGenUsed: 1.1e9, OldGenMax: 6442450944,
				FilesystemSize: 107374182400, FilesystemAvail: 21474836480,
			},
		},
		{
			name: "no cleaner, no data mount",
			body: dropLines(full, "logcleaner", `mountpoint="/var/lib/kafka"`),
			missing: []string{metrics.NameCleanerDeadThreads, metrics.NameTimeSinceLastRunMs, metrics.NameUncleanablePartitions,
				metrics.NameFilesystemSize, metrics.NameFilesystemAvail},
		},
		{
			name:    "optional families do not stand in for required ones",
			body:    dropLines(full+pools+produce, "uncleanable", "jvm_memory_bytes_used"),
			missing: []string{metrics.NameUncleanablePartitions, metrics.NameJVMMemoryUsed},
		},
		{name: "empty", body: "", missing: []string{metrics.NameBrokerState, metrics.NameJVMMemoryUsed}},
		{name: "not an exposition", body: "<html>502 Bad Gateway</html>\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := metrics.Parse(strings.NewReader(tt.body))
			switch {
			case tt.wantErr:
				require.Error(t, err)
			case len(tt.missing) > 0:
				require.ErrorIs(t, err, metrics.ErrMissingMetric)
				for _, name := range tt.missing {
					assert.Contains(t, err.Error(), name)
				}
			default:
				require.NoError(t, err)
				assert.Equal(t, tt.want, got)
				assert.Equal(t, time.Hour, got.TimeSinceLastClean())
				assert.Equal(t, "RECOVERY", got.BrokerState.String())
			}
		})
	}
}

func TestScrape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metrics":
			_, _ = w.Write([]byte(full))
		default:
			http.Error(w, "exporter down", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(srv.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close() // its port now refuses connections

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	tests := []struct {
		name string
		url  string
		err  error
	}{
		{"served", srv.URL + "/metrics", nil},
		{"exporter down", srv.URL + "/down", metrics.ErrUnreachable},
		{"connection refused", closed.URL + "/metrics", metrics.ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := metrics.Scrape(ctx, tt.url)
			if tt.err != nil {
				require.True(t, errors.Is(err, tt.err), "got %v", err)
				assert.Contains(t, err.Error(), tt.url, "the error names the endpoint")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, metrics.BrokerRecovery, m.BrokerState)
		})
	}
}

func dropLines(s string, subs ...string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		keep := true
		for _, sub := range subs {
			if strings.Contains(line, sub) {
				keep = false
			}
		}
		if keep {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
