package localfleet

import (
	"fmt"
	"strconv"
	"time"
)

// The quota-path heap leak (OPERATIONS.md, Tenants; KAFKA-4725): on the
// seeds' brokers every throttled response left objects behind in the
// quota-throttling path that no GC could free, so old-gen use grew with
// the number of throttled requests while tenants kept exceeding their
// quotas, and brokers died one by one of OutOfMemoryError. Here each
// produce or fetch the quota sensor throttles (quota_enforce.go) retains
// a fixed number of old-gen bytes on its broker until the process
// restarts. It feeds the same old-gen figure as FaultHeapLeak
// (runtime.heapUsed), so the broker's exposition and its death at the max
// heap are the heap model's; unlike FaultHeapLeak it grows only while
// clients are throttled, which is what kfleet's heap guard must meet.

// FaultQuotaLeak turns the quota-path leak on for one broker at runtime:
// each throttled produce or fetch response retains PerThrottle bytes of
// old gen (default DefaultQuotaLeakBytes) until the broker restarts. It
// lasts until FaultClear, which stops further leaking but frees nothing
// (only a restart does).
const FaultQuotaLeak FaultKind = "quota-leak"

// DefaultQuotaLeakBytes is the old gen a throttled response retains when
// the leak is on and no size is given.
const DefaultQuotaLeakBytes = 64 << 10

// QuotaLeakConfig turns the quota-path leak on for every broker of a
// cluster from its start. Off by default.
type QuotaLeakConfig struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// BytesPerThrottle is the old gen each throttled response retains.
	// Default DefaultQuotaLeakBytes.
	BytesPerThrottle int64 `yaml:"bytesPerThrottle,omitempty" json:"bytesPerThrottle,omitempty"`
}

// perThrottle is the bytes a throttled response retains under c, 0 when
// the leak is off.
func (c QuotaLeakConfig) perThrottle() int64 {
	if !c.Enabled {
		return 0
	}
	if c.BytesPerThrottle > 0 {
		return c.BytesPerThrottle
	}
	return DefaultQuotaLeakBytes
}

// quotaLeak is a broker's quota-path leak. Part of runtime, so guarded by
// cluster.mu.
type quotaLeak struct {
	perThrottle int64 // bytes retained per throttled response; 0: no leak
	retained    int64 // old gen retained by the current process
	throttled   int64 // throttled responses that leaked in the current process
	oomPending  bool  // an OutOfMemoryError is on its way
}

// processStarted frees what the leak retained: a new JVM, a new heap. The
// leak itself stays on, as the tenants that trigger it remain.
func (l *quotaLeak) processStarted() {
	*l = quotaLeak{perThrottle: l.perThrottle}
}

// quotaThrottled is the quota sensor's hook: the broker behind p just
// throttled a produce or fetch response. With the leak on, it retains
// old gen; at the max heap the broker dies of OutOfMemoryError, as it
// does under FaultHeapLeak.
func (p *proxy) quotaThrottled() {
	c := p.c
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.brokerByID(p.broker)
	if b == nil || b.state != StateRunning || b.rt.quotaLeak.perThrottle <= 0 {
		return
	}
	l := &b.rt.quotaLeak
	// Capped at the max heap so that a huge leak cannot overflow: the
	// broker is dead of it by then.
	l.retained = min(l.retained+l.perThrottle, b.rt.heapMax)
	l.throttled++
	if l.oomPending || b.rt.heapUsed(time.Now()) < b.rt.heapMax {
		return
	}
	l.oomPending = true
	gen := b.gen
	// crash closes the proxy and waits for its sessions, one of which is
	// the caller: it runs on its own goroutine.
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.mu.Lock()
		still := b.gen == gen
		c.mu.Unlock()
		if !still {
			return
		}
		now := time.Now()
		_ = c.crash(b, "quota-leak", "java.lang.OutOfMemoryError: Java heap space", []string{
			kafkaLine(now, "ERROR", "[KafkaApi-"+strconv.Itoa(int(b.id))+"] Unexpected error handling request", "kafka.server.KafkaApis"),
			"java.lang.OutOfMemoryError: Java heap space",
			"\tat kafka.server.ClientQuotaManager.throttle(ClientQuotaManager.scala:292)",
		})
	}()
}

// injectQuotaLeak is FaultQuotaLeak: the leak on for b from now, its
// retained old gen kept.
func (c *cluster) injectQuotaLeak(b *broker, fault Fault, who string) {
	per := fault.PerThrottle
	if per == 0 {
		per = DefaultQuotaLeakBytes
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b.rt.quotaLeak.perThrottle = per
	c.recordDetailLocked(b, EventFault, who, fmt.Sprintf("quota-leak: %d bytes per throttled response", per))
}
