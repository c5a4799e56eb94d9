package localfleet

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/rs/zerolog"
)

// zkSessionTimeout is each broker's session timeout. Short, so that an
// unclean loss of a session (a crashed fleet) is visible within seconds,
// as the product's crash detection relies on.
const zkSessionTimeout = 4 * time.Second

var zkACL = zk.WorldACL(zk.PermAll)

// brokerRegistration is the JSON a ZooKeeper-mode Kafka broker writes to
// /brokers/ids/<id>.
type brokerRegistration struct {
	ListenerSecurityProtocolMap map[string]string `json:"listener_security_protocol_map"`
	Endpoints                   []string          `json:"endpoints"`
	JMXPort                     int               `json:"jmx_port"`
	Features                    map[string]any    `json:"features"`
	Host                        string            `json:"host"`
	Timestamp                   string            `json:"timestamp"`
	Port                        int               `json:"port"`
	Version                     int               `json:"version"`
}

// controllerRegistration is the JSON of /controller.
type controllerRegistration struct {
	Version   int    `json:"version"`
	BrokerID  int32  `json:"brokerid"`
	Timestamp string `json:"timestamp"`
}

func nowMillis() string { return strconv.FormatInt(time.Now().UnixMilli(), 10) }

// zkPath maps a Kafka path into the cluster's chroot; go-zookeeper has no
// chroot support, so the fleet prefixes paths itself.
func (c *cluster) zkPath(p string) string { return path.Join(c.zkRoot, p) }

// zkBufferSize bounds a fleet session's buffers. go-zookeeper allocates
// 1.5 MiB per buffer by default; the fleet's znodes are a few hundred bytes,
// and with four sessions per cluster the default would cost a 200-cluster
// fleet over 2 GiB of (mostly untouched) heap.
const zkBufferSize = 64 << 10

func (c *cluster) zkSession() (*zk.Conn, error) {
	conn, _, err := zk.Connect(c.zkServers, zkSessionTimeout,
		zk.WithMaxBufferSize(zkBufferSize), zk.WithMaxConnBufferSize(zkBufferSize),
		zk.WithLogger(zkLogger{c.log.With().Str("component", "zk").Logger()}))
	if err != nil {
		return nil, fmt.Errorf("localfleet: cluster %q: connect to zookeeper %v: %w", c.id, c.zkServers, err)
	}
	return conn, nil
}

// prepareZooKeeper prepares the chroot (prepareChroot), again on a new
// session when ZooKeeper drops the first: a server that just started on a
// loaded machine may close a session before it is established (seen as
// "zk: connection closed" while make test ran three test binaries).
func (c *cluster) prepareZooKeeper() error {
	deadline := time.Now().Add(prepareZooKeeperWithin)
	for {
		err := c.prepareChroot()
		if err == nil || time.Now().After(deadline) ||
			!(errors.Is(err, zk.ErrConnectionClosed) || errors.Is(err, zk.ErrSessionExpired) || errors.Is(err, zk.ErrNoServer)) {
			return err
		}
		c.log.Warn().Err(err).Msg("zookeeper dropped the session; preparing the chroot on a new one")
		time.Sleep(250 * time.Millisecond)
	}
}

// prepareZooKeeperWithin bounds prepareZooKeeper's retries.
const prepareZooKeeperWithin = 20 * time.Second

// prepareChroot creates the chroot's persistent parents and removes
// registrations left by a fleet that died without closing its sessions;
// the fleet is the only writer under its chroot. Every step is idempotent.
func (c *cluster) prepareChroot() error {
	conn, err := c.zkSession()
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, p := range []string{"/kfleet", c.zkRoot, c.zkPath("/brokers"), c.zkPath("/brokers/ids"), c.zkPath("/brokers/topics")} {
		if _, err := conn.Create(p, nil, 0, zkACL); err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("localfleet: cluster %q: create %s: %w", c.id, p, err)
		}
	}
	if err := c.prepareClusterID(conn); err != nil { // migration_zk.go
		return err
	}
	ids, _, err := conn.Children(c.zkPath("/brokers/ids"))
	if err != nil {
		return fmt.Errorf("localfleet: cluster %q: list broker ids: %w", c.id, err)
	}
	stale := []string{c.zkPath("/controller")}
	for _, id := range ids {
		stale = append(stale, c.zkPath("/brokers/ids/"+id))
	}
	for _, p := range stale {
		if err := conn.Delete(p, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return fmt.Errorf("localfleet: cluster %q: delete stale %s: %w", c.id, p, err)
		}
	}
	return nil
}

