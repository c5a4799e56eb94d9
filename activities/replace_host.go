package activities

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// Host replacement (OPERATIONS.md "Provisioning and hosts"): a broker whose
// instance is gone gets a new one with the same broker.id and rack, its
// data volume moved over (or a blank one when it is lost), configured and
// started through SSM. Each step is an activity that reads EC2 before it
// acts, so a retry — after a worker was killed anywhere — finds what an
// earlier attempt did and carries on from there: a launch or a volume
// creation is found by its tags and made with a ClientToken derived from
// the recovery, so a broker never gets two hosts or two volumes.

// Error types of host replacement the recovery acts on.
const (
	// ErrTypeNoCapacity: EC2 has no capacity for the replacement in the
	// broker's zone (InsufficientInstanceCapacity); retried a few times,
	// then a human decides.
	ErrTypeNoCapacity = "NoCapacity"
	// ErrTypeHostBack: the old instance runs (or starts) again, so no
	// replacement is launched beside it: the recovery diagnoses again.
	ErrTypeHostBack = "HostBack"
	// ErrTypeReplacementGone: the host this recovery launched is gone
	// (terminated behind its back): a new attempt launches another.
	ErrTypeReplacementGone = "ReplacementGone"
)

// ReplaceInput names a lost broker whose host kfleet replaces. Spec names
// its old host.
type ReplaceInput struct {
	BrokerInput
	// Attempt numbers the hosts this recovery launched for the broker (a
	// replacement lost in turn needs another); it is part of the launch's
	// and the volume's ClientTokens.
	Attempt int `json:"attempt,omitempty"`
}

func (in ReplaceInput) what() string {
	return fmt.Sprintf("cluster %s broker %d", in.Spec.ID, in.Broker)
}

// LaunchTemplate is what a replacement host runs and where: its old
// host's, or when that is unknown to EC2 a sibling broker's.
type LaunchTemplate struct {
	AZ               string   `json:"az"`
	ImageID          string   `json:"imageId"`
	InstanceType     string   `json:"instanceType"`
	SubnetID         string   `json:"subnetId,omitempty"`
	SecurityGroupIDs []string `json:"securityGroupIds,omitempty"`
	InstanceProfile  string   `json:"instanceProfile,omitempty"`
	// From names the instance the template was read from.
	From string `json:"from"`
}

// ReplacementPlan is what PlanHostReplacement found: the old host, the
// replacement an earlier attempt launched (if any), the data volume to
// move over or the blank one to create, and what to launch.
type ReplacementPlan struct {
	Old      string `json:"old"`
	OldState string `json:"oldState"`
	// Existing is a host of the broker that is pending or running already
	// (an earlier attempt's launch): it is the replacement.
	Existing string         `json:"existing,omitempty"`
	Launch   LaunchTemplate `json:"launch"`
	// Rack is the broker.rack to configure: the spec's, else the zone.
	Rack   string             `json:"rack"`
	Volume fleet.VolumeChoice `json:"volume"`
	// NewVolumeGiB is the size of a blank volume, when the volume is lost:
	// the old volume's or, unknown, the largest of the cluster's.
	NewVolumeGiB int32 `json:"newVolumeGiB,omitempty"`
	// Device is where the data volume is attached on the new host.
	Device string `json:"device"`
}

// dataDevice is where kfleet attaches a broker's data volume when the old
// attachment does not say.
const dataDevice = "/dev/xvdb"

