package integration_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/telemetry"
	"github.com/kfleet/kfleet/workflows"
)

// metricValue adds up the series of name whose labels include labels (a
// counter's value, a histogram's observation count).
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	v, _ := telemetry.Find(mfs, name, labels)
	return v
}

// scrape GETs a metrics endpoint as Prometheus would.
func scrape(t testing.TB, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.True(t, strings.Contains(resp.Header.Get("Content-Type"), "text/plain"), "exposition format, got %s", resp.Header.Get("Content-Type"))
	return string(body)
}

// readMetric reads one series' value from a Prometheus endpoint.
func readMetric(t testing.TB, url, series string) (float64, bool) {
	t.Helper()
	for line := range strings.Lines(scrape(t, url)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, line)
			return f, true
		}
	}
	return 0, false
}

// waitMetric waits for a series to appear and returns its value.
func waitMetric(t testing.TB, url, series string, within time.Duration) float64 {
	t.Helper()
	var v float64
	require.Eventually(t, func() bool {
		var ok bool
		v, ok = readMetric(t, url, series)
		return ok
	}, within, 200*time.Millisecond, "%s at %s", series, url)
	return v
}

// TestIntegrationGateThatCanNeverOpenAsksAndAbortTouchesNothing: a topic
// whose replication factor equals min.insync.replicas can never let one of
// its replicas restart; the roll says so at once and a human aborts.
func TestIntegrationGateThatCanNeverOpenAsksAndAbortTouchesNothing(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	stack := startStack(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Specs["local-a"].Bootstrap...))
	require.NoError(t, err)
	defer cl.Close()
	created, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 2, nil, "fragile")
	require.NoError(t, err)
	require.NoError(t, created.Err)
	before := len(stack.Fleet.Audit("local-a"))

	op, err := entity.Request(ctx, stack.Client, "local-a", restartReq("integration-test"))
	require.NoError(t, err)
	pause := waitPaused(ctx, t, stack, op)
	assert.True(t, pause.CanSkip)
	assert.Contains(t, pause.Reason, "fragile")
	assert.Contains(t, pause.Reason, "no wait can open")

	_, err = entity.Decide(ctx, stack.Client, "local-a", "", workflows.Decision{Action: workflows.DecisionAbort, By: "oncall", Reason: "raise RF first"})
	require.NoError(t, err)
	_, err = entity.FollowOperation(ctx, stack.Client, "local-a", op.ID, 200*time.Millisecond, func(entity.Progress) {})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "aborted by oncall")
	assert.Len(t, stack.Fleet.Audit("local-a"), before, "no broker was touched")
	assert.Empty(t, stack.Fleet.Violations("local-a"))
}

// TestIntegrationRollWaitsWhileAReplicaCatchesUp: a broker restarted
// behind kfleet's back is still catching up, so stopping any other broker
// would take its partitions under min.insync.replicas. Either the entity
// saw the broker leave — then the recovery it started holds the roll until
// the broker is back in sync — or the roll waits on its gates; either way
// nothing is touched until the replica is back in sync.
func TestIntegrationRollWaitsWhileAReplicaCatchesUp(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	cfg := fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3})
	cfg.Clusters[0].Timing.CatchUp = 4 * time.Second
	stack := startStack(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	require.NoError(t, stack.Fleet.StopBroker(ctx, "local-a", 3, "someone else"))
	require.NoError(t, stack.Fleet.StartBroker(ctx, "local-a", 3, "someone else"))
	op, err := entity.Request(ctx, stack.Client, "local-a", restartReq("integration-test"))
	require.NoError(t, err)
	var sawWait, sawLive bool
	_, err = entity.FollowOperation(ctx, stack.Client, "local-a", op.ID, 100*time.Millisecond, func(p entity.Progress) {
		for _, line := range p.Lines {
			sawWait = sawWait || strings.Contains(line, workflows.StepWaitGates)
			sawLive = sawLive || strings.HasPrefix(line, "waiting for the gates of broker")
		}
	})
	require.NoError(t, err)
	st, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	var recovery, roll *workflows.Operation
	for i, h := range st.History {
		switch h.Kind {
		case workflows.OpRecovery:
			recovery = &st.History[i]
		case workflows.OpRollingRestart:
			roll = &st.History[i]
		}
	}
	require.NotNil(t, roll)
	if recovery != nil {
		assert.Equal(t, []int32{3}, recovery.Brokers)
		assert.False(t, roll.StartedAt.Before(recovery.FinishedAt), "the recovery held the roll")
	} else {
		assert.True(t, sawWait, "the roll reported waiting on a gate")
		assert.True(t, sawLive, "status showed the wait's own progress, from its heartbeat")
	}

	var inSync3, firstKfleetStop time.Time
	for _, e := range stack.Fleet.Audit("local-a") {
		if e.Broker == 3 && e.Kind == localfleet.EventInSync && inSync3.IsZero() {
			inSync3 = e.Time
		}
		if e.Kind == localfleet.EventStop && e.Who != "someone else" && firstKfleetStop.IsZero() {
			firstKfleetStop = e.Time
		}
	}
	require.False(t, inSync3.IsZero())
	assert.True(t, firstKfleetStop.After(inSync3), "kfleet touched nothing until broker 3 was back in sync (stop %s, in sync %s)", firstKfleetStop, inSync3)
	assert.Empty(t, stack.Fleet.Violations("local-a"))
}
