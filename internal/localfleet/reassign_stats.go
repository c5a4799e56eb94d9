package localfleet

import (
	"math"
	"time"
)

// ReassignmentStats is what the fleet measured of a cluster's partition
// reassignments since it started running the cluster
// (reassign_copy.go), so that a benchmark can report reassignment
// throughput and how far the throttles held it.
type ReassignmentStats struct {
	Cluster string `json:"cluster"`
	// PartitionsMoved counts completed reassignments; InFlight those in
	// progress now.
	PartitionsMoved int `json:"partitionsMoved"`
	InFlight        int `json:"inFlight"`
	// BytesMoved is what every copy moved, cancelled and superseded
	// ones included.
	BytesMoved int64 `json:"bytesMoved"`
	// FirstStart is when the first reassignment started, LastEnd when
	// the last one completed; zero when none did.
	FirstStart time.Time `json:"firstStart"`
	LastEnd    time.Time `json:"lastEnd"`
	// Brokers are the brokers that took part, as adding replica or as
	// the leader copied from.
	Brokers map[int32]BrokerReassignmentStats `json:"brokers"`
}

// BrokerReassignmentStats is one broker's reassignment copy traffic.
// Rates are over 1-second windows, closed ones only (a window still open
// counts once it closes, at the latest when the copies end).
type BrokerReassignmentStats struct {
	BytesIn  int64 `json:"bytesIn"`  // copied into its adding replicas
	BytesOut int64 `json:"bytesOut"` // copied from it as the leader
	// PeakBytesPerSec is the highest inbound rate; PeakThrottledBytesPerSec
	// that of throttled copies alone.
	PeakBytesPerSec          float64 `json:"peakBytesPerSec"`
	PeakThrottledBytesPerSec float64 `json:"peakThrottledBytesPerSec"`
	// ThrottleBytesPerSec is the highest follower.replication.throttled.
	// rate in force while throttled copies came in (0: none ever did);
	// it is kept after the throttle is removed.
	ThrottleBytesPerSec int64 `json:"throttleBytesPerSec"`
	// The same as the leader copied from, with its
	// leader.replication.throttled.rate.
	PeakOutBytesPerSec          float64 `json:"peakOutBytesPerSec"`
	PeakThrottledOutBytesPerSec float64 `json:"peakThrottledOutBytesPerSec"`
	LeaderThrottleBytesPerSec   int64   `json:"leaderThrottleBytesPerSec"`
}

// Throughput is BytesMoved per second from FirstStart to LastEnd; 0
// before a reassignment completed.
func (s ReassignmentStats) Throughput() float64 {
	d := s.LastEnd.Sub(s.FirstStart).Seconds()
	if s.LastEnd.IsZero() || d <= 0 {
		return 0
	}
	return float64(s.BytesMoved) / d
}

// ReassignmentStats returns what the fleet measured of the cluster's
// reassignments.
func (f *Fleet) ReassignmentStats(cluster string) (ReassignmentStats, error) {
	c, err := f.cluster(cluster)
	if err != nil {
		return ReassignmentStats{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := ReassignmentStats{
		Cluster: cluster, PartitionsMoved: c.copies.moved, BytesMoved: int64(math.Round(c.copies.bytes)),
		FirstStart: c.copies.first, LastEnd: c.copies.lastEnd, Brokers: map[int32]BrokerReassignmentStats{},
	}
	for _, t := range c.topics {
		for _, p := range t.parts {
			if p.reassign != nil {
				s.InFlight++
			}
		}
	}
	for id, m := range c.copies.meters {
		s.Brokers[id] = BrokerReassignmentStats{
			BytesIn: int64(math.Round(m.in)), BytesOut: int64(math.Round(m.out)),
			PeakBytesPerSec: m.peakIn, PeakThrottledBytesPerSec: m.peakThrottledIn, ThrottleBytesPerSec: m.throttleIn,
			PeakOutBytesPerSec: m.peakOut, PeakThrottledOutBytesPerSec: m.peakThrottledOut, LeaderThrottleBytesPerSec: m.throttleOut,
		}
	}
	return s, nil
}

// reassignmentMeterLocked is broker id's copy traffic for its metrics:
// total bytes in and out, and the last window's throttled rates.
func (c *cluster) reassignmentMeterLocked(id int32) (in, out, throttledIn, throttledOut float64) {
	m := c.copies.meters[id]
	if m == nil {
		return 0, 0, 0, 0
	}
	return m.in, m.out, m.throttledInRate, m.throttledOutRate
}
