package fleet

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// HealthPolicy holds the thresholds of a cluster's health loop and
// self-healing (OPERATIONS.md "Volume expansion", the cleaner and quota-leak
// stories). The zero value of each field means its default (WithDefaults).
type HealthPolicy struct {
	// Interval is the time between two health ticks. Default 1 min.
	Interval time.Duration `json:"interval,omitempty" yaml:"interval,omitempty"`
	// DiskExpandPercent triggers a volume expansion. Default 80.
	DiskExpandPercent float64 `json:"diskExpandPercent,omitempty" yaml:"diskExpandPercent,omitempty"`
	// DiskEscalatePercent, reached while a volume cannot be modified
	// (cool-down), throttles the heaviest tenants and pages. Default 90.
	DiskEscalatePercent float64 `json:"diskEscalatePercent,omitempty" yaml:"diskEscalatePercent,omitempty"`
	// VolumeCooldown is EBS's one-modification-per-volume window. Default
	// 6 h; only tests change it.
	VolumeCooldown time.Duration `json:"volumeCooldown,omitempty" yaml:"volumeCooldown,omitempty"`
	// MinExpansionGiB and MinExpansionPercent are the smallest growth of a
	// volume worth one modification: max(10 GiB, 10%) by default.
	MinExpansionGiB     int32   `json:"minExpansionGiB,omitempty" yaml:"minExpansionGiB,omitempty"`
	MinExpansionPercent float64 `json:"minExpansionPercent,omitempty" yaml:"minExpansionPercent,omitempty"`
	// CleanerStaleAfter is how long the log cleaner may not have run before
	// it counts as stuck, even with no dead thread. Default 1 h (a live
	// cleaner wakes every 15 s).
	CleanerStaleAfter time.Duration `json:"cleanerStaleAfter,omitempty" yaml:"cleanerStaleAfter,omitempty"`
	// HeapClimbTicks is how many consecutive ticks old-gen use must rise
	// before it counts as a leak. Default 3.
	HeapClimbTicks int `json:"heapClimbTicks,omitempty" yaml:"heapClimbTicks,omitempty"`
	// HeapHorizon: a climbing heap forecast to fill within it is restarted
	// now, before it falls over. Default 2 h.
	HeapHorizon time.Duration `json:"heapHorizon,omitempty" yaml:"heapHorizon,omitempty"`
	// RecoveryGrace is how long a lost broker may take to register again
	// by itself before a recovery starts. Default 15 s.
	RecoveryGrace time.Duration `json:"recoveryGrace,omitempty" yaml:"recoveryGrace,omitempty"`
	// SensingHeartbeat is how long the sensing of a cluster whose worker
	// died may go unnoticed before another worker takes it over: the
	// sensing activity's heartbeat timeout. Its heartbeats are most of
	// what an idle cluster costs (SensingBeat). Default 5 min.
	SensingHeartbeat time.Duration `json:"sensingHeartbeat,omitempty" yaml:"sensingHeartbeat,omitempty"`
	// FencingPoll is how often the sensing of a KRaft cluster asks for its
	// brokers' fencing (it has no ZooKeeper watch to block on): about the
	// brokers' heartbeat interval, so that a crash is reported within
	// BrokerSessionTimeout + UncleanLossSlack. Default
	// BrokerHeartbeatInterval; tests with fast timing shorten it.
	FencingPoll time.Duration `json:"fencingPoll,omitempty" yaml:"fencingPoll,omitempty"`
	// Disabled turns the health loop off (losses still start recoveries).
	Disabled bool `json:"disabled,omitempty" yaml:"disabled,omitempty"`
}

// Defaults of HealthPolicy.
const (
	DefaultHealthInterval      = time.Minute
	DefaultDiskExpandPercent   = 80
	DefaultDiskEscalatePercent = 90
	// DefaultVolumeCooldown is EBS's rule: one modification per volume
	// every 6 hours.
	DefaultVolumeCooldown      = 6 * time.Hour
	DefaultMinExpansionGiB     = 10
	DefaultMinExpansionPercent = 10
	DefaultCleanerStaleAfter   = time.Hour
	DefaultHeapClimbTicks      = 3
	DefaultHeapHorizon         = 2 * time.Hour
	DefaultRecoveryGrace       = 15 * time.Second
	DefaultSensingHeartbeat    = 5 * time.Minute
	// MaxVolumeGiB is gp3's (and io2's) largest size.
	MaxVolumeGiB = 16384
)

