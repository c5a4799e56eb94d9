package localfleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/kfleet/kfleet/internal/cloud"
)

// Faults: what goes wrong with brokers in production, injected on purpose
// so that the product's detection and recovery run against it. Each fault
// is applied to the broker's runtime model (runtime, below) and shows the
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

// Limit names kfleet-SetSysctl changes.
const (
	LimitMaxMapCount = "vm.max_map_count"
	LimitFileMax     = "fs.file-max"
	LimitNofile      = "nofile" // the kafka service's LimitNOFILE
)

// fdsPerSegment: a broker holds ~1.5 file descriptors per segment
// (OPERATIONS.md), plus a budget for sockets.
const (
	fdsPerSegmentNum = 3
	fdsPerSegmentDen = 2
	fdsForSockets    = 1024
)

// runtime is a broker's process and host model. Guarded by cluster.mu.
type runtime struct {
	segments      int // the base (SegmentsPerBroker, crash-loop faults)
	topicSegments int // the replicas of topics created through the fleet (segments.go)
	maxMapCount   int64
	fileMax       int64
	nofile        int64

	// unclean: the process last ended without a clean shutdown, so its
	// next start recovers every log before registering.
	unclean      bool
	failStarts   int     // the next failStarts starts fail
	slowRecovery float64 // recovery time multiplier, >= 1

	started       time.Time // when the current process started
	cleanerDiedAt time.Time // zero while the cleaner thread runs
	// uncleanable is how many partitions the cleaner gave up on since
	// the process started (LogCleanerManager's uncleanable-partitions-count).
	uncleanable    int
	heapMax        int64
	heapLeakPerMin int64
	heapLeakSince  time.Time // when the leak began; a new process leaks from its start
	quotaLeak      quotaLeak // old gen retained by throttled responses (quota_leak.go)

	recovery recoveryProgress
	link     *sessionLink // the ZooKeeper session's TCP path while registered
	log      logRing
}

// recoveryProgress is log recovery as LogManager reports it.
type recoveryProgress struct {
	segments, done int // segments to recover, recovered
	logs           []string
}

// logsLeft is LogManager's remainingLogsToRecover: logs whose segments are
// not all recovered yet.
func (p recoveryProgress) logsLeft() int {
	if p.segments == 0 || len(p.logs) == 0 {
		return 0
	}
	finished := p.done * len(p.logs) / p.segments
	return len(p.logs) - finished
}

func newRuntime(cfg ClusterConfig, now time.Time) runtime {
	segments := cfg.SegmentsPerBroker
	if segments == 0 {
		segments = defaultSegmentsPerBroker
	}
	return runtime{
		segments:     segments,
		maxMapCount:  defaultMaxMapCount,
		fileMax:      defaultFileMax,
		nofile:       defaultNofile,
		slowRecovery: 1,
		started:      now,
		heapMax:      defaultHeapMax,
		quotaLeak:    quotaLeak{perThrottle: cfg.QuotaLeak.perThrottle()},
		log:          logRing{lines: make([]string, 0, 64)},
	}
}

// processStarted resets what a new JVM resets: a live cleaner thread that
// tries every partition again, a fresh heap.
func (r *runtime) processStarted(now time.Time) {
	r.started = now
	r.cleanerDiedAt = time.Time{}
	r.uncleanable = 0
	r.quotaLeak.processStarted()
}

// startFailure says why a start attempt fails now, with the log lines the
// broker writes, or "" when it starts. inLoad says the failure came during
// log loading, after Kafka removed its clean-shutdown file, so the next
// start recovers.
func (r *runtime) startFailure(now time.Time, id int32) (why, detail string, lines []string, inLoad bool) {
	switch {
	case r.failStarts > 0:
		r.failStarts--
		why = "org.apache.kafka.common.KafkaException: Failed to acquire lock on file .lock in " + dataDir
		return why, "fail-to-start", []string{
			kafkaLine(now, "ERROR", fmt.Sprintf("[KafkaServer id=%d] Fatal error during KafkaServer startup. Prepare to shutdown", id), serverLogger),
			why + ". A Kafka instance in another process or thread is using this directory.",
			kafkaLine(now, "INFO", fmt.Sprintf("[KafkaServer id=%d] shutting down", id), serverLogger),
		}, false
	case int64(r.allSegments())*mapsPerSegment > r.maxMapCount:
		return "java.io.IOException: Map failed",
			fmt.Sprintf("%d segments need %d maps, vm.max_map_count is %d", r.allSegments(), r.allSegments()*mapsPerSegment, r.maxMapCount),
			mapFailedAtStartup(now, id), true
	case r.fdsNeeded() > min(r.nofile, r.fileMax):
		why = "java.io.IOException: Too many open files"
		return why, fmt.Sprintf("%d segments need ~%d file descriptors, the limit is %d", r.allSegments(), r.fdsNeeded(), min(r.nofile, r.fileMax)),
			[]string{
				kafkaLine(now, "ERROR", "There was an error in one of the threads during logs loading: "+why, "kafka.log.LogManager"),
				kafkaLine(now, "ERROR", fmt.Sprintf("[KafkaServer id=%d] Fatal error during KafkaServer startup. Prepare to shutdown", id), serverLogger),
				why,
				kafkaLine(now, "INFO", fmt.Sprintf("[KafkaServer id=%d] shutting down", id), serverLogger),
			}, true
	}
	return "", "", nil, false
}

