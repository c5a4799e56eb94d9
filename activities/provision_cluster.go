package activities

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// Provisioning's checks, host configuration, verification and
// registration (ProvisionClusterWorkflow).

// ClusterAdmin reads what provisioning verifies and deletion checks
// through the Kafka protocol.
type ClusterAdmin interface {
	BrokerConfigs(ctx context.Context, spec fleet.ClusterSpec, brokers []int32) (map[int32]map[string]string, error)
	Residents(ctx context.Context, spec fleet.ClusterSpec) (topics, users []string, err error)
}

// Chroots reads broker endpoints from a cluster's ensemble and removes a
// deleted cluster's chroot.
type Chroots interface {
	BrokerEndpoints(ctx context.Context, spec fleet.ClusterSpec) (map[int32]string, error)
	// RemoveChroot authenticates as the spec's security says.
	RemoveChroot(ctx context.Context, spec fleet.ClusterSpec) (int, error)
}

// Registry registers clusters with kfleet (their entities).
type Registry interface {
	Register(ctx context.Context, spec fleet.ClusterSpec) error
	// Registered reports whether the cluster's entity runs.
	Registered(ctx context.Context, cluster string) (bool, error)
}

// PlanCheck is what the account says of a plan: why it cannot be
// provisioned (nothing when it can).
type PlanCheck struct {
	Refusals []string `json:"refusals,omitempty"`
}

// CheckProvisionPlan checks a plan against kfleet and the account before
// anything is launched: the cluster id is not registered, nor used by
// hosts or volumes another plan made; EC2 has the plan's zones and offers
// its instance types there.
func (a *Activities) CheckProvisionPlan(ctx context.Context, plan fleet.ClusterPlan) (PlanCheck, error) {
	if err := plan.Validate(); err != nil {
		return PlanCheck{Refusals: []string{err.Error()}}, nil
	}
	if a.EC2 == nil || a.Registry == nil {
		return PlanCheck{}, badInput(errors.New("this worker cannot provision: it has no EC2 client or no Temporal client"))
	}
	plan = plan.WithDefaults()
	defer keepAlive(ctx, plan.ID)()
	var refusals []string
	if ok, err := a.Registry.Registered(ctx, plan.ID); err != nil {
		return PlanCheck{}, err
	} else if ok {
		refusals = append(refusals, fmt.Sprintf("cluster id %q is in use: kfleet already operates it (delete it first)", plan.ID))
	}
	zones, err := a.EC2.AvailabilityZones(ctx)
	if err != nil {
		return PlanCheck{}, err
	}
	for _, az := range plan.AvailabilityZones {
		if !slices.Contains(zones, az) {
			refusals = append(refusals, fmt.Sprintf("availability zone %q: unknown to EC2 here (zones: %s)", az, strings.Join(zones, ", ")))
		}
	}
	types := []string{plan.InstanceType}
	if plan.ZooKeeperInstanceType != plan.InstanceType {
		types = append(types, plan.ZooKeeperInstanceType)
	}
	if plan.KRaft != nil && !slices.Contains(types, plan.KRaft.InstanceType) {
		types = append(types, plan.KRaft.InstanceType) // the controllers' hosts
	}
	offered, err := a.EC2.InstanceTypeZones(ctx, types)
	if err != nil {
		return PlanCheck{}, err
	}
	for _, t := range types {
		var missing []string
		for _, az := range plan.AvailabilityZones {
			if slices.Contains(zones, az) && !slices.Contains(offered[t], az) {
				missing = append(missing, az)
			}
		}
		switch {
		case len(offered[t]) == 0:
			refusals = append(refusals, fmt.Sprintf("instance type %q: unknown to EC2 here, or offered in no zone", t))
		case len(missing) > 0:
			refusals = append(refusals, fmt.Sprintf("instance type %q: not offered in %s", t, strings.Join(missing, ", ")))
		}
	}
	fp := plan.Fingerprint()
	hosts, err := a.EC2.FindInstances(ctx, cloud.InstanceFilter{Cluster: plan.ID, States: liveStates})
	if err != nil {
		return PlanCheck{}, err
	}
	if ids := notOfPlan(hosts, fp, func(i cloud.Instance) (string, map[string]string) { return i.ID, i.Tags }); len(ids) > 0 {
		refusals = append(refusals, fmt.Sprintf("cluster id %q is in use: %d host(s) tagged %s=%s that this plan did not launch (%s)",
			plan.ID, len(ids), cloud.TagCluster, plan.ID, strings.Join(ids, ", ")))
	}
	vols, err := a.EC2.FindVolumes(ctx, cloud.VolumeFilter{Cluster: plan.ID, Role: cloud.RoleKafkaData})
	if err != nil {
		return PlanCheck{}, err
	}
	if ids := notOfPlan(vols, fp, func(v cloud.Volume) (string, map[string]string) { return v.ID, v.Tags }); len(ids) > 0 {
		refusals = append(refusals, fmt.Sprintf("cluster id %q is in use: %d data volume(s) tagged %s=%s that this plan did not make (%s)",
			plan.ID, len(ids), cloud.TagCluster, plan.ID, strings.Join(ids, ", ")))
	}
	return PlanCheck{Refusals: refusals}, nil
}