// PlanHostReplacement reads what a host replacement needs, changing
// nothing: the old instance, a live replacement launched already, the
// broker's data volumes (fleet.ChooseDataVolume picks the one to move or
// finds it lost) and what to launch. Two live hosts for the broker already,
// or volumes that cannot be told apart, are for a human.
func (a *Activities) PlanHostReplacement(ctx context.Context, in ReplaceInput) (ReplacementPlan, error) {
	host, err := in.host()
	if err != nil {
		return ReplacementPlan{}, err
	}
	if a.Lifecycle == nil {
		return ReplacementPlan{}, badInput(errors.New("this worker has no EC2 client to replace hosts with"))
	}
	p := ReplacementPlan{Old: host.InstanceID, Device: dataDevice}
	old, err := a.Lifecycle.DescribeInstance(ctx, host.InstanceID)
	switch {
	case errors.Is(err, cloud.ErrInstanceNotFound):
		p.OldState = InstanceNotFound
	case err != nil:
		return ReplacementPlan{}, fmt.Errorf("%s: %w", in.what(), err)
	default:
		p.OldState = old.State
	}
	live, err := a.liveHosts(ctx, in.Spec.ID, in.Broker, host.InstanceID)
	if err != nil {
		return ReplacementPlan{}, err
	}
	switch len(live) {
	case 0:
	case 1:
		p.Existing = live[0].ID
	default:
		return ReplacementPlan{}, badInput(fmt.Errorf("%s: instances %s all run for it already: a human decides which stays", in.what(), instanceIDs(live)))
	}
	if p.Launch, err = a.launchTemplate(ctx, in, old); err != nil {
		return ReplacementPlan{}, err
	}
	vols, err := a.Lifecycle.FindVolumes(ctx, cloud.VolumeFilter{Cluster: in.Spec.ID, Role: cloud.RoleKafkaData, BrokerID: &in.Broker})
	if err != nil {
		return ReplacementPlan{}, fmt.Errorf("%s: %w", in.what(), err)
	}
	sightings := make([]fleet.VolumeSighting, 0, len(vols))
	for _, v := range vols {
		sightings = append(sightings, fleet.VolumeSighting{ID: v.ID, State: v.State, AZ: v.AZ, InstanceID: v.InstanceID,
			AttachState: v.AttachState, SizeGiB: v.SizeGiB, Device: v.Device})
	}
	if p.Volume, err = fleet.ChooseDataVolume(in.Broker, sightings, host.InstanceID, p.Existing); err != nil {
		return ReplacementPlan{}, badInput(fmt.Errorf("%s: %w", in.what(), err))
	}
	if v := p.Volume.Volume; !p.Volume.Lost {
		// The data decides the zone: an EBS volume attaches only there.
		p.Launch.AZ = cmp.Or(v.AZ, p.Launch.AZ)
		if v.Device != "" && v.InstanceID == host.InstanceID {
			p.Device = v.Device
		}
	} else if p.NewVolumeGiB, err = a.blankVolumeSize(ctx, in, sightings); err != nil {
		return ReplacementPlan{}, err
	}
	if p.Launch.AZ == "" {
		return ReplacementPlan{}, badInput(fmt.Errorf("%s: no zone to launch in: neither its old host, its volume nor its rack tells", in.what()))
	}
	p.Rack = cmp.Or(host.Rack, p.Launch.AZ)
	a.Log.Info().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Str("old", p.Old).Str("oldState", p.OldState).
		Str("existing", p.Existing).Str("az", p.Launch.AZ).Str("volume", p.Volume.Volume.ID).Bool("volumeLost", p.Volume.Lost).
		Msg("host replacement planned: " + p.Volume.Why)
	return p, nil
}

// liveHosts are the broker's instances pending or running, other than
// old: a replacement an earlier attempt launched.
func (a *Activities) liveHosts(ctx context.Context, cluster string, broker int32, old string) ([]cloud.Instance, error) {
	found, err := a.Lifecycle.FindInstances(ctx, cloud.InstanceFilter{Cluster: cluster, Role: cloud.RoleBroker, BrokerID: &broker,
		States: []string{"pending", "running"}})
	if err != nil {
		return nil, fmt.Errorf("cluster %s broker %d: %w", cluster, broker, err)
	}
	return slices.DeleteFunc(found, func(i cloud.Instance) bool { return i.ID == old }), nil
}

// launchTemplate copies the old host when EC2 still describes it, else a
// sibling broker's host of the cluster (a host long terminated is
// forgotten by EC2); the zone is the old host's, else the broker's rack.
func (a *Activities) launchTemplate(ctx context.Context, in ReplaceInput, old cloud.Instance) (LaunchTemplate, error) {
	host, _ := in.Spec.Broker(in.Broker)
	from := old
	if from.ImageID == "" || from.InstanceType == "" {
		siblings, err := a.Lifecycle.FindInstances(ctx, cloud.InstanceFilter{Cluster: in.Spec.ID, Role: cloud.RoleBroker, States: []string{"running"}})
		if err != nil {
			return LaunchTemplate{}, fmt.Errorf("%s: %w", in.what(), err)
		}
		i := slices.IndexFunc(siblings, func(s cloud.Instance) bool { return s.ImageID != "" && s.InstanceType != "" })
		if i < 0 {
			return LaunchTemplate{}, badInput(fmt.Errorf("%s: no host of the cluster tells what to launch (image, type)", in.what()))
		}
		from = siblings[i]
		from.AZ, from.SubnetID = old.AZ, "" // a sibling's subnet is in its own zone
	}
	return LaunchTemplate{
		AZ: cmp.Or(old.AZ, host.Rack), ImageID: from.ImageID, InstanceType: from.InstanceType,
		SubnetID: from.SubnetID, SecurityGroupIDs: from.SecurityGroupIDs, InstanceProfile: from.InstanceProfileARN, From: from.ID,
	}, nil
}

