package localfleet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kfleet/kfleet/internal/cloud"
)

// proxyHost is where every broker proxy listens and what it advertises.
const proxyHost = "127.0.0.1"

// kfakeCallTimeout bounds requests the fleet itself sends to kfake.
const kfakeCallTimeout = 10 * time.Second

// broker is one simulated broker: a proxy port, a ZooKeeper session while
// running, and a lifecycle state.
type broker struct {
	id    int32
	proxy *proxy // fixed for the broker's life; opened and closed per run

	// opMu serializes lifecycle transitions of this broker, so that
	// concurrent stop/start requests are applied one after the other and
	// idempotency checks see a settled state.
	opMu sync.Mutex

	// Guarded by cluster.mu.
	// instanceID is the host Kafka runs on; a replacement host takes it
	// over (provision.go).
	instanceID string
	rack       string // broker.rack; "" when the cluster has no racks
	state      State
	version    string
	ibp        string   // inter.broker.protocol.version; "" until a start sets it
	gen        uint64   // bumped on every transition; stale catch-ups compare it
	zk         *zk.Conn // the broker's own session while registered
	// behindBytes is what was written to its partitions while it was out
	// of their ISR; its catch-up takes longer the more it missed. behind
	// is the same by partition, and catchUp the catch-up under way, so
	// that DescribeLogDirs shows its replicas filling up (catchup.go).
	behindBytes int64
	behind      map[partKey]int64
	catchUp     catchUpRun
	// rt is the broker's process and host model: limits, segments, log
	// cleaner, heap, log lines, injected faults (faults.go).
	rt runtime
}

// cluster is one simulated Kafka cluster: kfake, the broker proxies, the
// ZooKeeper registrations and the replication model.
type cluster struct {
	id     string
	cfg    ClusterConfig
	minISR int
	log    zerolog.Logger

	zkConnect string   // the ensemble's connect string, without chroot
	zkServers []string // zkConnect split into host:port
	zkRoot    string   // the chroot, "/kfleet/<id>"

	// life is canceled when the fleet closes; background work (catch-up)
	// selects on it and is tracked in wg.
	life context.Context
	wg   *sync.WaitGroup

	kf      *kfake.Cluster
	kfAddrs []string    // kfake listen addresses: one, kfakeNode's
	kcl     *kgo.Client // talks to kfake directly, bypassing the proxies

	// hosts is the fleet's hosts model (hosts.go): the brokers' data
	// volumes, instance states and producer quotas. Shared by every
	// cluster; its lock comes after c.mu.
	hosts *hosts

	// ctrlMu serializes writes of /controller.
	ctrlMu sync.Mutex

	mu sync.Mutex
	// brokers are in id order. Provisioning adds brokers (provision.go),
	// so the slice is replaced, never changed in place: a copy taken under
	// mu can be walked without it.
	brokers    []*broker
	controller int32 // -1 when no broker runs
	topics     map[string]*topicModel
	// plans are topics being created whose model does not exist yet, with
	// the replication they were asked for (topicPlan).
	plans map[string]*topicPlan
	// rates are the brokers' replication throttle rates by config
	// resource name ("" is the cluster default), then key (throttles.go).
	rates map[string]map[string]int64
	// copies are the reassignment copies in flight and what was
	// measured of them (reassign_copy.go).
	copies copyModel
	// quotas are the byte-rate quotas the brokers enforce
	// (quota_config.go); they have their own lock.
	quotas clientQuotas
	// mutations are the KIP-599 controller mutation quotas
	// (mutation_quota.go), admin the admin requests in flight
	// (storm.go); each has its own lock.
	mutations  mutationQuotas
	admin      adminLoad
	audit      []Event
	violations []Violation
	closed     bool

	// kr is the KRaft quorum (kraft.go, quorum()); nil in ZooKeeper mode
	// until migration controllers start (controller_provision.go). Set
	// once, never replaced; its contents are guarded by mu.
	kr atomic.Pointer[kraftState]
	// zkm is the brokers' metadata modes and the ZooKeeper-to-KRaft
	// migration's progress (migration.go). Guarded by mu.
	zkm zkMigration
}

// rackPtr is the broker's rack as Kafka responses carry it: nil without
// one. A copy: the rack changes when the broker moves to a host in
// another zone. c.mu must be held.
func (b *broker) rackPtr() *string {
	if b.rack == "" {
		return nil
	}
	r := b.rack
	return &r
}

