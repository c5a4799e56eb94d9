package localfleet

import (
	"fmt"
	"slices"
	"time"

	"github.com/kfleet/kfleet/internal/localfleet/kraft"
)

// Audited events of the migration (Broker is the controller or broker
// concerned, 0 for the cluster).
const (
	// EventMigrationQuorum: a ZooKeeper cluster's first migration
	// controller formed the migration quorum (phase 1).
	EventMigrationQuorum EventKind = "migration-quorum"
	// EventMigrationWaiting: the migration leader waits for the brokers
	// to register ("No brokers are known to KRaft").
	EventMigrationWaiting EventKind = "migration-waiting"
	// EventMigrationStarted: every ZooKeeper broker registered with the
	// quorum; the leader takes over.
	EventMigrationStarted EventKind = "migration-started"
	// EventMetadataCopied: the leader copied ZooKeeper's metadata into
	// its log (Detail: the counts).
	EventMetadataCopied EventKind = "metadata-copied"
	// EventDualWrite: the leader claimed /controller; metadata changes are
	// written to ZooKeeper too from now on.
	EventDualWrite EventKind = "dual-write"
	// EventZooKeeperReleased: every controller is finalized; the cluster
	// no longer uses ZooKeeper.
	EventZooKeeperReleased EventKind = "zookeeper-released"
)

// startMigrationQuorum forms a ZooKeeper cluster's quorum of migration
// controllers (phase 1) for its first migration controller, conf.
func (c *cluster) startMigrationQuorum(conf controllerConf, ids []int32, timing KRaftTiming, who string) (*kraftState, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("localfleet: cluster %q: %w", c.id, ErrClosed)
	}
	if ks := c.quorum(); ks != nil {
		return ks, nil
	}
	if c.zkm.clusterID != conf.kafkaClusterID {
		return nil, fmt.Errorf("%s is formatted for Kafka cluster id %s, the cluster's (/cluster/id) is %s: %w",
			controllerLogDir, conf.kafkaClusterID, c.zkm.clusterID, ErrInconsistentClusterID)
	}
	k := KRaftConfig{Controllers: len(ids), MetadataVersion: conf.metadataVersion, Timing: timing}.withDefaults()
	k.prov = &provisionedQuorum{ids: ids, clusterID: conf.kafkaClusterID}
	ks, err := c.formQuorumLocked(k)
	if err != nil {
		return nil, err
	}
	c.zkm.state = MigrationWaiting
	c.appendEventLocked(Event{Broker: conf.node, Kind: EventMigrationQuorum, Who: who,
		Detail: fmt.Sprintf("migration controllers %v for ZooKeeper cluster %q (Kafka cluster id %s, metadata.version %s): phase 1",
			ids, c.id, conf.kafkaClusterID, conf.metadataVersion)})
	return ks, nil
}

// advanceMigrationLocked moves the migration on at a quorum tick: the
// leader waits for the brokers, then takes over. c.mu must be held.
func (c *cluster) advanceMigrationLocked(now time.Time) {
	ks := c.quorum()
	if c.cfg.KRaft != nil || ks == nil {
		return
	}
	leader, epoch := ks.model.Leader()
	if leader == kraft.NoLeader {
		if c.zkm.state == MigrationDualWrite || c.zkm.state == MigrationKRaft {
			c.advanceDualWriteLocked(now, leader, epoch)
		}
		return
	}
	ctl := c.controllerByID(leader)
	switch c.zkm.state {
	case MigrationWaiting:
		zkBrokers, missing := c.brokersToRegisterLocked()
		if len(zkBrokers) == 0 || len(missing) > 0 {
			if !c.zkm.waitingLogged {
				c.zkm.waitingLogged = true
				msg := "No brokers are known to KRaft, waiting for brokers to register."
				if len(zkBrokers) > 0 && len(missing) < len(zkBrokers) {
					msg = fmt.Sprintf("Still waiting for ZK brokers %v to register with KRaft.", missing)
				}
				ctl.log.add(kafkaLine(now, "INFO", "[KRaftMigrationDriver id="+fmt.Sprint(leader)+"] "+msg, "org.apache.kafka.metadata.migration.KRaftMigrationDriver"))
				c.appendEventLocked(Event{Time: now, Broker: leader, Kind: EventMigrationWaiting, Who: "kraft",
					Detail: fmt.Sprintf("controller %d leads the migration quorum: %s (ZooKeeper brokers %v, not registered with KRaft %v)", leader, msg, zkBrokers, missing)})
			}
			return
		}
		c.beginTakeoverLocked(ctl, now) // migration_dualwrite.go
	case MigrationDualWrite, MigrationKRaft:
		c.advanceDualWriteLocked(now, leader, epoch) // migration_failures.go
	}
}

