package localfleet

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kfleet/kfleet/internal/cloud"
)

// How a launched instance becomes a broker, as on a real host:
//
//  1. kfleet-ConfigureBroker writes /etc/kafka/server.properties (broker.id,
//     broker.rack, zookeeper.connect with the cluster's chroot, listeners,
//     log.dirs on the attached data volume, the managed cluster's safe
//     defaults) and mounts the data volume, formatting it when blank.
//  2. kfleet-StartBroker starts Kafka there. The broker joins its cluster
//     as a real broker: it listens (the fleet gives it a port of its own
//     on 127.0.0.1), registers in ZooKeeper under /kfleet/<cluster>, and
//     Kafka clients reach it. A broker id the cluster has is taken over
//     by the new host (host replacement; refused while the id still runs
//     elsewhere, as ZooKeeper refuses a second registration); an id it
//     has not is added; a cluster the fleet does not run is created with
//     it.
//
// The data volume decides the catch-up: the broker's own volume, moved
// over from its old host, keeps its logs (only what was written while it
// was out of the ISR is copied, and an unclean end is recovered first); a
// blank volume copies every replica it holds; a volume holding another
// broker's data is refused, as Kafka refuses a mismatched meta.properties.

// Errors of provisioning, for errors.Is.
var (
	// ErrNotConfigured: Kafka was started on a host kfleet-ConfigureBroker
	// has not configured.
	ErrNotConfigured = errors.New("kafka not configured on this host")
	// ErrBrokerRegistered: the broker id still runs on another host.
	ErrBrokerRegistered = errors.New("broker id already registered by another host")
	// ErrForeignVolume: the data volume holds another broker's data.
	ErrForeignVolume = errors.New("data volume holds another broker's data")
)

// brokerConf is a host's Kafka configuration: what kfleet-ConfigureBroker
// writes to server.properties.
type brokerConf struct {
	cluster    string
	broker     int32
	rack       string
	zkConnect  string // servers and chroot, as written; "" for a KRaft broker
	dataVolume string // the EBS volume log.dirs is on
	// A KRaft broker's quorum (controller.quorum.voters) and the Kafka
	// cluster id its log directory is formatted with; "" for a
	// ZooKeeper broker.
	voters, kafkaClusterID string
}

// Safe defaults of a managed cluster (OPERATIONS.md), written by
// kfleet-ConfigureBroker and applied to the clusters the fleet creates.
const (
	provisionedRF            = 3
	provisionedMinISR        = 2
	provisionedNumPartitions = 8
)

// properties renders server.properties as kfleet-ConfigureBroker writes
// it on a host with privateIP.
func (c brokerConf) properties(privateIP string) string {
	identity := []string{"broker.id=" + strconv.Itoa(int(c.broker)), "broker.rack=" + c.rack, "zookeeper.connect=" + c.zkConnect}
	if c.zkConnect == "" {
		identity = []string{"process.roles=broker", "node.id=" + strconv.Itoa(int(c.broker)), "broker.rack=" + c.rack,
			"controller.quorum.voters=" + c.voters, "controller.listener.names=CONTROLLER",
			"listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"}
	}
	lines := append(identity,
		"listeners=PLAINTEXT://0.0.0.0:9092",
		"advertised.listeners=PLAINTEXT://"+privateIP+":9092",
		"log.dirs="+logDir,
		"default.replication.factor="+strconv.Itoa(provisionedRF),
		"min.insync.replicas="+strconv.Itoa(provisionedMinISR),
		"num.partitions="+strconv.Itoa(provisionedNumPartitions),
		"unclean.leader.election.enable=false",
		"auto.create.topics.enable=false",
	)
	return strings.Join(lines, "\n") + "\n"
}

// zkConnectPattern is a ZooKeeper connect string: host:port pairs and an
// optional chroot, as kfleet-ConfigureBroker's allowedPattern has it.
var zkConnectPattern = regexp.MustCompile(`^[A-Za-z0-9.-]+:[0-9]{1,5}(,[A-Za-z0-9.-]+:[0-9]{1,5})*(/[A-Za-z0-9._/-]*)?$`)

