package localfleet

import "time"

// A broker's catch-up, as Kafka clients see it. A broker that was out of
// its partitions' ISR (stopped, crashed, or on a blank volume) copies what
// it lacks from the leaders once it runs again, and rejoins every ISR when
// done (lifecycle.go). Meanwhile DescribeLogDirs reports its replicas
// filling up, linearly over the catch-up's time, so kfleet can tell the
// bytes left to copy and estimate when it will be done, as it would from
// a real broker's log sizes.

// partKey names a partition.
type partKey struct {
	topic string
	id    int32
}

// catchUpRun is a catch-up under way: it began at start and takes d.
type catchUpRun struct {
	start time.Time
	d     time.Duration
}

// fellBehind records n bytes written to p while the broker is out of its
// ISR. c.mu must be held.
func (b *broker) fellBehind(p *partition, n int64) {
	b.behindBytes += n
	if b.behind == nil {
		b.behind = map[partKey]int64{}
	}
	b.behind[partKey{p.topic, p.id}] += n
}

// copyAllLocked makes the broker lack every byte of each partition it
// replicates: its log directory is blank. c.mu must be held.
func (b *broker) copyAllLocked(partitions []*partition) {
	b.behind = map[partKey]int64{}
	for _, p := range partitions {
		if p.hostedOn(b.id) {
			b.behind[partKey{p.topic, p.id}] = p.bytes
		}
	}
}

// toCopyLocked is what the broker's replica of p still lacks at now: what
// it missed, less what the catch-up under way has copied so far. c.mu must
// be held.
func (b *broker) toCopyLocked(p *partition, now time.Time) int64 {
	missed := b.behind[partKey{p.topic, p.id}]
	run := b.catchUp
	if run.start.IsZero() || run.d <= 0 || b.state != StateRunning {
		return missed
	}
	done := min(float64(now.Sub(run.start))/float64(run.d), 1)
	return int64(float64(missed) * (1 - max(done, 0)))
}

// beginCatchUp starts broker b's catch-up (run gen of the broker) and
// returns how long it takes: a fixed part, plus copying what it missed
// while away at the cluster's catch-up rate.
func (c *cluster) beginCatchUp(b *broker, gen uint64) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.cfg.Timing.CatchUp
	if rate := c.cfg.Timing.CatchUpBytesPerSec; rate > 0 {
		d += time.Duration(float64(b.behindBytes) / float64(rate) * float64(time.Second))
	}
	if b.gen == gen {
		b.catchUp = catchUpRun{start: time.Now(), d: d}
	}
	return d
}
