package devstack

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// A fleet cluster with controllers becomes a KRaft spec (controllers with
// their hosts, their listeners as the quorum bootstrap, no ZooKeeper) that
// fleet's Validate accepts; one without stays a ZooKeeper spec.
func TestSpecsFromFleetKRaftAndZooKeeper(t *testing.T) {
	brokers := []localfleet.BrokerEndpoint{
		{ID: 1, InstanceID: "i-1", Address: "127.0.0.1:9001"}, {ID: 2, InstanceID: "i-2", Address: "127.0.0.1:9002"},
		{ID: 3, InstanceID: "i-3", Address: "127.0.0.1:9003"},
	}
	ep := localfleet.Endpoints{Clusters: map[string]localfleet.ClusterEndpoints{
		"local-k": {Bootstrap: []string{"127.0.0.1:9001"}, Brokers: brokers, Controllers: []localfleet.ControllerEndpoint{
			{ID: 3000, InstanceID: "i-c0", Address: "127.0.0.1:9100"}, {ID: 3001, InstanceID: "i-c1", Address: "127.0.0.1:9101"},
			{ID: 3002, InstanceID: "i-c2", Address: "127.0.0.1:9102"},
		}},
		"local-a": {Bootstrap: []string{"127.0.0.1:9001"}, Brokers: brokers, ZooKeeper: "127.0.0.1:2181/kfleet/local-a"},
	}}
	specs := SpecsFromFleet(ep)

	k := specs["local-k"]
	require.NoError(t, k.Validate())
	assert.Equal(t, fleet.ModeKRaft, k.Mode())
	assert.Empty(t, k.ZooKeeper)
	assert.Equal(t, &fleet.KRaftSpec{
		Mode: fleet.ModeKRaft,
		Controllers: []fleet.ControllerSpec{
			{ID: 3000, InstanceID: "i-c0"}, {ID: 3001, InstanceID: "i-c1"}, {ID: 3002, InstanceID: "i-c2"},
		},
		QuorumBootstrap: []string{"127.0.0.1:9100", "127.0.0.1:9101", "127.0.0.1:9102"},
	}, k.KRaft)
	assert.Equal(t, []int32{1, 2, 3}, k.BrokerIDs())

	z := specs["local-a"]
	require.NoError(t, z.Validate())
	assert.Equal(t, fleet.ModeZooKeeper, z.Mode())
	assert.Nil(t, z.KRaft)
}