// WithDefaults fills every zero field with its default.
func (p HealthPolicy) WithDefaults() HealthPolicy {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&p.Interval, DefaultHealthInterval)
	def(&p.VolumeCooldown, DefaultVolumeCooldown)
	def(&p.CleanerStaleAfter, DefaultCleanerStaleAfter)
	def(&p.HeapHorizon, DefaultHeapHorizon)
	def(&p.RecoveryGrace, DefaultRecoveryGrace)
	def(&p.SensingHeartbeat, DefaultSensingHeartbeat)
	def(&p.FencingPoll, BrokerHeartbeatInterval)
	if p.DiskExpandPercent <= 0 {
		p.DiskExpandPercent = DefaultDiskExpandPercent
	}
	if p.DiskEscalatePercent <= 0 {
		p.DiskEscalatePercent = DefaultDiskEscalatePercent
	}
	if p.MinExpansionGiB <= 0 {
		p.MinExpansionGiB = DefaultMinExpansionGiB
	}
	if p.MinExpansionPercent <= 0 {
		p.MinExpansionPercent = DefaultMinExpansionPercent
	}
	if p.HeapClimbTicks <= 0 {
		p.HeapClimbTicks = DefaultHeapClimbTicks
	}
	return p
}

// SensingBeat is how often sensing heartbeats under the heartbeat timeout
// SensingHeartbeat: a minute before it runs out, and at least twice in it
// (a heartbeat's RPC needs seconds at worst, not a minute).
func (p HealthPolicy) SensingBeat() time.Duration {
	t := p.WithDefaults().SensingHeartbeat
	return max(t/2, t-time.Minute)
}

// Validate rejects thresholds that cannot work together.
func (p HealthPolicy) Validate() error {
	var errs []error
	if p.Interval < 0 || p.VolumeCooldown < 0 || p.CleanerStaleAfter < 0 || p.HeapHorizon < 0 || p.RecoveryGrace < 0 || p.SensingHeartbeat < 0 || p.FencingPoll < 0 {
		errs = append(errs, errors.New("health: durations must not be negative"))
	}
	if p.Interval > 0 && p.Interval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("health.interval %s: want at least 100ms", p.Interval))
	}
	if p.FencingPoll > 0 && p.FencingPoll < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("health.fencingPoll %s: want at least 100ms", p.FencingPoll))
	}
	if p.SensingHeartbeat > 0 && p.SensingHeartbeat < 2*time.Second {
		errs = append(errs, fmt.Errorf("health.sensingHeartbeat %s: want at least 2s", p.SensingHeartbeat))
	}
	d := p.WithDefaults()
	if d.DiskExpandPercent >= 100 || d.DiskEscalatePercent > 100 {
		errs = append(errs, errors.New("health: disk percentages must be below 100"))
	}
	if d.DiskEscalatePercent <= d.DiskExpandPercent {
		errs = append(errs, fmt.Errorf("health.diskEscalatePercent %g must be above diskExpandPercent %g", d.DiskEscalatePercent, d.DiskExpandPercent))
	}
	if d.MinExpansionGiB > MaxVolumeGiB {
		errs = append(errs, fmt.Errorf("health.minExpansionGiB %d: above the largest volume (%d GiB)", d.MinExpansionGiB, MaxVolumeGiB))
	}
	return errors.Join(errs...)
}

// HealthReport is one health tick's observation of a cluster.
type HealthReport struct {
	Cluster   string            `json:"cluster"`
	At        time.Time         `json:"at"`
	Brokers   []BrokerHealth    `json:"brokers"`
	ZooKeeper []ZooKeeperServer `json:"zookeeper,omitempty"`
}

// BrokerHealth is one broker's gauges at a tick.
type BrokerHealth struct {
	Broker int32 `json:"broker"`
	// Error says why the broker's metrics could not be read (its process,
	// and so its exporter, is down); the other fields are then zero.
	Error   string        `json:"error,omitempty"`
	State   string        `json:"state,omitempty"` // Kafka's BrokerState name
	Disk    DiskUsage     `json:"disk"`
	Cleaner CleanerHealth `json:"cleaner"`
	Heap    HeapUsage     `json:"heap"`
	// GrowthBytesPerSec is the data's growth over the recent ticks, where
	// sensing judged it (0 from a single tick).
	GrowthBytesPerSec float64 `json:"growthBytesPerSec,omitempty"`
	// TopProducers are the tenants producing the most to this broker,
	// heaviest first (at most a few).
	TopProducers []ClientRate `json:"topProducers,omitempty"`
}

// DiskUsage is a data filesystem's size and use.
type DiskUsage struct {
	SizeBytes int64 `json:"sizeBytes"`
	UsedBytes int64 `json:"usedBytes"`
}

