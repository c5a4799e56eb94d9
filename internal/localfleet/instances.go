package localfleet

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// The EC2 lifecycle of broker hosts (the hosts model, hosts.go): a host can
// be stopped, started again, or terminated, as an instance retirement, a
// hardware failure or a mistaken click does in production. What depends on
// the host follows: the Kafka process dies with it (no controlled shutdown),
// EC2 describes the new state, SSM refuses to run documents on it, its node
// exporter stops answering, and the broker cannot start until the host
// runs again. A terminated host never does: recovery replaces it, taking
// over its data volume, which outlives it detached.

// EC2 instance states, as DescribeInstances names them.
const (
	InstancePending      = "pending"
	InstanceRunning      = "running"
	InstanceStopping     = "stopping"
	InstanceStopped      = "stopped"
	InstanceShuttingDown = "shutting-down"
	InstanceTerminated   = "terminated"
)

// ErrInstanceNotRunning: the broker's host is not running, so nothing can
// run on it (the Kafka process, SSM documents).
var ErrInstanceNotRunning = errors.New("instance not running")

// instanceTransition is one EC2 lifecycle change: the state the instance
// passes through and the one it ends in, the states it may start from, and
// the states in which it changes nothing (EC2 answers StopInstances on a
// stopped instance with success).
type instanceTransition struct {
	via, final string
	from, noop []string
	event      EventKind
	kills      bool // the Kafka process dies with the host
}

// instanceTransitionFor is the transition an instance fault makes; ok is
// false for other faults.
func instanceTransitionFor(kind FaultKind) (tr instanceTransition, ok bool) {
	switch kind {
	case FaultStopInstance:
		return instanceTransition{
			via: InstanceStopping, final: InstanceStopped,
			from:  []string{InstancePending, InstanceRunning},
			noop:  []string{InstanceStopping, InstanceStopped},
			event: EventInstanceStopped, kills: true,
		}, true
	case FaultTerminateInstance:
		return instanceTransition{
			via: InstanceShuttingDown, final: InstanceTerminated,
			from:  []string{InstancePending, InstanceRunning, InstanceStopping, InstanceStopped},
			noop:  []string{InstanceShuttingDown, InstanceTerminated},
			event: EventInstanceTerminated, kills: true,
		}, true
	case FaultStartInstance:
		return instanceTransition{
			via: InstancePending, final: InstanceRunning,
			from:  []string{InstanceStopped},
			noop:  []string{InstancePending, InstanceRunning},
			event: EventInstanceStarted,
		}, true
	}
	return instanceTransition{}, false
}

// beginTransition moves the instance into tr's intermediate state. begun
// is false when the transition has nothing to do (prev is a no-op state)
// or is refused (err).
func (h *hosts) beginTransition(instanceID string, tr instanceTransition) (prev string, begun bool, _ error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hs, ok := h.byInstance[instanceID]
	if !ok {
		return "", false, fmt.Errorf("localfleet: instance %s: %w", instanceID, ErrUnknownInstance)
	}
	prev = hs.state
	switch {
	case slices.Contains(tr.noop, prev):
		return prev, false, nil
	case slices.Contains(tr.from, prev):
		hs.state = tr.via
		return prev, true, nil
	}
	return prev, false, fmt.Errorf("instance %s is %s", instanceID, prev)
}

// finishTransition moves the instance into tr's final state, unless
// another transition took it over meanwhile (a terminate during a stop
// wins). ok reports whether it did.
func (h *hosts) finishTransition(instanceID string, tr instanceTransition) (_ hostView, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hs, found := h.byInstance[instanceID]
	if !found || hs.state != tr.via {
		return hostView{}, false
	}
	hs.state = tr.final
	return h.viewLocked(hs, h.now()), true
}

// instanceState is the instance's EC2 state; "" for an unknown instance.
// Safe to call with cluster.mu held.
func (h *hosts) instanceState(instanceID string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hs, ok := h.byInstance[instanceID]; ok {
		return hs.state
	}
	return ""
}

// instanceFault applies an instance fault (stop-instance,
// terminate-instance, start-instance) to broker b's host. Stopping or
// terminating kills the Kafka process exactly as FaultCrash does, while
// the instance is in its intermediate state, so that no start can slip in
// between; the broker's next start must wait for the host to run again.
func (f *Fleet) instanceFault(c *cluster, b *broker, kind FaultKind, tr instanceTransition, who string) error {
	prev, begun, err := f.hosts.beginTransition(b.instanceID, tr)
	if err != nil {
		why := err.Error()
		if prev == InstanceTerminated {
			why = fmt.Sprintf("instance %s is terminated: a terminated instance cannot be started or stopped; replace the host", b.instanceID)
		}
		return fmt.Errorf("localfleet: cluster %q: broker %d: fault %q: %w: %s", c.id, b.id, kind, ErrBadFault, why)
	}
	if !begun {
		return nil
	}
	var crashErr error
	if tr.kills {
		crashErr = c.crash(b, who, fmt.Sprintf("%s: instance %s %s", kind, b.instanceID, tr.via), []string{
			kafkaLine(time.Now(), "INFO", fmt.Sprintf("[kfleet] instance %s %s: process killed, no controlled shutdown", b.instanceID, tr.via), serverLogger),
		})
	}
	// The instance reaches its final state even if the fleet closed
	// meanwhile: the host's fate does not depend on the broker's.
	if v, ok := f.hosts.finishTransition(b.instanceID, tr); ok {
		f.recordHost(v, tr.event, who, fmt.Sprintf("instance %s: %s -> %s", v.instanceID, prev, tr.final))
	}
	return crashErr
}

// InstanceState returns the EC2 state of a broker's host (InstanceRunning,
// InstanceStopped, InstanceTerminated, ...).
func (f *Fleet) InstanceState(cluster string, broker int32) (string, error) {
	_, b, err := f.broker(cluster, broker)
	if err != nil {
		return "", err
	}
	return f.hosts.instanceState(b.instanceID), nil
}
