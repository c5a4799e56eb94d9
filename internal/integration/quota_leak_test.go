package integration_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/metrics"
	"github.com/kfleet/kfleet/workflows"
)

const (
	// leakPerThrottle: 8 MiB of old gen per throttled response, so that
	// a handful of producers over their quota fill the 6 GiB heap within
	// a minute or so, well before the test's budget ends, and kfleet has
	// to act first.
	leakPerThrottle = 8 << 20
	// leakQuota is the <default> user's producer_byte_rate: a basic
	// tenant's.
	leakQuota     = 64 << 10
	leakProducers = 4
)

// oldGen is broker's old-gen use as kfleet's heap guard reads it.
func oldGen(ctx context.Context, t *testing.T, stack *devstack.Stack, broker int32) int64 {
	t.Helper()
	m, err := metrics.Scrape(ctx, stack.Fleet.MetricsURL("local-a", broker))
	require.NoError(t, err)
	return m.OldGenUsed
}

// TestIntegrationQuotaLeakIsRestartedBeforeItFallsOver: the seeds' second
// story (KAFKA-4725). Tenants keep producing over their quota to a
// partition one broker leads; every throttled response leaks old gen on
// that broker (the fleet's quota-path leak), which climbs tick after tick.
// kfleet's heap guard restarts that broker alone, through a gated roll,
// before the OutOfMemoryError the leak would end in.
func TestIntegrationQuotaLeakIsRestartedBeforeItFallsOver(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	stack := startSelfHealingStack(t, localfleet.ClusterConfig{ID: "local-a", Brokers: 3,
		QuotaLeak: localfleet.QuotaLeakConfig{Enabled: true, BytesPerThrottle: leakPerThrottle}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)

	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Specs["local-a"].Bootstrap...))
	require.NoError(t, err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	created, err := adm.CreateTopic(ctx, 1, 3, nil, "tenants")
	require.NoError(t, err)
	require.NoError(t, created.Err)
	md, err := adm.Metadata(ctx, "tenants")
	require.NoError(t, err)
	leaker := md.Topics["tenants"].Partitions[0].Leader
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user"}}, // <default>: every anonymous tenant
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: leakQuota}},
	}})
	require.NoError(t, err)
	for _, r := range res {
		require.NoError(t, r.Err, r.ErrMessage)
	}
	base := oldGen(ctx, t, stack, leaker)

	// The tenants produce as fast as they are let, until kfleet stops
	// the leaking broker (after that, leadership moves and they would
	// start the same leak on the next leader).
	produceCtx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	var wg sync.WaitGroup
	for i := range leakProducers {
		p, err := kgo.NewClient(kgo.SeedBrokers(stack.Specs["local-a"].Bootstrap...), kgo.DefaultProduceTopic("tenants"),
			kgo.ClientID(fmt.Sprintf("tenant-%d", i)),
			kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(16<<10))
		require.NoError(t, err)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer p.Close()
			value := make([]byte, 1<<10)
			for produceCtx.Err() == nil {
				p.Produce(produceCtx, &kgo.Record{Value: value}, func(*kgo.Record, error) {})
			}
		}()
	}
	// Watched closely: the fast fleet has the broker back within a
	// fraction of a second. The tenants stop at once, but a client
	// closing may still get a request or two throttled by the new
	// process; throttledAtStop tells those apart.
	throttled := func() int64 {
		stats, err := stack.Fleet.QuotaStats("local-a")
		assert.NoError(t, err) // also called from the watcher: no FailNow
		return stats["ANONYMOUS"].Brokers[leaker].ProduceThrottled
	}
	var throttledAtStop int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for produceCtx.Err() == nil {
			if st, err := stack.Fleet.BrokerState("local-a", leaker); err == nil && st != localfleet.StateRunning {
				throttledAtStop = throttled()
				stopProducing()
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var peak int64
	require.Eventually(t, func() bool {
		for _, e := range stack.Fleet.Audit("local-a") {
			if e.Kind == localfleet.EventStop && e.Broker == leaker {
				return true
			}
		}
		if m, err := metrics.Scrape(ctx, stack.Fleet.MetricsURL("local-a", leaker)); err == nil {
			peak = max(peak, m.OldGenUsed)
		}
		return false
	}, time.Minute, 10*time.Millisecond, "kfleet stops the leaking broker %d", leaker)
	wg.Wait()
	t.Logf("broker %d: old gen %d -> at least %d MiB (%d throttled produces) before kfleet stopped it",
		leaker, base>>20, peak>>20, throttledAtStop)
	assert.Greater(t, peak, base, "old gen climbed under throttling")
	assert.Positive(t, throttledAtStop)

	op := finished(ctx, t, stack, "local-a", workflows.OpRollingRestart, time.Minute)
	require.Equal(t, workflows.StatusSucceeded, op.Status, op.Error)
	assert.Equal(t, []int32{leaker}, op.Brokers)
	assert.Equal(t, "kfleet-health", op.RequestedBy)
	assert.Contains(t, op.Reason, "climbing")
	t.Logf("op: %s", op.Reason)
	// The new process retains only what it throttled itself.
	after, late := oldGen(ctx, t, stack, leaker)-base, throttled()-throttledAtStop
	t.Logf("after the restart: old gen base + %d MiB, %d throttled produces since the stop", after>>20, late)
	assert.Less(t, after, peak-base, "the restart freed the leak")
	assert.LessOrEqual(t, after, late*leakPerThrottle)

	a := auditSerial(t, stack.Fleet.Audit("local-a"))
	assert.Equal(t, map[int32]int{leaker: 1}, a.stops, "the leaking broker alone, once")
	for _, e := range stack.Fleet.Audit("local-a") {
		assert.NotEqual(t, localfleet.EventCrash, e.Kind, "restarted before an OutOfMemoryError: %s", e.Detail)
	}
	noViolations(t, stack, "local-a")
}
