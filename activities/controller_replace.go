package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/kafka"
)

// Host replacement of a KRaft controller (issue #15): a new host in the
// controller's zone, tagged as the controller (kfleet:role=controller,
// kfleet:node-id), configured with the same node id, voters and Kafka
// cluster id; its metadata log starts blank and catches up from the
// leader. Each step reads EC2 before it acts: a live host tagged with the
// node id other than the old one is the replacement an earlier attempt (or
// an earlier run of the operation) launched, and the launch's ClientToken
// derives from the operation, the node, the old host and the attempt, so
// a controller never gets two new hosts.

// ControllerSpecs changes a controller's host in its entity's spec
// (*entity.Operator; reached through Activities.Specs).
type ControllerSpecs interface {
	SetControllerHost(ctx context.Context, cluster string, node int32, from, instance, oldAddress, address string) (bool, error)
}

// ControllerReplacementPlan is what PlanControllerReplacement found.
type ControllerReplacementPlan struct {
	Old      string `json:"old"`
	OldState string `json:"oldState"`
	// Existing is a live host tagged with the node id other than Old: an
	// earlier attempt's launch, which is the replacement.
	Existing string         `json:"existing,omitempty"`
	Launch   LaunchTemplate `json:"launch"`
	Rack     string         `json:"rack"`
	// OldAddress is the controller's listener as the controllers listed
	// it ("" when it is not running); KafkaClusterID the cluster's id.
	OldAddress     string `json:"oldAddress,omitempty"`
	KafkaClusterID string `json:"kafkaClusterId"`
}

// Reachable reports whether the old controller's host runs: its Kafka is
// stopped through it before the new one starts.
func (p ControllerReplacementPlan) Reachable() bool { return p.OldState == "running" }

func (in ControllerInput) what() string {
	return fmt.Sprintf("cluster %s controller %d", in.Spec.ID, in.Controller)
}

// PlanControllerReplacement reads what a controller's host replacement
// needs, changing nothing: the old instance's state, a replacement already
// launched, what to launch where, the Kafka cluster id and the
// controller's address (from the controllers). Two live replacements are
// for a human.
func (a *Activities) PlanControllerReplacement(ctx context.Context, in ControllerInput) (ControllerReplacementPlan, error) {
	host, err := in.host()
	if err != nil {
		return ControllerReplacementPlan{}, err
	}
	if in.Spec.Mode() != fleet.ModeKRaft {
		return ControllerReplacementPlan{}, badInput(fmt.Errorf("%s: %w: a %s cluster's controllers are replaced by its migration, not one by one", in.what(), fleet.ErrRefused, in.Spec.Mode()))
	}
	if a.Lifecycle == nil || a.Controllers == nil {
		return ControllerReplacementPlan{}, badInput(errors.New("this worker has no EC2 client or no KRaft controllers' client to replace controllers' hosts with"))
	}
	p := ControllerReplacementPlan{Old: host.InstanceID}
	old, err := a.Lifecycle.DescribeInstance(ctx, host.InstanceID)
	switch {
	case errors.Is(err, cloud.ErrInstanceNotFound):
		p.OldState = InstanceNotFound
	case err != nil:
		return p, fmt.Errorf("%s: %w", in.what(), err)
	default:
		p.OldState = old.State
	}
	live, err := a.liveControllerHosts(ctx, in.Spec.ID, in.Controller, host.InstanceID)
	if err != nil {
		return p, err
	}
	switch len(live) {
	case 0:
	case 1:
		p.Existing = live[0].ID
	default:
		return p, badInput(fmt.Errorf("%s: instances %s all run for it already: a human decides which stays", in.what(), instanceIDs(live)))
	}
	if p.Launch, err = a.controllerLaunchTemplate(ctx, in, old, host); err != nil {
		return p, err
	}
	p.Rack = cmp.Or(host.Rack, p.Launch.AZ)
	id, ctls, err := a.Controllers.ControllersFromControllers(ctx, in.Spec)
	if err != nil {
		return p, fmt.Errorf("%s: %w", in.what(), err)
	}
	if id == "" {
		return p, fmt.Errorf("%s: the controllers answered no Kafka cluster id", in.what())
	}
	p.KafkaClusterID = id
	if i := slices.IndexFunc(ctls, func(e kafka.NodeEndpoint) bool { return e.ID == in.Controller }); i >= 0 {
		p.OldAddress = ctls[i].Address
	}
	a.Log.Info().Str("cluster", in.Spec.ID).Int32("controller", in.Controller).Str("old", p.Old).Str("oldState", p.OldState).
		Str("existing", p.Existing).Str("az", p.Launch.AZ).Str("oldAddress", p.OldAddress).Msg("controller host replacement planned")
	return p, nil
}

