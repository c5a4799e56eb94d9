package localfleet

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The sensor measures as Kafka's Rate over a SampledStat does: a young
// sensor's window is padded to 10 s, samples a ring old are dropped.
func TestSampledRate(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	cfg := rateConfig()
	var s sampledStat
	s.record(cfg, 10_000, t0)
	assert.Equal(t, 10*time.Second, s.windowSize(cfg, t0), "one burst is spread over 10 windows")
	assert.InDelta(t, 1000, s.rate(cfg, t0), 1e-9)

	at := t0.Add(2500 * time.Millisecond)
	s.record(cfg, 500, at)
	assert.Equal(t, 10500*time.Millisecond, s.windowSize(cfg, at), "2 whole windows and a half, padded to 10 and a half")
	assert.InDelta(t, 10_500.0/10.5, s.rate(cfg, at), 1e-9)

	late := t0.Add(30 * time.Second)
	assert.Zero(t, s.rate(cfg, late), "samples a ring (11 s) old are dropped")

	// An old sensor measures over its real span.
	var old sampledStat
	for i := range 20 {
		old.record(cfg, 100, t0.Add(time.Duration(i)*time.Second))
	}
	now := t0.Add(19500 * time.Millisecond)
	assert.Equal(t, 10500*time.Millisecond, old.windowSize(cfg, now), "the oldest live sample started at 9 s")
	assert.InDelta(t, 1100/10.5, old.rate(cfg, now), 1e-9)
}

func TestThrottleMillis(t *testing.T) {
	tests := []struct {
		name            string
		observed, quota float64
		window          time.Duration
		want            int32
	}{
		{"within", 999, 1000, 10 * time.Second, 0},
		{"at the quota", 1000, 1000, 10 * time.Second, 0},
		{"half over", 1500, 1000, 10 * time.Second, 5000},
		{"rounded", 1000.06, 1000, 10 * time.Second, 1}, // 0.6 ms
		{"zero quota", 1, 0, 10 * time.Second, math.MaxInt32},
		{"absurd", 1e15, 1, 11 * time.Second, math.MaxInt32},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, throttleMillis(tt.observed, tt.quota, tt.window), tt.name)
	}
}

func TestThrottleTimeAvg(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var s sampledStat
	assert.True(t, math.IsNaN(s.avg(throttleConfig(), t0)), "nothing throttled: NaN, as Kafka's Avg")
	s.record(throttleConfig(), 100, t0)
	s.record(throttleConfig(), 300, t0.Add(time.Second))
	assert.InDelta(t, 200, s.avg(throttleConfig(), t0.Add(2*time.Second)), 1e-9)
	assert.True(t, math.IsNaN(s.avg(throttleConfig(), t0.Add(2*time.Minute))), "forgotten after 2 x 30 s")
}

// Which quota applies and which sensor counts a client follow Kafka's
// DefaultQuotaCallback.
func TestClientQuotasResolve(t *testing.T) {
	u := func(name string) quotaEntity { return quotaEntity{user: named(name)} }
	uc := func(user, client entityPart) quotaEntity { return quotaEntity{user: user, client: client} }
	c := func(name string) quotaEntity { return quotaEntity{client: named(name)} }
	type set struct {
		e quotaEntity
		v float64
	}
	tests := []struct {
		name     string
		quotas   []set
		user, id string
		want     resolution
	}{
		{"no quota ever", nil, "alice", "app", resolution{}},
		{"user", []set{{u("alice"), 100}}, "alice", "app",
			resolution{enabled: true, tags: sensorTags{user: "alice"}, limit: 100, hasLimit: true}},
		{"another user: counted, unlimited", []set{{u("alice"), 100}}, "bob", "app",
			resolution{enabled: true, tags: sensorTags{user: "bob"}}},
		{"default user", []set{{u("alice"), 100}, {quotaEntity{user: dflt()}, 50}}, "ANONYMOUS", "app",
			resolution{enabled: true, tags: sensorTags{user: "ANONYMOUS"}, limit: 50, hasLimit: true}},
		{"own beats default", []set{{u("alice"), 100}, {quotaEntity{user: dflt()}, 50}}, "alice", "app",
			resolution{enabled: true, tags: sensorTags{user: "alice"}, limit: 100, hasLimit: true}},
		{"client-id only", []set{{c("app"), 10}}, "alice", "app",
			resolution{enabled: true, tags: sensorTags{clientID: "app"}, limit: 10, hasLimit: true}},
		{"default client-id", []set{{c("app"), 10}, {quotaEntity{client: dflt()}, 20}}, "alice", "other",
			resolution{enabled: true, tags: sensorTags{clientID: "other"}, limit: 20, hasLimit: true}},
		{"user and client beats user", []set{{u("alice"), 100}, {uc(named("alice"), named("app")), 7}}, "alice", "app",
			resolution{enabled: true, tags: sensorTags{user: "alice", clientID: "app"}, limit: 7, hasLimit: true}},
		{"user beats default user and client", []set{{u("alice"), 100}, {uc(dflt(), named("app")), 7}}, "alice", "app",
			resolution{enabled: true, tags: sensorTags{user: "alice"}, limit: 100, hasLimit: true}},
		{"user beats client-id", []set{{u("alice"), 100}, {c("app"), 10}}, "alice", "app",
			resolution{enabled: true, tags: sensorTags{user: "alice"}, limit: 100, hasLimit: true}},
		{"client-id when the user has none", []set{{u("alice"), 100}, {c("app"), 10}}, "bob", "app",
			resolution{enabled: true, tags: sensorTags{clientID: "app"}, limit: 10, hasLimit: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q clientQuotas
			for _, s := range tt.quotas {
				q.set(quotaProduce, s.e, &s.v)
			}
			assert.Equal(t, tt.want, q.resolve(quotaProduce, tt.user, tt.id))
			assert.False(t, q.resolve(quotaFetch, tt.user, tt.id).enabled, "quota types are separate")
		})
	}

	var q clientQuotas
	v := 100.0
	q.set(quotaProduce, u("alice"), &v)
	q.set(quotaProduce, u("alice"), nil)
	assert.Equal(t, resolution{enabled: true, tags: sensorTags{user: "alice"}}, q.resolve(quotaProduce, "alice", "app"),
		"a removed quota lifts the limit; the type stays enabled, as in Kafka")
}

