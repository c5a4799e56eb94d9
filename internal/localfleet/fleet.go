package localfleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// Errors callers can test with errors.Is.
var (
	ErrUnknownCluster = errors.New("unknown cluster")
	ErrUnknownBroker  = errors.New("unknown broker")
	ErrClosed         = errors.New("fleet closed")
	// ErrRunningMismatch: a start asked a running broker for another
	// version or inter.broker.protocol.version, which only a start applies.
	ErrRunningMismatch = errors.New("refusing to change a running broker's version or protocol")
)

// Static AWS settings of the local fleet. The SSM endpoint checks that a
// request is signed with this access key id but does not verify signatures.
const (
	AWSRegion          = "us-east-1"
	AWSAccessKeyID     = "kfleet-local"
	AWSSecretAccessKey = "kfleet-local"
)

// Options are the fleet's runtime settings (as opposed to Config, which
// describes the clusters).
type Options struct {
	// ZooKeeper is the ensemble's connect string, e.g. "127.0.0.1:2181".
	// Each cluster registers under the chroot /kfleet/<cluster-id>.
	ZooKeeper string
	// DataDir, when set, persists each cluster's Kafka data under
	// DataDir/<cluster-id>/kafka, so it survives fleet restarts.
	DataDir string
	// HTTPAddr is where the SSM subset and the fleet API are served.
	// Default "127.0.0.1:0".
	HTTPAddr string
	Logger   zerolog.Logger
	// Now is the fleet clock for host models that span hours (disk growth,
	// the 6-hour volume modification rule), so tests can move time instead
	// of waiting. Default time.Now.
	Now func() time.Time

	// hosts is set by Start for startCluster: the hosts model exists before
	// any broker serves, so each broker reports its volume, its host's
	// state and quotas from the start.
	hosts *hosts
	// config is the fleet's configuration, defaults applied.
	config Config
}

// Fleet is a running local fleet.
type Fleet struct {
	log   zerolog.Logger
	opts  Options   // what clusters created later start with (provision.go)
	ec2   EC2Config // defaults applied
	ssm   *ssmService
	hosts *hosts // instances and volumes (hosts.go)
	// sm serves Secrets Manager (secretsmanager.go).
	sm *secretsManager

	// mu guards the clusters (provisioning adds some while the fleet
	// runs) and the records kept for clusters it does not run yet. Lock
	// order: mu, then a cluster's mu, then hosts.mu.
	mu       sync.RWMutex
	clusters map[string]*cluster
	order    []string // cluster ids: the configuration's, then in creation order
	pending  map[string]records
	ec2Audit []Event
	// provMu serializes what makes a host a broker (configuring a host,
	// starting Kafka on a host it did not run on, creating a cluster), so
	// two hosts never become the same broker at once.
	provMu sync.Mutex

	httpLn  net.Listener
	httpSrv *http.Server

	life      context.Context // canceled by Close
	stopLife  context.CancelFunc
	wg        sync.WaitGroup // background work: catch-ups, SSM commands, HTTP
	closeOnce sync.Once
	closeErr  error
}

// instanceRef names a broker: the one an instance is configured for.
type instanceRef struct {
	cluster string
	broker  int32
}

// Start brings up every cluster of cfg against the ZooKeeper ensemble in
// opts and serves the HTTP endpoints. Close must be called to release
// ports, sessions and goroutines.
func Start(ctx context.Context, cfg Config, opts Options) (_ *Fleet, err error) {
	if opts.ZooKeeper == "" {
		return nil, errors.New("localfleet: Options.ZooKeeper is required")
	}
	f, err := newFleet(cfg, opts)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
		}
	}()

	for _, cc := range f.opts.config.Clusters {
		c, err := startCluster(ctx, f.life, &f.wg, cc, f.opts)
		if err != nil {
			return nil, err
		}
		f.mu.Lock()
		f.clusters[cc.ID] = c
		f.order = append(f.order, cc.ID)
		f.mu.Unlock()
	}

	if f.httpLn, err = net.Listen("tcp", f.opts.HTTPAddr); err != nil {
		return nil, fmt.Errorf("localfleet: listen %s: %w", f.opts.HTTPAddr, err)
	}
	f.httpSrv = &http.Server{Handler: f.handler(), ReadHeaderTimeout: 10 * time.Second}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		if err := f.httpSrv.Serve(f.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			f.log.Error().Err(err).Msg("http server")
		}
	}()
	f.log.Info().Str("http", f.baseURL()).Int("clusters", len(f.opts.config.Clusters)).Msg("local fleet started")
	return f, nil
}

