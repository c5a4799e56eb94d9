package integration_test

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/loadprofile"
)

// BenchmarkLoadProfile is the load-profile harness at full scale (issue
// #14): 50 tenants of the seeds' mix and 1,000,000 messages on a SASL/ACL
// cluster sized by placement's rule for them, broker 2 crashed mid-run
// and recovered by kfleet; then 10 tenants more a round until a limit is
// hit. KFLEET_BENCH_LOAD_TENANTS and KFLEET_BENCH_LOAD_MESSAGES change
// the scale, KFLEET_BENCH_LOAD_BROKERS the cluster's size (more room
// lets grow reach a limit other than placement's). It reports throughput, lost records, p99 produce latency
// and the tenants at the limit, and logs every round's table.
func BenchmarkLoadProfile(b *testing.B) {
	tenants, messages := envInt("KFLEET_BENCH_LOAD_TENANTS", 50), envInt("KFLEET_BENCH_LOAD_MESSAGES", 1_000_000)
	profile := loadprofile.NewProfile(tenants, messages, 14)
	brokers := envInt("KFLEET_BENCH_LOAD_BROKERS", brokersFor(b, profile))
	for range b.N {
		const cluster = "load-bench"
		began := time.Now()
		// 1 TiB volumes: the plans' partitions, not disk, bound the tenants.
		stack, runner := loadStack(b, cluster, brokers, 1024)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
		loadReady(ctx, b, stack, cluster, brokers)
		b.Logf("stack of %d broker(s) ready in %.1f s", brokers, time.Since(began).Seconds())

		start := time.Now()
		rep, made, err := runner.Run(ctx, profile)
		require.NoError(b, err)
		var table bytes.Buffer
		rep.WriteTable(&table)
		b.Logf("full scale in %.1f s (tenants, topics and load)\n%s", time.Since(start).Seconds(), table.String())
		if v := stack.Fleet.Violations(cluster); len(v) > 0 {
			b.Errorf("the fleet saw unsafe moments: %+v", v)
		}

		grown := time.Now()
		runner.Offline = nil
		res, err := runner.Grow(ctx, profile, made, loadprofile.GrowOptions{Step: 10, MaxTenants: 300})
		require.NoError(b, err)
		for _, r := range res.Rounds {
			table.Reset()
			r.WriteTable(&table)
			b.Logf("grow round %d\n%s", r.Round, table.String())
		}
		b.Logf("grow: %d round(s) in %.1f s; limit at %d tenant(s): %s — %s", len(res.Rounds), time.Since(grown).Seconds(),
			res.Limit.Tenants, res.Limit.Name, res.Limit.Detail)
		cancel()

		b.ReportMetric(rep.Totals.MsgsPerSec, "msgs/s")
		b.ReportMetric(float64(rep.Totals.Lost), "lost")
		b.ReportMetric(rep.Totals.Latency.P99, "p99_ms")
		b.ReportMetric(rep.Totals.LatencyWithinPlan.P99, "p99_within_plan_ms")
		b.ReportMetric(float64(rep.Totals.TenantsThrottled), "tenants_throttled")
		if o := rep.Offline; o != nil && !o.BackAt.IsZero() {
			b.ReportMetric(o.BackAt.Sub(o.DownAt).Seconds(), "broker_back_s")
		}
		b.ReportMetric(float64(res.Limit.Tenants), "tenants_at_limit")
	}
}

// brokersFor is the fewest brokers whose partition budget (placement:
// 4,000 replicas a broker at replication factor 3) holds the partitions
// the profile's plans reserve, and at least 3.
func brokersFor(b *testing.B, p loadprofile.Profile) int {
	loads, err := loadprofile.Assign(p)
	require.NoError(b, err)
	cat := fleet.DefaultTenantCatalog()
	brokers := 3
	for {
		partitions := 0
		for _, l := range loads {
			plan, err := cat.Plan(l.Plan)
			require.NoError(b, err)
			partitions += plan.PartitionLimit(brokers)
		}
		room := fleet.ClusterRoom{Brokers: brokers}
		if partitions <= room.PartitionBudget() {
			return brokers
		}
		brokers++
	}
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
