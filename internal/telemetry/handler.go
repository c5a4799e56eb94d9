// Package telemetry exposes kfleet's metrics to Prometheus: a Temporal SDK
// metrics handler (client.MetricsHandler) backed by a Prometheus registry,
// which carries both the SDK's own metrics and the ones kfleet's workflows
// emit through workflow.GetMetricsHandler, and the HTTP endpoint that
// serves them.
package telemetry

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.temporal.io/sdk/client"
)

// DefaultBuckets are the timers' histogram buckets, in seconds. SDK
// latencies run from milliseconds (a poll, a workflow task) to minutes, and
// kfleet's gate waits from seconds to the half hour after which a roll asks
// a human: a bucket at each step an operator would care about.
func DefaultBuckets() []float64 {
	return []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}
}

// Options configure a Handler.
type Options struct {
	// Buckets are the timers' histogram buckets in seconds (default
	// DefaultBuckets()).
	Buckets []float64
	// Help describes metrics by exposed name (after the _total or _seconds
	// suffix); others get a generic line.
	Help map[string]string
}

// NewRegistry returns a registry with the Go runtime and process
// collectors, which every kfleet process serves beside its own metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler is a Temporal SDK metrics handler whose metrics are Prometheus
// metrics. Tags become labels. Names follow Prometheus conventions:
// counters end in _total and timers, recorded as histograms in seconds, in
// _seconds (appended unless already there); gauges keep their name.
//
// The SDK's tag sets vary with the call (the same metric comes with and
// without workflow_type, say) and are known only when a metric is first
// used, so one name holds one vector per distinct set of label names, all
// behind a single unchecked collector: Prometheus accepts series of one
// family with different label names. A name is bound to the kind (counter,
// gauge, timer) it was first used as; using it as another kind records
// nothing.
//
// Handlers derived with WithTags share their parent's metrics.
type Handler struct {
	set *metricSet
	// labels and values are the tags, sorted by label name.
	labels, values []string
}

var _ client.MetricsHandler = (*Handler)(nil)

// NewHandler registers a handler's metrics on reg.
func NewHandler(reg prometheus.Registerer, opts Options) (*Handler, error) {
	set := &metricSet{buckets: DefaultBuckets(), help: map[string]string{}, families: map[string]*family{}}
	if len(opts.Buckets) > 0 {
		set.buckets = slices.Clone(opts.Buckets)
	}
	maps.Copy(set.help, opts.Help)
	if err := reg.Register(set); err != nil {
		return nil, err
	}
	return &Handler{set: set}, nil
}

// WithTags returns a handler whose metrics carry tags besides (and over)
// h's. A tag with an empty value is dropped: Prometheus reads an empty
// label as an absent one, so keeping it would expose two series that a
// scrape sees as one.
func (h *Handler) WithTags(tags map[string]string) client.MetricsHandler {
	merged := make(map[string]string, len(h.labels)+len(tags))
	for i, l := range h.labels {
		merged[l] = h.values[i]
	}
	for k, v := range tags {
		k = sanitize(k, false)
		if v == "" {
			delete(merged, k)
			continue
		}
		merged[k] = strings.ToValidUTF8(v, "\uFFFD")
	}
	out := &Handler{set: h.set, labels: make([]string, 0, len(merged))}
	for k := range merged {
		out.labels = append(out.labels, k)
	}
	slices.Sort(out.labels)
	out.values = make([]string, len(out.labels))
	for i, l := range out.labels {
		out.values[i] = merged[l]
	}
	return out
}

// Counter returns the counter name+"_total" with h's tags.
func (h *Handler) Counter(name string) client.MetricsCounter {
	c, ok := h.set.vec(kindCounter, name, h.labels).(*prometheus.CounterVec)
	if !ok {
		return client.MetricsNopHandler.Counter(name)
	}
	m := c.WithLabelValues(h.values...)
	return counterFunc(func(n int64) {
		// A Prometheus counter panics on a decrease; the SDK never asks
		// for one, and a metric must never take the worker down.
		if n > 0 {
			m.Add(float64(n))
		}
	})
}