// liveControllerHosts are the controller's instances pending or running,
// other than old.
func (a *Activities) liveControllerHosts(ctx context.Context, cluster string, node int32, old string) ([]cloud.Instance, error) {
	found, err := a.Lifecycle.FindInstances(ctx, cloud.InstanceFilter{Cluster: cluster, Role: cloud.RoleController, States: []string{"pending", "running"}})
	if err != nil {
		return nil, fmt.Errorf("cluster %s controller %d: %w", cluster, node, err)
	}
	n := strconv.Itoa(int(node))
	return slices.DeleteFunc(found, func(i cloud.Instance) bool { return i.ID == old || i.Tags[cloud.TagNodeID] != n }), nil
}

// controllerLaunchTemplate copies the old host when EC2 still describes
// it, else a sibling controller's; the zone is the old host's, else the
// controller's rack.
func (a *Activities) controllerLaunchTemplate(ctx context.Context, in ControllerInput, old cloud.Instance, host fleet.ControllerSpec) (LaunchTemplate, error) {
	from := old
	if from.ImageID == "" || from.InstanceType == "" {
		siblings, err := a.Lifecycle.FindInstances(ctx, cloud.InstanceFilter{Cluster: in.Spec.ID, Role: cloud.RoleController, States: []string{"running"}})
		if err != nil {
			return LaunchTemplate{}, fmt.Errorf("%s: %w", in.what(), err)
		}
		i := slices.IndexFunc(siblings, func(s cloud.Instance) bool { return s.ImageID != "" && s.InstanceType != "" })
		if i < 0 {
			return LaunchTemplate{}, badInput(fmt.Errorf("%s: no controller host of the cluster tells what to launch (image, type)", in.what()))
		}
		from = siblings[i]
		from.AZ, from.SubnetID = old.AZ, "" // a sibling's subnet is in its own zone
	}
	t := LaunchTemplate{AZ: cmp.Or(old.AZ, host.Rack), ImageID: from.ImageID, InstanceType: from.InstanceType,
		SubnetID: from.SubnetID, SecurityGroupIDs: from.SecurityGroupIDs, InstanceProfile: from.InstanceProfileARN, From: from.ID}
	if t.AZ == "" {
		return t, badInput(fmt.Errorf("%s: no zone to launch in: neither its old host nor its rack tells", in.what()))
	}
	return t, nil
}

