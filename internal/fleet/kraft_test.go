package fleet_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/fleet"
)

func controllers3() []fleet.ControllerSpec {
	return []fleet.ControllerSpec{{ID: 3000, InstanceID: "i-c0"}, {ID: 3001, InstanceID: "i-c1"}, {ID: 3002, InstanceID: "i-c2"}}
}

func kraftSpec() fleet.ClusterSpec {
	s := spec3()
	s.ZooKeeper = ""
	s.KRaft = &fleet.KRaftSpec{Controllers: controllers3(), QuorumBootstrap: []string{"c0:9093", "c1:9093", "c2:9093"}, MetadataVersion: "3.9-IV0"}
	return s
}

func TestClusterSpecMode(t *testing.T) {
	zk := spec3()
	assert.Equal(t, fleet.ModeZooKeeper, zk.Mode(), "no KRaft spec: ZooKeeper")
	assert.Equal(t, fleet.ModeKRaft, kraftSpec().Mode(), "a KRaft spec without a mode: KRaft")
	m := spec3()
	m.KRaft = &fleet.KRaftSpec{Mode: fleet.ModeMigrating, Phase: fleet.PhaseDualWrite}
	assert.Equal(t, fleet.ModeMigrating, m.Mode())
	assert.Equal(t, []int32{3000, 3001, 3002}, kraftSpec().ControllerIDs())
	assert.Nil(t, zk.ControllerIDs())
	assert.True(t, kraftSpec().InSpec(3001))
	assert.True(t, kraftSpec().InSpec(2))
	assert.False(t, kraftSpec().InSpec(4))
}

func TestClusterSpecJSONBackwardCompatible(t *testing.T) {
	// A spec stored before KRaft support: no kraft field.
	old := `{"id":"c1","bootstrap":["b:9092"],"zookeeper":"z:2181/c1","brokers":[{"id":1,"instanceId":"i-1"}]}`
	var s fleet.ClusterSpec
	require.NoError(t, json.Unmarshal([]byte(old), &s))
	assert.Nil(t, s.KRaft)
	assert.Equal(t, fleet.ModeZooKeeper, s.Mode())
	require.NoError(t, s.Validate())
	out, err := json.Marshal(s)
	require.NoError(t, err)
	assert.NotContains(t, string(out), "kraft", "a ZooKeeper spec writes no kraft field")

	k := kraftSpec()
	out, err = json.Marshal(k)
	require.NoError(t, err)
	var back fleet.ClusterSpec
	require.NoError(t, json.Unmarshal(out, &back))
	assert.Equal(t, k, back)
}

func TestClusterSpecValidateKRaft(t *testing.T) {
	cases := []struct {
		name string
		edit func(s *fleet.ClusterSpec)
		want []string // nil: valid
	}{
		{"kraft", func(*fleet.ClusterSpec) {}, nil},
		{"five controllers", func(s *fleet.ClusterSpec) {
			s.KRaft.Controllers = append(s.KRaft.Controllers, fleet.ControllerSpec{ID: 3003, InstanceID: "i"}, fleet.ControllerSpec{ID: 3004, InstanceID: "i"})
		}, nil},
		{"kraft with zookeeper", func(s *fleet.ClusterSpec) { s.ZooKeeper = "z:2181" }, []string{"a KRaft cluster has no ZooKeeper"}},
		{"four controllers", func(s *fleet.ClusterSpec) {
			s.KRaft.Controllers = append(s.KRaft.Controllers, fleet.ControllerSpec{ID: 3003, InstanceID: "i"})
		}, []string{"want 3 or 5 controllers, got 4"}},
		{"no controllers", func(s *fleet.ClusterSpec) { s.KRaft.Controllers = nil }, []string{"want 3 or 5 controllers, got 0"}},
		{"duplicate and clashing ids", func(s *fleet.ClusterSpec) {
			s.KRaft.Controllers = []fleet.ControllerSpec{{ID: 2, InstanceID: "i"}, {ID: 3001, InstanceID: "i"}, {ID: 3001}}
		}, []string{"controller 2: id is also a broker's", "controller 3001: listed twice", "controller 3001: instanceId is required"}},
		{"bad bootstrap", func(s *fleet.ClusterSpec) { s.KRaft.QuorumBootstrap = []string{"c0"} }, []string{`kraft.quorumBootstrap "c0": want host:port`}},
		{"no bootstrap", func(s *fleet.ClusterSpec) { s.KRaft.QuorumBootstrap = nil }, []string{"at least one controller address"}},
		{"unknown metadata.version", func(s *fleet.ClusterSpec) { s.KRaft.MetadataVersion = "3.9-IV7" }, []string{"kraft.metadataVersion"}},
		{"phase outside a migration", func(s *fleet.ClusterSpec) { s.KRaft.Phase = fleet.PhaseDualWrite }, []string{"only a migrating cluster has a migration phase"}},
		{"unknown mode", func(s *fleet.ClusterSpec) { s.KRaft.Mode = "hybrid" }, []string{`kraft.mode "hybrid"`}},
		{"zookeeper with controllers", func(s *fleet.ClusterSpec) {
			s.ZooKeeper, s.KRaft.Mode = "z:2181", fleet.ModeZooKeeper
		}, []string{"carries controllers only while migrating"}},
		{"zookeeper mode, empty kraft", func(s *fleet.ClusterSpec) {
			s.ZooKeeper, s.KRaft = "z:2181", &fleet.KRaftSpec{Mode: fleet.ModeZooKeeper}
		}, nil},
		{"migrating, phase 0 without controllers", func(s *fleet.ClusterSpec) {
			s.ZooKeeper, s.KRaft = "z:2181", &fleet.KRaftSpec{Mode: fleet.ModeMigrating}
		}, nil},
		{"migrating, phase 2 with controllers", func(s *fleet.ClusterSpec) {
			s.ZooKeeper, s.KRaft.Mode, s.KRaft.Phase = "z:2181", fleet.ModeMigrating, fleet.PhaseDualWrite
		}, nil},
		{"migrating, phase 1 without controllers", func(s *fleet.ClusterSpec) {
			s.ZooKeeper, s.KRaft = "z:2181", &fleet.KRaftSpec{Mode: fleet.ModeMigrating, Phase: fleet.PhaseControllers}
		}, []string{"want 3 or 5 controllers, got 0"}},
		{"migrating without zookeeper", func(s *fleet.ClusterSpec) {
			s.KRaft.Mode = fleet.ModeMigrating
		}, []string{"zookeeper: connect string is required for a migrating cluster"}},
		{"migrating, phase 5", func(s *fleet.ClusterSpec) {
			s.ZooKeeper, s.KRaft.Mode, s.KRaft.Phase = "z:2181", fleet.ModeMigrating, 5
		}, []string{"kraft.phase 5: want 0 to 4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := kraftSpec()
			c.edit(&s)
			err := s.Validate()
			if c.want == nil {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range c.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
