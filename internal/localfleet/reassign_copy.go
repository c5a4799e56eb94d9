package localfleet

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// Reassignment copies. An adding replica joins the ISR only once it has
// copied the partition's log from the leader: the partition's size when
// the copy ends, that is p.bytes at the start plus whatever producers
// write meanwhile (a follower fetches up to the log end, so one slower
// than its producers never catches up, as in Kafka). Copies progress on
// a per-cluster ticker that runs only while copies are in flight:
//
//   - no byte moves before the fixed CatchUp delay from the start (the
//     follower's fetcher starting up), as before this model existed;
//   - none moves while the adding broker is not running, or the
//     partition has no running leader to fetch from;
//   - a broker takes in at most CatchUpBytesPerSec of reassignment
//     copies (its replica fetchers' capacity; 0: no limit, so a copy
//     completes at once after the delay), shared equally among its
//     copies in flight;
//   - a copy is throttled on the follower side when the topic's
//     follower.replication.throttled.replicas names partition:adding
//     broker (or is "*") and the adding broker has a
//     follower.replication.throttled.rate in force: that rate is shared
//     equally among the broker's throttled inbound copies. Likewise on
//     the leader side: leader.replication.throttled.replicas naming
//     partition:leader, and the leader's leader.replication.throttled.
//     rate shared among its throttled outbound copies. The smallest
//     bound wins.
//
// Kafka's throttles are per-broker quotas on the throttled replicas'
// replication traffic; equal shares keep the model's sum under each
// quota. Shares a copy cannot use (bounded elsewhere) are not handed on
// to others: a slight underestimate of throughput when copies are uneven.
//
// What moved is measured per broker in 1-second windows
// (ReassignmentStats, the broker's metrics); a window in which throttled
// copies moved more than 10% over their throttle is recorded as a
// throttle-exceeded violation.

const (
	// copyTick is how often copies progress while any is in flight.
	copyTick = 100 * time.Millisecond
	// rateWindow is what a measured rate spans.
	rateWindow = time.Second
	// throttleSlack is how far over its throttle a window may go.
	throttleSlack = 1.10
)

// copyJob is one adding replica's copy.
type copyJob struct {
	p     *partition
	ra    *reassignment
	to    int32     // the adding broker
	since time.Time // bytes move from then on: the start plus CatchUp
	done  float64   // bytes copied so far
}

// copyModel is a cluster's copies in flight and what was measured of
// them. Guarded by c.mu.
type copyModel struct {
	jobs    []*copyJob
	ticking bool      // runCopies is running
	last    time.Time // its previous tick
	meters  map[int32]*copyMeter
	moved   int     // reassignments completed
	bytes   float64 // bytes every copy moved, whatever became of it
	// first is the first reassignment's start, lastEnd the last
	// completion.
	first, lastEnd time.Time
}

// copyMeter is what one broker's copies moved: in as the adding
// replica, out as the leader copied from.
type copyMeter struct {
	in, out float64
	// Peaks over closed windows, in bytes/s: all copies, and throttled
	// ones alone.
	peakIn, peakOut                   float64
	peakThrottledIn, peakThrottledOut float64
	// throttleIn and throttleOut are the highest follower and leader
	// throttle rates in force while throttled copies ran.
	throttleIn, throttleOut int64
	// throttledInRate and throttledOutRate are the last closed window's
	// throttled traffic (the replication quota's byte-rate metric).
	throttledInRate, throttledOutRate float64
	win                               meterWindow
}

// meterWindow is the window being measured. allow* is what the
// throttles in force allowed throttled copies to move meanwhile.
type meterWindow struct {
	elapsed                   float64 // seconds
	in, out, thrIn, thrOut    float64
	allowIn, allowOut         float64
	throttledIn, throttledOut bool // throttled copies ran in it
}

// beginCopiesLocked starts the copies of ra's adding replicas that are
// not in sync yet. Replicas the superseded reassignment old was adding
// keep what they copied. It returns what the copies must move.
func (c *cluster) beginCopiesLocked(p *partition, ra, old *reassignment, now time.Time) int64 {
	var total int64
	for _, b := range ra.adding() {
		if p.inSync(b) {
			continue // added by the superseded reassignment already
		}
		j := &copyJob{p: p, ra: ra, to: b, since: now.Add(c.cfg.Timing.CatchUp)}
		if old != nil {
			if prev := old.copies[b]; prev != nil {
				j.since, j.done = prev.since, prev.done
			}
		}
		ra.copies[b] = j
		c.copies.jobs = append(c.copies.jobs, j)
		total += max(p.bytes-int64(j.done), 0)
	}
	c.ensureCopyTickerLocked(now)
	return total
}

