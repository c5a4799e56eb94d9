package localfleet_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/internal/localfleet"
)

const (
	// quotaRate is the byte-rate quota under test: a basic-0 tenant's
	// produce quota (OPERATIONS.md, Tenants).
	quotaRate  = 64 << 10
	quotaRun   = 3 * time.Second
	recordSize = 1 << 10
	loadTopic  = "load"
	metered    = "metered" // the user with the quota
	free       = "free"    // a user without one
)

// Kafka's quota sensor spreads a new client's first burst over 10 windows
// of 1 s, so a client that sends as fast as it can gets about 10 s of its
// quota at once, then little more until those 10 s have passed; over a
// few seconds it gets between 10 and 11 s of quota per broker (plus the
// request that crossed it), which these bounds allow 30% around.
func quotaBounds(brokers int) (low, high int64) {
	return int64(0.7 * float64(brokers*quotaRate) * 10), int64(1.3 * float64(brokers*quotaRate) * 11)
}

// throttles counts the throttles franz-go is told of (throttle_time_ms).
type throttles struct{ n, maxMs atomic.Int64 }

func (h *throttles) OnBrokerThrottle(_ kgo.BrokerMetadata, d time.Duration, _ bool) {
	h.n.Add(1)
	for ms := d.Milliseconds(); ; {
		cur := h.maxMs.Load()
		if ms <= cur || h.maxMs.CompareAndSwap(cur, ms) {
			return
		}
	}
}

// quotaCluster starts a SASL cluster of 3 brokers with the users metered
// and free and a topic whose 3 partitions have 3 leaders; it returns the
// superuser's admin client and the leaders. edit, if any, changes the
// cluster's config first.
func quotaCluster(t *testing.T, edit ...func(*localfleet.ClusterConfig)) (*localfleet.Fleet, *kadm.Client, []int32) {
	t.Helper()
	ctx := testContext(t)
	cfg := saslCluster("local-q", false)
	for _, e := range edit {
		e(&cfg)
	}
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{cfg}})
	_, adm := kafkaClient(t, f, "local-q", scramAs(testSuperuser, testSuperPass))
	altered, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: metered, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: metered + "-secret"},
		{User: free, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: free + "-secret"},
	})
	require.NoError(t, err)
	for _, a := range altered {
		require.NoError(t, a.Err)
	}
	created, err := adm.CreateTopic(ctx, 3, 3, nil, loadTopic)
	require.NoError(t, err)
	require.NoError(t, created.Err)
	leaders := map[int32]bool{}
	for _, p := range metadata(t, adm).Topics[loadTopic].Partitions {
		leaders[p.Leader] = true
	}
	require.Len(t, leaders, 3, "one partition led by each broker")
	return f, adm, []int32{1, 2, 3}
}

// byteRateQuota sets (or with remove, lifts) a user's quota key; user ""
// is the <default> user.
func byteRateQuota(ctx context.Context, t *testing.T, adm *kadm.Client, user, key string, remove bool) {
	t.Helper()
	var name *string
	if user != "" {
		name = &user
	}
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: name}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: key, Value: quotaRate, Remove: remove}},
	}})
	require.NoError(t, err)
	for _, r := range res {
		require.NoError(t, r.Err, r.ErrMessage)
	}
}

// userClient is a client of user's ("": without SASL); its user closes
// it.
func userClient(t *testing.T, f *localfleet.Fleet, user string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{kgo.SeedBrokers(f.Endpoints().Clusters["local-q"].Bootstrap...)}, opts...)
	if user != "" {
		opts = append(opts, scramAs(user, user+"-secret"))
	}
	cl, err := kgo.NewClient(opts...)
	require.NoError(t, err)
	return cl
}

