package overview_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	workflowpb "go.temporal.io/api/workflow/v1"

	"github.com/kfleet/kfleet/internal/overview"
	"github.com/kfleet/kfleet/internal/overview/overviewtest"
	"github.com/kfleet/kfleet/workflows"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

func brokers(states ...string) []workflows.BrokerOverview {
	var bs []workflows.BrokerOverview
	for i, s := range states {
		bs = append(bs, workflows.BrokerOverview{ID: int32(i + 1), State: s, DiskPct: 40, HeapPct: 30})
	}
	return bs
}

// fleetOf is a small fleet with one of each situation the page tells apart.
func fleetOf(t testing.TB) *overviewtest.Visibility {
	t.Helper()
	up := workflows.BrokerUp
	rollWF := "cluster/rolling/restart/r-1"
	return &overviewtest.Visibility{
		PageSize: 2, // three pages of entities: paging is followed
		Entities: []*workflowpb.WorkflowExecutionInfo{
			overviewtest.Entity("healthy", &workflows.ClusterOverview{Cluster: "healthy", Mode: "zookeeper", Brokers: brokers(up, up, up)}),
			overviewtest.Entity("crashed", &workflows.ClusterOverview{Cluster: "crashed", Mode: "zookeeper",
				Brokers:    brokers(up, workflows.BrokerRecovering, up),
				Operations: []workflows.OperationOverview{{ID: "x-1", Kind: "recovery", WorkflowID: "cluster/crashed/recovery/x-1", Brokers: []int32{2}}},
				Findings:   []workflows.Finding{{Kind: "broker-lost", Broker: 2, At: now.Add(-time.Minute)}}}),
			overviewtest.Entity("rolling", &workflows.ClusterOverview{Cluster: "rolling", Mode: "kraft", Controllers: 3,
				Brokers:    brokers(up, workflows.BrokerRestarting, up),
				Operations: []workflows.OperationOverview{{ID: "r-1", Kind: "rolling-restart", WorkflowID: rollWF}}}),
			overviewtest.Entity("legacy", nil),
			overviewtest.Entity("paused", &workflows.ClusterOverview{Cluster: "paused", Brokers: brokers(up),
				Paused: &workflows.PauseState{By: "alice", Since: now.Add(-3 * time.Hour)}, Tenants: 2, Plans: map[string]int{"basic-0": 2},
				Findings: []workflows.Finding{{Kind: "disk", Broker: 1, At: now.Add(-time.Hour)}}}),
		},
		Paused: []*workflowpb.WorkflowExecutionInfo{
			// An upgrade's phase roll waits at a gate: it belongs to the
			// rolling cluster's running operation.
			overviewtest.Waiting("rolling", rollWF, "rolling-restart", now.Add(-2*time.Hour)),
			overviewtest.Waiting("paused", workflows.ClusterWorkflowID("paused"), "", now.Add(-3*time.Hour)),
		},
	}
}

