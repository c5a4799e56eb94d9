package cloud

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// LaunchSpec is one host to launch: a broker's (Role RoleBroker, with its
// BrokerID) or a ZooKeeper node's (RoleZooKeeper).
type LaunchSpec struct {
	Cluster  string
	Role     string
	BrokerID int32 // brokers only
	// NodeID is a KRaft controller's node id (Role RoleController only),
	// tagged TagNodeID.
	NodeID int32
	AZ     string
	// InstanceType and ImageID are what to run (m5.xlarge, ami-...).
	InstanceType string
	ImageID      string
	// ClientToken makes the launch idempotent: a retry with the same
	// token returns the instance the first attempt launched, never a
	// second one. Derive it from what the launch is for (the workflow,
	// the step, the broker), at most 64 characters. Required.
	ClientToken string
	// Tags are added to kfleet's (kfleet:cluster, kfleet:role,
	// kfleet:broker-id, Name), which they cannot override.
	Tags map[string]string
	// SubnetID, SecurityGroupIDs and InstanceProfile place the host in
	// the network and give its SSM agent a role; empty uses the
	// account's defaults (the local fleet ignores them). InstanceProfile
	// is a profile's name or its ARN (what DescribeInstances tells of a
	// host that a replacement copies).
	SubnetID         string
	SecurityGroupIDs []string
	InstanceProfile  string
}

// name is the Name tag of the host.
func (s LaunchSpec) name() string {
	switch s.Role {
	case RoleBroker:
		return fmt.Sprintf("%s-broker-%d", s.Cluster, s.BrokerID)
	case RoleController:
		return fmt.Sprintf("%s-controller-%d", s.Cluster, s.NodeID)
	}
	return s.Cluster + "-" + s.Role
}

// what names the host in errors.
func (s LaunchSpec) what() string {
	switch s.Role {
	case RoleBroker:
		return fmt.Sprintf("cluster %q broker %d", s.Cluster, s.BrokerID)
	case RoleController:
		return fmt.Sprintf("cluster %q controller %d", s.Cluster, s.NodeID)
	}
	return fmt.Sprintf("cluster %q %s node", s.Cluster, s.Role)
}

func (s LaunchSpec) validate() error {
	switch {
	case s.Cluster == "":
		return fmt.Errorf("%w: no cluster", ErrInvalidSpec)
	case s.Role != RoleBroker && s.Role != RoleZooKeeper && s.Role != RoleController:
		return fmt.Errorf("%w: role %q is none of %s, %s and %s", ErrInvalidSpec, s.Role, RoleBroker, RoleZooKeeper, RoleController)
	case s.Role == RoleBroker && s.BrokerID < 0:
		return fmt.Errorf("%w: broker id %d", ErrInvalidSpec, s.BrokerID)
	case s.Role == RoleController && s.NodeID < 0:
		return fmt.Errorf("%w: controller node id %d", ErrInvalidSpec, s.NodeID)
	case s.AZ == "" || s.InstanceType == "" || s.ImageID == "":
		return fmt.Errorf("%w: zone, instance type and image are required", ErrInvalidSpec)
	}
	return validToken(s.ClientToken)
}

// maxClientToken is EC2's limit on a ClientToken's length.
const maxClientToken = 64

func validToken(t string) error {
	if t == "" || len(t) > maxClientToken {
		return fmt.Errorf("%w: client token %q must be 1 to %d characters (idempotency depends on it)", ErrInvalidSpec, t, maxClientToken)
	}
	return nil
}

// tags are kfleet's tags for spec, then spec's own.
func (s LaunchSpec) tags() []ec2types.Tag {
	own := map[string]string{TagCluster: s.Cluster, TagRole: s.Role, "Name": s.name()}
	switch s.Role {
	case RoleBroker:
		own[TagBrokerID] = strconv.Itoa(int(s.BrokerID))
	case RoleController:
		own[TagNodeID] = strconv.Itoa(int(s.NodeID))
	}
	return mergeTags(own, s.Tags)
}

// mergeTags is own's tags, then extra's that own does not set, each in
// key order (a stable request, so a retry is the same request).
func mergeTags(own, extra map[string]string) []ec2types.Tag {
	var out []ec2types.Tag
	for _, k := range slices.Sorted(maps.Keys(own)) {
		out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(own[k])})
	}
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		if _, ok := own[k]; !ok {
			out = append(out, ec2types.Tag{Key: aws.String(k), Value: aws.String(extra[k])})
		}
	}
	return out
}

