package localfleet

import (
	"fmt"
	"sync"
	"time"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/localfleet/kraft"
)

// KRaft mode (ClusterConfig.KRaft). The quorum model (package kraft) is
// the truth about controllers, voters, broker registrations, fencing and
// features; the cluster drives it with real time (a ticker advancing it)
// and with its brokers' and controllers' lifecycles, audits what it
// reports, and acts on it: a broker fenced without WantShutdown is an
// unclean loss, handled as a ZooKeeper session expiry is (it leaves every
// ISR, its partitions get new leaders). The Kafka protocol answers come
// from the model (kraft_api.go); controllers listen on their own ports
// (kraft_listener.go).

// Audited KRaft events: the model's kinds, and the controllers' own
// lifecycle (Event.Broker is then the controller's node id).
const (
	EventControllerStop    EventKind = "controller-stop"
	EventControllerStopped EventKind = "controller-stopped"
	EventControllerCrash   EventKind = "controller-crash"
	EventControllerStart   EventKind = "controller-start"
	EventControllerStarted EventKind = "controller-started"
	EventQuorumFault       EventKind = "quorum-fault" // lag-voter, partition-leader, heal (Detail says which)
)

// ViolationQuorumLost: a controller went down (a stop, a restart, a
// crash) leaving fewer than a majority of caught-up voters, so the
// metadata quorum could not commit (OPERATIONS.md: restart a controller
// only if, without it, the caught-up voters are still a majority).
const ViolationQuorumLost ViolationKind = "quorum-lost"

// controller is one KRaft controller node.
type controller struct {
	id int32

	// opMu serializes this controller's lifecycle transitions.
	opMu sync.Mutex
	// Guarded by cluster.mu.
	// instanceID is its host (kraft_hosts.go); a provisioned controller
	// has none until its first host starts it, and a replacement host
	// takes it over (controller_provision.go).
	instanceID string
	listener   *ctrlListener
	state      State
	version    string
	// migration: zookeeper.metadata.migration.enable is set (a KIP-866
	// migration controller, until its finalization restart).
	migration bool
	log       logRing // its server.log
}

// kraftState is a KRaft cluster's quorum: the model and the controllers.
// Guarded by cluster.mu.
type kraftState struct {
	cfg         KRaftConfig
	model       *kraft.Model
	controllers []*controller // by id
	// clusterID is the Kafka cluster id the metadata logs are formatted
	// with (DescribeCluster's ClusterId).
	clusterID string
	// ghosts are registered brokers that are no broker of the cluster
	// (kraft_ghost.go), with the dead port each registration keeps.
	ghosts map[int32]int
}

// quorum is the cluster's KRaft quorum, nil while it has none.
func (c *cluster) quorum() *kraftState { return c.kr.Load() }

// newKRaft builds the cluster's quorum: every controller up, the first
// one leading at epoch 1, metadata.version as configured.
func (c *cluster) newKRaft(now time.Time) error {
	k := *c.cfg.KRaft
	if k.prov != nil {
		// Formed by provisioned controllers (controller_provision.go).
		_, err := c.formQuorumLocked(k)
		return err
	}
	mv, _ := kraft.MetadataVersionLevel(k.MetadataVersion)
	support, _ := kraft.SupportedBy(k.Version)
	ks := &kraftState{cfg: k, clusterID: configuredClusterID(c.id)}
	var ids []int32
	for i := range k.Controllers {
		id := int32(kraftControllerBase + i)
		port := 0
		if len(k.ControllerPorts) > 0 {
			port = k.ControllerPorts[i]
		}
		ctl := &controller{id: id, instanceID: controllerInstanceID(c.id, id), state: StateStopped, version: k.Version}
		ctl.listener = newCtrlListener(c, id, port)
		ks.controllers = append(ks.controllers, ctl)
		ids = append(ids, id)
	}
	ks.model = kraft.New(k.Timing.modelTiming(), ids, mv, now)
	for _, id := range ids {
		if err := ks.model.SetVoterSupport(id, support); err != nil {
			return fmt.Errorf("localfleet: cluster %q: controller %d: %w", c.id, id, err)
		}
	}
	c.kr.Store(ks)
	for _, ctl := range ks.controllers {
		if err := ctl.listener.open(); err != nil {
			return err
		}
		ctl.state = StateRunning
	}
	leader, epoch := ks.model.Leader()
	c.appendEventLocked(Event{Time: now, Broker: leader, Kind: EventKind(kraft.EventElected), Who: "kraft",
		Detail: fmt.Sprintf("leader %d at epoch %d (cluster formatted, metadata.version %s)", leader, epoch, k.MetadataVersion)})
	c.wg.Add(1)
	go c.runQuorum(k.Timing.tick())
	return nil
}

// runQuorum advances the model with real time until the fleet closes.
func (c *cluster) runQuorum(tick time.Duration) {
	defer c.wg.Done()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-c.life.Done():
			return
		case now := <-t.C:
			c.advanceQuorum(now)
		}
	}
}

