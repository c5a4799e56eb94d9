package entity_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// The one rendering of a cluster's status, for the CLI and chat: what an
// operator needs at a glance is there, from the kinds' own descriptions.
func TestRenderStatus(t *testing.T) {
	at := time.Now().Add(-10 * time.Minute)
	roll := workflows.Operation{ID: "r-1", Kind: workflows.OpRollingRestart, RequestedBy: "alice", ApprovedBy: "bob",
		Params: json.RawMessage(`{"maxBatch":3}`), Status: workflows.StatusRunning, RequestedAt: at, StartedAt: at}
	upgrade := workflows.Operation{ID: "u-1", Kind: workflows.OpRollingUpgrade, RequestedBy: "carol", Status: workflows.StatusQueued, RequestedAt: at,
		Params: json.RawMessage(`{"version":"3.7.1","fromIbp":"3.6","targetIbp":"3.7"}`)}
	rep := entity.StatusReport{
		ClusterStatus: workflows.ClusterStatus{
			Spec: fleet.ClusterSpec{ID: "local-a", Bootstrap: []string{"b:9092"}, ZooKeeper: "z:2181/a",
				Brokers:  []fleet.BrokerSpec{{ID: 1}, {ID: 2}, {ID: 3}},
				Security: fleet.Security{SASL: fleet.SASL{Mechanism: fleet.SCRAMSHA512, CredentialsSecret: "kfleet/local-a/admin"}}},
			ClusterState: workflows.ClusterState{
				Running:  &roll,
				Queue:    []workflows.Operation{upgrade},
				Paused:   &workflows.PauseState{By: "dave", Reason: "change freeze", Since: at},
				Protocol: &workflows.ProtocolLevel{KafkaVersion: "3.6.2", InterBrokerProtocol: "3.6"},
				History: []workflows.Operation{{ID: "x-1", Kind: workflows.OpCleanerHealth, RequestedBy: "kfleet-health", Status: workflows.StatusSucceeded,
					FinishedAt: at, Outcome: "every cleaner healthy"}},
			},
		},
		Progress: map[string][]string{"r-1": {"1/3 brokers done, broker 2: waiting for ISR"}},
	}
	var b strings.Builder
	entity.RenderStatus(&b, rep, entity.RenderOptions{History: 5})
	out := b.String()
	for _, want := range []string{
		"cluster local-a: 3 brokers [1 2 3]",
		"Kafka 3.6.2, inter.broker.protocol.version 3.6",
		"security   SASL SCRAM-SHA-512 (credentials: secret kfleet/local-a/admin)",
		"PAUSED by dave",
		"running: rolling-restart r-1 requested by alice",
		"approved by bob, batches of up to 3",
		"  1/3 brokers done, broker 2: waiting for ISR",
		"queue:   1 waiting (held by the pause)",
		"rolling-upgrade u-1 requested by carol",
		"to Kafka 3.7.1 (protocol 3.6 -> 3.7)",
		"every cleaner healthy",
		"open losses: none",
		"health: no tick yet",
	} {
		assert.Contains(t, out, want)
	}
}

// A KRaft cluster's status names its controllers and their listeners,
// not an empty ZooKeeper string; a migrating one both, with its phase.
func TestRenderStatusOfKRaftClusters(t *testing.T) {
	controllers := []fleet.ControllerSpec{{ID: 3000, InstanceID: "i-c0"}, {ID: 3001, InstanceID: "i-c1"}, {ID: 3002, InstanceID: "i-c2"}}
	brokers := []fleet.BrokerSpec{{ID: 1}, {ID: 2}, {ID: 3}}
	for _, tt := range []struct {
		name string
		spec fleet.ClusterSpec
		want []string
	}{
		{"kraft", fleet.ClusterSpec{ID: "local-k", Bootstrap: []string{"b:9092"}, Brokers: brokers,
			KRaft: &fleet.KRaftSpec{Controllers: controllers, QuorumBootstrap: []string{"c0:9093", "c1:9093"}}},
			[]string{"kraft      controllers [3000 3001 3002] at c0:9093, c1:9093"}},
		{"migrating", fleet.ClusterSpec{ID: "local-a", Bootstrap: []string{"b:9092"}, ZooKeeper: "z:2181/a", Brokers: brokers,
			KRaft: &fleet.KRaftSpec{Mode: fleet.ModeMigrating, Phase: 2, Controllers: controllers}},
			[]string{"zookeeper  z:2181/a", "kraft      migrating, phase 2"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			entity.RenderStatus(&b, entity.StatusReport{ClusterStatus: workflows.ClusterStatus{Spec: tt.spec}}, entity.RenderOptions{})
			for _, want := range tt.want {
				assert.Contains(t, b.String(), want)
			}
			if tt.name == "kraft" {
				assert.NotContains(t, b.String(), "zookeeper")
			}
		})
	}
}
