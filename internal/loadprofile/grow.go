package loadprofile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The limits Grow names, in the order it checks them each round.
const (
	// LimitPlacement: kfleet's placement refused a new tenant: the plans'
	// disk or partitions no longer fit the cluster (fleet.ClusterRoom).
	LimitPlacement = "placement: no room for another tenant (plans' disk or partitions)"
	// LimitAdminLane: the admin lane refused a topic: the plan's
	// partitions or the brokers' FD/mmap budget.
	LimitAdminLane = "admin lane: a topic refused (partitions or FD/mmap budget)"
	// LimitLost: an acknowledged record was not read back.
	LimitLost = "durability: acknowledged records lost"
	// LimitProduceErrors: more than GrowOptions.MaxErrorRate of the
	// records failed to produce.
	LimitProduceErrors = "produce errors over the error budget"
	// LimitLatency: the round's p99 produce latency over the SLO, of the
	// tenants the brokers did not throttle (Totals.LatencyWithinPlan).
	LimitLatency = "p99 produce latency over the SLO"
	// LimitQuota: more than GrowOptions.MaxBreachShare of the tenants not
	// driven past their plan were throttled: the cluster is squeezing
	// tenants that stay within their plans.
	LimitQuota = "quota breaches of tenants within their plans"
	// LimitHost: the tenants not throttled reached less than
	// GrowOptions.MinPace of their asked rate: the clients' host (or the
	// brokers) cannot keep up.
	LimitHost = "host: asked rates not kept"
	// LimitNone: MaxTenants reached with no limit hit.
	LimitNone = "none within the tenants tried"
)

// GrowOptions bound a Grow.
type GrowOptions struct {
	// Step tenants are added each round (default 10), up to MaxTenants
	// (default 500).
	Step, MaxTenants int
	// MessagesPerTenant is each round's messages per tenant after the
	// first (default 1,000): the limit is the tenants' count, and a grow
	// round at the first round's volume would take hours.
	MessagesPerTenant int
	// P99 is the produce latency SLO (default 2 s).
	P99 time.Duration
	// MaxErrorRate (default 0.001), MaxBreachShare (default 0.25) and
	// MinPace (default 0.5): see the limits.
	MaxErrorRate, MaxBreachShare, MinPace float64
}

func (o GrowOptions) withDefaults() GrowOptions {
	if o.Step <= 0 {
		o.Step = 10
	}
	if o.MaxTenants <= 0 {
		o.MaxTenants = 500
	}
	if o.MessagesPerTenant <= 0 {
		o.MessagesPerTenant = 1000
	}
	if o.P99 <= 0 {
		o.P99 = 2 * time.Second
	}
	if o.MaxErrorRate <= 0 {
		o.MaxErrorRate = 0.001
	}
	if o.MaxBreachShare <= 0 {
		o.MaxBreachShare = 0.25
	}
	if o.MinPace <= 0 {
		o.MinPace = 0.5
	}
	return o
}

// Limit is the first limit a Grow hit: the tenants the cluster held
// when it was hit (Tenants) and which.
type Limit struct {
	Tenants int    `json:"tenants"`
	Name    string `json:"name"`
	Detail  string `json:"detail"`
}

// GrowResult is every round's report and the limit.
type GrowResult struct {
	Rounds []Report `json:"rounds"`
	Limit  Limit    `json:"limit"`
}

