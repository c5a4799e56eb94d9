package loadprofile

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestLoadPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"none", nil, 0.99, 0},
		{"one sample is every percentile", ms(7), 0.5, 7 * time.Millisecond},
		{"p50 of 1..100 is 50", hundred, 0.50, 50 * time.Millisecond},
		{"p95 of 1..100 is 95", hundred, 0.95, 95 * time.Millisecond},
		{"p99 of 1..100 is 99", hundred, 0.99, 99 * time.Millisecond},
		{"max", hundred, 1, 100 * time.Millisecond},
		{"q 0 is the least", hundred, 0, time.Millisecond},
		{"nearest rank rounds up", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 4 samples is the largest", ms(1, 2, 3, 4), 0.99, 4 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Percentile(tc.sorted, tc.q))
		})
	}
}

func TestLoadLatencyOfSorts(t *testing.T) {
	l := LatencyOf(ms(40, 10, 30, 20))
	assert.Equal(t, Latency{P50: 20, P95: 40, P99: 40, Max: 40}, l)
}

func sampleReport() Report {
	down := time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC)
	tenants := []TenantReport{
		{Tenant: "a-00001", Kind: KindTiny, Plan: "basic-0", Asked: 100, Acked: 100, Consumed: 100, AckedBytes: 6_000, Seconds: 10, MsgsPerSec: 10},
		{Tenant: "b-00002", Kind: KindOverQuota, Plan: "basic-0", Asked: 256, Acked: 256, Consumed: 256, AckedBytes: 4 << 20, ThrottleMs: 3000,
			Throttles: 4, QuotaBreaches: 5},
		{Tenant: "c-00003", Kind: KindRandom, Plan: "basic-1", Asked: 1000, Acked: 999, Consumed: 998, Lost: 1, ProduceErrors: 1},
	}
	return Report{Cluster: "load-a", Profile: NewProfile(3, 1356, 14), Round: 1, Seconds: 12, Tenants: tenants,
		Totals: total(tenants, [][]time.Duration{ms(1, 2), ms(400), ms(3)}, 12),
		Offline: &OfflineReport{Broker: 2, DownAt: down, Recovery: "op-12", Status: "succeeded", Outcome: "cause unknown, 1 start(s)",
			RecoveryStartedAt: down.Add(3500 * time.Millisecond), RecoveryEndedAt: down.Add(11 * time.Second), BackAt: down.Add(9600 * time.Millisecond)}}
}

func TestLoadReportTotals(t *testing.T) {
	s := sampleReport().Totals
	assert.Equal(t, Totals{Tenants: 3, Acked: 1355, AckedBytes: 6_000 + 4<<20, Consumed: 1354, Lost: 1, ProduceErrors: 1, MsgsPerSec: 1355.0 / 12,
		Latency: Latency{P50: 2, P95: 400, P99: 400, Max: 400}, LatencyWithinPlan: Latency{P50: 2, P95: 3, P99: 3, Max: 3}, ThrottleMs: 3000, QuotaBreaches: 5, TenantsThrottled: 1}, s)
}

func TestLoadReportTable(t *testing.T) {
	var b bytes.Buffer
	sampleReport().WriteTable(&b)
	out := b.String()
	for _, want := range []string{
		"load profile on load-a (round 1, seed 14): 3 tenant(s), 1356 message(s) asked, 12.0 s",
		"TENANT", "P99ms", "BREACHES",
		"a-00001        tiny  basic-0   100/100",
		"TOTAL",
		"tenants with quota breaches: 1 of 3; produce latency of the others: p50 2.0 ms, p95 3.0 ms, p99 3.0 ms",
		"broker 2 offline at 16:00:00.000; kfleet's recovery op-12 started +3.5 s, succeeded +11.0 s (cause unknown, 1 start(s)); running again +9.6 s",
	} {
		assert.Contains(t, out, want)
	}
	// Sorted by kind, then name: over-quota, random, tiny.
	assert.Less(t, bytes.Index(b.Bytes(), []byte("b-00002")), bytes.Index(b.Bytes(), []byte("c-00003")))
	assert.Less(t, bytes.Index(b.Bytes(), []byte("c-00003")), bytes.Index(b.Bytes(), []byte("a-00001")))
}

func TestLoadReportJSON(t *testing.T) {
	raw, err := json.Marshal(sampleReport())
	require.NoError(t, err)
	var back Report
	require.NoError(t, json.Unmarshal(raw, &back))
	assert.Equal(t, int64(1), back.Totals.Lost)
	assert.Equal(t, "op-12", back.Offline.Recovery)
	assert.Contains(t, string(raw), `"latencyMs":{"p50":2,"p95":400,"p99":400,"max":400}`)
}

func TestLoadOfflineSkipped(t *testing.T) {
	assert.Equal(t, "broker 2 offline: skipped (no fleet URL)", OfflineReport{Broker: 2, Skipped: "no fleet URL"}.describe())
}

func TestLoadJudge(t *testing.T) {
	opt := GrowOptions{}.withDefaults()
	ok := TenantReport{Kind: KindRandom, Acked: 1000, Rate: 100, MsgsPerSec: 95, Seconds: 10}
	over := TenantReport{Kind: KindOverQuota, Acked: 256, QuotaBreaches: 9}
	round := func(totals Totals, tenants ...TenantReport) Report {
		return Report{Totals: totals, Tenants: append([]TenantReport{over}, tenants...)}
	}
	for _, tc := range []struct {
		name string
		rep  Report
		want string
	}{
		{"healthy: the over-quota tenant's throttles do not count", round(Totals{Acked: 2000}, ok, ok), ""},
		{"a record lost", round(Totals{Acked: 2000, Lost: 1}, ok, ok), LimitLost},
		{"errors over the budget", round(Totals{Acked: 2000, ProduceErrors: 3}, ok, ok), LimitProduceErrors},
		{"errors within the budget", round(Totals{Acked: 2000, ProduceErrors: 1}, ok, ok), ""},
		{"p99 over the SLO", round(Totals{Acked: 2000, LatencyWithinPlan: Latency{P99: 2500}}, ok, ok), LimitLatency},
		{"throttled tenants' latency is their plan's", round(Totals{Acked: 2000, Latency: Latency{P99: 20_000}}, ok, ok), ""},
		{"tenants within their plans throttled", round(Totals{Acked: 2000}, ok, TenantReport{Kind: KindRandom, QuotaBreaches: 1}), LimitQuota},
		{"asked rates not kept", round(Totals{Acked: 2000}, TenantReport{Kind: KindRandom, Rate: 100, MsgsPerSec: 20, Seconds: 10},
			TenantReport{Kind: KindTiny, Rate: 10, MsgsPerSec: 3, Seconds: 10}), LimitHost},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, hit := judge(tc.rep, opt)
			assert.Equal(t, tc.want != "", hit, l.Detail)
			assert.Equal(t, tc.want, l.Name)
		})
	}
}
