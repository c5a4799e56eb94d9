package fleet

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Concern is something a health tick found on a broker that may need an
// operation. Sensing judges every tick where the samples are (the sensing
// activity, on the sensing worker) and tells the cluster's entity only
// when the set of concerns changes (Verdict); the entity decides what to do
// with each (a volume expansion, a cleaner check, a restart), knowing what
// already runs and what a volume's cool-down allows.
type Concern struct {
	Kind   string `json:"kind"` // Concern* below
	Broker int32  `json:"broker"`
	Reason string `json:"reason"`
	// Expand is a disk's: its volume should grow now (PlanExpansion).
	Expand bool `json:"expand,omitempty"`
	// Escalate is a disk's: at or past DiskEscalatePercent, worth acting
	// on even inside a volume's cool-down, when it cannot grow.
	Escalate bool `json:"escalate,omitempty"`
	// GrowthBytesPerSec is a disk's growth when it was judged.
	GrowthBytesPerSec float64 `json:"growthBytesPerSec,omitempty"`
}

// Concern kinds.
const (
	ConcernDisk    = "disk"
	ConcernCleaner = "cleaner"
	ConcernHeap    = "heap"
)

// TrendSamples bounds the samples a Trend keeps per gauge: enough for a
// disk's growth rate and HeapClimbTicks, small enough to hand over.
const TrendSamples = 10

// Trend is a broker's recent samples, oldest first: the disk's growth and
// a climbing heap are judged over them.
type Trend struct {
	Disk []DiskSample `json:"disk,omitempty"`
	Heap []HeapSample `json:"heap,omitempty"`
}

// Add appends a tick's gauges of a broker that answered.
func (t *Trend) Add(at time.Time, b BrokerHealth) {
	if b.Error != "" {
		return // down: no gauges
	}
	t.Disk = appendBounded(t.Disk, DiskSample{At: at, UsedBytes: b.Disk.UsedBytes, SizeBytes: b.Disk.SizeBytes})
	t.Heap = appendBounded(t.Heap, HeapSample{At: at, Used: b.Heap.Used, Max: b.Heap.Max})
}

// Growth is the data's growth over the samples taken at the filesystem's
// current size: a grown filesystem's free space is no data growth.
func (t Trend) Growth() float64 {
	if len(t.Disk) == 0 {
		return 0
	}
	size := t.Disk[len(t.Disk)-1].SizeBytes
	i := len(t.Disk) - 1
	for i > 0 && t.Disk[i-1].SizeBytes == size {
		i--
	}
	return GrowthRate(t.Disk[i:])
}

// Since drops the samples taken before cutoff (a trend handed over after a
// long gap says nothing about the rate now).
func (t *Trend) Since(cutoff time.Time) {
	t.Disk = slices.DeleteFunc(t.Disk, func(s DiskSample) bool { return s.At.Before(cutoff) })
	t.Heap = slices.DeleteFunc(t.Heap, func(s HeapSample) bool { return s.At.Before(cutoff) })
}

// AssessBroker returns what a broker's last gauges and trend (which holds
// them) give concern about, in the order they are acted on: disk, cleaner,
// heap. A broker that did not answer has none: the broker watch and
// recovery own it.
func AssessBroker(p HealthPolicy, b BrokerHealth, t Trend) []Concern {
	if b.Error != "" {
		return nil
	}
	p = p.WithDefaults()
	var out []Concern
	// The filesystem's size stands for the volume's EBS size: close enough
	// to decide; the expansion reads the real one.
	sizeGiB := int32((b.Disk.SizeBytes + 1<<30 - 1) >> 30)
	growth := t.Growth()
	plan := PlanExpansion(p, sizeGiB, b.Disk, growth)
	if escalate := b.Disk.Percent() >= p.DiskEscalatePercent; plan.Expand || escalate {
		out = append(out, Concern{Kind: ConcernDisk, Broker: b.Broker, Reason: plan.Reason, Expand: plan.Expand, Escalate: escalate, GrowthBytesPerSec: growth})
	}
	if why, bad := CleanerUnhealthy(p, b.Cleaner); bad {
		out = append(out, Concern{Kind: ConcernCleaner, Broker: b.Broker, Reason: why})
	}
	if why, leaking := HeapClimbing(p, t.Heap); leaking {
		out = append(out, Concern{Kind: ConcernHeap, Broker: b.Broker, Reason: why})
	}
	return out
}

// Judge adds a tick's gauges to the trends of the spec's brokers (created
// as needed) and returns what they give concern about and the tick's
// verdict.
func Judge(spec ClusterSpec, rep HealthReport, trends map[int32]*Trend) ([]Concern, string) {
	var concerns []Concern
	for _, b := range rep.Brokers {
		if _, ok := spec.Broker(b.Broker); !ok {
			continue
		}
		t := trends[b.Broker]
		if t == nil {
			t = &Trend{}
			trends[b.Broker] = t
		}
		t.Add(rep.At, b)
		concerns = append(concerns, AssessBroker(spec.Health, b, *t)...)
	}
	return concerns, Verdict(rep, concerns)
}

// VerdictHealthy is the verdict of a tick that found nothing.
const VerdictHealthy = "healthy"

// Verdict is the key of what a tick found, what the entity must hear about
// when it changes: each concern (and, for a disk, whether it may expand or
// must escalate), each broker whose metrics could not be read, and each
// ZooKeeper server down or degraded. Numbers that move every tick (a
// percentage, an error's text) are not part of it.
func Verdict(rep HealthReport, concerns []Concern) string {
	var parts []string
	for _, c := range concerns {
		k := fmt.Sprintf("%s:%d", c.Kind, c.Broker)
		if c.Expand {
			k += "+expand"
		}
		if c.Escalate {
			k += "+escalate"
		}
		parts = append(parts, k)
	}
	for _, b := range rep.Brokers {
		if b.Error != "" {
			parts = append(parts, fmt.Sprintf("unreadable:%d", b.Broker))
		}
	}
	for _, z := range rep.ZooKeeper {
		switch {
		case !z.OK:
			parts = append(parts, "zookeeper-down:"+z.Address)
		case z.Warning != "":
			parts = append(parts, "zookeeper-degraded:"+z.Address)
		}
	}
	if len(parts) == 0 {
		return VerdictHealthy
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

func appendBounded[T any](xs []T, x T) []T {
	xs = append(xs, x)
	if len(xs) > TrendSamples {
		xs = slices.Clone(xs[len(xs)-TrendSamples:])
	}
	return xs
}
