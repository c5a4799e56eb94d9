package cloud_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/devstack/tier"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// A spec kfleet cannot launch idempotently never reaches EC2: nothing
// listens at the endpoint.
func TestLaunchAndVolumeSpecsRefused(t *testing.T) {
	e := cloud.NewEC2(aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("k", "s", "")}, "http://127.0.0.1:1")
	ok := cloud.LaunchSpec{Cluster: "c1", Role: cloud.RoleBroker, BrokerID: 1, AZ: "us-east-1a", InstanceType: "m5.xlarge",
		ImageID: "ami-0123456789abcdef0", ClientToken: "c1-broker-1"}
	tests := []struct {
		name   string
		change func(s *cloud.LaunchSpec)
	}{
		{"no token: a retry would launch a second host", func(s *cloud.LaunchSpec) { s.ClientToken = "" }},
		{"token too long", func(s *cloud.LaunchSpec) { s.ClientToken = string(make([]byte, 65)) }},
		{"no cluster", func(s *cloud.LaunchSpec) { s.Cluster = "" }},
		{"unknown role", func(s *cloud.LaunchSpec) { s.Role = "web" }},
		{"negative broker id", func(s *cloud.LaunchSpec) { s.BrokerID = -1 }},
		{"negative controller node id", func(s *cloud.LaunchSpec) { s.Role, s.NodeID = cloud.RoleController, -1 }},
		{"no zone", func(s *cloud.LaunchSpec) { s.AZ = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := ok
			tt.change(&spec)
			_, err := e.LaunchInstance(context.Background(), spec)
			require.ErrorIs(t, err, cloud.ErrInvalidSpec)
		})
	}
	_, err := e.CreateVolume(context.Background(), cloud.VolumeSpec{Cluster: "c1", BrokerID: 1, AZ: "us-east-1a", SizeGiB: 100})
	require.ErrorIs(t, err, cloud.ErrInvalidSpec, "no token")
	_, err = e.CreateVolume(context.Background(), cloud.VolumeSpec{Cluster: "c1", BrokerID: 1, AZ: "us-east-1a", ClientToken: "t"})
	require.ErrorIs(t, err, cloud.ErrInvalidSpec, "no size")
}

// startProvisioningFleet is startFleet with EC2 states of a tenth of a
// second.
func startProvisioningFleet(t *testing.T) (*localfleet.Fleet, *cloud.EC2) {
	t.Helper()
	tier.Integration(t, tier.ZooKeeper)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	z, err := devstack.StartZooKeeper(ctx, t.TempDir(), 0, log)
	require.NoError(t, err)
	t.Cleanup(func() { _ = z.Stop() })
	d := 100 * time.Millisecond
	f, err := localfleet.Start(ctx, localfleet.Config{
		Clusters: []localfleet.ClusterConfig{{
			ID: "local-a", Brokers: 3, Racks: 3, SegmentsPerBroker: 100,
			Timing: localfleet.Timing{ControlledShutdown: 50 * time.Millisecond, Startup: 50 * time.Millisecond, CatchUp: 100 * time.Millisecond},
		}},
		EC2: localfleet.EC2Config{Timing: localfleet.EC2Timing{Pending: d, Stopping: d, ShuttingDown: d, VolumeCreating: d, Attaching: d, Detaching: d}},
	}, localfleet.Options{ZooKeeper: z.Addr, DataDir: t.TempDir(), Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, f.Close()) })
	ep := f.Endpoints().AWS
	cfg := aws.Config{Region: ep.Region, Credentials: credentials.NewStaticCredentialsProvider(ep.AccessKeyID, ep.SecretAccessKey, "")}
	return f, cloud.NewEC2(cfg, ep.Endpoint, cloud.WithWaitDelays(20*time.Millisecond, 200*time.Millisecond))
}

