package activities_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// replaceUnit is the activities over unit-a with an EC2 where broker 1 runs
// on i-1 with its volume vol-1, and the test sets up broker 2's host.
func replaceUnit(t *testing.T) (*unit, *fakeEC2) {
	t.Helper()
	u := newUnit(t)
	ec2 := newFakeEC2()
	ec2.host("i-1", 1, "running")
	ec2.volume("vol-1", 1, "i-1")
	u.acts.Lifecycle = ec2
	return u, ec2
}

func (u *unit) replaceInput() activities.ReplaceInput {
	return activities.ReplaceInput{BrokerInput: activities.BrokerInput{Spec: u.spec, Broker: 2, Reason: "kfleet recovery op-1"}}
}

func TestStartStoppedInstance(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*fakeEC2)
		back    bool
		why     string
		calls   []string
		timeout time.Duration
	}{
		{name: "stopped: started, it runs", setup: func(f *fakeEC2) { f.host("i-2", 2, "stopped") }, back: true, calls: []string{"start i-2"}},
		{name: "it runs already", setup: func(f *fakeEC2) { f.host("i-2", 2, "running") }, back: true},
		{name: "no capacity to start it", setup: func(f *fakeEC2) {
			f.host("i-2", 2, "stopped")
			f.startErr = fmt.Errorf("instance i-2: start: %w", cloud.ErrCapacity)
		}, why: "no capacity"},
		{name: "terminated meanwhile", setup: func(f *fakeEC2) { f.host("i-2", 2, "terminated") }, why: "terminated"},
		{name: "unknown to EC2", setup: func(*fakeEC2) {}, why: "no longer knows it"},
		{name: "pending past the timeout: stopped again", setup: func(f *fakeEC2) {
			f.host("i-2", 2, "stopped")
			f.stuckPending = true
		}, timeout: 30 * time.Millisecond, why: "did not run within", calls: []string{"start i-2", "stop i-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ec2 := replaceUnit(t)
			tt.setup(ec2)
			in := activities.InstanceStartInput{BrokerInput: u.replaceInput().BrokerInput, Timeout: time.Minute}
			if tt.timeout > 0 {
				in.Timeout = tt.timeout
			}
			var got activities.InstanceStart
			require.NoError(t, u.exec(t, u.acts.StartStoppedInstance, in, &got))
			assert.Equal(t, tt.back, got.Back, got.Why)
			assert.Contains(t, got.Why, tt.why)
			assert.Equal(t, tt.calls, ec2.calls)
		})
	}
}