func (r *runtime) fdsNeeded() int64 {
	return int64(r.allSegments())*fdsPerSegmentNum/fdsPerSegmentDen + fdsForSockets
}

// heapUsed is old-gen use now: a steady base plus the leaks since the
// process started (by time, and by throttled response), capped at the max.
func (r *runtime) heapUsed(now time.Time) int64 {
	used := int64(float64(r.heapMax)*heapBaseFraction) + r.quotaLeak.retained
	if r.heapLeakPerMin > 0 {
		since := r.started
		if r.heapLeakSince.After(since) {
			since = r.heapLeakSince
		}
		used += int64(float64(r.heapLeakPerMin) * now.Sub(since).Minutes())
	}
	return min(used, r.heapMax)
}

// sinceCleanerRun is LogCleanerManager's time-since-last-run-ms: a live
// cleaner runs every cleanerBackoff; a dead one last ran before it died.
func (r *runtime) sinceCleanerRun(now time.Time) time.Duration {
	if r.cleanerDiedAt.IsZero() {
		return now.Sub(r.started) % cleanerBackoff
	}
	lastRun := r.cleanerDiedAt.Add(-(r.cleanerDiedAt.Sub(r.started) % cleanerBackoff))
	return now.Sub(lastRun)
}

// logRing keeps a broker's most recent log lines, as the host's journal
// and server.log do.
type logRing struct {
	lines []string
	next  int // where the next line goes once full
}

func (l *logRing) add(lines ...string) {
	for _, ln := range lines {
		if len(l.lines) < logRingSize {
			l.lines = append(l.lines, ln)
			continue
		}
		l.lines[l.next] = ln
		l.next = (l.next + 1) % logRingSize
	}
}

// tail returns the last n lines, oldest first.
func (l *logRing) tail(n int) []string {
	all := append(append([]string(nil), l.lines[l.next:]...), l.lines[:l.next]...)
	if n < len(all) {
		all = all[len(all)-n:]
	}
	return all
}

// kafkaLine formats a line as Kafka's log4j layout does.
func kafkaLine(t time.Time, level, msg, logger string) string {
	return fmt.Sprintf("[%s] %s %s (%s)", t.UTC().Format("2006-01-02 15:04:05,000"), level, msg, logger)
}

// mapFailedStack is the shape of Kafka's Map failed stack trace: an index
// resize (AbstractIndex.resize) that mmap refuses, below the operation that
// needed it.
func mapFailedStack(callers ...string) []string {
	out := []string{
		"java.io.IOException: Map failed",
		"\tat sun.nio.ch.FileChannelImpl.map(FileChannelImpl.java:1127)",
		"\tat kafka.log.AbstractIndex.$anonfun$resize$1(AbstractIndex.scala:189)",
		"\tat kafka.log.AbstractIndex.resize(AbstractIndex.scala:175)",
		"\tat kafka.log.AbstractIndex.$anonfun$trimToValidSize$1(AbstractIndex.scala:241)",
		"\tat kafka.log.AbstractIndex.trimToValidSize(AbstractIndex.scala:241)",
	}
	for _, c := range callers {
		out = append(out, "\tat "+c)
	}
	return append(out,
		"Caused by: java.lang.OutOfMemoryError: Map failed",
		"\tat sun.nio.ch.FileChannelImpl.map0(Native Method)",
		"\tat sun.nio.ch.FileChannelImpl.map(FileChannelImpl.java:1124)",
		"\t... 14 more",
	)
}

