package overview

import (
	"github.com/prometheus/client_golang/prometheus"
)

// The overview's metrics: it is the one part of kfleet that sees the whole
// fleet at once, so fleet-wide gauges come from its snapshot.
const (
	metricClusters        = "kfleet_overview_clusters"
	metricWaitingSince    = "kfleet_waiting_for_human_since_seconds"
	metricRefreshFailures = "kfleet_overview_refresh_failures_total"
	metricLastRefresh     = "kfleet_overview_last_refresh_timestamp_seconds"
)

// MetricHelp names every metric the overview exports, with its help.
func MetricHelp() map[string]string {
	return map[string]string{
		metricClusters:        "Clusters by the overview's verdict (health: critical, warning, unknown, ok).",
		metricWaitingSince:    "When a workflow began waiting for a human (a paused roll or recovery, a paused cluster), as a Unix time; one series per waiting workflow.",
		metricRefreshFailures: "Listings of the fleet from Temporal's visibility that failed.",
		metricLastRefresh:     "When the overview last listed the fleet successfully, as a Unix time.",
	}
}

var (
	descClusters     = prometheus.NewDesc(metricClusters, MetricHelp()[metricClusters], []string{"health"}, nil)
	descWaitingSince = prometheus.NewDesc(metricWaitingSince, MetricHelp()[metricWaitingSince], []string{"cluster", "operation", "workflow_id"}, nil)
	descLastRefresh  = prometheus.NewDesc(metricLastRefresh, MetricHelp()[metricLastRefresh], nil, nil)
)

// collector reads the server's current snapshot at each scrape.
type collector struct{ s *Server }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descClusters
	ch <- descWaitingSince
	ch <- descLastRefresh
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	c.s.mu.Lock()
	snap, refreshed := c.s.snap, c.s.refreshed
	c.s.mu.Unlock()
	n := snap.Counts
	for health, v := range map[string]int{Critical: n.Critical, Warning: n.Warning, Unknown: n.Unknown,
		OK: n.Clusters - n.Critical - n.Warning - n.Unknown} {
		ch <- prometheus.MustNewConstMetric(descClusters, prometheus.GaugeValue, float64(v), health)
	}
	for _, w := range snap.Waiting {
		ch <- prometheus.MustNewConstMetric(descWaitingSince, prometheus.GaugeValue,
			float64(w.Since.UnixNano())/1e9, w.Cluster, w.Operation, w.WorkflowID)
	}
	if !refreshed.IsZero() {
		ch <- prometheus.MustNewConstMetric(descLastRefresh, prometheus.GaugeValue, float64(refreshed.UnixNano())/1e9)
	}
}
