package localfleet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/localfleet/kraft"
)

// How a launched host becomes a KRaft controller, as on a real host:
//
//  1. kfleet-ConfigureController (on a host tagged kfleet:role=controller)
//     writes server.properties (process.roles=controller, node.id, the
//     static quorum, the CONTROLLER listener; with a ZooKeeperConnect the
//     migration flag) and formats the metadata log directory with the
//     Kafka cluster id and metadata.version. It prints the controller's
//     address: the fleet gives each controller host a port of its own on
//     127.0.0.1, kept for the host's life.
//  2. kfleet-StartBroker starts the controller there. Three outcomes:
//     (a) a cluster the fleet does not run: a new KRaft cluster, whose
//     quorum forms (a leader is elected) once a majority of the voters
//     runs; brokers configured with the quorum then register with it;
//     (b) a node id the cluster's quorum has, on a new host: the host
//     takes the id over (refused while it still runs on its old host)
//     with an empty metadata log, which it copies from the leader
//     (DescribeQuorum shows it lagging until it has caught up);
//     (c) a ZooKeeper cluster the fleet runs, with a ZooKeeperConnect to
//     its chroot: a migration controller (KIP-866 phase 1, migration.go).
//     The Kafka cluster id must be the cluster's (a ZooKeeper cluster's
//     /cluster/id), else the start is refused, as Kafka refuses it with
//     INCONSISTENT_CLUSTER_ID.

// Audited events of controller provisioning (Broker is the node id).
const (
	// EventControllerConfigured: kfleet-ConfigureController wrote a
	// controller host's server.properties.
	EventControllerConfigured EventKind = "controller-configured"
	// EventControllerAdded: a provisioned controller started on its
	// first host.
	EventControllerAdded EventKind = "controller-added"
	// EventControllerHostReplaced: a controller started on another host
	// than its last, with an empty metadata log to copy.
	EventControllerHostReplaced EventKind = "controller-host-replaced"
	// EventKRaftClusterCreated: a KRaft cluster created for its first
	// provisioned controller.
	EventKRaftClusterCreated EventKind = "kraft-cluster-created"
)

// ErrInconsistentClusterID: a node formatted for another Kafka cluster
// id than the cluster's (Kafka's INCONSISTENT_CLUSTER_ID).
var ErrInconsistentClusterID = errors.New("INCONSISTENT_CLUSTER_ID")

// controllerConf is a controller host's configuration: what
// kfleet-ConfigureController writes.
type controllerConf struct {
	cluster         string
	node            int32
	rack            string
	voters          string // controller.quorum.voters, as written
	kafkaClusterID  string
	metadataVersion string
	zkConnect       string // a migration controller's; "" for a KRaft-only one
	// port is the host's CONTROLLER listener port (the fleet's stand-in
	// for <private ip>:9093).
	port int
}

// provisionedQuorum is a quorum formed by provisioned controllers.
type provisionedQuorum struct {
	ids       []int32
	clusterID string
}

var (
	quorumVotersPattern   = regexp.MustCompile(`^[0-9]{1,9}@[A-Za-z0-9.-]+:[0-9]{1,5}(,[0-9]{1,9}@[A-Za-z0-9.-]+:[0-9]{1,5}){0,8}$`)
	kafkaClusterIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)
)

// configureControllerPatterns are kfleet-ConfigureController's
// allowedPattern values.
var configureControllerPatterns = map[string]*regexp.Regexp{
	cloud.ParamClusterID:        clusterIDPattern,
	cloud.ParamNodeID:           regexp.MustCompile(`^[0-9]{1,9}$`),
	cloud.ParamRack:             regexp.MustCompile(`^([a-z0-9-]{1,64})?$`),
	cloud.ParamQuorumVoters:     quorumVotersPattern,
	cloud.ParamKafkaClusterID:   kafkaClusterIDPattern,
	cloud.ParamMetadataVersion:  regexp.MustCompile(`^[0-9]+\.[0-9]+(-IV[0-9]+)?$`),
	cloud.ParamZooKeeperConnect: regexp.MustCompile(`^(` + strings.Trim(zkConnectPattern.String(), "^$") + `)?$`),
}

