package integration_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// A small event budget and a stream of health checks (each one a sensing
// run cancelled, another started, and its report: a dozen events) make
// the entity continue as new every few seconds, as a busy entity does
// over days: the waits below span several runs.
const (
	longWaitBudget = 150
	// longWaitMargin is how far past its budget a run may go: the entity
	// continues as new at its next wake-up once past it.
	longWaitMargin = 60
	// longWaitRuns is how many times the entity must have continued as
	// new while the operation waited for a human.
	longWaitRuns = 3
)

func startLongWaitStack(t *testing.T) *devstack.Stack {
	return startStackWith(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}), func(o *devstack.StackOptions) {
		o.EventBudget = longWaitBudget
		o.Health = fleet.HealthPolicy{Interval: 200 * time.Millisecond, RecoveryGrace: time.Second}
	})
}

// entityRuns lists the runs of a cluster's entity that continued as new,
// oldest first: how long each one's history grew, and their run IDs.
func entityRuns(ctx context.Context, t *testing.T, stack *devstack.Stack, cluster string) (continued int, lengths []int64, runIDs []string) {
	t.Helper()
	resp, err := stack.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
		Query: fmt.Sprintf("WorkflowId = %q", workflows.ClusterWorkflowID(cluster))})
	require.NoError(t, err)
	execs := resp.GetExecutions()
	slices.SortFunc(execs, func(a, b *workflowpb.WorkflowExecutionInfo) int {
		return a.GetStartTime().AsTime().Compare(b.GetStartTime().AsTime())
	})
	for _, e := range execs {
		if e.GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_CONTINUED_AS_NEW {
			continued++
			lengths = append(lengths, e.GetHistoryLength())
			runIDs = append(runIDs, e.GetExecution().GetRunId())
		}
	}
	return continued, lengths, runIDs
}

// waitContinuedAsNew waits until the entity continued as new n more times
// than it had, asking it for health checks meanwhile to grow its history.
func waitContinuedAsNew(ctx context.Context, t *testing.T, stack *devstack.Stack, n int) {
	t.Helper()
	before, _, _ := entityRuns(ctx, t, stack, "local-a")
	checks, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for checks.Err() == nil {
			// Refused between runs at times: the next one goes on.
			_, _ = entity.HealthCheck(checks, stack.Client, "local-a", workflows.HealthCheckRequest{RequestedBy: "long-wait-test"})
		}
	}()
	require.Eventually(t, func() bool {
		now, _, _ := entityRuns(ctx, t, stack, "local-a")
		return now >= before+n
	}, 2*time.Minute, time.Second, "the entity continues as new %d times while the operation waits", n)
}

func assertRunsWithinBudget(ctx context.Context, t *testing.T, stack *devstack.Stack) {
	t.Helper()
	continued, lengths, _ := entityRuns(ctx, t, stack, "local-a")
	t.Logf("the entity continued as new %d times; run lengths %v events (budget %d)", continued, lengths, longWaitBudget)
	for _, n := range lengths {
		assert.LessOrEqual(t, n, int64(longWaitBudget+longWaitMargin), "a run of the entity past its budget")
	}
}

// TestIntegrationRollPausedAcrossContinueAsNew: a roll paused for a human
// (broker 2 will not start) while the entity continues as new several
// times; the human resumes and the roll completes, recorded by the
// entity's latest run. Judged by the fleet's audit.
func TestIntegrationRollPausedAcrossContinueAsNew(t *testing.T) {
	t.Parallel() // mostly waiting for continue-as-new: beside the other long wait
	stack := startLongWaitStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	require.NoError(t, stack.Fleet.InjectFault(ctx, "local-a", 2, localfleet.Fault{Kind: localfleet.FaultFailToStart, Count: 1000}, "test"))

	op, err := entity.Request(ctx, stack.Client, "local-a", restartReq("integration-test"))
	require.NoError(t, err)
	admitted, err := stack.Client.DescribeWorkflowExecution(ctx, workflows.ClusterWorkflowID("local-a"), "")
	require.NoError(t, err)
	pause := waitPaused(ctx, t, stack, op)
	require.Equal(t, int32(2), pause.Broker)
	waitContinuedAsNew(ctx, t, stack, longWaitRuns)

	st, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	require.NotNil(t, st.Running, "the paused roll is carried across runs")
	assert.Equal(t, op.ID, st.Running.ID)
	assert.Equal(t, workflows.StatusRunning, st.Running.Status)
	assert.Len(t, st.Touching, 1, "broker 2 is still the roll's, so its absence is no loss")
	assert.Empty(t, st.OpenLosses())

	require.NoError(t, stack.Fleet.InjectFault(ctx, "local-a", 2, localfleet.Fault{Kind: localfleet.FaultClear}, "oncall"))
	_, err = entity.Decide(ctx, stack.Client, "local-a", "", workflows.Decision{Action: workflows.DecisionResume, By: "oncall"})
	require.NoError(t, err)
	res, err := entity.FollowOperation(ctx, stack.Client, "local-a", op.ID, 200*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err, "the entity's current run hears the roll's end")
	require.Len(t, res.Brokers, 3)

	stops, _ := stopsAndStarts(stack.Fleet.Audit("local-a"))
	assert.Equal(t, map[int32]int{1: 1, 2: 1, 3: 1}, stops, "each broker stopped exactly once")
	assert.Empty(t, stack.Fleet.Violations("local-a"))
	st, err = entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	assert.Nil(t, st.Running)
	assert.Empty(t, st.Touching, "the roll let go of every broker")
	assertRunsWithinBudget(ctx, t, stack)

	// For the replay test: the run that started the roll and continued as
	// new while it ran, the run that heard its end, and the roll itself.
	recordRun(ctx, t, stack.Client, workflows.ClusterWorkflowID("local-a"), admitted.GetWorkflowExecutionInfo().GetExecution().GetRunId(), "cluster_roll_started.json")
	recordRun(ctx, t, stack.Client, workflows.ClusterWorkflowID("local-a"), "", "cluster_roll_ended.json")
	recordRun(ctx, t, stack.Client, op.WorkflowID, "", "rolling_restart_paused_reports_end.json")
}

