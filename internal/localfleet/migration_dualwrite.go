package localfleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The migration leader's takeover (KIP-866 phase 2) and its dual-write.
//
// Once every broker registered in ZooKeeper has registered with the
// quorum, the leader, on a ZooKeeper session of its own:
//
//  1. looks for /migration: without it, it copies ZooKeeper's metadata
//     into its log (the fleet's ZooKeeper cluster keeps topics in kfake
//     and the model: it first writes them to /brokers/topics as a
//     ZooKeeper cluster's controller would have, then counts the records
//     a copy makes: a topic record per topic, a partition record per
//     partition, a config record per dynamic topic config, an ACL record
//     per ACL); with it (a leftover from an earlier attempt), it skips
//     the copy and syncs its own, empty, metadata to ZooKeeper: every
//     topic is deleted (migration_failures.go);
//  2. writes /migration with its log's offset and epoch, claims
//     /controller ({"version":2,"brokerid":<leader>,...,
//     "kraftControllerEpoch":<epoch>}) and bumps /controller_epoch;
//  3. from then on writes every metadata change made through the brokers
//     to ZooKeeper too (dual-write): topics created, deleted or grown
//     land in /brokers/topics, and /migration's offset moves.
//
// /controller is written persistent rather than as the leader's
// ephemeral node (a simplification): it outlives the controllers until
// kfleet deletes it, so that a rollback that forgets to is visible
// (zk-controller-stuck).

// Audited violations of the migration (migration_failures.go).
const (
	// ViolationMetadataWiped: the takeover found a leftover /migration,
	// skipped the copy and synced empty metadata to ZooKeeper.
	ViolationMetadataWiped ViolationKind = "metadata-wiped"
	// ViolationMigrationFinalizedEarly: a controller was finalized while
	// a broker was not yet a KRaft broker.
	ViolationMigrationFinalizedEarly ViolationKind = "migration-finalized-early"
	// ViolationZKControllerStuck: ZooKeeper brokers came back with
	// /controller still naming the KRaft controller: none can become
	// controller.
	ViolationZKControllerStuck ViolationKind = "zk-controller-stuck"
)

// migrationZNode is /migration's JSON (ZkMigrationLeadershipState).
type migrationZNode struct {
	Version              int   `json:"version"`
	KRaftMetadataOffset  int64 `json:"kraft_metadata_offset"`
	KRaftMetadataEpoch   int32 `json:"kraft_metadata_epoch"`
	KRaftControllerID    int32 `json:"kraft_controller_id"`
	KRaftControllerEpoch int32 `json:"kraft_controller_epoch"`
}

// kraftControllerZNode is /controller as a KRaft controller writes it.
type kraftControllerZNode struct {
	Version              int    `json:"version"`
	BrokerID             int32  `json:"brokerid"`
	Timestamp            string `json:"timestamp"`
	KRaftControllerEpoch int32  `json:"kraftControllerEpoch"`
}

// migrationTakingOver is the state while the takeover runs (reported as
// waiting-for-brokers: the brokers still have a ZooKeeper controller).
const migrationTakingOver = "taking-over"

// beginTakeoverLocked starts leader ctl's takeover in the background (it
// talks to ZooKeeper). c.mu must be held.
func (c *cluster) beginTakeoverLocked(ctl *controller, now time.Time) {
	c.zkm.state = migrationTakingOver
	zkBrokers, _ := c.brokersToRegisterLocked()
	ctl.log.add(kafkaLine(now, "INFO", fmt.Sprintf("[KRaftMigrationDriver id=%d] All ZK brokers %v have registered with KRaft: starting the migration", ctl.id, zkBrokers),
		"org.apache.kafka.metadata.migration.KRaftMigrationDriver"))
	c.appendEventLocked(Event{Time: now, Broker: ctl.id, Kind: EventMigrationStarted, Who: "kraft",
		Detail: fmt.Sprintf("every ZooKeeper broker %v registered with the quorum; controller %d takes over", zkBrokers, ctl.id)})
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := c.takeover(ctl); err != nil {
			c.log.Warn().Err(err).Int32("controller", ctl.id).Msg("migration takeover failed; tried again")
			c.mu.Lock()
			if c.zkm.state == migrationTakingOver {
				c.zkm.state = MigrationWaiting
			}
			c.mu.Unlock()
		}
	}()
}