// The product's EC2 client over a host's life: idempotent launches and
// volumes, the waiters, the filters, and EC2's refusals as sentinels whose
// messages name what they were about.
func TestIntegrationEC2HostLifecycle(t *testing.T) {
	_, e := startProvisioningFleet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	spec := cloud.LaunchSpec{Cluster: "c1", Role: cloud.RoleBroker, BrokerID: 4, AZ: "us-east-1b", InstanceType: "m5.xlarge",
		ImageID: "ami-0123456789abcdef0", ClientToken: "c1-add-broker-4", Tags: map[string]string{cloud.TagRequestedBy: "test", cloud.TagCluster: "ignored"}}

	in, err := e.LaunchInstance(ctx, spec)
	require.NoError(t, err)
	assert.Equal(t, "pending", in.State)
	assert.Equal(t, "c1", in.Cluster, "kfleet's tags win over the spec's")
	assert.Equal(t, int32(4), in.BrokerID)
	assert.Equal(t, cloud.RoleBroker, in.Role)
	assert.Equal(t, "c1-broker-4", in.Tags["Name"])
	assert.Equal(t, "test", in.Tags[cloud.TagRequestedBy])
	retry, err := e.LaunchInstance(ctx, spec)
	require.NoError(t, err)
	assert.Equal(t, in.ID, retry.ID, "a retry with the token launches nothing new")
	other := spec
	other.AZ = "us-east-1c"
	_, err = e.LaunchInstance(ctx, other)
	require.ErrorIs(t, err, cloud.ErrIdempotentMismatch)
	assert.ErrorContains(t, err, `cluster "c1" broker 4`)

	running, err := e.WaitInstanceRunning(ctx, in.ID, 10*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "running", running.State)
	assert.Equal(t, "127.0.0.1", running.PrivateIP)

	vspec := cloud.VolumeSpec{Cluster: "c1", BrokerID: 4, AZ: "us-east-1b", SizeGiB: 200, Iops: 6000, Throughput: 250, ClientToken: "c1-broker-4-data"}
	vol, err := e.CreateVolume(ctx, vspec)
	require.NoError(t, err)
	assert.Equal(t, "creating", vol.State)
	assert.Equal(t, cloud.VolumeTypeGP3, vol.Type)
	assert.Equal(t, int32(6000), vol.Iops)
	assert.Equal(t, cloud.RoleKafkaData, vol.Role)
	again, err := e.CreateVolume(ctx, vspec)
	require.NoError(t, err)
	assert.Equal(t, vol.ID, again.ID)
	bigger := vspec
	bigger.SizeGiB = 300
	_, err = e.CreateVolume(ctx, bigger)
	require.ErrorIs(t, err, cloud.ErrIdempotentMismatch)
	_, err = e.WaitVolumeAvailable(ctx, vol.ID, 10*time.Second)
	require.NoError(t, err)

	elsewhere, err := e.LaunchInstance(ctx, cloud.LaunchSpec{Cluster: "c1", Role: cloud.RoleZooKeeper, AZ: "us-east-1a",
		InstanceType: "t3.medium", ImageID: "ami-0123456789abcdef0", ClientToken: "c1-zk-1"})
	require.NoError(t, err)
	_, err = e.WaitInstanceRunning(ctx, elsewhere.ID, 10*time.Second)
	require.NoError(t, err)

	require.NoError(t, e.AttachVolume(ctx, vol.ID, in.ID, "/dev/xvdb"))
	inUse, err := e.WaitVolumeInUse(ctx, vol.ID, 10*time.Second)
	require.NoError(t, err)
	assert.Equal(t, in.ID, inUse.InstanceID)
	attached, err := e.WaitVolumeAttached(ctx, vol.ID, in.ID, 10*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "/dev/xvdb", attached.Device)
	found, err := e.FindInstances(ctx, cloud.InstanceFilter{Cluster: "c1", Role: cloud.RoleBroker, BrokerID: aws.Int32(4), States: []string{"pending", "running"}})
	require.NoError(t, err)
	require.Len(t, found, 1)
	assert.Equal(t, map[string]string{"/dev/xvdb": vol.ID}, found[0].Volumes)
	zks, err := e.FindInstances(ctx, cloud.InstanceFilter{Cluster: "c1", Role: cloud.RoleZooKeeper})
	require.NoError(t, err)
	require.Len(t, zks, 1)
	assert.Equal(t, int32(-1), zks[0].BrokerID)
	vols, err := e.FindVolumes(ctx, cloud.VolumeFilter{Cluster: "c1", Role: cloud.RoleKafkaData, InstanceID: in.ID, AttachStates: []string{"attached"}})
	require.NoError(t, err)
	require.Len(t, vols, 1)

	refusals := []struct {
		name     string
		err      error
		sentinel error
		names    string
	}{
		{"attach elsewhere", e.AttachVolume(ctx, vol.ID, elsewhere.ID, "/dev/xvdc"), cloud.ErrVolumeInUse, vol.ID},
		{"delete attached", e.DeleteVolume(ctx, vol.ID), cloud.ErrVolumeInUse, vol.ID},
		{"detach from another instance", e.DetachVolume(ctx, vol.ID, elsewhere.ID, false), cloud.ErrNotAttached, elsewhere.ID},
		{"unknown volume", e.DeleteVolume(ctx, "vol-0123456789abcdef0"), cloud.ErrVolumeNotFound, "vol-0123456789abcdef0"},
	}
	for _, r := range refusals {
		require.ErrorIs(t, r.err, r.sentinel, r.name)
		assert.ErrorContains(t, r.err, r.names, r.name)
	}

	require.NoError(t, e.DetachVolume(ctx, vol.ID, in.ID, false))
	_, err = e.WaitVolumeAvailable(ctx, vol.ID, 10*time.Second)
	require.NoError(t, err)
	err = e.DetachVolume(ctx, vol.ID, "", false)
	require.ErrorIs(t, err, cloud.ErrIncorrectState)
	err = e.AttachVolume(ctx, vol.ID, elsewhere.ID, "/dev/xvdc")
	require.ErrorIs(t, err, cloud.ErrZoneMismatch, "us-east-1b's volume, us-east-1a's host")
	require.NoError(t, e.AttachVolume(ctx, vol.ID, in.ID, "/dev/xvdb"))
	_, err = e.WaitVolumeAttached(ctx, vol.ID, elsewhere.ID, 10*time.Second)
	require.ErrorIs(t, err, cloud.ErrIncorrectState, "attached to another instance")

	ch, err := e.StopInstance(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, cloud.StateChange{Previous: "running", Current: "stopping"}, ch)
	_, err = e.WaitInstanceStopped(ctx, in.ID, 10*time.Second)
	require.NoError(t, err)
	ch, err = e.StartInstance(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, cloud.StateChange{Previous: "stopped", Current: "pending"}, ch)
	ch, err = e.TerminateInstance(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, "shutting-down", ch.Current)
	_, err = e.WaitInstanceRunning(ctx, in.ID, 10*time.Second)
	require.ErrorIs(t, err, cloud.ErrIncorrectState, "a terminated host never runs")
	assert.ErrorContains(t, err, in.ID)
	_, err = e.WaitInstanceTerminated(ctx, in.ID, 10*time.Second)
	require.NoError(t, err)
	_, err = e.StartInstance(ctx, in.ID)
	require.ErrorIs(t, err, cloud.ErrIncorrectState)
	ch, err = e.TerminateInstance(ctx, in.ID)
	require.NoError(t, err)
	assert.Equal(t, cloud.StateChange{Previous: "terminated", Current: "terminated"}, ch, "terminating twice changes nothing")
	_, err = e.TerminateInstance(ctx, "i-0123456789abcdef0")
	require.ErrorIs(t, err, cloud.ErrInstanceNotFound)

	short, err := e.FindInstances(ctx, cloud.InstanceFilter{Cluster: "c1", BrokerID: aws.Int32(4), States: []string{"running"}})
	require.NoError(t, err)
	assert.Empty(t, short)
}

