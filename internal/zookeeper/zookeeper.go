// Package zookeeper reads a Kafka cluster's state from its ZooKeeper ensemble
// the way Kafka itself keeps it: broker registrations under /brokers/ids and
// the active controller under /controller, below the cluster's chroot.
// Waiting uses ZooKeeper watches, not polling.
package zookeeper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/kfleet/kfleet/internal/connpool"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/secrets"
)

// Client is a ZooKeeper session scoped to one cluster's chroot.
type Client struct {
	cluster string
	chroot  string
	conn    *zk.Conn
}

// ParseConnect splits a Kafka-style connect string "h1:2181,h2:2181/chroot"
// into servers and chroot ("" when none).
func ParseConnect(connect string) (servers []string, chroot string, err error) {
	hosts := connect
	if i := strings.IndexByte(connect, '/'); i >= 0 {
		hosts, chroot = connect[:i], strings.TrimRight(connect[i:], "/")
	}
	for _, h := range strings.Split(hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			servers = append(servers, h)
		}
	}
	if len(servers) == 0 {
		return nil, "", fmt.Errorf("zookeeper connect string %q: no servers", connect)
	}
	return servers, chroot, nil
}

// Dial opens a session and waits until it is established or ctx ends;
// WithDigest authenticates it.
func Dial(ctx context.Context, cluster, connect string, opts ...DialOption) (*Client, error) {
	var cfg dialConfig
	for _, o := range opts {
		o(&cfg)
	}
	servers, chroot, err := ParseConnect(connect)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	conn, events, err := zk.Connect(servers, 10*time.Second, zk.WithLogInfo(false), zk.WithLogger(quietLogger{}))
	if err != nil {
		return nil, fmt.Errorf("cluster %s: zookeeper %s: %w", cluster, connect, err)
	}
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				go drain(events)
				c := &Client{cluster: cluster, chroot: chroot, conn: conn}
				if err := cfg.addAuth(c); err != nil {
					conn.Close()
					return nil, err
				}
				return c, nil
			}
		case <-ctx.Done():
			conn.Close()
			return nil, fmt.Errorf("cluster %s: zookeeper %s: no session: %w", cluster, connect, ctx.Err())
		}
	}
}

// drain keeps the session's event channel from filling up; the session
// reconnects by itself.
func drain(events <-chan zk.Event) {
	for range events { //nolint:revive // intentionally empty
	}
}

// Close ends the session.
func (c *Client) Close() { c.conn.Close() }

func (c *Client) path(p string) string { return c.chroot + p }

// BrokerIDs returns the ids registered under /brokers/ids, ascending.
func (c *Client) BrokerIDs(context.Context) ([]int32, error) {
	children, _, err := c.conn.Children(c.path("/brokers/ids"))
	if errors.Is(err, zk.ErrNoNode) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("cluster %s: list /brokers/ids: %w", c.cluster, err)
	}
	return brokerIDs(children), nil
}

// brokerIDs parses the children of /brokers/ids, ascending; a child that is
// not a broker id is ignored.
func brokerIDs(children []string) []int32 {
	ids := make([]int32, 0, len(children))
	for _, ch := range children {
		id, err := strconv.ParseInt(ch, 10, 32)
		if err != nil {
			continue // not a broker registration
		}
		ids = append(ids, int32(id))
	}
	slices.Sort(ids)
	return ids
}

// WaitBrokersChanged blocks until the set of broker ids registered under
// /brokers/ids differs from known (in any order), and returns the new set,
// ascending. It blocks on a children watch, re-armed after every event, not
// on polling; a missing /brokers/ids is an empty set, watched until it is
// created. tick is called at every interval while it waits, so an activity
// can heartbeat. A set that changes and changes back between two events is
// not reported: what matters is the set now.
func (c *Client) WaitBrokersChanged(ctx context.Context, known []int32, interval time.Duration, tick func()) ([]int32, error) {
	p := c.path("/brokers/ids")
	want := slices.Sorted(slices.Values(known))
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		children, _, watch, err := c.conn.ChildrenW(p)
		if errors.Is(err, zk.ErrNoNode) {
			var exists bool
			// Watch for the node's creation instead; it may have been
			// created in between, then list it again.
			if exists, _, watch, err = c.conn.ExistsW(p); err == nil && exists {
				continue
			}
		}
		if err != nil {
			return nil, fmt.Errorf("cluster %s: watch %s: %w", c.cluster, p, err)
		}
		if ids := brokerIDs(children); !slices.Equal(ids, want) {
			return ids, nil
		}
	wait:
		for {
			select {
			case ev := <-watch:
				// A change, or the watch ended with its session (expiry):
				// list again and re-arm on the session the client
				// re-established, unless the client itself is closing.
				if errors.Is(ev.Err, zk.ErrClosing) {
					return nil, fmt.Errorf("cluster %s: watch %s: %w", c.cluster, p, ev.Err)
				}
				break wait
			case <-t.C:
				tick()
			case <-ctx.Done():
				return nil, fmt.Errorf("cluster %s: watch %s: %w", c.cluster, p, ctx.Err())
			}
		}
	}
}

