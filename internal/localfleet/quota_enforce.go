package localfleet

import (
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Byte-rate quota enforcement, per broker as in Kafka: each proxy counts
// its own clients' bytes, so a user producing to three brokers gets three
// times its quota in all. Produce requests count their size, fetch
// responses theirs (as Kafka records request.sizeInBytes and the fetch
// response size), at the time the broker answers.
//
// A client over its quota gets its answer at once with throttle_time_ms
// set, and its connection is muted for that long: the proxy reads nothing
// more from it until then. That is what Kafka 2.0+ does (KIP-219) for
// every request version; clients of KIP-219 versions (Produce v6+, Fetch
// v8+, which franz-go uses) also wait that long themselves before they
// send again, and both waits overlap, whereas delaying the answer as
// before 2.0 would make them wait twice. acks=0 produces have no answer:
// only the mute slows them.
//
// A throttled fetch is answered empty, its bytes taken back off the
// sensors, as Kafka 2.0+ does: the consumer fetches the same records
// again once the throttle has passed. kfake has served it, but it keeps
// no fetch position of its own (a fetch session holds the offsets the
// client last sent), so the records are served again; the session keeps
// its id and epoch, which both sides moved on. Unlike Kafka, kfake's
// session has noted the high watermarks of the dropped answer, so a
// partition without new records may report a new high watermark one
// fetch late.

// quotaManager is one broker's quota sensors and usage record. Sensors
// live as long as the broker's process: a stopped or crashed broker
// loses them (reset), its usage record stays for QuotaStats.
type quotaManager struct {
	mu      sync.Mutex
	sensors map[sensorKey]*quotaSensor
	users   map[string]*userUsage // by principal
	swept   time.Time             // when idle sensors were last expired
}

type sensorKey struct {
	kind quotaKind
	tags sensorTags
}

// quotaSensor is a client's quota sensor and throttle-time sensor.
type quotaSensor struct {
	bytes    sampledStat // byte-rate, against the quota
	throttle sampledStat // throttle-time, averaged
	last     time.Time
}

// userUsage is what a user did on the broker: its own byte-rate
// (whichever sensor its quota counts it in) and cumulative figures.
type userUsage struct {
	rate                [numQuotaKinds]sampledStat
	bytes               [numQuotaKinds]int64
	throttled, throttMs [numQuotaKinds]int64
}

// record counts n bytes of kind for user's client clientID at now and
// returns the throttle time the client gets (0: within its quota). A
// throttled fetch's bytes are taken back: its answer goes out empty.
func (m *quotaManager) record(q *clientQuotas, kind quotaKind, user, clientID string, n int, now time.Time) int32 {
	res := q.resolve(kind, user, clientID)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.users == nil {
		m.users = map[string]*userUsage{}
		m.sensors = map[sensorKey]*quotaSensor{}
	}
	u := m.users[user]
	if u == nil {
		u = &userUsage{}
		m.users[user] = u
	}
	u.rate[kind].record(rateConfig(), float64(n), now)
	u.bytes[kind] += int64(n)
	if !res.enabled {
		return 0
	}
	m.expireLocked(now)
	key := sensorKey{kind: kind, tags: res.tags}
	s := m.sensors[key]
	if s == nil {
		s = &quotaSensor{}
		m.sensors[key] = s
	}
	s.last = now
	// Kafka records first, then checks the quota, so the bytes that
	// break it count.
	s.bytes.record(rateConfig(), float64(n), now)
	if !res.hasLimit {
		return 0
	}
	ms := throttleMillis(s.bytes.rate(rateConfig(), now), res.limit, s.bytes.windowSize(rateConfig(), now))
	if ms > 0 {
		s.throttle.record(throttleConfig(), float64(ms), now)
		u.throttled[kind]++
		u.throttMs[kind] += int64(ms)
		if kind == quotaFetch {
			// Kafka's unrecordQuotaSensor: a negative record in the
			// same sample.
			s.bytes.record(rateConfig(), -float64(n), now)
			u.rate[kind].record(rateConfig(), -float64(n), now)
			u.bytes[kind] -= int64(n)
		}
	}
	return ms
}

// fetchMaxBytes is the most a fetch may return to user's client in one
// response (getMaxValueInQuotaWindow: the quota times the 10 whole
// windows of the rate); ok is false without a consumer quota. A larger
// response would be throttled whatever came before it.
func (m *quotaManager) fetchMaxBytes(q *clientQuotas, user, clientID string) (int32, bool) {
	res := q.resolve(quotaFetch, user, clientID)
	if !res.enabled || !res.hasLimit {
		return 0, false
	}
	v := res.limit * (quotaSamples - 1) * quotaWindow.Seconds()
	return int32(min(max(v, 0), math.MaxInt32)), true
}

// expireLocked drops the sensors of clients idle for sensorExpiry, at
// most once a minute. m.mu must be held.
func (m *quotaManager) expireLocked(now time.Time) {
	if now.Sub(m.swept) < time.Minute {
		return
	}
	m.swept = now
	for k, s := range m.sensors {
		if now.Sub(s.last) >= sensorExpiry {
			delete(m.sensors, k)
		}
	}
}

// reset forgets the sensors and rates, as a broker process that ends
// does; the cumulative usage stays.
func (m *quotaManager) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sensors = map[sensorKey]*quotaSensor{}
	for _, u := range m.users {
		u.rate = [numQuotaKinds]sampledStat{}
	}
}

