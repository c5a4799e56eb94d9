package overview

import (
	"testing"
	"time"

	"github.com/kfleet/kfleet/workflows"
)

func TestJudge(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	up := func(disk, heap, dead int) workflows.BrokerOverview {
		return workflows.BrokerOverview{ID: 1, State: workflows.BrokerUp, DiskPct: disk, HeapPct: heap, CleanerDead: dead}
	}
	tests := []struct {
		name    string
		o       workflows.ClusterOverview
		waiting []Waiting
		health  string
		concern string // the first concern
	}{
		{"all well", workflows.ClusterOverview{Brokers: []workflows.BrokerOverview{up(79, 89, 0)}, SensedAt: now}, nil, OK, ""},
		{"disk at 80%", workflows.ClusterOverview{Brokers: []workflows.BrokerOverview{up(80, 10, 0)}}, nil, Warning, "broker 1 disk 80%"},
		{"old gen at 90%", workflows.ClusterOverview{Brokers: []workflows.BrokerOverview{up(10, 90, 0)}}, nil, Warning, "broker 1 old gen 90%"},
		{"dead cleaner", workflows.ClusterOverview{Brokers: []workflows.BrokerOverview{up(10, 10, 2)}}, nil, Warning, "broker 1 log cleaner: 2 dead thread(s)"},
		{"gauges unknown", workflows.ClusterOverview{Brokers: []workflows.BrokerOverview{up(-1, -1, 0)}}, nil, OK, ""},
		{"a lost broker", workflows.ClusterOverview{Brokers: []workflows.BrokerOverview{{ID: 3, State: workflows.BrokerLost}}}, nil, Critical, "broker 3 lost"},
		{"missing, in its grace", workflows.ClusterOverview{Brokers: []workflows.BrokerOverview{{ID: 3, State: workflows.BrokerMissing}}}, nil, Critical, "broker 3 missing"},
		{"kfleet restarting it", workflows.ClusterOverview{Brokers: []workflows.BrokerOverview{{ID: 3, State: workflows.BrokerRestarting}}}, nil, Warning, "broker 3 restarting"},
		{"sensing fails", workflows.ClusterOverview{SenseError: "zookeeper unreachable"}, nil, Critical, "sensing fails: zookeeper unreachable"},
		{"no report for a day", workflows.ClusterOverview{SensedAt: now.Add(-25 * time.Hour)}, nil, Warning, "no health report for 25h0m0s"},
		{"a roll waits for a human", workflows.ClusterOverview{Operations: []workflows.OperationOverview{{Kind: "rolling-restart"}}},
			[]Waiting{{Cluster: "c", Operation: "rolling-restart"}}, Critical, "rolling-restart waits for a human"},
		{"another cluster's wait", workflows.ClusterOverview{}, []Waiting{{Cluster: "other", Operation: "recovery"}}, OK, ""},
		{"paused by a person", workflows.ClusterOverview{Paused: &workflows.PauseState{By: "alice"}},
			[]Waiting{{Cluster: "c", Operation: pausedCluster}}, Warning, "paused by alice"},
		{"queued work", workflows.ClusterOverview{Queued: 2}, nil, Warning, "2 queued"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Cluster = "c"
			c := Cluster{ClusterOverview: tt.o}
			judge(&c, tt.waiting, now)
			if c.Health != tt.health {
				t.Errorf("health %q, want %q (concerns %q)", c.Health, tt.health, c.Concerns)
			}
			first := ""
			if len(c.Concerns) > 0 {
				first = c.Concerns[0]
			}
			if first != tt.concern {
				t.Errorf("first concern %q, want %q", first, tt.concern)
			}
		})
	}
}
