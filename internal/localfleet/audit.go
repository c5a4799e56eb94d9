package localfleet

import "time"

// State is a broker's lifecycle state.
type State string

// Broker states.
const (
	StateRunning  State = "running"
	StateStopping State = "stopping"
	StateStopped  State = "stopped"
	StateStarting State = "starting"
	// StateCrashed: the process died without a controlled shutdown (see
	// faults.go); its ZooKeeper session expires after the session timeout.
	StateCrashed State = "crashed"
	// StateRecovering: started after an unclean stop, the process is up
	// and recovering its logs; it registers when recovery ends.
	StateRecovering State = "recovering"
	// StateFailed: the last start attempt failed; the broker stays down.
	StateFailed State = "failed"
)

// EventKind names an audited broker transition.
type EventKind string

// Audited transitions, in the order one restart produces them.
const (
	EventStop    EventKind = "stop"    // a stop was requested and began
	EventStopped EventKind = "stopped" // the broker left the cluster
	EventStart   EventKind = "start"   // a start was requested and began
	EventStarted EventKind = "started" // the broker registered again
	EventInSync  EventKind = "in-sync" // the broker is back in every ISR

	EventCrash       EventKind = "crash"        // the process died without a controlled shutdown
	EventStartFailed EventKind = "start-failed" // a start attempt failed; the broker is down
	EventRecovering  EventKind = "recovering"   // started after an unclean stop; log recovery began
	EventFault       EventKind = "fault"        // a fault was injected (Detail says which)
	EventLimit       EventKind = "limit"        // a host limit changed (Detail: name, old, new)
	// EventReregistered: ZooKeeper expired the running broker's session
	// and the broker registered again with a new one (Detail: the session).
	EventReregistered EventKind = "zk-reregistered"

	EventVolumeModified  EventKind = "volume-modified"  // ModifyVolume started (Detail: volume, old and new size)
	EventFilesystemGrown EventKind = "filesystem-grown" // kfleet-GrowFilesystem grew the data filesystem

	// Instance lifecycle (instances.go); Detail: instance, old and new state.
	EventInstanceStopped    EventKind = "instance-stopped"    // the broker's host stopped (its process died with it)
	EventInstanceTerminated EventKind = "instance-terminated" // the broker's host was terminated
	EventInstanceStarted    EventKind = "instance-started"    // the broker's host runs again (Kafka does not start by itself)

	// EventQuota: a client changed client quotas (AlterClientQuotas);
	// cluster-wide, so Broker is 0. Detail: the entity and the changes,
	// e.g. "user wabash-58799 producer_byte_rate=262144".
	EventQuota EventKind = "quota"
)

// Event is one audited broker transition.
type Event struct {
	Time    time.Time `json:"time"`
	Cluster string    `json:"cluster"`
	// Broker is the broker concerned; 0 for cluster-wide events (quota).
	Broker int32     `json:"broker"`
	Kind   EventKind `json:"kind"`
	// Who asked for it: the SSM command comment, the X-Kfleet-Who header,
	// the caller of the Go API, or for Kafka requests the client's SASL
	// user ("client" without SASL).
	Who string `json:"who"`
	// Version is the Kafka version the broker runs, on start events.
	Version string `json:"version,omitempty"`
	// Detail says more where the kind alone does not (faults, limits,
	// why a start failed).
	Detail string `json:"detail,omitempty"`
}

// ViolationKind names an unsafe moment.
type ViolationKind string

// Unsafe moments the fleet records.
const (
	// ViolationTwoBrokersDown: a broker went down while another broker
	// holding a replica of one of its partitions was not running (brokers
	// that share no partition may be down together: a batched roll).
	ViolationTwoBrokersDown ViolationKind = "two-brokers-down"
	// ViolationUnderMinISR: a partition's ISR dropped below
	// min.insync.replicas, so acks=all producers fail.
	ViolationUnderMinISR ViolationKind = "under-min-isr"
	// ViolationRecoveringRestarted: a broker was stopped or restarted
	// while it was recovering its logs, which throws the recovery away.
	ViolationRecoveringRestarted ViolationKind = "recovering-restarted"
)

// Violation is one unsafe moment in a cluster.
type Violation struct {
	Time    time.Time     `json:"time"`
	Cluster string        `json:"cluster"`
	Kind    ViolationKind `json:"kind"`
	Detail  string        `json:"detail"`
}

// recordLocked appends an audit event. c.mu must be held.
func (c *cluster) recordLocked(b *broker, kind EventKind, who string) {
	ev := Event{Time: time.Now(), Cluster: c.id, Broker: b.id, Kind: kind, Who: who}
	if kind == EventStart || kind == EventStarted {
		ev.Version = b.version
	}
	c.audit = append(c.audit, ev)
	c.log.Info().Int32("broker", b.id).Str("event", string(kind)).Str("who", who).Msg("broker " + string(kind))
}

// violateLocked appends a violation. c.mu must be held.
func (c *cluster) violateLocked(kind ViolationKind, detail string) {
	c.violations = append(c.violations, Violation{Time: time.Now(), Cluster: c.id, Kind: kind, Detail: detail})
	c.log.Warn().Str("violation", string(kind)).Msg(detail)
}

// Audit returns a copy of the cluster's audit, oldest first. It returns nil
// for an unknown cluster.
func (f *Fleet) Audit(cluster string) []Event {
	c, err := f.cluster(cluster)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.audit...)
}

// Violations returns a copy of the cluster's violations, oldest first. It
// returns nil for an unknown cluster.
func (f *Fleet) Violations(cluster string) []Violation {
	c, err := f.cluster(cluster)
	if err != nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Violation(nil), c.violations...)
}