// principal is who the session's quotas are looked up for: its SASL
// user, or ANONYMOUS without SASL.
func (s *session) principal() string {
	if s.user != "" {
		return s.user
	}
	return anonymousUser
}

// clientID is the request header's client id ("" when null).
func (r *request) clientID() string {
	b := kbin.Reader{Src: r.frame[8:]}
	if id := b.NullableString(); b.Ok() && id != nil {
		return *id
	}
	return ""
}

// limitFetch lowers a fetch's MaxBytes to what the client's consumer
// quota allows in one response, as Kafka does (MinBytes with it).
func (s *session) limitFetch(req *request) error {
	if req.version < 3 { // no MaxBytes before v3
		return nil
	}
	limit, ok := s.p.quota.fetchMaxBytes(&s.p.c.quotas, s.principal(), req.clientID())
	if !ok {
		return nil
	}
	kreq, err := req.decode()
	if err != nil {
		return err
	}
	r := kreq.(*kmsg.FetchRequest)
	if r.MaxBytes <= limit {
		return nil
	}
	r.MaxBytes = limit
	r.MinBytes = min(r.MinBytes, limit)
	req.reencode(r)
	return nil
}

// meterProduce counts a produce against the producer quota once kfake
// handled it and answers it (raw is nil for acks=0), throttled if the
// quota is exceeded.
func (s *session) meterProduce(req *request, raw []byte) ([]byte, error) {
	now := time.Now()
	ms := s.p.quota.record(&s.p.c.quotas, quotaProduce, s.principal(), req.clientID(), len(req.frame), now)
	s.mute(now, ms)
	if ms > 0 {
		s.p.quotaThrottled() // the quota-path leak (quota_leak.go)
	}
	if raw == nil {
		return nil, nil
	}
	out, err := s.p.c.rewriteResponse(req, raw)
	if err != nil || ms == 0 {
		return out, err
	}
	return withThrottle(req, out, ms)
}

// meterFetch counts a fetch response against the consumer quota and
// answers it, or, when that exceeds the quota, answers it throttled and
// empty.
func (s *session) meterFetch(req *request, raw []byte) ([]byte, error) {
	out, err := s.p.c.rewriteResponse(req, raw)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	ms := s.p.quota.record(&s.p.c.quotas, quotaFetch, s.principal(), req.clientID(), len(out), now)
	s.mute(now, ms)
	if ms > 0 {
		s.p.quotaThrottled() // the quota-path leak (quota_leak.go)
	}
	if ms == 0 {
		return out, nil
	}
	return withThrottle(req, out, ms)
}

// withThrottle sets a response's throttle_time_ms to at least ms (kfake
// throttles nothing, but a larger throttle wins as in Kafka) and empties
// a fetch's, unless it failed as a whole (a fetch session error is
// answered as such). Versions without the field (Produce and Fetch v0)
// are only muted.
func withThrottle(req *request, frame []byte, ms int32) ([]byte, error) {
	resp, err := req.decodeResponse(frame)
	if err != nil {
		return nil, err
	}
	switch r := resp.(type) {
	case *kmsg.ProduceResponse:
		r.ThrottleMillis = max(r.ThrottleMillis, ms)
	case *kmsg.FetchResponse:
		r.ThrottleMillis = max(r.ThrottleMillis, ms)
		if r.ErrorCode == 0 {
			r.Topics, r.Brokers = nil, nil
		}
	}
	return req.encodeResponse(resp), nil
}

// mute keeps the connection from being read for ms from now, when the
// throttle was decided (the longest throttle wins).
func (s *session) mute(now time.Time, ms int32) {
	if ms <= 0 {
		return
	}
	if until := now.Add(time.Duration(ms) * time.Millisecond); until.After(s.mutedUntil) {
		s.mutedUntil = until
	}
}

// sitOutMute waits until the connection is unmuted; false when the
// session was shut down meanwhile.
func (s *session) sitOutMute() bool {
	wait := time.Until(s.mutedUntil)
	if wait <= 0 {
		return true
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return false
	}
}
