package fleet_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/fleet"
)

func TestMigrationPhases(t *testing.T) {
	cases := []struct {
		phase    fleet.MigrationPhase
		name     string
		rollback bool
		undo     string
	}{
		{fleet.PhasePreflight, "0-preflight", true, "nothing to undo"},
		{fleet.PhaseControllers, "1-controllers", true, "remove the controllers"},
		{fleet.PhaseDualWrite, "2-dual-write", true, "delete /controller and /migration"},
		{fleet.PhaseBrokersKRaft, "3-brokers-kraft", true, "ZooKeeper's controller epoch is above KRaft's"},
		{fleet.PhaseFinalize, "4-finalize", false, "cannot be undone"},
		{5, "phase-5", false, "unknown phase"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.name, c.phase.String())
			assert.Equal(t, c.rollback, c.phase.CanRollBack())
			assert.Contains(t, c.phase.Rollback(), c.undo)
		})
	}
}

func TestCheckPreflight(t *testing.T) {
	v := func(s string) fleet.KafkaVersion {
		k, err := fleet.ParseKafkaVersion(s)
		require.NoError(t, err)
		return k
	}
	ready := func() fleet.PreflightFacts {
		return fleet.PreflightFacts{
			Versions:  map[int32]fleet.KafkaVersion{1: v("3.9.0"), 2: v("3.9.1"), 3: v("3.9.0")},
			Protocols: map[int32]string{1: "3.9", 2: "3.9-IV0", 3: "3.9"},
			ClusterID: "MkU3OEVBNTcwNTJENDM2Qg",
		}
	}
	cases := []struct {
		name string
		edit func(f *fleet.PreflightFacts)
		want []string
	}{
		{"ready", func(*fleet.PreflightFacts) {}, nil},
		{"an old broker", func(f *fleet.PreflightFacts) { f.Versions[2] = v("3.8.1") },
			[]string{"every broker must run Kafka 3.9.x before migrating (upgrade first): broker 2 runs 3.8.1"}},
		{"a version unknown", func(f *fleet.PreflightFacts) { delete(f.Versions, 3) },
			[]string{"Kafka version unknown on brokers 3"}},
		{"protocol pinned low", func(f *fleet.PreflightFacts) { f.Protocols[1], f.Protocols[3] = "3.8", "" },
			[]string{"inter.broker.protocol.version must be 3.9 on every broker (finish the upgrade's protocol bump): broker 1 is at 3.8, broker 3 is at unknown"}},
		{"everything wrong", func(f *fleet.PreflightFacts) {
			f.Versions[1], f.Protocols[1], f.ClusterID = v("3.7.0"), "3.7", ""
			f.MetadataVersionChangePending, f.LeftoverMigrationZnode = true, true
		}, []string{"broker 1 runs 3.7.0", "broker 1 is at 3.7", "metadata.version change is pending", "cluster id unknown", "/migration exists"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := ready()
			c.edit(&f)
			got := fleet.CheckPreflight([]int32{3, 1, 2}, f)
			require.Len(t, got, len(c.want), "%v", got)
			for i, w := range c.want {
				assert.Equal(t, fleet.GatePreflight, got[i].Gate)
				assert.Contains(t, got[i].Reason, w)
			}
		})
	}
}

func TestAllowedInPhase(t *testing.T) {
	allowed := map[fleet.OpImpact][]bool{ // by phase 0-4
		fleet.ImpactAdmin:           {true, true, true, true, true},
		fleet.ImpactBrokerRoll:      {true, true, true, true, true},
		fleet.ImpactRecovery:        {true, true, true, true, true},
		fleet.ImpactControllerRoll:  {false, true, true, true, true},
		fleet.ImpactBinaryUpgrade:   {false, false, false, false, false},
		fleet.ImpactProtocolChange:  {false, false, false, false, false},
		fleet.ImpactMetadataVersion: {false, false, false, false, false},
		fleet.ImpactMembership:      {false, false, false, false, false},
		fleet.ImpactDelete:          {false, false, false, false, false},
	}
	for impact, byPhase := range allowed {
		for p, want := range byPhase {
			ok, reason := fleet.AllowedInPhase(impact, fleet.MigrationPhase(p))
			assert.Equal(t, want, ok, "impact %d phase %d: %s", impact, p, reason)
			if ok {
				assert.Empty(t, reason)
			} else {
				assert.Contains(t, reason, fleet.MigrationPhase(p).String(), "a refusal names the phase")
			}
		}
	}
	ok, reason := fleet.AllowedInPhase(fleet.ImpactMetadataVersion, fleet.PhaseDualWrite)
	assert.False(t, ok)
	assert.Equal(t, "migration phase 2-dual-write: metadata.version must not change during a migration; finalize it first", reason)
	ok, reason = fleet.AllowedInPhase(99, fleet.PhaseDualWrite)
	assert.False(t, ok)
	assert.Contains(t, reason, "unknown operation impact 99")
}
