package zookeeper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"

	"github.com/kfleet/kfleet/internal/fleet"
)

// What a ZooKeeper cluster's znodes say of its migration to KRaft
// (KIP-866): the Kafka cluster id the controllers must be formatted with,
// whether a KRaft controller holds /controller (dual-write), and whether
// /migration exists (the migration's state; a leftover one from an
// earlier attempt wipes metadata on a re-run).

// MigrationZnodes reads the cluster's migration znodes.
func (c *Client) MigrationZnodes(ctx context.Context) (fleet.MigrationZnodes, error) {
	m := fleet.MigrationZnodes{Controller: -1}
	data, _, err := c.conn.Get(c.path("/cluster/id"))
	switch {
	case errors.Is(err, zk.ErrNoNode):
	case err != nil:
		return m, fmt.Errorf("cluster %s: read /cluster/id: %w", c.cluster, err)
	default:
		var v struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(data, &v); err != nil {
			return m, fmt.Errorf("cluster %s: parse /cluster/id %q: %w", c.cluster, data, err)
		}
		m.ClusterID = v.ID
	}
	if m.Migration, _, err = c.conn.Exists(c.path("/migration")); err != nil {
		return m, fmt.Errorf("cluster %s: read /migration: %w", c.cluster, err)
	}
	if m.Controller, m.KRaftControllerEpoch, err = c.controllerZnode(); err != nil {
		return m, err
	}
	if m.Brokers, err = c.BrokerIDs(ctx); err != nil {
		return m, err
	}
	return m, nil
}

// controllerZnode is /controller's brokerid and kraftControllerEpoch (-1
// and 0 without the znode).
func (c *Client) controllerZnode() (id, kraftEpoch int32, err error) {
	data, _, err := c.conn.Get(c.path("/controller"))
	if errors.Is(err, zk.ErrNoNode) {
		return -1, 0, nil
	}
	if err != nil {
		return -1, 0, fmt.Errorf("cluster %s: read /controller: %w", c.cluster, err)
	}
	var v struct {
		BrokerID   int32 `json:"brokerid"`
		KRaftEpoch int32 `json:"kraftControllerEpoch"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return -1, 0, fmt.Errorf("cluster %s: parse /controller %q: %w", c.cluster, data, err)
	}
	return v.BrokerID, v.KRaftEpoch, nil
}

// ReleaseFromKRaft is the ZooKeeper half of a rollback from dual-write
// (OPERATIONS.md): with the controllers stopped, it deletes /controller
// when a KRaft controller holds it, so the ZooKeeper brokers can elect one
// of their own, and /migration, so a later attempt starts from a clean
// copy. It checks before it acts: a /controller a broker holds is left
// alone, and what is gone already is no error. It returns what it deleted.
func (c *Client) ReleaseFromKRaft(context.Context) ([]string, error) {
	var deleted []string
	_, kraftEpoch, err := c.controllerZnode()
	if err != nil {
		return nil, err
	}
	if kraftEpoch > 0 {
		if err := c.conn.Delete(c.path("/controller"), -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return deleted, fmt.Errorf("cluster %s: delete /controller: %w", c.cluster, err)
		}
		deleted = append(deleted, "/controller")
	}
	if err := c.conn.Delete(c.path("/migration"), -1); err == nil {
		deleted = append(deleted, "/migration")
	} else if !errors.Is(err, zk.ErrNoNode) {
		return deleted, fmt.Errorf("cluster %s: delete /migration: %w", c.cluster, err)
	}
	return deleted, nil
}

// MigrationZnodes reads the spec's cluster's migration znodes; see
// Client.MigrationZnodes.
func (p *Pool) MigrationZnodes(ctx context.Context, spec fleet.ClusterSpec) (fleet.MigrationZnodes, error) {
	c, err := p.Client(ctx, spec)
	if err != nil {
		return fleet.MigrationZnodes{}, err
	}
	return c.MigrationZnodes(ctx)
}

// ReleaseFromKRaft releases the spec's cluster's ZooKeeper from its KRaft
// controllers; see Client.ReleaseFromKRaft.
func (p *Pool) ReleaseFromKRaft(ctx context.Context, spec fleet.ClusterSpec) ([]string, error) {
	c, err := p.Client(ctx, spec)
	if err != nil {
		return nil, err
	}
	return c.ReleaseFromKRaft(ctx)
}
