package localfleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"
)

// Faults: what goes wrong with brokers in production, injected on purpose
// so that the product's detection and recovery run against it. Each fault
// is applied to the broker's runtime model (broker_runtime.go) and shows the
// way production shows it: through ZooKeeper, the Kafka protocol, the
// broker's log lines (kfleet-TailLog) and its metrics (metrics.go).
//
// A fault stays until it has played out (fail-to-start's count runs down,
// a crash-loop ends when vm.max_map_count is raised, a dead cleaner or
// uncleanable partitions last until the process restarts) or until
// FaultClear. The local fleet has no systemd: a crashed or failed broker
// stays down until someone starts it (Restart=no), so every start attempt
// is visible in the audit. Instance faults (instances.go) act on the
// broker's host rather than its process; disk growth (fill-disk) is served
// by the hosts model (hosts.go).

// FaultKind names an injectable fault.
type FaultKind string

// Injectable faults.
const (
	// FaultCrash kills the broker's process: no controlled shutdown, so
	// leadership is not moved first. Partitions it led have no leader
	// until ZooKeeper expires its session (zkSessionTimeout) and the
	// controller elects new leaders from the ISR. Its next start recovers
	// its logs first.
	FaultCrash FaultKind = "crash"
	// FaultExpireSession makes ZooKeeper expire the session of a running
	// broker whose process keeps running, as a long GC pause, a network
	// blip or an overloaded ensemble does: the broker cannot reach
	// ZooKeeper until the session has expired (its registration, and
	// /controller if it held it, vanish after zkSessionTimeout); then it
	// reconnects with a new session and registers again within a second or
	// two (audited as zk-reregistered), the controller being elected again
	// if it was the controller. Its Kafka listener stays open throughout.
	FaultExpireSession FaultKind = "expire-session"
	// FaultCrashLoop grows the broker's segment count past what
	// vm.max_map_count allows (2 maps per segment) and crashes it with
	// java.io.IOException: Map failed. Every start attempt then fails the
	// same way until the limit is raised (kfleet-SetSysctl).
	FaultCrashLoop FaultKind = "crash-loop"
	// FaultKillCleaner kills the log cleaner thread: DeadThreadCount
	// becomes 1 and time-since-last-run grows until the broker restarts.
	FaultKillCleaner FaultKind = "kill-cleaner"
	// FaultUncleanable makes the log cleaner give up on Count partitions
	// of __consumer_offsets after an error, as it does on a corrupt batch:
	// it logs the error, marks each partition uncleanable
	// (uncleanable-partitions-count rises) and never compacts them again,
	// while its thread lives on, until the process restarts. The broker
	// must be running.
	FaultUncleanable FaultKind = "uncleanable"
	// FaultFailToStart makes the next Count starts fail; the broker stays
	// down (state failed).
	FaultFailToStart FaultKind = "fail-to-start"
	// FaultSlowRecovery makes log recovery take Multiplier times longer.
	FaultSlowRecovery FaultKind = "slow-recovery"
	// FaultHeapLeak makes old-gen heap use climb by PerMinute bytes per
	// minute (the quota-throttling leak, KAFKA-4725); at the max heap the
	// broker dies with java.lang.OutOfMemoryError. It recurs after a
	// restart until cleared, as the tenants that trigger it remain.
	FaultHeapLeak FaultKind = "heap-leak"
	// FaultStopInstance stops the broker's EC2 instance: the Kafka process
	// dies as with FaultCrash (no controlled shutdown; ZooKeeper expires
	// its session), EC2 describes the instance as stopped, SSM refuses to
	// run documents on it (InvalidInstanceId) and the broker cannot start
	// until FaultStartInstance. Stopping a stopped instance changes
	// nothing; a terminated one is refused.
	FaultStopInstance FaultKind = "stop-instance"
	// FaultTerminateInstance terminates the broker's instance: as
	// FaultStopInstance, but for good (EC2 keeps describing it as
	// terminated), and its data volume is detached (available), ready to
	// be attached to a replacement.
	FaultTerminateInstance FaultKind = "terminate-instance"
	// FaultStartInstance starts a stopped instance again. The Kafka
	// process stays down until the broker is started (the fleet has no
	// systemd to start it at boot). A terminated instance cannot start.
	FaultStartInstance FaultKind = "start-instance"
	// FaultClear removes every injected fault that has not played out
	// (pending start failures, slow recovery, heap leak, quota leak). It does not
	// restart anything, lower the segment count, revive a cleaner or
	// start an instance.
	FaultClear FaultKind = "clear"
)

