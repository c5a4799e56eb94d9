package zookeeper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"

	"github.com/go-zookeeper/zk"

	"github.com/kfleet/kfleet/internal/fleet"
)

// What provisioning and deletion ask of a cluster's ensemble: where each
// registered broker listens (its /brokers/ids/<id> registration, as Kafka
// clients learn it), and removing the cluster's chroot once it is gone.

// registration is the part of a broker's /brokers/ids/<id> JSON kfleet
// reads.
type registration struct {
	Endpoints []string `json:"endpoints"`
	Host      string   `json:"host"`
	Port      int      `json:"port"`
}

// BrokerEndpoints returns where each registered broker listens, host:port
// of its PLAINTEXT listener (else its first), by broker id.
func (c *Client) BrokerEndpoints(ctx context.Context) (map[int32]string, error) {
	ids, err := c.BrokerIDs(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[int32]string, len(ids))
	for _, id := range ids {
		p := c.path("/brokers/ids/" + strconv.Itoa(int(id)))
		data, _, err := c.conn.Get(p)
		if errors.Is(err, zk.ErrNoNode) {
			continue // left meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("cluster %s broker %d: read %s: %w", c.cluster, id, p, err)
		}
		addr, err := endpointOf(data)
		if err != nil {
			return nil, fmt.Errorf("cluster %s broker %d: %s: %w", c.cluster, id, p, err)
		}
		out[id] = addr
	}
	return out, nil
}

// endpointOf reads a registration's address.
func endpointOf(data []byte) (string, error) {
	var r registration
	if err := json.Unmarshal(data, &r); err != nil {
		return "", fmt.Errorf("parse registration %q: %w", data, err)
	}
	for _, ep := range r.Endpoints {
		if hostPort, ok := strings.CutPrefix(ep, "PLAINTEXT://"); ok {
			return hostPort, nil
		}
	}
	if len(r.Endpoints) > 0 {
		if _, hostPort, ok := strings.Cut(r.Endpoints[0], "://"); ok {
			return hostPort, nil
		}
	}
	if r.Host != "" && r.Port > 0 {
		return net.JoinHostPort(r.Host, strconv.Itoa(r.Port)), nil
	}
	return "", errors.New("registration names no endpoint")
}

// BrokerEndpoints returns where the cluster's registered brokers listen;
// see Client.BrokerEndpoints.
func (p *Pool) BrokerEndpoints(ctx context.Context, spec fleet.ClusterSpec) (map[int32]string, error) {
	c, err := p.Client(ctx, spec)
	if err != nil {
		return nil, err
	}
	return c.BrokerEndpoints(ctx)
}

// RemoveChroot deletes the cluster's chroot (the path connect ends with)
// and everything under it, on a session of its own at the ensemble's root.
// A chroot already gone is no error; a connect string without one is
// refused: it would name every cluster's data.
func RemoveChroot(ctx context.Context, cluster, connect string, opts ...DialOption) (removed int, err error) {
	servers, chroot, err := ParseConnect(connect)
	if err != nil {
		return 0, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	if chroot == "" || chroot == "/" || path.Clean(chroot) != chroot {
		return 0, fmt.Errorf("cluster %s: zookeeper connect %q names no chroot of its own: refusing to delete the ensemble's root", cluster, connect)
	}
	c, err := Dial(ctx, cluster, strings.Join(servers, ","), opts...)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.deleteTree(ctx, chroot)
}

// deleteTree deletes p and its descendants, children first; nodes that
// vanish meanwhile are fine, and a node that gained a child meanwhile (a
// broker still registering) is listed again.
func (c *Client) deleteTree(ctx context.Context, p string) (int, error) {
	n := 0
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		children, _, err := c.conn.Children(p)
		if errors.Is(err, zk.ErrNoNode) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("cluster %s: list %s: %w", c.cluster, p, err)
		}
		for _, ch := range children {
			k, err := c.deleteTree(ctx, path.Join(p, ch))
			n += k
			if err != nil {
				return n, err
			}
		}
		err = c.conn.Delete(p, -1)
		switch {
		case err == nil:
			return n + 1, nil
		case errors.Is(err, zk.ErrNoNode):
			return n, nil
		case errors.Is(err, zk.ErrNotEmpty) && attempt < 10:
			continue
		}
		return n, fmt.Errorf("cluster %s: delete %s: %w", c.cluster, p, err)
	}
}

// RemoveChroot removes a cluster's chroot; see the package's RemoveChroot.
// It dials a session of its own at the ensemble's root, with the spec's
// digest credentials: the pooled one is chrooted, and may still serve the
// cluster's watch until its entity ends.
func (p *Pool) RemoveChroot(ctx context.Context, spec fleet.ClusterSpec) (int, error) {
	opts, _, err := p.auth(ctx, spec)
	if err != nil {
		return 0, err
	}
	return RemoveChroot(ctx, spec.ID, spec.ZooKeeper, opts...)
}
