package cloud

import (
	"cmp"
	"context"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// VolumeSpec is one gp3 volume to create: a broker's data volume, mostly.
type VolumeSpec struct {
	Cluster  string
	BrokerID int32
	// Role is the volume's kfleet:role; default RoleKafkaData.
	Role    string
	AZ      string
	SizeGiB int32
	// Iops and Throughput (MiB/s) above gp3's baseline (3,000 and 125);
	// zero is the baseline.
	Iops, Throughput int32
	// ClientToken makes the creation idempotent, as LaunchSpec's.
	// Required.
	ClientToken string
	// Tags are added to kfleet's, which they cannot override.
	Tags map[string]string
}

func (s VolumeSpec) what() string {
	return fmt.Sprintf("cluster %q broker %d", s.Cluster, s.BrokerID)
}

// VolumeTypeGP3 is the only type kfleet provisions.
const VolumeTypeGP3 = "gp3"

// CreateVolume creates a blank gp3 volume, tagged kfleet:cluster,
// kfleet:broker-id and kfleet:role, and returns it, creating (wait with
// WaitVolumeAvailable). A retry with the same ClientToken returns the
// same volume; the same token with another spec is ErrIdempotentMismatch.
func (e *EC2) CreateVolume(ctx context.Context, spec VolumeSpec) (Volume, error) {
	if spec.Role == "" {
		spec.Role = RoleKafkaData
	}
	switch {
	case spec.Cluster == "" || spec.AZ == "" || spec.SizeGiB < 1:
		return Volume{}, fmt.Errorf("%s: create volume: %w: cluster, zone and a size are required", spec.what(), ErrInvalidSpec)
	case validToken(spec.ClientToken) != nil:
		return Volume{}, fmt.Errorf("%s: create volume: %w", spec.what(), validToken(spec.ClientToken))
	}
	own := map[string]string{
		TagCluster: spec.Cluster, TagBrokerID: strconv.Itoa(int(spec.BrokerID)), TagRole: spec.Role,
		"Name": fmt.Sprintf("%s-broker-%d-%s", spec.Cluster, spec.BrokerID, spec.Role),
	}
	in := &ec2.CreateVolumeInput{
		AvailabilityZone:  aws.String(spec.AZ),
		Size:              aws.Int32(spec.SizeGiB),
		VolumeType:        ec2types.VolumeTypeGp3,
		ClientToken:       aws.String(spec.ClientToken),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeVolume, Tags: mergeTags(own, spec.Tags)}},
	}
	if spec.Iops > 0 {
		in.Iops = aws.Int32(spec.Iops)
	}
	if spec.Throughput > 0 {
		in.Throughput = aws.Int32(spec.Throughput)
	}
	out, err := e.client.CreateVolume(ctx, in)
	if err != nil {
		return Volume{}, fmt.Errorf("%s: create %d GiB volume in %s (token %s): %w", spec.what(), spec.SizeGiB, spec.AZ, spec.ClientToken, classify(err))
	}
	v := Volume{
		ID: aws.ToString(out.VolumeId), SizeGiB: aws.ToInt32(out.Size), AZ: aws.ToString(out.AvailabilityZone),
		Type: string(out.VolumeType), State: string(out.State), Iops: aws.ToInt32(out.Iops), Throughput: aws.ToInt32(out.Throughput),
		CreateTime: aws.ToTime(out.CreateTime), Tags: tagMap(out.Tags),
	}
	for _, a := range out.Attachments {
		v.InstanceID, v.Device, v.AttachState = aws.ToString(a.InstanceId), aws.ToString(a.Device), string(a.State)
	}
	v.Cluster, v.Role, v.BrokerID = kfleetTags(v.Tags)
	return v, nil
}