// produceFor produces records as fast as cl takes them for d, once it has
// connected (one record), and returns the bytes acknowledged within d. It
// closes cl, so that nothing it still buffers is sent later.
func produceFor(ctx context.Context, t *testing.T, cl *kgo.Client, d time.Duration) int64 {
	defer cl.Close()
	value := make([]byte, recordSize)
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: loadTopic, Value: value}).FirstErr())
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	deadline := time.Now().Add(d)
	var acked atomic.Int64
	for ctx.Err() == nil {
		cl.Produce(ctx, &kgo.Record{Topic: loadTopic, Value: value}, func(r *kgo.Record, err error) {
			if err == nil && time.Now().Before(deadline) {
				acked.Add(int64(len(r.Value)))
			}
		})
	}
	return acked.Load()
}

// produceBytes produces n bytes and returns how long it took, once cl
// has connected (one record). It closes cl.
func produceBytes(ctx context.Context, t *testing.T, cl *kgo.Client, n int64) time.Duration {
	defer cl.Close()
	value := make([]byte, recordSize)
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: loadTopic, Value: value}).FirstErr())
	start := time.Now()
	var failed atomic.Value
	for range n / recordSize {
		cl.Produce(ctx, &kgo.Record{Topic: loadTopic, Value: value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Store(err)
			}
		})
	}
	require.NoError(t, cl.Flush(ctx))
	require.Nil(t, failed.Load())
	return time.Since(start)
}

// producerOpts are a throttled producer's: uncompressed, as quotas count
// bytes on the wire, and the test's zeros would compress to nothing.
func producerOpts(h *throttles) []kgo.Opt {
	return []kgo.Opt{
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(16 << 10),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.WithHooks(h),
	}
}

// scrapeFamilies reads a broker's metrics.
func scrapeFamilies(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	return fams
}

