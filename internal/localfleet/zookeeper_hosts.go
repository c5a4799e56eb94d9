package localfleet

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/kfleet/kfleet/internal/cloud"
)

// A host tagged kfleet:role=zookeeper becomes a member of its cluster's
// ensemble through kfleet-ConfigureZooKeeper, as on a real host. The fleet
// runs one real ZooKeeper for every cluster (a chroot each), so every
// configured member answers with that ensemble's address: the brokers'
// zookeeper.connect a provisioning builds from the members' answers then
// reaches a real server, as it would reach the members on AWS.

// EventZooKeeperConfigured: kfleet-ConfigureZooKeeper wrote a ZooKeeper
// node's zoo.cfg and myid (Broker 0; Detail: the node and the ensemble).
const EventZooKeeperConfigured EventKind = "zookeeper-configured"

// zkConf is a ZooKeeper node's configuration: its myid and the ensemble.
type zkConf struct {
	cluster, myID, servers string
}

// configureZooKeeperPatterns are kfleet-ConfigureZooKeeper's
// allowedPattern values; every parameter is required.
var configureZooKeeperPatterns = map[string]*regexp.Regexp{
	cloud.ParamClusterID: clusterIDPattern,
	cloud.ParamMyID:      regexp.MustCompile(`^([1-9][0-9]?|1[0-9]{2}|2[0-4][0-9]|25[0-5])$`),
	cloud.ParamServers:   regexp.MustCompile(`^[0-9]{1,3}=[A-Za-z0-9.-]+(,[0-9]{1,3}=[A-Za-z0-9.-]+){0,6}$`),
}

// configureZooKeeper runs kfleet-ConfigureZooKeeper on an instance and
// returns what it prints.
func (f *Fleet) configureZooKeeper(instanceID string, param func(string) string, who string) (string, error) {
	conf := zkConf{cluster: param(cloud.ParamClusterID), myID: param(cloud.ParamMyID), servers: param(cloud.ParamServers)}
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("instance %s: configure ZooKeeper node %s of cluster %q: "+format, append([]any{instanceID, conf.myID, conf.cluster}, args...)...)
	}
	in, err := f.hosts.instance(instanceID)
	if err != nil {
		return "", err
	}
	if role, _ := tagValue(in.tags, cloud.TagRole); role != cloud.RoleZooKeeper {
		return fail("the instance is no ZooKeeper node (%s=%q): ZooKeeper is not installed there", cloud.TagRole, role)
	}
	if c, _ := tagValue(in.tags, cloud.TagCluster); c != conf.cluster {
		return fail("the instance belongs to cluster %q (%s)", c, cloud.TagCluster)
	}
	var ids []string
	for _, m := range strings.Split(conf.servers, ",") {
		id, _, _ := strings.Cut(m, "=")
		if slices.Contains(ids, id) {
			return fail("server %s listed twice in %s", id, conf.servers)
		}
		ids = append(ids, id)
	}
	if !slices.Contains(ids, conf.myID) {
		return fail("myid %s is not among the ensemble's servers %s", conf.myID, conf.servers)
	}
	out := f.zkConfig(conf)
	if prev, changed := f.hosts.setZooKeeper(instanceID, conf); !changed {
		return out + "zookeeper unchanged and running\n" + "clientAddress=" + f.opts.ZooKeeper + "\n", nil
	} else if prev != nil {
		out += fmt.Sprintf("(was myid %s of %s)\n", prev.myID, prev.servers)
	}
	f.record(Event{Cluster: conf.cluster, Kind: EventZooKeeperConfigured, Who: who, Instance: instanceID,
		Detail: fmt.Sprintf("instance %s configured as ZooKeeper node %s of cluster %q (ensemble %s)", instanceID, conf.myID, conf.cluster, conf.servers)})
	return out + "zoo.cfg written\nmyid " + conf.myID + " written\nclientAddress=" + f.opts.ZooKeeper + "\n", nil
}

// zkConfig renders zoo.cfg as the document writes it.
func (f *Fleet) zkConfig(c zkConf) string {
	lines := []string{"# kfleet: ZooKeeper ensemble of cluster " + c.cluster, "tickTime=2000", "initLimit=10", "syncLimit=5",
		"dataDir=/var/lib/zookeeper", "clientPort=2181", "4lw.commands.whitelist=ruok,srvr,mntr"}
	for _, m := range strings.Split(c.servers, ",") {
		id, host, _ := strings.Cut(m, "=")
		lines = append(lines, fmt.Sprintf("server.%s=%s:2888:3888", id, host))
	}
	return strings.Join(lines, "\n") + "\n"
}

// setZooKeeper records a node's configuration; changed is false when it
// had exactly this one.
func (h *hosts) setZooKeeper(instanceID string, conf zkConf) (prev *zkConf, changed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	in, ok := h.byID[instanceID]
	if !ok {
		return nil, false
	}
	if in.zk != nil && *in.zk == conf {
		return in.zk, false
	}
	prev, in.zk = in.zk, &conf
	return prev, true
}