// voterIDs parses controller.quorum.voters into its node ids, refusing a
// repeated id.
func voterIDs(voters string) ([]int32, error) {
	var ids []int32
	for _, v := range strings.Split(voters, ",") {
		idPart, _, _ := strings.Cut(v, "@")
		n, err := strconv.ParseInt(idPart, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("controller.quorum.voters %q: bad node id %q", voters, idPart)
		}
		if slices.Contains(ids, int32(n)) {
			return nil, fmt.Errorf("controller.quorum.voters %q lists node %d twice", voters, n)
		}
		ids = append(ids, int32(n))
	}
	slices.Sort(ids)
	return ids, nil
}

// properties renders server.properties as kfleet-ConfigureController
// writes it on a host with privateIP.
func (c controllerConf) properties(privateIP string) string {
	lines := []string{
		"process.roles=controller",
		"node.id=" + strconv.Itoa(int(c.node)),
		"broker.rack=" + c.rack,
		"controller.quorum.voters=" + c.voters,
		"listeners=CONTROLLER://:9093",
		"advertised.listeners=CONTROLLER://" + privateIP + ":9093",
		"controller.listener.names=CONTROLLER",
		"listener.security.protocol.map=CONTROLLER:PLAINTEXT",
		"log.dirs=" + controllerLogDir,
	}
	if c.zkConnect != "" {
		lines = append(lines, "zookeeper.metadata.migration.enable=true", "zookeeper.connect="+c.zkConnect)
	}
	return strings.Join(lines, "\n") + "\n"
}

// controllerLogDir is a controller's metadata log directory.
const controllerLogDir = "/var/lib/kafka/metadata"

// sameConfig is whether c and o configure the same controller (the
// port is the host's, not part of what the document writes).
func (c controllerConf) sameConfig(o controllerConf) bool {
	c.port = o.port
	return c == o
}

// configureController runs kfleet-ConfigureController on an instance and
// returns what it prints.
func (f *Fleet) configureController(instanceID string, param func(string) string, who string) (string, error) {
	f.provMu.Lock()
	defer f.provMu.Unlock()
	node, _ := strconv.ParseInt(param(cloud.ParamNodeID), 10, 32) // validated at SendCommand
	conf := controllerConf{
		cluster: param(cloud.ParamClusterID), node: int32(node), rack: param(cloud.ParamRack),
		voters: param(cloud.ParamQuorumVoters), kafkaClusterID: param(cloud.ParamKafkaClusterID),
		metadataVersion: param(cloud.ParamMetadataVersion), zkConnect: param(cloud.ParamZooKeeperConnect),
	}
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("instance %s: configure cluster %q controller %d: "+format, append([]any{instanceID, conf.cluster, conf.node}, args...)...)
	}
	in, err := f.hosts.instance(instanceID)
	if err != nil {
		return "", err
	}
	if role, _ := tagValue(in.tags, cloud.TagRole); role != cloud.RoleController {
		return fail("the instance is no controller host (%s=%q; a controller's host is tagged %s=%s)", cloud.TagRole, role, cloud.TagRole, cloud.RoleController)
	}
	if c, _ := tagValue(in.tags, cloud.TagCluster); c != conf.cluster {
		return fail("the instance belongs to cluster %q (%s)", c, cloud.TagCluster)
	}
	if n, ok := tagValue(in.tags, cloud.TagNodeID); ok && n != strconv.Itoa(int(conf.node)) {
		return fail("the instance is tagged for node %s (%s)", n, cloud.TagNodeID)
	}
	ids, err := voterIDs(conf.voters)
	if err != nil {
		return fail("%v", err)
	}
	if !slices.Contains(ids, conf.node) {
		return fail("node.id %d is not one of controller.quorum.voters %s", conf.node, conf.voters)
	}
	if _, ok := kraft.MetadataVersionLevel(conf.metadataVersion); !ok {
		return fail("metadata.version %s is not a known release version (3.3-IV3 .. 4.0-IV3)", conf.metadataVersion)
	}
	if conf.zkConnect != "" {
		if i := strings.IndexByte(conf.zkConnect, '/'); i < 0 || conf.zkConnect[i:] != cloud.ZooKeeperChroot(conf.cluster) {
			return fail("zookeeper.connect %q must end with the cluster's chroot %s", conf.zkConnect, cloud.ZooKeeperChroot(conf.cluster))
		}
	}
	conf.rack = cmpOr(conf.rack, in.az)
	prev := f.hosts.controllerConf(instanceID)
	if prev != nil {
		// The metadata log directory is formatted (meta.properties).
		if prev.kafkaClusterID != conf.kafkaClusterID {
			return fail("%s is formatted for cluster id %s, not %s: %w", controllerLogDir, prev.kafkaClusterID, conf.kafkaClusterID, ErrInconsistentClusterID)
		}
		if prev.node != conf.node {
			return fail("%s is formatted for node %d", controllerLogDir, prev.node)
		}
		conf.port = prev.port
		if c, ctl, ok := f.hostedController(instanceID); ok && !prev.sameConfig(conf) {
			c.mu.Lock()
			up := processUp(ctl.state)
			c.mu.Unlock()
			if up {
				return fail("refusing to rewrite server.properties under a running controller (controller %d of cluster %q runs here)", ctl.id, c.id)
			}
		}
	} else if conf.port, err = freePort(); err != nil {
		return fail("%v", err)
	}
	props := conf.properties(in.privateIP)
	addr := "controllerAddress=" + net.JoinHostPort(proxyHost, strconv.Itoa(conf.port)) + "\n"
	if prev != nil && prev.sameConfig(conf) {
		return props + "server.properties unchanged\n" + addr, nil
	}
	f.hosts.setControllerConf(instanceID, conf)
	kind := "KRaft controller"
	if conf.zkConnect != "" {
		kind = "migration controller"
	}
	f.record(Event{Cluster: conf.cluster, Broker: conf.node, Kind: EventControllerConfigured, Who: who, Instance: instanceID,
		Detail: fmt.Sprintf("instance %s configured as %s %d of cluster %q (voters %s, Kafka cluster id %s, metadata.version %s%s)",
			instanceID, kind, conf.node, conf.cluster, conf.voters, conf.kafkaClusterID, conf.metadataVersion, cond(prev == nil, ", formatted", ""))})
	out := props + "server.properties written\n"
	if prev == nil {
		out += fmt.Sprintf("formatted %s for cluster %s (metadata.version %s)\n", controllerLogDir, conf.kafkaClusterID, conf.metadataVersion)
	}
	return out + addr, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// freePort is a port of 127.0.0.1 nothing listens on now, from the range