// AttachVolume attaches a volume to an instance at device (/dev/xvdb ...)
// and returns once EC2 took the request (the attachment is attaching;
// wait with WaitVolumeAttached). Refused for a volume attached anywhere
// (ErrVolumeInUse), in another zone (ErrZoneMismatch), or not available
// yet (ErrIncorrectState).
func (e *EC2) AttachVolume(ctx context.Context, volumeID, instanceID, device string) error {
	_, err := e.client.AttachVolume(ctx, &ec2.AttachVolumeInput{
		VolumeId: aws.String(volumeID), InstanceId: aws.String(instanceID), Device: aws.String(device),
	})
	if err != nil {
		return fmt.Errorf("volume %s: attach to instance %s at %s: %w", volumeID, instanceID, device, classify(err))
	}
	return nil
}

// DetachVolume detaches a volume from instanceID ("" for whichever it is
// attached to). Without force a volume still mounted and in use stays
// busy until it is not (stop Kafka first); force pulls it from under the
// host, which then fails on it. Wait with WaitVolumeAvailable. A volume
// not attached there is ErrIncorrectState or ErrNotAttached.
func (e *EC2) DetachVolume(ctx context.Context, volumeID, instanceID string, force bool) error {
	in := &ec2.DetachVolumeInput{VolumeId: aws.String(volumeID), Force: aws.Bool(force)}
	if instanceID != "" {
		in.InstanceId = aws.String(instanceID)
	}
	if _, err := e.client.DetachVolume(ctx, in); err != nil {
		return fmt.Errorf("volume %s: detach from instance %s (force %t): %w", volumeID, cmp.Or(instanceID, "any"), force, classify(err))
	}
	return nil
}

// DeleteVolume deletes a detached volume, and its data with it. An
// attached volume is ErrVolumeInUse; an unknown one ErrVolumeNotFound.
func (e *EC2) DeleteVolume(ctx context.Context, volumeID string) error {
	if _, err := e.client.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(volumeID)}); err != nil {
		return fmt.Errorf("volume %s: delete: %w", volumeID, classify(err))
	}
	return nil
}

// DescribeVolume returns one volume; ErrVolumeNotFound if it does not
// exist (or was deleted).
func (e *EC2) DescribeVolume(ctx context.Context, volumeID string) (Volume, error) {
	out, err := e.client.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volumeID}})
	if err != nil {
		return Volume{}, fmt.Errorf("volume %s: describe: %w", volumeID, classify(err))
	}
	for _, v := range out.Volumes {
		if aws.ToString(v.VolumeId) == volumeID {
			return volumeFrom(v), nil
		}
	}
	return Volume{}, fmt.Errorf("volume %s: %w", volumeID, ErrVolumeNotFound)
}

// VolumeFilter selects volumes by kfleet's tags, state, zone and
// attachment; zero fields match everything.
type VolumeFilter struct {
	Cluster  string
	Role     string
	BrokerID *int32
	// States are EC2 volume states (creating, available, in-use).
	States []string
	AZ     string
	// InstanceID selects the volumes attached to it.
	InstanceID string
	// AttachStates are attachment states (attaching, attached, ...).
	AttachStates []string
}

func (f VolumeFilter) filters() []ec2types.Filter {
	out := kfleetFilters(f.Cluster, f.Role, f.BrokerID)
	out = appendFilter(out, "status", f.States...)
	out = appendFilter(out, "availability-zone", f.AZ)
	out = appendFilter(out, "attachment.instance-id", f.InstanceID)
	return appendFilter(out, "attachment.status", f.AttachStates...)
}

// FindVolumes returns the volumes the filter selects, in EC2's order.
func (e *EC2) FindVolumes(ctx context.Context, f VolumeFilter) ([]Volume, error) {
	var out []Volume
	p := ec2.NewDescribeVolumesPaginator(e.client, &ec2.DescribeVolumesInput{Filters: f.filters()})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("find volumes of cluster %q (role %q): %w", f.Cluster, f.Role, classify(err))
		}
		for _, v := range page.Volumes {
			out = append(out, volumeFrom(v))
		}
	}
	return out, nil
}
