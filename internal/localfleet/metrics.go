package localfleet

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
)

// Each broker's metrics, in the Prometheus text exposition production
// scrapes from the host: the JMX exporter (javaagent in the Kafka JVM,
// Strimzi's rules: kafka.<domain><type=T, name=N><>Value becomes
// kafka_<domain>_<t>_<n>, lower-cased, '-' as '_'; plus the exporter's
// built-in jvm_* collectors) and the node exporter.
//
// GET /v1/clusters/{id}/brokers/{broker}/metrics serves both together.
// The JMX exporter lives and dies with the Kafka process, so while the
// process is down (stopped, crashed, failed) the endpoint answers 503, as
// a scrape of a dead exporter fails; Prometheus ignores a failed scrape's
// body. GET .../metrics/node serves the node exporter alone, which runs
// as long as the host does, so a down broker's disk stays observable; on a
// host that is not running (instances.go) it answers 503 too.

// Metric names (see the comment above for where each comes from).
const (
	MetricBrokerState           = "kafka_server_kafkaserver_brokerstate"
	MetricCleanerDeadThreads    = "kafka_log_logcleaner_deadthreadcount"
	MetricTimeSinceLastRunMs    = "kafka_log_logcleanermanager_time_since_last_run_ms"
	MetricUncleanablePartitions = "kafka_log_logcleanermanager_uncleanable_partitions_count"
	MetricLogsToRecover         = "kafka_log_logmanager_remaininglogstorecover"
	MetricJVMMemoryUsed         = "jvm_memory_bytes_used"
	MetricJVMMemoryMax          = "jvm_memory_bytes_max"
	MetricJVMMemoryPoolUsed     = "jvm_memory_pool_bytes_used"
	MetricJVMMemoryPoolMax      = "jvm_memory_pool_bytes_max"
	// Client quota sensors (quota_stats.go), one sample per user and
	// client id a quota counts together.
	MetricProduceByteRate     = "kafka_server_produce_byte_rate"
	MetricProduceThrottleTime = "kafka_server_produce_throttle_time"
	MetricFetchByteRate       = "kafka_server_fetch_byte_rate"
	MetricFetchThrottleTime   = "kafka_server_fetch_throttle_time"
	// Reassignment copy traffic (reassign_copy.go): the
	// ReassignmentBytesIn/OutPerSec meters' Count, and the replication
	// quotas' byte-rate (throttled replication traffic, here over the
	// last 1-second window).
	MetricReassignmentBytesIn         = "kafka_server_brokertopicmetrics_reassignmentbytesin_total"
	MetricReassignmentBytesOut        = "kafka_server_brokertopicmetrics_reassignmentbytesout_total"
	MetricFollowerReplicationByteRate = "kafka_server_followerreplication_byte_rate"
	MetricLeaderReplicationByteRate   = "kafka_server_leaderreplication_byte_rate"
	MetricFilesystemSize              = "node_filesystem_size_bytes"
	MetricFilesystemAvail             = "node_filesystem_avail_bytes"
)

// OldGenPool is the memory pool the heap model describes: Kafka runs G1,
// and its steady state and leaks live in the old generation.
const OldGenPool = "G1 Old Gen"

// DataMountpoint is where each broker host mounts its Kafka data volume.
const DataMountpoint = "/var/lib/kafka"

// Kafka's BrokerState values (org.apache.kafka.metadata.BrokerState;
// RECOVERY was RecoveringFromUncleanShutdown before 3.0). NOT_RUNNING (0)
// is never served: a process that does not run has no exporter.
const (
	brokerStateStarting                  = 1
	brokerStateRecovery                  = 2
	brokerStateRunning                   = 3
	brokerStatePendingControlledShutdown = 6
)