// nodes' ports come from (listenKeepingPort).
func freePort() (int, error) {
	port := 0
	ln, err := listenKeepingPort(&port)
	if err != nil {
		return 0, fmt.Errorf("pick a controller port: %w", err)
	}
	defer ln.Close()
	return port, nil
}

func (h *hosts) controllerConf(instanceID string) *controllerConf {
	h.mu.Lock()
	defer h.mu.Unlock()
	if in, ok := h.byID[instanceID]; ok && in.ctl != nil {
		c := *in.ctl
		return &c
	}
	return nil
}

func (h *hosts) setControllerConf(instanceID string, conf controllerConf) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if in, ok := h.byID[instanceID]; ok {
		in.ctl = &conf
	}
}

// startControllerHost runs kfleet-StartBroker on a configured controller
// host that runs no controller yet: the controller joins its cluster
// (outcomes (a) to (c) above), then starts.
func (f *Fleet) startControllerHost(ctx context.Context, instanceID, who, version, mode string) (*cluster, *controller, error) {
	c, ctl, err := f.adoptControllerHost(ctx, instanceID, who)
	if err != nil {
		return nil, nil, err
	}
	if err := c.setControllerMode(ctl, mode, who); err != nil {
		return nil, nil, err
	}
	return c, ctl, c.startController(ctx, ctl, who, version)
}

// kraftClusterFor is the KRaft cluster a KRaft broker is configured for:
// its controllers must run already (a KRaft broker registers with them),
// with the broker's quorum and Kafka cluster id.
func (f *Fleet) kraftClusterFor(conf brokerConf) (*cluster, error) {
	fail := func(format string, args ...any) (*cluster, error) {
		return nil, fmt.Errorf("localfleet: cluster %q: broker %d: "+format, append([]any{conf.cluster, conf.broker}, args...)...)
	}
	c, err := f.cluster(conf.cluster)
	if err != nil || f.gone(c) || c.quorum() == nil {
		return fail("no KRaft controller of the cluster runs: start its controllers first: %w", kraft.ErrNoLeader)
	}
	if c.cfg.KRaft == nil {
		return fail("the cluster is a ZooKeeper cluster: its brokers become KRaft brokers through the migration (%s with %s=%s)",
			cloud.DocStartBroker, cloud.ParamMetadataMode, cloud.MetadataModeKRaft)
	}
	ks := c.quorum()
	if ks.clusterID != conf.kafkaClusterID {
		return fail("log.dirs formatted for Kafka cluster id %s, the cluster's is %s: %w", conf.kafkaClusterID, ks.clusterID, ErrInconsistentClusterID)
	}
	ids, _ := voterIDs(conf.voters)
	if have := ks.voterIDs(); !slices.Equal(have, ids) {
		return fail("controller.quorum.voters %s names nodes %v, the cluster's quorum is %v", conf.voters, ids, have)
	}
	return c, nil
}