// copyingLocked reports whether broker's replica of p is an adding
// replica still copying.
func (c *cluster) copyingLocked(p *partition, broker int32) bool {
	return p.reassign != nil && p.reassign.copies[broker] != nil
}

// copiedLocked is what broker's adding replica of p holds so far; ok is
// false when it is not copying.
func (c *cluster) copiedLocked(p *partition, broker int32) (int64, bool) {
	if !c.copyingLocked(p, broker) {
		return 0, false
	}
	return min(int64(p.reassign.copies[broker].done), p.bytes), true
}

// restartCopiesLocked starts broker's copies over: its log directory is
// blank (a new data volume).
func (c *cluster) restartCopiesLocked(broker int32) {
	for _, j := range c.copies.jobs {
		if j.to == broker {
			j.done = 0
		}
	}
}

func (c *cluster) staleLocked(j *copyJob) bool {
	return j.p.reassign != j.ra || j.ra.copies[j.to] != j || c.partitionLocked(j.p.topic, j.p.id) != j.p
}

// ensureCopyTickerLocked starts the ticker when copies are in flight and
// none runs.
func (c *cluster) ensureCopyTickerLocked(now time.Time) {
	if c.copies.ticking || len(c.copies.jobs) == 0 || c.closed || c.life.Err() != nil {
		return
	}
	c.copies.ticking, c.copies.last = true, now
	c.wg.Add(1)
	go c.runCopies(c.nextCopyTickLocked(now))
}

// nextCopyTickLocked is when copies next need to progress: a tick from
// now, or sooner when a copy's delay ends first (so that an unlimited
// copy completes right after its delay, as a timer would).
func (c *cluster) nextCopyTickLocked(now time.Time) time.Duration {
	next := copyTick
	for _, j := range c.copies.jobs {
		if d := j.since.Sub(now); d > 0 && d < next {
			next = d
		}
	}
	return max(next, time.Millisecond)
}

// runCopies is the ticker: it runs until no copy is in flight or the
// cluster's life ends.
func (c *cluster) runCopies(first time.Duration) {
	defer c.wg.Done()
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-c.life.Done():
			c.mu.Lock()
			c.copies.ticking = false
			c.mu.Unlock()
			return
		case <-t.C:
		}
		c.mu.Lock()
		if c.closed {
			c.copies.ticking = false
			c.mu.Unlock()
			return
		}
		now := time.Now()
		c.tickCopiesLocked(now)
		if len(c.copies.jobs) == 0 {
			c.idleMetersLocked()
			c.copies.ticking = false
			c.mu.Unlock()
			return
		}
		next := c.nextCopyTickLocked(now)
		c.mu.Unlock()
		t.Reset(next)
	}
}

// copyMove is a copy that may move bytes in this tick.
type copyMove struct {
	j          *copyJob
	leader     int32
	dt         float64 // seconds it moved for in this tick
	fThr, lThr bool    // follower-, leader-throttled
}

