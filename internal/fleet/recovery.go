package fleet

import (
	"fmt"
	"strings"
)

// CrashCause is what a broker's last log lines say killed it.
type CrashCause string

// Causes recovery knows how to fix before it restarts the broker.
const (
	// CauseMapFailed: the broker's memory maps (2 per segment: .index and
	// .timeindex) exceeded vm.max_map_count; it crash-loops until the
	// limit is raised.
	CauseMapFailed CrashCause = "map-failed"
	// CauseTooManyOpenFiles: ~1.5 descriptors per segment plus sockets
	// exceeded the kafka service's open-files limit (nofile).
	CauseTooManyOpenFiles CrashCause = "too-many-open-files"
	// CauseOutOfMemory: the heap filled (e.g. the quota-throttling leak);
	// a restart frees it, no limit to raise.
	CauseOutOfMemory CrashCause = "out-of-memory"
	// CauseUnknown: nothing kfleet recognises; restart and watch.
	CauseUnknown CrashCause = "unknown"
	// CauseHostGone: the broker's instance was terminated, or stopped and
	// did not come back: it gets a new host.
	CauseHostGone CrashCause = "host-gone"
)

// crashSignatures maps a log fragment to its cause, most specific first.
var crashSignatures = []struct {
	fragment string
	cause    CrashCause
}{
	{"java.io.IOException: Map failed", CauseMapFailed},
	{"java.lang.OutOfMemoryError: Map failed", CauseMapFailed},
	{"Too many open files", CauseTooManyOpenFiles},
	{"java.lang.OutOfMemoryError", CauseOutOfMemory},
}

// maxEvidence bounds what a diagnosis keeps of the log: the lines that
// matched, cut short. The rest of the log never enters workflow history (it
// can be large, and a log line may carry what must not be recorded).
const (
	maxEvidence     = 3
	maxEvidenceLine = 300
)

// ClassifyCrash reads a broker's last log lines (oldest first) from the
// newest backwards and returns the cause of the most recent failure it
// recognises, with the matching lines as evidence (newest first).
func ClassifyCrash(lines []string) (CrashCause, []string) {
	cause := CauseUnknown
	var evidence []string
	for i := len(lines) - 1; i >= 0 && len(evidence) < maxEvidence; i-- {
		for _, sig := range crashSignatures {
			if !strings.Contains(lines[i], sig.fragment) {
				continue
			}
			if cause == CauseUnknown {
				cause = sig.cause
			}
			if sig.cause == cause {
				evidence = append(evidence, truncateLine(lines[i]))
			}
			break
		}
	}
	return cause, evidence
}

func truncateLine(s string) string {
	if len(s) <= maxEvidenceLine {
		return s
	}
	return s[:maxEvidenceLine] + "…"
}

// Memory-map and file-descriptor budget per segment (OPERATIONS.md).
const (
	MapsPerSegment = 2
	// FDs: ~1.5 per segment, written as a fraction.
	fdsPerSegmentNum = 3
	fdsPerSegmentDen = 2
	fdsForSockets    = 4096
	// limitHeadroom: a raised limit covers the segments now plus half again,
	// so partitions added next week do not crash the broker again.
	limitHeadroomNum = 3
	limitHeadroomDen = 2
	// Floors: Kafka's documentation recommends at least these.
	MinMaxMapCount = 262144
	MinNofile      = 100000
)

// MaxMapCountFor is the vm.max_map_count that covers segments with
// headroom; it never lowers current.
func MaxMapCountFor(segments int, current int64) int64 {
	need := int64(segments) * MapsPerSegment * limitHeadroomNum / limitHeadroomDen
	return max(current, roundUp(need, 65536), MinMaxMapCount)
}

// NofileFor is the open-files limit that covers segments and sockets with
// headroom; it never lowers current.
func NofileFor(segments int, current int64) int64 {
	need := (int64(segments)*fdsPerSegmentNum/fdsPerSegmentDen + fdsForSockets) * limitHeadroomNum / limitHeadroomDen
	return max(current, roundUp(need, 1024), MinNofile)
}

func roundUp(n, to int64) int64 { return (n + to - 1) / to * to }

// LimitFix is a host limit recovery raises before it restarts a broker.
type LimitFix struct {
	Name  string `json:"name"` // vm.max_map_count or nofile (kfleet-SetSysctl's Name)
	From  int64  `json:"from"`
	To    int64  `json:"to"`
	Cause string `json:"cause"`
}

// Limit names, as kfleet-SetSysctl takes them.
const (
	LimitMaxMapCount = "vm.max_map_count"
	LimitNofile      = "nofile"
)

// FixFor is the limit to raise for cause, given the host's segment count and
// current limits; ok is false when the cause has no limit to raise or the
// limit already covers the segments (then the restart alone is the fix).
func FixFor(cause CrashCause, segments int, maxMapCount, nofile int64) (LimitFix, bool) {
	switch cause {
	case CauseMapFailed:
		to := MaxMapCountFor(segments, maxMapCount)
		if to <= maxMapCount {
			return LimitFix{}, false
		}
		return LimitFix{Name: LimitMaxMapCount, From: maxMapCount, To: to,
			Cause: fmt.Sprintf("%d segments need %d maps, vm.max_map_count is %d", segments, segments*MapsPerSegment, maxMapCount)}, true
	case CauseTooManyOpenFiles:
		to := NofileFor(segments, nofile)
		if to <= nofile {
			return LimitFix{}, false
		}
		return LimitFix{Name: LimitNofile, From: nofile, To: to,
			Cause: fmt.Sprintf("%d segments need ~%d file descriptors, nofile is %d", segments, int64(segments)*fdsPerSegmentNum/fdsPerSegmentDen, nofile)}, true
	}
	return LimitFix{}, false
}