// brokerByID is broker id, nil when the cluster has none. c.mu must be
// held.
func (c *cluster) brokerByID(id int32) *broker {
	i, ok := slices.BinarySearchFunc(c.brokers, id, func(b *broker, id int32) int { return cmp.Compare(b.id, id) })
	if !ok {
		return nil
	}
	return c.brokers[i]
}

func (c *cluster) broker(id int32) (*broker, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.brokerByID(id); b != nil {
		return b, nil
	}
	return nil, fmt.Errorf("localfleet: cluster %q: broker %d: %w", c.id, id, ErrUnknownBroker)
}

// brokerList is the cluster's brokers now, in id order.
func (c *cluster) brokerList() []*broker {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.brokers
}

// hostOf is the instance broker b runs on.
func (c *cluster) hostOf(b *broker) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return b.instanceID
}

// startCluster brings up kfake, seeds topics, registers every broker in
// ZooKeeper and opens the broker proxies. On error everything started so
// far is torn down.
func startCluster(ctx context.Context, life context.Context, wg *sync.WaitGroup, cfg ClusterConfig, opts Options) (_ *cluster, err error) {
	c := &cluster{
		id:         cfg.ID,
		cfg:        cfg,
		minISR:     cfg.MinInsyncReplicas,
		log:        opts.Logger.With().Str("cluster", cfg.ID).Logger(),
		zkConnect:  opts.ZooKeeper,
		zkServers:  strings.Split(opts.ZooKeeper, ","),
		zkRoot:     cloud.ZooKeeperChroot(cfg.ID),
		hosts:      opts.hosts,
		life:       life,
		wg:         wg,
		controller: -1,
		topics:     map[string]*topicModel{},
		plans:      map[string]*topicPlan{},
		rates:      map[string]map[string]int64{},
	}
	defer func() {
		if err != nil {
			c.close()
		}
	}()

	for i := range cfg.Brokers {
		port := 0
		if len(cfg.BrokerPorts) > 0 {
			port = cfg.BrokerPorts[i]
		}
		c.brokers = append(c.brokers, c.newBroker(int32(i+1), instanceID(cfg.ID, int32(i+1)), cfg.rackOf(i+1), port))
	}

	// One kfake node serves every broker proxy (doc.go): a client's SASL
	// session then lives on its single upstream connection.
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.ClusterID("kfleet-" + cfg.ID),
		kfake.WithLogger(kfakeLogger{c.log.With().Str("component", "kfake").Logger()}),
		kfake.BrokerConfigs(map[string]string{
			"min.insync.replicas":        strconv.Itoa(cfg.MinInsyncReplicas),
			"default.replication.factor": strconv.Itoa(defaultRF(cfg.Brokers)),
		}),
	}
	kclOpts := []kgo.Opt{}
	if cfg.SASL.Enabled {
		kopts = append(kopts, kfake.EnableSASL(), kfake.Superuser(cfg.SASL.Mechanism, cfg.SASL.Superuser, cfg.SASL.SuperuserPassword))
		auth := scram.Auth{User: cfg.SASL.Superuser, Pass: cfg.SASL.SuperuserPassword}
		mech := auth.AsSha512Mechanism()
		if cfg.SASL.Mechanism == SCRAMSHA256 {
			mech = auth.AsSha256Mechanism()
		}
		kclOpts = append(kclOpts, kgo.SASL(mech))
	}
	if cfg.ACLs {
		kopts = append(kopts, kfake.EnableACLs())
	}
	if opts.DataDir != "" {
		kopts = append(kopts, kfake.DataDir(filepath.Join(opts.DataDir, cfg.ID, "kafka")))
	}
	if c.kf, err = kfake.NewCluster(kopts...); err != nil {
		return nil, fmt.Errorf("localfleet: cluster %q: start kfake: %w", c.id, err)
	}
	c.kfAddrs = c.kf.ListenAddrs()
	// The fleet's own client to its kfake node talks in bursts: idle
	// connections go soon (each costs two descriptors in this process,
	// and a fleet of thousands of clusters lives under one process's
	// limit).
	kclOpts = append(kclOpts, kgo.ConnIdleTimeout(2*time.Second))
	if c.kcl, err = kgo.NewClient(append(kclOpts, kgo.SeedBrokers(c.kfAddrs...))...); err != nil {
		return nil, fmt.Errorf("localfleet: cluster %q: kfake client: %w", c.id, err)
	}
	if err := c.seedTopics(ctx); err != nil {
		return nil, err
	}
	if cfg.KRaft != nil {
		// Controllers instead of ZooKeeper: nothing is registered there.
		c.mu.Lock()
		err := c.newKRaft(time.Now())
		c.mu.Unlock()
		if err != nil {
			return nil, err
		}
	} else if err := c.prepareZooKeeper(); err != nil {
		return nil, err
	}
	for _, b := range c.brokerList() {
		if err := b.proxy.open(); err != nil {
			return nil, err
		}
		conn, err := c.registerBroker(b)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		b.zk, b.state = conn, StateRunning
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.controller = c.pickControllerLocked()
	c.mu.Unlock()
	if err := c.publishController(); err != nil {
		return nil, err
	}
	if err := c.refresh(ctx); err != nil {
		return nil, err
	}
	if err := c.restoreQuotas(ctx); err != nil {
		return nil, err
	}
	c.log.Info().Int("brokers", cfg.Brokers).Strs("bootstrap", c.bootstrap()).Msg("cluster started")
	return c, nil
}