// register opens broker b's own session and creates its ephemeral
// registration. The caller stores the session in b.zk; closing it is the
// deregistration. While b runs on this session, a watcher (watchSession)
// registers b again whenever ZooKeeper expires the session and the client
// gets a new one, as Kafka's ZooKeeperClient does.
func (c *cluster) register(b *broker) (*zk.Conn, error) {
	conn, events, err := c.brokerSession(b) // severable, so a crash can expire it (faults.go)
	if err != nil {
		return nil, fmt.Errorf("broker %d: %w", b.id, err)
	}
	data, err := c.registrationData(b)
	if err != nil {
		conn.Close()
		return nil, err
	}
	p := c.zkPath(fmt.Sprintf("/brokers/ids/%d", b.id))
	if err := createEphemeral(conn, p, data); err != nil {
		conn.Close()
		return nil, fmt.Errorf("localfleet: cluster %q: broker %d: register %s: %w", c.id, b.id, p, err)
	}
	c.wg.Add(1)
	go c.watchSession(b, conn, events, p, data)
	return conn, nil
}

// registrationData is broker b's /brokers/ids/<id> JSON.
func (c *cluster) registrationData(b *broker) ([]byte, error) {
	port := b.proxy.port()
	data, err := json.Marshal(brokerRegistration{
		ListenerSecurityProtocolMap: map[string]string{"PLAINTEXT": "PLAINTEXT"},
		Endpoints:                   []string{fmt.Sprintf("PLAINTEXT://%s:%d", proxyHost, port)},
		JMXPort:                     -1,
		Features:                    map[string]any{},
		Host:                        proxyHost,
		Timestamp:                   nowMillis(),
		Port:                        port,
		Version:                     5,
	})
	if err != nil {
		return nil, fmt.Errorf("localfleet: cluster %q: broker %d: encode registration: %w", c.id, b.id, err)
	}
	return data, nil
}

// watchSession follows the events of broker b's session conn until conn
// closes or the fleet does. When ZooKeeper has expired the session (a
// long GC pause, a network blip, an overloaded ensemble, or
// FaultExpireSession) the client reconnects with a new session, and the
// old session's ephemeral nodes are gone: b then registers again at p
// with data, as a Kafka broker does on session re-establishment.
func (c *cluster) watchSession(b *broker, conn *zk.Conn, events <-chan zk.Event, p string, data []byte) {
	defer c.wg.Done()
	expired := false
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			if ev.Type != zk.EventSession {
				continue
			}
			switch ev.State {
			case zk.StateExpired:
				expired = true
			case zk.StateHasSession:
				if expired {
					expired = false
					c.reregister(b, conn, p, data)
				}
			}
		case <-c.life.Done():
			return
		}
	}
}

