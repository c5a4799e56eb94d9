package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// Growing and shrinking a cluster (AddBrokersWorkflow,
// RemoveBrokerWorkflow): new brokers are launched like a provisioning's
// (provision.go's steps, with tokens of their own), then join the
// entity's spec; a broker leaves the spec once it is drained, stopped,
// terminated and its volume deleted. Partitions move in rebalance.go.

// GrowInput asks for Count brokers more. InstanceType and VolumeGiB
// default to the cluster's own (its running brokers', its largest data
// volume).
type GrowInput struct {
	Spec         fleet.ClusterSpec `json:"spec"`
	Count        int               `json:"count"`
	InstanceType string            `json:"instanceType,omitempty"`
	VolumeGiB    int32             `json:"volumeGiB,omitempty"`
}

// NewBroker is a broker to add: its id and zone (its broker.rack).
type NewBroker struct {
	ID int32  `json:"id"`
	AZ string `json:"az"`
}

// GrowPlan is what PlanBrokerAddition decided.
type GrowPlan struct {
	Brokers      []NewBroker `json:"brokers"`
	InstanceType string      `json:"instanceType"`
	VolumeGiB    int32       `json:"volumeGiB"`
}

// PlanBrokerAddition picks the new brokers' ids (after the highest the
// cluster has), zones (each to the zone with the fewest brokers, so racks
// stay even), instance type and volume size, changing nothing. An
// instance type EC2 does not offer in a zone, or a volume smaller than
// the cluster's largest, is refused.
func (a *Activities) PlanBrokerAddition(ctx context.Context, in GrowInput) (GrowPlan, error) {
	spec := in.Spec
	if in.Count < 1 {
		return GrowPlan{}, badInput(fmt.Errorf("cluster %s: add %d brokers: at least one", spec.ID, in.Count))
	}
	if a.EC2 == nil {
		return GrowPlan{}, badInput(errors.New("this worker has no EC2 client to launch brokers with"))
	}
	hosts, err := a.EC2.FindInstances(ctx, cloud.InstanceFilter{Cluster: spec.ID, Role: cloud.RoleBroker, States: []string{"running"}})
	if err != nil {
		return GrowPlan{}, fmt.Errorf("cluster %s: %w", spec.ID, err)
	}
	plan := GrowPlan{InstanceType: in.InstanceType, VolumeGiB: in.VolumeGiB}
	zoneOf := map[int32]string{}
	for _, h := range hosts {
		if h.BrokerID >= 0 {
			zoneOf[h.BrokerID] = h.AZ
		}
		if plan.InstanceType == "" && h.InstanceType != "" {
			plan.InstanceType = h.InstanceType
		}
	}
	if plan.InstanceType == "" {
		return GrowPlan{}, badInput(fmt.Errorf("cluster %s: no running broker host tells the instance type to launch: give one", spec.ID))
	}
	count := map[string]int{}
	var top int32 = -1
	for _, b := range spec.Brokers {
		top = max(top, b.ID)
		if z := cmp.Or(b.Rack, zoneOf[b.ID]); z != "" {
			count[z]++
		}
	}
	if len(count) == 0 {
		zones, err := a.EC2.AvailabilityZones(ctx)
		if err != nil {
			return GrowPlan{}, fmt.Errorf("cluster %s: %w", spec.ID, err)
		}
		for _, z := range zones[:min(3, len(zones))] {
			count[z] = 0
		}
	}
	offered, err := a.EC2.InstanceTypeZones(ctx, []string{plan.InstanceType})
	if err != nil {
		return GrowPlan{}, fmt.Errorf("cluster %s: %w", spec.ID, err)
	}
	for z := range count {
		if !slices.Contains(offered[plan.InstanceType], z) {
			return GrowPlan{}, badInput(fmt.Errorf("cluster %s: instance type %s is not offered in zone %s", spec.ID, plan.InstanceType, z))
		}
	}
	largest, err := a.largestDataVolume(ctx, spec.ID)
	if err != nil {
		return GrowPlan{}, err
	}
	switch {
	case plan.VolumeGiB == 0 && largest == 0:
		return GrowPlan{}, badInput(fmt.Errorf("cluster %s: no data volume tells the size of the new brokers': give one", spec.ID))
	case plan.VolumeGiB == 0:
		plan.VolumeGiB = largest
	case plan.VolumeGiB < largest:
		return GrowPlan{}, badInput(fmt.Errorf("cluster %s: a %d GiB volume is smaller than the cluster's brokers' (%d GiB): they would fill first", spec.ID, plan.VolumeGiB, largest))
	}
	zones := slices.Sorted(maps.Keys(count))
	for i := range in.Count {
		z := slices.MinFunc(zones, func(x, y string) int { return cmp.Or(cmp.Compare(count[x], count[y]), strings.Compare(x, y)) })
		count[z]++
		plan.Brokers = append(plan.Brokers, NewBroker{ID: top + 1 + int32(i), AZ: z})
	}
	a.Log.Info().Str("cluster", spec.ID).Int("count", in.Count).Str("instanceType", plan.InstanceType).Int32("volumeGiB", plan.VolumeGiB).
		Any("brokers", plan.Brokers).Msg("broker addition planned")
	return plan, nil
}

