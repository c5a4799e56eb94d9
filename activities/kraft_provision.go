package activities

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/kafka"
)

// A KRaft cluster's provisioning (issue #15): controllers on hosts of their
// own, configured (kfleet-ConfigureController) and started, a quorum that
// has formed before any broker is configured, then brokers that register
// with it. Before a broker exists the only ones to ask are the controllers
// themselves (their QuorumBootstrap addresses), so the waits here read
// through them (ControllerReads), never through a broker.

// ControllerReads reads a KRaft cluster through its controllers
// (*kafka.Pool).
type ControllerReads interface {
	QuorumFromControllers(ctx context.Context, spec fleet.ClusterSpec) (fleet.Quorum, error)
	BrokersFromControllers(ctx context.Context, spec fleet.ClusterSpec) ([]kafka.NodeEndpoint, error)
	// ControllersFromControllers returns the Kafka cluster id and the
	// running controllers' addresses.
	ControllersFromControllers(ctx context.Context, spec fleet.ClusterSpec) (string, []kafka.NodeEndpoint, error)
}

// ControllerNodeInput configures one KRaft controller on its host.
type ControllerNodeInput struct {
	Cluster    string `json:"cluster"`
	InstanceID string `json:"instanceId"`
	NodeID     int32  `json:"nodeId"`
	Rack       string `json:"rack,omitempty"`
	// QuorumVoters is controller.quorum.voters, "<id>@<host>:<port>,...".
	QuorumVoters    string `json:"quorumVoters"`
	KafkaClusterID  string `json:"kafkaClusterId"`
	MetadataVersion string `json:"metadataVersion"`
	// ZooKeeper, the cluster's zookeeper.connect, makes it a migration
	// controller (zookeeper.metadata.migration.enable; the migration's
	// phase 1); empty: a KRaft cluster's.
	ZooKeeper string `json:"zookeeper,omitempty"`
	// KafkaVersion is what StartControllerHost starts ("" keeps the
	// installed one).
	KafkaVersion string `json:"kafkaVersion,omitempty"`
	Reason       string `json:"reason"`
}

func (in ControllerNodeInput) what() string {
	return fmt.Sprintf("cluster %s controller %d (instance %s)", in.Cluster, in.NodeID, in.InstanceID)
}

// ConfigureControllerNode runs kfleet-ConfigureController on the host
// (once per step, across retries; the document is idempotent, and refuses
// a log directory formatted for another cluster or node) and returns the
// controller's address it prints.
func (a *Activities) ConfigureControllerNode(ctx context.Context, in ControllerNodeInput) (string, error) {
	if in.Cluster == "" || in.InstanceID == "" || in.QuorumVoters == "" || in.KafkaClusterID == "" || in.MetadataVersion == "" {
		return "", badInput(fmt.Errorf("%s: cluster, instance, quorum voters, Kafka cluster id and metadata.version are required", in.what()))
	}
	res, err := a.runOnce(ctx, in.InstanceID, cloud.DocConfigureController, map[string]string{
		cloud.ParamClusterID: in.Cluster, cloud.ParamNodeID: strconv.Itoa(int(in.NodeID)), cloud.ParamRack: in.Rack,
		cloud.ParamQuorumVoters: in.QuorumVoters, cloud.ParamKafkaClusterID: in.KafkaClusterID,
		cloud.ParamMetadataVersion: in.MetadataVersion, cloud.ParamZooKeeperConnect: in.ZooKeeper,
	}, in.Reason)
	if err != nil {
		return "", fmt.Errorf("%s: configure: %w", in.what(), err)
	}
	addr := cloud.ControllerAddress(res.Stdout)
	if addr == "" {
		return "", badInput(fmt.Errorf("%s: %s printed no controllerAddress", in.what(), cloud.DocConfigureController))
	}
	return addr, nil
}

// StartControllerHost starts Kafka on a configured controller's host
// (kfleet-StartBroker; starting a running one changes nothing).
func (a *Activities) StartControllerHost(ctx context.Context, in ControllerNodeInput) error {
	params := map[string]string{}
	if in.KafkaVersion != "" {
		params[cloud.ParamVersion] = in.KafkaVersion
	}
	if _, err := a.runOnce(ctx, in.InstanceID, cloud.DocStartBroker, params, in.Reason); err != nil {
		return fmt.Errorf("%s: start: %w", in.what(), err)
	}
	return nil
}

