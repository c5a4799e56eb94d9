package localfleet

import (
	"fmt"
	"slices"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/localfleet/kraft"
)

// The brokers' metadata modes and the ZooKeeper-to-KRaft migration
// (KIP-866) of a ZooKeeper cluster, as Kafka 3.9 runs it:
//
//   - phase 1: migration controllers (controller_provision.go) form a
//     quorum; its leader waits for the brokers ("No brokers are known to
//     KRaft, waiting for brokers to register");
//   - phase 2: brokers restarted with MetadataMode=migration stay in
//     ZooKeeper and register with the quorum too; once every broker
//     registered in ZooKeeper has, the leader takes over
//     (migration_takeover.go): it copies the metadata into its log,
//     writes /migration, claims /controller and bumps /controller_epoch,
//     and from then on writes every metadata change to ZooKeeper too
//     (dual-write);
//   - phase 3: brokers restarted with MetadataMode=kraft leave ZooKeeper
//     and are KRaft brokers;
//   - phase 4: controllers restarted with MetadataMode=kraft drop the
//     migration; once all have, ZooKeeper is no longer used.
//
// The known failures from the field are modelled and audited as
// violations (migration_failures.go).

// Migration states (MigrationStatus.State).
const (
	MigrationNone      = "none"
	MigrationWaiting   = "waiting-for-brokers"
	MigrationDualWrite = "dual-write"
	// MigrationKRaft: every broker is a KRaft broker; the controllers
	// still write to ZooKeeper until they are finalized.
	MigrationKRaft = "kraft"
	// MigrationReleased: every controller is finalized; ZooKeeper is no
	// longer used by the cluster.
	MigrationReleased = "released"
)

// zkMigration is a cluster's brokers' metadata modes and its migration.
// Guarded by cluster.mu.
type zkMigration struct {
	// configured is each broker's metadata mode as server.properties
	// gives it (kfleet-StartBroker's MetadataMode), by broker id; absent
	// is zookeeper in a ZooKeeper cluster.
	configured map[int32]string
	// running is the mode each broker's process started in.
	running map[int32]string
	// clusterID is /cluster/id's id (zookeeper.go writes it at creation).
	clusterID string
	// state is the migration's (Migration*); "" is none.
	state string
	// recordsCopied counts the metadata records the takeover copied.
	recordsCopied int
	// lastZKWrite is when the cluster's nodes last wrote to ZooKeeper.
	lastZKWrite time.Time
	// session is the migration leader's ZooKeeper session (dual-write);
	// nil when no controller holds one.
	session *zk.Conn
	// waitingLogged is whether the leader logged that it waits.
	waitingLogged bool
	// hasVoters: the broker's server.properties has
	// controller.quorum.voters.
	hasVoters map[int32]bool
	// zkLeader and zkLeaderEpoch are the KRaft controller /controller
	// names (claimed at the takeover, then by each new leader).
	zkLeader, zkLeaderEpoch int32
	// dirty signals the dual-writer (nil until the takeover).
	dirty chan struct{}
	// dualWrites counts the metadata changes written to ZooKeeper.
	dualWrites int
	// finalizedEarly, stuck: the violations were recorded.
	finalizedEarly, stuck bool
}

// brokerModeLocked is broker b's metadata mode: the one its process runs
// in, else the configured one. c.mu must be held.
func (c *cluster) brokerModeLocked(b *broker) string {
	if c.cfg.KRaft != nil {
		return cloud.MetadataModeKRaft
	}
	if m, ok := c.zkm.running[b.id]; ok && processUp(b.state) {
		return m
	}
	return c.configuredModeLocked(b.id)
}

// configuredModeLocked is broker id's mode as server.properties gives
// it. c.mu must be held.
func (c *cluster) configuredModeLocked(id int32) string {
	if c.cfg.KRaft != nil {
		return cloud.MetadataModeKRaft
	}
	if m, ok := c.zkm.configured[id]; ok {
		return m
	}
	return cloud.MetadataModeZooKeeper
}

// kraftRegisteredLocked is whether broker b is registered with the KRaft
// quorum (a KRaft broker, or a ZooKeeper broker in migration mode).
// c.mu must be held.
func (c *cluster) kraftRegisteredLocked(b *broker) bool {
	ks := c.quorum()
	if ks == nil {
		return false
	}
	_, ok := ks.model.Broker(b.id)
	return ok
}

