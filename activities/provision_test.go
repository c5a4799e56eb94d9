package activities_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// fakeProvisionEC2 is EC2 as provisioning sees it: tags, tokens that return what
// they made, states a wait moves on.
type fakeProvisionEC2 struct {
	mu        sync.Mutex
	instances []cloud.Instance
	volumes   []cloud.Volume
	tokens    map[string]string // token -> resource id
	launches  int
	creates   int
	zones     []string
	offered   map[string][]string
	attaches  int
}

func newFakeProvisionEC2() *fakeProvisionEC2 {
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	return &fakeProvisionEC2{tokens: map[string]string{}, zones: zones,
		offered: map[string][]string{"m5.xlarge": zones, "t3.medium": zones, "r5.xlarge": zones[:2]}}
}

func (f *fakeProvisionEC2) AvailabilityZones(context.Context) ([]string, error) { return f.zones, nil }
func (f *fakeProvisionEC2) InstanceTypeZones(_ context.Context, types []string) (map[string][]string, error) {
	out := map[string][]string{}
	for _, t := range types {
		if z, ok := f.offered[t]; ok {
			out[t] = z
		}
	}
	return out, nil
}

func (f *fakeProvisionEC2) FindInstances(_ context.Context, flt cloud.InstanceFilter) ([]cloud.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cloud.Instance
	for _, in := range f.instances {
		if (flt.Cluster == "" || in.Cluster == flt.Cluster) && (flt.Role == "" || in.Role == flt.Role) &&
			(flt.BrokerID == nil || in.BrokerID == *flt.BrokerID) && (flt.States == nil || slices.Contains(flt.States, in.State)) {
			out = append(out, in)
		}
	}
	return out, nil
}

func (f *fakeProvisionEC2) LaunchInstance(_ context.Context, s cloud.LaunchSpec) (cloud.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.tokens[s.ClientToken]; ok {
		for _, in := range f.instances {
			if in.ID == id {
				return in, nil
			}
		}
	}
	f.launches++
	tags := map[string]string{cloud.TagCluster: s.Cluster, cloud.TagRole: s.Role}
	for k, v := range s.Tags {
		tags[k] = v
	}
	broker := int32(-1)
	if s.Role == cloud.RoleBroker {
		broker, tags[cloud.TagBrokerID] = s.BrokerID, strconv.Itoa(int(s.BrokerID))
	}
	in := cloud.Instance{ID: fmt.Sprintf("i-%04d", len(f.instances)+1), State: "pending", AZ: s.AZ, PrivateIP: "10.0.0.1",
		Tags: tags, Cluster: s.Cluster, Role: s.Role, BrokerID: broker, LaunchTime: time.Now(), ClientToken: s.ClientToken}
	f.instances = append(f.instances, in)
	f.tokens[s.ClientToken] = in.ID
	return in, nil
}

func (f *fakeProvisionEC2) set(id, state string) cloud.Instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.instances {
		if f.instances[i].ID == id {
			f.instances[i].State = state
			return f.instances[i]
		}
	}
	return cloud.Instance{}
}

func (f *fakeProvisionEC2) WaitInstanceRunning(_ context.Context, id string, _ time.Duration) (cloud.Instance, error) {
	return f.set(id, "running"), nil
}
func (f *fakeProvisionEC2) TerminateInstance(_ context.Context, id string) (cloud.StateChange, error) {
	f.set(id, "terminated")
	return cloud.StateChange{Current: "shutting-down"}, nil
}
func (f *fakeProvisionEC2) WaitInstanceTerminated(_ context.Context, id string, _ time.Duration) (cloud.Instance, error) {
	return f.set(id, "terminated"), nil
}

func (f *fakeProvisionEC2) FindVolumes(_ context.Context, flt cloud.VolumeFilter) ([]cloud.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cloud.Volume
	for _, v := range f.volumes {
		if v.Cluster == flt.Cluster && (flt.BrokerID == nil || v.BrokerID == *flt.BrokerID) && (flt.States == nil || slices.Contains(flt.States, v.State)) {
			out = append(out, v)
		}
	}
	return out, nil
}

func (f *fakeProvisionEC2) CreateVolume(_ context.Context, s cloud.VolumeSpec) (cloud.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := f.tokens[s.ClientToken]; ok {
		for _, v := range f.volumes {
			if v.ID == id {
				return v, nil
			}
		}
	}
	f.creates++
	v := cloud.Volume{ID: fmt.Sprintf("vol-%04d", len(f.volumes)+1), State: "creating", AZ: s.AZ, SizeGiB: s.SizeGiB, Cluster: s.Cluster,
		BrokerID: s.BrokerID, Role: cloud.RoleKafkaData, Tags: map[string]string{cloud.TagPlan: s.Tags[cloud.TagPlan]}, CreateTime: time.Now()}
	f.volumes = append(f.volumes, v)
	f.tokens[s.ClientToken] = v.ID
	return v, nil
}