const (
	brokerStateHelp    = "Attribute exposed for management kafka.server<type=KafkaServer, name=BrokerState><>Value"
	nonHeapUsed        = 128 << 20
	dataDevice         = "/dev/nvme1n1"
	dataFSType         = "xfs"
	metricsUnavailable = "the broker's JMX exporter is down with its process (state %s)\n"
	hostUnavailable    = "no exporter answers: the broker's host (instance %s) is %s\n"
)

// kafkaBrokerState maps a lifecycle state to Kafka's BrokerState, and says
// whether the JVM (and so the JMX exporter) runs.
func kafkaBrokerState(s State) (value int, up bool) {
	switch s {
	case StateStarting:
		return brokerStateStarting, true
	case StateRecovering:
		return brokerStateRecovery, true
	case StateRunning:
		return brokerStateRunning, true
	case StateStopping:
		return brokerStatePendingControlledShutdown, true
	}
	return 0, false
}

// brokerMetrics builds the broker's metric families at now. jmx selects
// the JMX exporter's; the node exporter's are always included. down says
// why nothing answers, when nothing does: the process is down (and jmx is
// asked for) or the host is.
func (f *Fleet) brokerMetrics(cluster string, broker int32, jmx bool, now time.Time) (_ []*dto.MetricFamily, down string, _ error) {
	c, b, err := f.broker(cluster, broker)
	if err != nil {
		return nil, "", err
	}
	// A host that does not run has no exporter at all; its process is
	// down too (the instance faults crash it first).
	host := c.hostOf(b)
	if st := f.hosts.instanceState(host); st != InstanceRunning {
		return nil, fmt.Sprintf(hostUnavailable, host, st), nil
	}
	var fams []*dto.MetricFamily
	c.mu.Lock()
	state := b.state
	bs, up := kafkaBrokerState(state)
	if jmx && !up {
		c.mu.Unlock()
		return nil, fmt.Sprintf(metricsUnavailable, state), nil
	}
	if jmx {
		rt := &b.rt
		dead := 0
		if !rt.cleanerDiedAt.IsZero() {
			dead = 1
		}
		heapUsed := rt.heapUsed(now)
		fams = append(fams,
			gauge(MetricBrokerState, brokerStateHelp, float64(bs)),
			gauge(MetricCleanerDeadThreads,
				"Attribute exposed for management kafka.log<type=LogCleaner, name=DeadThreadCount><>Value", float64(dead)),
			gauge(MetricTimeSinceLastRunMs,
				"Attribute exposed for management kafka.log<type=LogCleanerManager, name=time-since-last-run-ms><>Value",
				float64(rt.sinceCleanerRun(now).Milliseconds())),
			gauge(MetricUncleanablePartitions,
				"Attribute exposed for management kafka.log<type=LogCleanerManager, name=uncleanable-partitions-count, logDirectory=...><>Value",
				float64(rt.uncleanable), "logDirectory", dataDir),
			gauge(MetricLogsToRecover,
				"Attribute exposed for management kafka.log<type=LogManager, name=remainingLogsToRecover, dir=...><>Value",
				float64(rt.recovery.logsLeft()), "dir", dataDir),
			gaugeFamily(MetricJVMMemoryUsed, "Used bytes of a given JVM memory area.",
				sample(float64(heapUsed), "area", "heap"),
				sample(nonHeapUsed, "area", "nonheap")),
			gaugeFamily(MetricJVMMemoryMax, "Max (bytes) of a given JVM memory area.",
				sample(float64(rt.heapMax), "area", "heap"),
				sample(-1, "area", "nonheap")),
			// The heap model is the old generation's: its steady state
			// and its leak (runtime.heapUsed).
			gauge(MetricJVMMemoryPoolUsed, "Used bytes of a given JVM memory pool.", float64(heapUsed), "pool", OldGenPool),
			gauge(MetricJVMMemoryPoolMax, "Max bytes of a given JVM memory pool.", float64(rt.heapMax), "pool", OldGenPool),
		)
		in, out, thrIn, thrOut := c.reassignmentMeterLocked(b.id)
		fams = append(fams,
			counter(MetricReassignmentBytesIn,
				"Attribute exposed for management kafka.server<type=BrokerTopicMetrics, name=ReassignmentBytesInPerSec><>Count", in),
			counter(MetricReassignmentBytesOut,
				"Attribute exposed for management kafka.server<type=BrokerTopicMetrics, name=ReassignmentBytesOutPerSec><>Count", out),
			gauge(MetricFollowerReplicationByteRate, "Attribute exposed for management kafka.server<type=FollowerReplication><>byte-rate", thrIn),
			gauge(MetricLeaderReplicationByteRate, "Attribute exposed for management kafka.server<type=LeaderReplication><>byte-rate", thrOut),
		)
	}
	c.mu.Unlock()

	// Outside c.mu: the hosts model and the quota sensors have their own
	// locks. Sensors measure real clients, so on the real clock.
	if jmx {
		fams = append(fams, b.proxy.quota.quotaFamilies(f.hosts.produceRates(host), time.Now())...)
	}
	if size, used, ok := f.hosts.usage(host); ok {
		labels := []string{"device", dataDevice, "fstype", dataFSType, "mountpoint", DataMountpoint}
		fams = append(fams,
			gauge(MetricFilesystemSize, "Filesystem size in bytes.", float64(size), labels...),
			gauge(MetricFilesystemAvail, "Filesystem space available to non-root users in bytes.", float64(max(size-used, 0)), labels...),
		)
	}
	return fams, "", nil
}