// kraftAnswers is whether the brokers answer as KRaft brokers do
// (DescribeQuorum, DescribeCluster from the quorum's registrations,
// features in ApiVersions): in a KRaft cluster, and in a migrating one
// once the KRaft controller is the cluster's controller.
func (c *cluster) kraftAnswers() bool {
	if c.quorum() == nil {
		return false
	}
	if c.cfg.KRaft != nil {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.zkm.state {
	case MigrationDualWrite, MigrationKRaft, MigrationReleased:
		return true
	}
	return false
}

// zooKeeperReleasedLocked is whether the cluster no longer uses
// ZooKeeper: a KRaft cluster, or a finalized migration. c.mu must be
// held.
func (c *cluster) zooKeeperReleasedLocked() bool {
	return c.cfg.KRaft != nil || c.zkm.state == MigrationReleased
}

// quorumDispensableLocked is whether losing the quorum costs the cluster
// no metadata: a migrating ZooKeeper cluster none of whose brokers is a
// KRaft broker yet (phases 1 and 2), where ZooKeeper still holds the
// metadata and stopping every controller is the rollback's first step.
// c.mu must be held.
func (c *cluster) quorumDispensableLocked() bool {
	if c.cfg.KRaft != nil {
		return false
	}
	for _, b := range c.brokers {
		if b.state != StateDecommissioned && c.brokerModeLocked(b) == cloud.MetadataModeKRaft {
			return false
		}
	}
	return true
}

// registerBroker registers a starting broker in its configured mode: in
// ZooKeeper (its session is returned), with the KRaft quorum (no
// session), or, in migration mode, both.
func (c *cluster) registerBroker(b *broker) (*zk.Conn, error) {
	c.mu.Lock()
	mode := c.configuredModeLocked(b.id)
	c.mu.Unlock()
	var conn *zk.Conn
	switch mode {
	case cloud.MetadataModeKRaft:
		if c.quorum() == nil {
			return nil, fmt.Errorf("localfleet: cluster %q: broker %d: process.roles=broker but no KRaft controller runs: %w", c.id, b.id, kraft.ErrNoLeader)
		}
		if err := c.kraftRegister(b); err != nil {
			return nil, err
		}
	default:
		var err error
		if conn, err = c.register(b); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.zkm.running == nil {
		c.zkm.running = map[int32]string{}
	}
	c.zkm.running[b.id] = mode
	if mode != cloud.MetadataModeKRaft {
		c.zkm.lastZKWrite = time.Now()
	}
	if mode == cloud.MetadataModeMigration {
		// A migrating ZooKeeper broker also registers with the quorum;
		// without an active controller it keeps trying in the
		// background (advanceQuorum registers it once there is one).
		if ks := c.quorum(); ks != nil {
			if leader, _ := ks.model.Leader(); leader != kraft.NoLeader {
				_ = c.kraftRegisterLocked(b, time.Now())
			}
		}
	}
	return conn, nil
}

// wantsKRaftRegistrationLocked is whether running broker b registers
// with the quorum: a KRaft broker, or a migrating ZooKeeper broker.
// c.mu must be held.
func (c *cluster) wantsKRaftRegistrationLocked(b *broker) bool {
	return b.state == StateRunning && c.brokerModeLocked(b) != cloud.MetadataModeZooKeeper
}

// setBrokerMode is kfleet-StartBroker's MetadataMode on broker b's host:
// server.properties is edited for the next start; a running broker in
// another mode is refused (ErrRunningMismatch), as the document refuses
// it.
func (c *cluster) setBrokerMode(b *broker, mode, voters string) error {
	if mode == cloud.MetadataModeKeep {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if voters != "" {
		ids, err := voterIDs(voters)
		if err != nil {
			return fmt.Errorf("localfleet: cluster %q: broker %d: %w", c.id, b.id, err)
		}
		if ks := c.quorum(); ks != nil && !slices.Equal(ks.voterIDs(), ids) {
			return fmt.Errorf("localfleet: cluster %q: broker %d: controller.quorum.voters %s names nodes %v, the cluster's quorum is %v",
				c.id, b.id, voters, ids, ks.voterIDs())
		}
	}
	if c.cfg.KRaft != nil {
		if mode != cloud.MetadataModeKRaft {
			return fmt.Errorf("localfleet: cluster %q: broker %d: metadata mode %s: a KRaft cluster's brokers are KRaft brokers", c.id, b.id, mode)
		}
		return nil
	}
	if processUp(b.state) {
		if cur := c.brokerModeLocked(b); cur != mode {
			return fmt.Errorf("localfleet: cluster %q: broker %d: %w: metadata mode %s requested, it runs in %s mode",
				c.id, b.id, ErrRunningMismatch, mode, cur)
		}
		return nil
	}
	if mode != cloud.MetadataModeZooKeeper && voters == "" && !c.zkm.hasVoters[b.id] {
		return fmt.Errorf("localfleet: cluster %q: broker %d: metadata mode %s needs %s (controller.quorum.voters is not set)",
			c.id, b.id, mode, cloud.ParamQuorumVoters)
	}
	if c.zkm.configured == nil {
		c.zkm.configured, c.zkm.hasVoters = map[int32]string{}, map[int32]bool{}
	}
	c.zkm.configured[b.id] = mode
	c.zkm.hasVoters[b.id] = mode != cloud.MetadataModeZooKeeper
	return nil
}

// brokerModeLine is kfleet-BrokerStatus's metadata.mode line for broker
// b.
func (c *cluster) brokerModeLine(b *broker) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return "metadata.mode=" + c.brokerModeLocked(b) + "\n"
}

// brokerStartedOutput is what kfleet-StartBroker prints on broker b's
// host.
func (c *cluster) brokerStartedOutput(b *broker) string {
	c.mu.Lock()
	mode := c.brokerModeLocked(b)
	c.mu.Unlock()
	where := fmt.Sprintf("advertised in /brokers/ids/%d under %s", b.id, c.zkRoot)
	switch mode {
	case cloud.MetadataModeKRaft:
		where = "registered with the KRaft controllers"
	case cloud.MetadataModeMigration:
		where += "; registered with the KRaft controllers as a migrating ZooKeeper broker"
	}
	return fmt.Sprintf("broker %d started\nlistening on %s (%s)\nmetadata.mode=%s\n", b.id, b.proxy.addr(), where, mode)
}

// setControllerMode is kfleet-StartBroker's MetadataMode on controller
// ctl's host: kraft finalizes a migration controller (from its next
// start); a controller cannot go back to migration nor be a ZooKeeper
// node.
func (c *cluster) setControllerMode(ctl *controller, mode, who string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch mode {
	case cloud.MetadataModeKeep:
		return nil
	case cloud.MetadataModeKRaft:
		if !ctl.migration {
			return nil
		}
		if processUp(ctl.state) {
			return fmt.Errorf("localfleet: cluster %q: controller %d: %w: metadata mode kraft requested, it runs as a migration controller",
				c.id, ctl.id, ErrRunningMismatch)
		}
		ctl.migration = false
		c.finalizeControllerLocked(ctl, who) // migration_failures.go
		return nil
	case cloud.MetadataModeMigration:
		if ctl.migration {
			return nil
		}
		return fmt.Errorf("localfleet: cluster %q: controller %d: a finalized controller cannot go back to migration mode", c.id, ctl.id)
	}
	return fmt.Errorf("localfleet: cluster %q: controller %d: metadata mode %s: a controller runs in migration or kraft mode", c.id, ctl.id, mode)
}

// controllerLogLocked is controller ctl's server.log. c.mu must be held.
func (c *cluster) controllerLogLocked(ctl *controller) string {
	out := ""
	for _, ln := range ctl.log.tail(50) {
		out += ln + "\n"
	}
	return out
}

// controllerEndpoints lists the cluster's controllers in its endpoints;
// the ZooKeeper address goes once ZooKeeper is no longer used.
func (c *cluster) controllerEndpoints(ce *ClusterEndpoints) {
	ks := c.quorum()
	if ks == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.zooKeeperReleasedLocked() {
		ce.ZooKeeper = ""
	}
	for _, ctl := range ks.controllers {
		ce.Controllers = append(ce.Controllers, ControllerEndpoint{ID: ctl.id, InstanceID: ctl.instanceID, Address: ctl.listener.addr()})
	}
}