// notOfPlan lists (at most 5 of) the ids of resources not tagged with the
// plan's fingerprint.
func notOfPlan[T any](rs []T, fp string, idTags func(T) (string, map[string]string)) []string {
	var ids []string
	for _, r := range rs {
		if id, tags := idTags(r); tags[cloud.TagPlan] != fp {
			ids = append(ids, id)
		}
	}
	if len(ids) > 5 {
		ids = append(ids[:5], fmt.Sprintf("and %d more", len(ids)-5))
	}
	return ids
}

// ZooKeeperNodeInput configures one node of a cluster's ensemble.
type ZooKeeperNodeInput struct {
	Cluster    string `json:"cluster"`
	InstanceID string `json:"instanceId"`
	MyID       int32  `json:"myId"`
	// Servers is the ensemble, "<myid>=<host>,...".
	Servers string `json:"servers"`
	Reason  string `json:"reason"`
}

// ConfigureZooKeeperNode runs kfleet-ConfigureZooKeeper on the node (once
// per step, across retries) and returns the client address it prints.
func (a *Activities) ConfigureZooKeeperNode(ctx context.Context, in ZooKeeperNodeInput) (string, error) {
	res, err := a.runOnce(ctx, in.InstanceID, cloud.DocConfigureZooKeeper, map[string]string{
		cloud.ParamClusterID: in.Cluster, cloud.ParamMyID: strconv.Itoa(int(in.MyID)), cloud.ParamServers: in.Servers,
	}, in.Reason)
	if err != nil {
		return "", fmt.Errorf("cluster %s ZooKeeper node %d (instance %s): %w", in.Cluster, in.MyID, in.InstanceID, err)
	}
	addr := cloud.ZooKeeperClientAddress(res.Stdout)
	if addr == "" {
		return "", badInput(fmt.Errorf("cluster %s ZooKeeper node %d (instance %s): %s printed no clientAddress", in.Cluster, in.MyID, in.InstanceID, cloud.DocConfigureZooKeeper))
	}
	return addr, nil
}

