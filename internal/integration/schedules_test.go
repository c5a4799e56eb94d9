package integration_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/schedules"
	"github.com/kfleet/kfleet/workflows"
)

// TestIntegrationSchedules creates a cluster's weekly restart window and
// the fleet sweep on the dev server through the CLI, checks what Temporal
// holds (overlap skip, a 10-minute catch-up window, the spec, the
// workflow started), triggers both — the window's restart is admitted by
// the entity as asked by schedule/local-a/restart and rolls the cluster
// safely; the sweep checks every cluster — then pauses, unpauses and
// deletes them.
func TestIntegrationSchedules(t *testing.T) {
	t.Parallel()                // mostly waiting: beside the other long tests
	bin := buildStarterAsync(t) // while the stack starts
	stack := startStack(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	starter, addr := <-bin, stack.Temporal.Addr
	run := func(args ...string) (string, int) {
		t.Helper()
		return runStarter(t, starter, append(args, "--address", addr)...)
	}
	sc := stack.Client.ScheduleClient()
	describe := func(id string) *client.ScheduleDescription {
		t.Helper()
		d, err := sc.GetHandle(ctx, id).Describe(ctx)
		require.NoError(t, err, id)
		return d
	}

	// The stack created the sweep, as `make run` does.
	require.NotNil(t, stack.Sweep)
	assert.Equal(t, workflows.FleetSweepScheduleID, stack.Sweep.ID)
	assert.Equal(t, "every 1h", stack.Sweep.Spec)

	// Refused before anything is created: exit 2 and a clear message.
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--cluster", "nope", "--action", "restart", "--cron", "0 3 * * SUN"}, "unknown cluster"},
		{[]string{"--cluster", "local-a", "--action", "restart", "--cron", "0 25 * * SUN"}, `hour "25": want 0-23`},
		{[]string{"--cluster", "local-a", "--action", "restart", "--cron", "0 3 * *"}, "want 5 fields"},
		{[]string{"--cluster", "local-a", "--action", "restart"}, "a cron expression"},
		{[]string{"--cluster", "local-a", "--action", "restart", "--every", "10s"}, "want at least 1m"},
		{[]string{"--cluster", "local-a", "--action", "restart", "--every", "1h", "--at", "2h"}, "offset 2h0m0s"},
		{[]string{"--cluster", "local-a", "--action", "restart", "--every", "soon"}, `--every "soon"`},
		{[]string{"--cluster", "local-a", "--action", "upgrade", "--every", "24h"}, "want one of restart, cleaner-check"},
		{[]string{"--cluster", "local-a", "--action", "restart", "--every", "24h", "--batch", "4"}, "maxBatch 4: want 0..3"},
		{[]string{"--cluster", "local-a", "--action", "restart", "--cron", "0 3 * * SUN", "--timezone", "Mars/Olympus"}, "Mars/Olympus"},
		{[]string{"--cluster", "local-a"}, "--action restart|cleaner-check"},
	} {
		out, code := run(append([]string{"schedule", "create"}, bad.args...)...)
		assert.Equal(t, 2, code, "%v: %s", bad.args, out)
		assert.Contains(t, out, bad.want, bad.args)
	}

	// A weekly restart window, and the sweep updated to every 2h.
	out, code := run("schedule", "create", "--cluster", "local-a", "--action", "restart", "--cron", "0 3 * * SUN", "--batch", "1", "--by", "alice")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "created schedule schedule/local-a/restart: restart of local-a, cron 0 3 * * SUN")
	out, code = run("schedule", "create", "--sweep", "--every", "2h", "--by", "alice")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "updated schedule schedule/fleet-sweep: fleet-sweep, every 2h")

	// What Temporal holds.
	restartID := workflows.ClusterScheduleID("local-a", "restart")
	for _, id := range []string{restartID, workflows.FleetSweepScheduleID} {
		d := describe(id)
		assert.Equal(t, enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, d.Schedule.Policy.Overlap, id)
		assert.Equal(t, 10*time.Minute, d.Schedule.Policy.CatchupWindow, id)
		assert.False(t, d.Schedule.State.Paused, id)
		assert.Contains(t, d.Schedule.State.Note, "alice", id)
		a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
		require.True(t, ok, id)
		assert.Equal(t, workflows.TaskQueue, a.TaskQueue, id)
	}
	d := describe(restartID)
	assert.Equal(t, "ScheduledActionWorkflow", d.Schedule.Action.(*client.ScheduleWorkflowAction).Workflow)
	assert.Equal(t, "cluster/local-a/scheduled/restart", d.Schedule.Action.(*client.ScheduleWorkflowAction).ID)
	require.NotEmpty(t, d.Info.NextActionTimes)
	next := d.Info.NextActionTimes[0].UTC()
	assert.Equal(t, time.Sunday, next.Weekday(), "the window is on Sundays: %s", next)
	assert.Equal(t, 3, next.Hour(), "at 03:00 UTC: %s", next)
	d = describe(workflows.FleetSweepScheduleID)
	assert.Equal(t, []client.ScheduleIntervalSpec{{Every: 2 * time.Hour}}, d.Schedule.Spec.Intervals)
	assert.Equal(t, "FleetSweepWorkflow", d.Schedule.Action.(*client.ScheduleWorkflowAction).Workflow)

	// Listed (visibility is eventually consistent).
	var listed []schedules.Schedule
	require.Eventually(t, func() bool {
		out, code = runStarterJSON(t, starter, &listed, "schedule", "list", "--address", addr)
		return code == 0 && len(listed) == 2
	}, 10*time.Second, 200*time.Millisecond, "schedule list shows both: %s %v", out, listed)
	assert.Equal(t, workflows.FleetSweepScheduleID, listed[0].ID)
	assert.Equal(t, workflows.OpFleetSweep, listed[0].Action)
	assert.Equal(t, restartID, listed[1].ID)
	assert.Equal(t, "local-a", listed[1].Cluster)
	assert.Equal(t, "restart", listed[1].Action)
	assert.Equal(t, "cron 0 3 * * SUN", listed[1].Spec)
	assert.Equal(t, "skip", listed[1].Overlap)
	assert.Equal(t, 10*time.Minute, listed[1].CatchupWindow)
	out, code = run("schedule", "list")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "schedule/local-a/restart")
	assert.Contains(t, out, "cron 0 3 * * SUN")

	// Triggered: the entity admits a rolling restart asked by the window,
	// which rolls every broker once, safely.
	audit := len(stack.Fleet.Audit("local-a"))
	var started schedules.ScheduledRun
	out, code = runStarterJSON(t, starter, &started, "schedule", "trigger", "local-a/restart", "--address", addr)
	require.Equal(t, 0, code, out)
	assert.Regexp(t, `^cluster/local-a/scheduled/restart-`, started.WorkflowID)
	var sub struct{ OperationID, Kind string }
	require.NoError(t, stack.Client.GetWorkflow(ctx, started.WorkflowID, started.RunID).Get(ctx, &sub))
	assert.Equal(t, workflows.OpRollingRestart, sub.Kind)
	recordHistories(ctx, t, stack.Client, map[string]string{started.WorkflowID: "scheduled_action_restart.json"})
	st := waitStatus(ctx, t, stack, "local-a", time.Minute, "the scheduled roll finishes", func(st workflows.ClusterStatus) bool {
		op, ok := st.Operation(sub.OperationID)
		return ok && op.Status != workflows.StatusQueued && op.Status != workflows.StatusRunning
	})
	op, _ := st.Operation(sub.OperationID)
	assert.Equal(t, workflows.StatusSucceeded, op.Status, op.Error)
	assert.Equal(t, restartID, op.RequestedBy, "the entity records which window asked")
	stops := auditSerial(t, stack.Fleet.Audit("local-a")[audit:]).stops
	assert.Equal(t, map[int32]int{1: 1, 2: 1, 3: 1}, stops, "each broker restarted once")
	noViolations(t, stack, "local-a")
	// The started workflow carries the search attributes the UI filters on.
	require.Eventually(t, func() bool {
		resp, err := stack.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Query: `ClusterID = "local-a" AND Operation = "scheduled-restart"`})
		return err == nil && slices.ContainsFunc(resp.Executions, func(e *workflowpb.WorkflowExecutionInfo) bool {
			return e.GetExecution().GetWorkflowId() == started.WorkflowID
		})
	}, 10*time.Second, 200*time.Millisecond, "the scheduled run is found by ClusterID and Operation")

	// The sweep: a FleetSweepWorkflow that checks every cluster.
	out, code = runStarterJSON(t, starter, &started, "schedule", "trigger", "fleet-sweep", "--address", addr)
	require.Equal(t, 0, code, out)
	var swept workflows.FleetSweepResult
	require.NoError(t, stack.Client.GetWorkflow(ctx, started.WorkflowID, started.RunID).Get(ctx, &swept))
	recordHistories(ctx, t, stack.Client, map[string]string{started.WorkflowID: "fleet_sweep.json"})
	require.Len(t, swept.Clusters, 1)
	assert.Equal(t, "local-a", swept.Clusters[0].Cluster)
	assert.Empty(t, swept.Clusters[0].Error)
	assert.Contains(t, swept.Clusters[0].Summary, "local-a")
	s, err := schedules.DescribeSchedule(ctx, stack.Client, workflows.FleetSweepScheduleID)
	require.NoError(t, err)
	require.NotNil(t, s.LastRun)
	assert.Equal(t, "completed", s.LastRun.Status)
	assert.Equal(t, "1 cluster checked", s.LastRun.Result)

	// Pause, update while paused (the pause is kept), unpause.
	out, code = run("schedule", "pause", "local-a/restart", "--note", "change freeze", "--by", "bob")
	require.Equal(t, 0, code, out)
	d = describe(restartID)
	assert.True(t, d.Schedule.State.Paused)
	assert.Equal(t, "paused by bob: change freeze", d.Schedule.State.Note)
	out, code = run("schedule", "create", "--cluster", "local-a", "--action", "restart", "--cron", "30 2 * * SAT", "--by", "alice")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "updated schedule")
	assert.Contains(t, out, "PAUSED: paused by bob: change freeze")
	d = describe(restartID)
	assert.True(t, d.Schedule.State.Paused, "an update keeps the pause")
	assert.Equal(t, 10*time.Minute, d.Schedule.Policy.CatchupWindow)
	out, code = run("schedule", "unpause", "schedule/local-a/restart", "--by", "bob")
	require.Equal(t, 0, code, out)
	d = describe(restartID)
	assert.False(t, d.Schedule.State.Paused)
	require.NotEmpty(t, d.Info.NextActionTimes)
	assert.Equal(t, time.Saturday, d.Info.NextActionTimes[0].UTC().Weekday(), "the update moved the window")

	// Delete: gone, and what it started is untouched.
	out, code = run("schedule", "delete", "local-a/restart")
	require.Equal(t, 0, code, out)
	_, err = sc.GetHandle(ctx, restartID).Describe(ctx)
	require.Error(t, err, "deleted")
	for _, args := range [][]string{
		{"schedule", "delete", "local-a/restart"},
		{"schedule", "pause", "local-a/restart"},
		{"schedule", "trigger", "local-a/restart"},
	} {
		out, code = run(args...)
		assert.Equal(t, 2, code, "%v: %s", args, out)
		assert.Contains(t, out, "unknown schedule", args)
	}
	st, err = entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	op, ok := st.Operation(sub.OperationID)
	require.True(t, ok)
	assert.Equal(t, workflows.StatusSucceeded, op.Status)
}
