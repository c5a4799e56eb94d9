package localfleet

import (
	"slices"
	"time"
)

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

	// EventCrash: the process died without a controlled shutdown; Detail
	// "crash" for FaultCrash, "admin storm: N concurrent admin requests"
	// when admin load toppled the controller (storm.go).
	EventCrash       EventKind = "crash"
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

	// Provisioning (ec2_lifecycle.go, ec2_volumes.go, provision.go). Who
	// is the X-Kfleet-Who header, else the kfleet:requested-by tag, else
	// "client-token:<ClientToken>". Broker is the kfleet:broker-id tag
	// (0 without one).
	EventInstanceLaunched EventKind = "instance-launched" // RunInstances launched it (Detail: type, zone, tags)
	EventTagged           EventKind = "tagged"            // CreateTags changed an instance's or a volume's tags
	EventVolumeCreated    EventKind = "volume-created"    // CreateVolume created it (Detail: zone, size, type)
	EventVolumeAttached   EventKind = "volume-attached"   // AttachVolume (Detail: instance and device)
	EventVolumeDetached   EventKind = "volume-detached"   // DetachVolume, or its instance was terminated
	EventVolumeDeleted    EventKind = "volume-deleted"    // DeleteVolume, or DeleteOnTermination
	// EventBrokerConfigured: kfleet-ConfigureBroker wrote the host's
	// server.properties.
	EventBrokerConfigured EventKind = "broker-configured"
	// EventClusterCreated: the first broker of a cluster the fleet did not
	// run started, so the fleet now runs it (Broker 0).
	EventClusterCreated EventKind = "cluster-created"
	// EventBrokerAdded: a broker id new to its cluster started on a
	// provisioned host.
	EventBrokerAdded EventKind = "broker-added"
	// EventHostReplaced: a broker started on another host than its last
	// one (Detail: both instances, and whether its data volume came with
	// it or a blank one means a full catch-up, in bytes).
	EventHostReplaced EventKind = "host-replaced"

	// EventQuota: a client changed client quotas (AlterClientQuotas);
	// cluster-wide, so Broker is 0. Detail: the entity and the changes,
	// e.g. "user wabash-58799 producer_byte_rate=262144".
	EventQuota EventKind = "quota"

	// Partition reassignments (reassign.go); Broker 0, Who the client's
	// SASL user ("client" without SASL), Reassignment says which
	// partition moved where and what it cost.
	EventReassignmentStarted   EventKind = "reassignment-started"
	EventReassignmentCompleted EventKind = "reassignment-completed"
	// EventReassignmentCancelled: a client cancelled it (null replicas);
	// the partition keeps its original replicas.
	EventReassignmentCancelled EventKind = "reassignment-cancelled"
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
	// Instance and Volume name the EC2 resources of host events.
	Instance string `json:"instance,omitempty"`
	Volume   string `json:"volume,omitempty"`
	// Reassignment describes reassignment events.
	Reassignment *ReassignmentRecord `json:"reassignment,omitempty"`
}

// ReassignmentRecord is one partition's reassignment, as its events
// record it.
type ReassignmentRecord struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	From      []int32 `json:"from"` // the replicas before
	To        []int32 `json:"to"`   // the target replicas
	// Bytes is what the adding replicas copied (on completion and
	// cancellation; what they must copy at the start).
	Bytes int64 `json:"bytes"`
	// Duration is from the start to this event (0 at the start).
	Duration time.Duration `json:"duration,omitempty"`
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
	// ViolationDuplicateInstance: one broker (the tags kfleet:cluster and
	// kfleet:broker-id, kfleet:role=broker) had two instances pending or
	// running at once; a crash mid-provisioning must never leave that.
	ViolationDuplicateInstance ViolationKind = "duplicate-instance"
	// ViolationThrottleExceeded: throttled reassignment copies moved more
	// than 10% over a broker's leader or follower
	// replication.throttled.rate in a 1-second window. The copy model
	// never lets them (reassign_copy.go): this guards its regressions.
	ViolationThrottleExceeded ViolationKind = "throttle-exceeded"
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

