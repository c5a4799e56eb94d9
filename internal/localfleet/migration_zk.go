package localfleet

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"time"

	"github.com/go-zookeeper/zk"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ZooKeeper znodes of a cluster that the migration reads and writes, as
// Kafka names them under the cluster's chroot: /cluster/id (the Kafka
// cluster id, written once at the cluster's creation), /controller_epoch,
// /controller and /migration.

// clusterIDZNode is /cluster/id's JSON.
type clusterIDZNode struct {
	Version string `json:"version"`
	ID      string `json:"id"`
}

// newKafkaClusterID is a Kafka cluster id: a random UUID in 22
// characters of URL-safe base64 without padding (Uuid.randomUuid()).
func newKafkaClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// configuredClusterID is the Kafka cluster id of a KRaft cluster of the
// fleet's configuration: derived from its id, so that it is the same at
// every start (its controllers' logs are formatted once).
func configuredClusterID(cluster string) string {
	sum := sha256.Sum256([]byte("kafka-cluster-id/" + cluster))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// prepareClusterID makes sure /cluster/id and /controller_epoch exist, as
// the first Kafka broker of a ZooKeeper cluster writes them, and learns
// the cluster id: a cluster the fleet ran before keeps its id.
func (c *cluster) prepareClusterID(conn *zk.Conn) error {
	if _, err := conn.Create(c.zkPath("/cluster"), nil, 0, zkACL); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("localfleet: cluster %q: create /cluster: %w", c.id, err)
	}
	idPath := c.zkPath("/cluster/id")
	var node clusterIDZNode
	data, _, err := conn.Get(idPath)
	switch {
	case errors.Is(err, zk.ErrNoNode):
		node = clusterIDZNode{Version: "1", ID: newKafkaClusterID()}
		data, _ = json.Marshal(node)
		if _, err := conn.Create(idPath, data, 0, zkACL); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("localfleet: cluster %q: create /cluster/id: %w", c.id, err)
		} else if err != nil {
			return c.prepareClusterID(conn) // written meanwhile: read it
		}
	case err != nil:
		return fmt.Errorf("localfleet: cluster %q: read /cluster/id: %w", c.id, err)
	default:
		if err := json.Unmarshal(data, &node); err != nil || node.ID == "" {
			return fmt.Errorf("localfleet: cluster %q: /cluster/id holds %q: %v", c.id, data, err)
		}
	}
	if _, err := conn.Create(c.zkPath("/controller_epoch"), []byte("1"), 0, zkACL); err != nil && !errors.Is(err, zk.ErrNodeExists) {
		return fmt.Errorf("localfleet: cluster %q: create /controller_epoch: %w", c.id, err)
	}
	c.mu.Lock()
	c.zkm.clusterID = node.ID
	c.mu.Unlock()
	return nil
}

// zkControllerElected is a ZooKeeper broker elected controller through
// /controller: the election bumps /controller_epoch, which a rollback
// from KRaft compares with the KRaft controller's epoch. Only clusters
// that have had migration controllers count epochs this way; the others
// keep the fleet's election as it was.
func (c *cluster) zkControllerElected(conn *zk.Conn) {
	if c.quorum() == nil {
		return
	}
	if _, err := c.bumpControllerEpoch(conn); err != nil {
		c.log.Warn().Err(err).Msg("bump /controller_epoch")
		return
	}
	c.mu.Lock()
	c.zkm.lastZKWrite = time.Now()
	c.mu.Unlock()
}

// isMetadataChange is whether a request changes the cluster's metadata
// (what a dual-writing controller writes to ZooKeeper too).
func isMetadataChange(key int16) bool {
	switch kmsg.Key(key) {
	case kmsg.CreateTopics, kmsg.DeleteTopics, kmsg.CreatePartitions, kmsg.AlterConfigs, kmsg.IncrementalAlterConfigs,
		kmsg.CreateACLs, kmsg.DeleteACLs, kmsg.AlterPartitionAssignments:
		return true
	}
	return false
}

// ClusterID is the Kafka cluster id of a cluster: a ZooKeeper cluster's
// /cluster/id, a KRaft cluster's formatted id.
func (f *Fleet) ClusterID(cluster string) (string, error) {
	c, err := f.cluster(cluster)
	if err != nil {
		return "", err
	}
	if c.cfg.KRaft != nil {
		return c.quorum().clusterID, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.zkm.clusterID, nil
}
