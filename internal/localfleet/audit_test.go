package localfleet_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/localfleet"
)

// Restarting brokers one at a time, each back in sync before the next, is
// safe; taking a second broker down while one is away is recorded.
func TestIntegrationViolations(t *testing.T) {
	tests := []struct {
		name    string
		restart func(t *testing.T, f *localfleet.Fleet)
		want    []localfleet.ViolationKind
	}{
		{
			name: "one at a time",
			restart: func(t *testing.T, f *localfleet.Fleet) {
				ctx := testContext(t)
				for _, b := range []int32{1, 2, 3} {
					require.NoError(t, f.StopBroker(ctx, "local-a", b, "careful"))
					require.NoError(t, f.StartBroker(ctx, "local-a", b, "careful"))
					waitInSync(t, f, "local-a", b, 1)
				}
			},
		},
		{
			name: "next broker before catch-up",
			restart: func(t *testing.T, f *localfleet.Fleet) {
				ctx := testContext(t)
				require.NoError(t, f.StopBroker(ctx, "local-a", 1, "hasty"))
				require.NoError(t, f.StartBroker(ctx, "local-a", 1, "hasty"))
				// Broker 1 runs but has not caught up: partitions it and
				// broker 2 share drop to one in-sync replica.
				require.NoError(t, f.StopBroker(ctx, "local-a", 2, "hasty"))
			},
			want: []localfleet.ViolationKind{localfleet.ViolationUnderMinISR},
		},
		{
			name: "two brokers down",
			restart: func(t *testing.T, f *localfleet.Fleet) {
				ctx := testContext(t)
				var wg sync.WaitGroup
				for _, b := range []int32{1, 2} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						assert.NoError(t, f.StopBroker(ctx, "local-a", b, "reckless"))
					}()
				}
				wg.Wait()
			},
			want: []localfleet.ViolationKind{localfleet.ViolationTwoBrokersDown, localfleet.ViolationUnderMinISR},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")}})
			tt.restart(t, f)
			kinds := map[localfleet.ViolationKind]bool{}
			for _, v := range f.Violations("local-a") {
				assert.Equal(t, "local-a", v.Cluster)
				assert.NotEmpty(t, v.Detail)
				kinds[v.Kind] = true
			}
			want := map[localfleet.ViolationKind]bool{}
			for _, k := range tt.want {
				want[k] = true
			}
			assert.Equal(t, want, kinds, "violations: %+v", f.Violations("local-a"))
		})
	}
}

func TestIntegrationUnknownClusterAndBroker(t *testing.T) {
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")}})
	ctx := testContext(t)

	err := f.StopBroker(ctx, "x", 1, "test")
	require.ErrorIs(t, err, localfleet.ErrUnknownCluster)
	assert.EqualError(t, err, `localfleet: cluster "x": unknown cluster`)

	err = f.StartBroker(ctx, "local-a", 4, "test")
	require.ErrorIs(t, err, localfleet.ErrUnknownBroker)
	assert.EqualError(t, err, `localfleet: cluster "local-a": broker 4: unknown broker`)

	_, err = f.BrokerState("local-a", 0)
	require.ErrorIs(t, err, localfleet.ErrUnknownBroker)
	_, err = f.Controller("nope")
	require.ErrorIs(t, err, localfleet.ErrUnknownCluster)
	assert.Nil(t, f.Audit("nope"))
}
