package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// AddBrokersParams ask for brokers more; the type and size default to
// the cluster's own.
type AddBrokersParams struct {
	Count        int    `json:"count"`
	InstanceType string `json:"instanceType,omitempty"`
	VolumeGiB    int32  `json:"volumeGiB,omitempty"`
	// KafkaVersion is what the new brokers run: the entity fills in the
	// cluster's (its protocol level) when not given.
	KafkaVersion string `json:"kafkaVersion,omitempty"`
	MoveParams
}

// MaxBrokersAdded bounds one addition: more at once is a new cluster.
const MaxBrokersAdded = 50

func (p AddBrokersParams) validate() error {
	if p.Count < 1 || p.Count > MaxBrokersAdded {
		return fmt.Errorf("count %d: want 1-%d brokers", p.Count, MaxBrokersAdded)
	}
	if p.VolumeGiB < 0 {
		return fmt.Errorf("volumeGiB %d: must not be negative", p.VolumeGiB)
	}
	if p.KafkaVersion != "" {
		if _, err := fleet.ParseKafkaVersion(p.KafkaVersion); err != nil {
			return fmt.Errorf("kafkaVersion: %w", err)
		}
	}
	return p.MoveParams.validate()
}

// AddBrokersWorkflow adds brokers to a cluster and moves partitions onto
// them. Each new broker's host and volume carry ClientTokens derived from
// this workflow's first run, so a worker killed at any point never gets a
// broker two hosts; a retry finds what an earlier attempt launched.
func AddBrokersWorkflow(ctx workflow.Context, in ResizeInput) (ResizeResult, error) {
	z, err := newResizing(ctx, in, "broker addition")
	if err != nil {
		return ResizeResult{}, err
	}
	spec, p := in.Spec, in.Add
	who := in.OperationID + ", requested by " + in.RequestedBy
	tag := runTag(workflow.GetInfo(ctx).FirstRunID)
	fp := "grow-" + tag
	token := func(what string, b int32) string { return fmt.Sprintf("%s-%s%d-%s", spec.ID, what, b, tag) }

	var plan activities.GrowPlan
	z.progress.Step = "planning the new brokers"
	z.gate.changed(ctx)
	// A refusal (an instance type not offered, a volume too small) ends
	// the addition here, nothing launched.
	if err := workflow.ExecuteActivity(provisionContext(ctx, 2*time.Minute, fmt.Sprintf("plan %d new broker(s)", p.Count)), a.PlanBrokerAddition,
		activities.GrowInput{Spec: spec, Count: p.Count, InstanceType: p.InstanceType, VolumeGiB: p.VolumeGiB}).Get(ctx, &plan); err != nil {
		return z.res, err
	}
	ids := make([]int32, len(plan.Brokers))
	zone := map[int32]string{}
	for i, nb := range plan.Brokers {
		ids[i], zone[nb.ID] = nb.ID, nb.AZ
	}
	hosts, volumes := map[int32]activities.ProvisionedHost{}, map[int32]string{}
	if err := z.parallel(ctx, fmt.Sprintf("launching brokers %v (%s, %d GiB)", ids, plan.InstanceType, plan.VolumeGiB), ids, func(ctx workflow.Context, b int32) error {
		if _, ok := hosts[b]; !ok {
			var h activities.ProvisionedHost
			if err := workflow.ExecuteActivity(provisionContext(ctx, 20*time.Minute, fmt.Sprintf("launch broker %d in %s", b, zone[b])), a.LaunchHost,
				activities.HostInput{Cluster: spec.ID, Role: cloud.RoleBroker, N: b, AZ: zone[b], InstanceType: plan.InstanceType,
					Plan: fp, Token: token("b", b), RequestedBy: who}).Get(ctx, &h); err != nil {
				return err
			}
			hosts[b] = h
			z.res.Hosts++
		}
		if _, ok := volumes[b]; !ok {
			var id string
			if err := workflow.ExecuteActivity(provisionContext(ctx, 20*time.Minute, fmt.Sprintf("create broker %d's data volume", b)), a.ProvisionDataVolume,
				activities.VolumeInput{Cluster: spec.ID, Broker: b, AZ: zone[b], SizeGiB: plan.VolumeGiB, Plan: fp, Token: token("v", b), RequestedBy: who}).Get(ctx, &id); err != nil {
				return err
			}
			volumes[b] = id
			z.res.Volumes++
		}
		return workflow.ExecuteActivity(provisionContext(ctx, 10*time.Minute, fmt.Sprintf("attach broker %d's data volume", b)), a.AttachProvisionedVolume,
			activities.ProvisionAttachInput{Cluster: spec.ID, Broker: b, VolumeID: volumes[b], InstanceID: hosts[b].ID}).Get(ctx, nil)
	}); err != nil {
		return z.res, err
	}
	configured := map[int32]bool{}
	if err := z.parallel(ctx, fmt.Sprintf("configuring and starting brokers %v", ids), ids, func(ctx workflow.Context, b int32) error {
		bin := activities.BrokerHostInput{Cluster: spec.ID, Broker: b, InstanceID: hosts[b].ID, VolumeID: volumes[b], Rack: zone[b],
			ZooKeeper: spec.ZooKeeper, KafkaVersion: p.KafkaVersion, Reason: who}
		if !configured[b] {
			if err := workflow.ExecuteActivity(provisionContext(ctx, 10*time.Minute, fmt.Sprintf("configure broker %d", b)), a.ConfigureBrokerHost, bin).Get(ctx, nil); err != nil {
				return err
			}
			configured[b] = true
		}
		return workflow.ExecuteActivity(provisionContext(ctx, 10*time.Minute, fmt.Sprintf("start broker %d", b)), a.StartBrokerHost, bin).Get(ctx, nil)
	}); err != nil {
		return z.res, err
	}
	if err := z.step(ctx, fmt.Sprintf("checking brokers %v registered and configured, adding them to the spec", ids), func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(provisionContext(ctx, 15*time.Minute, "verify the new brokers and add them to the spec"), a.JoinBrokers,
			activities.JoinInput{Spec: spec, New: plan.Brokers, Hosts: hosts}).Get(ctx, &spec)
	}); err != nil {
		return z.res, err
	}
	z.res.Added = ids
	if err := z.rebalance(ctx, spec, nil); err != nil {
		return z.res, err
	}
	z.progress.Step = fmt.Sprintf("brokers %v added; %d partition(s) moved: %s", ids, z.res.Moves.Moved, z.res.Moves.After)
	z.gate.changed(ctx)
	return z.res, nil
}
