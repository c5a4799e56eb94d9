package fleet_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/fleet"
)

func kraftPlan(version string, k fleet.KRaftPlan) fleet.ClusterPlan {
	return fleet.ClusterPlan{ID: "orders", Brokers: 3, AvailabilityZones: []string{"us-east-1a", "us-east-1b", "us-east-1c"},
		KafkaVersion: version, KRaft: &k}
}

func TestKRaftPlanValidate(t *testing.T) {
	cases := []struct {
		name string
		plan fleet.ClusterPlan
		want []string // substrings of the refusal; none: valid
	}{
		{"defaults on 4.0", kraftPlan("4.0.0", fleet.KRaftPlan{}), nil},
		{"five controllers on 3.9 at 3.9-IV0", kraftPlan("3.9.1", fleet.KRaftPlan{Controllers: 5, MetadataVersion: "3.9-IV0"}), nil},
		{"a release's name for its latest level", kraftPlan("4.1.0", fleet.KRaftPlan{MetadataVersion: "4.0"}), nil},
		{"even quorum", kraftPlan("4.0.0", fleet.KRaftPlan{Controllers: 4}), []string{"kraft.controllers 4: want 3 or 5"}},
		{"one controller", kraftPlan("4.0.0", fleet.KRaftPlan{Controllers: 1}), []string{"want 3 or 5"}},
		{"unknown level", kraftPlan("4.0.0", fleet.KRaftPlan{MetadataVersion: "4.9-IV0"}), []string{"kraft.metadataVersion", "unknown"}},
		{"level newer than the release", kraftPlan("3.9.0", fleet.KRaftPlan{MetadataVersion: "4.0-IV1"}), []string{"Kafka 3.9.0 does not support it"}},
		{"level older than KRaft provisioning", kraftPlan("4.0.0", fleet.KRaftPlan{MetadataVersion: "3.7-IV4"}), []string{"starts at 3.9-IV0 or later"}},
		{"release older than 3.9", kraftPlan("3.7.1", fleet.KRaftPlan{}), []string{"a new KRaft cluster runs 3.9 or later"}},
		{"bad controller type", kraftPlan("4.0.0", fleet.KRaftPlan{InstanceType: "big"}), []string{"kraft.instanceType"}},
		{"Kafka 4 without kraft", fleet.ClusterPlan{ID: "orders", Brokers: 3, AvailabilityZones: []string{"us-east-1a"}, KafkaVersion: "4.0.0"},
			[]string{"no ZooKeeper mode", "kraft: {controllers: 3}"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.plan.Validate()
			if len(c.want) == 0 {
				assert.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, fleet.ErrRefused)
			for _, w := range c.want {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

func TestKRaftPlanDefaultsAndShape(t *testing.T) {
	p := kraftPlan("4.0.0", fleet.KRaftPlan{}).WithDefaults()
	assert.Equal(t, 3, p.KRaft.Controllers)
	assert.Equal(t, "4.0-IV3", p.KRaft.MetadataVersion, "the latest level the release supports")
	assert.Equal(t, "t3.medium", p.KRaft.InstanceType)
	assert.Equal(t, []int32{3000, 3001, 3002}, p.ControllerIDs())
	five := kraftPlan("4.0.0", fleet.KRaftPlan{Controllers: 5})
	var zones []string
	for _, id := range five.WithDefaults().ControllerIDs() {
		zones = append(zones, five.ControllerZone(id))
	}
	assert.Equal(t, []string{"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1a", "us-east-1b"}, zones)

	zk := fleet.ClusterPlan{ID: "orders", Brokers: 3, AvailabilityZones: []string{"us-east-1a"}, KafkaVersion: "3.7.1"}
	assert.Equal(t, "b355e2fcf5a9", zk.Fingerprint(), "a ZooKeeper plan's fingerprint is what it was before KRaft plans")
	assert.NotEqual(t, kraftPlan("4.0.0", fleet.KRaftPlan{}).Fingerprint(), kraftPlan("4.0.0", fleet.KRaftPlan{Controllers: 5}).Fingerprint())
	assert.Nil(t, zk.ControllerIDs())
}

func TestKafkaClusterIDAndVoters(t *testing.T) {
	a, b := fleet.KafkaClusterID("orders/run-1"), fleet.KafkaClusterID("orders/run-2")
	assert.Len(t, a, 22)
	assert.Equal(t, a, fleet.KafkaClusterID("orders/run-1"), "the same seed, the same id")
	assert.NotEqual(t, a, b)
	v, err := fleet.QuorumVoters([]int32{3000, 3001}, map[int32]string{3000: "10.0.0.1:9093", 3001: "10.0.0.2:9093"})
	require.NoError(t, err)
	assert.Equal(t, "3000@10.0.0.1:9093,3001@10.0.0.2:9093", v)
	_, err = fleet.QuorumVoters([]int32{3000, 3001}, map[int32]string{3000: "10.0.0.1:9093"})
	assert.ErrorContains(t, err, "controller 3001: no address")
}