func TestPlanHostReplacement(t *testing.T) {
	tests := []struct {
		name     string
		rack     string
		setup    func(*fakeEC2)
		want     activities.ReplacementPlan
		badInput string
	}{
		{
			name:  "terminated: its volume survived detached",
			setup: func(f *fakeEC2) { f.host("i-2", 2, "terminated"); f.volume("vol-2", 2, "") },
			want: activities.ReplacementPlan{Old: "i-2", OldState: "terminated", Rack: "us-east-1b", Device: "/dev/xvdb",
				Volume: fleet.VolumeChoice{Volume: fleet.VolumeSighting{ID: "vol-2", State: "available", AZ: "us-east-1b", SizeGiB: 100}}},
		},
		{
			name:  "stopped: its volume still attached there",
			setup: func(f *fakeEC2) { f.host("i-2", 2, "stopped"); f.volume("vol-2", 2, "i-2") },
			want: activities.ReplacementPlan{Old: "i-2", OldState: "stopped", Rack: "us-east-1b", Device: "/dev/xvdb",
				Volume: fleet.VolumeChoice{Volume: fleet.VolumeSighting{ID: "vol-2", State: "in-use", AZ: "us-east-1b", SizeGiB: 100,
					InstanceID: "i-2", AttachState: "attached", Device: "/dev/xvdb"}}},
		},
		{
			name:  "forgotten by EC2 with its volume: a sibling's image, the rack's zone, a blank volume of the cluster's size",
			rack:  "us-east-1c",
			setup: func(*fakeEC2) {},
			want: activities.ReplacementPlan{Old: "i-2", OldState: activities.InstanceNotFound, Rack: "us-east-1c", Device: "/dev/xvdb",
				Volume: fleet.VolumeChoice{Lost: true}, NewVolumeGiB: 100},
		},
		{
			name: "an earlier attempt launched its new host and moved the volume",
			setup: func(f *fakeEC2) {
				f.host("i-2", 2, "terminated")
				f.host("i-new9", 2, "running")
				f.volume("vol-2", 2, "i-new9")
			},
			want: activities.ReplacementPlan{Old: "i-2", OldState: "terminated", Existing: "i-new9", Rack: "us-east-1b", Device: "/dev/xvdb",
				Volume: fleet.VolumeChoice{Volume: fleet.VolumeSighting{ID: "vol-2", State: "in-use", AZ: "us-east-1b", SizeGiB: 100,
					InstanceID: "i-new9", AttachState: "attached", Device: "/dev/xvdb"}}},
		},
		{
			name: "two hosts run for it already",
			setup: func(f *fakeEC2) {
				f.host("i-2", 2, "terminated")
				f.host("i-x", 2, "running")
				f.host("i-y", 2, "pending")
			},
			badInput: "a human decides which stays",
		},
		{
			name:     "two volumes, either could hold its data",
			setup:    func(f *fakeEC2) { f.host("i-2", 2, "terminated"); f.volume("vol-2", 2, ""); f.volume("vol-3", 2, "") },
			badInput: "cannot tell which volume",
		},
		{
			name:     "lost with no zone to go to",
			setup:    func(*fakeEC2) {},
			badInput: "no zone to launch in",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ec2 := replaceUnit(t)
			u.spec.Brokers[1].Rack = tt.rack
			tt.setup(ec2)
			var got activities.ReplacementPlan
			err := u.exec(t, u.acts.PlanHostReplacement, u.replaceInput(), &got)
			if tt.badInput != "" {
				requireBadInput(t, err, tt.badInput)
				return
			}
			require.NoError(t, err)
			assert.Empty(t, ec2.calls, "planning changes nothing")
			assert.NotEmpty(t, got.Volume.Why)
			got.Volume.Why = ""
			assert.Equal(t, "ami-0123456789abcdef0", got.Launch.ImageID)
			assert.Equal(t, "m5.xlarge", got.Launch.InstanceType)
			assert.Equal(t, got.Rack, got.Launch.AZ, "the broker's zone")
			got.Launch = activities.LaunchTemplate{}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestLaunchReplacementLaunchesOnce(t *testing.T) {
	u, ec2 := replaceUnit(t)
	ec2.host("i-2", 2, "terminated")
	in := activities.LaunchInput{ReplaceInput: u.replaceInput(), Plan: activities.ReplacementPlan{Old: "i-2",
		Launch: activities.LaunchTemplate{AZ: "us-east-1b", ImageID: "ami-0123456789abcdef0", InstanceType: "m5.xlarge"}}}
	var first, again activities.Host
	require.NoError(t, u.exec(t, u.acts.LaunchReplacement, in, &first))
	assert.Equal(t, activities.Host{InstanceID: "i-new1", AZ: "us-east-1b"}, first)
	launched := ec2.instances["i-new1"]
	assert.Equal(t, "running", launched.State)
	assert.Equal(t, "i-2", launched.Tags[activities.TagReplaces])
	assert.NotEmpty(t, launched.Tags[cloud.TagRequestedBy])
	assert.LessOrEqual(t, len(launched.ClientToken), 64)

	require.NoError(t, u.exec(t, u.acts.LaunchReplacement, in, &again), "a retry")
	assert.Equal(t, activities.Host{InstanceID: "i-new1", AZ: "us-east-1b", Adopted: true}, again, "found by its tags")
	assert.Equal(t, []string{"launch i-new1 in us-east-1b"}, ec2.calls, "one launch")

	// Lost before it could be configured: the same attempt's token names
	// it, so a new attempt is needed; another attempt launches another.
	ec2.instances["i-new1"].State = "terminated"
	err := u.exec(t, u.acts.LaunchReplacement, in, nil)
	requireErrorType(t, err, activities.ErrTypeReplacementGone, true)
	in.Attempt = 1
	require.NoError(t, u.exec(t, u.acts.LaunchReplacement, in, &again))
	assert.Equal(t, "i-new2", again.InstanceID)
}

func TestLaunchReplacementRefusals(t *testing.T) {
	tests := []struct {
		name         string
		setup        func(*fakeEC2)
		errType      string
		nonRetryable bool
	}{
		{"the old host runs again", func(f *fakeEC2) { f.host("i-2", 2, "running") }, activities.ErrTypeHostBack, true},
		{"the old host is starting again", func(f *fakeEC2) { f.host("i-2", 2, "pending") }, activities.ErrTypeHostBack, true},
		{"no capacity in the zone", func(f *fakeEC2) {
			f.host("i-2", 2, "stopped")
			f.launchErr = fmt.Errorf("launch: %w", cloud.ErrCapacity)
		}, activities.ErrTypeNoCapacity, false},
		{"two hosts run for it", func(f *fakeEC2) { f.host("i-x", 2, "running"); f.host("i-y", 2, "running") }, activities.ErrTypeBadInput, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ec2 := replaceUnit(t)
			tt.setup(ec2)
			in := activities.LaunchInput{ReplaceInput: u.replaceInput(), Plan: activities.ReplacementPlan{Old: "i-2",
				Launch: activities.LaunchTemplate{AZ: "us-east-1b", ImageID: "ami-0123456789abcdef0", InstanceType: "m5.xlarge"}}}
			requireErrorType(t, u.exec(t, u.acts.LaunchReplacement, in, nil), tt.errType, tt.nonRetryable)
			assert.Empty(t, ec2.calls, "nothing launched")
		})
	}
}

func requireErrorType(t *testing.T, err error, typ string, nonRetryable bool) {
	t.Helper()
	require.Error(t, err)
	got, nr := appErrorType(err)
	assert.Equal(t, typ, got, err.Error())
	assert.Equal(t, nonRetryable, nr)
}

func TestCreateDataVolumeCreatesOnce(t *testing.T) {
	u, ec2 := replaceUnit(t)
	ec2.host("i-2", 2, "terminated")
	in := activities.VolumeCreateInput{ReplaceInput: u.replaceInput(), AZ: "us-east-1b", SizeGiB: 100}
	var first, again string
	require.NoError(t, u.exec(t, u.acts.CreateDataVolume, in, &first))
	require.NoError(t, u.exec(t, u.acts.CreateDataVolume, in, &again), "a retry")
	assert.Equal(t, first, again)
	assert.Equal(t, []string{"create vol-new1 100 GiB in us-east-1b"}, ec2.calls, "one volume")
	assert.Equal(t, "available", ec2.volumes[first].State)
}

func TestAttachDataVolume(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(*fakeEC2)
		calls    []string
		badInput string
	}{
		{"still attached to the stopped old host: detached, then attached", func(f *fakeEC2) {
			f.host("i-2", 2, "stopped")
			f.volume("vol-2", 2, "i-2")
		}, []string{"detach vol-2 from i-2 (force false)", "attach vol-2 to i-new at /dev/xvdb"}, ""},
		{"detached with its terminated host: attached", func(f *fakeEC2) { f.volume("vol-2", 2, "") },
			[]string{"attach vol-2 to i-new at /dev/xvdb"}, ""},
		{"attached already (a retry)", func(f *fakeEC2) { f.volume("vol-2", 2, "i-new") }, nil, ""},
		{"on a third host", func(f *fakeEC2) { f.host("i-x", 2, "running"); f.volume("vol-2", 2, "i-x") }, nil, "neither the old host nor the new one"},
		{"gone", func(*fakeEC2) {}, nil, "no longer exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ec2 := replaceUnit(t)
			ec2.host("i-new", 2, "running")
			tt.setup(ec2)
			in := activities.AttachInput{BrokerInput: u.replaceInput().BrokerInput, Volume: "vol-2", Old: "i-2", New: "i-new", Device: "/dev/xvdb"}
			err := u.exec(t, u.acts.AttachDataVolume, in, nil)
			if tt.badInput != "" {
				requireBadInput(t, err, tt.badInput)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.calls, ec2.calls)
			v := ec2.volumes["vol-2"]
			assert.Equal(t, []string{"i-new", "attached"}, []string{v.InstanceID, v.AttachState})
		})
	}
}

