package cloud_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
)

// LatestModification reports when the latest modification started and
// between which sizes: the start is where EBS's cool-down runs from.
func TestIntegrationEC2LatestModification(t *testing.T) {
	f, cfg := startFleet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e := cloud.NewEC2(cfg, f.Endpoints().AWS.Endpoint)
	broker := f.Endpoints().Clusters["local-a"].Brokers[0]
	vol, err := e.DescribeVolumeOf(ctx, broker.InstanceID)
	require.NoError(t, err)

	_, err = e.LatestModification(ctx, vol.ID)
	require.ErrorIs(t, err, cloud.ErrNoModification)

	before := time.Now()
	require.NoError(t, e.ModifyVolume(ctx, vol.ID, 120))
	m, err := e.LatestModification(ctx, vol.ID)
	require.NoError(t, err)
	assert.Equal(t, int32(100), m.OriginalSizeGiB)
	assert.Equal(t, int32(120), m.TargetSizeGiB)
	assert.Contains(t, []cloud.ModificationState{cloud.ModificationModifying, cloud.ModificationOptimizing}, m.State)
	assert.WithinDuration(t, before, m.Start, 2*time.Second)
	state, progress, err := e.VolumeModification(ctx, vol.ID)
	require.NoError(t, err)
	assert.Equal(t, m.State, state)
	assert.GreaterOrEqual(t, progress, m.Progress)
}