// brokersToRegisterLocked is the brokers registered in ZooKeeper (those
// running with a session) and, of them, those not registered with the
// quorum as migrating brokers yet. c.mu must be held.
func (c *cluster) brokersToRegisterLocked() (zkBrokers, missing []int32) {
	ks := c.quorum()
	for _, b := range c.brokers {
		if b.zk == nil || b.state != StateRunning {
			continue
		}
		zkBrokers = append(zkBrokers, b.id)
		if reg, ok := ks.model.Broker(b.id); !ok || !reg.Alive {
			missing = append(missing, b.id)
		}
	}
	return zkBrokers, missing
}

// MigrationStatus is a cluster's metadata modes and migration
// (ClusterStatus.Migration, GET /v1/clusters/{id}/migration).
type MigrationStatus struct {
	// State is none, waiting-for-brokers, dual-write, kraft or released.
	State string `json:"state"`
	// KafkaClusterID is /cluster/id's (a KRaft cluster's formatted id).
	KafkaClusterID string `json:"kafkaClusterId"`
	// Brokers lists the broker ids by metadata mode (zookeeper,
	// migration, kraft); a broker that does not run is listed by the
	// mode it will start in.
	Brokers map[string][]int32 `json:"brokers"`
	// RegisteredWithKRaft are the brokers registered with the quorum
	// (KRaft brokers and migrating ZooKeeper brokers), fenced or not.
	RegisteredWithKRaft []int32 `json:"registeredWithKRaft,omitempty"`
	// ZooKeeperInUse: some node of the cluster holds a ZooKeeper session
	// or the cluster still depends on ZooKeeper (not released).
	ZooKeeperInUse bool `json:"zookeeperInUse"`
	// ZooKeeperSessions counts the sessions the cluster's nodes hold.
	ZooKeeperSessions int `json:"zookeeperSessions"`
	// LastZooKeeperWrite is when a node of the cluster last wrote to
	// ZooKeeper (a registration, /controller, a dual-write).
	LastZooKeeperWrite time.Time `json:"lastZooKeeperWrite,omitempty"`
	// RecordsCopied counts the metadata records the takeover copied
	// from ZooKeeper (topics, partitions, configs, ACLs).
	RecordsCopied int `json:"recordsCopied"`
	// DualWrites counts the metadata changes the controllers wrote to
	// ZooKeeper since the takeover.
	DualWrites int `json:"dualWrites"`
	// MigrationControllers are the controllers still in migration mode.
	MigrationControllers []int32 `json:"migrationControllers,omitempty"`
}

// migrationStatusLocked is the cluster's MigrationStatus. c.mu must be
// held.
func (c *cluster) migrationStatusLocked() MigrationStatus {
	st := MigrationStatus{State: cmpOr(c.zkm.state, MigrationNone), KafkaClusterID: c.zkm.clusterID, Brokers: map[string][]int32{},
		LastZooKeeperWrite: c.zkm.lastZKWrite, RecordsCopied: c.zkm.recordsCopied, DualWrites: c.zkm.dualWrites}
	if st.State == migrationTakingOver {
		st.State = MigrationWaiting // the brokers still have a ZooKeeper controller
	}
	if c.cfg.KRaft != nil {
		st.KafkaClusterID = c.quorum().clusterID
	}
	for _, b := range c.brokers {
		if b.state == StateDecommissioned {
			continue
		}
		m := c.brokerModeLocked(b)
		st.Brokers[m] = append(st.Brokers[m], b.id)
		if b.zk != nil {
			st.ZooKeeperSessions++
		}
	}
	if c.zkm.session != nil {
		st.ZooKeeperSessions++
	}
	if ks := c.quorum(); ks != nil {
		for _, reg := range ks.model.Brokers() {
			st.RegisteredWithKRaft = append(st.RegisteredWithKRaft, reg.ID)
		}
		for _, ctl := range ks.controllers {
			if ctl.migration {
				st.MigrationControllers = append(st.MigrationControllers, ctl.id)
			}
		}
	}
	slices.Sort(st.MigrationControllers)
	st.ZooKeeperInUse = st.ZooKeeperSessions > 0 || !c.zooKeeperReleasedLocked()
	return st
}

// Migration is a cluster's metadata modes and migration.
func (f *Fleet) Migration(cluster string) (MigrationStatus, error) {
	c, err := f.cluster(cluster)
	if err != nil {
		return MigrationStatus{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.migrationStatusLocked(), nil
}

// migrationStatusInto adds the migration to a ClusterStatus. c.mu must be
// held.
func (c *cluster) migrationStatusInto(st *ClusterStatus) {
	m := c.migrationStatusLocked()
	st.Migration = &m
}
