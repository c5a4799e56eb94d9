package localfleet

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/localfleet/kraft"
)

// The migration's later phases and its known failures from the field:
//
//   - a leftover /migration at the first takeover: the leader skips the
//     copy and syncs its empty metadata to ZooKeeper; the topics are
//     really deleted (metadata-wiped);
//   - finalization (a controller restarted with MetadataMode=kraft)
//     while a broker is not yet a KRaft broker: those brokers get no
//     metadata any more and leave every ISR (migration-finalized-early);
//   - a rollback whose ZooKeeper brokers come back while /controller
//     still names the KRaft controller: no broker can become controller
//     (zk-controller-stuck).

// EventControllerFinalized: a migration controller dropped the
// migration flag and zookeeper.connect (phase 4), from its next start.
const EventControllerFinalized EventKind = "controller-finalized"

// EventMigrationRolledBack: no controller runs any more and every broker
// is a ZooKeeper broker again.
const EventMigrationRolledBack EventKind = "migration-rolled-back"

// EventMetadataLost: a ZooKeeper-mode broker gets no metadata any more
// (the migration was finalized before it became a KRaft broker).
const EventMetadataLost EventKind = "metadata-lost"

// wipeMetadata is the takeover after a leftover /migration: the copy is
// skipped and the leader's (empty) metadata is synced to ZooKeeper,
// deleting every topic, in kfake and the model too.
func (c *cluster) wipeMetadata(ctx context.Context, conn *zk.Conn, ctl *controller) error {
	if err := c.refresh(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	var names []string
	for name := range c.topics {
		names = append(names, name)
	}
	c.mu.Unlock()
	slices.Sort(names)
	if len(names) > 0 {
		resps, err := kadm.NewClient(c.kcl).DeleteTopics(ctx, names...)
		if err != nil {
			return fmt.Errorf("localfleet: cluster %q: sync empty metadata: delete topics: %w", c.id, err)
		}
		if err := resps.Error(); err != nil {
			return fmt.Errorf("localfleet: cluster %q: sync empty metadata: delete topics: %w", c.id, err)
		}
	}
	if err := c.refresh(ctx); err != nil {
		return err
	}
	if err := c.syncTopicsToZK(conn); err != nil {
		return err
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	ctl.log.add(kafkaLine(now, "INFO", fmt.Sprintf("[KRaftMigrationDriver id=%d] Migration was already completed (/migration exists): skipping the migration of metadata from ZooKeeper; syncing KRaft metadata to ZooKeeper", ctl.id),
		"org.apache.kafka.metadata.migration.KRaftMigrationDriver"))
	c.violateLocked(ViolationMetadataWiped, fmt.Sprintf(
		"controller %d found a leftover /migration from an earlier attempt: it skipped the copy and synced its empty metadata to ZooKeeper; %d topics deleted %v",
		ctl.id, len(names), names))
	return nil
}

// finalizeControllerLocked is controller ctl dropping the migration
// (kfleet-StartBroker MetadataMode=kraft on its host). Finalizing while a
// broker is not yet a KRaft broker is the field failure "finalization
// before brokers re-register". c.mu must be held.
func (c *cluster) finalizeControllerLocked(ctl *controller, who string) {
	if c.cfg.KRaft != nil {
		return
	}
	now := time.Now()
	c.appendEventLocked(Event{Time: now, Broker: ctl.id, Kind: EventControllerFinalized, Who: who,
		Detail: fmt.Sprintf("controller %d: zookeeper.metadata.migration.enable and zookeeper.connect removed", ctl.id)})
	var behind []int32
	for _, b := range c.brokers {
		if b.state != StateDecommissioned && c.brokerModeLocked(b) != cloud.MetadataModeKRaft {
			behind = append(behind, b.id)
		}
	}
	if len(behind) == 0 || c.zkm.finalizedEarly {
		return
	}
	c.zkm.finalizedEarly = true
	c.violateLocked(ViolationMigrationFinalizedEarly, fmt.Sprintf(
		"controller %d finalized the migration while brokers %v are not KRaft brokers yet: they get no metadata any more", ctl.id, behind))
	for _, id := range behind {
		b := c.brokerByID(id)
		if !processUp(b.state) {
			continue
		}
		c.leaveISRLocked(b.id)
		b.rt.log.add(kafkaLine(now, "WARN", fmt.Sprintf("[BrokerToControllerChannelManager id=%d name=forwarding] The KRaft controller no longer sends metadata to ZooKeeper brokers (migration finalized)", b.id), serverLogger))
		c.appendEventLocked(Event{Time: now, Broker: b.id, Kind: EventMetadataLost, Who: who,
			Detail: fmt.Sprintf("broker %d (%s mode) gets no metadata from the finalized controllers: it left every ISR", b.id, c.brokerModeLocked(b))})
	}
}

// recomputeMigrationStateLocked moves dual-write to kraft once every
// broker is a KRaft broker (and back, for a broker rolled back to
// migration mode). c.mu must be held.
func (c *cluster) recomputeMigrationStateLocked() {
	if c.zkm.state != MigrationDualWrite && c.zkm.state != MigrationKRaft {
		return
	}
	all := true
	for _, b := range c.brokers {
		if b.state != StateDecommissioned && c.brokerModeLocked(b) != cloud.MetadataModeKRaft {
			all = false
		}
	}
	if all {
		c.zkm.state = MigrationKRaft
	} else {
		c.zkm.state = MigrationDualWrite
	}
}

// advanceDualWriteLocked follows the migration after the takeover: the
// state by the brokers' modes, a new leader claiming /controller, the
// release of ZooKeeper once every controller is finalized and runs, and
// the leader's session closing when no controller runs (a rollback).
// c.mu must be held.
func (c *cluster) advanceDualWriteLocked(now time.Time, leader, epoch int32) {
	ks := c.quorum()
	c.recomputeMigrationStateLocked()
	finalized := true
	for _, ctl := range ks.controllers {
		if ctl.migration || ctl.state != StateRunning {
			finalized = false
		}
	}
	if finalized {
		c.releaseZooKeeperLocked(now)
		return
	}
	if leader == kraft.NoLeader {
		if slices.ContainsFunc(ks.controllers, func(ctl *controller) bool { return processUp(ctl.state) }) {
			return // an election is due
		}
		if c.zkm.session != nil {
			// Every controller stopped: their ZooKeeper session ends.
			conn := c.zkm.session
			c.zkm.session = nil
			go conn.Close()
		}
		if !slices.ContainsFunc(c.brokers, func(b *broker) bool {
			return b.state != StateDecommissioned && c.brokerModeLocked(b) != cloud.MetadataModeZooKeeper
		}) {
			// Rolled back: ZooKeeper brokers only, no controller.
			c.zkm.state, c.zkm.zkLeader, c.zkm.zkLeaderEpoch = MigrationNone, 0, 0
			c.appendEventLocked(Event{Time: now, Kind: EventMigrationRolledBack, Who: "kraft",
				Detail: "no controller runs and every broker is a ZooKeeper broker again: the migration is rolled back"})
		}
		return
	}
	if ctl := c.controllerByID(leader); ctl.migration && (leader != c.zkm.zkLeader || epoch != c.zkm.zkLeaderEpoch) {
		// A new leader of the migration claims /controller.
		c.zkm.zkLeader, c.zkm.zkLeaderEpoch = leader, epoch
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			conn, err := c.migrationSession()
			if err == nil {
				_, err = c.claimController(conn, leader, epoch)
			}
			if err != nil {
				c.log.Warn().Err(err).Int32("controller", leader).Msg("claim /controller")
				return
			}
			c.mu.Lock()
			c.zkm.lastZKWrite = time.Now()
			c.appendEventLocked(Event{Broker: leader, Kind: EventDualWrite, Who: "kraft",
				Detail: fmt.Sprintf("controller %d leads the migration at epoch %d: it claimed /controller", leader, epoch)})
			c.mu.Unlock()
		}()
	}
}

// releaseZooKeeperLocked ends the cluster's use of ZooKeeper: the
// controllers' session closes and nothing is written any more. c.mu must
// be held.
func (c *cluster) releaseZooKeeperLocked(now time.Time) {
	c.zkm.state = MigrationReleased
	if conn := c.zkm.session; conn != nil {
		c.zkm.session = nil
		go conn.Close()
	}
	sessions := 0
	var zkBrokers []int32
	for _, b := range c.brokers {
		if b.zk != nil {
			sessions++
			zkBrokers = append(zkBrokers, b.id)
		}
	}
	detail := "every controller is finalized: the cluster no longer uses ZooKeeper (no session, no write)"
	if sessions > 0 {
		detail = fmt.Sprintf("every controller is finalized; brokers %v still hold ZooKeeper sessions", zkBrokers)
	}
	c.appendEventLocked(Event{Time: now, Kind: EventZooKeeperReleased, Who: "kraft", Detail: detail})
}

// zkControllerClaimedByKRaft is whether /controller names a KRaft
// controller, read on conn (a ZooKeeper broker about to become
// controller). While the migration's controllers run, that is the
// dual-write's rule: the KRaft controller is the controller. Once they
// are gone (a rollback that left /controller), no ZooKeeper broker can
// become controller: a zk-controller-stuck violation.
func (c *cluster) zkControllerClaimedByKRaft(conn *zk.Conn, broker int32) bool {
	data, _, err := conn.Get(c.zkPath("/controller"))
	if err != nil {
		return false
	}
	var node kraftControllerZNode
	if json.Unmarshal(data, &node) != nil || node.KRaftControllerEpoch == 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ks := c.quorum(); ks != nil && c.dualWritingLocked() &&
		slices.ContainsFunc(ks.controllers, func(ctl *controller) bool { return ctl.migration && processUp(ctl.state) }) {
		return true // the KRaft controller is the controller (or is being elected)
	}
	c.controller = -1
	if !c.zkm.stuck {
		c.zkm.stuck = true
		c.violateLocked(ViolationZKControllerStuck, fmt.Sprintf(
			"broker %d cannot become controller: /controller still names KRaft controller %d (kraftControllerEpoch %d) and no KRaft controller runs; partitions cannot change leaders",
			broker, node.BrokerID, node.KRaftControllerEpoch))
	}
	return true
}
