package localfleet

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// A cluster whose every broker's host was terminated is gone, as it is on
// AWS once kfleet deletes it (its chroot removed with it). The fleet keeps
// running it — its audit and status stay readable — until a host is
// configured as a broker of the same id: then it retires the old cluster
// and creates a new one, so a deleted cluster's id is free again, as it is
// for kfleet.

// EventClusterRetired: every broker of the cluster had its host
// terminated, and a new broker joins under its id: the old cluster is
// gone (Broker 0).
const EventClusterRetired EventKind = "cluster-retired"

// gone reports whether every broker of c has lost its host for good.
func (f *Fleet) gone(c *cluster) bool {
	brokers := c.brokerList()
	if len(brokers) == 0 {
		return false
	}
	for _, b := range brokers {
		switch f.hosts.instanceState(c.hostOf(b)) {
		case InstanceTerminated, "":
		default:
			return false
		}
	}
	return true
}

// retire stops running a gone cluster: its records are kept for the
// cluster of the same id to come, and its Kafka data (kfake's DataDir)
// is deleted, as its volumes were.
func (f *Fleet) retire(c *cluster, who string) {
	c.close()
	if f.opts.DataDir != "" {
		if err := os.RemoveAll(filepath.Join(f.opts.DataDir, c.id, "kafka")); err != nil {
			f.log.Warn().Err(err).Str("cluster", c.id).Msg("retire: remove the cluster's Kafka data")
		}
	}
	f.mu.Lock()
	delete(f.clusters, c.id)
	f.order = slices.DeleteFunc(f.order, func(id string) bool { return id == c.id })
	c.mu.Lock()
	f.pending[c.id] = records{audit: c.audit, violations: c.violations}
	c.mu.Unlock()
	f.mu.Unlock()
	f.record(Event{Cluster: c.id, Kind: EventClusterRetired, Who: who,
		Detail: fmt.Sprintf("cluster %q retired: every broker's host was terminated; a host configured under its id starts a new cluster", c.id)})
}