// Gauge returns the gauge name with h's tags.
func (h *Handler) Gauge(name string) client.MetricsGauge {
	g, ok := h.set.vec(kindGauge, name, h.labels).(*prometheus.GaugeVec)
	if !ok {
		return client.MetricsNopHandler.Gauge(name)
	}
	return gaugeFunc(g.WithLabelValues(h.values...).Set)
}

// Timer returns the histogram name+"_seconds" with h's tags.
func (h *Handler) Timer(name string) client.MetricsTimer {
	v, ok := h.set.vec(kindTimer, name, h.labels).(*prometheus.HistogramVec)
	if !ok {
		return client.MetricsNopHandler.Timer(name)
	}
	o := v.WithLabelValues(h.values...)
	return timerFunc(func(d time.Duration) { o.Observe(d.Seconds()) })
}

type counterFunc func(int64)

func (f counterFunc) Inc(n int64) { f(n) }

type gaugeFunc func(float64)

func (f gaugeFunc) Update(v float64) { f(v) }

type timerFunc func(time.Duration)

func (f timerFunc) Record(d time.Duration) { f(d) }

type kind int

const (
	kindCounter kind = iota
	kindGauge
	kindTimer
)

// metricSet is every metric of a handler tree: one Prometheus collector.
type metricSet struct {
	buckets []float64
	help    map[string]string

	mu       sync.RWMutex
	families map[string]*family // by exposed name
}

// family is one exposed name: its kind and a vector per set of label
// names (joined by labelSep).
type family struct {
	kind kind
	help string
	vecs map[string]prometheus.Collector
}

const labelSep = "\xff"

// vec returns the vector of name's family for labels, creating both on
// first use; nil when name is bound to another kind.
func (s *metricSet) vec(k kind, name string, labels []string) prometheus.Collector {
	name = exposedName(k, name)
	key := strings.Join(labels, labelSep)
	s.mu.RLock()
	f := s.families[name]
	var v prometheus.Collector
	if f != nil {
		v = f.vecs[key]
	}
	s.mu.RUnlock()
	switch {
	case f != nil && f.kind != k:
		return nil
	case v != nil:
		return v
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if f = s.families[name]; f == nil {
		help := s.help[name]
		if help == "" {
			help = "Temporal SDK metric " + name + "."
		}
		f = &family{kind: k, help: help, vecs: map[string]prometheus.Collector{}}
		s.families[name] = f
	}
	if f.kind != k {
		return nil
	}
	if v = f.vecs[key]; v != nil {
		return v
	}
	switch k {
	case kindCounter:
		v = prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: f.help}, labels)
	case kindGauge:
		v = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: f.help}, labels)
	default:
		v = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: f.help, Buckets: s.buckets}, labels)
	}
	f.vecs[key] = v
	return v
}

// Describe sends no descriptor, which makes the set an unchecked
// collector: its label sets are known only as the SDK uses them.
func (*metricSet) Describe(chan<- *prometheus.Desc) {}

// Collect sends every series of every vector.
func (s *metricSet) Collect(ch chan<- prometheus.Metric) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, f := range s.families {
		for _, v := range f.vecs {
			v.Collect(ch)
		}
	}
}

// exposedName is name as Prometheus conventions want it for kind k.
func exposedName(k kind, name string) string {
	name = sanitize(name, true)
	switch {
	case k == kindCounter && !strings.HasSuffix(name, "_total"):
		return name + "_total"
	case k == kindTimer && !strings.HasSuffix(name, "_seconds"):
		return name + "_seconds"
	}
	return name
}

// sanitize maps s onto Prometheus's classic name characters
// ([a-zA-Z_:][a-zA-Z0-9_:]* for metrics, no colon in labels), which every
// scraper and query language accepts.
func sanitize(s string, metric bool) string {
	if s == "" {
		return "_"
	}
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' ||
			i > 0 && r >= '0' && r <= '9' || metric && r == ':'
		if !ok {
			r = '_'
		}
		b.WriteRune(r)
	}
	return b.String()
}
