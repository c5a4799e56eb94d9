package localfleet

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kfleet/kfleet/internal/cloud"
)

// The EC2 lifecycle of instances: launched (pending, then running), stopped
// and started again, or terminated, by kfleet (StopInstances, ...) or
// behind its back (an instance retirement, a hardware failure, a mistaken
// click, the instance faults). What depends on a broker's host follows:
// the Kafka process dies with it (no controlled shutdown), EC2 describes
// the new state, SSM refuses to run documents on it, its node exporter
// stops answering, and the broker cannot start until the host runs again.
// A terminated host never does: its data volume outlives it detached, and
// a replacement takes it over (provision.go).
//
// Each change passes through its intermediate state for the fleet's
// EC2Timing; the EC2 API answers at once, as AWS does, and the fleet's Go
// API and instance faults wait for the final state.

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

// errIncorrectInstanceState: the instance's state does not allow the
// change asked for.
var errIncorrectInstanceState = errors.New("incorrect instance state")

// instanceTransition is one EC2 lifecycle change: the state the instance
// passes through and the one it ends in, the states it may start from, and
// the states in which it changes nothing (EC2 answers StopInstances on a
// stopped instance with success).
type instanceTransition struct {
	verb       string // "stopped", "started", "terminated": what EC2's refusal says cannot be done
	via, final string
	from, noop []string
	event      EventKind
	kills      bool // the Kafka process dies with the host
	delay      func(EC2Timing) time.Duration
}

var (
	stopTransition = instanceTransition{
		verb: "stopped", via: InstanceStopping, final: InstanceStopped,
		from:  []string{InstancePending, InstanceRunning},
		noop:  []string{InstanceStopping, InstanceStopped},
		event: EventInstanceStopped, kills: true,
		delay: func(t EC2Timing) time.Duration { return t.Stopping },
	}
	terminateTransition = instanceTransition{
		verb: "terminated", via: InstanceShuttingDown, final: InstanceTerminated,
		from:  []string{InstancePending, InstanceRunning, InstanceStopping, InstanceStopped},
		noop:  []string{InstanceShuttingDown, InstanceTerminated},
		event: EventInstanceTerminated, kills: true,
		delay: func(t EC2Timing) time.Duration { return t.ShuttingDown },
	}
	startTransition = instanceTransition{
		verb: "started", via: InstancePending, final: InstanceRunning,
		from:  []string{InstanceStopped},
		noop:  []string{InstancePending, InstanceRunning},
		event: EventInstanceStarted,
		delay: func(t EC2Timing) time.Duration { return t.Pending },
	}
	// launchTransition completes RunInstances: pending from the start.
	launchTransition = instanceTransition{
		verb: "launched", via: InstancePending, final: InstanceRunning,
		delay: func(t EC2Timing) time.Duration { return t.Pending },
	}
)

// instanceTransitionFor is the transition an instance fault makes; ok is
// false for other faults.
func instanceTransitionFor(kind FaultKind) (tr instanceTransition, ok bool) {
	switch kind {
	case FaultStopInstance:
		return stopTransition, true
	case FaultTerminateInstance:
		return terminateTransition, true
	case FaultStartInstance:
		return startTransition, true
	}
	return instanceTransition{}, false
}

// beginTransition moves the instance into tr's intermediate state. begun
// is false when the transition has nothing to do (prev is a no-op state)
// or is refused (err wraps errIncorrectInstanceState). gen identifies the
// change for finishTransition.
func (h *hosts) beginTransition(instanceID string, tr instanceTransition) (prev string, gen uint64, begun bool, _ error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	in, err := h.instanceLocked(instanceID)
	if err != nil {
		return "", 0, false, err
	}
	prev = in.state
	switch {
	case slices.Contains(tr.noop, prev):
		return prev, in.gen, false, nil
	case slices.Contains(tr.from, prev) && tr.final == InstanceRunning && h.capacityLocked(in.az) != nil:
		return prev, in.gen, false, h.capacityLocked(in.az)
	case slices.Contains(tr.from, prev):
		in.state = tr.via
		in.gen++
		return prev, in.gen, true, nil
	}
	return prev, in.gen, false, fmt.Errorf("instance %s is %s: %w", instanceID, prev, errIncorrectInstanceState)
}

// checkTransition reports whether tr may begin on the instance now,
// changing nothing: EC2 refuses a whole StopInstances when one of its
// instances cannot stop.
func (h *hosts) checkTransition(instanceID string, tr instanceTransition) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	in, err := h.instanceLocked(instanceID)
	if err != nil {
		return err
	}
	if !slices.Contains(tr.noop, in.state) && !slices.Contains(tr.from, in.state) {
		return fmt.Errorf("instance %s is %s: %w", instanceID, in.state, errIncorrectInstanceState)
	}
	if !slices.Contains(tr.noop, in.state) && tr.final == InstanceRunning {
		return h.capacityLocked(in.az)
	}
	return nil
}