func TestRetireHost(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(*fakeEC2)
		state    string
		calls    []string
		badInput string
	}{
		{"stopped: terminated", func(f *fakeEC2) { f.host("i-2", 2, "stopped") }, "shutting-down", []string{"terminate i-2"}, ""},
		{"started again by someone: terminated", func(f *fakeEC2) { f.host("i-2", 2, "running") }, "shutting-down", []string{"terminate i-2"}, ""},
		{"terminated already", func(f *fakeEC2) { f.host("i-2", 2, "terminated") }, "terminated", nil, ""},
		{"forgotten by EC2", func(*fakeEC2) {}, activities.InstanceNotFound, nil, ""},
		{"still holding the data volume", func(f *fakeEC2) { f.host("i-2", 2, "stopped"); f.volume("vol-2", 2, "i-2") }, "", nil, "still holds data volume vol-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, ec2 := replaceUnit(t)
			tt.setup(ec2)
			var state string
			err := u.exec(t, u.acts.RetireHost, activities.RetireInput{BrokerInput: u.replaceInput().BrokerInput, Old: "i-2", Volume: "vol-2"}, &state)
			if tt.badInput != "" {
				requireBadInput(t, err, tt.badInput)
				assert.Empty(t, ec2.calls)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.state, state)
			assert.Equal(t, tt.calls, ec2.calls)
		})
	}
}