func newServer(t testing.TB, v overview.Lister, progress func(context.Context, workflows.Operation) []string) (*overview.Server, *time.Time) {
	clock := now
	s, err := overview.New(overview.Config{Lister: v, Namespace: "prod", TemporalUI: "https://ui.example/", Refresh: 5 * time.Second,
		Progress: progress, Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	return s, &clock
}

func TestSnapshotJudgesEveryCluster(t *testing.T) {
	s, _ := newServer(t, fleetOf(t), nil)
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	snap := s.Snapshot()
	health := map[string]string{}
	for _, c := range snap.Clusters {
		health[c.Cluster] = c.Health
	}
	want := map[string]string{"healthy": overview.OK, "crashed": overview.Critical, "rolling": overview.Critical,
		"legacy": overview.Unknown, "paused": overview.Warning}
	for cluster, h := range want {
		if health[cluster] != h {
			t.Errorf("%s: health %q, want %q (all: %v)", cluster, health[cluster], h, health)
		}
	}
	c := clusterNamed(t, snap, "rolling")
	if !containsText(c.Concerns, "rolling-restart waits for a human") || !containsText(c.Concerns, "broker 2 restarting") {
		t.Errorf("rolling's concerns = %q, want the human wait first and the restart", c.Concerns)
	}
	if got := c.URLs["r-1"]; got != "https://ui.example/namespaces/prod/workflows/cluster%2Frolling%2Frestart%2Fr-1" {
		t.Errorf("operation link = %q", got)
	}
	wantCounts := overview.Counts{Clusters: 5, Critical: 2, Warning: 1, Unknown: 1, Brokers: 10, BrokersDown: 2, Operations: 2, Waiting: 2, Tenants: 2}
	if snap.Counts != wantCounts {
		t.Errorf("counts = %+v, want %+v", snap.Counts, wantCounts)
	}
	if len(snap.Waiting) != 2 || snap.Waiting[0].Cluster != "paused" || snap.Waiting[1].Operation != "rolling-restart" {
		t.Fatalf("waiting = %+v, want the paused cluster (3h) before the roll (2h)", snap.Waiting)
	}
	if w := snap.Waiting[0]; w.Chat != "/kafka resume paused" || !w.Since.Equal(now.Add(-3*time.Hour)) {
		t.Errorf("paused cluster's wait = %+v", w)
	}
	if w := snap.Waiting[1]; !strings.Contains(w.Chat, "/kafka abort rolling r-1") {
		t.Errorf("roll's wait = %+v, want the chat command naming its operation", w)
	}
	if len(snap.Findings) != 2 || snap.Findings[0].Cluster != "crashed" {
		t.Errorf("findings = %+v, want the fleet's newest first", snap.Findings)
	}
}

func TestProgressIsAskedOnlyWhileSomebodyLooks(t *testing.T) {
	var mu sync.Mutex
	asked := map[string]int{}
	s, clock := newServer(t, fleetOf(t), func(_ context.Context, op workflows.Operation) []string {
		mu.Lock()
		defer mu.Unlock()
		asked[op.ID]++
		return []string{op.Kind + " step"}
	})
	ctx := context.Background()
	h := s.Handler()
	refresh := func(d time.Duration) {
		*clock = clock.Add(d)
		if err := s.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
	}
	refresh(0)
	if len(asked) != 0 {
		t.Fatalf("progress asked with nobody looking: %v", asked)
	}
	get(t, h, overview.PathSnapshot, nil) // somebody looks
	refresh(time.Second)
	if asked["x-1"] != 1 || asked["r-1"] != 1 {
		t.Fatalf("asked = %v, want each running operation once", asked)
	}
	if got := clusterNamed(t, s.Snapshot(), "crashed").Progress["x-1"]; len(got) != 1 || got[0] != "recovery step" {
		t.Errorf("crashed's progress = %v", got)
	}
	refresh(5 * time.Second) // within twice the refresh: the cached answer
	if asked["x-1"] != 1 || len(clusterNamed(t, s.Snapshot(), "crashed").Progress["x-1"]) != 1 {
		t.Errorf("asked = %v, want the cached step served, not a new query", asked)
	}
	refresh(6 * time.Second)
	if asked["x-1"] != 2 {
		t.Errorf("asked = %v, want a second query once the answer is 10s old", asked)
	}
	refresh(viewerGone)
	refresh(11 * time.Second)
	if asked["x-1"] != 2 {
		t.Errorf("asked = %v after the viewer left, want no more queries", asked)
	}
}

const viewerGone = 31 * time.Second

func TestSnapshotServedReadOnlyWithTagsAndGzip(t *testing.T) {
	v := fleetOf(t)
	s, clock := newServer(t, v, nil)
	h := s.Handler()
	if code, _ := get(t, h, overview.PathHealthz, nil); code != http.StatusServiceUnavailable {
		t.Errorf("healthz before any listing = %d, want 503", code)
	}
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, h, overview.PathHealthz, nil); code != http.StatusOK {
		t.Errorf("healthz after a listing = %d, want 200", code)
	}
	code, page := get(t, h, overview.PathPage, nil)
	if code != http.StatusOK || !strings.Contains(page, "kfleet fleet overview") {
		t.Fatalf("page = %d %.80q", code, page)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, overview.PathSnapshot, nil))
	etag := rec.Header().Get("ETag")
	var snap overview.Snapshot
	if err := json.Unmarshal(rec.Body.Bytes(), &snap); err != nil || len(snap.Clusters) != 5 || etag == "" {
		t.Fatalf("snapshot: %v, %d clusters, etag %q", err, len(snap.Clusters), etag)
	}
	if code, _ := get(t, h, overview.PathSnapshot, map[string]string{"If-None-Match": etag}); code != http.StatusNotModified {
		t.Errorf("unchanged snapshot = %d, want 304", code)
	}
	*clock = clock.Add(5 * time.Second) // listed again, the fleet unchanged
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, h, overview.PathSnapshot, map[string]string{"If-None-Match": etag}); code != http.StatusNotModified {
		t.Errorf("a new listing of an unchanged fleet = %d, want 304", code)
	}
	rec = httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, overview.PathSnapshot, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	h.ServeHTTP(rec, req)
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatalf("gzip asked, got %q: %v", rec.Header().Get("Content-Encoding"), err)
	}
	if body, _ := io.ReadAll(zr); json.Unmarshal(body, &snap) != nil || len(snap.Clusters) != 5 {
		t.Errorf("gzipped snapshot does not decode to the fleet")
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, overview.PathSnapshot, strings.NewReader("{}")))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Errorf("%s %s = %d, want 405: the overview changes nothing", m, overview.PathSnapshot, rec.Code)
		}
	}
	v.Entities = v.Entities[1:] // a cluster gone
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, h, overview.PathSnapshot, map[string]string{"If-None-Match": etag}); code != http.StatusOK {
		t.Errorf("a changed fleet = %d, want 200", code)
	}
}