// appendEventLocked appends an event built by the caller (its Time set
// when zero). c.mu must be held.
func (c *cluster) appendEventLocked(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Cluster = c.id
	c.audit = append(c.audit, ev)
	c.log.Info().Int32("broker", ev.Broker).Str("event", string(ev.Kind)).Str("who", ev.Who).Msg(ev.Detail)
}

// violateLocked appends a violation. c.mu must be held.
func (c *cluster) violateLocked(kind ViolationKind, detail string) {
	c.violations = append(c.violations, Violation{Time: time.Now(), Cluster: c.id, Kind: kind, Detail: detail})
	c.log.Warn().Str("violation", string(kind)).Msg(detail)
}

// Audit returns a copy of the cluster's audit, oldest first. For a
// cluster the fleet does not run (yet) it is what was done to resources
// tagged with its id; nil when nothing was.
func (f *Fleet) Audit(cluster string) []Event {
	c, pending := f.clusterOrPending(cluster)
	if c == nil {
		return pending.audit
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Event(nil), c.audit...)
}

// Violations returns a copy of the cluster's violations, oldest first. For
// a cluster the fleet does not run (yet) they are its resources'
// (duplicate-instance); nil when there are none.
func (f *Fleet) Violations(cluster string) []Violation {
	c, pending := f.clusterOrPending(cluster)
	if c == nil {
		return pending.violations
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Violation(nil), c.violations...)
}

// EC2Audit returns every host event of the fleet (launches, terminations,
// volumes, instance states, configurations), oldest first, whatever their
// cluster; Cluster is "" for resources tagged with none.
func (f *Fleet) EC2Audit() []Event {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Clone(f.ec2Audit)
}

// records are what the fleet keeps for a cluster it does not run yet:
// provisioning happens before a cluster's first broker starts.
type records struct {
	audit      []Event
	violations []Violation
}

// clusterOrPending returns the cluster, or, when the fleet does not run
// it, a copy of what is recorded for it meanwhile.
func (f *Fleet) clusterOrPending(id string) (*cluster, records) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if c, ok := f.clusters[id]; ok {
		return c, records{}
	}
	p := f.pending[id]
	return nil, records{audit: slices.Clone(p.audit), violations: slices.Clone(p.violations)}
}

// record appends a host event to the fleet's EC2 audit and to its
// cluster's audit, or keeps it for the cluster until the fleet runs it.
// Never called under hosts.mu or a cluster's mu (it takes f.mu, then the
// cluster's).
func (f *Fleet) record(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	f.log.Info().Str("cluster", ev.Cluster).Int32("broker", ev.Broker).Str("event", string(ev.Kind)).
		Str("who", ev.Who).Str("instance", ev.Instance).Str("volume", ev.Volume).Msg(ev.Detail)
	f.mu.Lock()
	f.ec2Audit = append(f.ec2Audit, ev)
	f.mu.Unlock()
	f.keep(ev.Cluster, func(r *records) { r.audit = append(r.audit, ev) })
}

// violate records a violation of a cluster, or keeps it for the cluster
// until the fleet runs it. Same locking as record.
func (f *Fleet) violate(cluster string, kind ViolationKind, detail string) {
	v := Violation{Time: time.Now(), Cluster: cluster, Kind: kind, Detail: detail}
	f.log.Warn().Str("cluster", cluster).Str("violation", string(kind)).Msg(detail)
	f.keep(cluster, func(r *records) { r.violations = append(r.violations, v) })
}

// keep applies add to the records of the cluster the fleet runs, or to
// those it keeps for a cluster it does not run yet (clusterFor hands them
// over under f.mu, so nothing is lost between the two).
func (f *Fleet) keep(cluster string, add func(*records)) {
	f.mu.Lock()
	c, ok := f.clusters[cluster]
	if !ok {
		p := f.pending[cluster]
		add(&p)
		f.pending[cluster] = p
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	r := records{audit: c.audit, violations: c.violations}
	add(&r)
	c.audit, c.violations = r.audit, r.violations
}
