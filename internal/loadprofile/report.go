package loadprofile

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is one run: each tenant's figures, the totals, and what became
// of the broker taken offline.
type Report struct {
	Cluster  string         `json:"cluster"`
	Profile  Profile        `json:"profile"`
	Round    int            `json:"round"`
	Started  time.Time      `json:"started"`
	Seconds  float64        `json:"seconds"`
	Tenants  []TenantReport `json:"tenants"`
	Totals   Totals         `json:"totals"`
	Offline  *OfflineReport `json:"offline,omitempty"`
	Warnings []string       `json:"warnings,omitempty"`
}

// TenantReport is what one tenant's clients saw.
type TenantReport struct {
	Tenant string `json:"tenant"`
	Plan   string `json:"plan"`
	Kind   Kind   `json:"kind"`
	Topic  string `json:"topic"`
	Asked  int    `json:"asked"`
	// Rate is the records a second asked (0: as fast as it goes).
	Rate     float64 `json:"rate"`
	Produced int64   `json:"produced"`
	// Acked records were acknowledged by acks=all; AckedBytes their values.
	Acked         int64 `json:"acked"`
	AckedBytes    int64 `json:"ackedBytes"`
	Consumed      int64 `json:"consumed"`
	Lost          int64 `json:"lost"`
	ProduceErrors int64 `json:"produceErrors"`
	ConsumeErrors int64 `json:"consumeErrors"`
	// Seconds is from its first produce to its last acknowledgement.
	Seconds     float64 `json:"seconds"`
	MsgsPerSec  float64 `json:"msgsPerSec"`
	BytesPerSec float64 `json:"bytesPerSec"`
	Latency     Latency `json:"latencyMs"`
	// Throttles and ThrottleMs are the throttles the brokers asked of its
	// clients (produce and fetch), as the clients saw them.
	Throttles  int64 `json:"throttles"`
	ThrottleMs int64 `json:"throttleMs"`
	// QuotaBreaches are the responses the brokers throttled for this
	// tenant's user, when a QuotaObserver counts them; else the clients'
	// Throttles.
	QuotaBreaches int64 `json:"quotaBreaches"`
}

// Totals sum the tenants.
type Totals struct {
	Tenants       int     `json:"tenants"`
	Acked         int64   `json:"acked"`
	AckedBytes    int64   `json:"ackedBytes"`
	Consumed      int64   `json:"consumed"`
	Lost          int64   `json:"lost"`
	ProduceErrors int64   `json:"produceErrors"`
	ConsumeErrors int64   `json:"consumeErrors"`
	MsgsPerSec    float64 `json:"msgsPerSec"`
	Latency       Latency `json:"latencyMs"`
	// LatencyWithinPlan is over the tenants without quota breaches: a
	// throttled tenant's produce waits out its quota, which is its plan
	// working, not the cluster slowing down.
	LatencyWithinPlan Latency `json:"latencyWithinPlanMs"`
	ThrottleMs        int64   `json:"throttleMs"`
	QuotaBreaches     int64   `json:"quotaBreaches"`
	TenantsThrottled  int     `json:"tenantsThrottled"`
}

// OfflineReport is the broker taken offline mid-run and how kfleet had
// it back: the recovery operation the entity ran, and when the fleet
// showed the broker running again.
type OfflineReport struct {
	Broker   int32     `json:"broker"`
	DownAt   time.Time `json:"downAt"`
	Skipped  string    `json:"skipped,omitempty"`
	Recovery string    `json:"recovery,omitempty"` // the operation's ID
	Status   string    `json:"status,omitempty"`
	Outcome  string    `json:"outcome,omitempty"`
	// RecoveryStartedAt and RecoveryEndedAt are the entity's; BackAt is
	// when the fleet first showed the broker running after DownAt.
	RecoveryStartedAt time.Time `json:"recoveryStartedAt,omitzero"`
	RecoveryEndedAt   time.Time `json:"recoveryEndedAt,omitzero"`
	BackAt            time.Time `json:"backAt,omitzero"`
}

// Latency is a set of percentiles in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Percentile is the q-quantile (0..1) of sorted by the nearest-rank
// method: the smallest sample with at least q of the samples at or below
// it. 0 for no samples.
func Percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

// LatencyOf sorts samples in place and reads its percentiles.
func LatencyOf(samples []time.Duration) Latency {
	slices.Sort(samples)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Latency{P50: ms(Percentile(samples, 0.50)), P95: ms(Percentile(samples, 0.95)), P99: ms(Percentile(samples, 0.99)),
		Max: ms(Percentile(samples, 1))}
}

