package cloud

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

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
	// RoleController is a KRaft controller's host, tagged with TagNodeID
	// (not TagBrokerID: nothing that looks for brokers finds it).
	RoleController = "controller"
	TagNodeID      = "kfleet:node-id"
	RoleKafkaData  = "kafka-data"
	// TagRequestedBy names who asked for a resource (a workflow, an
	// operator), for audits; the local fleet records it as the launch's
	// or the volume's requester.
	TagRequestedBy = "kfleet:requested-by"
	// TagZooKeeperID numbers a cluster's ZooKeeper node (its myid, 1..3),
	// as kfleet:broker-id names a broker's host: provisioning finds a node
	// it launched by it before launching another.
	TagZooKeeperID = "kfleet:zookeeper-id"
	// TagPlan is the fingerprint of the cluster plan a resource was
	// provisioned for: a run of the same plan adopts what an earlier one
	// launched, and undoing a provisioning removes only what it made.
	TagPlan = "kfleet:plan"
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
	// ErrIdempotentMismatch: a ClientToken already used with other
	// parameters (IdempotentParameterMismatch). The caller's token does
	// not identify its request: a bug, never retried.
	ErrIdempotentMismatch = errors.New("client token already used with other parameters")
	// ErrVolumeInUse: the volume is attached (VolumeInUse), so it cannot
	// be attached elsewhere or deleted.
	ErrVolumeInUse = errors.New("volume in use")
	// ErrIncorrectState: the instance or volume is in a state that does
	// not allow the call (IncorrectInstanceState, IncorrectState), e.g.
	// starting a terminated instance, detaching a detached volume.
	ErrIncorrectState = errors.New("incorrect state for the call")
	// ErrZoneMismatch: a volume and an instance in different
	// availability zones (InvalidVolume.ZoneMismatch).
	ErrZoneMismatch = errors.New("volume and instance in different availability zones")
	// ErrNotAttached: the volume is not attached to the instance or
	// device named (InvalidAttachment.NotFound).
	ErrNotAttached = errors.New("volume not attached there")
	// ErrCapacity: EC2 cannot launch now (InstanceLimitExceeded,
	// InsufficientInstanceCapacity); another zone or type, or later, may.
	ErrCapacity = errors.New("no capacity to launch")
	// ErrInvalidSpec: a launch or volume spec kfleet refuses before
	// asking EC2, or EC2 refuses as malformed (InvalidParameterValue,
	// InvalidAMIID.*, InvalidZone.NotFound, MissingParameter).
	ErrInvalidSpec = errors.New("invalid spec")
	// ErrWaitTimeout: a waiter gave up before the resource reached the
	// state waited for.
	ErrWaitTimeout = errors.New("wait timed out")
)

// EC2 describes, launches and terminates hosts, and creates, attaches and
// grows their volumes.
type EC2 struct {
	client *ec2.Client
	// waitMin and waitMax bound the delay between two describes of a
	// waiter (AWS's waiters default to 15 s and 120 s).
	waitMin, waitMax time.Duration
}

// EC2Option configures an EC2 client.
type EC2Option func(*EC2)

// WithWaitDelays sets the delays between a waiter's describes (AWS's
// defaults are 15 s and 120 s; the local fleet changes states in a second,
// so its clients poll faster).
func WithWaitDelays(minDelay, maxDelay time.Duration) EC2Option {
	return func(e *EC2) { e.waitMin, e.waitMax = minDelay, max(minDelay, maxDelay) }
}