// Percent is the share of the filesystem in use.
func (d DiskUsage) Percent() float64 {
	if d.SizeBytes <= 0 {
		return 0
	}
	return float64(d.UsedBytes) * 100 / float64(d.SizeBytes)
}

// CleanerHealth is the log cleaner's state on a broker.
type CleanerHealth struct {
	DeadThreads  int           `json:"deadThreads"`
	SinceLastRun time.Duration `json:"sinceLastRun"`
	Uncleanable  int           `json:"uncleanable"`
}

// HeapUsage is old-generation heap use.
type HeapUsage struct {
	Used int64 `json:"used"`
	Max  int64 `json:"max"`
}

// ClientRate is a tenant's produce rate to one broker.
type ClientRate struct {
	User        string  `json:"user"`
	BytesPerSec float64 `json:"bytesPerSec"`
}

// ZooKeeperServer is one ensemble member as srvr/ruok report it.
type ZooKeeperServer struct {
	Address string `json:"address"`
	OK      bool   `json:"ok"`
	// Mode is leader, follower or standalone.
	Mode        string `json:"mode,omitempty"`
	Outstanding int64  `json:"outstanding,omitempty"`
	MaxLatency  int64  `json:"maxLatencyMs,omitempty"`
	// Followers and SyncedFollowers are a leader's (mntr): fewer synced
	// than followers means the ensemble runs without its full margin.
	Followers       int64 `json:"followers,omitempty"`
	SyncedFollowers int64 `json:"syncedFollowers,omitempty"`
	// Warning is set on a server that serves but is degraded (a leader
	// with followers out of sync).
	Warning string `json:"warning,omitempty"`
	Error   string `json:"error,omitempty"`
}

// ---- disk ----

// DiskSample is a data filesystem's use at one tick.
type DiskSample struct {
	At        time.Time `json:"at"`
	UsedBytes int64     `json:"used"`
	SizeBytes int64     `json:"size"`
}

// GrowthRate is the data's growth in bytes per second over samples (oldest
// first): the slope from the first to the last sample. Deletions by
// retention make it fall; it is never negative, as a shrinking disk needs
// no forecast.
func GrowthRate(samples []DiskSample) float64 {
	if len(samples) < 2 {
		return 0
	}
	first, last := samples[0], samples[len(samples)-1]
	dt := last.At.Sub(first.At).Seconds()
	if dt <= 0 {
		return 0
	}
	return max(0, float64(last.UsedBytes-first.UsedBytes)/dt)
}

// TimeToPercent is how long until used reaches pct of the filesystem at
// growth bytes/s; 0 when it is there already, and a very long duration when
// the data does not grow.
func TimeToPercent(d DiskUsage, pct, growth float64) time.Duration {
	limit := float64(d.SizeBytes) * pct / 100
	left := limit - float64(d.UsedBytes)
	switch {
	case left <= 0:
		return 0
	case growth <= 0:
		return math.MaxInt64
	}
	secs := left / growth
	if secs > float64(math.MaxInt64/int64(time.Second)) {
		return math.MaxInt64
	}
	return time.Duration(secs * float64(time.Second))
}

// ExpansionPlan is the verdict on one broker's data volume.
type ExpansionPlan struct {
	// Expand is true when the volume should grow now.
	Expand bool `json:"expand"`
	// Reason says why (or why not) in an operator's words.
	Reason  string `json:"reason"`
	FromGiB int32  `json:"fromGiB"`
	ToGiB   int32  `json:"toGiB,omitempty"`
	// GrowthBytesPerSec is the growth rate the size was planned for.
	GrowthBytesPerSec float64 `json:"growthBytesPerSec"`
}