// A volume Kafka's log directory is on stays busy until Kafka is down on
// it; Force pulls it from under the process, which dies of it. Without its
// volume a broker does not start.
func TestIntegrationDetachDataVolume(t *testing.T) {
	f, e := startProvisioningFleet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b1 := f.Endpoints().Clusters["local-a"].Brokers[0]
	vol, err := e.DescribeVolumeOf(ctx, b1.InstanceID)
	require.NoError(t, err)

	require.NoError(t, e.DetachVolume(ctx, vol.ID, b1.InstanceID, false))
	v, err := e.DescribeVolume(ctx, vol.ID)
	require.NoError(t, err)
	assert.Equal(t, "busy", v.AttachState)
	_, err = e.WaitVolumeAvailable(ctx, vol.ID, 300*time.Millisecond)
	require.ErrorIs(t, err, cloud.ErrWaitTimeout, "busy while the broker runs")
	state, _ := f.BrokerState("local-a", 1)
	assert.Equal(t, localfleet.StateRunning, state)

	require.NoError(t, f.StopBroker(ctx, "local-a", 1, "test"))
	_, err = e.WaitVolumeAvailable(ctx, vol.ID, 10*time.Second)
	require.NoError(t, err, "detached once Kafka is down")
	err = f.StartBroker(ctx, "local-a", 1, "test")
	require.ErrorIs(t, err, localfleet.ErrNoDataVolume)
	require.NoError(t, e.AttachVolume(ctx, vol.ID, b1.InstanceID, "/dev/xvdb"))
	_, err = e.WaitVolumeAttached(ctx, vol.ID, b1.InstanceID, 10*time.Second)
	require.NoError(t, err)
	require.NoError(t, f.StartBroker(ctx, "local-a", 1, "test"))

	b2 := f.Endpoints().Clusters["local-a"].Brokers[1]
	vol2, err := e.DescribeVolumeOf(ctx, b2.InstanceID)
	require.NoError(t, err)
	require.NoError(t, e.DetachVolume(ctx, vol2.ID, "", true))
	state, _ = f.BrokerState("local-a", 2)
	assert.Equal(t, localfleet.StateCrashed, state, "its log directory failed under it")
	_, err = e.WaitVolumeAvailable(ctx, vol2.ID, 10*time.Second)
	require.NoError(t, err)
	var crash localfleet.Event
	for _, ev := range f.Audit("local-a") {
		if ev.Broker == 2 && ev.Kind == localfleet.EventCrash {
			crash = ev
		}
	}
	assert.Contains(t, crash.Detail, "force-detached")
}
