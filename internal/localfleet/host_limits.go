package localfleet

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/kfleet/kfleet/internal/cloud"
)

// Host limits and the host documents' answers about a broker:
// kfleet-SetSysctl, kfleet-HostLimits, kfleet-TailLog, kfleet-BrokerStatus,
// and the fleet's HTTP fault API.

// Limit names kfleet-SetSysctl changes.
const (
	LimitMaxMapCount = "vm.max_map_count"
	LimitFileMax     = "fs.file-max"
	LimitNofile      = "nofile" // the kafka service's LimitNOFILE
)

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