// A broker's manager throttles a user over its quota, by the formula, and
// keeps its usage; a reset (the process ended) forgets the rates only.
func TestQuotaManagerRecord(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	var q clientQuotas
	limit := 1000.0
	q.set(quotaProduce, quotaEntity{user: named("alice")}, &limit)
	var m quotaManager

	assert.Zero(t, m.record(&q, quotaProduce, "alice", "app", 10_000, t0), "10 s of quota at once is allowed")
	assert.Equal(t, int32(500), m.record(&q, quotaProduce, "alice", "app", 500, t0), "(10500/10 - 1000) / 1000 x 10 s")
	assert.Zero(t, m.record(&q, quotaProduce, "bob", "app", 1<<20, t0), "bob has no quota")
	_, ok := m.fetchMaxBytes(&q, "alice", "app")
	assert.False(t, ok, "no consumer quota")

	u := m.usage(t0)
	assert.Equal(t, QuotaUsage{ProduceBytes: 10_500, ProduceByteRate: 1050, ProduceThrottled: 1, ProduceThrottleMs: 500}, u["alice"])
	assert.Zero(t, u["bob"].ProduceThrottled)

	fams := m.quotaFamilies(map[string]int64{"alice": 1}, t0)
	require.Len(t, fams, 2, "produce byte-rate and throttle-time")
	assert.Equal(t, MetricProduceByteRate, fams[0].GetName())
	assert.InDelta(t, 1051, fams[0].GetMetric()[0].GetGauge().GetValue(), 1e-9, "alice's sensor plus the modelled rate")
	assert.Equal(t, MetricProduceThrottleTime, fams[1].GetName())
	assert.InDelta(t, 500, fams[1].GetMetric()[0].GetGauge().GetValue(), 1e-9)

	m.reset()
	u = m.usage(t0)
	assert.Zero(t, u["alice"].ProduceByteRate)
	assert.Equal(t, int64(10_500), u["alice"].ProduceBytes)
	assert.Zero(t, m.record(&q, quotaProduce, "alice", "app", 10_000, t0.Add(time.Second)), "a new process allows a new burst")

	// A throttled fetch is answered empty: its bytes are taken back.
	flimit := 1000.0
	q.set(quotaFetch, quotaEntity{user: named("alice")}, &flimit)
	assert.Zero(t, m.record(&q, quotaFetch, "alice", "", 10_000, t0))
	assert.Equal(t, int32(5000), m.record(&q, quotaFetch, "alice", "", 5000, t0), "(15000/10 - 1000) / 1000 x 10 s")
	u = m.usage(t0)
	assert.Equal(t, int64(10_000), u["alice"].FetchBytes, "the throttled response's bytes are not counted")
	assert.InDelta(t, 1000, u["alice"].FetchByteRate, 1e-9)
	assert.Equal(t, int64(1), u["alice"].FetchThrottled)
	assert.Equal(t, int32(100), m.record(&q, quotaFetch, "alice", "", 100, t0), "measured against what was delivered")

	climit := float64(64 << 10)
	q.set(quotaFetch, quotaEntity{user: dflt()}, &climit)
	most, ok := m.fetchMaxBytes(&q, "ANONYMOUS", "")
	assert.True(t, ok)
	assert.Equal(t, int32(640<<10), most, "10 windows of the quota")
}
