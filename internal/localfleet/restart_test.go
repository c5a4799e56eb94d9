package localfleet_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/internal/localfleet"
)

// Records survive a fleet restart on the same DataDir, and the restarted
// fleet registers cleanly in the same ZooKeeper.
func TestIntegrationFleetRestartKeepsData(t *testing.T) {
	z := startZooKeeper(t)
	ctx := testContext(t)
	opts := localfleet.Options{ZooKeeper: z.Addr, DataDir: t.TempDir(), Logger: testLogger(t)}
	cfg := localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")}}

	f, err := localfleet.Start(ctx, cfg, opts)
	require.NoError(t, err)
	producer, err := kgo.NewClient(kgo.SeedBrokers(f.Endpoints().Clusters["local-a"].Bootstrap...))
	require.NoError(t, err)
	require.NoError(t, producer.ProduceSync(ctx, &kgo.Record{Topic: "events", Value: []byte("kept")}).FirstErr())
	producer.Close()
	require.NoError(t, f.Close())

	f, err = localfleet.Start(ctx, cfg, opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, f.Close()) })
	consumer, _ := kafkaClient(t, f, "local-a", kgo.ConsumeTopics("events"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	assert.Equal(t, "kept", string(pollOne(t, consumer).Value))
	controller, err := f.Controller("local-a")
	require.NoError(t, err)
	assert.Equal(t, int32(1), controller)
}
