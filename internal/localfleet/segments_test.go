package localfleet_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/localfleet"
)

// TestIntegrationTopicSegmentsExhaustMaps: a topic's replicas bring the
// segments of their full retention (segments.go). A topic rolling a
// segment a minute for six hours (361 segments a replica) takes the broker
// holding its replica past vm.max_map_count: it dies of Map failed, cannot
// start again while the topic is there, and starts once it is deleted. A
// topic with Kafka's defaults (2 segments a replica) changes nothing.
func TestIntegrationTopicSegmentsExhaustMaps(t *testing.T) {
	cc := testCluster("local-a")
	cc.SegmentsPerBroker = 1000
	cc.Topics = []localfleet.TopicConfig{}
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{cc}})
	ctx := testContext(t)
	for b := int32(1); b <= 3; b++ {
		// 1,350 segments' maps: room for 350 more than the base.
		_, err := f.SetLimit(ctx, "local-a", b, localfleet.LimitMaxMapCount, 2700, "ops")
		require.NoError(t, err)
	}
	_, adm := kafkaClient(t, f, "local-a")

	created, err := adm.CreateTopic(ctx, 3, 3, nil, "defaults")
	require.NoError(t, err)
	require.NoError(t, created.Err)
	six, minute := "21600000", "60000"
	created, err = adm.CreateTopic(ctx, 1, 1, map[string]*string{"retention.ms": &six, "segment.ms": &minute}, "rolling")
	require.NoError(t, err)
	require.NoError(t, created.Err)

	var dead int32
	require.Eventually(t, func() bool {
		for _, e := range f.Audit("local-a") {
			if e.Kind == localfleet.EventCrash && strings.Contains(e.Detail, "Map failed") {
				dead = e.Broker
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "a broker dies of Map failed")
	crashes := 0
	for _, e := range f.Audit("local-a") {
		if e.Kind == localfleet.EventCrash {
			crashes++
			assert.Contains(t, e.Detail, "1367 segments need 2734 maps, vm.max_map_count is 2700")
		}
	}
	assert.Equal(t, 1, crashes, "only the broker holding the rolling topic's replica")
	log, err := f.BrokerLog("local-a", dead, 20)
	require.NoError(t, err)
	assert.Contains(t, strings.Join(log, "\n"), "java.io.IOException: Map failed")

	err = f.StartBroker(ctx, "local-a", dead, "ops")
	require.ErrorIs(t, err, localfleet.ErrStartFailed)
	assert.ErrorContains(t, err, "Map failed")

	deleted, err := adm.DeleteTopic(ctx, "rolling")
	require.NoError(t, err)
	require.NoError(t, deleted.Err)
	require.NoError(t, f.StartBroker(ctx, "local-a", dead, "ops"))
	require.Eventually(t, func() bool {
		st, err := f.BrokerState("local-a", dead)
		return err == nil && st == localfleet.StateRunning
	}, 20*time.Second, 20*time.Millisecond)

	// Within the limit: nothing happens.
	created, err = adm.CreateTopic(ctx, 3, 3, nil, "more-defaults")
	require.NoError(t, err)
	require.NoError(t, created.Err)
	time.Sleep(200 * time.Millisecond)
	after := 0
	for _, e := range f.Audit("local-a") {
		if e.Kind == localfleet.EventCrash {
			after++
		}
	}
	assert.Equal(t, 1, after)
}