// CheckEnsemble fails unless every server of the connect string answers
// ruok and srvr: brokers are configured against a serving ensemble only.
func (a *Activities) CheckEnsemble(ctx context.Context, spec fleet.ClusterSpec) error {
	servers, err := a.Ensemble.ServerHealth(ctx, spec)
	if err != nil {
		return badInput(err)
	}
	var bad []string
	for _, s := range servers {
		if !s.OK {
			bad = append(bad, fmt.Sprintf("%s: %s", s.Address, s.Error))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("cluster %s: ZooKeeper not serving: %s", spec.ID, strings.Join(bad, "; "))
	}
	return nil
}

// BrokerHostInput configures or starts a provisioned broker's host.
type BrokerHostInput struct {
	Cluster    string `json:"cluster"`
	Broker     int32  `json:"broker"`
	InstanceID string `json:"instanceId"`
	VolumeID   string `json:"volumeId,omitempty"`
	Rack       string `json:"rack,omitempty"`
	// ZooKeeper is zookeeper.connect, ending with the cluster's chroot.
	ZooKeeper    string `json:"zookeeper,omitempty"`
	KafkaVersion string `json:"kafkaVersion,omitempty"`
	// QuorumVoters and KafkaClusterID make a KRaft cluster's broker
	// (ZooKeeper empty).
	QuorumVoters   string `json:"quorumVoters,omitempty"`
	KafkaClusterID string `json:"kafkaClusterId,omitempty"`
	Reason         string `json:"reason"`
}

// ConfigureBrokerHost runs kfleet-ConfigureBroker on the host: its
// server.properties (id, rack, ensemble, listeners, the safe defaults) and
// its data volume mounted.
func (a *Activities) ConfigureBrokerHost(ctx context.Context, in BrokerHostInput) error {
	params := map[string]string{
		cloud.ParamClusterID: in.Cluster, cloud.ParamBrokerID: strconv.Itoa(int(in.Broker)), cloud.ParamRack: in.Rack,
		cloud.ParamZooKeeperConnect: in.ZooKeeper, cloud.ParamDataVolumeID: in.VolumeID,
	}
	if in.QuorumVoters != "" || in.KafkaClusterID != "" {
		if in.ZooKeeper != "" || in.QuorumVoters == "" || in.KafkaClusterID == "" {
			return badInput(fmt.Errorf("cluster %s broker %d: a KRaft broker takes quorum voters and a Kafka cluster id, and no ZooKeeper", in.Cluster, in.Broker))
		}
		params[cloud.ParamQuorumVoters], params[cloud.ParamKafkaClusterID] = in.QuorumVoters, in.KafkaClusterID
	}
	_, err := a.runOnce(ctx, in.InstanceID, cloud.DocConfigureBroker, params, in.Reason)
	if err != nil {
		return fmt.Errorf("cluster %s broker %d (instance %s): configure: %w", in.Cluster, in.Broker, in.InstanceID, err)
	}
	return nil
}

// StartBrokerHost runs kfleet-StartBroker on a configured host, on the
// plan's Kafka version.
func (a *Activities) StartBrokerHost(ctx context.Context, in BrokerHostInput) error {
	params := map[string]string{}
	if in.KafkaVersion != "" {
		params[cloud.ParamVersion] = in.KafkaVersion
	}
	if _, err := a.runOnce(ctx, in.InstanceID, cloud.DocStartBroker, params, in.Reason); err != nil {
		return fmt.Errorf("cluster %s broker %d (instance %s): start: %w", in.Cluster, in.Broker, in.InstanceID, err)
	}
	return nil
}

// VerifyInput is a provisioned cluster to verify: its brokers' hosts and
// ensemble.
type VerifyInput struct {
	Plan      fleet.ClusterPlan `json:"plan"`
	ZooKeeper string            `json:"zookeeper"`
	// Hosts are the brokers' hosts by id: instance id and private address.
	Hosts map[int32]ProvisionedHost `json:"hosts"`
}

// VerifyProvisioned waits until every broker is registered under the
// cluster's chroot, reads where each listens from its registration, and
// checks each broker's configuration through the Kafka protocol
// (DescribeConfigs: id, rack, ensemble, the safe defaults). It returns the
// cluster's spec, ready to register. A configuration that differs is not
// retried: a human looks.
func (a *Activities) VerifyProvisioned(ctx context.Context, in VerifyInput) (fleet.ClusterSpec, error) {
	plan := in.Plan.WithDefaults()
	spec := fleet.ClusterSpec{ID: plan.ID, ZooKeeper: in.ZooKeeper, KafkaVersion: plan.KafkaVersion,
		InterBrokerProtocol: plan.InterBrokerProtocol(), Health: plan.Health}
	tick := a.ticker(ctx, "waiting for the brokers' registrations")
	for _, id := range plan.BrokerIDs() {
		if err := a.ZooKeeper.WaitBrokerRegistered(ctx, spec, id, a.pollInterval()*5, tick); err != nil {
			return spec, err
		}
	}
	endpoints, err := a.Chroots.BrokerEndpoints(ctx, spec)
	if err != nil {
		return spec, err
	}
	for _, id := range plan.BrokerIDs() {
		addr, ok := endpoints[id]
		h, known := in.Hosts[id]
		if !ok || !known {
			return spec, fmt.Errorf("cluster %s broker %d: not registered under %s, or no host known", plan.ID, id, cloud.ZooKeeperChroot(plan.ID))
		}
		spec.Bootstrap = append(spec.Bootstrap, addr)
		spec.Brokers = append(spec.Brokers, fleet.BrokerSpec{ID: id, InstanceID: h.ID, Rack: plan.BrokerZone(id),
			MetricsURL: metricsURL(a.Provisioning.MetricsURL, plan.ID, id, h.PrivateIP)})
	}
	defer keepAlive(ctx, "checking the brokers' configurations")()
	configs, err := a.Admin.BrokerConfigs(ctx, spec, plan.BrokerIDs())
	if err != nil {
		return spec, err
	}
	var wrong []string
	for _, id := range plan.BrokerIDs() {
		if m := fleet.ConfigMismatches(fleet.BrokerConfig(id, plan.BrokerZone(id), in.ZooKeeper), configs[id]); len(m) > 0 {
			wrong = append(wrong, fmt.Sprintf("broker %d: %s", id, strings.Join(m, ", ")))
		}
	}
	if len(wrong) > 0 {
		return spec, badInput(fmt.Errorf("cluster %s: brokers run another configuration than kfleet wrote: %s", plan.ID, strings.Join(wrong, "; ")))
	}
	if err := spec.Validate(); err != nil {
		return spec, badInput(err)
	}
	return spec, nil
}

// metricsURL fills the template's {host}, {cluster} and {broker}.
func metricsURL(template, cluster string, broker int32, host string) string {
	if template == "" {
		return ""
	}
	r := strings.NewReplacer("{host}", host, "{cluster}", cluster, "{broker}", strconv.Itoa(int(broker)))
	return r.Replace(template)
}

// RegisterProvisioned registers the provisioned cluster with kfleet: its
// entity starts (or takes the spec, when a retry finds it started).
func (a *Activities) RegisterProvisioned(ctx context.Context, spec fleet.ClusterSpec) error {
	if a.Registry == nil {
		return badInput(errors.New("this worker has no Temporal client to register clusters with"))
	}
	if err := a.Registry.Register(ctx, spec); err != nil {
		if errors.Is(err, fleet.ErrRefused) {
			return badInput(err)
		}
		return fmt.Errorf("cluster %s: register: %w", spec.ID, err)
	}
	a.Log.Info().Str("cluster", spec.ID).Int("brokers", len(spec.Brokers)).Strs("instances", hostIDs(spec)).Msg("provisioned cluster registered")
	return nil
}

func hostIDs(spec fleet.ClusterSpec) []string {
	ids := map[int32]string{}
	for _, b := range spec.Brokers {
		ids[b.ID] = b.InstanceID
	}
	var out []string
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		out = append(out, ids[id])
	}
	return out
}
