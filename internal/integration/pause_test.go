package integration_test

import (
	"fmt"
	"slices"

	"context"
	"testing"
	"time"

	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// waitPaused polls the running roll until it pauses for a human.
func waitPaused(ctx context.Context, t *testing.T, stack *devstack.Stack, op workflows.Operation) workflows.Pause {
	t.Helper()
	var pause workflows.Pause
	require.Eventually(t, func() bool {
		v, err := stack.Client.QueryWorkflow(ctx, op.WorkflowID, "", workflows.QueryProgress)
		if err != nil {
			return false
		}
		var p workflows.RollProgress
		if v.Get(&p) != nil || p.Paused == nil {
			return false
		}
		pause = *p.Paused
		return true
	}, 90*time.Second, 200*time.Millisecond, "the roll pauses for a human")
	return pause
}

// TestIntegrationBrokerFailsToStartPausesThenResumes: a broker that will
// not start pauses the roll with that broker down and nothing else touched;
// once the cause is fixed a human resumes and the roll completes.
func TestIntegrationBrokerFailsToStartPausesThenResumes(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	stack := startStackWith(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}), func(o *devstack.StackOptions) {
		o.OverviewAddr, o.OverviewRefresh = "127.0.0.1:0", 500*time.Millisecond
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	fault := localfleet.Fault{Kind: localfleet.FaultFailToStart, Count: 100}
	require.NoError(t, stack.Fleet.InjectFault(ctx, "local-a", 2, fault, "test"))

	op, err := entity.Request(ctx, stack.Client, "local-a", restartReq("integration-test"))
	require.NoError(t, err)
	pause := waitPaused(ctx, t, stack, op)
	assert.Equal(t, int32(2), pause.Broker)
	assert.Equal(t, workflows.StepStart, pause.Step)
	assert.False(t, pause.CanSkip)

	stops, _ := stopsAndStarts(stack.Fleet.Audit("local-a"))
	assert.Equal(t, map[int32]int{2: 1}, stops, "while paused, no other broker is touched")
	// What an operator asks the UI: every operation waiting for a human.
	require.Eventually(t, func() bool {
		resp, err := stack.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: `Paused = true AND ExecutionStatus = "Running"`})
		return err == nil && slices.ContainsFunc(resp.Executions, func(e *workflowpb.WorkflowExecutionInfo) bool {
			return e.GetExecution().GetWorkflowId() == op.WorkflowID
		})
	}, 10*time.Second, 200*time.Millisecond, "the paused roll is found by the Paused search attribute")
	// The overview's metrics say since when it waits, from its memo: an
	// alert fires on an hour of it.
	series := fmt.Sprintf(`kfleet_waiting_for_human_since_seconds{cluster="local-a",operation="rolling-restart",workflow_id=%q}`, op.WorkflowID)
	since := waitMetric(t, stack.Overview.URL+"metrics", series, 10*time.Second)
	assert.InDelta(t, float64(pause.Since.UnixNano())/1e9, since, 2, "waiting since the pause (%s)", pause.Since)
	_, err = entity.Decide(ctx, stack.Client, "local-a", "", workflows.Decision{Action: workflows.DecisionSkip, By: "oncall"})
	require.Error(t, err, "a broker that is down cannot be skipped")

	require.NoError(t, stack.Fleet.InjectFault(ctx, "local-a", 2, localfleet.Fault{Kind: localfleet.FaultClear}, "oncall"))
	_, err = entity.Decide(ctx, stack.Client, "local-a", "", workflows.Decision{Action: workflows.DecisionResume, By: "oncall"})
	require.NoError(t, err)
	res, err := entity.FollowOperation(ctx, stack.Client, "local-a", op.ID, 200*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err)
	require.Len(t, res.Brokers, 3)

	stops, _ = stopsAndStarts(stack.Fleet.Audit("local-a"))
	assert.Equal(t, map[int32]int{1: 1, 2: 1, 3: 1}, stops, "each broker stopped exactly once")
	assert.Empty(t, stack.Fleet.Violations("local-a"))
	require.Eventually(t, func() bool {
		_, found := readMetric(t, stack.Overview.URL+"metrics", series)
		return !found
	}, 10*time.Second, 200*time.Millisecond, "the wait leaves the overview's metrics once the roll goes on")
	// A roll whose memo says since when it waited, for the replay tests.
	recordHistories(ctx, t, stack.Client, map[string]string{op.WorkflowID: "rolling_restart_paused_since.json"})
}
