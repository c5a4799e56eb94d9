package cloud

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// HostLimits is what kfleet-HostLimits reports about a broker host: the
// limits a broker with many partitions runs into (2 memory maps and ~1.5
// file descriptors per log segment) and how close the broker is to them.
type HostLimits struct {
	// MaxMapCount is vm.max_map_count; FileMax is fs.file-max; Nofile is
	// the kafka service's LimitNOFILE ("infinity" reads as math.MaxInt64).
	MaxMapCount, FileMax, Nofile int64
	// Segments counts the log segments (*.log) under the data directory,
	// whether or not the broker runs: what its next start will map.
	Segments int
	// Maps and OpenFiles are the memory maps and file descriptors the
	// Kafka process holds now; 0 when it does not run.
	Maps, OpenFiles int64
}

// kfleet-HostLimits output keys.
const (
	keyMaxMapCount = "vm.max_map_count"
	keyFileMax     = "fs.file-max"
	keyNofile      = "nofile"
	keySegments    = "segments"
	keyMaps        = "maps"
	keyOpenFiles   = "open_files"
)

// ErrBadHostLimits marks kfleet-HostLimits output that cannot be read:
// a required key is missing or a value is not a number. Retrying the
// document does not help; the document on the host is not the one kfleet
// expects.
var ErrBadHostLimits = errors.New("malformed kfleet-HostLimits output")

// ParseHostLimits reads kfleet-HostLimits's standard output: one key=value
// line per figure. vm.max_map_count, nofile and segments are required (the
// missing ones are named together); fs.file-max, maps and open_files read
// as 0 when absent. Unknown keys and lines without '=' are ignored, so the
// document can report more without breaking older readers; a repeated key
// takes its last value.
func ParseHostLimits(stdout string) (HostLimits, error) {
	var (
		l    HostLimits
		errs []error
		seen = map[string]bool{}
	)
	num := func(key, v string) int64 {
		if key == keyNofile && v == "infinity" {
			return math.MaxInt64 // systemd's spelling of RLIM_INFINITY
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%w: %s=%q is not a non-negative integer", ErrBadHostLimits, key, v))
		}
		return n
	}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		key, value, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case keyMaxMapCount:
			l.MaxMapCount = num(key, value)
		case keyFileMax:
			l.FileMax = num(key, value)
		case keyNofile:
			l.Nofile = num(key, value)
		case keySegments:
			l.Segments = int(num(key, value))
		case keyMaps:
			l.Maps = num(key, value)
		case keyOpenFiles:
			l.OpenFiles = num(key, value)
		default:
			continue
		}
		seen[key] = true
	}
	if err := sc.Err(); err != nil {
		return HostLimits{}, fmt.Errorf("%w: %w", ErrBadHostLimits, err)
	}
	var missing []string
	for _, key := range []string{keyMaxMapCount, keyNofile, keySegments} {
		if !seen[key] {
			missing = append(missing, key)
		}
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("%w: missing %s", ErrBadHostLimits, strings.Join(missing, ", ")))
	}
	if err := errors.Join(errs...); err != nil {
		return HostLimits{}, err
	}
	return l, nil
}
