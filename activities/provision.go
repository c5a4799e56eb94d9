package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/kfleet/kfleet/internal/cloud"
)

// Provisioning's hosts and volumes (ProvisionClusterWorkflow): each step
// looks for what an earlier attempt made before it makes anything — by
// kfleet's tags, then by its ClientToken, which EC2 answers with what the
// first request made — so a worker killed at any moment never leaves two
// instances or two volumes for one broker.

// Provisioner launches and removes hosts and volumes (EC2); the methods
// are *cloud.EC2's, whose sentinel errors drive the decisions.
type Provisioner interface {
	AvailabilityZones(ctx context.Context) ([]string, error)
	InstanceTypeZones(ctx context.Context, types []string) (map[string][]string, error)
	FindInstances(ctx context.Context, f cloud.InstanceFilter) ([]cloud.Instance, error)
	LaunchInstance(ctx context.Context, spec cloud.LaunchSpec) (cloud.Instance, error)
	WaitInstanceRunning(ctx context.Context, instanceID string, maxWait time.Duration) (cloud.Instance, error)
	TerminateInstance(ctx context.Context, instanceID string) (cloud.StateChange, error)
	WaitInstanceTerminated(ctx context.Context, instanceID string, maxWait time.Duration) (cloud.Instance, error)
	FindVolumes(ctx context.Context, f cloud.VolumeFilter) ([]cloud.Volume, error)
	CreateVolume(ctx context.Context, spec cloud.VolumeSpec) (cloud.Volume, error)
	DescribeVolume(ctx context.Context, volumeID string) (cloud.Volume, error)
	WaitVolumeAvailable(ctx context.Context, volumeID string, maxWait time.Duration) (cloud.Volume, error)
	AttachVolume(ctx context.Context, volumeID, instanceID, device string) error
	WaitVolumeAttached(ctx context.Context, volumeID, instanceID string, maxWait time.Duration) (cloud.Volume, error)
	DeleteVolume(ctx context.Context, volumeID string) error
	WaitVolumeDeleted(ctx context.Context, volumeID string, maxWait time.Duration) error
}

// ProvisionConfig is how a deployment launches hosts: the worker's
// settings, not an operator's plan.
type ProvisionConfig struct {
	// ImageID is the broker hosts' AMI (Kafka as the kafka service, the
	// SSM agent); ZooKeeperImageID the ensemble's (default ImageID).
	ImageID, ZooKeeperImageID string
	// SubnetIDs places hosts by zone; SecurityGroupIDs and
	// InstanceProfile (the SSM agent's role) apply to every host. Empty:
	// the account's defaults.
	SubnetIDs        map[string]string
	SecurityGroupIDs []string
	InstanceProfile  string
	// MetricsURL is a broker's Prometheus exposition as a template:
	// {host} is its private address, {cluster} and {broker} name it.
	// Empty: brokers are registered without metrics (the metrics-based
	// gates are skipped).
	MetricsURL string
	// WaitTimeout bounds each wait for EC2 (default 15 min).
	WaitTimeout time.Duration
}

// TokenSpent marks the refusal of a launch or volume whose ClientToken EC2
// answers with a resource that is gone: a retry with it can never help, a
// human's resume launches with a new one.
const TokenSpent = "its client token is spent"

// DataDevice is where a broker's data volume is attached.
const DataDevice = "/dev/xvdb"

func (c ProvisionConfig) waitTimeout() time.Duration { return cmp.Or(c.WaitTimeout, 15*time.Minute) }

