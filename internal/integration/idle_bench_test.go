package integration_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// BenchmarkIdleCost measures what healthy idle clusters cost at production
// settings (a health tick a minute, a sensing heartbeat timeout of 5 min,
// the sensing of each cluster reporting on change): the dev server's
// `action` counter — what Temporal Cloud bills — and the entities' history
// events, over KFLEET_BENCH_IDLE (default 10m), per cluster per day.
// OPERATIONS.md's target is at most 1,000 actions a day.
func BenchmarkIdleCost(b *testing.B) {
	idle := 10 * time.Minute
	if v, err := time.ParseDuration(os.Getenv("KFLEET_BENCH_IDLE")); err == nil && v > 0 {
		idle = v
	}
	metricsPort, err := devstack.FreePort()
	require.NoError(b, err)
	clusters := []string{"idle-a", "idle-b"}
	cfg := localfleet.Config{}
	for _, id := range clusters {
		cfg.Clusters = append(cfg.Clusters, localfleet.ClusterConfig{ID: id, Brokers: 3})
	}
	stack := startStackWith(b, cfg, func(o *devstack.StackOptions) {
		o.TemporalMetricsPort = metricsPort
		o.SweepEvery = -1 // the hourly sweep is not idle cost
		o.Health = fleet.HealthPolicy{SensingHeartbeat: fleet.DefaultSensingHeartbeat}
	})
	ctx, cancel := context.WithTimeout(context.Background(), idle+5*time.Minute)
	defer cancel()
	for _, id := range clusters {
		waitStatus(ctx, b, stack, id, time.Minute, "watching", func(st workflows.ClusterStatus) bool { return st.Watch != nil })
	}
	// Past registration and the first tick's report (the entity knows no
	// verdict yet): from here the clusters are idle.
	time.Sleep(fleet.DefaultHealthInterval + 30*time.Second)
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort)
	events := func() int64 {
		var n int64
		for _, id := range clusters {
			d, err := stack.Client.DescribeWorkflowExecution(ctx, workflows.ClusterWorkflowID(id), "")
			require.NoError(b, err)
			n += d.GetWorkflowExecutionInfo().GetHistoryLength()
		}
		return n
	}
	a0, e0, t0 := actions(b, url), events(), time.Now()
	time.Sleep(idle)
	a1, e1, elapsed := actions(b, url), events(), time.Since(t0)
	perDay := func(n float64) float64 { return n / float64(len(clusters)) / elapsed.Hours() * 24 }
	b.ReportMetric(perDay(a1-a0), "actions/cluster/day")
	b.ReportMetric(perDay(float64(e1-e0)), "events/cluster/day")
	b.Logf("%d idle clusters over %s: %.0f actions, %d history events (continue-as-new in between undercounts events)",
		len(clusters), elapsed.Round(time.Second), a1-a0, e1-e0)
}

// actions sums the dev server's `action` counter over its series.
func actions(b *testing.B, url string) float64 {
	resp, err := http.Get(url)
	require.NoError(b, err)
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "action{") && !strings.HasPrefix(line, "action ") {
			continue
		}
		fields := strings.Fields(line)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		require.NoError(b, err, line)
		sum += v
	}
	require.NoError(b, sc.Err())
	return sum
}
