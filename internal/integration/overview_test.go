package integration_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/devstack/tier"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/overview"
	"github.com/kfleet/kfleet/internal/overview/overviewtest"
	"github.com/kfleet/kfleet/workflows"
)

// TestIntegrationOverviewPageShowsARecovery opens the fleet overview in
// Debian's chromium against a whole local stack: it lists both clusters;
// a broker crashed behind kfleet's back shows on the page as a recovery
// within seconds, and leaves it once recovered. The fleet's audit judges
// the recovery; the page only has to tell the truth about it. A
// screenshot of the page during the recovery is kept (.artefacts/).
func TestIntegrationOverviewPageShowsARecovery(t *testing.T) {
	t.Parallel()
	tier.Integration(t, tier.Temporal, tier.ZooKeeper, tier.Chromium)
	stack := startStackWith(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}, localfleet.ClusterConfig{ID: "local-b", Brokers: 3}),
		func(o *devstack.StackOptions) {
			o.Health, o.NotifyOut = selfHealingPolicy, io.Discard
			o.OverviewAddr, o.OverviewRefresh = "127.0.0.1:0", 500*time.Millisecond
		})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)
	watching(ctx, t, stack, "local-b", 3)

	page := browser(t)
	require.NoError(t, chromedp.Do(page, chromedp.Navigate(stack.Overview.URL)))
	// Both clusters, every broker up.
	waitPage(t, page, 20*time.Second, "both clusters listed, healthy, every broker up", `
		["local-a", "local-b"].every((id) => {
			const row = document.querySelector('tr[data-cluster="' + id + '"]');
			return row && row.dataset.health === "ok" && row.querySelectorAll('[data-state="up"]').length === 3;
		})`)

	crashed := time.Now()
	require.NoError(t, stack.Fleet.Crash(ctx, "local-a", 2, "integration-test"))
	shown := waitPage(t, page, 30*time.Second, "a recovery of broker 2 on local-a's row", `
		(() => {
			const row = document.querySelector('tr[data-cluster="local-a"]');
			const op = row && row.querySelector('[data-op-kind="recovery"]');
			return op ? op.dataset.opId : "";
		})()`)
	onPage := time.Since(crashed)
	t.Logf("the recovery %s showed on the page %s after the crash", shown, onPage.Round(10*time.Millisecond))
	states, err := pageEval[[]string](page, `[...document.querySelectorAll('tr[data-cluster="local-a"] [data-state]')].map((b) => b.dataset.state)`)
	require.NoError(t, err)
	assert.Contains(t, []string{workflows.BrokerRecovering, workflows.BrokerLost}, states[1], "broker 2 is shown down: %v", states)
	health, err := pageEval[string](page, `document.querySelector('tr[data-cluster="local-a"]').dataset.health`)
	require.NoError(t, err)
	assert.Equal(t, "critical", health)
	other, err := pageEval[string](page, `document.querySelector('tr[data-cluster="local-b"]').dataset.health`)
	require.NoError(t, err)
	assert.Equal(t, "ok", other, "the other cluster is untouched")
	shot := artefact(t, "overview-recovery.png")
	png, err := chromedp.Run(page, chromedp.FullScreenshot(100)) // quality 100: a PNG
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(shot, png, 0o644))
	t.Logf("screenshot of the page during the recovery: %s (%d bytes)", shot, len(png))

	op := finished(ctx, t, stack, "local-a", workflows.OpRecovery, time.Minute)
	require.Equal(t, workflows.StatusSucceeded, op.Status, op.Error)
	require.Equal(t, shown, op.ID, "the page showed the recovery kfleet ran")
	waitPage(t, page, 20*time.Second, "the recovery gone from the page and broker 2 up again", `
		(() => {
			const row = document.querySelector('tr[data-cluster="local-a"]');
			return row && !row.querySelector('[data-op-kind]') && row.querySelectorAll('[data-state="up"]').length === 3;
		})()`)
	t.Logf("recovery ended %s after the crash; gone from the page %s after it ended",
		op.FinishedAt.Sub(crashed).Round(10*time.Millisecond), time.Since(op.FinishedAt).Round(10*time.Millisecond))

	// The fleet's audit: broker 2 started once, nothing else touched.
	stops, starts := stopsAndStarts(stack.Fleet.Audit("local-a"))
	assert.Empty(t, stops)
	assert.Equal(t, map[int32]int{2: 1}, starts)
	noViolations(t, stack, "local-a")
	_, starts = stopsAndStarts(stack.Fleet.Audit("local-b"))
	assert.Empty(t, starts, "local-b untouched")
	// The entity's history with its overview memo upserted through a loss
	// and its recovery, for the replay tests.
	recordHistories(ctx, t, stack.Client, map[string]string{workflows.ClusterWorkflowID("local-a"): "cluster_overview_recovery.json"})
}