// LaunchInstance launches one host and returns it, pending (wait for it
// with WaitInstanceRunning). A retry with the same ClientToken returns
// the same instance in its state now; the same token with another spec
// is ErrIdempotentMismatch. The root volume is tagged as the instance.
func (e *EC2) LaunchInstance(ctx context.Context, spec LaunchSpec) (Instance, error) {
	if err := spec.validate(); err != nil {
		return Instance{}, fmt.Errorf("%s: launch: %w", spec.what(), err)
	}
	tags := spec.tags()
	in := &ec2.RunInstancesInput{
		ImageId:      aws.String(spec.ImageID),
		InstanceType: ec2types.InstanceType(spec.InstanceType),
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		Placement:    &ec2types.Placement{AvailabilityZone: aws.String(spec.AZ)},
		ClientToken:  aws.String(spec.ClientToken),
		TagSpecifications: []ec2types.TagSpecification{
			{ResourceType: ec2types.ResourceTypeInstance, Tags: tags},
			{ResourceType: ec2types.ResourceTypeVolume, Tags: tags},
		},
	}
	if spec.SubnetID != "" {
		in.SubnetId = aws.String(spec.SubnetID)
	}
	if len(spec.SecurityGroupIDs) > 0 {
		in.SecurityGroupIds = spec.SecurityGroupIDs
	}
	switch {
	case strings.HasPrefix(spec.InstanceProfile, "arn:"):
		in.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Arn: aws.String(spec.InstanceProfile)}
	case spec.InstanceProfile != "":
		in.IamInstanceProfile = &ec2types.IamInstanceProfileSpecification{Name: aws.String(spec.InstanceProfile)}
	}
	out, err := e.client.RunInstances(ctx, in)
	if err != nil {
		return Instance{}, fmt.Errorf("%s: launch %s in %s (token %s): %w", spec.what(), spec.InstanceType, spec.AZ, spec.ClientToken, classify(err))
	}
	if len(out.Instances) != 1 {
		return Instance{}, fmt.Errorf("%s: launch (token %s): EC2 answered %d instances, want 1", spec.what(), spec.ClientToken, len(out.Instances))
	}
	inst := instanceFrom(out.Instances[0])
	inst.ReservationID = aws.ToString(out.ReservationId)
	return inst, nil
}

// StateChange is an instance's state before and after a stop, start or
// terminate: the same when there was nothing to do.
type StateChange struct {
	Previous, Current string
}

// TerminateInstance terminates an instance. Its volumes are detached (a
// data volume survives it) once it is terminated; follow with
// WaitInstanceTerminated. Terminating a terminated instance changes
// nothing.
func (e *EC2) TerminateInstance(ctx context.Context, instanceID string) (StateChange, error) {
	out, err := e.client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{instanceID}})
	if err != nil {
		return StateChange{}, fmt.Errorf("instance %s: terminate: %w", instanceID, classify(err))
	}
	return stateChange(instanceID, out.TerminatingInstances)
}

// StopInstance stops an instance (its process dies with it; a broker's
// must be stopped first). Stopping a stopped instance changes nothing; a
// terminated one is ErrIncorrectState.
func (e *EC2) StopInstance(ctx context.Context, instanceID string) (StateChange, error) {
	out, err := e.client.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{instanceID}})
	if err != nil {
		return StateChange{}, fmt.Errorf("instance %s: stop: %w", instanceID, classify(err))
	}
	return stateChange(instanceID, out.StoppingInstances)
}

// StartInstance starts a stopped instance (Kafka does not start with it).
// Starting a running instance changes nothing; a terminated one is
// ErrIncorrectState.
func (e *EC2) StartInstance(ctx context.Context, instanceID string) (StateChange, error) {
	out, err := e.client.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{instanceID}})
	if err != nil {
		return StateChange{}, fmt.Errorf("instance %s: start: %w", instanceID, classify(err))
	}
	return stateChange(instanceID, out.StartingInstances)
}

func stateChange(instanceID string, changes []ec2types.InstanceStateChange) (StateChange, error) {
	for _, c := range changes {
		if aws.ToString(c.InstanceId) != instanceID {
			continue
		}
		var sc StateChange
		if c.PreviousState != nil {
			sc.Previous = string(c.PreviousState.Name)
		}
		if c.CurrentState != nil {
			sc.Current = string(c.CurrentState.Name)
		}
		return sc, nil
	}
	return StateChange{}, fmt.Errorf("instance %s: EC2 did not answer for it", instanceID)
}

// InstanceFilter selects instances by kfleet's tags, state and zone; zero
// fields match everything.
type InstanceFilter struct {
	Cluster string
	Role    string
	// BrokerID, when set, selects that broker's instances.
	BrokerID *int32
	// States are EC2 instance states (pending, running, ...).
	States []string
	AZ     string
}

func (f InstanceFilter) filters() []ec2types.Filter {
	out := kfleetFilters(f.Cluster, f.Role, f.BrokerID)
	out = appendFilter(out, "instance-state-name", f.States...)
	return appendFilter(out, "availability-zone", f.AZ)
}

// kfleetFilters select by kfleet's tags; empty ones select everything.
func kfleetFilters(cluster, role string, broker *int32) []ec2types.Filter {
	out := appendFilter(nil, "tag:"+TagCluster, cluster)
	out = appendFilter(out, "tag:"+TagRole, role)
	if broker != nil {
		out = appendFilter(out, "tag:"+TagBrokerID, strconv.Itoa(int(*broker)))
	}
	return out
}

// appendFilter appends a filter for the non-empty values; with none, it
// selects everything and is left out.
func appendFilter(fs []ec2types.Filter, name string, values ...string) []ec2types.Filter {
	values = slices.DeleteFunc(slices.Clone(values), func(v string) bool { return v == "" })
	if len(values) == 0 {
		return fs
	}
	return append(fs, ec2types.Filter{Name: aws.String(name), Values: values})
}

// FindInstances returns the instances the filter selects, terminated ones
// included unless States says otherwise, in EC2's order.
func (e *EC2) FindInstances(ctx context.Context, f InstanceFilter) ([]Instance, error) {
	var out []Instance
	p := ec2.NewDescribeInstancesPaginator(e.client, &ec2.DescribeInstancesInput{Filters: f.filters()})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("find instances of cluster %q (role %q): %w", f.Cluster, f.Role, classify(err))
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				inst := instanceFrom(in)
				inst.ReservationID = aws.ToString(r.ReservationId)
				out = append(out, inst)
			}
		}
	}
	return out, nil
}