// total sums the tenants' figures; lat are the tenants' produce
// latencies, in the same order, for the totals' percentiles.
func total(tenants []TenantReport, lat [][]time.Duration, seconds float64) Totals {
	t := Totals{Tenants: len(tenants)}
	for _, r := range tenants {
		t.Acked += r.Acked
		t.AckedBytes += r.AckedBytes
		t.Consumed += r.Consumed
		t.Lost += r.Lost
		t.ProduceErrors += r.ProduceErrors
		t.ConsumeErrors += r.ConsumeErrors
		t.ThrottleMs += r.ThrottleMs
		t.QuotaBreaches += r.QuotaBreaches
		if r.QuotaBreaches > 0 {
			t.TenantsThrottled++
		}
	}
	if seconds > 0 {
		t.MsgsPerSec = float64(t.Acked) / seconds
	}
	var all, within []time.Duration
	for i, l := range lat {
		all = append(all, l...)
		if tenants[i].QuotaBreaches == 0 {
			within = append(within, l...)
		}
	}
	t.Latency, t.LatencyWithinPlan = LatencyOf(all), LatencyOf(within)
	return t
}

// WriteTable prints the report for people: a row per tenant, the totals,
// and the broker taken offline.
func (r Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "load profile on %s (round %d, seed %d): %d tenant(s), %d message(s) asked, %.1f s\n",
		r.Cluster, r.Round, r.Profile.Seed, len(r.Tenants), r.Profile.Messages, r.Seconds)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "TENANT\tKIND\tPLAN\tACKED\tCONSUMED\tLOST\tP_ERR\tC_ERR\tMSG/S\tKB/S\tP50ms\tP95ms\tP99ms\tTHROTTLEms\tBREACHES\t")
	rows := slices.Clone(r.Tenants)
	slices.SortFunc(rows, func(a, b TenantReport) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Tenant, b.Tenant))
	})
	for _, t := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%d\t%d\t%d\t%d\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%d\t\n", t.Tenant, t.Kind, t.Plan,
			t.Acked, t.Asked, t.Consumed, t.Lost, t.ProduceErrors, t.ConsumeErrors, t.MsgsPerSec, t.BytesPerSec/1024,
			t.Latency.P50, t.Latency.P95, t.Latency.P99, t.ThrottleMs, t.QuotaBreaches)
	}
	s := r.Totals
	fmt.Fprintf(tw, "TOTAL\t\t\t%d\t%d\t%d\t%d\t%d\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%d\t\n", s.Acked, s.Consumed, s.Lost,
		s.ProduceErrors, s.ConsumeErrors, s.MsgsPerSec, float64(s.AckedBytes)/1024/max(r.Seconds, 1e-9),
		s.Latency.P50, s.Latency.P95, s.Latency.P99, s.ThrottleMs, s.QuotaBreaches)
	tw.Flush()
	fmt.Fprintf(w, "tenants with quota breaches: %d of %d; produce latency of the others: p50 %.1f ms, p95 %.1f ms, p99 %.1f ms\n",
		s.TenantsThrottled, s.Tenants, s.LatencyWithinPlan.P50, s.LatencyWithinPlan.P95, s.LatencyWithinPlan.P99)
	if o := r.Offline; o != nil {
		fmt.Fprintln(w, o.describe())
	}
	for _, warn := range r.Warnings {
		fmt.Fprintln(w, "warning:", warn)
	}
}

func (o OfflineReport) describe() string {
	if o.Skipped != "" {
		return fmt.Sprintf("broker %d offline: skipped (%s)", o.Broker, o.Skipped)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "broker %d offline at %s", o.Broker, o.DownAt.Format("15:04:05.000"))
	if o.Recovery != "" {
		fmt.Fprintf(&b, "; kfleet's recovery %s started +%.1f s, %s +%.1f s (%s)", o.Recovery, o.RecoveryStartedAt.Sub(o.DownAt).Seconds(),
			o.Status, o.RecoveryEndedAt.Sub(o.DownAt).Seconds(), o.Outcome)
	} else {
		b.WriteString("; no recovery operation seen")
	}
	if !o.BackAt.IsZero() {
		fmt.Fprintf(&b, "; running again +%.1f s", o.BackAt.Sub(o.DownAt).Seconds())
	} else {
		b.WriteString("; not seen running again")
	}
	return b.String()
}