// metadataCounts is what the takeover copies.
type metadataCounts struct {
	topics, partitions, configs, acls int
}

func (m metadataCounts) records() int { return m.topics + m.partitions + m.configs + m.acls }

// takeover is leader ctl's takeover (steps 1 and 2 above).
func (c *cluster) takeover(ctl *controller) error {
	ctx, cancel := context.WithTimeout(c.life, 2*kfakeCallTimeout)
	defer cancel()
	conn, err := c.migrationSession()
	if err != nil {
		return err
	}
	leftover, _, err := conn.Exists(c.zkPath("/migration"))
	if err != nil {
		return fmt.Errorf("localfleet: cluster %q: read /migration: %w", c.id, err)
	}
	var counts metadataCounts
	if leftover {
		if err := c.wipeMetadata(ctx, conn, ctl); err != nil { // migration_failures.go
			return err
		}
	} else {
		if err := c.refresh(ctx); err != nil {
			return err
		}
		if err := c.syncTopicsToZK(conn); err != nil {
			return err
		}
		if counts, err = c.countMetadata(ctx); err != nil {
			return err
		}
	}
	c.mu.Lock()
	ks := c.quorum()
	leader, epoch := ks.model.Leader()
	if leader != ctl.id {
		c.mu.Unlock()
		return fmt.Errorf("localfleet: cluster %q: controller %d lost the leadership during the takeover", c.id, ctl.id)
	}
	ks.model.Append(int64(counts.records())+1, time.Now()) // the copied records and the migration's end
	offset := ks.model.HighWatermark()
	for _, v := range ks.model.Voters() {
		if v.ID == leader {
			offset = v.LogEndOffset
		}
	}
	c.mu.Unlock()
	if err := c.writeMigrationZNode(conn, migrationZNode{KRaftMetadataOffset: offset, KRaftMetadataEpoch: epoch,
		KRaftControllerID: leader, KRaftControllerEpoch: epoch}); err != nil {
		return err
	}
	zkEpoch, err := c.claimController(conn, leader, epoch)
	if err != nil {
		return err
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.zkm.state, c.zkm.recordsCopied, c.zkm.lastZKWrite = MigrationDualWrite, counts.records(), now
	c.zkm.zkLeader, c.zkm.zkLeaderEpoch = leader, epoch
	if !leftover {
		ctl.log.add(kafkaLine(now, "INFO", fmt.Sprintf("[KRaftMigrationDriver id=%d] Completed migration of metadata from ZooKeeper to KRaft. %d records were generated in %d batches. The current metadata offset is now %d with an epoch of %d.",
			ctl.id, counts.records(), 1, offset, epoch), "org.apache.kafka.metadata.migration.KRaftMigrationDriver"))
		c.appendEventLocked(Event{Time: now, Broker: ctl.id, Kind: EventMetadataCopied, Who: "kraft",
			Detail: fmt.Sprintf("%d records copied from ZooKeeper: %d topics, %d partitions, %d configs, %d ACLs; metadata offset %d, epoch %d",
				counts.records(), counts.topics, counts.partitions, counts.configs, counts.acls, offset, epoch)})
	}
	c.appendEventLocked(Event{Time: now, Broker: ctl.id, Kind: EventDualWrite, Who: "kraft",
		Detail: fmt.Sprintf("controller %d claimed /controller (kraftControllerEpoch %d, /controller_epoch %d); metadata changes are written to ZooKeeper too", ctl.id, epoch, zkEpoch)})
	c.recomputeMigrationStateLocked()
	if c.zkm.dirty == nil {
		c.zkm.dirty = make(chan struct{}, 1)
		c.wg.Add(1)
		go c.dualWriter(c.zkm.dirty)
	}
	return nil
}

// migrationSession is the migration leader's ZooKeeper session, opened
// once and kept until ZooKeeper is released.
func (c *cluster) migrationSession() (*zk.Conn, error) {
	c.mu.Lock()
	conn := c.zkm.session
	c.mu.Unlock()
	if conn != nil {
		return conn, nil
	}
	conn, err := c.zkSession()
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.zkm.session != nil || c.zkm.state == MigrationReleased || c.closed {
		conn.Close()
		if c.zkm.session == nil {
			return nil, fmt.Errorf("localfleet: cluster %q: ZooKeeper is released", c.id)
		}
		return c.zkm.session, nil
	}
	c.zkm.session = conn
	return conn, nil
}

func (c *cluster) writeMigrationZNode(conn *zk.Conn, m migrationZNode) error {
	data, _ := json.Marshal(m)
	p := c.zkPath("/migration")
	_, err := conn.Set(p, data, -1)
	if errors.Is(err, zk.ErrNoNode) {
		_, err = conn.Create(p, data, 0, zkACL)
	}
	if err != nil {
		return fmt.Errorf("localfleet: cluster %q: write /migration: %w", c.id, err)
	}
	return nil
}

// claimController makes /controller name KRaft controller leader at
// epoch and bumps /controller_epoch, as KRaft's
// claimControllerLeadership does; it returns the new controller epoch.
func (c *cluster) claimController(conn *zk.Conn, leader, epoch int32) (int32, error) {
	zkEpoch, err := c.bumpControllerEpoch(conn)
	if err != nil {
		return 0, fmt.Errorf("localfleet: cluster %q: bump /controller_epoch: %w", c.id, err)
	}
	data, _ := json.Marshal(kraftControllerZNode{Version: 2, BrokerID: leader, Timestamp: nowMillis(), KRaftControllerEpoch: epoch})
	c.ctrlMu.Lock()
	defer c.ctrlMu.Unlock()
	p := c.zkPath("/controller")
	if err := conn.Delete(p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return 0, fmt.Errorf("localfleet: cluster %q: delete /controller: %w", c.id, err)
	}
	if _, err := conn.Create(p, data, 0, zkACL); err != nil {
		return 0, fmt.Errorf("localfleet: cluster %q: claim /controller for controller %d: %w", c.id, leader, err)
	}
	return zkEpoch, nil
}

// bumpControllerEpoch increments /controller_epoch, as every controller
// election does, and returns the new epoch.
func (c *cluster) bumpControllerEpoch(conn *zk.Conn) (int32, error) {
	p := c.zkPath("/controller_epoch")
	for {
		data, stat, err := conn.Get(p)
		if errors.Is(err, zk.ErrNoNode) {
			if _, err := conn.Create(p, []byte("1"), 0, zkACL); err == nil {
				return 1, nil
			} else if !errors.Is(err, zk.ErrNodeExists) {
				return 0, err
			}
			continue
		}
		if err != nil {
			return 0, err
		}
		n, _ := strconv.ParseInt(string(data), 10, 32)
		n++
		if _, err := conn.Set(p, []byte(strconv.FormatInt(n, 10)), stat.Version); errors.Is(err, zk.ErrBadVersion) {
			continue
		} else if err != nil {
			return 0, err
		}
		return int32(n), nil
	}
}

// topicZNode is /brokers/topics/<topic>'s JSON.
type topicZNode struct {
	Version    int                `json:"version"`
	Partitions map[string][]int32 `json:"partitions"`
}

// syncTopicsToZK makes /brokers/topics hold the model's topics: each with
// its partitions' replicas; topics gone are deleted. It returns nothing
// but errors: the writes are what dual-write is.
func (c *cluster) syncTopicsToZK(conn *zk.Conn) error {
	c.mu.Lock()
	want := map[string][]byte{}
	for name, t := range c.topics {
		node := topicZNode{Version: 3, Partitions: map[string][]int32{}}
		for id, p := range t.parts {
			node.Partitions[strconv.Itoa(int(id))] = slices.Clone(p.replicas)
		}
		want[name], _ = json.Marshal(node)
	}
	c.mu.Unlock()
	base := c.zkPath("/brokers/topics")
	have, _, err := conn.Children(base)
	if err != nil {
		return fmt.Errorf("localfleet: cluster %q: list /brokers/topics: %w", c.id, err)
	}
	for _, name := range have {
		if _, ok := want[name]; !ok {
			if err := conn.Delete(base+"/"+name, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
				return fmt.Errorf("localfleet: cluster %q: delete /brokers/topics/%s: %w", c.id, name, err)
			}
		}
	}
	for name, data := range want {
		p := base + "/" + name
		cur, _, err := conn.Get(p)
		switch {
		case errors.Is(err, zk.ErrNoNode):
			_, err = conn.Create(p, data, 0, zkACL)
		case err == nil && string(cur) != string(data):
			_, err = conn.Set(p, data, -1)
		}
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("localfleet: cluster %q: write /brokers/topics/%s: %w", c.id, name, err)
		}
	}
	return nil
}

