package loadprofile

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Kind is a tenant's usage profile.
type Kind string

// The seeds' usage mix, and the tenants driven past their plan on purpose.
const (
	KindTiny      Kind = "tiny"
	KindLarge     Kind = "large"
	KindOverQuota Kind = "over-quota"
	KindRandom    Kind = "random"
)

// The shapes of the fixed kinds. Large records stay under Kafka's default
// message.max.bytes (1 MB) with room for the batch's overhead; the plans
// carry no record size of their own.
const (
	tinyMessages, tinyRate, tinyMin, tinyMax            = 100, 10.0, 16, 128
	largeMessages, largeRate, largeMin, largeMax        = 10, 2.0, 256 << 10, 900 << 10
	overQuotaMessages, overQuotaBytes                   = 256, 16 << 10
	randomMin, randomRateMin, randomRateSpan            = 32, 400, 1600
	defaultTinyPercent, defaultLargePercent             = 10, 20
	defaultPartitions                                   = 3
	maxRecordBytes                                      = 900 << 10
	defaultSeed                                  uint64 = 14
)

// PlanSpread names the plans each kind of tenant is created on, taken in
// turn when a kind has more tenants than plans.
type PlanSpread struct {
	Tiny      []string `json:"tiny"`
	Large     []string `json:"large"`
	OverQuota []string `json:"overQuota"`
	Random    []string `json:"random"`
}

// DefaultPlans: tiny and over-quota tenants on the smallest plan (the
// over-quota ones so that a laptop's client can outrun it), large ones on
// basic-1, whose 512 KiB/s a broker takes two large records a second
// across a topic's partitions, random ones mostly on basic-0. Every basic
// plan reserves its partitions in placement, which is what bounds the
// tenants a cluster takes.
func DefaultPlans() PlanSpread {
	return PlanSpread{
		Tiny:      []string{"basic-0"},
		Large:     []string{"basic-1"},
		OverQuota: []string{"basic-0"},
		Random:    []string{"basic-0", "basic-0", "basic-0", "basic-1"},
	}
}

// Profile is one run's load.
type Profile struct {
	Tenants  int    `json:"tenants"`
	Messages int    `json:"messages"`
	Seed     uint64 `json:"seed"`
	// TinyPercent and LargePercent are the mix (defaults 10 and 20); the
	// rest is random.
	TinyPercent  int `json:"tinyPercent"`
	LargePercent int `json:"largePercent"`
	// OverQuota random tenants are driven past their plan's produce quota.
	OverQuota  int        `json:"overQuota"`
	Plans      PlanSpread `json:"plans"`
	Partitions int        `json:"partitions"`
}

// NewProfile is the seeds' mix for tenants and messages, with one tenant
// over its quota.
func NewProfile(tenants, messages int, seed uint64) Profile {
	return Profile{Tenants: tenants, Messages: messages, Seed: seed, OverQuota: 1}.withDefaults()
}

func (p Profile) withDefaults() Profile {
	if p.TinyPercent == 0 && p.LargePercent == 0 {
		p.TinyPercent, p.LargePercent = defaultTinyPercent, defaultLargePercent
	}
	d := DefaultPlans()
	if len(p.Plans.Tiny) == 0 {
		p.Plans.Tiny = d.Tiny
	}
	if len(p.Plans.Large) == 0 {
		p.Plans.Large = d.Large
	}
	if len(p.Plans.OverQuota) == 0 {
		p.Plans.OverQuota = d.OverQuota
	}
	if len(p.Plans.Random) == 0 {
		p.Plans.Random = d.Random
	}
	if p.Partitions == 0 {
		p.Partitions = defaultPartitions
	}
	if p.Seed == 0 {
		p.Seed = defaultSeed
	}
	return p
}

// TenantLoad is what one tenant does in a run.
type TenantLoad struct {
	Index    int    `json:"index"`
	Kind     Kind   `json:"kind"`
	Plan     string `json:"plan"`
	Messages int    `json:"messages"`
	// MinBytes and MaxBytes bound its records' values, drawn log-uniform.
	MinBytes int `json:"minBytes"`
	MaxBytes int `json:"maxBytes"`
	// Rate is records per second; 0 is as fast as the client goes.
	Rate float64 `json:"rate"`
	// Seed draws its record sizes.
	Seed uint64 `json:"seed"`
}

// Bytes is the expected value bytes of the load (the log-uniform mean).
func (l TenantLoad) Bytes() float64 {
	return float64(l.Messages) * logUniformMean(l.MinBytes, l.MaxBytes)
}