// Grow keeps tenants (the first round's, from Run) and adds opt.Step new
// ones a round, each round a new topic per tenant and a load on all of
// them, until a limit is hit; the new tenants' kinds follow the
// profile's mix, drawn from the seed and the round.
func (r *Runner) Grow(ctx context.Context, p Profile, tenants []Tenant, opt GrowOptions) (GrowResult, error) {
	p, opt = p.withDefaults(), opt.withDefaults()
	var res GrowResult
	for round := 2; len(tenants) < opt.MaxTenants; round++ {
		step := min(opt.Step, opt.MaxTenants-len(tenants))
		more := p
		more.Tenants, more.Seed = step, p.Seed+uint64(round)
		more.Messages = step * opt.MessagesPerTenant
		loads, err := Assign(more)
		if err != nil {
			return res, err
		}
		for i := range loads {
			loads[i].Index += len(tenants)
		}
		made, err := r.CreateTenants(ctx, loads)
		tenants = append(tenants, made...)
		if errors.Is(err, ErrTenantRefused) {
			res.Limit = Limit{Tenants: len(tenants), Name: LimitPlacement, Detail: firstLine(err)}
			return res, nil
		}
		if err != nil {
			return res, err
		}
		// Every tenant's load of the round is scaled to MessagesPerTenant:
		// the fixed kinds keep their shape, random ones their rates.
		loaded := make([]Tenant, len(tenants))
		for i, t := range tenants {
			loaded[i] = t
			if t.Load.Kind == KindRandom {
				loaded[i].Load.Messages = opt.MessagesPerTenant
			}
		}
		err = r.CreateTopics(ctx, loaded, round, p.Partitions)
		if errors.Is(err, ErrTopicRefused) {
			res.Limit = Limit{Tenants: len(tenants), Name: LimitAdminLane, Detail: firstLine(err)}
			return res, nil
		}
		if err != nil {
			return res, err
		}
		rep, err := r.Load(ctx, p, loaded, round, false)
		if err != nil && ctx.Err() != nil {
			return res, err
		}
		res.Rounds = append(res.Rounds, rep)
		if l, hit := judge(rep, opt); hit {
			l.Tenants = len(tenants)
			res.Limit = l
			return res, nil
		}
		r.logf("round %d: %d tenant(s), no limit yet (%.0f msgs/s, p99 %.0f ms within plans)", round, len(tenants), rep.Totals.MsgsPerSec,
			rep.Totals.LatencyWithinPlan.P99)
	}
	res.Limit = Limit{Tenants: len(tenants), Name: LimitNone, Detail: fmt.Sprintf("%d tenant(s) tried", opt.MaxTenants)}
	return res, nil
}

// judge reads a round against the limits, in order.
func judge(rep Report, opt GrowOptions) (Limit, bool) {
	s := rep.Totals
	sent := s.Acked + s.ProduceErrors
	var within, breached, slow, paced int
	for _, t := range rep.Tenants {
		if t.Kind == KindOverQuota {
			continue
		}
		within++
		if t.QuotaBreaches > 0 {
			breached++
			continue
		}
		if t.Rate > 0 && t.Seconds > 1 {
			paced++
			if t.MsgsPerSec < opt.MinPace*t.Rate {
				slow++
			}
		}
	}
	switch {
	case s.Lost > 0:
		return Limit{Name: LimitLost, Detail: fmt.Sprintf("%d record(s) acknowledged and not read back", s.Lost)}, true
	case sent > 0 && float64(s.ProduceErrors) > opt.MaxErrorRate*float64(sent):
		return Limit{Name: LimitProduceErrors, Detail: fmt.Sprintf("%d of %d record(s) failed (budget %.2f%%)", s.ProduceErrors, sent, 100*opt.MaxErrorRate)}, true
	case s.LatencyWithinPlan.P99 > float64(opt.P99.Milliseconds()):
		return Limit{Name: LimitLatency, Detail: fmt.Sprintf("p99 %.0f ms of the tenants within their plans, over the SLO of %s", s.LatencyWithinPlan.P99, opt.P99)}, true
	case within > 0 && float64(breached) > opt.MaxBreachShare*float64(within):
		return Limit{Name: LimitQuota, Detail: fmt.Sprintf("%d of %d tenant(s) within their plans throttled", breached, within)}, true
	case paced > 0 && slow*2 > paced:
		return Limit{Name: LimitHost, Detail: fmt.Sprintf("%d of %d unthrottled tenant(s) under %.0f%% of their asked rate", slow, paced, 100*opt.MinPace)}, true
	}
	return Limit{}, false
}

// firstLine is the first of joined errors: the concurrent creations of a
// round refused for the same reason.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
