package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/metrics"
	"github.com/kfleet/kfleet/internal/secrets"
	"github.com/kfleet/kfleet/workflows"
)

const (
	// leakPerThrottle: 8 MiB of old gen per throttled response, so that
	// a few tenants over their quota fill the 6 GiB heap within a minute
	// or so, well before the test's budget ends, and kfleet has to act
	// first.
	leakPerThrottle = 8 << 20
	// leakTenants are created; the ones whose topic the same broker
	// leads turn aggressive, each with leakProducersEach producers.
	leakTenants       = 6
	leakProducersEach = 2
)

// oldGen is broker's old-gen use as kfleet's heap guard reads it.
func oldGen(ctx context.Context, t *testing.T, stack *devstack.Stack, broker int32) int64 {
	t.Helper()
	m, err := metrics.Scrape(ctx, stack.Fleet.MetricsURL("local-a", broker))
	require.NoError(t, err)
	return m.OldGenUsed
}

// TestIntegrationQuotaLeakIsRestartedBeforeItFallsOver: the seeds' second
// story (KAFKA-4725). Six basic-0 tenants are created through kfleet on a
// SASL+ACL cluster (a producer_byte_rate of 64 KiB/s each, set by kfleet),
// each with a one-partition topic made through the admin lane. The
// tenants whose topics one broker leads (at least two of six, over three
// brokers) keep producing as fast as they are let, far over their quota;
// every throttled response leaks old gen on that broker (the fleet's
// quota-path leak), which climbs tick after tick. kfleet's heap guard
// restarts that broker alone, through a gated roll, before the
// OutOfMemoryError the leak would end in, judged by the fleet's audit.
func TestIntegrationQuotaLeakIsRestartedBeforeItFallsOver(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	const superPass = "leak-superuser-secret"
	stack := startStackWith(t, fastFleet(secured(localfleet.ClusterConfig{ID: "local-a", Brokers: 3,
		QuotaLeak: localfleet.QuotaLeakConfig{Enabled: true, BytesPerThrottle: leakPerThrottle}}, superPass)), func(o *devstack.StackOptions) {
		o.Health = selfHealingPolicy
		o.NotifyOut = io.Discard
		o.Secrets = "file:" + t.TempDir()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)
	waitStatus(ctx, t, stack, "local-a", 30*time.Second, "the brokers' disks are known", func(st workflows.ClusterStatus) bool {
		return workflows.TenantRoom(st).DiskBytes > 0
	})
	notFound := func(err error) bool { return errors.Is(err, secrets.ErrNotFound) }
	creds := map[string]fleet.TenantCredentials{}
	var topics []fleet.TopicRequest
	for i := range leakTenants {
		name := fmt.Sprintf("leak-%05d", i+1)
		_, op, err := entity.CreateTenant(ctx, stack.Client, "local-a", workflows.TenantCreateParams{Plan: "basic-0", Name: name}, "alice", "")
		require.NoError(t, err)
		res, _, err := entity.Follow[workflows.TenantResult](ctx, stack.Client, "local-a", op.ID, 50*time.Millisecond, func(entity.Progress) {})
		require.NoError(t, err)
		creds[name], err = entity.FetchHandout(ctx, stack.Secrets, notFound, "local-a", name, res.Handout.User)
		require.NoError(t, err)
		topics = append(topics, fleet.TopicRequest{Tenant: name, Name: name + ".events", Partitions: 1})
	}
	raw, err := json.Marshal(workflows.TopicAdminParams{Action: "create", Topics: topics})
	require.NoError(t, err)
	op, err := entity.Request(ctx, stack.Client, "local-a", workflows.Request{Kind: workflows.OpTopicAdmin, RequestedBy: "alice", Params: raw})
	require.NoError(t, err)
	_, _, err = entity.Follow[activities.TopicBatchResult](ctx, stack.Client, "local-a", op.ID, 50*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err)

	// The broker leading the most tenants' topics; its tenants turn
	// aggressive.
	adm := superAdmin(t, stack, "local-a", superPass)
	md, err := adm.Metadata(ctx)
	require.NoError(t, err)
	led := map[int32][]string{}
	for _, tp := range topics {
		p, ok := md.Topics[tp.Name].Partitions[0]
		require.True(t, ok, tp.Name)
		led[p.Leader] = append(led[p.Leader], tp.Tenant)
	}
	var leaker int32
	for b, ts := range led {
		if len(ts) > len(led[leaker]) {
			leaker = b
		}
	}
	aggressive := led[leaker]
	require.GreaterOrEqual(t, len(aggressive), 2)
	t.Logf("broker %d leads the topics of %v", leaker, aggressive)
	base := oldGen(ctx, t, stack, leaker)

	// The tenants produce as fast as they are let, until kfleet stops
	// the leaking broker (after that, leadership moves and they would
	// start the same leak on the next leader).
	produceCtx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	var wg sync.WaitGroup
	for _, name := range aggressive {
		for i := range leakProducersEach {
			p := tenantClient(t, creds[name], kgo.DefaultProduceTopic(name+".events"), kgo.ClientID(fmt.Sprintf("%s-%d", name, i)),
				kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerBatchMaxBytes(16<<10))
			wg.Add(1)
			go func() {
				defer wg.Done()
				value := make([]byte, 1<<10)
				for produceCtx.Err() == nil {
					p.Produce(produceCtx, &kgo.Record{Value: value}, func(*kgo.Record, error) {})
				}
			}()
		}
	}
	// Watched closely: the fast fleet has the broker back within a
	// fraction of a second. The tenants stop at once, but a client
	// closing may still get a request or two throttled by the new
	// process; throttledAtStop tells those apart.
	throttled := func() int64 {
		stats, err := stack.Fleet.QuotaStats("local-a")
		assert.NoError(t, err) // also called from the watcher: no FailNow
		var n int64
		for _, name := range aggressive {
			n += stats[name].Brokers[leaker].ProduceThrottled
		}
		return n
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

	roll := finished(ctx, t, stack, "local-a", workflows.OpRollingRestart, time.Minute)
	require.Equal(t, workflows.StatusSucceeded, roll.Status, roll.Error)
	assert.Equal(t, []int32{leaker}, roll.Brokers)
	assert.Equal(t, "kfleet-health", roll.RequestedBy)
	assert.Contains(t, roll.Reason, "climbing")
	t.Logf("op: %s", roll.Reason)
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