// advanceQuorum moves the model to now and acts on what it reports.
func (c *cluster) advanceQuorum(now time.Time) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	m := c.quorum().model
	// A running broker whose registration was removed (UnregisterBroker)
	// registers again at its next heartbeat, told its epoch is stale.
	if leader, _ := m.Leader(); leader != kraft.NoLeader {
		for _, b := range c.brokers {
			if _, ok := m.Broker(b.id); !ok && c.wantsKRaftRegistrationLocked(b) {
				_ = c.kraftRegisterLocked(b, now)
			}
		}
	}
	var lost []*broker
	evs := m.Advance(now)
	c.advanceMigrationLocked(now) // migration_takeover.go
	for _, ev := range evs {
		c.auditKRaftLocked(ev, "kraft")
		if ev.Kind == kraft.EventFenced && ev.Unclean {
			// A migrating ZooKeeper broker's loss is ZooKeeper's to
			// notice (its session expires); a KRaft broker's is this.
			if b := c.brokerByID(ev.Node); b != nil && b.state != StateRunning && c.brokerModeLocked(b) == cloud.MetadataModeKRaft {
				lost = append(lost, b)
			}
		}
	}
	c.mu.Unlock()
	for _, b := range lost {
		c.brokerFailed(b, "controller failover after fencing")
	}
}

// auditKRaftLocked records a model event. c.mu must be held.
func (c *cluster) auditKRaftLocked(ev kraft.Event, who string) {
	detail := ev.Detail
	if ev.Kind == kraft.EventFenced {
		if ev.Unclean {
			detail += "; unclean: no WantShutdown"
		} else {
			detail += "; clean: after WantShutdown"
		}
	}
	c.appendEventLocked(Event{Time: ev.Time, Broker: ev.Node, Kind: EventKind(ev.Kind), Who: who,
		Detail: fmt.Sprintf("%s (epoch %d)", detail, ev.Epoch)})
}

// kraftRegisterLocked registers broker b with the active controller. It
// stays fenced until its first heartbeat after catching up. c.mu must be
// held.
func (c *cluster) kraftRegisterLocked(b *broker, now time.Time) error {
	ks := c.quorum()
	version := b.version
	if version == "" {
		version = ks.cfg.Version
	}
	support, ok := kraft.SupportedBy(version)
	if !ok {
		// An older release cannot run in KRaft mode as modelled; it
		// registers supporting nothing newer than the cluster's level.
		lvl := c.quorum().model.Features().MetadataVersion
		support = kraft.Range{Min: kraft.MinMetadataVersion, Max: lvl}
	}
	register := ks.model.Register
	if c.brokerModeLocked(b) == cloud.MetadataModeMigration {
		register = ks.model.RegisterMigrating
	}
	ev, err := register(b.id, version, support, now)
	if err != nil {
		return fmt.Errorf("localfleet: cluster %q: broker %d: %w", c.id, b.id, err)
	}
	c.auditKRaftLocked(ev, "broker")
	return nil
}

// kraftRegister is a starting broker's registration: it waits for an
// active controller as a Kafka broker does at startup, and fails the
// start without one. Kafka waits initial.broker.registration.timeout.ms
// (60 s); the fleet waits the session timeout, so a test sees the failure
// within its fast timing.
func (c *cluster) kraftRegister(b *broker) error {
	timing := c.quorum().cfg.Timing
	deadline := time.Now().Add(timing.Session)
	for {
		c.mu.Lock()
		err := c.kraftRegisterLocked(b, time.Now())
		c.mu.Unlock()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		if sleep(c.life, timing.tick()) != nil {
			return err
		}
	}
}

// kraftWantShutdownLocked is a stopping broker's heartbeat asking for a
// controlled shutdown. c.mu must be held.
func (c *cluster) kraftWantShutdownLocked(b *broker, who string) {
	ev, err := c.quorum().model.WantShutdown(b.id, time.Now())
	if err != nil {
		c.log.Warn().Err(err).Int32("broker", b.id).Msg("want shutdown")
		return
	}
	c.auditKRaftLocked(ev, who)
}

// kraftStoppedLocked fences broker b at the end of its controlled
// shutdown. c.mu must be held.
func (c *cluster) kraftStoppedLocked(b *broker, who string) {
	if ev, ok := c.quorum().model.Fence(b.id, time.Now()); ok {
		c.auditKRaftLocked(ev, who)
	}
}

// kraftCrashedLocked is broker b's process dying: its heartbeats stop,
// and the controller fences it after the session timeout. c.mu must be
// held.
func (c *cluster) kraftCrashedLocked(b *broker) {
	c.quorum().model.StopHeartbeats(b.id)
}

// fencedLocked is whether broker b is fenced (or not registered) in a
// KRaft cluster; false in ZooKeeper mode. c.mu must be held.
func (c *cluster) fencedLocked(b *broker) bool {
	if c.quorum() == nil {
		return false
	}
	r, ok := c.quorum().model.Broker(b.id)
	return !ok || r.Fenced
}

// controllerByID is controller id, nil when there is none. c.mu need not
// be held: the controllers are fixed at start.
func (c *cluster) controllerByID(id int32) *controller {
	if c.quorum() == nil {
		return nil
	}
	for _, ctl := range c.quorum().controllers {
		if ctl.id == id {
			return ctl
		}
	}
	return nil
}

// closeKRaft closes the controllers' listeners.
func (c *cluster) closeKRaft() {
	if c.quorum() == nil {
		return
	}
	for _, ctl := range c.quorum().controllers {
		ctl.opMu.Lock()
		ctl.listener.close()
		c.mu.Lock()
		ctl.state = StateStopped
		c.mu.Unlock()
		ctl.opMu.Unlock()
	}
}
