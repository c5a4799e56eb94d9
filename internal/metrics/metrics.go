// Package metrics scrapes a Kafka broker's Prometheus exposition (the JMX
// exporter's and the node exporter's, as served on each broker host) and
// reads the gauges kfleet's workflows decide on: broker state, log cleaner
// health, log recovery progress, heap, data disk and per-tenant produce
// rates.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metric names, as the JMX exporter (Strimzi's rules:
// kafka.<domain><type=T, name=N><>Value becomes kafka_<domain>_<t>_<n>,
// lower-cased) and the node exporter name them.
const (
	NameBrokerState        = "kafka_server_kafkaserver_brokerstate"
	NameCleanerDeadThreads = "kafka_log_logcleaner_deadthreadcount"
	NameTimeSinceLastRunMs = "kafka_log_logcleanermanager_time_since_last_run_ms"
	// NameUncleanablePartitions is kafka.log:type=LogCleanerManager,
	// name=uncleanable-partitions-count, one sample per logDirectory.
	NameUncleanablePartitions = "kafka_log_logcleanermanager_uncleanable_partitions_count"
	NameLogsToRecover         = "kafka_log_logmanager_remaininglogstorecover"
	NameJVMMemoryUsed         = "jvm_memory_bytes_used"
	NameJVMMemoryMax          = "jvm_memory_bytes_max"
	// NameJVMMemoryPoolUsed and NameJVMMemoryPoolMax are the JMX
	// exporter's memory-pool collector, one sample per pool.
	NameJVMMemoryPoolUsed = "jvm_memory_pool_bytes_used"
	NameJVMMemoryPoolMax  = "jvm_memory_pool_bytes_max"
	// NameProduceByteRate is kafka.server:type=Produce, user=U,
	// client-id=C, attribute byte-rate: what each client produces to this
	// broker, as the quota manager measures it.
	NameProduceByteRate = "kafka_server_produce_byte_rate"
	NameFilesystemSize  = "node_filesystem_size_bytes"
	NameFilesystemAvail = "node_filesystem_avail_bytes"
)

// Old-generation pool names, by garbage collector: the pool whose growth
// across collections is a leak. Kafka runs G1 by default.
const (
	poolG1OldGen       = "G1 Old Gen"
	poolParallelOldGen = "PS Old Gen"
	poolCMSOldGen      = "CMS Old Gen"
	poolSerialOldGen   = "Tenured Gen"
)

// DataMountpoint is where broker hosts mount the Kafka data volume; the
// filesystem gauges are read for it.
const DataMountpoint = "/var/lib/kafka"

// maxBody bounds a scrape; a broker's exposition is a few hundred KiB.
const maxBody = 16 << 20

// Errors callers can test with errors.Is.
var (
	// ErrUnreachable: the endpoint did not answer 200 (connection
	// refused, timeout, an exporter down with its process).
	ErrUnreachable = errors.New("metrics endpoint unreachable")
	// ErrMissingMetric: the exposition lacks a gauge kfleet needs.
	ErrMissingMetric = errors.New("missing metric")
)

// BrokerState is Kafka's BrokerState (kafka.server:type=KafkaServer,
// name=BrokerState).
type BrokerState int

// Kafka's BrokerState values.
const (
	BrokerNotRunning                BrokerState = 0
	BrokerStarting                  BrokerState = 1
	BrokerRecovery                  BrokerState = 2 // recovering from an unclean shutdown
	BrokerRunning                   BrokerState = 3
	BrokerPendingControlledShutdown BrokerState = 6
	BrokerShuttingDown              BrokerState = 7
	BrokerUnknown                   BrokerState = 127
)

func (s BrokerState) String() string {
	switch s {
	case BrokerNotRunning:
		return "NOT_RUNNING"
	case BrokerStarting:
		return "STARTING"
	case BrokerRecovery:
		return "RECOVERY"
	case BrokerRunning:
		return "RUNNING"
	case BrokerPendingControlledShutdown:
		return "PENDING_CONTROLLED_SHUTDOWN"
	case BrokerShuttingDown:
		return "SHUTTING_DOWN"
	}
	return fmt.Sprintf("UNKNOWN(%d)", int(s))
}

// BrokerMetrics are the gauges that matter, from one scrape.
type BrokerMetrics struct {
	BrokerState BrokerState
	// CleanerDeadThreads > 0 means compaction stopped: compacted topics
	// (and __consumer_offsets) grow without bound.
	CleanerDeadThreads int
	// TimeSinceLastCleanMs grows without bound when the cleaner is dead.
	TimeSinceLastCleanMs int64
	// UncleanablePartitions counts the partitions the cleaner gave up on
	// after an error, over every log directory: they are never compacted
	// again until the broker restarts, so they grow like a dead cleaner's.
	UncleanablePartitions int
	// LogsLeftToRecover > 0 while the broker recovers its logs: never
	// restart it then.
	LogsLeftToRecover int
	HeapUsed, HeapMax int64 // bytes
	// OldGenUsed and OldGenMax are the old-generation pool's (bytes): a
	// leak shows there first, since young collections hide nothing of it.
	// Not every exporter configuration has the memory-pool collector;
	// without it they are HeapUsed and HeapMax.
	OldGenUsed, OldGenMax int64
	// FilesystemSize and FilesystemAvail are the data volume's, at
	// DataMountpoint.
	FilesystemSize, FilesystemAvail int64
	// ProduceByteRates is what each user (tenant) produces to this broker,
	// in bytes per second, summed over its client ids; nil when the
	// exposition has no produce byte-rate samples. Samples without a user
	// (Kafka tags them so when no user quota is configured) are left out:
	// they cannot be attributed to a tenant.
	ProduceByteRates map[string]float64
}