// finishTransition moves the instance into tr's final state, unless
// another change took it over meanwhile (a terminate during a stop wins):
// ok reports whether it did. A terminated instance's volumes are detached,
// or deleted when DeleteOnTermination says so; detached and deleted name
// them.
func (h *hosts) finishTransition(instanceID string, tr instanceTransition, gen uint64) (_ instanceView, detached, deleted []string, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	in, found := h.byID[instanceID]
	if !found || in.gen != gen || in.state != tr.via {
		return instanceView{}, nil, nil, false
	}
	in.state = tr.final
	in.gen++
	if tr.final == InstanceTerminated {
		for _, v := range h.attachedLocked(in.id) {
			if v.att.deleteOnTermination {
				h.removeVolumeLocked(v)
				deleted = append(deleted, v.id)
				continue
			}
			v.att, v.state = nil, VolumeAvailable
			v.gen++
			detached = append(detached, v.id)
		}
	}
	return h.instanceViewLocked(in), detached, deleted, true
}

// instanceOwner is the broker an instance is for: the one its
// server.properties names, else its kfleet:cluster and kfleet:broker-id
// tags (broker 0 without one).
func instanceOwner(v instanceView) (cluster string, broker int32) {
	if v.conf != nil {
		return v.conf.cluster, v.conf.broker
	}
	return tagOwner(v.tags)
}

// tagOwner is the cluster and broker tags name; broker 0 without one.
func tagOwner(tags []ec2Tag) (cluster string, broker int32) {
	cluster, _ = tagValue(tags, cloud.TagCluster)
	if s, ok := tagValue(tags, cloud.TagBrokerID); ok {
		if n, err := strconv.ParseInt(s, 10, 32); err == nil {
			broker = int32(n)
		}
	}
	return cluster, broker
}

// changeInstance makes tr on an instance: the intermediate state at once
// (killing the Kafka process of a broker the instance hosts, as
// FaultCrash does, so that no start can slip in between), the final state
// after the fleet's EC2 timing. With wait it returns after the final
// state; without, at once (the EC2 API). prev is the state before;
// begun is false when the instance was already where tr leads.
func (f *Fleet) changeInstance(instanceID string, tr instanceTransition, who string, wait bool) (prev string, begun bool, _ error) {
	prev, gen, begun, err := f.hosts.beginTransition(instanceID, tr)
	if err != nil || !begun {
		return prev, false, err
	}
	var crashErr error
	if tr.kills {
		if c, b, ok := f.hostedBroker(instanceID); ok {
			crashErr = c.crash(b, who, fmt.Sprintf("%s: instance %s %s", faultOf(tr), instanceID, tr.via), []string{
				kafkaLine(time.Now(), "INFO", fmt.Sprintf("[kfleet] instance %s %s: process killed, no controlled shutdown", instanceID, tr.via), serverLogger),
			})
		} else if c, ctl, ok := f.hostedController(instanceID); ok {
			crashErr = c.stopController(ctl, who, false) // a KRaft controller's host (kraft_hosts.go)
		}
	}
	if tr.via == InstancePending {
		f.checkDuplicates(instanceID)
	}
	finish := func() {
		// The instance reaches its final state even if the fleet closed
		// meanwhile: the host's fate does not depend on the broker's.
		_ = sleep(f.life, tr.delay(f.ec2.Timing))
		f.finishInstance(instanceID, tr, gen, prev, who)
	}
	if wait {
		finish()
	} else {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			finish()
		}()
	}
	return prev, true, crashErr
}

// faultOf names a transition as the fault that makes it, for the crash's
// audit detail.
func faultOf(tr instanceTransition) FaultKind {
	switch tr.final {
	case InstanceStopped:
		return FaultStopInstance
	case InstanceTerminated:
		return FaultTerminateInstance
	}
	return FaultStartInstance
}

