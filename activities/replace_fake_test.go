package activities_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"

	"github.com/kfleet/kfleet/internal/cloud"
)

// fakeEC2 is a small EC2 for the host replacement activities: instances
// and volumes whose transitions (pending, creating, attaching, detaching)
// complete at their next describe, ClientTokens that return what they made,
// and a log of every call that changes something.
type fakeEC2 struct {
	mu        sync.Mutex
	instances map[string]*cloud.Instance
	volumes   map[string]*cloud.Volume
	tokens    map[string]string
	calls     []string
	n         int
	// startErr and launchErr fail StartInstance and LaunchInstance;
	// stuckPending keeps a started instance pending for ever.
	startErr, launchErr error
	stuckPending        bool
}

func newFakeEC2() *fakeEC2 {
	return &fakeEC2{instances: map[string]*cloud.Instance{}, volumes: map[string]*cloud.Volume{}, tokens: map[string]string{}}
}

// host adds broker's instance of cluster unit-a in state.
func (f *fakeEC2) host(id string, broker int32, state string) *cloud.Instance {
	in := &cloud.Instance{ID: id, State: state, AZ: "us-east-1b", ImageID: "ami-0123456789abcdef0", InstanceType: "m5.xlarge",
		Cluster: "unit-a", Role: cloud.RoleBroker, BrokerID: broker, Volumes: map[string]string{},
		Tags: map[string]string{cloud.TagCluster: "unit-a", cloud.TagRole: cloud.RoleBroker, cloud.TagBrokerID: strconv.Itoa(int(broker))}}
	f.instances[id] = in
	return in
}

// volume adds broker's data volume, attached to instance ("" : detached).
func (f *fakeEC2) volume(id string, broker int32, instance string) *cloud.Volume {
	v := &cloud.Volume{ID: id, SizeGiB: 100, AZ: "us-east-1b", Type: "gp3", State: "available", Cluster: "unit-a", Role: cloud.RoleKafkaData, BrokerID: broker,
		Tags: map[string]string{cloud.TagCluster: "unit-a", cloud.TagRole: cloud.RoleKafkaData, cloud.TagBrokerID: strconv.Itoa(int(broker))}}
	if instance != "" {
		v.State, v.InstanceID, v.Device, v.AttachState = "in-use", instance, "/dev/xvdb", "attached"
		f.instances[instance].Volumes["/dev/xvdb"] = id
	}
	f.volumes[id] = v
	return v
}

func (f *fakeEC2) log(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeEC2) DescribeInstance(_ context.Context, id string) (cloud.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.instances[id]
	if !ok {
		return cloud.Instance{}, fmt.Errorf("instance %s: %w", id, cloud.ErrInstanceNotFound)
	}
	out := *in
	if in.State == "pending" && !f.stuckPending {
		in.State = "running"
	}
	return out, nil
}

func (f *fakeEC2) FindInstances(_ context.Context, flt cloud.InstanceFilter) ([]cloud.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cloud.Instance
	for _, id := range slices.Sorted(maps.Keys(f.instances)) {
		in := f.instances[id]
		if flt.Cluster != "" && in.Cluster != flt.Cluster || flt.Role != "" && in.Role != flt.Role ||
			flt.BrokerID != nil && in.BrokerID != *flt.BrokerID || len(flt.States) > 0 && !slices.Contains(flt.States, in.State) {
			continue
		}
		out = append(out, *in)
	}
	return out, nil
}

func (f *fakeEC2) LaunchInstance(_ context.Context, spec cloud.LaunchSpec) (cloud.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.tokens[spec.ClientToken]; ok {
		return *f.instances[id], nil
	}
	if f.launchErr != nil {
		return cloud.Instance{}, f.launchErr
	}
	f.n++
	id := fmt.Sprintf("i-new%d", f.n)
	tags := map[string]string{cloud.TagCluster: spec.Cluster, cloud.TagRole: spec.Role, cloud.TagBrokerID: strconv.Itoa(int(spec.BrokerID))}
	if spec.Role == cloud.RoleController {
		delete(tags, cloud.TagBrokerID)
		tags[cloud.TagNodeID] = strconv.Itoa(int(spec.NodeID))
	}
	for k, v := range spec.Tags {
		tags[k] = v
	}
	f.instances[id] = &cloud.Instance{ID: id, State: "pending", AZ: spec.AZ, ImageID: spec.ImageID, InstanceType: spec.InstanceType,
		Cluster: spec.Cluster, Role: spec.Role, BrokerID: spec.BrokerID, ClientToken: spec.ClientToken, Tags: tags, Volumes: map[string]string{}}
	f.tokens[spec.ClientToken] = id
	f.log("launch %s in %s", id, spec.AZ)
	return *f.instances[id], nil
}