// QuorumFormedInput asks WaitQuorumFormed for a quorum of Voters reached
// through QuorumBootstrap.
type QuorumFormedInput struct {
	Cluster         string   `json:"cluster"`
	QuorumBootstrap []string `json:"quorumBootstrap"`
	Voters          []int32  `json:"voters"`
	// PollInterval paces the reads; 0: the worker's.
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

// QuorumFormed is the quorum a wait ended on: counts, not the quorum.
type QuorumFormed struct {
	Leader   int32 `json:"leader"`
	Epoch    int32 `json:"epoch"`
	Voters   int   `json:"voters"`
	CaughtUp int   `json:"caughtUp"`
	Checks   int   `json:"checks"`
}

// quorumFormedProgress is WaitQuorumFormed's heartbeat.
type quorumFormedProgress struct {
	Checks int    `json:"checks"`
	Last   string `json:"last,omitempty"`
}

// WaitQuorumFormed polls the controllers until their quorum has a leader,
// exactly the expected voters, and every voter caught up with the leader
// (fleet.CaughtUp): brokers are configured against a quorum that serves,
// not one still electing. A read that fails (no leader yet, a controller
// still starting) is tried again at the next poll; the activity's timeout
// bounds the wait.
func (a *Activities) WaitQuorumFormed(ctx context.Context, in QuorumFormedInput) (QuorumFormed, error) {
	if in.Cluster == "" || len(in.QuorumBootstrap) == 0 || len(in.Voters) == 0 {
		return QuorumFormed{}, badInput(fmt.Errorf("cluster %s: a quorum's controllers and voters are required", in.Cluster))
	}
	if a.Controllers == nil {
		return QuorumFormed{}, badInput(fmt.Errorf("cluster %s: this worker has no client to reach KRaft controllers with", in.Cluster))
	}
	spec := fleet.ClusterSpec{ID: in.Cluster, KRaft: &fleet.KRaftSpec{QuorumBootstrap: in.QuorumBootstrap}}
	want := slices.Sorted(slices.Values(in.Voters))
	p, _ := resume[quorumFormedProgress](ctx)
	var res QuorumFormed
	err := a.poll(ctx, in.PollInterval, time.Time{}, func() (bool, error) {
		p.Checks++
		q, err := a.Controllers.QuorumFromControllers(ctx, spec)
		if err != nil {
			p.Last = err.Error()
			return false, nil
		}
		done, why, caughtUp := quorumFormed(q, want)
		p.Last = why
		res = QuorumFormed{Leader: q.Leader, Epoch: q.Epoch, Voters: len(q.Voters), CaughtUp: caughtUp, Checks: p.Checks}
		return done, nil
	}, func() any { return p })
	if err != nil {
		return QuorumFormed{}, waitFailed(err, "cluster %s: wait for the controllers' quorum (%s)", in.Cluster, p.Last)
	}
	a.Log.Info().Str("cluster", in.Cluster).Int32("leader", res.Leader).Int32("epoch", res.Epoch).Int("voters", res.Voters).
		Int("checks", res.Checks).Msg("KRaft quorum formed")
	return res, nil
}

// quorumFormed is whether q has a leader, exactly the voters want (sorted)
// and all of them caught up; why says what is missing.
func quorumFormed(q fleet.Quorum, want []int32) (bool, string, int) {
	leader, ok := q.LeaderReplica()
	if !ok {
		return false, fmt.Sprintf("no leader (epoch %d)", q.Epoch), 0
	}
	if got := q.VoterIDs(); !slices.Equal(got, want) {
		return false, fmt.Sprintf("voters %v, want %v", got, want), 0
	}
	caught := 0
	var lagging []string
	for _, v := range q.Voters {
		if fleet.CaughtUp(v, leader, fleet.QuorumFetchTimeout) {
			caught++
		} else {
			lagging = append(lagging, strconv.Itoa(int(v.ID)))
		}
	}
	if len(lagging) > 0 {
		return false, fmt.Sprintf("leader %d, voters %s not caught up", q.Leader, strings.Join(lagging, ", ")), caught
	}
	return true, fmt.Sprintf("leader %d, %d voters caught up", q.Leader, caught), caught
}

// KRaftVerifyInput is a provisioned KRaft cluster to verify: its brokers'
// and controllers' hosts, and what the controllers were configured with.
type KRaftVerifyInput struct {
	Plan            fleet.ClusterPlan         `json:"plan"`
	Hosts           map[int32]ProvisionedHost `json:"hosts"`
	Controllers     map[int32]ProvisionedHost `json:"controllers"`
	QuorumBootstrap []string                  `json:"quorumBootstrap"`
	MetadataVersion string                    `json:"metadataVersion"`
	PollInterval    time.Duration             `json:"pollInterval,omitempty"`
}

// kraftVerifyProgress is VerifyKRaftProvisioned's heartbeat.
type kraftVerifyProgress struct {
	Checks int    `json:"checks"`
	Last   string `json:"last,omitempty"`
}

// VerifyKRaftProvisioned waits until every broker of the plan is
// registered with the controllers and unfenced (DescribeCluster through
// the controllers, which also tells where each listens), then checks each
// broker's configuration through the Kafka protocol (DescribeConfigs:
// node id, role, rack, the safe defaults). It returns the cluster's KRaft
// spec, ready to register. A configuration that differs is not retried: a
// human looks.
func (a *Activities) VerifyKRaftProvisioned(ctx context.Context, in KRaftVerifyInput) (fleet.ClusterSpec, error) {
	plan := in.Plan.WithDefaults()
	if a.Controllers == nil {
		return fleet.ClusterSpec{}, badInput(fmt.Errorf("cluster %s: this worker has no client to reach KRaft controllers with", plan.ID))
	}
	spec := fleet.ClusterSpec{ID: plan.ID, KafkaVersion: plan.KafkaVersion, Health: plan.Health,
		KRaft: &fleet.KRaftSpec{Mode: fleet.ModeKRaft, QuorumBootstrap: in.QuorumBootstrap, MetadataVersion: in.MetadataVersion}}
	for _, id := range plan.ControllerIDs() {
		h, ok := in.Controllers[id]
		if !ok {
			return spec, badInput(fmt.Errorf("cluster %s controller %d: no host known", plan.ID, id))
		}
		spec.KRaft.Controllers = append(spec.KRaft.Controllers, fleet.ControllerSpec{ID: id, InstanceID: h.ID, Rack: plan.ControllerZone(id)})
	}
	p, _ := resume[kraftVerifyProgress](ctx)
	var endpoints map[int32]string
	err := a.poll(ctx, in.PollInterval, time.Time{}, func() (bool, error) {
		p.Checks++
		brokers, err := a.Controllers.BrokersFromControllers(ctx, spec)
		if err != nil {
			p.Last = err.Error()
			return false, nil
		}
		endpoints = map[int32]string{}
		var missing []string
		for _, b := range brokers {
			if !b.Fenced {
				endpoints[b.ID] = b.Address
			}
		}
		for _, id := range plan.BrokerIDs() {
			if _, ok := endpoints[id]; !ok {
				missing = append(missing, strconv.Itoa(int(id)))
			}
		}
		p.Last = "brokers not registered or fenced: " + strings.Join(missing, ", ")
		return len(missing) == 0, nil
	}, func() any { return p })
	if err != nil {
		return spec, waitFailed(err, "cluster %s: wait for the brokers' registrations (%s)", plan.ID, p.Last)
	}
	for _, id := range plan.BrokerIDs() {
		h, known := in.Hosts[id]
		if !known {
			return spec, badInput(fmt.Errorf("cluster %s broker %d: no host known", plan.ID, id))
		}
		spec.Bootstrap = append(spec.Bootstrap, endpoints[id])
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
		if m := fleet.ConfigMismatches(fleet.KRaftBrokerConfig(id, plan.BrokerZone(id)), configs[id]); len(m) > 0 {
			wrong = append(wrong, fmt.Sprintf("broker %d: %s", id, strings.Join(m, ", ")))
		}
	}
	if len(wrong) > 0 {
		return spec, badInput(fmt.Errorf("cluster %s: brokers run another configuration than kfleet wrote: %s", plan.ID, strings.Join(wrong, "; ")))
	}
	if err := spec.Validate(); err != nil {
		return spec, badInput(err)
	}
	a.Log.Info().Str("cluster", plan.ID).Int("brokers", len(spec.Brokers)).Ints32("controllers", spec.ControllerIDs()).
		Int("checks", p.Checks).Msg("KRaft cluster verified")
	return spec, nil
}
