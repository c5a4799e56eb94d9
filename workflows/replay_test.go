package workflows_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"

	"github.com/kfleet/kfleet/workflows"
)

// TestReplayRecordedHistories replays histories recorded from real runs
// against today's workflow code: a change that would break running
// workflows fails here. testdata/*.json are today's (refreshed by `make
// record-histories`); testdata/v2/ keeps those recorded before entity
// version 3 (operation kinds, continue-as-new while operations run) and
// testdata/v3/ the entity's before version 4 (sensing in one activity
// that reports on change), and testdata/before-replace-host/ a recovery
// recorded before it replaced hosts (an instance that was gone waited for
// a human, who resumed it), which must replay for as long as such runs may
// exist.
func TestReplayRecordedHistories(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(t, err)
	for _, old := range []string{"v2", "v3", "before-replace-host"} {
		legacy, err := filepath.Glob(filepath.Join("testdata", old, "*.json"))
		require.NoError(t, err)
		files = append(files, legacy...)
	}
	require.NotEmpty(t, files, "no recorded histories in testdata/")
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			workflows.Register(r) // as the worker registers them
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}