// blankVolumeSize is the size of a lost volume's replacement: the lost
// one's, when EC2 still tells it, else the largest data volume of the
// cluster.
func (a *Activities) blankVolumeSize(ctx context.Context, in ReplaceInput, own []fleet.VolumeSighting) (int32, error) {
	var size int32
	for _, v := range own {
		size = max(size, v.SizeGiB)
	}
	if size > 0 {
		return size, nil
	}
	all, err := a.Lifecycle.FindVolumes(ctx, cloud.VolumeFilter{Cluster: in.Spec.ID, Role: cloud.RoleKafkaData})
	if err != nil {
		return 0, fmt.Errorf("%s: %w", in.what(), err)
	}
	for _, v := range all {
		size = max(size, v.SizeGiB)
	}
	if size == 0 {
		return 0, badInput(fmt.Errorf("%s: its data volume is lost and no volume of the cluster tells the size of a new one", in.what()))
	}
	return size, nil
}

// LaunchInput asks LaunchReplacement for the broker's new host.
type LaunchInput struct {
	ReplaceInput
	Plan ReplacementPlan `json:"plan"`
	// PollInterval paces the wait until it runs; 0: the worker's.
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

// Host is a replacement host, running.
type Host struct {
	InstanceID string `json:"instanceId"`
	AZ         string `json:"az"`
	PrivateIP  string `json:"privateIp,omitempty"`
	// Adopted: it was launched by an earlier attempt, found by its tags.
	Adopted bool `json:"adopted,omitempty"`
}

// LaunchReplacement launches the broker's new host, tagged as the broker's,
// and waits until it runs. It checks first: a live host of the broker other
// than the old one (an earlier attempt's) is the replacement; an old host
// that runs again gets none beside it (ErrTypeHostBack). The launch's
// ClientToken derives from the recovery, the broker, the old host and the
// attempt, so a retry whose describe missed a launch still gets the same
// instance back, never a second one.
func (a *Activities) LaunchReplacement(ctx context.Context, in LaunchInput) (Host, error) {
	host, err := in.host()
	if err != nil {
		return Host{}, err
	}
	if a.Lifecycle == nil {
		return Host{}, badInput(errors.New("this worker has no EC2 client to launch hosts with"))
	}
	log := a.Log.With().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Str("old", host.InstanceID).Logger()
	old, err := a.Lifecycle.DescribeInstance(ctx, host.InstanceID)
	if err != nil && !errors.Is(err, cloud.ErrInstanceNotFound) {
		return Host{}, fmt.Errorf("%s: %w", in.what(), err)
	}
	if err == nil && (old.State == "pending" || old.State == "running") {
		return Host{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s: its old host %s is %s again: no replacement beside it", in.what(), old.ID, old.State), ErrTypeHostBack, nil)
	}
	live, err := a.liveHosts(ctx, in.Spec.ID, in.Broker, host.InstanceID)
	if err != nil {
		return Host{}, err
	}
	t := in.Plan.Launch
	op := activity.GetInfo(ctx).WorkflowExecution.ID
	spec := cloud.LaunchSpec{
		Cluster: in.Spec.ID, Role: cloud.RoleBroker, BrokerID: in.Broker, AZ: t.AZ,
		InstanceType: t.InstanceType, ImageID: t.ImageID, ClientToken: clientToken("host", op, in.Broker, host.InstanceID, in.Attempt),
		SubnetID: t.SubnetID, SecurityGroupIDs: t.SecurityGroupIDs, InstanceProfile: t.InstanceProfile,
		Tags: map[string]string{cloud.TagRequestedBy: op, TagReplaces: host.InstanceID},
	}
	return a.launchOrAdopt(ctx, log, in.what(), "replacement host", live, spec, in.PollInterval)
}

// launchOrAdopt is a replacement's launch, checked first: live are the
// node's live hosts other than the old one; one of them is the
// replacement (an earlier attempt's, or an earlier run's) and is not
// launched again; none, spec is launched, its ClientToken deriving from
// the operation, the node, the old host and the attempt, so a retry whose
// describe missed a launch still gets the same instance back. Either way
// it waits until the host runs. what names the node, noun its new host.
func (a *Activities) launchOrAdopt(ctx context.Context, log zerolog.Logger, what, noun string, live []cloud.Instance, spec cloud.LaunchSpec, poll time.Duration) (Host, error) {
	var inst cloud.Instance
	switch len(live) {
	case 0:
		var err error
		inst, err = a.Lifecycle.LaunchInstance(ctx, spec)
		switch {
		case errors.Is(err, cloud.ErrCapacity):
			return Host{}, temporal.NewApplicationErrorWithCause(fmt.Sprintf("%s: %v", what, err), ErrTypeNoCapacity, err)
		case errors.Is(err, cloud.ErrInvalidSpec), errors.Is(err, cloud.ErrIdempotentMismatch):
			return Host{}, badInput(fmt.Errorf("%s: %w", what, err))
		case err != nil:
			return Host{}, fmt.Errorf("%s: %w", what, err)
		}
		log.Info().Str("instance", inst.ID).Str("token", spec.ClientToken).Str("az", spec.AZ).Msg(noun + " launched (or found by its token)")
	case 1:
		inst = live[0]
		log.Info().Str("instance", inst.ID).Str("state", inst.State).Msg(noun + " found by its tags: not launching another")
	default:
		return Host{}, badInput(fmt.Errorf("%s: instances %s all run for it: a human decides which stays", what, instanceIDs(live)))
	}
	activity.RecordHeartbeat(ctx, inst.ID)
	if inst.State == "shutting-down" || inst.State == "terminated" {
		return Host{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("%s: its %s %s is %s", what, noun, inst.ID, inst.State), ErrTypeReplacementGone, nil)
	}
	running, err := a.waitInstance(ctx, poll, inst.ID, "running")
	if err != nil {
		return Host{}, fmt.Errorf("%s: %s %s: %w", what, noun, inst.ID, err)
	}
	return Host{InstanceID: running.ID, AZ: running.AZ, PrivateIP: running.PrivateIP, Adopted: len(live) == 1}, nil
}

// TagReplaces marks a replacement host with the instance it replaces.
const TagReplaces = "kfleet:replaces"

// waitInstance polls the instance until it is in state want, heartbeating;
// a state it cannot reach want from is an error.
func (a *Activities) waitInstance(ctx context.Context, interval time.Duration, id, want string) (cloud.Instance, error) {
	var inst cloud.Instance
	err := a.poll(ctx, interval, time.Time{}, func() (bool, error) {
		var err error
		if inst, err = a.Lifecycle.DescribeInstance(ctx, id); err != nil {
			return false, err
		}
		if want == "running" && (inst.State == "shutting-down" || inst.State == "terminated" || inst.State == "stopped") {
			return false, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("instance %s is %s: it will not run", id, inst.State), ErrTypeReplacementGone, nil)
		}
		return inst.State == want, nil
	}, func() any { return inst.ID + " " + inst.State })
	return inst, err
}

// RetireInput asks RetireHost to terminate a broker's replaced host.
type RetireInput struct {
	BrokerInput
	// Old is the replaced host; Volume the data volume it must no longer
	// hold.
	Old    string `json:"old"`
	Volume string `json:"volume,omitempty"`
}

// RetireHost terminates a replaced host that still exists (stopped, or
// started again by someone), so that it can never run beside the broker's
// new host; it returns the state it left it in. One gone already is left
// alone; one that still holds the broker's data volume is refused (the
// move did not happen: terminating must never be what decides the data's
// fate).
func (a *Activities) RetireHost(ctx context.Context, in RetireInput) (string, error) {
	if _, err := in.host(); err != nil {
		return "", err
	}
	if a.Lifecycle == nil {
		return "", badInput(errors.New("this worker has no EC2 client to terminate hosts with"))
	}
	log := a.Log.With().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Str("instance", in.Old).Logger()
	old, err := a.Lifecycle.DescribeInstance(ctx, in.Old)
	switch {
	case errors.Is(err, cloud.ErrInstanceNotFound):
		return InstanceNotFound, nil
	case err != nil:
		return "", fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
	case old.State == "shutting-down" || old.State == "terminated":
		log.Info().Str("state", old.State).Msg("replaced host already gone")
		return old.State, nil
	}
	if in.Volume != "" && slices.Contains(slices.Collect(maps.Values(old.Volumes)), in.Volume) {
		return "", badInput(fmt.Errorf("cluster %s broker %d: instance %s still holds data volume %s: not terminating it", in.Spec.ID, in.Broker, in.Old, in.Volume))
	}
	change, err := a.Lifecycle.TerminateInstance(ctx, in.Old)
	if err != nil {
		return "", fmt.Errorf("cluster %s broker %d: retire replaced host: %w", in.Spec.ID, in.Broker, err)
	}
	log.Info().Str("from", change.Previous).Str("to", change.Current).Msg("replaced host terminated")
	return change.Current, nil
}

func instanceIDs(insts []cloud.Instance) string {
	ids := make([]string, len(insts))
	for i, in := range insts {
		ids[i] = in.ID + " (" + in.State + ")"
	}
	return strings.Join(ids, ", ")
}

// clientToken is an EC2 ClientToken for one resource a recovery makes:
// the same for every attempt of the step (so a retry gets the resource the
// first attempt made), different for another recovery, broker, replaced
// host or attempt. At most 64 characters, as EC2 allows.
func clientToken(kind, workflowID string, broker int32, old string, attempt int) string {
	h := sha256.New()
	for _, part := range []string{kind, workflowID, strconv.Itoa(int(broker)), old, strconv.Itoa(attempt)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "kfleet-" + kind + "-" + hex.EncodeToString(h.Sum(nil)[:16])
}
