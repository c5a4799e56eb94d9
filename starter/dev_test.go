package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// make run's fixed ports: every broker in order from the base, then the
// KRaft controllers, so adding a KRaft cluster moves no broker's port; a
// cluster that names its ports keeps them.
func TestAssignBrokerPortsBrokersThenControllers(t *testing.T) {
	cfg := localfleet.Config{Clusters: []localfleet.ClusterConfig{
		{ID: "local-a", Brokers: 3},
		devstack.KRaftCluster(),
		{ID: "named", Brokers: 1, BrokerPorts: []int{25000}},
		{ID: "local-b", Brokers: 2},
	}}
	assignBrokerPorts(&cfg, 19092)
	assert.Equal(t, []int{19092, 19093, 19094}, cfg.Clusters[0].BrokerPorts)
	assert.Equal(t, []int{19095, 19096, 19097}, cfg.Clusters[1].BrokerPorts)
	assert.Equal(t, []int{25000}, cfg.Clusters[2].BrokerPorts)
	assert.Equal(t, []int{19098, 19099}, cfg.Clusters[3].BrokerPorts)
	assert.Equal(t, []int{19100, 19101, 19102}, cfg.Clusters[1].KRaft.ControllerPorts)
}

// A KRaft roll's answer lists its controllers first, the active one
// marked, then the brokers, none called the controller.
func TestPrintBrokersOfAKRaftRoll(t *testing.T) {
	var b strings.Builder
	printBrokers(&b, "  ", workflows.RollingRestartResult{
		Controllers: []workflows.ControllerRestart{{Controller: 3001, Total: time.Second}, {Controller: 3000, WasActive: true, Total: 2 * time.Second}},
		Brokers:     []workflows.BrokerRestart{{Broker: 1, WasController: true, Total: 3 * time.Second}},
	})
	assert.Equal(t, "  KRaft controller 3001: 1s (quorum gate 0s, stop 0s, start 0s, caught up 0s)\n"+
		"  KRaft controller 3000 (active): 2s (quorum gate 0s, stop 0s, start 0s, caught up 0s)\n"+
		"  broker 1: 3s (gates 0s, stop 0s, start 0s, register 0s, ISR 0s, election 0s)\n", b.String())
}