func TestMetricsSayWhoWaitsSinceWhen(t *testing.T) {
	v := fleetOf(t)
	// A workflow paused before kfleet kept the time: since it was first seen.
	v.Paused = append(v.Paused, overviewtest.Waiting("crashed", "cluster/crashed/recovery/x-1", "recovery", time.Time{}))
	s, clock := newServer(t, v, nil)
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	*clock = clock.Add(time.Minute)
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, body := get(t, s.Handler(), overview.PathMetrics, nil)
	for _, want := range []string{
		`kfleet_overview_clusters{health="critical"} 2`,
		`kfleet_overview_clusters{health="ok"} 1`,
		`kfleet_waiting_for_human_since_seconds{cluster="rolling",operation="rolling-restart",workflow_id="cluster/rolling/restart/r-1"} 1.7961192e+09`,
		`kfleet_waiting_for_human_since_seconds{cluster="crashed",operation="recovery",workflow_id="cluster/crashed/recovery/x-1"} 1.7961264e+09`, // first seen, a minute before the scrape
		`kfleet_overview_refresh_failures_total 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s:\n%s", want, body)
		}
	}
}

func TestFailedListingKeepsTheLastSnapshot(t *testing.T) {
	v := fleetOf(t)
	s, _ := newServer(t, v, nil)
	if err := s.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	v.Fail(errors.New("visibility unavailable"))
	if err := s.Refresh(context.Background()); err == nil {
		t.Fatal("a failed listing refreshed without error")
	}
	snap := s.Snapshot()
	if len(snap.Clusters) != 5 || !strings.Contains(snap.Error, "visibility unavailable") {
		t.Errorf("after a failure: %d clusters, error %q; want the last 5 and the error", len(snap.Clusters), snap.Error)
	}
	_, body := get(t, s.Handler(), overview.PathMetrics, nil)
	if !strings.Contains(body, "kfleet_overview_refresh_failures_total 1") {
		t.Errorf("the failure is not counted:\n%s", body)
	}
}

func TestNewRefusesAnIncompleteConfig(t *testing.T) {
	for name, cfg := range map[string]overview.Config{
		"no client":    {Namespace: "default"},
		"no namespace": {Lister: &overviewtest.Visibility{}},
	} {
		if _, err := overview.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func get(t testing.TB, h http.Handler, path string, headers map[string]string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func clusterNamed(t testing.TB, snap overview.Snapshot, name string) overview.Cluster {
	t.Helper()
	for _, c := range snap.Clusters {
		if c.Cluster == name {
			return c
		}
	}
	t.Fatalf("no cluster %s in the snapshot", name)
	return overview.Cluster{}
}

func containsText(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}
