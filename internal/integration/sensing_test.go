package integration_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/workerapp"
)

// TestIntegrationWatchesNeverTakeTheSlotsOperationsNeed: six clusters, each
// entity holding a broker watch for as long as it lives, on a worker with
// two activity slots for operations. The watches hold slots of the sensing
// worker (task queue kfleet-sensing), so a roll still starts at once and
// completes; were they in the operations' pool, the roll would wait
// behind them forever.
func TestIntegrationWatchesNeverTakeTheSlotsOperationsNeed(t *testing.T) {
	var clusters []localfleet.ClusterConfig
	for i := 1; i <= 6; i++ {
		clusters = append(clusters, localfleet.ClusterConfig{ID: fmt.Sprintf("c%d", i), Brokers: 3})
	}
	stack := startStackWith(t, fastFleet(clusters...), func(o *devstack.StackOptions) {
		o.Slots = workerapp.Slots{Activities: 2}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, c := range clusters {
		watching(ctx, t, stack, c.ID, 3)
	}

	began := time.Now()
	op, err := entity.Request(ctx, stack.Client, "c6", restartReq("integration-test"))
	require.NoError(t, err)
	res, err := entity.FollowOperation(ctx, stack.Client, "c6", op.ID, 100*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err, "the roll runs with six watches held and two operation slots")
	require.Len(t, res.Brokers, 3)
	t.Logf("roll of c6 with 6 watches held and 2 operation slots: %s", time.Since(began).Round(10*time.Millisecond))
	stops, _ := stopsAndStarts(stack.Fleet.Audit("c6"))
	assert.Equal(t, map[int32]int{1: 1, 2: 1, 3: 1}, stops)
	assert.Empty(t, stack.Fleet.Violations("c6"))
	for _, c := range clusters {
		st, err := entity.ClusterStatus(ctx, stack.Client, c.ID)
		require.NoError(t, err)
		require.NotNil(t, st.Watch, c.ID)
		assert.Empty(t, st.Watch.Error, "%s: its watch still runs", c.ID)
	}
}
