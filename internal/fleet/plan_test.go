package fleet_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/fleet"
)

func goodPlan() fleet.ClusterPlan {
	return fleet.ClusterPlan{ID: "orders", Brokers: 3, AvailabilityZones: []string{"us-east-1a", "us-east-1b", "us-east-1c"}, KafkaVersion: "3.7.1"}
}

// Bad input starts nothing: every refusal names what is wrong, all at once.
func TestClusterPlanValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(p *fleet.ClusterPlan)
		wants []string
	}{
		{"good", func(*fleet.ClusterPlan) {}, nil},
		{"fewer brokers than the replication factor", func(p *fleet.ClusterPlan) { p.Brokers = 2 },
			[]string{"brokers 2: fewer than the default replication factor 3"}},
		{"too many brokers", func(p *fleet.ClusterPlan) { p.Brokers = 65 }, []string{"brokers 65: at most 64"}},
		{"volume under the plan's minimum", func(p *fleet.ClusterPlan) { p.VolumeGiB = 50 },
			[]string{"volumeGiB 50: under plan standard's minimum of 100 GiB"}},
		{"memory plan minimum", func(p *fleet.ClusterPlan) { p.Plan, p.VolumeGiB = "memory", 200 },
			[]string{"volumeGiB 200: under plan memory's minimum of 500 GiB"}},
		{"unknown plan", func(p *fleet.ClusterPlan) { p.Plan = "gold" }, []string{`plan "gold": unknown (known: standard, memory)`}},
		{"no zone", func(p *fleet.ClusterPlan) { p.AvailabilityZones = nil }, []string{"availabilityZones: at least one zone"}},
		{"malformed and repeated zones", func(p *fleet.ClusterPlan) { p.AvailabilityZones = []string{"us-east-1a", "moon", "us-east-1a"} },
			[]string{`"moon" is not a zone name`, `"us-east-1a" listed twice`}},
		{"malformed instance type", func(p *fleet.ClusterPlan) { p.InstanceType = "huge" }, []string{`instanceType "huge": not an instance type`}},
		{"Kafka 4 has no ZooKeeper", func(p *fleet.ClusterPlan) { p.KafkaVersion = "4.0.0" }, []string{"Kafka 4 and later have no ZooKeeper mode"}},
		{"no version", func(p *fleet.ClusterPlan) { p.KafkaVersion = "" }, []string{"kafkaVersion"}},
		{"bad id", func(p *fleet.ClusterPlan) { p.ID = "Orders!" }, []string{`cluster id "Orders!"`}},
		{"id too long for a host", func(p *fleet.ClusterPlan) { p.ID = "a123456789b123456789c123456789d123456789e123456789" },
			[]string{"at most 48 characters"}},
		{"several at once", func(p *fleet.ClusterPlan) { p.Brokers, p.VolumeGiB = 1, 10 },
			[]string{"brokers 1", "volumeGiB 10"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := goodPlan()
			tc.edit(&p)
			err := p.Validate()
			if tc.wants == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, fleet.ErrRefused)
			for _, w := range tc.wants {
				assert.ErrorContains(t, err, w)
			}
		})
	}
}

func TestClusterPlanPlacement(t *testing.T) {
	p := goodPlan()
	p.Brokers = 7
	var zones []string
	for _, id := range p.BrokerIDs() {
		zones = append(zones, p.BrokerZone(id))
	}
	assert.Equal(t, []string{"us-east-1a", "us-east-1b", "us-east-1c", "us-east-1a", "us-east-1b", "us-east-1c", "us-east-1a"}, zones, "round-robin from broker 1")
	assert.Equal(t, []string{"us-east-1a", "us-east-1b", "us-east-1c"}, []string{p.ZooKeeperZone(1), p.ZooKeeperZone(2), p.ZooKeeperZone(3)}, "one ZooKeeper node per zone")

	d := p.WithDefaults()
	assert.Equal(t, "standard", d.Plan)
	assert.Equal(t, "m5.xlarge", d.InstanceType)
	assert.Equal(t, int32(500), d.VolumeGiB)
	assert.Equal(t, "3.7", d.InterBrokerProtocol())
	assert.Equal(t, p.Fingerprint(), d.Fingerprint(), "defaults spelled out are the same plan")
	d.VolumeGiB = 600
	assert.NotEqual(t, p.Fingerprint(), d.Fingerprint())
}

func TestConfigMismatches(t *testing.T) {
	want := fleet.BrokerConfig(2, "us-east-1b", "zk:2181/kfleet/orders")
	got := map[string]string{}
	for k, v := range want {
		got[k] = v
	}
	assert.Empty(t, fleet.ConfigMismatches(want, got))
	got["broker.rack"] = "krack"
	delete(got, "auto.create.topics.enable")
	assert.Equal(t, []string{`auto.create.topics.enable missing (want "false")`, `broker.rack="krack" (want "us-east-1b")`},
		fleet.ConfigMismatches(want, got))
}