// configureBrokerPatterns are kfleet-ConfigureBroker's allowedPattern
// values; every parameter but Rack is required.
var configureBrokerPatterns = map[string]*regexp.Regexp{
	cloud.ParamClusterID:        clusterIDPattern,
	cloud.ParamBrokerID:         regexp.MustCompile(`^[0-9]{1,9}$`),
	cloud.ParamRack:             regexp.MustCompile(`^([a-z0-9-]{1,64})?$`),
	cloud.ParamZooKeeperConnect: regexp.MustCompile(`^(` + strings.Trim(zkConnectPattern.String(), "^$") + `)?$`),
	cloud.ParamDataVolumeID:     volumeIDPattern,
	cloud.ParamQuorumVoters:     regexp.MustCompile(`^(` + strings.Trim(quorumVotersPattern.String(), "^$") + `)?$`),
	cloud.ParamKafkaClusterID:   regexp.MustCompile(`^(` + strings.Trim(kafkaClusterIDPattern.String(), "^$") + `)?$`),
}

// setConfiguredZooKeeper writes the fleet's ensemble and each cluster's
// chroot into the configuration's hosts' server.properties.
func (h *hosts) setConfiguredZooKeeper(zk string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, in := range h.instances {
		if in.conf != nil && in.conf.zkConnect == "" && in.conf.voters == "" {
			in.conf.zkConnect = zk + cloud.ZooKeeperChroot(in.conf.cluster)
			in.conf.rack = cmp.Or(in.conf.rack, in.az)
		}
	}
}

// configureBroker runs kfleet-ConfigureBroker on an instance and returns
// what it prints.
func (f *Fleet) configureBroker(instanceID string, param func(string) string, who string) (string, error) {
	f.provMu.Lock()
	defer f.provMu.Unlock()
	id, _ := strconv.ParseInt(param(cloud.ParamBrokerID), 10, 32) // validated at SendCommand
	conf := brokerConf{
		cluster: param(cloud.ParamClusterID), broker: int32(id), rack: param(cloud.ParamRack),
		zkConnect: param(cloud.ParamZooKeeperConnect), dataVolume: param(cloud.ParamDataVolumeID),
		voters: param(cloud.ParamQuorumVoters), kafkaClusterID: param(cloud.ParamKafkaClusterID),
	}
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("instance %s: configure cluster %q broker %d: "+format, append([]any{instanceID, conf.cluster, conf.broker}, args...)...)
	}
	switch {
	case conf.zkConnect == "" && (conf.voters == "" || conf.kafkaClusterID == ""):
		return fail("a broker without %s is a KRaft broker: %s and %s are required", cloud.ParamZooKeeperConnect, cloud.ParamQuorumVoters, cloud.ParamKafkaClusterID)
	case conf.zkConnect != "" && (conf.voters != "" || conf.kafkaClusterID != ""):
		return fail("a ZooKeeper broker takes no %s nor %s (the migration sets the quorum with %s)", cloud.ParamQuorumVoters, cloud.ParamKafkaClusterID, cloud.DocStartBroker)
	case conf.zkConnect != "":
		if i := strings.IndexByte(conf.zkConnect, '/'); i < 0 || conf.zkConnect[i:] != cloud.ZooKeeperChroot(conf.cluster) {
			return fail("zookeeper.connect %q must end with the cluster's chroot %s", conf.zkConnect, cloud.ZooKeeperChroot(conf.cluster))
		}
	default:
		if _, err := voterIDs(conf.voters); err != nil {
			return fail("%v", err)
		}
	}
	in, err := f.hosts.instance(instanceID)
	if err != nil {
		return "", err
	}
	switch role, _ := tagValue(in.tags, cloud.TagRole); role {
	case cloud.RoleZooKeeper:
		return fail("the instance is a ZooKeeper node (%s=%s): Kafka is not installed there", cloud.TagRole, role)
	case cloud.RoleController:
		return fail("the instance is a KRaft controller's host (%s=%s): configure it with %s", cloud.TagRole, role, cloud.DocConfigureController)
	}
	conf.rack = cmp.Or(conf.rack, in.az)
	vol, err := f.hosts.volume(conf.dataVolume)
	switch {
	case err != nil:
		return fail("volume %s does not exist", conf.dataVolume)
	case vol.att == nil || vol.att.instanceID != instanceID || vol.att.state != AttachmentAttached:
		return fail("volume %s is not attached to this instance (%s): nothing to mount at %s", vol.id, attachmentSummary(vol), DataMountpoint)
	case vol.owner.cluster != "" && vol.owner != (dataRef{conf.cluster, conf.broker}):
		return fail("volume %s holds %s (%s/meta.properties): %w", vol.id, vol.owner, logDir, ErrForeignVolume)
	}
	if c, b, ok := f.hostedBroker(instanceID); ok && *in.conf != conf {
		if in.conf.cluster != conf.cluster || in.conf.broker != conf.broker {
			return fail("the host is broker %d of cluster %q: a broker's host is replaced, never reused for another", b.id, c.id)
		}
		c.mu.Lock()
		up := processUp(b.state)
		c.mu.Unlock()
		if up {
			return fail("refusing to rewrite server.properties under a running broker (broker %d of cluster %q runs here)", b.id, c.id)
		}
	}
	props := conf.properties(in.privateIP)
	if in.conf != nil && *in.conf == conf {
		return props + "server.properties unchanged\n", nil
	}
	f.hosts.setConf(instanceID, conf)
	f.record(Event{Cluster: conf.cluster, Broker: conf.broker, Kind: EventBrokerConfigured, Who: who, Instance: instanceID, Volume: vol.id,
		Detail: fmt.Sprintf("instance %s configured as broker %d of cluster %q (rack %s, %s on volume %s%s)",
			instanceID, conf.broker, conf.cluster, conf.rack, logDir, vol.id, cond(vol.owner.cluster == "", ", formatted", ""))})
	return props + "server.properties written; " + DataMountpoint + " mounted from " + vol.id + "\n", nil
}