// Controller returns the broker id in /controller, -1 when there is none.
func (c *Client) Controller(context.Context) (int32, error) {
	data, _, err := c.conn.Get(c.path("/controller"))
	if errors.Is(err, zk.ErrNoNode) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("cluster %s: read /controller: %w", c.cluster, err)
	}
	var v struct {
		BrokerID int32 `json:"brokerid"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return -1, fmt.Errorf("cluster %s: parse /controller %q: %w", c.cluster, data, err)
	}
	return v.BrokerID, nil
}

// WaitBrokerRegistered blocks until /brokers/ids/<broker> exists, watching
// the node rather than polling. tick is called at every interval while it
// waits, so an activity can heartbeat.
func (c *Client) WaitBrokerRegistered(ctx context.Context, broker int32, interval time.Duration, tick func()) error {
	p := c.path("/brokers/ids/" + strconv.Itoa(int(broker)))
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, _, watch, err := c.conn.ExistsW(p)
		if err != nil {
			return fmt.Errorf("cluster %s broker %d: watch %s: %w", c.cluster, broker, p, err)
		}
		if ok {
			return nil
		}
	wait:
		for {
			select {
			case <-watch:
				break wait
			case <-t.C:
				tick()
			case <-ctx.Done():
				return fmt.Errorf("cluster %s broker %d: not registered: %w", c.cluster, broker, ctx.Err())
			}
		}
	}
}

// Pool keeps one session per cluster.
type Pool struct {
	pool    *connpool.Pool[*Client]
	secrets secrets.Source
}

// NewPool returns an empty pool.
func NewPool(opts ...PoolOption) *Pool {
	p := &Pool{pool: connpool.New((*Client).Close)}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Client returns the cluster's session, dialing on first use or when its
// connect string or its digest credentials changed (auth.go).
func (p *Pool) Client(ctx context.Context, spec fleet.ClusterSpec) (*Client, error) {
	opts, key, err := p.auth(ctx, spec)
	if err != nil {
		return nil, err
	}
	return p.pool.Get(spec.ID, spec.ZooKeeper+key, func() (*Client, error) {
		return Dial(ctx, spec.ID, spec.ZooKeeper, opts...)
	})
}

// BrokerIDs returns the cluster's registered broker ids; see Client.BrokerIDs.
func (p *Pool) BrokerIDs(ctx context.Context, spec fleet.ClusterSpec) ([]int32, error) {
	c, err := p.Client(ctx, spec)
	if err != nil {
		return nil, err
	}
	return c.BrokerIDs(ctx)
}

// WaitBrokerRegistered waits for broker to register; see
// Client.WaitBrokerRegistered.
func (p *Pool) WaitBrokerRegistered(ctx context.Context, spec fleet.ClusterSpec, broker int32, interval time.Duration, tick func()) error {
	c, err := p.Client(ctx, spec)
	if err != nil {
		return err
	}
	return c.WaitBrokerRegistered(ctx, broker, interval, tick)
}

// WaitBrokersChanged waits for the cluster's registered broker ids to
// differ from known; see Client.WaitBrokersChanged.
func (p *Pool) WaitBrokersChanged(ctx context.Context, spec fleet.ClusterSpec, known []int32, interval time.Duration, tick func()) ([]int32, error) {
	c, err := p.Client(ctx, spec)
	if err != nil {
		return nil, err
	}
	return c.WaitBrokersChanged(ctx, known, interval, tick)
}

// Close ends every session.
func (p *Pool) Close() { p.pool.Close() }

type quietLogger struct{}

func (quietLogger) Printf(string, ...any) {}