// newFleet builds a fleet that runs no cluster and serves nothing yet:
// its hosts model (the configuration's hosts included), SSM and records.
func newFleet(cfg Config, opts Options) (*Fleet, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("localfleet: invalid config: %w", err)
	}
	if opts.HTTPAddr == "" {
		opts.HTTPAddr = "127.0.0.1:0"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	life, stopLife := context.WithCancel(context.Background())
	f := &Fleet{
		log:      opts.Logger.With().Str("component", "localfleet").Logger(),
		ec2:      cfg.EC2,
		clusters: map[string]*cluster{},
		pending:  map[string]records{},
		life:     life,
		stopLife: stopLife,
	}
	opts.Logger = f.log
	f.ssm = newSSMService(f)
	f.sm = newSecretsManager(f.log, opts.Now)
	f.hosts = newHosts(cfg, opts.Now)
	f.hosts.setConfiguredZooKeeper(opts.ZooKeeper)
	opts.hosts = f.hosts
	opts.config = cfg
	f.opts = opts
	return f, nil
}

// Close stops everything: the HTTP server, background work, every broker
// (ZooKeeper sessions close, so registrations vanish; proxies close) and
// kfake. Safe to call more than once.
func (f *Fleet) Close() error {
	f.closeOnce.Do(func() {
		f.stopLife()
		var errs []error
		if f.httpSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := f.httpSrv.Shutdown(ctx); err != nil {
				errs = append(errs, fmt.Errorf("localfleet: http shutdown: %w", err))
			}
			cancel()
		}
		for _, c := range f.clusterList() {
			c.close()
		}
		f.wg.Wait()
		f.closeErr = errors.Join(errs...)
		f.log.Info().Msg("local fleet closed")
	})
	return f.closeErr
}

func (f *Fleet) cluster(id string) (*cluster, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if c, ok := f.clusters[id]; ok {
		return c, nil
	}
	return nil, fmt.Errorf("localfleet: cluster %q: %w", id, ErrUnknownCluster)
}

// clusterList is every cluster the fleet runs, in order.
func (f *Fleet) clusterList() []*cluster {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]*cluster, 0, len(f.order))
	for _, id := range f.order {
		out = append(out, f.clusters[id])
	}
	return out
}

func (f *Fleet) broker(cluster string, id int32) (*cluster, *broker, error) {
	c, err := f.cluster(cluster)
	if err != nil {
		return nil, nil, err
	}
	b, err := c.broker(id)
	if err != nil {
		return nil, nil, err
	}
	return c, b, nil
}

// StopBroker performs a controlled shutdown of a broker and returns once it
// is stopped. who is recorded in the audit. Stopping a stopped broker is a
// no-op.
func (f *Fleet) StopBroker(ctx context.Context, cluster string, broker int32, who string) error {
	c, b, err := f.broker(cluster, broker)
	if err != nil {
		return err
	}
	return c.stop(ctx, b, who)
}

// StartBroker starts a broker and returns once it is registered; it rejoins
// the ISRs after the catch-up time, in the background. who is recorded in
// the audit. Starting a running broker is a no-op.
func (f *Fleet) StartBroker(ctx context.Context, cluster string, broker int32, who string) error {
	return f.startBroker(ctx, cluster, broker, who, "", "")
}

// startBroker is kfleet-StartBroker: version and ibp (the
// inter.broker.protocol.version), when not empty, are what the broker
// starts with.
func (f *Fleet) startBroker(ctx context.Context, cluster string, broker int32, who, version, ibp string) error {
	c, b, err := f.broker(cluster, broker)
	if err != nil {
		return err
	}
	return c.start(ctx, b, who, version, ibp, "")
}

// Status returns the cluster's brokers (state, Kafka version,
// inter.broker.protocol.version) and controller, as GET
// /v1/clusters/{id}/brokers answers.
func (f *Fleet) Status(cluster string) (ClusterStatus, error) {
	if _, err := f.cluster(cluster); err != nil {
		return ClusterStatus{}, err
	}
	return f.clusterStatus(cluster), nil
}

// BrokerState returns a broker's lifecycle state.
func (f *Fleet) BrokerState(cluster string, broker int32) (State, error) {
	c, b, err := f.broker(cluster, broker)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return b.state, nil
}