// userGauge is a family's sample for user (client_id empty: user quotas).
func userGauge(fams map[string]*dto.MetricFamily, name, user string) (float64, bool) {
	for _, m := range fams[name].GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		if labels["user"] == user && labels["client_id"] == "" {
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// heldToQuota checks that each leader measures the user near its quota
// and throttled it, in QuotaStats (usage picks the produce or fetch
// figures) and in its metrics; it returns the user's throttled count.
func heldToQuota(t *testing.T, f *localfleet.Fleet, leaders []int32, user, rateMetric, throttleMetric string,
	usage func(localfleet.QuotaUsage) (rate float64, throttled, ms int64)) int64 {
	t.Helper()
	stats, err := f.QuotaStats("local-q")
	require.NoError(t, err)
	st, ok := stats[user]
	require.True(t, ok, "%s is in QuotaStats", user)
	for _, b := range leaders {
		rate, throttled, ms := usage(st.Brokers[b])
		t.Logf("broker %d: %s at %.0f B/s (quota %d), %d throttled, %d ms", b, user, rate, quotaRate, throttled, ms)
		assert.InEpsilon(t, quotaRate, rate, 0.3, "broker %d measures %s near its quota", b, user)
		assert.Positive(t, throttled, "broker %d throttled %s", b, user)
		assert.Positive(t, ms, "broker %d throttle time", b)

		fams := scrapeFamilies(t, f.MetricsURL("local-q", b))
		v, ok := userGauge(fams, rateMetric, user)
		require.True(t, ok, "broker %d: %s{user=%q}", b, rateMetric, user)
		assert.InEpsilon(t, quotaRate, v, 0.3, "broker %d: %s", b, rateMetric)
		v, ok = userGauge(fams, throttleMetric, user)
		require.True(t, ok, "broker %d: %s{user=%q}", b, throttleMetric, user)
		assert.Positive(t, v, "broker %d: %s", b, throttleMetric)
	}
	_, throttled, _ := usage(st.QuotaUsage)
	return throttled
}

func produceUsage(u localfleet.QuotaUsage) (float64, int64, int64) {
	return u.ProduceByteRate, u.ProduceThrottled, u.ProduceThrottleMs
}

func fetchUsage(u localfleet.QuotaUsage) (float64, int64, int64) {
	return u.FetchByteRate, u.FetchThrottled, u.FetchThrottleMs
}

// A user with a producer_byte_rate producing as fast as it can is held to
// its quota on each broker, as Kafka holds it: franz-go is told to wait
// (throttle_time_ms), the connection is muted meanwhile, and the brokers
// measure and report the user at its quota. A user without a quota is
// not throttled, and lifting the quota lifts the throttle.
func TestIntegrationProducerByteRateThrottles(t *testing.T) {
	t.Parallel()
	f, adm, leaders := quotaCluster(t)
	ctx := testContext(t)
	byteRateQuota(ctx, t, adm, metered, "producer_byte_rate", false)

	var meteredHook, freeHook throttles
	acked := produceFor(ctx, t, userClient(t, f, metered, producerOpts(&meteredHook)...), quotaRun)
	low, high := quotaBounds(len(leaders))
	t.Logf("metered: %d bytes acked in %s (%.0f B/s); Kafka's allowance for 3 brokers: %d..%d",
		acked, quotaRun, float64(acked)/quotaRun.Seconds(), low, high)
	assert.GreaterOrEqual(t, acked, low)
	assert.LessOrEqual(t, acked, high, "held to its quota")
	assert.Positive(t, meteredHook.n.Load(), "responses carry throttle_time_ms")
	assert.Positive(t, meteredHook.maxMs.Load())
	heldToQuota(t, f, leaders, metered, localfleet.MetricProduceByteRate, localfleet.MetricProduceThrottleTime, produceUsage)

	// Twice what the quota allows in 11 s, in less than 10 s: only an
	// unthrottled user can (and it takes well under a second).
	unthrottled := 2 * high / recordSize * recordSize
	took := produceBytes(ctx, t, userClient(t, f, free, producerOpts(&freeHook)...), unthrottled)
	t.Logf("free: %d bytes acked in %s", unthrottled, took)
	assert.Less(t, took, 10*time.Second, "a user without a quota is not held to it")
	assert.Zero(t, freeHook.n.Load(), "a user without a quota is not throttled")
	stats, err := f.QuotaStats("local-q")
	require.NoError(t, err)
	assert.Zero(t, stats[free].ProduceThrottled)
	assert.GreaterOrEqual(t, stats[free].ProduceBytes, unthrottled, "request bytes count, records and their framing")

	throttled := stats[metered].ProduceThrottled
	byteRateQuota(ctx, t, adm, metered, "producer_byte_rate", true)
	var liftedHook throttles
	took = produceBytes(ctx, t, userClient(t, f, metered, producerOpts(&liftedHook)...), unthrottled)
	t.Logf("metered without its quota: %d bytes acked in %s", unthrottled, took)
	assert.Less(t, took, 10*time.Second)
	assert.Zero(t, liftedHook.n.Load(), "the quota lifted, nothing is throttled")
	stats, err = f.QuotaStats("local-q")
	require.NoError(t, err)
	assert.Equal(t, throttled, stats[metered].ProduceThrottled, "no throttle since the quota was lifted")
}

// A user with a consumer_byte_rate is held to it on each broker: a fetch
// that would exceed it comes back empty with throttle_time_ms, and the
// consumer fetches the same records again after the throttle. A user
// without a quota reads everything at once; lifting the quota lifts the
// throttle.
func TestIntegrationConsumerByteRateThrottles(t *testing.T) {
	t.Parallel()
	f, adm, leaders := quotaCluster(t)
	ctx := testContext(t)
	const perPartition = 1 << 20 // more than 11 s of quota on each broker
	total := int64(len(leaders) * perPartition)
	// Small uncompressed batches: a fetch returns at least one batch, and
	// quotas count the bytes on the wire.
	super, _ := kafkaClient(t, f, "local-q", scramAs(testSuperuser, testSuperPass), kgo.ProducerBatchMaxBytes(16<<10),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	value := make([]byte, recordSize)
	for p := range int32(len(leaders)) {
		for range perPartition / recordSize {
			super.Produce(ctx, &kgo.Record{Topic: loadTopic, Partition: p, Value: value}, nil)
		}
	}
	require.NoError(t, super.Flush(ctx))
	byteRateQuota(ctx, t, adm, metered, "consumer_byte_rate", false)

	// consumeFor reads the topic from the start for at most d, until it
	// has everything, and returns the bytes read.
	consumeFor := func(user string, h *throttles, d time.Duration) int64 {
		cl := userClient(t, f, user, kgo.ConsumeTopics(loadTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
			kgo.FetchMaxWait(200*time.Millisecond), kgo.WithHooks(h))
		defer cl.Close()
		ctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		var read int64
		for read < total && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { read += int64(len(r.Value)) })
		}
		return read
	}

	var freeHook, meteredHook, liftedHook throttles
	start := time.Now()
	assert.Equal(t, total, consumeFor(free, &freeHook, 10*time.Second), "a user without a quota reads everything")
	t.Logf("free read %d bytes in %s", total, time.Since(start))
	assert.Zero(t, freeHook.n.Load(), "a user without a quota is not throttled")

	read := consumeFor(metered, &meteredHook, quotaRun)
	low, high := quotaBounds(len(leaders))
	t.Logf("metered read %d bytes in %s; Kafka's allowance for 3 brokers: %d..%d", read, quotaRun, low, high)
	assert.GreaterOrEqual(t, read, low)
	assert.LessOrEqual(t, read, high, "held to its quota")
	assert.Positive(t, meteredHook.n.Load(), "responses carry throttle_time_ms")
	throttled := heldToQuota(t, f, leaders, metered, localfleet.MetricFetchByteRate, localfleet.MetricFetchThrottleTime, fetchUsage)
	stats, err := f.QuotaStats("local-q")
	require.NoError(t, err)
	assert.Zero(t, stats[free].FetchThrottled)
	assert.GreaterOrEqual(t, stats[free].FetchBytes, total)

	byteRateQuota(ctx, t, adm, metered, "consumer_byte_rate", true)
	start = time.Now()
	assert.Equal(t, total, consumeFor(metered, &liftedHook, 10*time.Second), "without its quota it reads everything")
	t.Logf("metered without its quota read %d bytes in %s", total, time.Since(start))
	assert.Zero(t, liftedHook.n.Load(), "the quota lifted, nothing is throttled")
	stats, err = f.QuotaStats("local-q")
	require.NoError(t, err)
	assert.Equal(t, throttled, stats[metered].FetchThrottled, "no throttle since the quota was lifted")
}

// A client that does not authenticate is ANONYMOUS, held to the <default>
// user's quota as in Kafka.
func TestIntegrationDefaultUserQuotaThrottlesAnonymous(t *testing.T) {
	t.Parallel()
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-q")}})
	ctx := testContext(t)
	_, adm := kafkaClient(t, f, "local-q")
	created, err := adm.CreateTopic(ctx, 3, 3, nil, loadTopic)
	require.NoError(t, err)
	require.NoError(t, created.Err)
	byteRateQuota(ctx, t, adm, "", "producer_byte_rate", false)

	var h throttles
	acked := produceFor(ctx, t, userClient(t, f, "", producerOpts(&h)...), quotaRun)
	_, high := quotaBounds(3)
	t.Logf("anonymous: %d bytes acked in %s", acked, quotaRun)
	assert.LessOrEqual(t, acked, high, "held to the <default> user's quota")
	assert.Positive(t, h.n.Load(), "responses carry throttle_time_ms")
	stats, err := f.QuotaStats("local-q")
	require.NoError(t, err)
	assert.Positive(t, stats["ANONYMOUS"].ProduceThrottled)
	assert.InEpsilon(t, 3*quotaRate, stats["ANONYMOUS"].ProduceByteRate, 0.3, "the quota on each of 3 brokers")
	_, err = f.QuotaStats("no-such-cluster")
	require.ErrorIs(t, err, localfleet.ErrUnknownCluster)
}