// finishInstance completes a change begun as gen and audits it.
func (f *Fleet) finishInstance(instanceID string, tr instanceTransition, gen uint64, prev, who string) {
	v, detached, deleted, ok := f.hosts.finishTransition(instanceID, tr, gen)
	if !ok || tr.event == "" {
		return
	}
	detail := fmt.Sprintf("instance %s: %s -> %s", v.id, prev, tr.final)
	if len(detached) > 0 {
		detail += fmt.Sprintf("; volume %s detached (DeleteOnTermination false: it outlives the instance)", strings.Join(detached, ", "))
	}
	if len(deleted) > 0 {
		detail += fmt.Sprintf("; volume %s deleted (DeleteOnTermination)", strings.Join(deleted, ", "))
	}
	cluster, broker := instanceOwner(v)
	f.record(Event{Cluster: cluster, Broker: broker, Kind: tr.event, Who: who, Instance: v.id, Detail: detail})
	if tr.final == InstanceTerminated {
		f.decommissionTerminated(v.id, who) // decommission.go
	}
}

// hostedBroker is the broker whose current host is instanceID, ok false
// when Kafka does not run there (it is not configured there, or its
// broker has moved to another host, or its cluster does not run yet).
func (f *Fleet) hostedBroker(instanceID string) (*cluster, *broker, bool) {
	ref, ok := f.hosts.binding(instanceID)
	if !ok {
		return nil, nil, false
	}
	c, b, err := f.broker(ref.cluster, ref.broker)
	if err != nil || c.hostOf(b) != instanceID {
		return nil, nil, false
	}
	return c, b, true
}

// instanceFault applies an instance fault (stop-instance,
// terminate-instance, start-instance) to broker b's host and returns once
// the host is in its final state. Stopping or terminating kills the Kafka
// process exactly as FaultCrash does; the broker's next start must wait
// for the host to run again.
func (f *Fleet) instanceFault(c *cluster, b *broker, kind FaultKind, tr instanceTransition, who string) error {
	host := c.hostOf(b)
	prev, _, err := f.changeInstance(host, tr, who, true)
	if errors.Is(err, errIncorrectInstanceState) {
		why := err.Error()
		if prev == InstanceTerminated {
			why = fmt.Sprintf("instance %s is terminated: a terminated instance cannot be started or stopped; replace the host", host)
		}
		return fmt.Errorf("localfleet: cluster %q: broker %d: fault %q: %w: %s", c.id, b.id, kind, ErrBadFault, why)
	}
	return err
}

// InstanceState returns the EC2 state of a broker's host (InstanceRunning,
// InstanceStopped, InstanceTerminated, ...).
func (f *Fleet) InstanceState(cluster string, broker int32) (string, error) {
	c, b, err := f.broker(cluster, broker)
	if err != nil {
		return "", err
	}
	return f.hosts.instanceState(c.hostOf(b)), nil
}

// checkDuplicates records a duplicate-instance violation when instanceID,
// pending or running, is a broker's (kfleet:role=broker with
// kfleet:cluster and kfleet:broker-id) and another instance of that
// broker is pending or running too.
func (f *Fleet) checkDuplicates(instanceID string) {
	if d, ok := f.hosts.duplicateOf(instanceID); ok {
		f.violate(d.cluster, ViolationDuplicateInstance, d.String())
	}
}

// duplicate is a broker with more than one live instance.
type duplicate struct {
	cluster, broker string
	instances       []string // "i-... (state)"
}

func (d duplicate) String() string {
	return fmt.Sprintf("broker %s of cluster %q has %d instances pending or running: %s",
		d.broker, d.cluster, len(d.instances), strings.Join(d.instances, ", "))
}

// duplicateOf reports the broker instanceID belongs to when it has more
// than one instance pending or running, instanceID included.
func (h *hosts) duplicateOf(instanceID string) (duplicate, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	in, ok := h.byID[instanceID]
	if !ok || !liveInstance(in) {
		return duplicate{}, false
	}
	key, ok := brokerKey(in.tags)
	if !ok {
		return duplicate{}, false
	}
	d := duplicate{cluster: key.cluster, broker: key.broker}
	for _, o := range h.instances {
		if k, ok := brokerKey(o.tags); ok && k == key && liveInstance(o) {
			d.instances = append(d.instances, fmt.Sprintf("%s (%s)", o.id, o.state))
		}
	}
	return d, len(d.instances) > 1
}

func liveInstance(in *instance) bool {
	return in.state == InstancePending || in.state == InstanceRunning
}

// brokerKey is the broker an instance's tags say it is; ok false unless
// it has kfleet:role=broker, kfleet:cluster and kfleet:broker-id.
func brokerKey(tags []ec2Tag) (key struct{ cluster, broker string }, ok bool) {
	role, _ := tagValue(tags, cloud.TagRole)
	cluster, okC := tagValue(tags, cloud.TagCluster)
	broker, okB := tagValue(tags, cloud.TagBrokerID)
	if role != cloud.RoleBroker || !okC || !okB {
		return key, false
	}
	key.cluster, key.broker = cluster, broker
	return key, true
}