// reregister creates b's registration again after its session conn
// expired and was replaced by a new one, if and only if b still runs on
// conn: a broker that crashed, stopped or started again since (b.zk is
// nil or another session) never registers through conn. If b was the
// controller, its /controller node went with the old session, and the
// controller is elected again (moveController).
func (c *cluster) reregister(b *broker, conn *zk.Conn, p string, data []byte) {
	b.opMu.Lock() // no stop, start or crash of b meanwhile
	defer b.opMu.Unlock()
	c.mu.Lock()
	live := !c.closed && b.zk == conn && b.state == StateRunning
	c.mu.Unlock()
	if !live {
		return
	}
	if err := createEphemeral(conn, p, data); err != nil {
		c.log.Error().Err(err).Int32("broker", b.id).Msg("register again after session expiry")
		return
	}
	now := time.Now()
	c.mu.Lock()
	b.rt.log.add(
		kafkaLine(now, "INFO", "[ZooKeeperClient Kafka server] Session expired.", "kafka.zookeeper.ZooKeeperClient"),
		kafkaLine(now, "INFO", fmt.Sprintf("Registered broker %d at path /brokers/ids/%d with addresses: PLAINTEXT://%s:%d",
			b.id, b.id, proxyHost, b.proxy.port()), "kafka.zk.KafkaZkClient"),
	)
	c.recordDetailLocked(b, EventReregistered, "zookeeper",
		fmt.Sprintf("session expired; registered again with session 0x%x", conn.SessionID()))
	c.mu.Unlock()
	c.moveController(b.id, "controller election after session expiry")
}

// moveController elects a new controller (the lowest running broker,
// possibly id itself when it runs on a new session) and publishes it, if
// broker id holds the role. what names the election in error logs.
func (c *cluster) moveController(id int32, what string) {
	c.mu.Lock()
	moved := c.controller == id
	if moved {
		c.controller = c.pickControllerLocked()
	}
	c.mu.Unlock()
	if moved {
		if err := c.publishController(); err != nil {
			c.log.Error().Err(err).Int32("broker", id).Msg(what)
		}
	}
}

// createEphemeral creates an ephemeral node owned by conn's session. A node
// left by another session (a previous run of this broker whose session has
// not expired yet) is replaced: the model, not ZooKeeper, is the truth.
func createEphemeral(conn *zk.Conn, p string, data []byte) error {
	for attempt := 0; ; attempt++ {
		_, err := conn.Create(p, data, zk.FlagEphemeral, zkACL)
		if err == nil || !errors.Is(err, zk.ErrNodeExists) || attempt == 2 {
			return err
		}
		_, stat, err := conn.Get(p)
		switch {
		case errors.Is(err, zk.ErrNoNode):
			continue
		case err != nil:
			return err
		case stat.EphemeralOwner == conn.SessionID():
			_, err := conn.Set(p, data, stat.Version) // already ours: refresh
			return err
		}
		if err := conn.Delete(p, stat.Version); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return err
		}
	}
}

// publishController makes /controller name the model's controller, owned
// by that broker's session. With no controller it does nothing: the node
// vanished with the old controller's session.
func (c *cluster) publishController() error {
	c.ctrlMu.Lock()
	defer c.ctrlMu.Unlock()
	c.mu.Lock()
	id := c.controller
	var conn *zk.Conn
	if b := c.brokerByID(id); b != nil {
		conn = b.zk
	}
	c.mu.Unlock()
	if conn == nil {
		return nil
	}
	if c.zkControllerClaimedByKRaft(conn, id) { // migration_failures.go
		return nil
	}
	data, err := json.Marshal(controllerRegistration{Version: 1, BrokerID: id, Timestamp: nowMillis()})
	if err != nil {
		return fmt.Errorf("localfleet: cluster %q: broker %d: encode controller: %w", c.id, id, err)
	}
	if err := createEphemeral(conn, c.zkPath("/controller"), data); err != nil {
		return fmt.Errorf("localfleet: cluster %q: broker %d: publish /controller: %w", c.id, id, err)
	}
	c.zkControllerElected(conn) // migration_zk.go
	c.log.Info().Int32("controller", id).Msg("controller elected")
	return nil
}

// zkLogger sends go-zookeeper's connection chatter to zerolog at debug.
type zkLogger struct{ log zerolog.Logger }

func (l zkLogger) Printf(format string, args ...any) { l.log.Debug().Msgf(format, args...) }

// registerBroker (migration.go) registers a starting broker in its
// metadata mode: in ZooKeeper, with the KRaft quorum, or both.
