package localfleet

import (
	"fmt"
	"time"
)

// A broker's process and host model (faults act on it): its segments and
// host limits, why a start fails, its heap, its cleaner thread, and the
// recent lines of its log.

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