func gauge(name, help string, v float64, labels ...string) *dto.MetricFamily {
	return gaugeFamily(name, help, sample(v, labels...))
}

func counter(name, help string, v float64) *dto.MetricFamily {
	return &dto.MetricFamily{Name: proto.String(name), Help: proto.String(help), Type: dto.MetricType_COUNTER.Enum(),
		Metric: []*dto.Metric{{Counter: &dto.Counter{Value: proto.Float64(v)}}}}
}

func gaugeFamily(name, help string, metrics ...*dto.Metric) *dto.MetricFamily {
	return &dto.MetricFamily{Name: proto.String(name), Help: proto.String(help), Type: dto.MetricType_GAUGE.Enum(), Metric: metrics}
}

// sample is one gauge sample; labels are name, value pairs.
func sample(v float64, labels ...string) *dto.Metric {
	m := &dto.Metric{Gauge: &dto.Gauge{Value: proto.Float64(v)}}
	for i := 0; i+1 < len(labels); i += 2 {
		m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(labels[i]), Value: proto.String(labels[i+1])})
	}
	return m
}

// metricsHandler serves GET /v1/clusters/{id}/brokers/{broker}/metrics and
// .../metrics/node (see the comment at the top of this file).
func (f *Fleet) metricsHandler(jmx bool) http.HandlerFunc {
	return f.withCluster(func(w http.ResponseWriter, r *http.Request, id string) {
		n, err := strconv.ParseInt(r.PathValue("broker"), 10, 32)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "broker must be an integer id"})
			return
		}
		fams, down, err := f.brokerMetrics(id, int32(n), jmx, time.Now())
		if err != nil {
			writeError(w, err)
			return
		}
		if down != "" {
			http.Error(w, down, http.StatusServiceUnavailable)
			return
		}
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range fams {
			if err := enc.Encode(mf); err != nil {
				writeError(w, fmt.Errorf("localfleet: cluster %q: broker %d: encode metrics: %w", id, n, err))
				return
			}
		}
		w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		_, _ = w.Write(buf.Bytes())
	})
}

// MetricsURL is the broker's metrics endpoint on the fleet's HTTP server.
func (f *Fleet) MetricsURL(cluster string, broker int32) string {
	return fmt.Sprintf("%s/v1/clusters/%s/brokers/%d/metrics", f.baseURL(), cluster, broker)
}