func (f *fakeProvisionEC2) volume(id string, edit func(*cloud.Volume)) (cloud.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.volumes {
		if f.volumes[i].ID == id {
			if edit != nil {
				edit(&f.volumes[i])
			}
			return f.volumes[i], nil
		}
	}
	return cloud.Volume{}, cloud.ErrVolumeNotFound
}

func (f *fakeProvisionEC2) DescribeVolume(_ context.Context, id string) (cloud.Volume, error) {
	return f.volume(id, nil)
}
func (f *fakeProvisionEC2) WaitVolumeAvailable(_ context.Context, id string, _ time.Duration) (cloud.Volume, error) {
	return f.volume(id, func(v *cloud.Volume) { v.State, v.InstanceID, v.AttachState = "available", "", "" })
}
func (f *fakeProvisionEC2) AttachVolume(_ context.Context, vol, inst, _ string) error {
	f.mu.Lock()
	f.attaches++
	f.mu.Unlock()
	_, err := f.volume(vol, func(v *cloud.Volume) { v.State, v.InstanceID, v.AttachState = "in-use", inst, "attaching" })
	return err
}
func (f *fakeProvisionEC2) WaitVolumeAttached(_ context.Context, vol, _ string, _ time.Duration) (cloud.Volume, error) {
	return f.volume(vol, func(v *cloud.Volume) { v.AttachState = "attached" })
}
func (f *fakeProvisionEC2) DeleteVolume(_ context.Context, id string) error {
	_, err := f.volume(id, func(v *cloud.Volume) { v.State = "deleted" })
	return err
}
func (f *fakeProvisionEC2) WaitVolumeDeleted(context.Context, string, time.Duration) error {
	return nil
}

type fakeRegistry struct{ registered map[string]bool }

func (f fakeRegistry) Register(_ context.Context, spec fleet.ClusterSpec) error {
	f.registered[spec.ID] = true
	return nil
}
func (f fakeRegistry) Registered(_ context.Context, id string) (bool, error) {
	return f.registered[id], nil
}

func provisionUnit(t *testing.T) (*fakeProvisionEC2, *activities.Activities, *testsuite.TestActivityEnvironment) {
	ec2, reg := newFakeProvisionEC2(), fakeRegistry{registered: map[string]bool{"taken": true}}
	acts := &activities.Activities{EC2: ec2, Registry: reg, Provisioning: activities.ProvisionConfig{ImageID: "ami-0123456789abcdef0"},
		Log: zerolog.New(zerolog.NewTestWriter(t))}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	return ec2, acts, env
}

func host(cluster string, n int32, token string) activities.HostInput {
	return activities.HostInput{Cluster: cluster, Role: cloud.RoleBroker, N: n, AZ: "us-east-1a", InstanceType: "m5.xlarge",
		Plan: "fp-1", Token: token, RequestedBy: "t"}
}

// A retried launch — same token, or a later run with another token — gets
// the host it launched, never a second one; a host another plan launched
// is refused; a spent token says so.
func TestLaunchHostIsIdempotent(t *testing.T) {
	ec2, acts, env := provisionUnit(t)
	v, err := env.ExecuteActivity(acts.LaunchHost, host("c1", 1, "c1-b1-run1"))
	require.NoError(t, err)
	var first activities.ProvisionedHost
	require.NoError(t, v.Get(&first))
	assert.False(t, first.Adopted)
	for _, token := range []string{"c1-b1-run1", "c1-b1-run2"} {
		v, err = env.ExecuteActivity(acts.LaunchHost, host("c1", 1, token))
		require.NoError(t, err)
		var again activities.ProvisionedHost
		require.NoError(t, v.Get(&again))
		assert.Equal(t, first.ID, again.ID, "token %s", token)
		assert.True(t, again.Adopted)
	}
	assert.Equal(t, 1, ec2.launches)

	other := host("c1", 1, "c1-b1-run3")
	other.Plan = "fp-2"
	_, err = env.ExecuteActivity(acts.LaunchHost, other)
	require.ErrorContains(t, err, "was launched for another plan")
	typ, nonRetryable := appErrorType(err)
	assert.Equal(t, activities.ErrTypeBadInput, typ)
	assert.True(t, nonRetryable)

	ec2.set(first.ID, "terminated")
	_, err = env.ExecuteActivity(acts.LaunchHost, host("c1", 1, "c1-b1-run1"))
	require.ErrorContains(t, err, activities.TokenSpent)
	v, err = env.ExecuteActivity(acts.LaunchHost, host("c1", 1, "c1-b1-run1-r1"))
	require.NoError(t, err)
	var fresh activities.ProvisionedHost
	require.NoError(t, v.Get(&fresh))
	assert.NotEqual(t, first.ID, fresh.ID, "a new token after a spent one launches anew")
}

