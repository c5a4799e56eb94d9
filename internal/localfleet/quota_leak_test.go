package localfleet_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/metrics"
)

// oldGenUsed is a broker's old-gen use as kfleet's heap guard reads it:
// scraped from the broker's exposition by internal/metrics.
func oldGenUsed(ctx context.Context, t *testing.T, f *localfleet.Fleet, cluster string, broker int32) int64 {
	t.Helper()
	m, err := metrics.Scrape(ctx, f.MetricsURL(cluster, broker))
	require.NoError(t, err)
	return m.OldGenUsed
}

// throttledOn is how many produce and fetch responses broker throttled,
// all users summed.
func throttledOn(t *testing.T, f *localfleet.Fleet, cluster string, broker int32) int64 {
	t.Helper()
	stats, err := f.QuotaStats(cluster)
	require.NoError(t, err)
	var n int64
	for _, st := range stats {
		n += st.Brokers[broker].ProduceThrottled + st.Brokers[broker].FetchThrottled
	}
	return n
}

// With the leak on, a broker's old gen grows by the configured bytes for
// each response it throttles, and for nothing else: a user without a
// quota produces freely and leaves it flat, a user over its
// producer_byte_rate makes it climb in step with its throttled count. A
// restart frees it.
func TestIntegrationQuotaLeakFollowsThrottledRequests(t *testing.T) {
	t.Parallel()
	f, adm, leaders := quotaCluster(t, func(c *localfleet.ClusterConfig) {
		c.QuotaLeak = localfleet.QuotaLeakConfig{Enabled: true}
	})
	ctx := testContext(t)
	base := map[int32]int64{}
	for _, b := range leaders {
		base[b] = oldGenUsed(ctx, t, f, "local-q", b)
	}
	assert.Equal(t, base[1], base[2])
	assert.Positive(t, base[1])

	// No quota, no throttle: old gen stays where it was.
	var freeHook throttles
	_, high := quotaBounds(len(leaders))
	took := produceBytes(ctx, t, userClient(t, f, free, producerOpts(&freeHook)...), 2*high/recordSize*recordSize)
	t.Logf("free: %d bytes in %s, %d throttles", 2*high/recordSize*recordSize, took, freeHook.n.Load())
	require.Zero(t, freeHook.n.Load())
	for _, b := range leaders {
		assert.Equal(t, base[b], oldGenUsed(ctx, t, f, "local-q", b), "broker %d: nothing throttled, nothing leaked", b)
	}

	// Over its quota: each throttled produce retains 64 KiB.
	byteRateQuota(ctx, t, adm, metered, "producer_byte_rate", false)
	var meteredHook throttles
	produceFor(ctx, t, userClient(t, f, metered, producerOpts(&meteredHook)...), quotaRun)
	for _, b := range leaders {
		var throttled, grew int64
		require.Eventually(t, func() bool {
			// Requests still in flight when the client closed may
			// be throttled a moment later.
			throttled, grew = throttledOn(t, f, "local-q", b), oldGenUsed(ctx, t, f, "local-q", b)-base[b]
			return grew == throttled*localfleet.DefaultQuotaLeakBytes
		}, 5*time.Second, 50*time.Millisecond, "broker %d: %d throttled, old gen grew %d", b, throttled, grew)
		t.Logf("broker %d: %d throttled responses, old gen +%d bytes", b, throttled, grew)
		assert.Positive(t, throttled, "broker %d throttled the metered user", b)
	}

	// A restart is a new JVM: what leaked is gone; the others keep theirs.
	require.NoError(t, f.StopBroker(ctx, "local-q", 1, "test"))
	require.NoError(t, f.StartBroker(ctx, "local-q", 1, "test"))
	assert.Equal(t, base[1], oldGenUsed(ctx, t, f, "local-q", 1), "a restart frees the leak")
	assert.Greater(t, oldGenUsed(ctx, t, f, "local-q", 2), base[2], "broker 2 was not restarted")
}

// The leak turned on for one broker at runtime through the fault API
// (audited): an anonymous producer over the <default> user's quota makes
// that broker retain 1 GiB per throttled response, and it dies of
// OutOfMemoryError at the max heap (6 GiB) on its 5th; the other brokers
// throttle as much and leak nothing.
func TestIntegrationQuotaLeakEndsInOutOfMemoryError(t *testing.T) {
	t.Parallel()
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-q")}})
	ctx := testContext(t)
	_, adm := kafkaClient(t, f, "local-q")
	created, err := adm.CreateTopic(ctx, 3, 3, nil, loadTopic)
	require.NoError(t, err)
	require.NoError(t, created.Err)
	byteRateQuota(ctx, t, adm, "", "producer_byte_rate", false)
	base := oldGenUsed(ctx, t, f, "local-q", 2)

	code, body := postFault(ctx, t, f, "local-q", 2, "quota-leak", "perThrottle=1073741824")
	require.Equal(t, http.StatusOK, code, body)
	code, body = postFault(ctx, t, f, "local-q", 2, "quota-leak", "perThrottle=-1")
	require.Equal(t, http.StatusBadRequest, code, body)

	var h throttles
	cl := userClient(t, f, "", producerOpts(&h)...)
	defer cl.Close()
	value := make([]byte, recordSize)
	require.Eventually(t, func() bool {
		for range 64 {
			cl.Produce(ctx, &kgo.Record{Topic: loadTopic, Value: value}, func(*kgo.Record, error) {})
		}
		return brokerState(t, f, "local-q", 2) == localfleet.StateCrashed
	}, 30*time.Second, 20*time.Millisecond, "broker 2 dies of the leak")
	t.Logf("broker 2 crashed after %d throttled responses (%d throttles told to the client)", throttledOn(t, f, "local-q", 2), h.n.Load())
	assert.GreaterOrEqual(t, throttledOn(t, f, "local-q", 2), int64(5), "1.8 GiB of base + 5 GiB > 6 GiB")

	var faults, ooms []localfleet.Event
	for _, e := range f.Audit("local-q") {
		switch {
		case e.Kind == localfleet.EventFault:
			faults = append(faults, e)
		case e.Kind == localfleet.EventCrash:
			ooms = append(ooms, e)
		}
	}
	require.Len(t, faults, 1)
	assert.Equal(t, int32(2), faults[0].Broker)
	assert.Equal(t, "chaos", faults[0].Who)
	assert.Equal(t, fmt.Sprintf("quota-leak: %d bytes per throttled response", 1<<30), faults[0].Detail)
	require.Len(t, ooms, 1, "broker 2 alone crashed")
	assert.Equal(t, int32(2), ooms[0].Broker)
	assert.Equal(t, "quota-leak", ooms[0].Who)
	assert.Contains(t, ooms[0].Detail, "java.lang.OutOfMemoryError: Java heap space")
	for _, b := range []int32{1, 3} {
		assert.Positive(t, throttledOn(t, f, "local-q", b), "broker %d throttled too", b)
		assert.Equal(t, base, oldGenUsed(ctx, t, f, "local-q", b), "broker %d has no leak", b)
	}
	tail, err := f.BrokerLog("local-q", 2, 20)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(tail, "\n"), "java.lang.OutOfMemoryError: Java heap space")

	// Started again, it has a fresh heap; the leak stays on until cleared.
	cl.Close()
	require.NoError(t, f.StartBroker(ctx, "local-q", 2, "test"))
	assert.Equal(t, base, oldGenUsed(ctx, t, f, "local-q", 2))
	code, body = postFault(ctx, t, f, "local-q", 2, "clear", "")
	require.Equal(t, http.StatusOK, code, body)
}
