package localfleet

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Segments that topics bring (issue #14, the FD/mmap budget). A broker
// holds its configured base of segments (SegmentsPerBroker: the logs it
// had before the test) plus, for each replica of a topic created through
// the fleet, the segments that replica holds once its retention is full:
//
//	ceil(retention.ms / segment.ms) + 1
//
// with Kafka's defaults of 7 days for both. The model fast-forwards to
// that steady state at creation: a topic rolling a segment a minute with
// six hours' retention costs its brokers 361 segments per replica at once,
// not over six hours, so that a test sees in seconds what a broker meets
// within a retention period. Each segment needs 2 memory maps; a running
// broker whose segments then need more maps than vm.max_map_count dies as
// Kafka does when mmap refuses an index (java.io.IOException: Map failed),
// and every start after fails the same way until the limit is raised or
// the topics are deleted.

// Kafka's defaults (log.retention.hours, log.roll.hours).
const (
	defaultRetentionMs = int64(7 * 24 * time.Hour / time.Millisecond)
	defaultSegmentMs   = defaultRetentionMs
)

// steadySegments is the segments a replica of a topic created with these
// configs holds once its retention is full.
func steadySegments(configs []kmsg.CreateTopicsRequestTopicConfig) int {
	retention, segment := defaultRetentionMs, defaultSegmentMs
	for _, c := range configs {
		if c.Value == nil {
			continue
		}
		v, err := strconv.ParseInt(*c.Value, 10, 64)
		if err != nil || v <= 0 {
			continue // Kafka validated it; -1 (unlimited) keeps the default estimate
		}
		switch c.Name {
		case "retention.ms":
			retention = v
		case "segment.ms":
			segment = v
		}
	}
	return int((retention+segment-1)/segment) + 1
}

// allSegments is what the broker's process holds: its base and its
// topics' replicas (recountSegmentsLocked).
func (r *runtime) allSegments() int { return r.segments + r.topicSegments }

// recountSegmentsLocked counts every broker's topic segments from the
// model: the replicas it holds (or is being moved onto) of each topic
// with a steady-state estimate.
func (c *cluster) recountSegmentsLocked() {
	count := make(map[int32]int, len(c.brokers))
	for _, t := range c.topics {
		if t.plan == nil || t.plan.segments == 0 {
			continue
		}
		for _, p := range t.parts {
			holders := p.replicas
			if p.reassign != nil {
				holders = append(holders[:len(holders):len(holders)], p.reassign.target...)
			}
			seen := map[int32]bool{}
			for _, id := range holders {
				if !seen[id] {
					seen[id] = true
					count[id] += t.plan.segments
				}
			}
		}
	}
	for _, b := range c.brokers {
		b.rt.topicSegments = count[b.id]
	}
}

// checkMaps runs after topics or partitions were created: the model
// learns their replicas from kfake, and each running broker whose
// segments now need more maps than vm.max_map_count allows dies of Map
// failed, in the background as a crash does.
func (c *cluster) checkMaps(ctx context.Context) {
	if err := c.refresh(ctx); err != nil {
		c.log.Warn().Err(err).Msg("segments: refresh the model after a creation")
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.recountSegmentsLocked()
	type death struct {
		b      *broker
		detail string
		part   string
	}
	var deaths []death
	for _, b := range c.brokers {
		if b.state != StateRunning && b.state != StateRecovering {
			continue
		}
		segs := b.rt.allSegments()
		if int64(segs)*mapsPerSegment <= b.rt.maxMapCount {
			continue
		}
		part := "events-0"
		if logs := c.hostedLogsLocked(b.id); len(logs) > 0 {
			part = logs[len(logs)-1]
		}
		deaths = append(deaths, death{b: b, part: part,
			detail: fmt.Sprintf("Map failed: %d segments need %d maps, vm.max_map_count is %d", segs, int64(segs)*mapsPerSegment, b.rt.maxMapCount)})
	}
	c.wg.Add(len(deaths))
	c.mu.Unlock()
	for _, d := range deaths {
		go func() {
			defer c.wg.Done()
			if err := c.crash(d.b, "kafka", d.detail, mapFailedNewLog(time.Now(), d.part)); err != nil {
				c.log.Warn().Err(err).Int32("broker", d.b.id).Msg("segments: Map failed")
			}
		}()
	}
}

// mapFailedNewLog is what a broker logs when mmap refuses the index of a
// log it creates for a new replica.
func mapFailedNewLog(now time.Time, partition string) []string {
	lines := []string{kafkaLine(now, "ERROR", "Error while creating log for "+partition+" in dir "+dataDir, "kafka.server.LogDirFailureChannel")}
	lines = append(lines, mapFailedStack(
		"kafka.log.LogSegment.open(LogSegment.scala:680)",
		"kafka.log.LocalLog.createNewCleanedSegment(LocalLog.scala:1013)",
		"kafka.log.UnifiedLog$.apply(UnifiedLog.scala:1849)",
		"kafka.log.LogManager.getOrCreateLog(LogManager.scala:1006)",
		"kafka.cluster.Partition.createLog(Partition.scala:405)",
	)...)
	return append(lines, kafkaLine(now, "ERROR", "Shutdown broker because all log dirs in "+dataDir+" have failed", "kafka.log.LogManager"))
}