// PlanExpansion decides whether a volume of sizeGiB whose filesystem use is
// d, growing at growth bytes/s, must grow now, and to what size
// (OPERATIONS.md "Volume expansion"): at DiskExpandPercent used, or when
// the growth says it gets there within one cool-down — the next chance to
// modify the volume. The new size keeps the disk under the threshold for a
// whole cool-down at the observed growth, and grows it by at least
// max(MinExpansionGiB, MinExpansionPercent); it never shrinks and never
// exceeds MaxVolumeGiB.
func PlanExpansion(p HealthPolicy, sizeGiB int32, d DiskUsage, growth float64) ExpansionPlan {
	p = p.WithDefaults()
	plan := ExpansionPlan{FromGiB: sizeGiB, GrowthBytesPerSec: growth}
	pct := d.Percent()
	eta := TimeToPercent(d, p.DiskExpandPercent, growth)
	switch {
	case pct >= p.DiskExpandPercent:
		plan.Reason = fmt.Sprintf("disk %.1f%% used (threshold %g%%)", pct, p.DiskExpandPercent)
	case eta <= p.VolumeCooldown:
		plan.Reason = fmt.Sprintf("disk %.1f%% used, growing %s/s: %g%% in %s, within the %s cool-down",
			pct, Bytes(int64(growth)), p.DiskExpandPercent, eta.Round(time.Second), p.VolumeCooldown)
	default:
		plan.Reason = fmt.Sprintf("disk %.1f%% used: no expansion needed", pct)
		return plan
	}
	if sizeGiB >= MaxVolumeGiB {
		plan.Reason += fmt.Sprintf("; the volume is at the %d GiB maximum: it cannot grow", MaxVolumeGiB)
		return plan
	}
	plan.Expand, plan.ToGiB = true, ExpansionSize(p, sizeGiB, d.UsedBytes, growth)
	return plan
}

// ExpansionSize is the size a volume grows to: large enough that used bytes
// growing at growth bytes/s stay under DiskExpandPercent for one cool-down,
// and at least max(MinExpansionGiB, MinExpansionPercent) larger; at most
// MaxVolumeGiB.
func ExpansionSize(p HealthPolicy, sizeGiB int32, usedBytes int64, growth float64) int32 {
	p = p.WithDefaults()
	const gib = float64(1 << 30)
	usedAtEnd := float64(usedBytes) + max(growth, 0)*p.VolumeCooldown.Seconds()
	needed := math.Ceil(usedAtEnd / (p.DiskExpandPercent / 100) / gib)
	step := max(float64(p.MinExpansionGiB), math.Ceil(float64(sizeGiB)*p.MinExpansionPercent/100))
	target := max(needed, float64(sizeGiB)+step)
	return int32(min(target, MaxVolumeGiB))
}

// ---- heap ----

// HeapSample is old-gen heap use at one tick.
type HeapSample struct {
	At   time.Time `json:"at"`
	Used int64     `json:"used"`
	Max  int64     `json:"max"`
}

// HeapClimbing reports whether old-gen use is leaking (the quota-leak
// story, KAFKA-4725): it rose at each of the last HeapClimbTicks ticks and,
// at that pace, fills the heap within HeapHorizon. Samples are oldest
// first; a drop (a full GC, a restart) starts the count again.
func HeapClimbing(p HealthPolicy, samples []HeapSample) (string, bool) {
	p = p.WithDefaults()
	n := p.HeapClimbTicks
	if len(samples) < n+1 {
		return "", false
	}
	window := samples[len(samples)-n-1:]
	for i := 1; i < len(window); i++ {
		if window[i].Used <= window[i-1].Used || window[i].Max != window[0].Max {
			return "", false
		}
	}
	first, last := window[0], window[len(window)-1]
	dt := last.At.Sub(first.At)
	if dt <= 0 || last.Max <= 0 {
		return "", false
	}
	perSec := float64(last.Used-first.Used) / dt.Seconds()
	full := time.Duration(float64(last.Max-last.Used) / perSec * float64(time.Second))
	if full > p.HeapHorizon {
		return "", false
	}
	return fmt.Sprintf("old gen %.0f%% of %s and climbing %s/min for %d ticks: full in ~%s",
		float64(last.Used)*100/float64(last.Max), Bytes(last.Max), Bytes(int64(perSec*60)), n, full.Round(time.Second)), true
}

// ---- log cleaner ----

// CleanerUnhealthy reports whether a broker's log cleaner needs its broker
// restarted: a dead cleaner thread, a cleaner that has not run for
// CleanerStaleAfter, or partitions it marked uncleanable.
func CleanerUnhealthy(p HealthPolicy, c CleanerHealth) (string, bool) {
	p = p.WithDefaults()
	switch {
	case c.DeadThreads > 0:
		return fmt.Sprintf("%d log cleaner thread(s) dead, last run %s ago: compacted topics grow without bound", c.DeadThreads, c.SinceLastRun.Round(time.Second)), true
	case c.SinceLastRun > p.CleanerStaleAfter:
		return fmt.Sprintf("log cleaner has not run for %s (threshold %s)", c.SinceLastRun.Round(time.Second), p.CleanerStaleAfter), true
	case c.Uncleanable > 0:
		return fmt.Sprintf("%d partition(s) marked uncleanable", c.Uncleanable), true
	}
	return "", false
}

// Bytes formats a byte count for operators (binary units).
func Bytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit || m <= -unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