// Fault is one fault to inject. Zero values of the parameters mean their
// defaults.
type Fault struct {
	Kind FaultKind `json:"kind"`
	// Segments (crash-loop) is the broker's segment count afterwards.
	// Default: enough that its maps exceed vm.max_map_count by 10%.
	Segments int `json:"segments,omitempty"`
	// Count is how many next starts fail (fail-to-start), or how many
	// partitions the cleaner marks uncleanable (uncleanable). Default 1.
	Count int `json:"count,omitempty"`
	// Multiplier (slow-recovery) scales log recovery time. Default 10.
	Multiplier float64 `json:"multiplier,omitempty"`
	// PerMinute (heap-leak) is the bytes leaked per minute. Default 5% of
	// the max heap.
	PerMinute int64 `json:"perMinute,omitempty"`
	// PerThrottle (quota-leak) is the old gen each throttled response
	// retains. Default DefaultQuotaLeakBytes.
	PerThrottle int64 `json:"perThrottle,omitempty"`
}

// Errors callers can test with errors.Is.
var (
	// ErrStartFailed: the broker's process exited during startup; the
	// error text carries the cause (e.g. java.io.IOException: Map failed).
	ErrStartFailed = errors.New("process exited during startup")
	// ErrBadFault: an unknown fault or limit, or a bad parameter.
	ErrBadFault = errors.New("bad fault")
)

// Host and JVM facts of the model.
const (
	defaultMaxMapCount = 65530               // Linux's default vm.max_map_count
	defaultFileMax     = 9223372036854775807 // fs.file-max on 64-bit kernels: unbounded
	defaultNofile      = 100000              // LimitNOFILE of a typical kafka.service
	mapsPerSegment     = 2                   // .index and .timeindex are memory-mapped
	defaultHeapMax     = 6 << 30             // -Xmx6g
	heapBaseFraction   = 0.3                 // old gen in steady state
	cleanerBackoff     = 15 * time.Second    // log.cleaner.backoff.ms
	logRingSize        = 2000                // recent log lines kept per broker
	dataDir            = logDir
	serverLogger       = "kafka.server.KafkaServer"
	cleanerLogger      = "kafka.log.LogCleaner"
	// offsetsTopic is the compacted topic every broker cleans; it has
	// offsetsTopicPartitions partitions (offsets.topic.num.partitions).
	offsetsTopic           = "__consumer_offsets"
	offsetsTopicPartitions = 50
)

// sessionLink is the TCP path of one broker session with ZooKeeper. A
// crash severs it: the connection drops and every redial fails, so the
// client stops heartbeating without closing its session, and ZooKeeper
// expires the session (and the broker's ephemeral nodes) after the
// session timeout, exactly as for a killed JVM. Closing the zk.Conn
// instead would end the session at once, as only a clean shutdown does.
// A partition (FaultExpireSession) cuts it the same way, but only until
// it heals: the live process then reconnects, learns that its session
// expired, and gets a new one.
type sessionLink struct {
	mu          sync.Mutex
	cut         bool // the process is dead: for good
	partitioned bool // ZooKeeper is unreachable until heal
	conns       []net.Conn
}

var (
	errSevered     = errors.New("broker process is dead")
	errPartitioned = errors.New("zookeeper unreachable (expire-session fault)")
)

func (l *sessionLink) dial(network, address string, timeout time.Duration) (net.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.cut:
		return nil, errSevered
	case l.partitioned:
		return nil, errPartitioned
	}
	conn, err := net.DialTimeout(network, address, timeout)
	if err != nil {
		return nil, err
	}
	// The client holds one connection at a time; earlier ones are closed.
	l.conns = append(l.conns[:0], conn)
	return conn, nil
}

// sever cuts the link for good.
func (l *sessionLink) sever() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = true
	l.dropLocked()
}

// partition cuts the link until heal.
func (l *sessionLink) partition() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partitioned = true
	l.dropLocked()
}

// heal ends a partition; a severed link stays severed.
func (l *sessionLink) heal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partitioned = false
}

func (l *sessionLink) dropLocked() {
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}