// Controller returns the cluster's controller broker id, or -1 when no
// broker is running.
func (f *Fleet) Controller(cluster string) (int32, error) {
	c, err := f.cluster(cluster)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.controller, nil
}

// Endpoints says how to reach the fleet; it is JSON-serializable so that
// `starter dev` can hand it to other processes.
type Endpoints struct {
	AWS AWSEndpoint `json:"aws"`
	API string      `json:"api"` // base URL of the fleet HTTP API
	// ZooKeeper is the ensemble every cluster registers in, without
	// chroot: what a provisioned broker's zookeeper.connect names, with
	// its cluster's chroot /kfleet/<id>.
	ZooKeeper string                      `json:"zookeeper"`
	Clusters  map[string]ClusterEndpoints `json:"clusters"`
}

// AWSEndpoint is what an aws-sdk-go-v2 client needs to reach the fleet.
type AWSEndpoint struct {
	Endpoint        string `json:"endpoint"` // BaseEndpoint
	Region          string `json:"region"`
	AccessKeyID     string `json:"accessKeyId"`
	SecretAccessKey string `json:"secretAccessKey"`
}

// ClusterEndpoints says how to reach one cluster.
type ClusterEndpoints struct {
	Bootstrap []string         `json:"bootstrap"` // broker proxy addresses
	ZooKeeper string           `json:"zookeeper"` // connect string with chroot
	Brokers   []BrokerEndpoint `json:"brokers"`
	// SASL is set when the cluster requires SASL/SCRAM; the superuser's
	// password is in the fleet configuration, never here.
	SASL *SASLEndpoint `json:"sasl,omitempty"`
	ACLs bool          `json:"acls,omitempty"` // ACLs are enforced
	// Controllers are a KRaft cluster's controller listeners (ZooKeeper
	// is then empty: the cluster has none).
	Controllers []ControllerEndpoint `json:"controllers,omitempty"`
}

// ControllerEndpoint is one KRaft controller's identity and address.
type ControllerEndpoint struct {
	ID         int32  `json:"id"`
	InstanceID string `json:"instanceId"` // its host (kraft_hosts.go)
	Address    string `json:"address"`
}

// SASLEndpoint says how a cluster authenticates clients.
type SASLEndpoint struct {
	Mechanism string `json:"mechanism"` // SCRAM-SHA-256 or SCRAM-SHA-512
	Superuser string `json:"superuser"`
}

// BrokerEndpoint is one broker's identity and address.
type BrokerEndpoint struct {
	ID         int32  `json:"id"`
	InstanceID string `json:"instanceId"`
	Address    string `json:"address"`
	Rack       string `json:"rack,omitempty"`
	// MetricsURL serves the broker's Prometheus exposition (metrics.go).
	MetricsURL string `json:"metricsUrl"`
}

func (f *Fleet) baseURL() string {
	if f.httpLn == nil {
		return ""
	}
	return "http://" + f.httpLn.Addr().String()
}

// Endpoints returns the fleet's addresses.
func (f *Fleet) Endpoints() Endpoints {
	e := Endpoints{
		AWS: AWSEndpoint{
			Endpoint:        f.baseURL(),
			Region:          AWSRegion,
			AccessKeyID:     AWSAccessKeyID,
			SecretAccessKey: AWSSecretAccessKey,
		},
		API:       f.baseURL(),
		ZooKeeper: f.opts.ZooKeeper,
		Clusters:  map[string]ClusterEndpoints{},
	}
	for _, c := range f.clusterList() {
		ce := ClusterEndpoints{Bootstrap: c.bootstrap(), ZooKeeper: c.zkConnect + c.zkRoot, ACLs: c.cfg.ACLs}
		c.controllerEndpoints(&ce) // controller_provision.go
		if c.cfg.SASL.Enabled {
			ce.SASL = &SASLEndpoint{Mechanism: c.cfg.SASL.Mechanism, Superuser: c.cfg.SASL.Superuser}
		}
		c.mu.Lock()
		for _, b := range c.brokers {
			if b.state == StateDecommissioned {
				continue // it left the cluster (decommission.go)
			}
			ce.Brokers = append(ce.Brokers, BrokerEndpoint{ID: b.id, InstanceID: b.instanceID, Address: b.proxy.addr(), Rack: b.rack,
				MetricsURL: f.MetricsURL(c.id, b.id)})
		}
		c.mu.Unlock()
		e.Clusters[c.id] = ce
	}
	return e
}