func logUniformMean(lo, hi int) float64 {
	if hi <= lo {
		return float64(lo)
	}
	return float64(hi-lo) / math.Log(float64(hi)/float64(lo))
}

// counts splits the tenants into the mix: at least one tiny and one large
// tenant once there are enough tenants for the percentages to round to
// none, so a small run still has every kind.
func (p Profile) counts() (tiny, large, over, random int) {
	tiny = (p.Tenants*p.TinyPercent + 50) / 100
	large = (p.Tenants*p.LargePercent + 50) / 100
	if tiny == 0 && p.TinyPercent > 0 && p.Tenants >= 3 {
		tiny = 1
	}
	if large == 0 && p.LargePercent > 0 && p.Tenants >= 3 {
		large = 1
	}
	over = min(p.OverQuota, max(p.Tenants-tiny-large, 0))
	random = p.Tenants - tiny - large - over
	return tiny, large, over, random
}

// Assign gives each tenant its load, the same for the same profile: the
// kinds are dealt over a permutation of the tenants drawn from the seed,
// and the random tenants' sizes and rates come from the seed too. The
// random tenants share the messages the fixed kinds leave.
func Assign(p Profile) ([]TenantLoad, error) {
	p = p.withDefaults()
	if p.Tenants <= 0 {
		return nil, fmt.Errorf("load profile: %d tenants: want at least 1", p.Tenants)
	}
	if p.TinyPercent < 0 || p.LargePercent < 0 || p.TinyPercent+p.LargePercent > 100 {
		return nil, fmt.Errorf("load profile: mix %d%% tiny + %d%% large: want percentages summing to at most 100", p.TinyPercent, p.LargePercent)
	}
	tiny, large, over, random := p.counts()
	fixed := tiny*tinyMessages + large*largeMessages + over*overQuotaMessages
	rest := p.Messages - fixed
	if random > 0 && rest < random || random == 0 && rest < 0 {
		return nil, fmt.Errorf("load profile: %d messages: the mix's fixed kinds take %d and %d random tenant(s) need one each", p.Messages, fixed, random)
	}
	rng := rand.New(rand.NewPCG(p.Seed, p.Seed^0x9e3779b97f4a7c15))
	order := rng.Perm(p.Tenants)
	loads := make([]TenantLoad, p.Tenants)
	var nth [4]int
	plan := func(k int, plans []string) string { s := plans[nth[k]%len(plans)]; nth[k]++; return s }
	for i, idx := range order {
		l := TenantLoad{Index: idx, Seed: p.Seed*1000003 + uint64(idx)}
		switch {
		case i < tiny:
			l.Kind, l.Plan, l.Messages, l.Rate, l.MinBytes, l.MaxBytes = KindTiny, plan(0, p.Plans.Tiny), tinyMessages, tinyRate, tinyMin, tinyMax
		case i < tiny+large:
			l.Kind, l.Plan, l.Messages, l.Rate, l.MinBytes, l.MaxBytes = KindLarge, plan(1, p.Plans.Large), largeMessages, largeRate, largeMin, largeMax
		case i < tiny+large+over:
			l.Kind, l.Plan, l.Messages, l.MinBytes, l.MaxBytes = KindOverQuota, plan(2, p.Plans.OverQuota), overQuotaMessages, overQuotaBytes, overQuotaBytes
		default:
			n := i - tiny - large - over
			l.Kind, l.Plan = KindRandom, plan(3, p.Plans.Random)
			l.Messages = rest / random
			if n < rest%random {
				l.Messages++
			}
			l.MinBytes, l.MaxBytes = randomMin, 256<<rng.IntN(3)
			l.Rate = float64(randomRateMin + rng.IntN(randomRateSpan))
		}
		loads[idx] = l
	}
	return loads, nil
}

// RecordSizes draws the load's record value sizes, log-uniform in
// [MinBytes, MaxBytes], capped at what a broker takes by default.
func (l TenantLoad) RecordSizes() func() int {
	rng := rand.New(rand.NewPCG(l.Seed, 1))
	lo, hi := max(l.MinBytes, 1), min(max(l.MaxBytes, l.MinBytes, 1), maxRecordBytes)
	return func() int {
		if hi <= lo {
			return lo
		}
		return int(float64(lo) * math.Exp(rng.Float64()*math.Log(float64(hi)/float64(lo))))
	}
}