// brokerSession opens broker b's own ZooKeeper session over a severable
// link (see sessionLink). The events are the session's (watchSession
// reads them).
func (c *cluster) brokerSession(b *broker) (*zk.Conn, <-chan zk.Event, error) {
	link := &sessionLink{}
	conn, events, err := zk.Connect(c.zkServers, zkSessionTimeout,
		zk.WithMaxBufferSize(zkBufferSize), zk.WithMaxConnBufferSize(zkBufferSize),
		zk.WithDialer(link.dial),
		zk.WithLogger(zkLogger{c.log.With().Str("component", "zk").Int32("broker", b.id).Logger()}))
	if err != nil {
		return nil, nil, fmt.Errorf("localfleet: cluster %q: broker %d: connect to zookeeper %v: %w", c.id, b.id, c.zkServers, err)
	}
	c.mu.Lock()
	b.rt.link = link
	c.mu.Unlock()
	return conn, events, nil
}

// recordDetailLocked appends an audit event with a detail. c.mu must be
// held.
func (c *cluster) recordDetailLocked(b *broker, kind EventKind, who, detail string) {
	c.recordLocked(b, kind, who)
	c.audit[len(c.audit)-1].Detail = detail
}

// crash kills broker b's process: no controlled shutdown. The model
// changes as a controller that has not noticed yet sees it: b stays in
// every ISR, and the partitions it led have no leader. Its listener
// closes at once; its ZooKeeper session is left to expire (awaitExpiry
// then plays the controller's part). Crashing a broker whose process is
// not running changes nothing.
func (c *cluster) crash(b *broker, who, detail string, lines []string) error {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	if err := c.checkOpen(); err != nil {
		return err
	}
	c.mu.Lock()
	switch b.state {
	case StateRunning, StateRecovering:
	default:
		c.mu.Unlock()
		return nil
	}
	if down := c.notRunningLocked(b.id); len(down) > 0 {
		c.violateLocked(ViolationTwoBrokersDown,
			fmt.Sprintf("broker %d crashed while %s", b.id, strings.Join(down, ", ")))
	}
	b.state = StateCrashed
	b.gen++
	b.rt.unclean = true
	b.rt.recovery = recoveryProgress{}
	c.recordDetailLocked(b, EventCrash, who, detail)
	b.rt.log.add(lines...)
	for _, p := range c.partitionsLocked() {
		if p.leader == b.id {
			c.setLeaderLocked(p, -1)
		}
	}
	conn, link := b.zk, b.rt.link
	b.zk, b.rt.link = nil, nil
	if c.kraftRegisteredLocked(b) {
		// KRaft: the heartbeats stop; the controller fences it after
		// the session timeout and then handles the failure
		// (advanceQuorum).
		c.kraftCrashedLocked(b)
	}
	c.mu.Unlock()

	b.proxy.close()
	if link != nil {
		link.sever()
	}
	if conn != nil {
		c.wg.Add(1)
		go c.awaitExpiry(b, conn)
	}
	return nil
}

// expireSession cuts running broker b off from ZooKeeper
// (FaultExpireSession) until ZooKeeper has expired its session, that is
// until its registration vanishes, then lets it reconnect; watchSession
// registers it again. The process and its listener are left alone.
func (c *cluster) expireSession(b *broker, who string, bad func(string, ...any) error) error {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	c.mu.Lock()
	conn, link := b.zk, b.rt.link
	if b.state != StateRunning || conn == nil || link == nil {
		st := b.state
		c.mu.Unlock()
		return bad("broker is %s: it has no ZooKeeper session to expire", st)
	}
	c.recordDetailLocked(b, EventFault, who, "expire-session")
	b.rt.log.add(kafkaLine(time.Now(), "WARN", fmt.Sprintf(
		"Client session timed out, have not heard from server in %dms for sessionid 0x%x, closing socket connection and attempting reconnect",
		zkSessionTimeout.Milliseconds(), conn.SessionID()), "org.apache.zookeeper.ClientCnxn"))
	c.mu.Unlock()

	link.partition()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer link.heal() // a crash meanwhile severed it for good: heal leaves that
		c.awaitUnregistered(b, "expire-session: watch registration")
	}()
	return nil
}

