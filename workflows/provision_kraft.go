package workflows

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// A KRaft plan's provisioning (issue #15): the same workflow, phases and
// human gate as a ZooKeeper plan's, with the ensemble's phases replaced by
// the controllers':
//
//  2. launch a host per controller (tagged kfleet:role=controller and
//     kfleet:node-id, round-robin over the zones) and per broker, with the
//     brokers' data volumes;
//  3. configure each controller (kfleet-ConfigureController: node id,
//     the voters, the Kafka cluster id, metadata.version) and start it;
//  4. wait until the quorum has a leader and every voter is caught up;
//  5. configure each broker as a KRaft broker (voters and cluster id, no
//     ZooKeeper) and start it;
//  6. verify every broker is registered with the controllers, unfenced,
//     and runs kfleet's configuration;
//  7. register the entity with a KRaft spec.
//
// The Kafka cluster id derives from the provisioning's first run, so every
// retry, resumed step and continued run configures the same one.

// Phases of a KRaft provisioning, as progress shows them.
const (
	PhaseControllers = "configuring and starting the KRaft controllers"
	PhaseQuorum      = "waiting for the controllers' quorum (a leader, every voter caught up)"
)

// VersionProvisionKRaft is the GetVersion change that added KRaft plans:
// only a KRaft plan's provisioning calls it, so a ZooKeeper plan's records
// the same commands as before.
const VersionProvisionKRaft = "provision-kraft"

// kraftState is what a KRaft provisioning made of its controllers.
type kraftState struct {
	hosts map[int32]activities.ProvisionedHost
	// addrs are the controllers' listeners, as ConfigureController
	// printed them: the spec's QuorumBootstrap.
	addrs          map[int32]string
	voters         string
	kafkaClusterID string
	metadata       string
}

// buildKRaft launches and configures a KRaft cluster, phase by phase.
func (p *provisioning) buildKRaft(ctx workflow.Context) error {
	workflow.GetVersion(ctx, VersionProvisionKRaft, workflow.DefaultVersion, 1)
	plan, who := p.plan, p.reason(ctx)
	ks := &p.st.kraft
	if ks.hosts == nil {
		ks.hosts, ks.addrs = map[int32]activities.ProvisionedHost{}, map[int32]string{}
	}
	ks.kafkaClusterID = fleet.KafkaClusterID(plan.ID + "/" + workflow.GetInfo(ctx).FirstRunID)
	ks.metadata = plan.KRaft.MetadataVersion

	var hostSteps []provisionStep
	for _, id := range plan.ControllerIDs() {
		what := "c" + strconv.Itoa(int(id))
		hostSteps = append(hostSteps, provisionStep{name: fmt.Sprintf("controller %d host", id), spends: []string{what}, run: func(ctx workflow.Context) error {
			if _, ok := ks.hosts[id]; ok {
				return nil
			}
			h, err := p.launch(ctx, activities.HostInput{Cluster: plan.ID, Role: cloud.RoleController, N: id, AZ: plan.ControllerZone(id),
				InstanceType: plan.KRaft.InstanceType, Plan: p.fp, Token: p.token(what), RequestedBy: who})
			if err == nil {
				ks.hosts[id] = h
			}
			return err
		}})
	}
	for _, b := range plan.BrokerIDs() {
		hostSteps = append(hostSteps, provisionStep{name: fmt.Sprintf("broker %d host and volume", b), spends: []string{fmt.Sprintf("b%d", b), fmt.Sprintf("v%d", b)},
			run: func(ctx workflow.Context) error { return p.brokerHost(ctx, b) }})
	}
	p.phase(ctx, 2, PhaseHosts, len(hostSteps))
	if err := p.runPhase(ctx, PhaseHosts, hostSteps); err != nil {
		return err
	}

	// controller.quorum.voters names each controller's host and the
	// CONTROLLER port; the address each prints once configured is where
	// kfleet reaches it (the same, on real hosts).
	hostAddrs := map[int32]string{}
	for _, id := range plan.ControllerIDs() {
		hostAddrs[id] = net.JoinHostPort(ks.hosts[id].PrivateIP, strconv.Itoa(fleet.ControllerPort))
	}
	voters, err := fleet.QuorumVoters(plan.ControllerIDs(), hostAddrs)
	if err != nil {
		return err
	}
	ks.voters = voters
	var ctlSteps []provisionStep
	for _, id := range plan.ControllerIDs() {
		ctlSteps = append(ctlSteps, provisionStep{name: fmt.Sprintf("controller %d", id), run: func(ctx workflow.Context) error {
			in := activities.ControllerNodeInput{Cluster: plan.ID, InstanceID: ks.hosts[id].ID, NodeID: id, Rack: plan.ControllerZone(id),
				QuorumVoters: ks.voters, KafkaClusterID: ks.kafkaClusterID, MetadataVersion: ks.metadata, KafkaVersion: plan.KafkaVersion, Reason: who}
			if ks.addrs[id] == "" {
				var addr string
				if err := workflow.ExecuteActivity(provisionContext(ctx, 10*time.Minute, fmt.Sprintf("configure controller %d", id)),
					a.ConfigureControllerNode, in).Get(ctx, &addr); err != nil {
					return err
				}
				ks.addrs[id] = addr
			}
			if err := workflow.ExecuteActivity(provisionContext(ctx, 10*time.Minute, fmt.Sprintf("start controller %d", id)),
				a.StartControllerHost, in).Get(ctx, nil); err != nil {
				return err
			}
			p.progress.ControllersStarted++
			return nil
		}})
	}
	p.phase(ctx, 3, PhaseControllers, len(ctlSteps))
	if err := p.runPhase(ctx, PhaseControllers, ctlSteps); err != nil {
		return err
	}

	bootstrap := p.quorumBootstrap()
	p.phase(ctx, 4, PhaseQuorum, 1)
	if err := p.runPhase(ctx, PhaseQuorum, []provisionStep{{name: "quorum of controllers " + fmt.Sprint(plan.ControllerIDs()), run: func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(provisionContext(ctx, 10*time.Minute, "wait for the controllers' quorum"), a.WaitQuorumFormed,
			activities.QuorumFormedInput{Cluster: plan.ID, QuorumBootstrap: bootstrap, Voters: plan.ControllerIDs()}).Get(ctx, nil)
	}}}); err != nil {
		return err
	}

	return p.brokersVerifyRegister(ctx, "brokers registered, unfenced and configured", func(ctx workflow.Context, hosts map[int32]activities.ProvisionedHost) error {
		return workflow.ExecuteActivity(provisionContext(ctx, 15*time.Minute, "verify registrations and configurations"), a.VerifyKRaftProvisioned,
			activities.KRaftVerifyInput{Plan: plan, Hosts: hosts, Controllers: ks.hosts, QuorumBootstrap: bootstrap, MetadataVersion: ks.metadata}).Get(ctx, &p.st.spec)
	})
}

// quorumBootstrap is the controllers' addresses in node id order.
func (p *provisioning) quorumBootstrap() []string {
	var out []string
	for _, id := range p.plan.ControllerIDs() {
		if a := p.st.kraft.addrs[id]; a != "" {
			out = append(out, a)
		}
	}
	return out
}