// mapFailedRunning is what a running broker logs when truncating a
// follower log needs one map too many; its only log dir goes offline and
// the broker halts.
func mapFailedRunning(now time.Time, id int32, partition string) []string {
	lines := []string{kafkaLine(now, "ERROR",
		fmt.Sprintf("[ReplicaFetcher replicaId=%d, leaderId=%d, fetcherId=0] Error while truncating partition %s", id, id%3+1, partition),
		"kafka.server.ReplicaFetcherThread")}
	lines = append(lines, mapFailedStack(
		"kafka.log.LogSegment.truncateTo(LogSegment.scala:440)",
		"kafka.log.LocalLog.$anonfun$truncateTo$2(LocalLog.scala:392)",
		"kafka.log.UnifiedLog.truncateTo(UnifiedLog.scala:1551)",
		"kafka.log.LogManager.truncateTo(LogManager.scala:611)",
		"kafka.server.ReplicaFetcherThread.truncate(ReplicaFetcherThread.scala:221)",
		"kafka.server.AbstractFetcherThread.truncateToEpochEndOffsets(AbstractFetcherThread.scala:297)",
	)...)
	return append(lines,
		kafkaLine(now, "ERROR", "Error while truncating logs in dir "+dataDir, "kafka.server.LogDirFailureChannel"),
		kafkaLine(now, "WARN", fmt.Sprintf("[ReplicaManager broker=%d] Stopping serving replicas in dir %s", id, dataDir), "kafka.server.ReplicaManager"),
		kafkaLine(now, "ERROR", "Shutdown broker because all log dirs in "+dataDir+" have failed", "kafka.log.LogManager"),
	)
}