// awaitExpiry waits, as the controller does through its watch on
// /brokers/ids, for a crashed broker's registration to vanish when
// ZooKeeper expires its session, then handles the broker failure: b
// leaves every ISR, leaderless partitions get a leader from their running
// in-sync replicas, and the controller moves if b held it.
func (c *cluster) awaitExpiry(b *broker, dead *zk.Conn) {
	defer c.wg.Done()
	// The dead session's client has nothing to send; Close only stops its
	// goroutines (its close request cannot reach ZooKeeper).
	defer dead.Close()

	if !c.awaitUnregistered(b, "crash: watch registration") {
		return
	}
	c.log.Warn().Int32("broker", b.id).Msg("zookeeper expired the crashed broker's session; controller handles the broker failure")
	c.brokerFailed(b, "controller failover after crash")
}

// brokerFailed is the controller handling the failure of a broker that
// went away uncleanly, once it knows (its ZooKeeper session expired, or
// KRaft fenced it): b leaves every ISR, leaderless partitions get a
// leader from their running in-sync replicas, and the controller moves if
// b held it. what names the election in error logs.
func (c *cluster) brokerFailed(b *broker, what string) {
	c.mu.Lock()
	if c.closed || b.state == StateRunning {
		c.mu.Unlock()
		return
	}
	c.leaveISRLocked(b.id)
	for _, part := range c.partitionsLocked() {
		if part.leader >= 0 {
			continue
		}
		for _, r := range part.isr {
			if c.runningLocked(r) {
				c.setLeaderLocked(part, r)
				break
			}
		}
	}
	c.mu.Unlock()
	c.moveController(b.id, what)
}

// awaitUnregistered waits, through a watch in a session of its own, until
// broker b's registration does not exist. It returns false if it cannot
// tell (a ZooKeeper error, logged with what) or the fleet closes first.
func (c *cluster) awaitUnregistered(b *broker, what string) bool {
	obs, err := c.zkSession()
	if err != nil {
		c.log.Error().Err(err).Int32("broker", b.id).Msg(what)
		return false
	}
	defer obs.Close()
	p := c.zkPath(fmt.Sprintf("/brokers/ids/%d", b.id))
	for {
		exists, _, ev, err := obs.ExistsW(p)
		if err != nil {
			c.log.Error().Err(err).Int32("broker", b.id).Msg(what)
			return false
		}
		if !exists {
			return true
		}
		select {
		case <-ev:
		case <-c.life.Done():
			return false
		}
	}
}

// recoverLogs is log recovery after an unclean stop: it takes the
// broker's segment count times RecoveryPerSegment (times the slow-recovery
// multiplier), logs progress as LogLoader does, and then registers the
// broker. A stop or crash meanwhile (gen changes) abandons it.
func (c *cluster) recoverLogs(b *broker, gen uint64, who string) {
	defer c.wg.Done()
	per := c.cfg.Timing.RecoveryPerSegment
	if per == 0 {
		per = defaultRecoveryPerSegment
	}
	c.mu.Lock()
	logs := c.hostedLogsLocked(b.id)
	total := b.rt.allSegments()
	b.rt.recovery = recoveryProgress{segments: total, logs: logs}
	d := time.Duration(float64(per) * float64(total) * b.rt.slowRecovery)
	began := time.Now()
	b.rt.log.add(
		kafkaLine(began, "INFO", "Loading logs from log dirs ArrayBuffer("+dataDir+")", "kafka.log.LogManager"),
		kafkaLine(began, "INFO", "Attempting recovery for all logs in "+dataDir+" since no clean shutdown file was found", "kafka.log.LogManager"),
	)
	c.mu.Unlock()

	// Progress is reported about 20 times, as often as a scraper could see
	// it change.
	tick := min(max(d/20, 20*time.Millisecond), 500*time.Millisecond)
	for done := 0; done < total; {
		if sleep(c.life, tick) != nil {
			return
		}
		c.mu.Lock()
		if b.gen != gen || b.state != StateRecovering {
			c.mu.Unlock()
			return
		}
		now := time.Now()
		next := total
		if d > 0 {
			next = min(total, int(float64(total)*float64(now.Sub(began))/float64(d)))
		}
		b.rt.log.add(recoveryLines(now, b.rt.recovery, done, next)...)
		done = next
		b.rt.recovery.done = done
		c.mu.Unlock()
	}

	b.opMu.Lock()
	defer b.opMu.Unlock()
	c.mu.Lock()
	if c.closed || b.gen != gen || b.state != StateRecovering {
		c.mu.Unlock()
		return
	}
	b.rt.unclean = false
	b.rt.recovery = recoveryProgress{}
	b.rt.log.add(kafkaLine(time.Now(), "INFO",
		fmt.Sprintf("Loaded %d logs in %dms", len(logs), time.Since(began).Milliseconds()), "kafka.log.LogManager"))
	c.mu.Unlock()
	if err := c.goLive(b, who); err != nil {
		c.log.Error().Err(err).Int32("broker", b.id).Msg("register after log recovery")
	}
}