func TestCreateAndAttachDataVolumeOnce(t *testing.T) {
	ec2, acts, env := provisionUnit(t)
	in := activities.VolumeInput{Cluster: "c1", Broker: 2, AZ: "us-east-1b", SizeGiB: 100, Plan: "fp-1", Token: "c1-v2-run1"}
	var ids []string
	for _, token := range []string{"c1-v2-run1", "c1-v2-run2"} {
		in.Token = token
		v, err := env.ExecuteActivity(acts.ProvisionDataVolume, in)
		require.NoError(t, err)
		var id string
		require.NoError(t, v.Get(&id))
		ids = append(ids, id)
	}
	assert.Equal(t, ids[0], ids[1])
	assert.Equal(t, 1, ec2.creates)
	for range 2 {
		_, err := env.ExecuteActivity(acts.AttachProvisionedVolume, activities.ProvisionAttachInput{Cluster: "c1", Broker: 2, VolumeID: ids[0], InstanceID: "i-9"})
		require.NoError(t, err)
	}
	assert.Equal(t, 1, ec2.attaches, "an attached volume is not attached again")
	_, err := env.ExecuteActivity(acts.AttachProvisionedVolume, activities.ProvisionAttachInput{Cluster: "c1", Broker: 2, VolumeID: ids[0], InstanceID: "i-8"})
	assert.ErrorContains(t, err, "attached to instance i-9, not i-8")
}

// The account's check refuses what EC2 lacks and ids in use, all at once.
func TestCheckProvisionPlan(t *testing.T) {
	ec2, acts, env := provisionUnit(t)
	plan := fleet.ClusterPlan{ID: "c2", Brokers: 3, AvailabilityZones: []string{"us-east-1a", "us-east-1c", "us-east-1z"},
		KafkaVersion: "3.7.1", InstanceType: "r5.xlarge"}
	_, err := ec2.LaunchInstance(context.Background(), cloud.LaunchSpec{Cluster: "c2", Role: cloud.RoleBroker, BrokerID: 1, ClientToken: "x",
		Tags: map[string]string{cloud.TagPlan: "someone-else"}})
	require.NoError(t, err)
	v, err := env.ExecuteActivity(acts.CheckProvisionPlan, plan)
	require.NoError(t, err)
	var c activities.PlanCheck
	require.NoError(t, v.Get(&c))
	require.Len(t, c.Refusals, 3, "%q", c.Refusals)
	assert.Contains(t, c.Refusals[0], `availability zone "us-east-1z": unknown to EC2 here`)
	assert.Contains(t, c.Refusals[1], `instance type "r5.xlarge": not offered in us-east-1c`)
	assert.Contains(t, c.Refusals[2], `cluster id "c2" is in use: 1 host(s)`)

	plan.ID, plan.AvailabilityZones, plan.InstanceType = "taken", []string{"us-east-1a"}, ""
	v, err = env.ExecuteActivity(acts.CheckProvisionPlan, plan)
	require.NoError(t, err)
	require.NoError(t, v.Get(&c))
	assert.Equal(t, []string{`cluster id "taken" is in use: kfleet already operates it (delete it first)`}, c.Refusals)
}

// Removal finds what is left by tags, and only what the plan made.
func TestTerminateHostsByPlan(t *testing.T) {
	ec2, acts, env := provisionUnit(t)
	for i, p := range []string{"fp-1", "fp-1", "fp-2"} {
		_, err := ec2.LaunchInstance(context.Background(), cloud.LaunchSpec{Cluster: "c3", Role: cloud.RoleBroker, BrokerID: int32(i + 1),
			ClientToken: fmt.Sprint(i), Tags: map[string]string{cloud.TagPlan: p}})
		require.NoError(t, err)
	}
	v, err := env.ExecuteActivity(acts.TerminateHosts, activities.RemoveInput{Cluster: "c3", Role: cloud.RoleBroker, Plan: "fp-1"})
	require.NoError(t, err)
	var r activities.Removed
	require.NoError(t, v.Get(&r))
	assert.Equal(t, 2, r.Removed)
	live, _ := ec2.FindInstances(context.Background(), cloud.InstanceFilter{Cluster: "c3", States: []string{"pending", "running"}})
	require.Len(t, live, 1)
	assert.Equal(t, "fp-2", live[0].Tags[cloud.TagPlan])
}