func attachmentSummary(v volumeView) string {
	if v.att == nil {
		return v.state
	}
	return fmt.Sprintf("%s to %s", v.att.state, v.att.instanceID)
}

func (h *hosts) setConf(instanceID string, conf brokerConf) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if in, ok := h.byID[instanceID]; ok {
		in.conf = &conf
	}
}

// claim records that a volume holds a broker's log directory (Kafka writes
// meta.properties at its first start on it).
func (h *hosts) claim(volumeID string, owner dataRef) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if v, ok := h.byVolume[volumeID]; ok {
		h.rerateLocked(v, h.now())
		v.owner = owner
		h.rerateLocked(v, h.now()) // its cluster's quotas apply from now on
	}
}

// startParams are kfleet-StartBroker's parameters.
type startParams struct {
	version, ibp string
	mode, voters string // the metadata mode and quorum (migration.go)
}

// startOnHost runs kfleet-StartBroker on an instance: it starts the
// broker that runs there, or makes the host a broker (join).
func (f *Fleet) startOnHost(ctx context.Context, instanceID, who string, p startParams) error {
	if c, b, ok := f.hostedBroker(instanceID); ok {
		if err := c.setBrokerMode(b, p.mode, p.voters); err != nil {
			return err
		}
		return c.start(ctx, b, who, p.version, p.ibp, instanceID)
	}
	return f.join(ctx, instanceID, who, p)
}

// join starts Kafka on a configured host that is not its broker's current
// host: the broker moves to it, or is added, or its cluster is created.
func (f *Fleet) join(ctx context.Context, instanceID, who string, p startParams) error {
	c, b, err := f.adoptHost(ctx, instanceID, who)
	if err != nil {
		return err
	}
	if err := c.setBrokerMode(b, p.mode, p.voters); err != nil {
		return err
	}
	// Kafka starts outside provMu: the brokers of a cluster being created
	// start together, as on real hosts (start refuses a host its broker
	// has left meanwhile).
	return c.start(ctx, b, who, p.version, p.ibp, instanceID)
}

