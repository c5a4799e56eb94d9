package logging_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	tlog "go.temporal.io/sdk/log"

	"github.com/kfleet/kfleet/internal/logging"
	"github.com/kfleet/kfleet/workflows"
)

// The keyvals the SDK gives a workflow's logger (internal_logging_tags.go).
var workflowKV = []any{"Namespace", "default", "TaskQueue", "kfleet", "WorkerID", "w1",
	"WorkflowType", "RollingRestartWorkflow", "WorkflowID", "cluster/local-a/roll/abc-1", "RunID", "r1", "Attempt", 1}

func TestTemporalFields(t *testing.T) {
	tests := []struct {
		name string
		with [][]any // successive With calls
		kv   []any   // the line's own keyvals
		want map[string]any
		// absent are fields the line must not have.
		absent []string
	}{
		{
			name: "a workflow's line: cluster and broker, SDK keys renamed",
			with: [][]any{workflowKV},
			kv:   []any{"Cluster", "local-a", "Broker", int32(2), "Controller", false},
			want: map[string]any{"cluster": "local-a", "broker": 2.0, "workflow_id": "cluster/local-a/roll/abc-1", "run_id": "r1",
				"Namespace": "default", "WorkflowType": "RollingRestartWorkflow", "Controller": false, "Attempt": 1.0},
			absent: []string{"Cluster", "Broker", "WorkflowID", "RunID"},
		},
		{
			name: "an SDK line without Cluster takes it from the workflow ID",
			with: [][]any{workflowKV},
			kv:   []any{"Error", errors.New("nondeterminism")},
			want: map[string]any{"cluster": "local-a", "workflow_id": "cluster/local-a/roll/abc-1", "Error": "nondeterminism"},
		},
		{
			name: "the entity's own ID",
			kv:   []any{"WorkflowID", "cluster/local-b", "RunID", "r2"},
			want: map[string]any{"cluster": "local-b", "workflow_id": "cluster/local-b", "run_id": "r2"},
		},
		{
			name:   "a workflow that is not kfleet's has no cluster",
			kv:     []any{"WorkflowID", "temporal-sys-scheduler"},
			want:   map[string]any{"workflow_id": "temporal-sys-scheduler"},
			absent: []string{"cluster"},
		},
		{
			name: "an explicit Cluster wins over the workflow ID's",
			with: [][]any{{"WorkflowID", "cluster/local-a"}},
			kv:   []any{"Cluster", "local-z"},
			want: map[string]any{"cluster": "local-z"},
		},
		{
			name: "Cluster given to With is on every line, once",
			with: [][]any{{"Cluster", "local-a"}, {"Broker", 3}},
			kv:   []any{"Step", "stop"},
			want: map[string]any{"cluster": "local-a", "broker": 3.0, "Step": "stop"},
		},
		{
			name: "an activity's line",
			with: [][]any{{"ActivityID", "5", "ActivityType", "StopBroker", "WorkflowID", "cluster/local-a/recovery/x-2", "RunID", "r3"}},
			kv:   []any{"Broker", int32(2)},
			want: map[string]any{"cluster": "local-a", "broker": 2.0, "activity": "StopBroker", "ActivityID": "5", "run_id": "r3"},
		},
		{
			name:   "a worker line with no cluster at all",
			kv:     []any{"Namespace", "default", "TaskQueue", "kfleet"},
			want:   map[string]any{"Namespace": "default", "TaskQueue": "kfleet"},
			absent: []string{"cluster"},
		},
		{
			name: "odd keyvals and keys that are not strings",
			kv:   []any{7, "seven", "Dangling"},
			want: map[string]any{"7": "seven", "Dangling": "(missing value)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			var l tlog.Logger = logging.Temporal{Log: zerolog.New(&buf)}
			for _, kv := range tt.with {
				l = l.(tlog.WithLogger).With(kv...)
			}
			l.Info("hello", tt.kv...)
			line := buf.String()
			var got map[string]any
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatalf("not JSON: %q: %v", line, err)
			}
			if got["message"] != "hello" || got["level"] != "info" {
				t.Errorf("message/level lost: %s", line)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %#v, want %#v in %s", k, got[k], v, line)
				}
				// json.Unmarshal keeps the last of duplicate keys: count.
				if n := strings.Count(line, `"`+k+`":`); n != 1 {
					t.Errorf("%s appears %d times in %s", k, n, line)
				}
			}
			for _, k := range tt.absent {
				if _, ok := got[k]; ok {
					t.Errorf("%s should be absent from %s", k, line)
				}
			}
		})
	}
}

func TestTemporalLevels(t *testing.T) {
	var buf bytes.Buffer
	l := logging.Temporal{Log: zerolog.New(&buf).Level(zerolog.WarnLevel)}
	l.Debug("d", "Cluster", "a")
	l.Info("i", "Cluster", "a")
	l.Warn("w", "Cluster", "a")
	l.Error("e", "Cluster", "a", "Error", errors.New("boom"))
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"level":"warn"`) || !strings.Contains(lines[1], `"Error":"boom"`) {
		t.Errorf("want warn and error lines only, got %q", lines)
	}
}

// ClusterOfWorkflow must read every ID kfleet gives its workflows.
func TestClusterOfWorkflow(t *testing.T) {
	roll := workflows.OperationWorkflowID("local-a", "roll", "abc-1")
	tests := []struct{ id, want string }{
		{workflows.ClusterWorkflowID("local-a"), "local-a"},
		{roll, "local-a"},
		{workflows.UpgradePhaseWorkflowID(workflows.OperationWorkflowID("local-b", "upgrade", "u-1"), "binaries"), "local-b"},
		{workflows.CleanerRestartWorkflowID(workflows.OperationWorkflowID("local-c", workflows.OpCleanerHealth, "c-1")), "local-c"},
		{"cluster/", ""},
		{"clusters/local-a", ""},
		{"fleet-sweep", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := logging.ClusterOfWorkflow(tt.id); got != tt.want {
			t.Errorf("ClusterOfWorkflow(%q) = %q, want %q", tt.id, got, tt.want)
		}
	}
}