// NewEC2 returns an EC2 client for cfg. endpoint overrides the service
// endpoint (the local fleet); empty means AWS's own.
func NewEC2(cfg aws.Config, endpoint string, opts ...EC2Option) *EC2 {
	client := ec2.NewFromConfig(cfg, func(o *ec2.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	e := &EC2{client: client, waitMin: 15 * time.Second, waitMax: 120 * time.Second}
	for _, o := range opts {
		o(e)
	}
	return e
}

// Instance is a host: a broker's or a ZooKeeper node's.
type Instance struct {
	ID        string
	State     string // EC2's instance state name: pending, running, stopped ...
	PrivateIP string
	AZ        string

	ReservationID string
	ImageID       string
	InstanceType  string
	LaunchTime    time.Time
	ClientToken   string
	// Tags are every tag; Cluster, Role and BrokerID are kfleet's.
	Tags     map[string]string
	Cluster  string
	Role     string
	BrokerID int32 // -1 without a kfleet:broker-id tag
	// Volumes are the attached volumes' ids by device.
	Volumes map[string]string
	// SubnetID, SecurityGroupIDs and InstanceProfileARN are where it runs
	// and the role its SSM agent has: a replacement host gets the same
	// (empty where EC2 does not say, as on the local fleet).
	SubnetID           string
	SecurityGroupIDs   []string
	InstanceProfileARN string
}

// Volume is a volume: a broker's Kafka data volume, mostly.
type Volume struct {
	ID         string
	SizeGiB    int32 // the EBS size; the filesystem may still be smaller
	InstanceID string
	Device     string
	AZ         string
	Type       string // gp3, io2 ...
	State      string // EC2's volume state: in-use, available ...

	// AttachState is the attachment's state (attaching, attached,
	// detaching, busy); "" while detached.
	AttachState string
	Iops        int32
	Throughput  int32 // MiB/s
	CreateTime  time.Time
	Tags        map[string]string
	Cluster     string
	Role        string
	BrokerID    int32 // -1 without a kfleet:broker-id tag
}

// instanceFrom is the SDK's instance as an Instance.
func instanceFrom(in ec2types.Instance) Instance {
	out := Instance{
		ID:           aws.ToString(in.InstanceId),
		PrivateIP:    aws.ToString(in.PrivateIpAddress),
		ImageID:      aws.ToString(in.ImageId),
		InstanceType: string(in.InstanceType),
		LaunchTime:   aws.ToTime(in.LaunchTime),
		ClientToken:  aws.ToString(in.ClientToken),
		Tags:         tagMap(in.Tags),
		Volumes:      map[string]string{},
	}
	if in.State != nil {
		out.State = string(in.State.Name)
	}
	if in.Placement != nil {
		out.AZ = aws.ToString(in.Placement.AvailabilityZone)
	}
	out.SubnetID = aws.ToString(in.SubnetId)
	for _, g := range in.SecurityGroups {
		out.SecurityGroupIDs = append(out.SecurityGroupIDs, aws.ToString(g.GroupId))
	}
	if in.IamInstanceProfile != nil {
		out.InstanceProfileARN = aws.ToString(in.IamInstanceProfile.Arn)
	}
	for _, b := range in.BlockDeviceMappings {
		if b.Ebs != nil {
			out.Volumes[aws.ToString(b.DeviceName)] = aws.ToString(b.Ebs.VolumeId)
		}
	}
	out.Cluster, out.Role, out.BrokerID = kfleetTags(out.Tags)
	return out
}

// volumeFrom is the SDK's volume as a Volume.
func volumeFrom(v ec2types.Volume) Volume {
	out := Volume{
		ID:         aws.ToString(v.VolumeId),
		SizeGiB:    aws.ToInt32(v.Size),
		AZ:         aws.ToString(v.AvailabilityZone),
		Type:       string(v.VolumeType),
		State:      string(v.State),
		Iops:       aws.ToInt32(v.Iops),
		Throughput: aws.ToInt32(v.Throughput),
		CreateTime: aws.ToTime(v.CreateTime),
		Tags:       tagMap(v.Tags),
	}
	for _, a := range v.Attachments {
		out.InstanceID, out.Device, out.AttachState = aws.ToString(a.InstanceId), aws.ToString(a.Device), string(a.State)
	}
	out.Cluster, out.Role, out.BrokerID = kfleetTags(out.Tags)
	return out
}

func tagMap(tags []ec2types.Tag) map[string]string {
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		out[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return out
}

// kfleetTags reads kfleet's tags; broker is -1 without a valid
// kfleet:broker-id.
func kfleetTags(tags map[string]string) (cluster, role string, broker int32) {
	broker = -1
	if s, ok := tags[TagBrokerID]; ok {
		if n, err := strconv.ParseInt(s, 10, 32); err == nil {
			broker = int32(n)
		}
	}
	return tags[TagCluster], tags[TagRole], broker
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
			if aws.ToString(in.InstanceId) == instanceID {
				inst := instanceFrom(in)
				inst.ReservationID = aws.ToString(r.ReservationId)
				return inst, nil
			}
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
	return volumeFrom(out.Volumes[0]), nil
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
	case "InvalidVolume.NotFound", "InvalidVolumeID.Malformed":
		sentinel = ErrVolumeNotFound
	case "InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed":
		sentinel = ErrInstanceNotFound
	case "InvalidVolumeModification.NotFound":
		sentinel = ErrNoModification
	case "IdempotentParameterMismatch":
		sentinel = ErrIdempotentMismatch
	case "VolumeInUse":
		sentinel = ErrVolumeInUse
	case "IncorrectState", "IncorrectInstanceState":
		sentinel = ErrIncorrectState
	case "InvalidVolume.ZoneMismatch":
		sentinel = ErrZoneMismatch
	case "InvalidAttachment.NotFound":
		sentinel = ErrNotAttached
	case "InstanceLimitExceeded", "InsufficientInstanceCapacity":
		sentinel = ErrCapacity
	case "InvalidAMIID.Malformed", "InvalidAMIID.NotFound", "InvalidZone.NotFound", "MissingParameter":
		sentinel = ErrInvalidSpec
	case "InvalidParameterValue":
		// EC2 has no distinct code for a size that is not larger; its
		// message is the only signal.
		sentinel = ErrInvalidSpec
		if msg := apiErr.ErrorMessage(); strings.Contains(msg, "cannot be smaller") || strings.Contains(msg, "cannot be equal") {
			sentinel = ErrSizeNotLarger
		}
	}
	if sentinel == nil {
		return err
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}