// adoptHost makes a configured host its broker's (join), under provMu.
func (f *Fleet) adoptHost(ctx context.Context, instanceID, who string) (*cluster, *broker, error) {
	f.provMu.Lock()
	defer f.provMu.Unlock()
	in, err := f.hosts.instance(instanceID)
	if err != nil {
		return nil, nil, err
	}
	if in.conf == nil {
		return nil, nil, fmt.Errorf("instance %s: %w: no /etc/kafka/server.properties (run %s first)", instanceID, ErrNotConfigured, cloud.DocConfigureBroker)
	}
	conf := *in.conf
	if in.state != InstanceRunning {
		return nil, nil, fmt.Errorf("instance %s: %w: it is %s", instanceID, ErrInstanceNotRunning, in.state)
	}
	vol, err := f.hosts.dataVolumeOf(instanceID)
	if err != nil {
		return nil, nil, fmt.Errorf("instance %s: cluster %q broker %d: log.dirs %s is not mounted (volume %s): %w",
			instanceID, conf.cluster, conf.broker, logDir, conf.dataVolume, ErrNoDataVolume)
	}
	ref := dataRef{cluster: conf.cluster, broker: conf.broker}
	if vol.owner.cluster != "" && vol.owner != ref {
		return nil, nil, fmt.Errorf("instance %s: cluster %q broker %d: volume %s holds %s: %w",
			instanceID, conf.cluster, conf.broker, vol.id, vol.owner, ErrForeignVolume)
	}
	c, err := f.clusterFor(ctx, conf, who)
	if err != nil {
		return nil, nil, err
	}
	b, ev, err := c.adopt(conf, instanceID, vol)
	if err != nil {
		return nil, nil, err
	}
	f.hosts.claim(vol.id, ref)
	ev.Who = who
	f.record(ev)
	return c, b, nil
}

// clusterFor is the cluster a host is configured for; a cluster the fleet
// does not run is created, with no broker yet, the managed cluster's
// defaults and the fleet's ClusterTiming. What was recorded for it
// meanwhile (its resources' audit and violations) becomes its own.
func (f *Fleet) clusterFor(ctx context.Context, conf brokerConf, who string) (*cluster, error) {
	if conf.voters != "" {
		return f.kraftClusterFor(conf) // controller_provision.go
	}
	if c, err := f.cluster(conf.cluster); err == nil {
		if !f.gone(c) {
			if c.cfg.KRaft != nil {
				return nil, fmt.Errorf("localfleet: cluster %q: broker %d: the cluster is a KRaft cluster: a broker with zookeeper.connect cannot join it", c.id, conf.broker)
			}
			return c, nil
		}
		f.retire(c, who) // retire.go
	}
	c, err := f.startProvisionedCluster(ctx, conf.cluster, nil)
	if err != nil {
		return nil, fmt.Errorf("localfleet: create cluster %q for its first broker: %w", conf.cluster, err)
	}
	f.record(Event{Cluster: c.id, Kind: EventClusterCreated, Who: who,
		Detail: fmt.Sprintf("cluster %q created for its first broker (%d): ZooKeeper chroot %s, min.insync.replicas %d, default.replication.factor %d",
			c.id, conf.broker, c.zkRoot, provisionedMinISR, provisionedRF)})
	return c, nil
}

// adopt makes instanceID the host of the broker conf names: a new broker
// of c, or an existing one that moves over (refused while its process
// still runs elsewhere). vol is the host's data volume: the broker's own
// keeps its data; a blank one means copying every replica it holds again.
// ev is the audit event to record.
func (c *cluster) adopt(conf brokerConf, instanceID string, vol volumeView) (*broker, Event, error) {
	c.mu.Lock()
	b := c.brokerByID(conf.broker)
	c.mu.Unlock()
	if b != nil {
		b.opMu.Lock() // no stop, start or crash of the broker meanwhile
		defer b.opMu.Unlock()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, Event{}, fmt.Errorf("localfleet: cluster %q: %w", c.id, ErrClosed)
	}
	ev := Event{Time: time.Now(), Cluster: c.id, Broker: conf.broker, Instance: instanceID, Volume: vol.id}
	switch {
	case b == nil:
		b = c.newBroker(conf.broker, instanceID, conf.rack, 0)
		brokers := append(slices.Clone(c.brokers), b)
		slices.SortFunc(brokers, func(x, y *broker) int { return int(x.id) - int(y.id) })
		c.brokers = brokers
		ev.Kind = EventBrokerAdded
		ev.Detail = fmt.Sprintf("broker %d added on instance %s (rack %s, volume %s)", b.id, instanceID, conf.rack, vol.id)
	case b.state == StateDecommissioned:
		// The id left the cluster (decommission.go): a broker joining
		// under it is a new broker, as in Kafka.
		c.rejoinLocked(b, instanceID, conf.rack)
		ev.Kind = EventBrokerAdded
		ev.Detail = fmt.Sprintf("broker %d added on instance %s (rack %s, volume %s); the id was decommissioned before", b.id, instanceID, conf.rack, vol.id)
	default:
		if processUp(b.state) {
			return nil, Event{}, fmt.Errorf("localfleet: cluster %q: broker %d: instance %s: %w: it is %s on instance %s",
				c.id, b.id, instanceID, ErrBrokerRegistered, b.state, b.instanceID)
		}
		old := b.instanceID
		b.instanceID, b.rack = instanceID, conf.rack
		b.rt.newHost()
		ev.Kind = EventHostReplaced
		ev.Detail = fmt.Sprintf("broker %d moves from instance %s to instance %s (rack %s)", b.id, old, instanceID, conf.rack)
	}
	if vol.owner == (dataRef{cluster: c.id, broker: b.id}) {
		ev.Detail += fmt.Sprintf("; volume %s keeps its data: %d bytes written meanwhile to catch up", vol.id, b.behindBytes)
		return b, ev, nil
	}
	// A blank log directory: nothing to recover, everything to copy.
	full := c.hostedBytesLocked(b.id)
	b.behindBytes = max(b.behindBytes, full)
	b.copyAllLocked(c.partitionsLocked())
	c.restartCopiesLocked(b.id)
	b.rt.unclean = false
	c.leaveISRLocked(b.id)
	ev.Detail += fmt.Sprintf("; blank volume %s: full catch-up of %d bytes", vol.id, b.behindBytes)
	return b, ev, nil
}

