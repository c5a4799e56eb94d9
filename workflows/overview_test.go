package workflows_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

func TestOverviewJudgesEachBroker(t *testing.T) {
	spec := fleet.ClusterSpec{ID: "c1", Brokers: []fleet.BrokerSpec{{ID: 1}, {ID: 2}, {ID: 3}}}
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	healthy := func(id int32) workflows.BrokerHealthState {
		return workflows.BrokerHealthState{Broker: id, Last: fleet.BrokerHealth{Broker: id,
			Disk: fleet.DiskUsage{SizeBytes: 1000, UsedBytes: 415},
			Heap: fleet.HeapUsage{Used: 3, Max: 4}, Cleaner: fleet.CleanerHealth{DeadThreads: 1}}}
	}
	tests := []struct {
		name string
		st   workflows.ClusterState
		want string // broker 2's state
	}{
		{"registered and readable", workflows.ClusterState{}, workflows.BrokerUp},
		{"taken down by a roll", workflows.ClusterState{Touching: []workflows.BrokerTouch{{Broker: 2}},
			Losses: []workflows.BrokerLoss{{Broker: 2}}}, workflows.BrokerRestarting},
		{"lost, in its grace", workflows.ClusterState{Losses: []workflows.BrokerLoss{{Broker: 2, At: at}}}, workflows.BrokerLost},
		{"lost, recovery queued", workflows.ClusterState{Losses: []workflows.BrokerLoss{{Broker: 2, Recovery: "r-1"}}}, workflows.BrokerRecovering},
		{"a loss recovered is history", workflows.ClusterState{Losses: []workflows.BrokerLoss{{Broker: 2, Recovery: "r-1", Recovered: true}}}, workflows.BrokerUp},
		{"missing from the watch", workflows.ClusterState{Watch: &workflows.WatchState{Missing: []int32{2}}}, workflows.BrokerMissing},
		{"metrics unreadable", workflows.ClusterState{Health: &workflows.HealthState{Brokers: []workflows.BrokerHealthState{
			{Broker: 2, Last: fleet.BrokerHealth{Broker: 2, Error: "connection refused"}}}}}, workflows.BrokerUnreadable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := workflows.OverviewOf(spec, tt.st)
			if len(o.Brokers) != 3 {
				t.Fatalf("brokers %v, want 3", o.Brokers)
			}
			if got := o.Brokers[1]; got.ID != 2 || got.State != tt.want {
				t.Errorf("broker 2 = %+v, want state %q", got, tt.want)
			}
			for _, b := range []workflows.BrokerOverview{o.Brokers[0], o.Brokers[2]} {
				if b.State != workflows.BrokerUp {
					t.Errorf("broker %d = %q, want up (only broker 2 is concerned)", b.ID, b.State)
				}
			}
		})
	}

	st := workflows.ClusterState{Health: &workflows.HealthState{Brokers: []workflows.BrokerHealthState{healthy(1)}}}
	o := workflows.OverviewOf(spec, st)
	if b := o.Brokers[0]; b.DiskPct != 42 || b.HeapPct != 75 || b.CleanerDead != 1 {
		t.Errorf("broker 1 gauges = %+v, want disk 42%%, heap 75%%, 1 dead cleaner thread", b)
	}
	if b := o.Brokers[1]; b.DiskPct != -1 || b.HeapPct != -1 {
		t.Errorf("broker 2 without a report = %+v, want gauges unknown (-1)", b)
	}
}

func TestOverviewCarriesOperationsFindingsAndTenants(t *testing.T) {
	spec := fleet.ClusterSpec{ID: "c1", Brokers: []fleet.BrokerSpec{{ID: 1}}}
	var findings []workflows.Finding
	for i := range 7 {
		findings = append(findings, workflows.Finding{Kind: workflows.FindingDisk, Broker: int32(i)})
	}
	st := workflows.ClusterState{
		Running: &workflows.Operation{ID: "a-1", Kind: "rolling-restart", WorkflowID: "cluster/c1/restart/a-1", CancelledBy: "bob"},
		Urgent:  []workflows.Operation{{ID: "a-2", Kind: "recovery", WorkflowID: "cluster/c1/recovery/a-2", Brokers: []int32{1}}},
		Queue:   []workflows.Operation{{ID: "a-3"}, {ID: "a-4"}},
		Health:  &workflows.HealthState{Findings: findings, Found: 12},
		Tenants: []workflows.TenantState{{Name: "t1", Plan: fleet.TenantPlan{Name: "basic-0"}},
			{Name: "t2", Plan: fleet.TenantPlan{Name: "basic-0"}}, {Name: "t3", Plan: fleet.TenantPlan{Name: "premium-2"}}},
	}
	o := workflows.OverviewOf(spec, st)
	if len(o.Operations) != 2 || o.Operations[0].ID != "a-1" || !o.Operations[0].Cancelling || o.Operations[1].Kind != "recovery" {
		t.Errorf("operations = %+v, want the running one (cancelling) then the urgent recovery", o.Operations)
	}
	if o.Queued != 2 {
		t.Errorf("queued = %d, want 2", o.Queued)
	}
	if len(o.Findings) != 3 || o.Findings[2].Broker != 6 || o.Found != 12 {
		t.Errorf("findings = %+v (found %d), want the newest 3 of 12", o.Findings, o.Found)
	}
	if o.Tenants != 3 || o.Plans["basic-0"] != 2 || o.Plans["premium-2"] != 1 {
		t.Errorf("tenants = %d, plans %v; want 3: 2 basic-0, 1 premium-2", o.Tenants, o.Plans)
	}
	// The memo stays small: counts and states, no partition lists.
	b, _ := json.Marshal(o)
	if len(b) > 2048 {
		t.Errorf("overview is %d bytes, want under 2 KiB for one broker", len(b))
	}
}
