package localfleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/kfleet/kfleet/internal/localfleet/kraft"
)

// Controller lifecycle and quorum faults of KRaft clusters: Go API here,
// HTTP in kraft_http.go.

// ErrNotKRaft: a KRaft operation on a ZooKeeper-mode cluster.
var ErrNotKRaft = errors.New("not a KRaft cluster")

// ErrUnknownController: no controller with that node id.
var ErrUnknownController = errors.New("unknown controller")

// Quorum faults (InjectQuorumFault).
const (
	// QuorumFaultLagVoter: the voter falls behind the leader (a slow
	// disk, a GC storm): it still fetches, but its log end offset and last
	// caught-up time stop moving, as DescribeQuorum shows, until heal.
	QuorumFaultLagVoter FaultKind = "lag-voter"
	// QuorumFaultPartitionLeader: the leader loses every follower; after
	// the fetch timeout it resigns, as it hears from no majority
	// (check-quorum), and after the election timeout the rest elect a new
	// leader at a new epoch. Heal lets it rejoin as a follower.
	QuorumFaultPartitionLeader FaultKind = "partition-leader"
	// QuorumFaultHeal ends every lag and partition.
	QuorumFaultHeal FaultKind = "heal"
)

func (f *Fleet) kraftCluster(cluster string) (*cluster, error) {
	c, err := f.cluster(cluster)
	if err != nil {
		return nil, err
	}
	if c.quorum() == nil {
		return nil, fmt.Errorf("localfleet: cluster %q: %w", cluster, ErrNotKRaft)
	}
	return c, nil
}

func (f *Fleet) controller(cluster string, id int32) (*cluster, *controller, error) {
	c, err := f.kraftCluster(cluster)
	if err != nil {
		return nil, nil, err
	}
	ctl := c.controllerByID(id)
	if ctl == nil {
		return nil, nil, fmt.Errorf("localfleet: cluster %q: controller %d: %w", cluster, id, ErrUnknownController)
	}
	return c, ctl, nil
}

// StopController stops a controller cleanly (a leader resigns at once).
// Stopping one whose absence leaves fewer than a majority of caught-up
// voters is recorded as a quorum-lost violation.
func (f *Fleet) StopController(ctx context.Context, cluster string, id int32, who string) error {
	c, ctl, err := f.controller(cluster, id)
	if err != nil {
		return err
	}
	return c.stopController(ctl, who, true)
}

// CrashController kills a controller's process: a leader's followers
// notice after the fetch timeout.
func (f *Fleet) CrashController(ctx context.Context, cluster string, id int32, who string) error {
	c, ctl, err := f.controller(cluster, id)
	if err != nil {
		return err
	}
	return c.stopController(ctl, who, false)
}

// StartController starts a stopped or crashed controller: after the
// startup time it listens again and fetches from the leader (or takes
// part in the next election).
func (f *Fleet) StartController(ctx context.Context, cluster string, id int32, who string) error {
	c, ctl, err := f.controller(cluster, id)
	if err != nil {
		return err
	}
	return c.startController(ctx, ctl, who, "")
}

// InjectQuorumFault injects lag-voter (on voter), partition-leader or
// heal (voter ignored) into a KRaft cluster's quorum.
func (f *Fleet) InjectQuorumFault(cluster string, kind FaultKind, voter int32, who string) error {
	c, err := f.kraftCluster(cluster)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.quorum().model
	now := time.Now()
	detail := string(kind)
	switch kind {
	case QuorumFaultLagVoter:
		if err := m.LagVoter(voter); err != nil {
			return fmt.Errorf("localfleet: cluster %q: %w: %w", cluster, ErrBadFault, err)
		}
		detail = fmt.Sprintf("lag-voter %d", voter)
	case QuorumFaultPartitionLeader:
		leader, err := m.PartitionLeader()
		if err != nil {
			return fmt.Errorf("localfleet: cluster %q: %w: partition-leader: %w", cluster, ErrBadFault, err)
		}
		voter = leader
		detail = fmt.Sprintf("partition-leader %d", leader)
	case QuorumFaultHeal:
		m.Heal()
	default:
		return fmt.Errorf("localfleet: cluster %q: %w: unknown quorum fault %q", cluster, ErrBadFault, kind)
	}
	c.appendEventLocked(Event{Time: now, Broker: voter, Kind: EventQuorumFault, Who: who, Detail: detail})
	return nil
}

func (c *cluster) stopController(ctl *controller, who string, clean bool) error {
	ctl.opMu.Lock()
	defer ctl.opMu.Unlock()
	if err := c.checkOpen(); err != nil {
		return err
	}
	c.mu.Lock()
	if ctl.state != StateRunning && ctl.state != StateStarting {
		c.mu.Unlock()
		return nil
	}
	m := c.quorum().model
	if caught, majority := m.CaughtUpWithout(ctl.id); caught < majority && !c.quorumDispensableLocked() {
		c.violateLocked(ViolationQuorumLost, fmt.Sprintf(
			"controller %d going down leaves %d caught-up voters of %d, a majority is %d", ctl.id, caught, len(c.quorum().controllers), majority))
	}
	kind := EventControllerStop
	if !clean {
		kind = EventControllerCrash
	}
	now := time.Now()
	c.appendEventLocked(Event{Time: now, Broker: ctl.id, Kind: kind, Who: who})
	evs, err := m.StopVoter(ctl.id, clean, now)
	if err != nil {
		c.mu.Unlock()
		return fmt.Errorf("localfleet: cluster %q: controller %d: %w", c.id, ctl.id, err)
	}
	for _, ev := range evs {
		c.auditKRaftLocked(ev, who)
	}
	if clean {
		ctl.state = StateStopping
	} else {
		ctl.state = StateCrashed
	}
	c.mu.Unlock()

	ctl.listener.close()
	if clean {
		c.mu.Lock()
		ctl.state = StateStopped
		c.appendEventLocked(Event{Broker: ctl.id, Kind: EventControllerStopped, Who: who})
		c.mu.Unlock()
	}
	return nil
}