// hostedBytesLocked is the size of every replica broker id holds: what a
// blank log directory must copy. c.mu must be held.
func (c *cluster) hostedBytesLocked(id int32) int64 {
	var n int64
	for _, p := range c.partitionsLocked() {
		if slices.Contains(p.replicas, id) {
			n += p.bytes
		}
	}
	return n
}

// newHost resets what belongs to the host rather than the broker: a new
// instance has the kernel's default limits and an empty journal.
func (r *runtime) newHost() {
	r.maxMapCount, r.fileMax, r.nofile = defaultMaxMapCount, defaultFileMax, defaultNofile
	r.log = logRing{lines: make([]string, 0, 64)}
}

// idleHostOutput answers the Kafka documents on a host where no broker
// runs (not configured yet, or its broker moved away): Kafka is stopped
// there, its journal is empty and the host has the kernel's defaults.
// Limits and the filesystem are changed only where a broker runs.
func (f *Fleet) idleHostOutput(instanceID, document string) (string, error) {
	switch document {
	case cloud.DocStopBroker:
		return "kafka already stopped\n", nil
	case cloud.DocBrokerStatus:
		return string(StateStopped) + "\n", nil
	case cloud.DocTailLog:
		return "", nil
	case cloud.DocHostLimits:
		return fmt.Sprintf("%s=%d\n%s=%d\n%s=%d\nsegments=0\nmaps=0\nopen_files=0\n",
			LimitMaxMapCount, defaultMaxMapCount, LimitFileMax, int64(defaultFileMax), LimitNofile, defaultNofile), nil
	}
	return "", fmt.Errorf("instance %s: %s: no broker runs on this host (the local fleet changes limits and filesystems only where one does)",
		instanceID, document)
}

// startProvisionedCluster starts a cluster of no broker yet with the
// managed cluster's safe defaults (a ZooKeeper one, or a KRaft one with
// kraft), for the first host configured for it, and takes over what the
// fleet audited of it before it existed (its pending hosts' events).
func (f *Fleet) startProvisionedCluster(ctx context.Context, id string, kraft *KRaftConfig) (*cluster, error) {
	cc := Config{Clusters: []ClusterConfig{{ID: id, Topics: []TopicConfig{}, Timing: f.ec2.ClusterTiming}}}.withDefaults().Clusters[0]
	cc.Brokers, cc.MinInsyncReplicas, cc.KRaft = 0, provisionedMinISR, kraft
	c, err := startCluster(ctx, f.life, &f.wg, cc, f.opts)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.pending[id]
	delete(f.pending, id)
	c.audit, c.violations = p.audit, p.violations
	f.clusters[c.id] = c
	f.order = append(f.order, c.id)
	return c, nil
}
