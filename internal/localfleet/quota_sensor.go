package localfleet

import (
	"math"
	"time"
)

// Kafka's quota sensors, as its metrics library measures them, so that a
// client throttled by the local fleet feels what a Kafka 3.9 broker makes
// it feel, first-burst allowance included.
//
// A byte-rate quota is checked against a Rate over a SampledStat: the sum
// of what was recorded in up to quota.window.num (11) samples of
// quota.window.size.seconds (1 s) each, divided by the window those
// samples span. Until the oldest sample is 10 windows old that span is
// padded to 10 windows plus the current one's elapsed part, so that a
// fresh sensor does not read one burst as an enormous rate; the price is
// that a new client may send about 10 s of its quota at once before it is
// throttled. The throttle time that brings the rate O back to the quota T
// over the window W, if nothing more is recorded, is X = (O - T) / T * W
// (ClientQuotaManager.throttleTime).

const (
	// quotaSamples and quotaWindow are Kafka's quota.window.num and
	// quota.window.size.seconds defaults.
	quotaSamples = 11
	quotaWindow  = time.Second
	// throttleSamples and throttleWindow are Kafka's default MetricConfig
	// (2 samples of 30 s), which its throttle-time Avg sensor uses.
	throttleSamples = 2
	throttleWindow  = 30 * time.Second
	// sensorExpiry is how long an idle client's sensors live
	// (ClientQuotaManagerConfig.InactiveSensorExpirationTimeSeconds).
	sensorExpiry = time.Hour
)

// statConfig is a SampledStat's MetricConfig: how many samples of how long.
type statConfig struct {
	samples int
	window  time.Duration
}

// rateConfig is the quota sensors' configuration.
func rateConfig() statConfig { return statConfig{samples: quotaSamples, window: quotaWindow} }

// throttleConfig is the throttle-time sensors' configuration.
func throttleConfig() statConfig { return statConfig{samples: throttleSamples, window: throttleWindow} }

// statSample is one sample: what was recorded since start.
type statSample struct {
	start  time.Time
	events int64
	value  float64
}

// sampledStat is Kafka's SampledStat: a ring of samples, the current one
// taking records until it is a window old, then the next one (reset)
// taking over. Samples a whole ring old are reset when measured, so a
// client that went quiet starts again from nothing. Not safe for
// concurrent use; its owner locks.
type sampledStat struct {
	samples []statSample
	current int
}

// record adds v at now.
func (s *sampledStat) record(cfg statConfig, v float64, now time.Time) {
	if len(s.samples) == 0 {
		s.samples = append(s.samples, statSample{start: now})
	}
	cur := &s.samples[s.current]
	if now.Sub(cur.start) >= cfg.window {
		s.current = (s.current + 1) % cfg.samples
		if s.current >= len(s.samples) {
			s.samples = append(s.samples, statSample{start: now})
		} else {
			s.samples[s.current] = statSample{start: now}
		}
		cur = &s.samples[s.current]
	}
	cur.value += v
	cur.events++
}

// purge resets the samples that are a whole ring old.
func (s *sampledStat) purge(cfg statConfig, now time.Time) {
	expire := time.Duration(cfg.samples) * cfg.window
	for i := range s.samples {
		if now.Sub(s.samples[i].start) >= expire {
			s.samples[i] = statSample{start: now}
		}
	}
}

// total is the sum of the live samples (SampledTotal).
func (s *sampledStat) total(cfg statConfig, now time.Time) float64 {
	s.purge(cfg, now)
	var sum float64
	for _, x := range s.samples {
		sum += x.value
	}
	return sum
}

// avg is the mean of what the live samples recorded (Avg); NaN when they
// recorded nothing, as Kafka reports it.
func (s *sampledStat) avg(cfg statConfig, now time.Time) float64 {
	s.purge(cfg, now)
	var sum float64
	var n int64
	for _, x := range s.samples {
		sum += x.value
		n += x.events
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// windowSize is the span the rate is measured over (Rate.windowSize): from
// the oldest live sample to now, padded to samples-1 whole windows while
// the sensor is younger than that; at least a millisecond.
func (s *sampledStat) windowSize(cfg statConfig, now time.Time) time.Duration {
	s.purge(cfg, now)
	if len(s.samples) == 0 {
		s.samples = append(s.samples, statSample{start: now})
	}
	oldest := s.samples[0].start
	for _, x := range s.samples[1:] {
		if x.start.Before(oldest) {
			oldest = x.start
		}
	}
	elapsed := now.Sub(oldest)
	if full, least := int(elapsed/cfg.window), cfg.samples-1; full < least {
		elapsed += time.Duration(least-full) * cfg.window
	}
	return max(elapsed, time.Millisecond)
}

// rate is the recorded total per second over windowSize (Rate.measure).
func (s *sampledStat) rate(cfg statConfig, now time.Time) float64 {
	total := s.total(cfg, now)
	return total / s.windowSize(cfg, now).Seconds()
}

// throttleMillis is the delay that brings an observed rate back to the
// quota over window, rounded to milliseconds as Kafka does; 0 when the
// rate is within the quota. Kafka does not cap a byte-rate throttle (only
// request-time and controller-mutation quotas are capped): the fetch size
// cap (fetchQuotaMaxBytes) keeps a consumer's in bounds, and a producer
// that sends one request far above its quota is muted for as long as its
// quota needs to absorb it. The value is clamped to the int32 of
// throttle_time_ms; a zero quota is the clamp.
func throttleMillis(observed, quota float64, window time.Duration) int32 {
	if !(observed > quota) {
		return 0
	}
	ms := math.Round((observed - quota) / quota * float64(window.Milliseconds()))
	if math.IsNaN(ms) || ms >= math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(max(ms, 0))
}