// adoptControllerHost makes a configured host its controller's, under
// provMu.
func (f *Fleet) adoptControllerHost(ctx context.Context, instanceID, who string) (*cluster, *controller, error) {
	f.provMu.Lock()
	defer f.provMu.Unlock()
	conf := f.hosts.controllerConf(instanceID)
	if conf == nil {
		return nil, nil, fmt.Errorf("instance %s: %w: no /etc/kafka/server.properties (run %s first)", instanceID, ErrNotConfigured, cloud.DocConfigureController)
	}
	if st := f.hosts.instanceState(instanceID); st != InstanceRunning {
		return nil, nil, fmt.Errorf("instance %s: %w: it is %s", instanceID, ErrInstanceNotRunning, st)
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("instance %s: start cluster %q controller %d: "+format, append([]any{instanceID, conf.cluster, conf.node}, args...)...)
	}
	ids, _ := voterIDs(conf.voters) // validated at configuration
	c, err := f.cluster(conf.cluster)
	if err == nil && f.gone(c) {
		c, err = nil, ErrUnknownCluster
	}
	var ks *kraftState
	switch {
	case err != nil && conf.zkConnect != "":
		return nil, nil, fail("the fleet runs no cluster %q: a migration controller needs its ZooKeeper cluster", conf.cluster)
	case err != nil:
		// (a) A new KRaft cluster.
		if c, err = f.createKRaftCluster(ctx, *conf, ids, who); err != nil {
			return nil, nil, err
		}
		ks = c.quorum()
	case c.quorum() == nil:
		// (c) A ZooKeeper cluster's first migration controller.
		if conf.zkConnect == "" {
			return nil, nil, fail("cluster %q is a ZooKeeper cluster: its controllers are migration controllers (ZooKeeperConnect with its chroot)", c.id)
		}
		if ks, err = c.startMigrationQuorum(*conf, ids, f.ec2.ControllerTiming, who); err != nil { // migration.go
			return nil, nil, fail("%w", err)
		}
	default:
		ks = c.quorum()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ks.clusterID != conf.kafkaClusterID {
		return nil, nil, fail("%s is formatted for Kafka cluster id %s, the cluster's is %s: %w", controllerLogDir, conf.kafkaClusterID, ks.clusterID, ErrInconsistentClusterID)
	}
	if have := ks.voterIDs(); !slices.Equal(have, ids) {
		return nil, nil, fail("controller.quorum.voters %s names nodes %v, the cluster's quorum is %v", conf.voters, ids, have)
	}
	migrating := c.cfg.KRaft == nil
	if migrating != (conf.zkConnect != "") {
		if migrating {
			return nil, nil, fail("cluster %q is migrating from ZooKeeper: its controllers need zookeeper.connect and the migration flag", c.id)
		}
		return nil, nil, fail("cluster %q is a KRaft cluster: a controller with zookeeper.connect cannot join it", c.id)
	}
	ctl := c.controllerByID(conf.node)
	ev := Event{Time: time.Now(), Broker: ctl.id, Who: who, Instance: instanceID}
	switch {
	case ctl.instanceID == instanceID:
		return c, ctl, nil
	case ctl.instanceID == "":
		ev.Kind = EventControllerAdded
		ev.Detail = fmt.Sprintf("controller %d on instance %s (rack %s)", ctl.id, instanceID, conf.rack)
	default:
		if processUp(ctl.state) {
			return nil, nil, fail("%w: controller %d is %s on instance %s", ErrBrokerRegistered, ctl.id, ctl.state, ctl.instanceID)
		}
		// The new host's log directory is blank: the controller copies
		// the whole metadata log from the leader.
		if err := ks.model.ResetVoter(ctl.id, c.cfg.Timing.CatchUp); err != nil {
			return nil, nil, fail("%w", err)
		}
		ev.Kind = EventControllerHostReplaced
		ev.Detail = fmt.Sprintf("controller %d moves from instance %s to instance %s (rack %s); empty metadata log: it copies the leader's",
			ctl.id, ctl.instanceID, instanceID, conf.rack)
	}
	ctl.instanceID = instanceID
	ctl.migration = conf.zkConnect != ""
	if migrating && c.zkm.state == MigrationNone {
		// Another attempt after a rollback: phase 1 again.
		c.zkm.state, c.zkm.waitingLogged = MigrationWaiting, false
	}
	if old := ctl.listener; old.port() != conf.port {
		ctl.listener = newCtrlListener(c, ctl.id, conf.port)
	}
	c.appendEventLocked(ev)
	return c, ctl, nil
}

// voterIDs is the quorum's node ids, sorted.
func (ks *kraftState) voterIDs() []int32 {
	ids := make([]int32, 0, len(ks.controllers))
	for _, ctl := range ks.controllers {
		ids = append(ids, ctl.id)
	}
	return ids
}

// createKRaftCluster creates the KRaft cluster a provisioned controller
// is configured for: its quorum has every voter of conf, none running
// yet, and no broker.
func (f *Fleet) createKRaftCluster(ctx context.Context, conf controllerConf, ids []int32, who string) (*cluster, error) {
	if c, err := f.cluster(conf.cluster); err == nil {
		f.retire(c, who) // retire.go: its hosts are gone
	}
	k := KRaftConfig{Controllers: len(ids), MetadataVersion: conf.metadataVersion, Timing: f.ec2.ControllerTiming}.withDefaults()
	k.prov = &provisionedQuorum{ids: ids, clusterID: conf.kafkaClusterID}
	c, err := f.startProvisionedCluster(ctx, conf.cluster, &k)
	if err != nil {
		return nil, fmt.Errorf("localfleet: create KRaft cluster %q for its first controller: %w", conf.cluster, err)
	}
	f.record(Event{Cluster: c.id, Kind: EventKRaftClusterCreated, Who: who,
		Detail: fmt.Sprintf("KRaft cluster %q created for its first controller (%d): voters %v, Kafka cluster id %s, metadata.version %s; the quorum forms when a majority runs",
			c.id, conf.node, ids, conf.kafkaClusterID, conf.metadataVersion)})
	return c, nil
}

// formQuorumLocked builds a quorum of provisioned controllers (k.prov):
// none on a host yet, none running, no leader until a majority runs.
// c.mu must be held.
func (c *cluster) formQuorumLocked(k KRaftConfig) (*kraftState, error) {
	mv, ok := kraft.MetadataVersionLevel(k.MetadataVersion)
	if !ok {
		return nil, fmt.Errorf("localfleet: cluster %q: metadata.version %q is not modelled", c.id, k.MetadataVersion)
	}
	support, _ := kraft.SupportedBy(k.Version)
	ks := &kraftState{cfg: k, clusterID: k.prov.clusterID}
	for _, id := range k.prov.ids {
		ctl := &controller{id: id, state: StateStopped, version: k.Version}
		ctl.listener = newCtrlListener(c, id, 0)
		ks.controllers = append(ks.controllers, ctl)
	}
	ks.model = kraft.NewForming(k.Timing.modelTiming(), k.prov.ids, mv)
	for _, id := range k.prov.ids {
		if err := ks.model.SetVoterSupport(id, support); err != nil {
			return nil, fmt.Errorf("localfleet: cluster %q: controller %d: %w", c.id, id, err)
		}
	}
	c.kr.Store(ks)
	c.wg.Add(1)
	go c.runQuorum(k.Timing.tick())
	return ks, nil
}

// controllerHostOutput answers the Kafka documents on a configured
// controller host where no controller runs yet.
func (f *Fleet) controllerHostOutput(instanceID, document string, conf controllerConf) (string, error) {
	switch document {
	case cloud.DocStopBroker:
		return "kafka already stopped\n", nil
	case cloud.DocBrokerStatus:
		mode := cloud.MetadataModeKRaft
		if conf.zkConnect != "" {
			mode = cloud.MetadataModeMigration
		}
		return fmt.Sprintf("%s\nprocess.roles=controller\nnode.id=%d\nversion=%s\nmetadata.mode=%s\n", StateStopped, conf.node, defaultKRaftVersion, mode), nil
	case cloud.DocTailLog:
		return "", nil
	}
	return "", fmt.Errorf("instance %s: %s: no controller runs on this host (the local fleet serves only %s, %s and %s on a controller's host)",
		instanceID, document, cloud.DocStopBroker, cloud.DocStartBroker, cloud.DocBrokerStatus)
}