func (a *Activities) largestDataVolume(ctx context.Context, cluster string) (int32, error) {
	vols, err := a.EC2.FindVolumes(ctx, cloud.VolumeFilter{Cluster: cluster, Role: cloud.RoleKafkaData, States: []string{"available", "in-use"}})
	if err != nil {
		return 0, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	var size int32
	for _, v := range vols {
		size = max(size, v.SizeGiB)
	}
	return size, nil
}

// JoinInput names brokers launched and started for a cluster.
type JoinInput struct {
	Spec  fleet.ClusterSpec         `json:"spec"`
	New   []NewBroker               `json:"new"`
	Hosts map[int32]ProvisionedHost `json:"hosts"`
}

// JoinBrokers waits until the new brokers are registered, checks their
// configuration (DescribeConfigs: id, rack, ensemble, the safe defaults)
// and adds them to the entity's spec, which it returns. Brokers in the
// spec already are not added again.
func (a *Activities) JoinBrokers(ctx context.Context, in JoinInput) (fleet.ClusterSpec, error) {
	spec := in.Spec
	if a.Specs == nil {
		return spec, badInput(errors.New("this worker has no Temporal client to change cluster specs with"))
	}
	tick := a.ticker(ctx, "waiting for the new brokers' registrations")
	var ids []int32
	for _, b := range in.New {
		ids = append(ids, b.ID)
		if err := a.ZooKeeper.WaitBrokerRegistered(ctx, spec, b.ID, a.pollInterval()*5, tick); err != nil {
			return spec, err
		}
	}
	endpoints, err := a.Chroots.BrokerEndpoints(ctx, spec)
	if err != nil {
		return spec, err
	}
	defer keepAlive(ctx, "checking the new brokers' configurations")()
	configs, err := a.Admin.BrokerConfigs(ctx, spec, ids)
	if err != nil {
		return spec, err
	}
	var add []fleet.BrokerSpec
	var bootstrap, wrong []string
	for _, b := range in.New {
		if m := fleet.ConfigMismatches(fleet.BrokerConfig(b.ID, b.AZ, spec.ZooKeeper), configs[b.ID]); len(m) > 0 {
			wrong = append(wrong, fmt.Sprintf("broker %d: %s", b.ID, strings.Join(m, ", ")))
		}
		h, addr := in.Hosts[b.ID], endpoints[b.ID]
		if h.ID == "" || addr == "" {
			return spec, fmt.Errorf("cluster %s broker %d: not registered, or no host known", spec.ID, b.ID)
		}
		add = append(add, fleet.BrokerSpec{ID: b.ID, InstanceID: h.ID, Rack: b.AZ, MetricsURL: metricsURL(a.Provisioning.MetricsURL, spec.ID, b.ID, h.PrivateIP)})
		bootstrap = append(bootstrap, addr)
	}
	if len(wrong) > 0 {
		return spec, badInput(fmt.Errorf("cluster %s: new brokers run another configuration than kfleet wrote: %s", spec.ID, strings.Join(wrong, "; ")))
	}
	out, err := a.Specs.AddBrokers(ctx, spec.ID, add, bootstrap)
	if errors.Is(err, fleet.ErrRefused) {
		return spec, badInput(err)
	}
	if err != nil {
		return spec, err
	}
	a.Log.Info().Str("cluster", spec.ID).Ints32("brokers", ids).Msg("new brokers joined the cluster's spec")
	return out, nil
}

// RemovalCheck is what CheckBrokerRemoval found.
type RemovalCheck struct {
	// LargestRF is the largest replication factor of the cluster's
	// partitions; Remaining the brokers left without the one leaving.
	LargestRF int `json:"largestRf"`
	Remaining int `json:"remaining"`
	// Replicas counts the broker's replicas (targets of moves under way
	// included).
	Replicas int `json:"replicas"`
	// Address is where the broker listens (its registration), "" once
	// it is gone: the bootstrap entry to drop with it.
	Address string `json:"address,omitempty"`
}

// CheckBrokerRemoval refuses (bad input, nothing changed) a removal that
// would leave fewer brokers than the largest replication factor, and
// counts the replicas the broker still holds.
func (a *Activities) CheckBrokerRemoval(ctx context.Context, in BrokerInput) (RemovalCheck, error) {
	spec := in.Spec
	if _, ok := spec.Broker(in.Broker); !ok {
		return RemovalCheck{}, badInput(fmt.Errorf("cluster %s: broker %d is not in the cluster", spec.ID, in.Broker))
	}
	_, parts, err := a.Reassigner.Replication(ctx, spec)
	if err != nil {
		return RemovalCheck{}, err
	}
	ongoing, err := a.Reassigner.Reassignments(ctx, spec)
	if err != nil {
		return RemovalCheck{}, err
	}
	c := RemovalCheck{Remaining: len(spec.Brokers) - 1}
	for _, p := range placedAt(parts, ongoing) {
		c.LargestRF = max(c.LargestRF, len(p.Replicas))
		if p.HostedOn(in.Broker) {
			c.Replicas++
		}
	}
	for _, o := range ongoing {
		if slices.Contains(o.Removing, in.Broker) {
			c.Replicas++ // still copying away from it
		}
	}
	if endpoints, err := a.Chroots.BrokerEndpoints(ctx, spec); err == nil {
		c.Address = endpoints[in.Broker]
	}
	if c.Remaining < c.LargestRF {
		return c, badInput(fmt.Errorf("cluster %s: removing broker %d would leave %d broker(s), fewer than the largest replication factor (%d): refused, nothing changed",
			spec.ID, in.Broker, c.Remaining, c.LargestRF))
	}
	return c, nil
}

// LeaveInput takes a removed broker out of the entity's spec.
type LeaveInput struct {
	Cluster string `json:"cluster"`
	Broker  int32  `json:"broker"`
	// Address is its bootstrap entry to drop, if listed.
	Address string `json:"address,omitempty"`
}

// LeaveSpec removes the broker from the entity's spec (and its address
// from the bootstrap list); gone already is done.
func (a *Activities) LeaveSpec(ctx context.Context, in LeaveInput) (fleet.ClusterSpec, error) {
	if a.Specs == nil {
		return fleet.ClusterSpec{}, badInput(errors.New("this worker has no Temporal client to change cluster specs with"))
	}
	spec, err := a.Specs.RemoveBroker(ctx, in.Cluster, in.Broker, in.Address)
	if errors.Is(err, fleet.ErrRefused) {
		return spec, badInput(err)
	}
	return spec, err
}
