package workflows_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/kfleet/kfleet/workflows"
)

// TestReplayRecordedHistories replays histories recorded from real runs
// (testdata/, refreshed by `make record-histories`) against today's
// workflow code: a change that would break running workflows fails here.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "no recorded histories in testdata/")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflow(workflows.ClusterWorkflow)
			r.RegisterWorkflow(workflows.RollingRestartWorkflow)
			r.RegisterWorkflow(workflows.RecoveryWorkflow)
			r.RegisterWorkflow(workflows.VolumeExpansionWorkflow)
			r.RegisterWorkflow(workflows.CleanerHealthWorkflow)
			r.RegisterWorkflow(workflows.ApprovalWorkflow)
			r.RegisterWorkflow(workflows.ScheduledActionWorkflow)
			r.RegisterWorkflow(workflows.FleetSweepWorkflow)
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}