// startController starts controller ctl on its host; version, when not
// empty, is the Kafka version it starts with (kfleet-StartBroker's), which
// a running controller refuses (ErrRunningMismatch).
func (c *cluster) startController(ctx context.Context, ctl *controller, who, version string) error {
	ctl.opMu.Lock()
	defer ctl.opMu.Unlock()
	if err := c.checkOpen(); err != nil {
		return err
	}
	c.mu.Lock()
	if ctl.state == StateRunning {
		running := ctl.version
		c.mu.Unlock()
		if version != "" && version != running {
			return fmt.Errorf("localfleet: cluster %q: controller %d: %w: version %s requested, it runs %s",
				c.id, ctl.id, ErrRunningMismatch, version, running)
		}
		return nil
	}
	if st := c.hosts.instanceState(ctl.instanceID); st != InstanceRunning {
		c.mu.Unlock()
		return fmt.Errorf("localfleet: cluster %q: controller %d: start: %w: instance %s is %s",
			c.id, ctl.id, ErrInstanceNotRunning, ctl.instanceID, st)
	}
	if version != "" {
		if err := c.setControllerVersionLocked(ctl, version); err != nil {
			c.mu.Unlock()
			return err
		}
	}
	prev := ctl.state
	ctl.state = StateStarting
	c.appendEventLocked(Event{Broker: ctl.id, Kind: EventControllerStart, Who: who, Version: ctl.version})
	c.mu.Unlock()

	if err := sleepCtx(ctx, c.life, c.cfg.Timing.Startup); err != nil {
		c.mu.Lock()
		ctl.state = prev
		c.mu.Unlock()
		return fmt.Errorf("localfleet: cluster %q: controller %d: start: %w", c.id, ctl.id, err)
	}
	if err := ctl.listener.open(); err != nil {
		c.mu.Lock()
		ctl.state = StateFailed
		c.mu.Unlock()
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.quorum().model.StartVoter(ctl.id, time.Now()); err != nil {
		return fmt.Errorf("localfleet: cluster %q: controller %d: %w", c.id, ctl.id, err)
	}
	ctl.state = StateRunning
	c.appendEventLocked(Event{Broker: ctl.id, Kind: EventControllerStarted, Who: who, Version: ctl.version})
	return nil
}

// QuorumStatus is a KRaft cluster's quorum (Fleet.Quorum, GET
// /v1/clusters/{id}/quorum).
type QuorumStatus struct {
	Cluster         string `json:"cluster"`
	Leader          int32  `json:"leader"` // -1 without one
	Epoch           int32  `json:"epoch"`
	HighWatermark   int64  `json:"highWatermark"`
	MetadataVersion string `json:"metadataVersion"`
	// MetadataVersionLevel is metadata.version's feature level.
	MetadataVersionLevel int16         `json:"metadataVersionLevel"`
	Voters               []VoterStatus `json:"voters"`
	// CaughtUp counts the caught-up voters (leader, or within the fetch
	// timeout of the leader's last caught-up time) against Majority.
	CaughtUp int `json:"caughtUp"`
	Majority int `json:"majority"`
}

// VoterStatus is one controller in a QuorumStatus.
type VoterStatus struct {
	ID           int32     `json:"id"`
	InstanceID   string    `json:"instanceId"`
	Address      string    `json:"address"`
	State        State     `json:"state"`
	Version      string    `json:"version"`
	LogEndOffset int64     `json:"logEndOffset"`
	LastFetch    time.Time `json:"lastFetch"`
	LastCaughtUp time.Time `json:"lastCaughtUp"`
	Lagged       bool      `json:"lagged,omitempty"`
	Partitioned  bool      `json:"partitioned,omitempty"`
}

// Quorum returns a KRaft cluster's quorum.
func (f *Fleet) Quorum(cluster string) (QuorumStatus, error) {
	c, err := f.kraftCluster(cluster)
	if err != nil {
		return QuorumStatus{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.quorum().model
	leader, epoch := m.Leader()
	mv := m.Features().MetadataVersion
	caught, majority := m.CaughtUpWithout(-1)
	st := QuorumStatus{Cluster: cluster, Leader: leader, Epoch: epoch, HighWatermark: m.HighWatermark(),
		MetadataVersion: kraft.MetadataVersionName(mv), MetadataVersionLevel: mv, CaughtUp: caught, Majority: majority}
	for _, v := range m.Voters() {
		ctl := c.controllerByID(v.ID)
		st.Voters = append(st.Voters, VoterStatus{ID: v.ID, InstanceID: ctl.instanceID, Address: ctl.listener.addr(), State: ctl.state, Version: ctl.version,
			LogEndOffset: v.LogEndOffset, LastFetch: v.LastFetch, LastCaughtUp: v.LastCaughtUp, Lagged: v.Lagged, Partitioned: v.Partitioned})
	}
	return st, nil
}
