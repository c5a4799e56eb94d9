package cloud

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
)

// Tags kfleet relies on to find a broker's instance and data volume. The
// provisioning of a broker host sets them (LaunchInstance, CreateVolume);
// the local fleet sets them on its own hosts too.
const (
	TagCluster  = "kfleet:cluster"   // the Kafka cluster id
	TagBrokerID = "kfleet:broker-id" // the broker id, decimal
	// TagRole marks what an instance or a volume is for: a broker's
	// instance carries RoleBroker, a ZooKeeper node's RoleZooKeeper, and
	// the Kafka data volume RoleKafkaData, so it is never confused with
	// the root volume.
	TagRole       = "kfleet:role"
	RoleBroker    = "broker"
	RoleZooKeeper = "zookeeper"
	RoleKafkaData = "kafka-data"
	// TagRequestedBy names who asked for a resource (a workflow, an
	// operator), for audits; the local fleet records it as the launch's
	// or the volume's requester.
	TagRequestedBy = "kfleet:requested-by"
)

// Errors EC2 answers that callers act on. Each is wrapped together with the
// API error, so errors.As(err, &smithy.APIError) still sees AWS's code.
var (
	// ErrModificationRateExceeded: the volume was modified less than 6 hours
	// ago (EBS's cool-down). Retrying sooner cannot succeed.
	ErrModificationRateExceeded = errors.New("volume modification rate exceeded (one per 6 hours)")
	// ErrModificationInProgress: the previous modification is still
	// modifying or optimizing.
	ErrModificationInProgress = errors.New("volume modification in progress")
	// ErrSizeNotLarger: the requested size is not larger than the volume.
	ErrSizeNotLarger = errors.New("requested size is not larger than the volume")
	// ErrInstanceNotFound and ErrVolumeNotFound: no such instance or data
	// volume.
	ErrInstanceNotFound = errors.New("instance not found")
	ErrVolumeNotFound   = errors.New("volume not found")
	// ErrNoModification: the volume was never modified.
	ErrNoModification = errors.New("volume has no modification")
)

// EC2 describes broker hosts and grows their data volumes.
type EC2 struct {
	client *ec2.Client
}

// NewEC2 returns an EC2 client for cfg. endpoint overrides the service
// endpoint (the local fleet); empty means AWS's own.
func NewEC2(cfg aws.Config, endpoint string) *EC2 {
	client := ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return &EC2{client: client}
}

// Instance is a broker host.
type Instance struct {
	ID        string
	State     string // EC2's instance state name: pending, running, stopped ...
	PrivateIP string
	AZ        string
}

// Volume is a broker's Kafka data volume.
type Volume struct {
	ID         string
	SizeGiB    int32 // the EBS size; the filesystem may still be smaller
	InstanceID string
	Device     string
	AZ         string
	Type       string // gp3, io2 ...
	State      string // EC2's volume state: in-use, available ...
}

// ModificationState is a volume modification's state.
type ModificationState string

// Volume modification states. The filesystem can be grown from
// ModificationOptimizing on.
const (
	ModificationModifying  ModificationState = "modifying"
	ModificationOptimizing ModificationState = "optimizing"
	ModificationCompleted  ModificationState = "completed"
	ModificationFailed     ModificationState = "failed"
)

// DescribeInstance returns one instance.
func (e *EC2) DescribeInstance(ctx context.Context, instanceID string) (Instance, error) {
	out, err := e.client.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{instanceID}})
	if err != nil {
		return Instance{}, fmt.Errorf("instance %s: describe: %w", instanceID, classify(err))
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if aws.ToString(in.InstanceId) != instanceID {
				continue
			}
			inst := Instance{ID: instanceID, PrivateIP: aws.ToString(in.PrivateIpAddress)}
			if in.State != nil {
				inst.State = string(in.State.Name)
			}
			if in.Placement != nil {
				inst.AZ = aws.ToString(in.Placement.AvailabilityZone)
			}
			return inst, nil
		}
	}
	return Instance{}, fmt.Errorf("instance %s: %w", instanceID, ErrInstanceNotFound)
}

