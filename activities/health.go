package activities

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/metrics"
)

// HealthInput asks for one health tick's observation of a cluster.
type HealthInput struct {
	Spec fleet.ClusterSpec `json:"spec"`
}

// Health tick bounds.
const (
	// maxConcurrentScrapes bounds the scrapes of one tick, so a large
	// cluster does not open hundreds of connections at once.
	maxConcurrentScrapes = 16
	// scrapeTimeout bounds one broker's scrape: a host that does not
	// answer must not hold the whole tick.
	scrapeTimeout = 10 * time.Second
	// topProducers is how many of a broker's heaviest producers a report
	// keeps.
	topProducers = 3
)

// errNoMetricsEndpoint is the BrokerHealth.Error of a broker whose spec
// names no metrics endpoint (or a worker without a metrics reader).
const errNoMetricsEndpoint = "no metrics endpoint"

// CheckHealth scrapes every broker's metrics (disk, cleaner, old-gen heap,
// the heaviest producers) and asks every ZooKeeper server srvr/ruok. A broker
// or server that does not answer is reported in its entry, not as an error:
// the tick still sees the others. Only bad input fails it.
func (a *Activities) CheckHealth(ctx context.Context, in HealthInput) (fleet.HealthReport, error) {
	if err := in.Spec.Validate(); err != nil {
		return fleet.HealthReport{}, badInput(err)
	}
	return a.observeHealth(ctx, in.Spec, func(n, of int) {
		activity.RecordHeartbeat(ctx, fmt.Sprintf("%d/%d brokers scraped", n, of))
	})
}

// observeHealth is one tick's observation of a cluster; scraped is called
// as each broker's scrape ends, from the calling goroutine only.
func (a *Activities) observeHealth(ctx context.Context, spec fleet.ClusterSpec, scraped func(n, of int)) (fleet.HealthReport, error) {
	rep := fleet.HealthReport{Cluster: spec.ID, Brokers: make([]fleet.BrokerHealth, len(spec.Brokers))}
	// Scrapes run concurrently (bounded).
	done := make(chan struct{}, len(spec.Brokers))
	sem := make(chan struct{}, maxConcurrentScrapes)
	var wg sync.WaitGroup
	for i, b := range spec.Brokers {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			rep.Brokers[i] = a.brokerHealth(ctx, b)
			done <- struct{}{}
		})
	}
	var zkErr error
	// A KRaft cluster has no ZooKeeper to ask (its quorum is DescribeQuorum's).
	if a.Ensemble != nil && spec.Mode() != fleet.ModeKRaft {
		// Ensemble reports unreachable servers in their entries; its only
		// error is a connect string it cannot parse.
		wg.Go(func() { rep.ZooKeeper, zkErr = a.Ensemble.ServerHealth(ctx, spec) })
	}
	for n := 1; n <= len(spec.Brokers); n++ {
		<-done
		if scraped != nil {
			scraped(n, len(spec.Brokers))
		}
	}
	wg.Wait()
	if zkErr != nil {
		return fleet.HealthReport{}, badInput(zkErr)
	}
	rep.At = time.Now()
	a.logHealth(rep)
	return rep, nil
}

// brokerHealth scrapes one broker; a failure is the entry's Error.
func (a *Activities) brokerHealth(ctx context.Context, b fleet.BrokerSpec) fleet.BrokerHealth {
	h := fleet.BrokerHealth{Broker: b.ID}
	if b.MetricsURL == "" || a.Metrics == nil {
		h.Error = errNoMetricsEndpoint
		return h
	}
	sctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	m, err := a.Metrics.Scrape(sctx, b.MetricsURL)
	if err != nil {
		h.Error = err.Error()
		return h
	}
	h.State = m.BrokerState.String()
	h.Disk = diskUsage(m)
	h.Cleaner = fleet.CleanerHealth{
		DeadThreads:  m.CleanerDeadThreads,
		SinceLastRun: m.TimeSinceLastClean(),
		Uncleanable:  m.UncleanablePartitions,
	}
	h.Heap = fleet.HeapUsage{Used: m.OldGenUsed, Max: m.OldGenMax}
	h.TopProducers = heaviest(m.ProduceByteRates, topProducers)
	return h
}

// diskUsage is the data filesystem's size and use from a scrape.
func diskUsage(m metrics.BrokerMetrics) fleet.DiskUsage {
	return fleet.DiskUsage{SizeBytes: m.FilesystemSize, UsedBytes: max(m.FilesystemSize-m.FilesystemAvail, 0)}
}

// heaviest returns the n users producing the most (rate > 0), heaviest
// first, ties by user name so the order is stable.
func heaviest(rates map[string]float64, n int) []fleet.ClientRate {
	out := make([]fleet.ClientRate, 0, len(rates))
	for user, r := range rates {
		if r > 0 {
			out = append(out, fleet.ClientRate{User: user, BytesPerSec: r})
		}
	}
	slices.SortFunc(out, func(x, y fleet.ClientRate) int {
		return cmp.Or(cmp.Compare(y.BytesPerSec, x.BytesPerSec), cmp.Compare(x.User, y.User))
	})
	if len(out) > n {
		out = out[:n]
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func (a *Activities) logHealth(rep fleet.HealthReport) {
	unreachable, zkDown := 0, 0
	for _, b := range rep.Brokers {
		if b.Error != "" {
			unreachable++
			a.Log.Debug().Str("cluster", rep.Cluster).Int32("broker", b.Broker).Str("error", b.Error).Msg("broker metrics unreadable")
		}
	}
	for _, z := range rep.ZooKeeper {
		if !z.OK {
			zkDown++
		}
	}
	ev := a.Log.Debug()
	if unreachable > 0 || zkDown > 0 {
		ev = a.Log.Info()
	}
	ev.Str("cluster", rep.Cluster).Int("brokers", len(rep.Brokers)).Int("unreadable", unreachable).
		Int("zookeeperServers", len(rep.ZooKeeper)).Int("zookeeperDown", zkDown).Msg("health checked")
}