// mapFailedAtStartup is what a broker logs when log loading at startup
// needs more maps than vm.max_map_count allows.
func mapFailedAtStartup(now time.Time, id int32) []string {
	lines := []string{
		kafkaLine(now, "INFO", "Loading logs from log dirs ArrayBuffer("+dataDir+")", "kafka.log.LogManager"),
		kafkaLine(now, "ERROR", "There was an error in one of the threads during logs loading: java.io.IOException: Map failed", "kafka.log.LogManager"),
		kafkaLine(now, "ERROR", fmt.Sprintf("[KafkaServer id=%d] Fatal error during KafkaServer startup. Prepare to shutdown", id), serverLogger),
	}
	lines = append(lines, mapFailedStack(
		"kafka.log.LogSegment.recover(LogSegment.scala:467)",
		"kafka.log.LogLoader.recoverSegment(LogLoader.scala:376)",
		"kafka.log.LogLoader.recoverLog(LogLoader.scala:437)",
		"kafka.log.LogLoader.load(LogLoader.scala:164)",
		"kafka.log.LogManager.loadLog(LogManager.scala:302)",
	)...)
	return append(lines, kafkaLine(now, "INFO", fmt.Sprintf("[KafkaServer id=%d] shutting down", id), serverLogger))
}

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
	if c.kr != nil {
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

// recoveryLines are LogLoader's progress lines for segments (from, to],
// at most a few per tick, the last always included.
func recoveryLines(now time.Time, p recoveryProgress, from, to int) []string {
	const perTick = 4
	var out []string
	step := max(1, (to-from)/perTick)
	for s := from + step; s <= to; s += step {
		if to-s < step && s != to {
			continue
		}
		out = append(out, kafkaLine(now, "INFO", recoveryMessage(p, s), "kafka.log.LogLoader"))
	}
	if len(out) == 0 && to > from {
		out = append(out, kafkaLine(now, "INFO", recoveryMessage(p, to), "kafka.log.LogLoader"))
	}
	return out
}

func recoveryMessage(p recoveryProgress, seg int) string {
	log := "events-0"
	if n := len(p.logs); n > 0 {
		log = p.logs[min(n-1, (seg-1)*n/max(p.segments, 1))]
	}
	return fmt.Sprintf("[LogLoader partition=%s, dir=%s] Recovering segment %020d.log (%d/%d)",
		log, dataDir, int64(seg)*4096, seg, p.segments)
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

// uncleanableLines is what the cleaner logs when cleaning a partition of
// __consumer_offsets throws: the exception, and that it gives up on the
// partition (LogCleaner.CleanerThread.cleanFilthiestLog).
func uncleanableLines(now time.Time, partition int) []string {
	tp := fmt.Sprintf("%s-%d", offsetsTopic, partition)
	return []string{
		kafkaLine(now, "ERROR", fmt.Sprintf("[kafka-log-cleaner-thread-0]: Unexpected exception thrown when cleaning log "+
			"Log(dir=%s/%s, topic=%s, partition=%d). Marking its partition (%s) as uncleanable",
			dataDir, tp, offsetsTopic, partition, tp), cleanerLogger),
		"org.apache.kafka.common.errors.CorruptRecordException: Record size 0 is less than the minimum record overhead (14)",
		"\tat org.apache.kafka.common.record.ByteBufferLogInputStream.nextBatchSize(ByteBufferLogInputStream.java:73)",
		"\tat kafka.log.Cleaner.cleanInto(LogCleaner.scala:727)",
		"\tat kafka.log.Cleaner.cleanSegments(LogCleaner.scala:623)",
		"\tat kafka.log.Cleaner.doClean(LogCleaner.scala:551)",
		"\tat kafka.log.LogCleaner$CleanerThread.cleanFilthiestLog(LogCleaner.scala:373)",
	}
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

// SetLimit changes a host limit of a broker (LimitMaxMapCount,
// LimitFileMax, LimitNofile), as kfleet-SetSysctl does, and records the
// change with who asked. It returns the previous value. A new limit is
// checked at the broker's next start, as a running JVM keeps its maps.
func (f *Fleet) SetLimit(ctx context.Context, cluster string, broker int32, name string, value int64, who string) (old int64, err error) {
	c, b, err := f.broker(cluster, broker)
	if err != nil {
		return 0, err
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("localfleet: cluster %q: broker %d: set %s: %w", cluster, broker, name, err)
	}
	if value <= 0 {
		return 0, fmt.Errorf("localfleet: cluster %q: broker %d: set %s: %w: value must be positive, got %d", cluster, broker, name, ErrBadFault, value)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var p *int64
	switch name {
	case LimitMaxMapCount:
		p = &b.rt.maxMapCount
	case LimitFileMax:
		p = &b.rt.fileMax
	case LimitNofile:
		p = &b.rt.nofile
	default:
		return 0, fmt.Errorf("localfleet: cluster %q: broker %d: set %s: %w: unknown limit (want %s, %s or %s)",
			cluster, broker, name, ErrBadFault, LimitMaxMapCount, LimitFileMax, LimitNofile)
	}
	old, *p = *p, value
	if old != value {
		c.recordDetailLocked(b, EventLimit, who, fmt.Sprintf("%s %d -> %d", name, old, value))
	}
	return old, nil
}

// Limit returns a host limit of a broker (see SetLimit).
func (f *Fleet) Limit(cluster string, broker int32, name string) (int64, error) {
	c, b, err := f.broker(cluster, broker)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch name {
	case LimitMaxMapCount:
		return b.rt.maxMapCount, nil
	case LimitFileMax:
		return b.rt.fileMax, nil
	case LimitNofile:
		return b.rt.nofile, nil
	}
	return 0, fmt.Errorf("localfleet: cluster %q: broker %d: limit %s: %w: unknown limit", cluster, broker, name, ErrBadFault)
}

// BrokerLog returns the broker's last n log lines, oldest first.
func (f *Fleet) BrokerLog(cluster string, broker int32, n int) ([]string, error) {
	c, b, err := f.broker(cluster, broker)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return b.rt.log.tail(max(n, 0)), nil
}

// faultHandler serves POST /v1/clusters/{id}/brokers/{broker}/faults/{fault}
// with the fault's parameters as query parameters (segments, count,
// multiplier, perMinute). Instance faults act on the broker's host.
func (f *Fleet) faultHandler(w http.ResponseWriter, r *http.Request) {
	f.withCluster(func(w http.ResponseWriter, r *http.Request, id string) {
		n, err := strconv.ParseInt(r.PathValue("broker"), 10, 32)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "broker must be an integer id"})
			return
		}
		fault, err := parseFault(r)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
			return
		}
		who := r.Header.Get(WhoHeader)
		if who == "" {
			who = "api"
		}
		if err := f.InjectFault(r.Context(), id, int32(n), fault, who); err != nil {
			if errors.Is(err, ErrBadFault) {
				writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
				return
			}
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, f.clusterStatus(id))
	})(w, r)
}

func parseFault(r *http.Request) (Fault, error) {
	q := r.URL.Query()
	fault := Fault{Kind: FaultKind(r.PathValue("fault"))}
	var errs []error
	num := func(name string, bits int, set func(int64)) {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, bits)
			if err != nil || n < 0 {
				errs = append(errs, fmt.Errorf("%s must be a non-negative integer, got %q", name, v))
				return
			}
			set(n)
		}
	}
	num("segments", 32, func(n int64) { fault.Segments = int(n) })
	num("count", 32, func(n int64) { fault.Count = int(n) })
	num("perMinute", 64, func(n int64) { fault.PerMinute = n })
	num("perThrottle", 64, func(n int64) { fault.PerThrottle = n })
	if v := q.Get("multiplier"); v != "" {
		m, err := strconv.ParseFloat(v, 64)
		if err != nil || m < 1 {
			errs = append(errs, fmt.Errorf("multiplier must be a number >= 1, got %q", v))
		}
		fault.Multiplier = m
	}
	return fault, errors.Join(errs...)
}