// DescribeVolumeOf returns the Kafka data volume attached to an instance:
// the one volume attached to it and tagged kfleet:role=kafka-data.
func (e *EC2) DescribeVolumeOf(ctx context.Context, instanceID string) (Volume, error) {
	out, err := e.client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{
		{Name: aws.String("attachment.instance-id"), Values: []string{instanceID}},
		{Name: aws.String("tag:" + TagRole), Values: []string{RoleKafkaData}},
	}})
	if err != nil {
		return Volume{}, fmt.Errorf("instance %s: describe data volume: %w", instanceID, classify(err))
	}
	switch n := len(out.Volumes); n {
	case 0:
		return Volume{}, fmt.Errorf("instance %s: no volume tagged %s=%s: %w", instanceID, TagRole, RoleKafkaData, ErrVolumeNotFound)
	case 1:
	default:
		return Volume{}, fmt.Errorf("instance %s: %d volumes tagged %s=%s, want one", instanceID, n, TagRole, RoleKafkaData)
	}
	v := out.Volumes[0]
	vol := Volume{
		ID:         aws.ToString(v.VolumeId),
		SizeGiB:    aws.ToInt32(v.Size),
		InstanceID: instanceID,
		AZ:         aws.ToString(v.AvailabilityZone),
		Type:       string(v.VolumeType),
		State:      string(v.State),
	}
	for _, a := range v.Attachments {
		if aws.ToString(a.InstanceId) == instanceID {
			vol.Device = aws.ToString(a.Device)
		}
	}
	return vol, nil
}

// ModifyVolume asks EBS to grow a volume to sizeGiB. It returns once the
// modification has started; follow it with VolumeModification. Refusals
// callers act on are wrapped with ErrModificationRateExceeded,
// ErrModificationInProgress, ErrSizeNotLarger or ErrVolumeNotFound.
func (e *EC2) ModifyVolume(ctx context.Context, volumeID string, sizeGiB int32) error {
	_, err := e.client.ModifyVolume(ctx, &ec2.ModifyVolumeInput{VolumeId: aws.String(volumeID), Size: aws.Int32(sizeGiB)})
	if err != nil {
		return fmt.Errorf("volume %s: modify to %d GiB: %w", volumeID, sizeGiB, classify(err))
	}
	return nil
}

// VolumeModification returns the state and progress (0-100) of the
// volume's latest modification; ErrNoModification if it was never
// modified.
func (e *EC2) VolumeModification(ctx context.Context, volumeID string) (ModificationState, int64, error) {
	m, err := e.LatestModification(ctx, volumeID)
	if err != nil {
		return "", 0, err
	}
	return m.State, m.Progress, nil
}

// classify wraps EC2 error codes callers act on with this package's
// sentinels, keeping the API error in the chain.
func classify(err error) error {
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		return err
	}
	var sentinel error
	switch apiErr.ErrorCode() {
	case "VolumeModificationRateExceeded":
		sentinel = ErrModificationRateExceeded
	case "IncorrectModificationState":
		sentinel = ErrModificationInProgress
	case "InvalidVolume.NotFound":
		sentinel = ErrVolumeNotFound
	case "InvalidInstanceID.NotFound":
		sentinel = ErrInstanceNotFound
	case "InvalidVolumeModification.NotFound":
		sentinel = ErrNoModification
	case "InvalidParameterValue":
		// EC2 has no distinct code for a size that is not larger; its
		// message is the only signal.
		if msg := apiErr.ErrorMessage(); strings.Contains(msg, "cannot be smaller") || strings.Contains(msg, "cannot be equal") {
			sentinel = ErrSizeNotLarger
		}
	}
	if sentinel == nil {
		return err
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}