func (f *fakeEC2) change(id, verb string, apply func(in *cloud.Instance) error) (cloud.StateChange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.instances[id]
	if !ok {
		return cloud.StateChange{}, fmt.Errorf("instance %s: %w", id, cloud.ErrInstanceNotFound)
	}
	prev := in.State
	if err := apply(in); err != nil {
		return cloud.StateChange{}, err
	}
	f.log("%s %s", verb, id)
	return cloud.StateChange{Previous: prev, Current: in.State}, nil
}

func (f *fakeEC2) StartInstance(_ context.Context, id string) (cloud.StateChange, error) {
	return f.change(id, "start", func(in *cloud.Instance) error {
		if f.startErr != nil {
			return f.startErr
		}
		in.State = "pending"
		return nil
	})
}

func (f *fakeEC2) StopInstance(_ context.Context, id string) (cloud.StateChange, error) {
	return f.change(id, "stop", func(in *cloud.Instance) error { in.State = "stopped"; return nil })
}

func (f *fakeEC2) TerminateInstance(_ context.Context, id string) (cloud.StateChange, error) {
	return f.change(id, "terminate", func(in *cloud.Instance) error {
		in.State = "shutting-down"
		for dev, vol := range in.Volumes {
			v := f.volumes[vol]
			v.State, v.InstanceID, v.AttachState, v.Device = "available", "", "", ""
			delete(in.Volumes, dev)
		}
		return nil
	})
}

func (f *fakeEC2) DescribeVolume(_ context.Context, id string) (cloud.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.volumes[id]
	if !ok {
		return cloud.Volume{}, fmt.Errorf("volume %s: %w", id, cloud.ErrVolumeNotFound)
	}
	out := *v
	switch {
	case v.State == "creating":
		v.State = "available"
	case v.AttachState == "attaching":
		v.AttachState = "attached"
	case v.AttachState == "detaching":
		delete(f.instances[v.InstanceID].Volumes, v.Device)
		v.State, v.InstanceID, v.AttachState, v.Device = "available", "", "", ""
	}
	return out, nil
}

func (f *fakeEC2) FindVolumes(_ context.Context, flt cloud.VolumeFilter) ([]cloud.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cloud.Volume
	for _, id := range slices.Sorted(maps.Keys(f.volumes)) {
		v := f.volumes[id]
		if flt.Cluster != "" && v.Cluster != flt.Cluster || flt.Role != "" && v.Role != flt.Role ||
			flt.BrokerID != nil && v.BrokerID != *flt.BrokerID || len(flt.States) > 0 && !slices.Contains(flt.States, v.State) {
			continue
		}
		out = append(out, *v)
	}
	return out, nil
}

func (f *fakeEC2) CreateVolume(_ context.Context, spec cloud.VolumeSpec) (cloud.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.tokens[spec.ClientToken]; ok {
		return *f.volumes[id], nil
	}
	f.n++
	id := fmt.Sprintf("vol-new%d", f.n)
	tags := map[string]string{cloud.TagCluster: spec.Cluster, cloud.TagRole: cloud.RoleKafkaData, cloud.TagBrokerID: strconv.Itoa(int(spec.BrokerID))}
	for k, v := range spec.Tags {
		tags[k] = v
	}
	f.volumes[id] = &cloud.Volume{ID: id, SizeGiB: spec.SizeGiB, AZ: spec.AZ, Type: "gp3", State: "creating", Cluster: spec.Cluster,
		Role: cloud.RoleKafkaData, BrokerID: spec.BrokerID, Tags: tags}
	f.tokens[spec.ClientToken] = id
	f.log("create %s %d GiB in %s", id, spec.SizeGiB, spec.AZ)
	return *f.volumes[id], nil
}

func (f *fakeEC2) AttachVolume(_ context.Context, vol, instance, device string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.volumes[vol]
	if v.InstanceID != "" {
		return fmt.Errorf("volume %s: %w", vol, cloud.ErrVolumeInUse)
	}
	v.State, v.InstanceID, v.Device, v.AttachState = "in-use", instance, device, "attaching"
	f.instances[instance].Volumes[device] = vol
	f.log("attach %s to %s at %s", vol, instance, device)
	return nil
}

func (f *fakeEC2) DetachVolume(_ context.Context, vol, instance string, force bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.volumes[vol]
	if v.InstanceID != instance || v.AttachState != "attached" {
		return fmt.Errorf("volume %s: %w", vol, cloud.ErrIncorrectState)
	}
	v.AttachState = "detaching"
	f.log("detach %s from %s (force %t)", vol, instance, force)
	return nil
}
