package integration_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/errgroup"

	"github.com/kfleet/kfleet/internal/overview/overviewtest"
	"github.com/kfleet/kfleet/workflows"
)

// browser starts Debian's chromium, headless, for one test; it is closed
// when the test ends.
func browser(t testing.TB) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	require.NoError(t, err, "chromium is needed: run `make deps`")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1500, 900),
		// Tests run as root in CI, where chromium's sandbox cannot start.
		chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	require.NoError(t, chromedp.Do(ctx), "start chromium")
	return ctx
}

// artefact is where a test keeps a file for people to look at after the
// run: $KFLEET_ARTEFACTS, or .artefacts/ at the repository root.
func artefact(t testing.TB, name string) string {
	t.Helper()
	dir := os.Getenv("KFLEET_ARTEFACTS")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", ".artefacts")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	abs, err := filepath.Abs(filepath.Join(dir, name))
	require.NoError(t, err)
	return abs
}

// pageEval evaluates a JavaScript expression on the page.
func pageEval[T any](ctx context.Context, expr string) (T, error) {
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// startFixtureFleet starts n cluster entities as Temporal sees them: a
// ClusterWorkflow execution each, its overview in its memo, on a task
// queue no worker polls. The overview lists them exactly as it lists a
// real fleet, without two thousand entities to run.
func startFixtureFleet(ctx context.Context, t testing.TB, c client.Client, n int) {
	t.Helper()
	now := time.Now().UTC()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i := range n {
		g.Go(func() error {
			o := overviewtest.Cluster(i, now)
			_, err := c.ExecuteWorkflow(gctx, client.StartWorkflowOptions{
				ID:                    workflows.ClusterWorkflowID(o.Cluster),
				TaskQueue:             "overview-fixture",
				Memo:                  map[string]any{workflows.MemoOverview: o},
				TypedSearchAttributes: temporal.NewSearchAttributes(workflows.AttrClusterID.ValueSet(o.Cluster)),
			}, "ClusterWorkflow")
			return err
		})
	}
	require.NoError(t, g.Wait(), "start the fixture fleet's entities")
}