// countMetadata counts the records a copy of the cluster's metadata
// makes: topics and partitions from the model, dynamic topic configs
// and ACLs from kfake.
func (c *cluster) countMetadata(ctx context.Context) (metadataCounts, error) {
	var m metadataCounts
	c.mu.Lock()
	names := make([]string, 0, len(c.topics))
	for name, t := range c.topics {
		names = append(names, name)
		m.topics++
		m.partitions += len(t.parts)
	}
	acls := c.cfg.ACLs
	c.mu.Unlock()
	adm := kadm.NewClient(c.kcl)
	if len(names) > 0 {
		rcs, err := adm.DescribeTopicConfigs(ctx, names...)
		if err != nil {
			return m, fmt.Errorf("localfleet: cluster %q: count topic configs: %w", c.id, err)
		}
		for _, rc := range rcs {
			for _, cfg := range rc.Configs {
				if cfg.Source == kmsg.ConfigSourceDynamicTopicConfig {
					m.configs++
				}
			}
		}
	}
	if acls {
		res, err := adm.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().Deny().Operations(kadm.OpAny).ResourcePatternType(kadm.ACLPatternAny))
		if err != nil {
			return m, fmt.Errorf("localfleet: cluster %q: count ACLs: %w", c.id, err)
		}
		for _, r := range res {
			m.acls += len(r.Described)
		}
	}
	return m, nil
}