// TestIntegrationRecoveryWaitsForAHumanAcrossContinueAsNew: a broker's
// instance is stopped under it in a zone that has run out of capacity; the
// recovery can neither start it nor launch a new host there, pages and
// waits for a human while the entity continues as new several times; the
// zone's capacity comes back, the human starts the instance and resumes,
// and the recovery starts the broker once and completes. Judged by the
// fleet's audit: no host was launched.
func TestIntegrationRecoveryWaitsForAHumanAcrossContinueAsNew(t *testing.T) {
	t.Parallel() // mostly waiting for continue-as-new: beside the other long wait
	stack := startLongWaitStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	auditBefore := len(stack.Fleet.Audit("local-a"))
	zone := "us-east-1a" // a cluster without racks runs in the first zone
	require.NoError(t, stack.Fleet.SetZoneCapacity(zone, false, "test"))
	require.NoError(t, stack.Fleet.InjectFault(ctx, "local-a", 2, localfleet.Fault{Kind: localfleet.FaultStopInstance}, "test"))

	var recovery workflows.Operation
	require.Eventually(t, func() bool {
		st, err := entity.Status(ctx, stack.Client, "local-a")
		if err != nil || len(st.Urgent) == 0 {
			return false
		}
		recovery = st.Urgent[0]
		for _, line := range st.Progress[recovery.ID] {
			if strings.Contains(line, "PAUSED") {
				return true
			}
		}
		return false
	}, 90*time.Second, 200*time.Millisecond, "the recovery can neither start the instance nor replace it, and waits for a human")
	require.Equal(t, workflows.OpRecovery, recovery.Kind)
	waitContinuedAsNew(ctx, t, stack, longWaitRuns)

	st, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	require.Len(t, st.Urgent, 1, "the waiting recovery is carried across runs")
	assert.Equal(t, recovery.ID, st.Urgent[0].ID)
	require.Len(t, st.OpenLosses(), 1, "one loss, one recovery")

	require.NoError(t, stack.Fleet.SetZoneCapacity(zone, true, "test"))
	require.NoError(t, stack.Fleet.InjectFault(ctx, "local-a", 2, localfleet.Fault{Kind: localfleet.FaultStartInstance}, "oncall"))
	_, err = entity.Decide(ctx, stack.Client, "local-a", recovery.ID, workflows.Decision{Action: workflows.DecisionResume, By: "oncall"})
	require.NoError(t, err)
	_, done, err := entity.Follow[workflows.RecoveryResult](ctx, stack.Client, "local-a", recovery.ID, 200*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err, "the entity's current run hears the recovery's end")
	assert.Contains(t, done.Outcome, "1 start(s)")

	_, starts := stopsAndStarts(stack.Fleet.Audit("local-a")[auditBefore:])
	assert.Equal(t, map[int32]int{2: 1}, starts, "the recovery started broker 2 exactly once, and nothing else")
	assert.Empty(t, brokerEvents(stack.Fleet.Audit("local-a")[auditBefore:], 2, localfleet.EventInstanceLaunched), "no host could be launched")
	assert.Empty(t, stack.Fleet.Violations("local-a"))
	st, err = entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	assert.Empty(t, st.Urgent)
	assert.Empty(t, st.OpenLosses(), "the loss closed when broker 2 registered again")
	assertRunsWithinBudget(ctx, t, stack)
}