// TestIntegrationOverviewPageListsTwoThousandClusters opens the page on a
// synthetic fleet of two thousand clusters, served by the overview server
// from visibility rows as Temporal lists them: every cluster is listed,
// the unhealthy first; typing in the filter and the "unhealthy only"
// switch narrow the list, and sorting by name reorders it. How long it
// takes is BenchmarkOverviewPage's to measure (against a real Temporal
// listing); the times are only logged here.
func TestIntegrationOverviewPageListsTwoThousandClusters(t *testing.T) {
	t.Parallel()
	tier.Integration(t, tier.Chromium)
	const n = 2000
	srv, err := overview.New(overview.Config{Lister: overviewtest.Fleet(n, time.Now()), Namespace: "default", Refresh: time.Minute})
	require.NoError(t, err)
	require.NoError(t, srv.Refresh(context.Background()))
	web := httptest.NewServer(srv.Handler())
	t.Cleanup(web.Close)

	page := browser(t)
	start := time.Now()
	require.NoError(t, chromedp.Do(page, chromedp.Navigate(web.URL)))
	waitPage(t, page, 30*time.Second, "every cluster listed", fmt.Sprintf(`document.querySelectorAll("tr[data-cluster]").length === %d`, n))
	times, err := pageEval[[]string](page, `[document.body.dataset.shownMs, document.body.dataset.fetchMs, document.body.dataset.renderMs]`)
	require.NoError(t, err)
	t.Logf("%d clusters: on the page %s after navigating (%s ms after navigation start as the page counts it: fetch and decode %s ms, table %s ms)",
		n, time.Since(start).Round(time.Millisecond), times[0], times[1], times[2])

	critical, warning := overviewtest.Counts(n)
	healths, err := pageEval[[]string](page, `[...document.querySelectorAll("tr[data-cluster]")].map((r) => r.dataset.health)`)
	require.NoError(t, err)
	want := slices.Concat(repeat("critical", critical), repeat("warning", warning), repeat("ok", n-critical-warning))
	assert.Equal(t, want, healths, "the unhealthy first: %d critical, then %d warning", critical, warning)
	header, err := pageEval[[]string](page, `["n-clusters", "n-critical", "n-warning", "n-operations"].map((id) => document.getElementById(id).textContent)`)
	require.NoError(t, err)
	assert.Equal(t, []string{fmt.Sprint(n), fmt.Sprint(critical), fmt.Sprint(warning), fmt.Sprint(critical)}, header)

	require.NoError(t, chromedp.Do(page, chromedp.SendKeys(chromedp.ID("filter"), "recovering")))
	waitPage(t, page, 5*time.Second, "the filter keeps the clusters with a recovering broker", fmt.Sprintf(
		`document.querySelectorAll("tr[data-cluster]").length === %d && [...document.querySelectorAll("tr[data-cluster]")].every((r) => r.querySelector('[data-state="recovering"]'))`, critical))
	_, err = pageEval[bool](page, `(() => { const f = document.getElementById("filter"); f.value = ""; return f.dispatchEvent(new Event("input")); })()`)
	require.NoError(t, err)
	require.NoError(t, chromedp.Do(page, chromedp.Click(chromedp.ID("unhealthy"))))
	waitPage(t, page, 5*time.Second, "unhealthy only", fmt.Sprintf(`document.querySelectorAll("tr[data-cluster]").length === %d`, critical+warning))
	require.NoError(t, chromedp.Do(page, chromedp.Click(chromedp.ID("unhealthy"))))
	_, err = pageEval[bool](page, `(() => { const s = document.getElementById("sort"); s.value = "name"; return s.dispatchEvent(new Event("change")); })()`)
	require.NoError(t, err)
	waitPage(t, page, 5*time.Second, "every cluster, sorted by name", fmt.Sprintf(
		`document.querySelector("tr[data-cluster]").dataset.cluster === %q && document.querySelectorAll("tr[data-cluster]").length === %d`, overviewtest.ClusterName(0), n))
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// waitPage polls a JavaScript expression on the page until it is truthy
// (a non-empty string or true) and returns its last value as a string.
func waitPage(t testing.TB, page context.Context, within time.Duration, what, expr string) string {
	t.Helper()
	var last any
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if v, err := pageEval[any](page, expr); err == nil {
			last = v
			switch x := v.(type) {
			case bool:
				if x {
					return "true"
				}
			case string:
				if x != "" {
					return x
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the page did not show %s within %s (last: %v)", what, within, last)
	return ""
}