// keepAlive heartbeats details every few seconds until stop is called:
// EC2's waiters block for as long as a host takes to boot, and a worker
// killed meanwhile must be noticed by its heartbeat timeout, not by the
// step's whole timeout. The SDK sends at most one heartbeat per 80% of
// the timeout, so beating often costs nothing more.
func keepAlive(ctx context.Context, details any) (stop func()) {
	stopped := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		for {
			activity.RecordHeartbeat(ctx, details)
			select {
			case <-ctx.Done():
				return
			case <-stopped:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(stopped); <-done }
}

// HostInput asks for one host of a cluster: a broker's (N is its id), a
// ZooKeeper node's (N is its myid) or a KRaft controller's (N is its node
// id).
type HostInput struct {
	Cluster      string `json:"cluster"`
	Role         string `json:"role"`
	N            int32  `json:"n"`
	AZ           string `json:"az"`
	InstanceType string `json:"instanceType"`
	// Plan is the plan's fingerprint (TagPlan); Token the launch's
	// ClientToken, derived from the provisioning and the host.
	Plan        string `json:"plan"`
	Token       string `json:"token"`
	RequestedBy string `json:"requestedBy"`
}

func (in HostInput) what() string {
	switch in.Role {
	case cloud.RoleBroker:
		return fmt.Sprintf("cluster %s broker %d", in.Cluster, in.N)
	case cloud.RoleController:
		return fmt.Sprintf("cluster %s controller %d", in.Cluster, in.N)
	}
	return fmt.Sprintf("cluster %s ZooKeeper node %d", in.Cluster, in.N)
}

// Host is a launched host.
type ProvisionedHost struct {
	ID        string `json:"id"`
	AZ        string `json:"az"`
	PrivateIP string `json:"privateIp"`
	// Adopted: an earlier attempt (or run of the same plan) launched it.
	Adopted bool `json:"adopted,omitempty"`
}

// liveStates are the instance states of a host that still exists.
var liveStates = []string{"pending", "running", "stopping", "stopped"}

// LaunchHost returns the cluster's host for in — the one its tags find, or
// one it launches with in.Token — once it runs. A host found that another
// plan launched is refused; a launch whose token EC2 answers with a
// terminated instance is refused too (the token is spent: a human
// decides, and a resumed provisioning launches with a new one).
func (a *Activities) LaunchHost(ctx context.Context, in HostInput) (ProvisionedHost, error) {
	if in.Cluster == "" || in.AZ == "" || in.InstanceType == "" || in.Token == "" || in.Plan == "" {
		return ProvisionedHost{}, badInput(fmt.Errorf("%s: cluster, zone, instance type, plan and token are required", in.what()))
	}
	found, err := a.findHost(ctx, in)
	if err != nil {
		return ProvisionedHost{}, err
	}
	adopted := found != nil
	inst := cloud.Instance{}
	if found != nil {
		inst = *found
		if p := inst.Tags[cloud.TagPlan]; p != in.Plan {
			return ProvisionedHost{}, badInput(fmt.Errorf("%s: instance %s was launched for another plan (%s=%q, this plan is %s)", in.what(), inst.ID, cloud.TagPlan, p, in.Plan))
		}
	} else {
		cfg := a.Provisioning
		image := cfg.ImageID
		tags := map[string]string{cloud.TagPlan: in.Plan, cloud.TagRequestedBy: in.RequestedBy}
		spec := cloud.LaunchSpec{Cluster: in.Cluster, Role: in.Role, AZ: in.AZ, InstanceType: in.InstanceType, ClientToken: in.Token,
			Tags: tags, SubnetID: cfg.SubnetIDs[in.AZ], SecurityGroupIDs: cfg.SecurityGroupIDs, InstanceProfile: cfg.InstanceProfile}
		switch in.Role {
		case cloud.RoleBroker:
			spec.BrokerID = in.N
		case cloud.RoleController:
			// A controller runs Kafka: the brokers' image.
			spec.NodeID = in.N
		default:
			tags[cloud.TagZooKeeperID] = strconv.Itoa(int(in.N))
			image = cmp.Or(cfg.ZooKeeperImageID, image)
		}
		spec.ImageID = image
		if inst, err = a.EC2.LaunchInstance(ctx, spec); err != nil {
			if errors.Is(err, cloud.ErrInvalidSpec) || errors.Is(err, cloud.ErrIdempotentMismatch) {
				return ProvisionedHost{}, badInput(err)
			}
			return ProvisionedHost{}, err
		}
		a.Log.Info().Str("cluster", in.Cluster).Str("role", in.Role).Int32("n", in.N).Str("instance", inst.ID).Str("token", in.Token).Msg("host launched")
	}
	if inst.State == "shutting-down" || inst.State == "terminated" {
		return ProvisionedHost{}, badInput(fmt.Errorf("%s: instance %s (token %s) is %s: %s", in.what(), inst.ID, in.Token, inst.State, TokenSpent))
	}
	defer keepAlive(ctx, inst.ID)()
	if inst.State != "running" {
		if inst, err = a.EC2.WaitInstanceRunning(ctx, inst.ID, a.Provisioning.waitTimeout()); err != nil {
			if errors.Is(err, cloud.ErrIncorrectState) {
				return ProvisionedHost{}, badInput(fmt.Errorf("%s: %w", in.what(), err))
			}
			return ProvisionedHost{}, fmt.Errorf("%s: %w", in.what(), err)
		}
	}
	return ProvisionedHost{ID: inst.ID, AZ: inst.AZ, PrivateIP: inst.PrivateIP, Adopted: adopted}, nil
}

// findHost is the live host of in's cluster, role and number, nil when
// there is none. Two would be a duplicate kfleet never makes: the oldest
// is the host, and the others are reported for a human.
func (a *Activities) findHost(ctx context.Context, in HostInput) (*cloud.Instance, error) {
	f := cloud.InstanceFilter{Cluster: in.Cluster, Role: in.Role, States: liveStates}
	if in.Role == cloud.RoleBroker {
		f.BrokerID = &in.N
	}
	all, err := a.EC2.FindInstances(ctx, f)
	if err != nil {
		return nil, err
	}
	all = slices.DeleteFunc(all, func(i cloud.Instance) bool {
		n := strconv.Itoa(int(in.N))
		return in.Role == cloud.RoleZooKeeper && i.Tags[cloud.TagZooKeeperID] != n ||
			in.Role == cloud.RoleController && i.Tags[cloud.TagNodeID] != n
	})
	if len(all) == 0 {
		return nil, nil
	}
	slices.SortFunc(all, func(x, y cloud.Instance) int { return x.LaunchTime.Compare(y.LaunchTime) })
	if len(all) > 1 {
		a.Log.Error().Str("cluster", in.Cluster).Str("role", in.Role).Int32("n", in.N).Int("hosts", len(all)).
			Msg("more than one live host for one role and number: keeping the oldest; terminate the others by hand")
	}
	return &all[0], nil
}

// VolumeInput asks for a broker's gp3 data volume.
type VolumeInput struct {
	Cluster     string `json:"cluster"`
	Broker      int32  `json:"broker"`
	AZ          string `json:"az"`
	SizeGiB     int32  `json:"sizeGiB"`
	Plan        string `json:"plan"`
	Token       string `json:"token"`
	RequestedBy string `json:"requestedBy"`
}

// ProvisionDataVolume returns the broker's data volume — the one its tags
// find, or one it creates with in.Token — once it is available (or
// already in use). A volume another plan made is refused.
func (a *Activities) ProvisionDataVolume(ctx context.Context, in VolumeInput) (string, error) {
	what := fmt.Sprintf("cluster %s broker %d", in.Cluster, in.Broker)
	vols, err := a.EC2.FindVolumes(ctx, cloud.VolumeFilter{Cluster: in.Cluster, Role: cloud.RoleKafkaData, BrokerID: &in.Broker,
		States: []string{"creating", "available", "in-use"}})
	if err != nil {
		return "", err
	}
	var v cloud.Volume
	if len(vols) > 0 {
		slices.SortFunc(vols, func(x, y cloud.Volume) int { return x.CreateTime.Compare(y.CreateTime) })
		v = vols[0]
		if p := v.Tags[cloud.TagPlan]; p != in.Plan {
			return "", badInput(fmt.Errorf("%s: data volume %s was made for another plan (%s=%q, this plan is %s)", what, v.ID, cloud.TagPlan, p, in.Plan))
		}
	} else {
		v, err = a.EC2.CreateVolume(ctx, cloud.VolumeSpec{Cluster: in.Cluster, BrokerID: in.Broker, AZ: in.AZ, SizeGiB: in.SizeGiB,
			ClientToken: in.Token, Tags: map[string]string{cloud.TagPlan: in.Plan, cloud.TagRequestedBy: in.RequestedBy}})
		if err != nil {
			if errors.Is(err, cloud.ErrInvalidSpec) || errors.Is(err, cloud.ErrIdempotentMismatch) {
				return "", badInput(err)
			}
			return "", err
		}
		a.Log.Info().Str("cluster", in.Cluster).Int32("broker", in.Broker).Str("volume", v.ID).Str("token", in.Token).Msg("data volume created")
	}
	if v.State != "creating" && v.State != "available" && v.State != "in-use" {
		return "", badInput(fmt.Errorf("%s: volume %s (token %s) is %s: %s", what, v.ID, in.Token, v.State, TokenSpent))
	}
	defer keepAlive(ctx, v.ID)()
	if v.State == "creating" {
		if v, err = a.EC2.WaitVolumeAvailable(ctx, v.ID, a.Provisioning.waitTimeout()); err != nil {
			if errors.Is(err, cloud.ErrIncorrectState) {
				return "", badInput(fmt.Errorf("%s: %w", what, err))
			}
			return "", fmt.Errorf("%s: %w", what, err)
		}
	}
	return v.ID, nil
}

// ProvisionAttachInput attaches a broker's data volume to its host.
type ProvisionAttachInput struct {
	Cluster    string `json:"cluster"`
	Broker     int32  `json:"broker"`
	VolumeID   string `json:"volumeId"`
	InstanceID string `json:"instanceId"`
}

// AttachProvisionedVolume attaches the volume at DataDevice and returns once the
// host has it. A volume already attached (or attaching) there is waited
// for, not attached again; one attached elsewhere is refused.
func (a *Activities) AttachProvisionedVolume(ctx context.Context, in ProvisionAttachInput) error {
	what := fmt.Sprintf("cluster %s broker %d", in.Cluster, in.Broker)
	defer keepAlive(ctx, in.VolumeID)()
	for try := 0; ; try++ {
		v, err := a.EC2.DescribeVolume(ctx, in.VolumeID)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		switch {
		case v.InstanceID == in.InstanceID && v.AttachState == "attached":
			return nil
		case v.InstanceID == in.InstanceID && v.AttachState == "attaching":
		case v.InstanceID != "":
			return badInput(fmt.Errorf("%s: volume %s is %s to instance %s, not %s", what, v.ID, v.AttachState, v.InstanceID, in.InstanceID))
		case v.State != "available":
			return fmt.Errorf("%s: volume %s is %s: %w", what, v.ID, v.State, cloud.ErrIncorrectState)
		default:
			err := a.EC2.AttachVolume(ctx, in.VolumeID, in.InstanceID, DataDevice)
			if errors.Is(err, cloud.ErrVolumeInUse) && try == 0 {
				continue // attached meanwhile (by an earlier attempt): look again
			}
			if errors.Is(err, cloud.ErrZoneMismatch) {
				return badInput(fmt.Errorf("%s: %w", what, err))
			}
			if err != nil {
				return err
			}
		}
		if _, err := a.EC2.WaitVolumeAttached(ctx, in.VolumeID, in.InstanceID, a.Provisioning.waitTimeout()); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
}