// hostedLogsLocked names the partitions with a replica on broker id: the
// logs it loads at start.
func (c *cluster) hostedLogsLocked(id int32) []string {
	var out []string
	for _, p := range c.partitionsLocked() {
		for _, r := range p.replicas {
			if r == id {
				out = append(out, p.String())
				break
			}
		}
	}
	return out
}

// Crash kills a broker's process (FaultCrash). who is recorded in the
// audit.
func (f *Fleet) Crash(ctx context.Context, cluster string, broker int32, who string) error {
	return f.InjectFault(ctx, cluster, broker, Fault{Kind: FaultCrash}, who)
}

// InjectFault applies a fault to a broker (see FaultKind) and records it
// in the audit with who asked. It returns once the fault is in force: a
// crashed broker's listener is closed (its ZooKeeper registration vanishes
// later, when the session expires).
func (f *Fleet) InjectFault(ctx context.Context, cluster string, broker int32, fault Fault, who string) error {
	c, b, err := f.broker(cluster, broker)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("localfleet: cluster %q: broker %d: fault %s: %w", cluster, broker, fault.Kind, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("localfleet: cluster %q: broker %d: fault %q: %w: %s", cluster, broker, fault.Kind, ErrBadFault, fmt.Sprintf(format, args...))
	}
	if fault.Segments < 0 || fault.Count < 0 || fault.Multiplier < 0 || fault.PerMinute < 0 || fault.PerThrottle < 0 {
		return bad("parameters must not be negative")
	}
	if err := c.checkOpen(); err != nil {
		return err
	}
	if tr, ok := instanceTransitionFor(fault.Kind); ok {
		return f.instanceFault(c, b, fault.Kind, tr, who)
	}
	if fault.Kind == FaultQuotaLeak {
		c.injectQuotaLeak(b, fault, who)
		return nil
	}
	now := time.Now()
	switch fault.Kind {
	case FaultCrash:
		return c.crash(b, who, "crash", []string{
			kafkaLine(now, "INFO", "[kfleet] process killed (SIGKILL): no controlled shutdown", serverLogger),
		})
	case FaultExpireSession:
		return c.expireSession(b, who, bad)
	case FaultCrashLoop:
		c.mu.Lock()
		segments := fault.Segments
		if segments == 0 {
			segments = int(b.rt.maxMapCount*11/10/mapsPerSegment) + 1
		}
		b.rt.segments = max(b.rt.segments, segments)
		detail := fmt.Sprintf("crash-loop: %d segments need %d maps, vm.max_map_count is %d",
			b.rt.segments, b.rt.segments*mapsPerSegment, b.rt.maxMapCount)
		running := b.state == StateRunning || b.state == StateRecovering
		if !running {
			c.recordDetailLocked(b, EventFault, who, detail)
		}
		part := "events-0"
		if logs := c.hostedLogsLocked(b.id); len(logs) > 0 {
			part = logs[0]
		}
		c.mu.Unlock()
		if !running {
			return nil
		}
		return c.crash(b, who, detail, mapFailedRunning(now, b.id, part))
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	var detail string
	switch fault.Kind {
	case FaultKillCleaner:
		if b.state != StateRunning && b.state != StateRecovering {
			return bad("broker is %s: no log cleaner thread runs", b.state)
		}
		if b.rt.cleanerDiedAt.IsZero() {
			b.rt.cleanerDiedAt = now
			b.rt.log.add(
				kafkaLine(now, "ERROR", "[kafka-log-cleaner-thread-0]: Error due to", cleanerLogger),
				"java.lang.IllegalStateException: This log contains a message larger than maximum allowable size of 1000012.",
				"\tat kafka.log.Cleaner.growBuffersOrFail(LogCleaner.scala:1001)",
				"\tat kafka.log.Cleaner.buildOffsetMapForSegment(LogCleaner.scala:944)",
				kafkaLine(now, "INFO", "[kafka-log-cleaner-thread-0]: Stopped", cleanerLogger),
			)
		}
		detail = "kill-cleaner"
	case FaultUncleanable:
		if b.state != StateRunning {
			return bad("broker is %s: the log cleaner runs only on a running broker", b.state)
		}
		n := fault.Count
		if n == 0 {
			n = 1
		}
		if b.rt.uncleanable+n > offsetsTopicPartitions {
			return bad("%d of %s's %d partitions are uncleanable already; %d more is too many",
				b.rt.uncleanable, offsetsTopic, offsetsTopicPartitions, n)
		}
		var marked []string
		for p := b.rt.uncleanable; p < b.rt.uncleanable+n; p++ {
			b.rt.log.add(uncleanableLines(now, p)...)
			marked = append(marked, fmt.Sprintf("%s-%d", offsetsTopic, p))
		}
		b.rt.uncleanable += n
		detail = fmt.Sprintf("uncleanable: %s (%d in all)", strings.Join(marked, ", "), b.rt.uncleanable)
	case FaultFailToStart:
		n := fault.Count
		if n == 0 {
			n = 1
		}
		b.rt.failStarts += n
		detail = fmt.Sprintf("fail-to-start: next %d starts fail", b.rt.failStarts)
	case FaultSlowRecovery:
		m := fault.Multiplier
		if m == 0 {
			m = 10
		}
		if m < 1 {
			return bad("multiplier must be >= 1, got %g", m)
		}
		b.rt.slowRecovery = m
		detail = fmt.Sprintf("slow-recovery: x%g", m)
	case FaultHeapLeak:
		rate := fault.PerMinute
		if rate == 0 {
			rate = b.rt.heapMax / 20
		}
		b.rt.heapLeakPerMin, b.rt.heapLeakSince = rate, now
		detail = fmt.Sprintf("heap-leak: %d bytes/min", rate)
		c.scheduleOOMLocked(b)
	case FaultClear:
		b.rt.failStarts, b.rt.slowRecovery, b.rt.heapLeakPerMin = 0, 1, 0
		b.rt.quotaLeak.perThrottle = 0 // what it retained stays until a restart
		detail = "clear"
	default:
		return bad("unknown fault (want one of %s; fill-disk is served by hosts.go)", strings.Join([]string{
			string(FaultCrash), string(FaultExpireSession), string(FaultCrashLoop), string(FaultKillCleaner), string(FaultUncleanable),
			string(FaultFailToStart), string(FaultSlowRecovery), string(FaultHeapLeak), string(FaultQuotaLeak),
			string(FaultStopInstance), string(FaultTerminateInstance), string(FaultStartInstance), string(FaultClear),
		}, ", "))
	}
	c.recordDetailLocked(b, EventFault, who, detail)
	return nil
}

// scheduleOOMLocked crashes b with an OutOfMemoryError when its leaking
// heap reaches the max, unless the process ends first or the leak is
// cleared. c.mu must be held.
func (c *cluster) scheduleOOMLocked(b *broker) {
	if b.rt.heapLeakPerMin <= 0 || b.state != StateRunning {
		return
	}
	gen, now := b.gen, time.Now()
	left := float64(b.rt.heapMax - b.rt.heapUsed(now))
	wait := time.Duration(left / float64(b.rt.heapLeakPerMin) * float64(time.Minute))
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if sleep(c.life, wait) != nil {
			return
		}
		c.mu.Lock()
		still := b.gen == gen && b.rt.heapLeakPerMin > 0 && b.rt.heapUsed(time.Now()) >= b.rt.heapMax
		c.mu.Unlock()
		if !still {
			return
		}
		now := time.Now()
		_ = c.crash(b, "heap-leak", "java.lang.OutOfMemoryError: Java heap space", []string{
			kafkaLine(now, "ERROR", "[KafkaApi-"+strconv.Itoa(int(b.id))+"] Unexpected error handling request", "kafka.server.KafkaApis"),
			"java.lang.OutOfMemoryError: Java heap space",
			"\tat kafka.server.ClientQuotaManager.getOrCreateQuotaSensors(ClientQuotaManager.scala:380)",
		})
	}()
}