// tickCopiesLocked moves every copy in flight on by what it could copy
// since the previous tick, measures it, and puts replicas that finished
// into the ISR.
func (c *cluster) tickCopiesLocked(now time.Time) {
	prev := c.copies.last
	c.copies.last = now
	dt := max(now.Sub(prev).Seconds(), 0)

	var moves []copyMove
	inbound, thrIn, thrOut := map[int32]int{}, map[int32]int{}, map[int32]int{}
	live := c.copies.jobs[:0]
	for _, j := range c.copies.jobs {
		if c.staleLocked(j) {
			continue
		}
		live = append(live, j)
		from := prev
		if j.since.After(from) {
			from = j.since
		}
		leader := j.p.leader
		if !now.After(from) || !c.runningLocked(j.to) || leader < 0 || leader == j.to || !c.runningLocked(leader) {
			continue
		}
		m := copyMove{j: j, leader: leader, dt: now.Sub(from).Seconds()}
		if _, ok := c.rateLocked(j.to, followerThrottledRate); ok && c.throttledLocked(j.p, followerThrottledReplicas, j.to) {
			m.fThr = true
			thrIn[j.to]++
		}
		if _, ok := c.rateLocked(leader, leaderThrottledRate); ok && c.throttledLocked(j.p, leaderThrottledReplicas, leader) {
			m.lThr = true
			thrOut[leader]++
		}
		inbound[j.to]++
		moves = append(moves, m)
	}
	clear(c.copies.jobs[len(live):])
	c.copies.jobs = live

	capacity := c.cfg.Timing.CatchUpBytesPerSec
	for _, m := range moves {
		rate := math.Inf(1)
		if capacity > 0 {
			rate = float64(capacity) / float64(inbound[m.j.to])
		}
		if m.fThr {
			r, _ := c.rateLocked(m.j.to, followerThrottledRate)
			rate = min(rate, float64(r)/float64(thrIn[m.j.to]))
		}
		if m.lThr {
			r, _ := c.rateLocked(m.leader, leaderThrottledRate)
			rate = min(rate, float64(r)/float64(thrOut[m.leader]))
		}
		n := max(float64(m.j.p.bytes)-m.j.done, 0)
		if !math.IsInf(rate, 1) {
			n = min(n, rate*m.dt)
		}
		m.j.done += n
		m.j.ra.copied += n
		c.copies.bytes += n
		to, from := c.meterLocked(m.j.to), c.meterLocked(m.leader)
		to.in, to.win.in = to.in+n, to.win.in+n
		from.out, from.win.out = from.out+n, from.win.out+n
		if m.fThr {
			to.win.thrIn += n
		}
		if m.lThr {
			from.win.thrOut += n
		}
	}
	// What the throttles allowed this tick, for the violation check.
	for id := range thrIn {
		r, _ := c.rateLocked(id, followerThrottledRate)
		m := c.meterLocked(id)
		m.win.allowIn += float64(r) * dt
		m.win.throttledIn = true
		m.throttleIn = max(m.throttleIn, r)
	}
	for id := range thrOut {
		r, _ := c.rateLocked(id, leaderThrottledRate)
		m := c.meterLocked(id)
		m.win.allowOut += float64(r) * dt
		m.win.throttledOut = true
		m.throttleOut = max(m.throttleOut, r)
	}
	for _, id := range sortedKeys(c.copies.meters) {
		m := c.copies.meters[id]
		if m.win.elapsed += dt; m.win.elapsed >= rateWindow.Seconds() {
			c.closeWindowLocked(id, m)
		}
	}

	for _, m := range moves {
		j := m.j
		if j.done < float64(j.p.bytes) || c.staleLocked(j) {
			continue
		}
		delete(j.ra.copies, j.to)
		if !j.p.inSync(j.to) {
			j.p.isr = c.inReplicaOrder(j.p, append(slices.Clone(j.p.isr), j.to))
		}
		c.maybeCompleteReassignmentLocked(j.p)
	}
	// Drop the copies that just ended, so that the last one's end closes
	// the windows now: its measurements are there as soon as its
	// completion is.
	c.copies.jobs = slices.DeleteFunc(c.copies.jobs, c.staleLocked)
}

func (c *cluster) meterLocked(id int32) *copyMeter {
	if c.copies.meters == nil {
		c.copies.meters = map[int32]*copyMeter{}
	}
	m := c.copies.meters[id]
	if m == nil {
		m = &copyMeter{}
		c.copies.meters[id] = m
	}
	return m
}

// closeWindowLocked ends broker id's window: its rates count towards the
// peaks, and throttled traffic over its allowance is a violation. A
// window cut short (the copies ended) still spans a second: nothing
// else moved in the rest of it.
func (c *cluster) closeWindowLocked(id int32, m *copyMeter) {
	w := m.win
	m.win = meterWindow{}
	span := max(w.elapsed, rateWindow.Seconds())
	m.peakIn, m.peakOut = max(m.peakIn, w.in/span), max(m.peakOut, w.out/span)
	m.peakThrottledIn, m.peakThrottledOut = max(m.peakThrottledIn, w.thrIn/span), max(m.peakThrottledOut, w.thrOut/span)
	m.throttledInRate, m.throttledOutRate = w.thrIn/span, w.thrOut/span
	if w.throttledIn && w.thrIn > w.allowIn*throttleSlack+1 {
		c.violateLocked(ViolationThrottleExceeded, fmt.Sprintf(
			"broker %d: throttled reassignment copies into it moved %.0f bytes in %.2fs, over the %.0f bytes its follower.replication.throttled.rate allowed (+10%%)",
			id, w.thrIn, w.elapsed, w.allowIn))
	}
	if w.throttledOut && w.thrOut > w.allowOut*throttleSlack+1 {
		c.violateLocked(ViolationThrottleExceeded, fmt.Sprintf(
			"broker %d: throttled reassignment copies led by it moved %.0f bytes in %.2fs, over the %.0f bytes its leader.replication.throttled.rate allowed (+10%%)",
			id, w.thrOut, w.elapsed, w.allowOut))
	}
}

// idleMetersLocked closes every window when the last copy ends: no
// copy traffic flows until the next reassignment.
func (c *cluster) idleMetersLocked() {
	for _, id := range sortedKeys(c.copies.meters) {
		m := c.copies.meters[id]
		if m.win.elapsed > 0 {
			c.closeWindowLocked(id, m)
		}
		m.throttledInRate, m.throttledOutRate = 0, 0
	}
}
