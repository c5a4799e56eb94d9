package integration_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/devstack/tier"
	"github.com/kfleet/kfleet/internal/logging"
	"github.com/kfleet/kfleet/workflows"
)

// BenchmarkOverviewPage measures the fleet overview at fleet scale:
// KFLEET_BENCH_OVERVIEW_CLUSTERS (default 2,000) cluster entities in a real
// Temporal dev server, each with its summary in its memo. Per iteration:
//   - list-ms: the overview's listing of them all from visibility and the
//     snapshot built from it;
//   - shown-ms: from the navigation's start to every cluster on the page,
//     by the page's own clock (load, fetch, decode, sort and render, in
//     Debian's chromium); fetch-ms and render-ms its fetch and decode, and
//     its table;
//   - page-ms: the same seen from the test, through the DevTools protocol
//     and a 100 ms poll.
func BenchmarkOverviewPage(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("KFLEET_BENCH_OVERVIEW_CLUSTERS")); err == nil && v > 0 {
		n = v
	}
	ov := startFixtureOverview(b, n)
	page := browser(b)
	ctx := context.Background()
	var list, load time.Duration
	var shown, fetch, render float64
	iterations := 0
	// b.Loop runs this function once: the fleet is started once.
	for b.Loop() {
		iterations++
		start := time.Now()
		require.NoError(b, ov.Server.Refresh(ctx))
		list += time.Since(start)
		require.Equal(b, n, ov.Server.Snapshot().Counts.Clusters)
		start = time.Now()
		require.NoError(b, chromedp.Do(page, chromedp.Navigate(ov.URL)))
		waitPage(b, page, time.Minute, "every cluster listed", fmt.Sprintf(`document.querySelectorAll("tr[data-cluster]").length === %d`, n))
		load += time.Since(start)
		times, err := pageEval[[]string](page, `[document.body.dataset.shownMs, document.body.dataset.fetchMs, document.body.dataset.renderMs]`)
		require.NoError(b, err)
		for i, sum := range []*float64{&shown, &fetch, &render} {
			f, err := strconv.ParseFloat(times[i], 64)
			require.NoError(b, err)
			*sum += f
		}
	}
	per := func(d time.Duration) float64 { return float64(d.Milliseconds()) / float64(iterations) }
	b.ReportMetric(float64(n), "clusters")
	b.ReportMetric(per(list), "list-ms")
	b.ReportMetric(shown/float64(iterations), "shown-ms")
	b.ReportMetric(fetch/float64(iterations), "fetch-ms")
	b.ReportMetric(render/float64(iterations), "render-ms")
	b.ReportMetric(per(load), "page-ms")
}

// startFixtureOverview starts a Temporal dev server holding a fixture
// fleet of n clusters and the overview over it.
func startFixtureOverview(t testing.TB, n int) *devstack.Overview {
	t.Helper()
	tier.Integration(t, tier.Temporal, tier.Chromium)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmp, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{
		Binary: temporalBinary(t), Dir: filepath.Join(t.TempDir(), "temporal"),
		SearchAttributes: workflows.SearchAttributeFlags(), Log: zerolog.Nop(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tmp.Stop() })
	c, err := client.Dial(client.Options{HostPort: tmp.Addr, Logger: logging.Temporal{Log: zerolog.Nop()}})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	started := time.Now()
	startFixtureFleet(ctx, t, c, n)
	t.Logf("%d fixture entities started in %s", n, time.Since(started).Round(time.Millisecond))
	ov, err := devstack.StartOverview(c, client.DefaultNamespace, "127.0.0.1:0", tmp.UI, time.Second, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(func() { _ = ov.Close() })
	// Visibility catches up with the starts within a moment.
	require.Eventually(t, func() bool { return ov.Server.Snapshot().Counts.Clusters == n }, time.Minute, 200*time.Millisecond,
		"the overview lists the %d clusters", n)
	return ov
}
