package cloud_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/devstack/tier"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// startFleet runs a real ZooKeeper and a one-cluster local fleet on the
// real clock, with volume modifications short enough to watch.
func startFleet(t *testing.T) (*localfleet.Fleet, aws.Config) {
	t.Helper()
	tier.Integration(t, tier.ZooKeeper)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	z, err := devstack.StartZooKeeper(ctx, t.TempDir(), 0, log)
	require.NoError(t, err)
	t.Cleanup(func() { _ = z.Stop() })
	f, err := localfleet.Start(ctx, localfleet.Config{Clusters: []localfleet.ClusterConfig{{
		ID: "local-a", Brokers: 3, Racks: 3,
		Timing: localfleet.Timing{ControlledShutdown: 50 * time.Millisecond, Startup: 50 * time.Millisecond, CatchUp: 100 * time.Millisecond},
		Volume: localfleet.VolumeConfig{SizeGiB: 100, Modifying: 200 * time.Millisecond, Optimizing: 400 * time.Millisecond},
	}}}, localfleet.Options{ZooKeeper: z.Addr, DataDir: t.TempDir(), Logger: log})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, f.Close()) })
	ep := f.Endpoints().AWS
	return f, aws.Config{
		Region:      ep.Region,
		Credentials: credentials.NewStaticCredentialsProvider(ep.AccessKeyID, ep.SecretAccessKey, ""),
	}
}

// The product's EC2 client grows a broker's volume against the fleet:
// describe, modify, follow the modification, grow the filesystem through
// SSM, and meet EBS's refusals as typed errors.
func TestIntegrationEC2VolumeExpansion(t *testing.T) {
	f, cfg := startFleet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	endpoint := f.Endpoints().AWS.Endpoint
	e := cloud.NewEC2(cfg, endpoint)
	broker := f.Endpoints().Clusters["local-a"].Brokers[1]

	inst, err := e.DescribeInstance(ctx, broker.InstanceID)
	require.NoError(t, err)
	assert.Equal(t, cloud.Instance{ID: broker.InstanceID, State: "running", PrivateIP: "127.0.0.1", AZ: "us-east-1b"},
		cloud.Instance{ID: inst.ID, State: inst.State, PrivateIP: inst.PrivateIP, AZ: inst.AZ})
	assert.Equal(t, "local-a", inst.Cluster)
	assert.Equal(t, cloud.RoleBroker, inst.Role)
	assert.Equal(t, broker.ID, inst.BrokerID)

	vol, err := e.DescribeVolumeOf(ctx, broker.InstanceID)
	require.NoError(t, err)
	fleetVol, err := f.Volume("local-a", broker.ID)
	require.NoError(t, err)
	assert.Equal(t, cloud.Volume{
		ID: fleetVol.VolumeID, SizeGiB: 100, InstanceID: broker.InstanceID, Device: "/dev/xvdb",
		AZ: "us-east-1b", Type: "gp3", State: "in-use",
	}, cloud.Volume{ID: vol.ID, SizeGiB: vol.SizeGiB, InstanceID: vol.InstanceID, Device: vol.Device, AZ: vol.AZ, Type: vol.Type, State: vol.State})
	assert.Equal(t, "attached", vol.AttachState)
	assert.Equal(t, cloud.RoleKafkaData, vol.Role)
	assert.Equal(t, broker.ID, vol.BrokerID)

	_, _, err = e.VolumeModification(ctx, vol.ID)
	require.ErrorIs(t, err, cloud.ErrNoModification)

	require.NoError(t, e.ModifyVolume(ctx, vol.ID, 150))
	var seen []cloud.ModificationState
	for {
		state, progress, err := e.VolumeModification(ctx, vol.ID)
		require.NoError(t, err)
		assert.True(t, progress >= 0 && progress <= 100, "progress %d", progress)
		if len(seen) == 0 || seen[len(seen)-1] != state {
			seen = append(seen, state)
		}
		if state == cloud.ModificationCompleted {
			assert.Equal(t, int64(100), progress)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("modification of %s: %v (states seen %v)", vol.ID, ctx.Err(), seen)
		case <-time.After(20 * time.Millisecond):
		}
	}
	assert.Equal(t, []cloud.ModificationState{cloud.ModificationModifying, cloud.ModificationOptimizing, cloud.ModificationCompleted}, seen)

	res, err := cloud.NewSSM(cfg, endpoint).RunDocument(ctx, broker.InstanceID, cloud.DocGrowFilesystem,
		map[string]string{cloud.ParamTargetSizeGiB: "150"}, "expand/test", func() {})
	require.NoError(t, err)
	assert.Contains(t, res.Stdout, "from 100 GiB to 150 GiB")
	fleetVol, err = f.Volume("local-a", broker.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(150)<<30, fleetVol.FilesystemBytes)

	tests := []struct {
		name     string
		call     func() error
		sentinel error
		code     string // AWS's error code, still in the chain
	}{
		{"second modification within 6 hours", func() error { return e.ModifyVolume(ctx, vol.ID, 200) },
			cloud.ErrModificationRateExceeded, "VolumeModificationRateExceeded"},
		{"shrink", func() error { return e.ModifyVolume(ctx, vol.ID, 120) }, cloud.ErrSizeNotLarger, "InvalidParameterValue"},
		{"same size", func() error { return e.ModifyVolume(ctx, vol.ID, 150) }, cloud.ErrSizeNotLarger, "InvalidParameterValue"},
		{"unknown volume", func() error { return e.ModifyVolume(ctx, "vol-00000000000000000", 200) }, cloud.ErrVolumeNotFound, "InvalidVolume.NotFound"},
		{"unknown instance", func() error { _, err := e.DescribeInstance(ctx, "i-00000000000000000"); return err },
			cloud.ErrInstanceNotFound, "InvalidInstanceID.NotFound"},
		{"no data volume", func() error { _, err := e.DescribeVolumeOf(ctx, "i-00000000000000000"); return err },
			cloud.ErrVolumeNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			require.ErrorIs(t, err, tt.sentinel)
			if tt.code == "" {
				return
			}
			var apiErr smithy.APIError
			require.True(t, errors.As(err, &apiErr), "API error in %v", err)
			assert.Equal(t, tt.code, apiErr.ErrorCode())
		})
	}

	// Errors name what they concern.
	err = e.ModifyVolume(ctx, vol.ID, 200)
	assert.ErrorContains(t, err, vol.ID)
	assert.ErrorContains(t, err, strconv.Itoa(200)+" GiB")
}
