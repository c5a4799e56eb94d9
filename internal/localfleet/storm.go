package localfleet

import (
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Admin storms (OPERATIONS.md "Tenants"; issue #14). In the seeds'
// cascading failure many tenants created and deleted topics at once; the
// controller's work per request grows with the requests it juggles, so
// every admin request got slower, clients timed out and retried, and past
// some point the controller broker fell over. The local fleet models it:
// the cluster counts the admin requests in flight (CreateTopics,
// DeleteTopics, CreatePartitions), delays each by a latency that grows with
// the square of that count, and when the count passes a threshold the
// controller broker crashes as FaultCrash crashes a broker (faults.go),
// audited as EventCrash with Detail "admin storm: N concurrent admin
// requests". A careful operator's serialized admin lane never comes close.

// AdminStormConfig models the controller's admin work. Zero fields mean
// the defaults, which make one request take a few milliseconds and 50
// concurrent ones seconds each.
type AdminStormConfig struct {
	// BaseLatency is an admin request's delay with nothing else in
	// flight. Default 2ms.
	BaseLatency time.Duration `yaml:"baseLatency" json:"baseLatency"`
	// LatencyPerInflight2 is added per square of the admin requests in
	// flight (itself included): base + k × n². Default 2ms (n=50: 5s).
	LatencyPerInflight2 time.Duration `yaml:"latencyPerInflight2" json:"latencyPerInflight2"`
	// CrashThreshold: the controller broker falls over when more than
	// this many admin requests are in flight. Default 40; negative
	// disables.
	CrashThreshold int `yaml:"crashThreshold" json:"crashThreshold"`
}

const (
	defaultAdminBaseLatency     = 2 * time.Millisecond
	defaultAdminLatencyPerInfl2 = 2 * time.Millisecond
	defaultAdminCrashThreshold  = 40
	// stormControllerLogger is the controller's log4j logger name.
	stormControllerLogger = "kafka.controller.KafkaController"
)

func (a AdminStormConfig) withDefaults() AdminStormConfig {
	if a.BaseLatency == 0 {
		a.BaseLatency = defaultAdminBaseLatency
	}
	if a.LatencyPerInflight2 == 0 {
		a.LatencyPerInflight2 = defaultAdminLatencyPerInfl2
	}
	if a.CrashThreshold == 0 {
		a.CrashThreshold = defaultAdminCrashThreshold
	}
	return a
}

func (a AdminStormConfig) validate() error {
	if a.BaseLatency < 0 || a.LatencyPerInflight2 < 0 {
		return fmt.Errorf("adminStorm latencies must not be negative")
	}
	return nil
}

// latency is the delay of an admin request with n in flight.
func (a AdminStormConfig) latency(n int) time.Duration {
	return a.BaseLatency + time.Duration(n*n)*a.LatencyPerInflight2
}

// AdminStats is a cluster's admin load as the controller saw it.
type AdminStats struct {
	// InFlight is the admin requests in flight now; PeakInFlight the
	// most at once since the cluster started.
	InFlight     int `json:"inFlight"`
	PeakInFlight int `json:"peakInFlight"`
	// Requests counts the admin requests handled.
	Requests int64 `json:"requests"`
	// StormCrashes counts the controller crashes admin storms caused.
	StormCrashes int `json:"stormCrashes"`
	// MutationsThrottled counts the topics refused with
	// THROTTLING_QUOTA_EXCEEDED (KIP-599); ThrottleMillis sums the
	// throttle times the mutation quotas gave.
	MutationsThrottled int64 `json:"mutationsThrottled"`
	ThrottleMillis     int64 `json:"throttleMillis"`
	// MeanLatency and MaxLatency are the admin requests' times in the
	// broker, from arrival to answer (or to the broker's death).
	MeanLatency time.Duration `json:"meanLatency"`
	MaxLatency  time.Duration `json:"maxLatency"`
}

// adminLoad is a cluster's admin requests in flight.
type adminLoad struct {
	mu       sync.Mutex
	inFlight int
	peak     int
	requests int64
	crashes  int
	// latencySum and latencyMax are over the answered admin requests.
	answered               int64
	latencySum, latencyMax time.Duration
	// toppled: this storm has crashed the controller already; cleared
	// when the storm is over (nothing in flight), so that clients piling
	// up again during the crash count as the same storm.
	toppled bool
}

// isAdminRequest reports whether a request is controller admin work.
func isAdminRequest(key int16) bool {
	switch kmsg.Key(key) {
	case kmsg.CreateTopics, kmsg.DeleteTopics, kmsg.CreatePartitions:
		return true
	}
	return false
}

// enterAdmin counts an admin request in flight and sits out its latency;
// the caller calls done when the request has been answered. The request
// that takes the count past the threshold crashes the controller (in the
// background: the crash closes this very proxy and waits for its
// sessions). ok is false when the session was shut down meanwhile.
func (s *session) enterAdmin() (done func(), ok bool) {
	c := s.p.c
	cfg := c.cfg.AdminStorm
	l := &c.admin
	l.mu.Lock()
	l.inFlight++
	l.requests++
	n := l.inFlight
	l.peak = max(l.peak, n)
	delay := cfg.latency(n)
	entered := time.Now()
	topple := cfg.CrashThreshold >= 0 && n > cfg.CrashThreshold && !l.toppled
	if topple {
		l.crashes++
		l.toppled = true
	}
	l.mu.Unlock()
	done = func() {
		took := time.Since(entered)
		l.mu.Lock()
		l.answered++
		l.latencySum += took
		l.latencyMax = max(l.latencyMax, took)
		l.inFlight--
		if l.inFlight == 0 {
			l.toppled = false
		}
		l.mu.Unlock()
	}
	if topple {
		c.toppleController(s.who(), n)
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return done, true
	case <-s.done:
		done()
		return nil, false
	case <-c.life.Done():
		done()
		return nil, false
	}
}

// toppleController crashes the controller broker in the background, as
// FaultCrash does, with the storm in the audit.
func (c *cluster) toppleController(who string, n int) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	b := c.brokerByID(c.controller)
	if b == nil {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	detail := fmt.Sprintf("admin storm: %d concurrent admin requests", n)
	go func() {
		defer c.wg.Done()
		now := time.Now()
		lines := []string{
			kafkaLine(now, "WARN", fmt.Sprintf("[Controller id=%d] %d admin requests in flight; request handler threads exhausted", b.id, n), stormControllerLogger),
			kafkaLine(now, "ERROR", "[kfleet] process died under controller load: no controlled shutdown", serverLogger),
		}
		if err := c.crash(b, who, detail, lines); err != nil {
			c.log.Warn().Err(err).Int32("broker", b.id).Msg("admin storm: crash controller")
		}
	}()
}

// AdminStats returns a cluster's admin load and mutation quota figures.
func (f *Fleet) AdminStats(cluster string) (AdminStats, error) {
	c, err := f.cluster(cluster)
	if err != nil {
		return AdminStats{}, err
	}
	c.admin.mu.Lock()
	st := AdminStats{InFlight: c.admin.inFlight, PeakInFlight: c.admin.peak, Requests: c.admin.requests, StormCrashes: c.admin.crashes,
		MaxLatency: c.admin.latencyMax}
	if c.admin.answered > 0 {
		st.MeanLatency = c.admin.latencySum / time.Duration(c.admin.answered)
	}
	c.admin.mu.Unlock()
	c.mutations.mu.Lock()
	st.MutationsThrottled, st.ThrottleMillis = c.mutations.throttled, c.mutations.throttleMs
	c.mutations.mu.Unlock()
	return st, nil
}