// newBroker is a stopped broker on instanceID, listening on port once it
// starts (0: a free port, kept across restarts).
func (c *cluster) newBroker(id int32, instanceID, rack string, port int) *broker {
	b := &broker{id: id, instanceID: instanceID, rack: rack, state: StateStopped}
	if c.cfg.KRaft != nil {
		// A KRaft broker's version decides the metadata.version levels it
		// supports, so it is known from the start.
		b.version = c.cfg.KRaft.Version
	}
	b.proxy = newProxy(c, id, port)
	b.rt = newRuntime(c.cfg, time.Now())
	return b
}

// defaultRF is default.replication.factor for a cluster of n brokers: 3,
// capped at the broker count of a configured cluster. A cluster that
// starts with no broker (provisioned, provision.go) grows to 3 or more.
func defaultRF(n int) int {
	if n == 0 {
		return defaultReplicationFactor
	}
	return min(defaultReplicationFactor, n)
}

// seedTopics creates the configured topics in kfake unless they exist
// (they do when kfake reloaded its DataDir).
func (c *cluster) seedTopics(ctx context.Context) error {
	adm := kadm.NewClient(c.kcl)
	for _, t := range c.cfg.Topics {
		c.mu.Lock()
		c.planTopicLocked(t.Name, &topicPlan{rf: int(t.ReplicationFactor)})
		c.mu.Unlock()
		// kfake has one node: it stores one replica, the model the rest.
		ctx, cancel := context.WithTimeout(ctx, kfakeCallTimeout)
		resp, err := adm.CreateTopic(ctx, t.Partitions, -1, nil, t.Name)
		cancel()
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("localfleet: cluster %q: seed topic %q: %w", c.id, t.Name, err)
		}
	}
	return nil
}

// refresh asks kfake for every topic and folds the answer into the model,
// so that lifecycle changes act on partitions no client has asked about yet.
func (c *cluster) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, kfakeCallTimeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest() // nil Topics: all topics
	resp, err := req.RequestWith(ctx, c.kcl)
	if err != nil {
		return fmt.Errorf("localfleet: cluster %q: kfake metadata: %w", c.id, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.learnLocked(resp, true)
	}
	return nil
}

// bootstrap is the brokers' addresses; decommissioned brokers left the
// cluster.
func (c *cluster) bootstrap() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.brokers))
	for _, b := range c.brokers {
		if b.state != StateDecommissioned {
			out = append(out, b.proxy.addr())
		}
	}
	return out
}

// close tears the cluster down: proxies, ZooKeeper sessions (the ephemeral
// registrations vanish), the kfake client and kfake. Lifecycle operations
// in flight finish first (each broker's opMu is taken).
func (c *cluster) close() {
	for _, b := range c.brokerList() {
		b.opMu.Lock()
		b.proxy.close()
		c.mu.Lock()
		conn := b.zk
		b.zk = nil
		b.state = StateStopped
		b.gen++
		c.mu.Unlock()
		if conn != nil {
			conn.Close()
		}
		b.opMu.Unlock()
	}
	c.closeKRaft()
	c.mu.Lock()
	c.closed = true
	c.controller = -1
	c.mu.Unlock()
	if c.kcl != nil {
		c.kcl.Close()
	}
	if c.kf != nil {
		c.kf.Close()
	}
}

// kfakeLogger forwards kfake's warnings and errors to zerolog; its info and
// debug output is one line per request and would drown the fleet's logs.
type kfakeLogger struct{ log zerolog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		l.log.Error().Msgf(format, args...)
	case kfake.LogLevelWarn:
		l.log.Warn().Msgf(format, args...)
	default:
		l.log.Trace().Msgf(format, args...)
	}
}