// Scraper scrapes with Scrape; its method value satisfies the small
// interfaces consumers declare.
type Scraper struct{}

// Scrape fetches url and parses it; see the package-level Scrape.
func (Scraper) Scrape(ctx context.Context, url string) (BrokerMetrics, error) {
	return Scrape(ctx, url)
}

// Scrape fetches url and parses it (see Parse). An endpoint that does not
// answer 200 is ErrUnreachable.
func Scrape(ctx context.Context, url string) (BrokerMetrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return BrokerMetrics{}, fmt.Errorf("metrics: scrape %s: %w", url, err)
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return BrokerMetrics{}, fmt.Errorf("metrics: scrape %s: %w: %w", url, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return BrokerMetrics{}, fmt.Errorf("metrics: scrape %s: %w: HTTP %s", url, ErrUnreachable, resp.Status)
	}
	m, err := Parse(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return BrokerMetrics{}, fmt.Errorf("metrics: scrape %s: %w", url, err)
	}
	return m, nil
}

// Parse reads a Prometheus text exposition. Every gauge of BrokerMetrics
// must be present, except the optional ones (OldGenUsed and OldGenMax,
// which fall back to the heap's, and ProduceByteRates); the missing ones
// are reported together, each wrapping ErrMissingMetric.
func Parse(r io.Reader) (BrokerMetrics, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return BrokerMetrics{}, fmt.Errorf("parse exposition: %w", err)
	}
	var errs []error
	get := func(name string, labels ...string) float64 {
		v, err := value(fams, name, labels...)
		if err != nil {
			errs = append(errs, err)
		}
		return v
	}
	m := BrokerMetrics{
		BrokerState:           BrokerState(get(NameBrokerState)),
		CleanerDeadThreads:    int(get(NameCleanerDeadThreads)),
		TimeSinceLastCleanMs:  int64(get(NameTimeSinceLastRunMs)),
		UncleanablePartitions: int(get(NameUncleanablePartitions)),
		LogsLeftToRecover:     int(get(NameLogsToRecover)),
		HeapUsed:              int64(get(NameJVMMemoryUsed, "area", "heap")),
		HeapMax:               int64(get(NameJVMMemoryMax, "area", "heap")),
		FilesystemSize:        int64(get(NameFilesystemSize, "mountpoint", DataMountpoint)),
		FilesystemAvail:       int64(get(NameFilesystemAvail, "mountpoint", DataMountpoint)),
		ProduceByteRates:      byLabel(fams, NameProduceByteRate, "user"),
	}
	m.OldGenUsed, m.OldGenMax = oldGen(fams, m.HeapUsed, m.HeapMax)
	return m, errors.Join(errs...)
}

// oldGen reads the old-generation pool's used and max bytes, whichever
// collector's pool the JVM has; without the pool gauges it falls back to
// the heap's figures, and so does a pool max the JVM leaves undefined (-1).
func oldGen(fams map[string]*dto.MetricFamily, heapUsed, heapMax int64) (used, maxBytes int64) {
	for _, pool := range [...]string{poolG1OldGen, poolParallelOldGen, poolCMSOldGen, poolSerialOldGen} {
		u, err := value(fams, NameJVMMemoryPoolUsed, "pool", pool)
		if err != nil {
			continue
		}
		maxBytes = heapMax
		if mx, err := value(fams, NameJVMMemoryPoolMax, "pool", pool); err == nil && mx >= 0 {
			maxBytes = int64(mx)
		}
		return int64(u), maxBytes
	}
	return heapUsed, heapMax
}

// byLabel sums family name's samples by the value of label, leaving out
// samples without it; nil when no sample has it.
func byLabel(fams map[string]*dto.MetricFamily, name, label string) map[string]float64 {
	var out map[string]float64
	for _, m := range fams[name].GetMetric() {
		key := labelValue(m, label)
		v, ok := sampleValue(m)
		if key == "" || !ok {
			continue
		}
		if out == nil {
			out = map[string]float64{}
		}
		out[key] += v
	}
	return out
}

func labelValue(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

// TimeSinceLastClean is TimeSinceLastCleanMs as a duration.
func (m BrokerMetrics) TimeSinceLastClean() time.Duration {
	return time.Duration(m.TimeSinceLastCleanMs) * time.Millisecond
}

// value sums the samples of family name whose labels match (name, value
// pairs): a gauge with one sample per log dir (remainingLogsToRecover)
// counts them all, as a broker-wide figure should.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, error) {
	mf, ok := fams[name]
	if !ok {
		return 0, fmt.Errorf("%w: %s", ErrMissingMetric, name)
	}
	var sum float64
	found := false
	for _, m := range mf.GetMetric() {
		if !hasLabels(m, labels) {
			continue
		}
		if v, ok := sampleValue(m); ok {
			sum += v
			found = true
		}
	}
	if !found {
		return 0, fmt.Errorf("%w: %s%v", ErrMissingMetric, name, labels)
	}
	return sum, nil
}

// sampleValue is a gauge, untyped or counter sample's value.
func sampleValue(m *dto.Metric) (float64, bool) {
	switch {
	case m.Gauge != nil:
		return m.GetGauge().GetValue(), true
	case m.Untyped != nil:
		// The JMX exporter types most MBean attributes as untyped.
		return m.GetUntyped().GetValue(), true
	case m.Counter != nil:
		return m.GetCounter().GetValue(), true
	}
	return 0, false
}

func hasLabels(m *dto.Metric, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		ok := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == want[i] && lp.GetValue() == want[i+1] {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