// ControllerLaunchInput asks LaunchControllerReplacement for the
// controller's new host.
type ControllerLaunchInput struct {
	ControllerInput
	Plan ControllerReplacementPlan `json:"plan"`
	// Attempt numbers the hosts this operation launched for the
	// controller (one lost in turn needs another): part of the token.
	Attempt      int           `json:"attempt,omitempty"`
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

// LaunchControllerReplacement launches the controller's new host, tagged
// as the controller, and waits until it runs. A live host tagged with the
// node id other than the old one is the replacement (an earlier attempt's,
// or an earlier run's): it is not launched again.
func (a *Activities) LaunchControllerReplacement(ctx context.Context, in ControllerLaunchInput) (Host, error) {
	host, err := in.host()
	if err != nil {
		return Host{}, err
	}
	if a.Lifecycle == nil {
		return Host{}, badInput(errors.New("this worker has no EC2 client to launch hosts with"))
	}
	log := a.Log.With().Str("cluster", in.Spec.ID).Int32("controller", in.Controller).Str("old", host.InstanceID).Logger()
	live, err := a.liveControllerHosts(ctx, in.Spec.ID, in.Controller, host.InstanceID)
	if err != nil {
		return Host{}, err
	}
	t := in.Plan.Launch
	op := activity.GetInfo(ctx).WorkflowExecution.ID
	spec := cloud.LaunchSpec{
		Cluster: in.Spec.ID, Role: cloud.RoleController, NodeID: in.Controller, AZ: t.AZ,
		InstanceType: t.InstanceType, ImageID: t.ImageID, ClientToken: clientToken("controller", op, in.Controller, host.InstanceID, in.Attempt),
		SubnetID: t.SubnetID, SecurityGroupIDs: t.SecurityGroupIDs, InstanceProfile: t.InstanceProfile,
		Tags: map[string]string{cloud.TagRequestedBy: op, TagReplaces: host.InstanceID},
	}
	return a.launchOrAdopt(ctx, log, in.what(), "new host", live, spec, in.PollInterval)
}

// ControllerConfigInput configures the controller on its new host.
type ControllerConfigInput struct {
	ControllerInput
	New            string `json:"new"`
	Rack           string `json:"rack,omitempty"`
	KafkaClusterID string `json:"kafkaClusterId"`
}

// ConfigureReplacementController runs kfleet-ConfigureController on the
// new host with the controller's node id, the cluster's id and the voters
// — every controller's host (the new one for this node) on the CONTROLLER
// port — and the spec's metadata.version (else the finalized one). It
// returns the address the document prints.
func (a *Activities) ConfigureReplacementController(ctx context.Context, in ControllerConfigInput) (string, error) {
	if _, err := in.host(); err != nil {
		return "", err
	}
	if a.Lifecycle == nil || in.New == "" || in.KafkaClusterID == "" {
		return "", badInput(fmt.Errorf("%s: an EC2 client, the new host and the Kafka cluster id are required", in.what()))
	}
	addrs := map[int32]string{}
	for _, c := range in.Spec.KRaft.Controllers {
		id := c.InstanceID
		if c.ID == in.Controller {
			id = in.New
		}
		inst, err := a.Lifecycle.DescribeInstance(ctx, id)
		if err != nil && !errors.Is(err, cloud.ErrInstanceNotFound) {
			return "", fmt.Errorf("%s: voters: %w", in.what(), err)
		}
		if inst.PrivateIP == "" {
			// A voter whose host is gone keeps its place: its address
			// is informational where voters are found by node id, and
			// it gets a host of its own when it is replaced in turn.
			inst.PrivateIP = "0.0.0.0"
		}
		addrs[c.ID] = net.JoinHostPort(inst.PrivateIP, strconv.Itoa(fleet.ControllerPort))
	}
	voters, err := fleet.QuorumVoters(in.Spec.ControllerIDs(), addrs)
	if err != nil {
		return "", badInput(fmt.Errorf("%s: %w", in.what(), err))
	}
	mv := in.Spec.KRaft.MetadataVersion
	if mv == "" && a.KRaft != nil {
		level, _, err := a.KRaft.MetadataVersionSupport(ctx, in.Spec)
		if err != nil {
			return "", fmt.Errorf("%s: metadata.version: %w", in.what(), err)
		}
		m, ok := fleet.MetadataVersionAt(level)
		if !ok {
			return "", badInput(fmt.Errorf("%s: finalized metadata.version level %d is unknown to kfleet", in.what(), level))
		}
		mv = m.Name
	}
	return a.ConfigureControllerNode(ctx, ControllerNodeInput{Cluster: in.Spec.ID, InstanceID: in.New, NodeID: in.Controller, Rack: in.Rack,
		QuorumVoters: voters, KafkaClusterID: in.KafkaClusterID, MetadataVersion: mv, Reason: in.Reason})
}

// RetireControllerInput asks RetireControllerHost to terminate the
// controller's replaced host.
type RetireControllerInput struct {
	ControllerInput
	Old string `json:"old"`
	New string `json:"new"`
}

// RetireControllerHost terminates the replaced host if it still exists, so
// it can never run a second controller with the node id; one gone already
// is left alone. It refuses to terminate the new host.
func (a *Activities) RetireControllerHost(ctx context.Context, in RetireControllerInput) (string, error) {
	if in.Old == "" || in.Old == in.New {
		return "", badInput(fmt.Errorf("%s: old host %q and new host %q: nothing to retire", in.what(), in.Old, in.New))
	}
	if a.Lifecycle == nil {
		return "", badInput(errors.New("this worker has no EC2 client to terminate hosts with"))
	}
	old, err := a.Lifecycle.DescribeInstance(ctx, in.Old)
	switch {
	case errors.Is(err, cloud.ErrInstanceNotFound):
		return InstanceNotFound, nil
	case err != nil:
		return "", fmt.Errorf("%s: %w", in.what(), err)
	case old.State == "shutting-down" || old.State == "terminated":
		return old.State, nil
	}
	change, err := a.Lifecycle.TerminateInstance(ctx, in.Old)
	if err != nil {
		return "", fmt.Errorf("%s: retire replaced host: %w", in.what(), err)
	}
	a.Log.Info().Str("cluster", in.Spec.ID).Int32("controller", in.Controller).Str("instance", in.Old).
		Str("from", change.Previous).Str("to", change.Current).Msg("controller's replaced host terminated")
	return change.Current, nil
}

// SetControllerHostInput tells the entity the controller's new host and
// address.
type SetControllerHostInput struct {
	Cluster    string `json:"cluster"`
	Controller int32  `json:"controller"`
	From       string `json:"from"`
	To         string `json:"to"`
	OldAddress string `json:"oldAddress,omitempty"`
	Address    string `json:"address,omitempty"`
}

// SetControllerHost makes the entity's spec name the controller's new host
// and address; a spec that names them already changes nothing.
func (a *Activities) SetControllerHost(ctx context.Context, in SetControllerHostInput) (bool, error) {
	specs, ok := a.Specs.(ControllerSpecs)
	if !ok {
		return false, badInput(errors.New("this worker cannot change controllers in cluster specs"))
	}
	changed, err := specs.SetControllerHost(ctx, in.Cluster, in.Controller, in.From, in.To, in.OldAddress, in.Address)
	switch {
	case errors.Is(err, fleet.ErrRefused) || errors.Is(err, fleet.ErrUnknownCluster):
		return false, badInput(err)
	case err != nil:
		return false, fmt.Errorf("cluster %s controller %d: set its host to %s: %w", in.Cluster, in.Controller, in.To, err)
	}
	a.Log.Info().Str("cluster", in.Cluster).Int32("controller", in.Controller).Str("from", in.From).Str("to", in.To).
		Str("address", in.Address).Bool("changed", changed).Msg("the entity's spec names the controller's new host")
	return changed, nil
}