// catchingUp is a cluster whose broker 2 is out of the ISR of two
// partitions until its replication was read inSyncAfter times; its log
// dirs lack step bytes fewer at each read.
type catchingUp struct {
	mu          sync.Mutex
	reads       int
	inSyncAfter int
	bytes, step int64
}

func (c *catchingUp) Replication(context.Context, fleet.ClusterSpec) (int32, []fleet.Partition, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	isr := []int32{1, 3}
	if c.reads > c.inSyncAfter {
		isr = []int32{1, 2, 3}
	}
	return 1, []fleet.Partition{
		{Topic: "t", Partition: 0, Leader: 1, Replicas: []int32{1, 2, 3}, ISR: isr, MinISR: 2},
		{Topic: "t", Partition: 1, Leader: 3, Replicas: []int32{3, 2, 1}, ISR: isr, MinISR: 2},
	}, nil
}

func (*catchingUp) ElectPreferredLeaders(context.Context, fleet.ClusterSpec, []fleet.Partition) error {
	return nil
}

func (c *catchingUp) BytesBehind(_ context.Context, _ fleet.ClusterSpec, broker int32, behind []fleet.Partition) (int64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.bytes
	c.bytes = max(0, c.bytes-c.step)
	return n, nil
}

func TestWaitCatchUp(t *testing.T) {
	u := newUnit(t)
	k := &catchingUp{inSyncAfter: 6, bytes: 60 << 20, step: 10 << 20}
	u.acts.Kafka, u.acts.LogDirs = k, k
	in := activities.CatchUpInput{BrokerInput: u.replaceInput().BrokerInput, Until: activities.CatchUpMeasured, PollInterval: 20 * time.Millisecond}
	var p activities.CatchUpProgress
	require.NoError(t, u.exec(t, u.acts.WaitCatchUp, in, &p))
	assert.Equal(t, fleet.CatchUp{Broker: 2, Replicas: 2, Bytes: 60 << 20}, p.Now, "measured at once")
	assert.False(t, p.Paced)
	line, ok := activities.DescribeWait("WaitCatchUp", func(v any) error { *v.(*activities.CatchUpProgress) = p; return nil })
	assert.True(t, ok)
	assert.Equal(t, "broker 2 catching up: 2 replica(s) out of the ISR, 60.0 MiB to copy (pace not known yet)", line)

	in.Until, in.First = activities.CatchUpPaced, p.First
	require.NoError(t, u.exec(t, u.acts.WaitCatchUp, in, &p))
	require.True(t, p.Paced)
	assert.Equal(t, int64(50<<20), p.Now.Bytes)
	assert.Greater(t, p.Pace.BytesPerSec, float64(0))
	assert.InDelta(t, float64(p.Now.Bytes)/p.Pace.BytesPerSec, p.Pace.ETA.Seconds(), 1, "the rest at that pace")

	in.Until = activities.CatchUpInSync
	require.NoError(t, u.exec(t, u.acts.WaitCatchUp, in, &p))
	assert.True(t, p.InSync())
}
