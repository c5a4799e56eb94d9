package localfleet

import (
	"math"
	"sync"
	"time"
)

// KIP-599 controller mutation quotas, as Kafka 2.7+ enforces them. kfake
// stores controller_mutation_rate but ignores it; without this a tenant
// could create or delete partitions as fast as the controller takes them,
// which is what makes admin storms dangerous.
//
// The quota is a token bucket per quota sensor (the user / client-id
// precedence of the byte-rate quotas, quota_config.go): Q tokens
// (partitions) a second, at most Q × quota.window.num (11) × 1 s in the
// bucket, which starts full. A request records each topic's partitions in
// turn. CreateTopics v6+, CreatePartitions v3+ and DeleteTopics v5+ are
// strict (StrictControllerMutationQuota): a topic is refused with
// THROTTLING_QUOTA_EXCEEDED only when the bucket is already negative
// before it; otherwise it is accepted even if it drives the bucket below
// zero, so a single request larger than the burst still succeeds (Kafka's
// deliberate choice). Older versions cannot carry the error: they are
// permissive, every topic is accepted, and the client is only throttled.
// The throttle time is the time the bucket needs to reach zero again,
// -K/Q (ControllerMutationQuotaManager.throttleTimeMs). Mutations are the
// controller's work, so the buckets are the cluster's, not a broker's.

const (
	quotaControllerMutationRate = "controller_mutation_rate"
	// kfakeDefaultNumPartitions is what kfake creates for NumPartitions
	// -1 (its num.partitions default; the fleet does not change it).
	kfakeDefaultNumPartitions = 10
)

// mutationQuotas is a cluster's controller mutation quotas and buckets.
type mutationQuotas struct {
	// limits holds controller_mutation_rate in its quotaProduce table: a
	// clientQuotas of its own, so the entity precedence and the levels
	// logic are the byte-rate quotas' very code, without making the
	// mutation rate a byte-rate kind the brokers would meter.
	limits clientQuotas

	mu      sync.Mutex
	buckets map[sensorTags]*tokenBucket
	// throttled counts the topics refused with THROTTLING_QUOTA_EXCEEDED,
	// throttleMs the throttle times given, for AdminStats.
	throttled, throttleMs int64
}

// set sets (nil: removes) an entity's controller_mutation_rate.
func (m *mutationQuotas) set(e quotaEntity, rate *float64) {
	m.limits.set(quotaProduce, e, rate)
}

// tokenBucket is Kafka's TokenBucket stat.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

// refill adds what rate q brought since the last refill, up to the burst.
func (b *tokenBucket) refill(q float64, now time.Time) {
	burst := q * quotaSamples * quotaWindow.Seconds()
	b.tokens = math.Min(burst, b.tokens+q*now.Sub(b.last).Seconds())
	b.last = now
}

// mutationQuota is one request's view of its client's quota, as Kafka
// makes one per request (ControllerMutationQuota).
type mutationQuota struct {
	m      *mutationQuotas
	tags   sensorTags
	limit  float64
	strict bool
	// unbounded: no controller_mutation_rate applies to the client.
	unbounded bool
	// throttleMs is the last throttle time decided, at throttledAt.
	throttleMs  int64
	throttledAt time.Time
}

// forRequest resolves the quota of user's client clientID; strict for the
// request versions that can answer THROTTLING_QUOTA_EXCEEDED.
func (m *mutationQuotas) forRequest(user, clientID string, strict bool) *mutationQuota {
	res := m.limits.resolve(quotaProduce, user, clientID)
	if !res.enabled || !res.hasLimit || res.limit <= 0 {
		return &mutationQuota{m: m, unbounded: true}
	}
	return &mutationQuota{m: m, tags: res.tags, limit: res.limit, strict: strict}
}

// record records n partitions mutated at now and reports whether the
// topic may proceed: false only for a strict quota whose bucket was
// already negative.
func (q *mutationQuota) record(n int, now time.Time) bool {
	if q.unbounded || n <= 0 {
		return true
	}
	m := q.m
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.buckets == nil {
		m.buckets = map[sensorTags]*tokenBucket{}
	}
	b := m.buckets[q.tags]
	if b == nil {
		b = &tokenBucket{tokens: q.limit * quotaSamples * quotaWindow.Seconds(), last: now}
		m.buckets[q.tags] = b
	}
	b.refill(q.limit, now)
	if q.strict && b.tokens < 0 {
		q.throttle(b, now)
		m.throttled++
		return false
	}
	b.tokens -= float64(n)
	if !q.strict && b.tokens < 0 {
		q.throttle(b, now)
	}
	return true
}

// throttle notes the time the bucket needs to be back at zero. m.mu must
// be held.
func (q *mutationQuota) throttle(b *tokenBucket, now time.Time) {
	q.throttleMs = int64(math.Round(-b.tokens / q.limit * 1000))
	q.throttledAt = now
}

// throttleTime is the throttle the response carries: the last one decided,
// less the time since, as AbstractControllerMutationQuota.throttleTime
// computes it; clamped to int32.
func (q *mutationQuota) throttleTime(now time.Time) int32 {
	if q.throttleMs <= 0 {
		return 0
	}
	ms := q.throttleMs - now.Sub(q.throttledAt).Milliseconds()
	ms = min(max(ms, 0), math.MaxInt32)
	if ms > 0 {
		q.m.mu.Lock()
		q.m.throttleMs += ms
		q.m.mu.Unlock()
	}
	return int32(ms)
}