// metadataChanged is a metadata change made through a broker (a topic
// created, deleted or grown, a config, an ACL): while the controllers
// dual-write, it lands in ZooKeeper too.
func (c *cluster) metadataChanged() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dualWritingLocked() {
		select {
		case c.zkm.dirty <- struct{}{}:
		default:
		}
	}
}

// dualWritingLocked is whether the controllers write metadata changes to
// ZooKeeper. c.mu must be held.
func (c *cluster) dualWritingLocked() bool {
	return c.zkm.dirty != nil && (c.zkm.state == MigrationDualWrite || c.zkm.state == MigrationKRaft)
}

// dualWriter writes the metadata changes to ZooKeeper while the
// controllers dual-write.
func (c *cluster) dualWriter(dirty <-chan struct{}) {
	defer c.wg.Done()
	for {
		select {
		case <-c.life.Done():
			return
		case <-dirty:
		}
		c.mu.Lock()
		writing := c.dualWritingLocked()
		conn := c.zkm.session
		ks := c.quorum()
		c.mu.Unlock()
		if !writing || conn == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(c.life, kfakeCallTimeout)
		err := c.refresh(ctx)
		cancel()
		if err == nil {
			err = c.syncTopicsToZK(conn)
		}
		if err != nil {
			c.log.Warn().Err(err).Msg("dual-write to ZooKeeper")
			continue
		}
		c.mu.Lock()
		ks.model.Append(1, time.Now())
		leader, epoch := ks.model.Leader()
		var offset int64
		for _, v := range ks.model.Voters() {
			if v.ID == leader {
				offset = v.LogEndOffset
			}
		}
		c.mu.Unlock()
		if leader < 0 {
			continue
		}
		if err := c.writeMigrationZNode(conn, migrationZNode{KRaftMetadataOffset: offset, KRaftMetadataEpoch: epoch,
			KRaftControllerID: leader, KRaftControllerEpoch: epoch}); err != nil {
			c.log.Warn().Err(err).Msg("dual-write /migration")
			continue
		}
		c.mu.Lock()
		c.zkm.lastZKWrite = time.Now()
		c.zkm.dualWrites++
		c.mu.Unlock()
	}
}