// SSM documents on host limits and logs (ssm.go dispatches to these).

// defaultTailLines is kfleet-TailLog's default Lines.
const defaultTailLines = 100

// validateHostParameter checks kfleet-SetSysctl's and kfleet-TailLog's
// parameters at SendCommand, as the documents' allowedPattern does in AWS.
func validateHostParameter(name, value string) error {
	switch name {
	case cloud.ParamName:
		switch value {
		case LimitMaxMapCount, LimitFileMax, LimitNofile:
			return nil
		}
		return ssmErr("InvalidParameters", "parameter %q must be one of %s, %s, %s; got %q",
			name, LimitMaxMapCount, LimitFileMax, LimitNofile, value)
	case cloud.ParamValue, cloud.ParamLines:
		if n, err := strconv.ParseInt(value, 10, 64); err != nil || n < 1 {
			return ssmErr("InvalidParameters", "parameter %q must be a positive integer, got %q", name, value)
		}
	}
	return nil
}

// setSysctl runs kfleet-SetSysctl: it prints what the real document
// prints (the value in force, and whether it changed).
func (f *Fleet) setSysctl(ctx context.Context, ref instanceRef, who, name, value string) (string, error) {
	if name == "" || value == "" {
		return "", fmt.Errorf("localfleet: cluster %q: broker %d: %s: parameters %s and %s are required",
			ref.cluster, ref.broker, cloud.DocSetSysctl, cloud.ParamName, cloud.ParamValue)
	}
	v, err := strconv.ParseInt(value, 10, 64)
	if err != nil {
		return "", fmt.Errorf("localfleet: cluster %q: broker %d: %s: value %q: %w", ref.cluster, ref.broker, cloud.DocSetSysctl, value, err)
	}
	old, err := f.SetLimit(ctx, ref.cluster, ref.broker, name, v, who)
	if err != nil {
		return "", err
	}
	if old == v {
		return fmt.Sprintf("%s = %d (unchanged)\n", name, v), nil
	}
	return fmt.Sprintf("%s = %d (was %d)\n", name, v, old), nil
}

// tailLog runs kfleet-TailLog.
func (f *Fleet) tailLog(ref instanceRef, lines string) (string, error) {
	n := defaultTailLines
	if lines != "" {
		v, err := strconv.Atoi(lines)
		if err != nil {
			return "", fmt.Errorf("localfleet: cluster %q: broker %d: %s: lines %q: %w", ref.cluster, ref.broker, cloud.DocTailLog, lines, err)
		}
		n = v
	}
	out, err := f.BrokerLog(ref.cluster, ref.broker, n)
	if err != nil {
		return "", err
	}
	if len(out) == 0 {
		return "", nil
	}
	return strings.Join(out, "\n") + "\n", nil
}

// hostLimitsOutput is kfleet-HostLimits's output (the real document's
// format, which cloud.ParseHostLimits reads): the limits, the segment
// count, and the maps and file descriptors the process holds, 0 when it
// does not run.
func (f *Fleet) hostLimitsOutput(ref instanceRef) (string, error) {
	c, b, err := f.broker(ref.cluster, ref.broker)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recountSegmentsLocked()
	rt := &b.rt
	var maps, open int64
	if _, up := kafkaBrokerState(b.state); up {
		maps, open = int64(rt.allSegments())*mapsPerSegment, rt.fdsNeeded()
	}
	return fmt.Sprintf("%s=%d\n%s=%d\n%s=%d\nsegments=%d\nmaps=%d\nopen_files=%d\n",
		LimitMaxMapCount, rt.maxMapCount, LimitFileMax, rt.fileMax, LimitNofile, rt.nofile, rt.allSegments(), maps, open), nil
}

// brokerStatusOutput is kfleet-BrokerStatus's output: the state on the
// first line, then the last log lines for diagnosis, as the real document
// prints the journal.
func (f *Fleet) brokerStatusOutput(ref instanceRef, state State) (string, error) {
	tail, err := f.tailLog(ref, "50")
	if err != nil {
		return "", err
	}
	return string(state) + "\n" + tail, nil
}
