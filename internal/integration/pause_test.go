package integration_test

import (
	"slices"
	"strings"

	"context"
	"testing"
	"time"

	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

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
	stack := startStack(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}))
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
}

// TestIntegrationGateThatCanNeverOpenAsksAndAbortTouchesNothing: a topic
// whose replication factor equals min.insync.replicas can never let one of
// its replicas restart; the roll says so at once and a human aborts.
func TestIntegrationGateThatCanNeverOpenAsksAndAbortTouchesNothing(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	stack := startStack(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Specs["local-a"].Bootstrap...))
	require.NoError(t, err)
	defer cl.Close()
	created, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 2, nil, "fragile")
	require.NoError(t, err)
	require.NoError(t, created.Err)
	before := len(stack.Fleet.Audit("local-a"))

	op, err := entity.Request(ctx, stack.Client, "local-a", restartReq("integration-test"))
	require.NoError(t, err)
	pause := waitPaused(ctx, t, stack, op)
	assert.True(t, pause.CanSkip)
	assert.Contains(t, pause.Reason, "fragile")
	assert.Contains(t, pause.Reason, "no wait can open")

	_, err = entity.Decide(ctx, stack.Client, "local-a", "", workflows.Decision{Action: workflows.DecisionAbort, By: "oncall", Reason: "raise RF first"})
	require.NoError(t, err)
	_, err = entity.FollowOperation(ctx, stack.Client, "local-a", op.ID, 200*time.Millisecond, func(entity.Progress) {})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "aborted by oncall")
	assert.Len(t, stack.Fleet.Audit("local-a"), before, "no broker was touched")
	assert.Empty(t, stack.Fleet.Violations("local-a"))
}

// TestIntegrationRollWaitsWhileAReplicaCatchesUp: a broker restarted
// behind kfleet's back is still catching up, so stopping any other broker
// would take its partitions under min.insync.replicas. Either the entity
// saw the broker leave — then the recovery it started holds the roll until
// the broker is back in sync — or the roll waits on its gates; either way
// nothing is touched until the replica is back in sync.
func TestIntegrationRollWaitsWhileAReplicaCatchesUp(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	cfg := fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3})
	cfg.Clusters[0].Timing.CatchUp = 4 * time.Second
	stack := startStack(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	require.NoError(t, stack.Fleet.StopBroker(ctx, "local-a", 3, "someone else"))
	require.NoError(t, stack.Fleet.StartBroker(ctx, "local-a", 3, "someone else"))
	op, err := entity.Request(ctx, stack.Client, "local-a", restartReq("integration-test"))
	require.NoError(t, err)
	var sawWait, sawLive bool
	_, err = entity.FollowOperation(ctx, stack.Client, "local-a", op.ID, 100*time.Millisecond, func(p entity.Progress) {
		for _, line := range p.Lines {
			sawWait = sawWait || strings.Contains(line, workflows.StepWaitGates)
			sawLive = sawLive || strings.HasPrefix(line, "waiting for the gates of broker")
		}
	})
	require.NoError(t, err)
	st, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	var recovery, roll *workflows.Operation
	for i, h := range st.History {
		switch h.Kind {
		case workflows.OpRecovery:
			recovery = &st.History[i]
		case workflows.OpRollingRestart:
			roll = &st.History[i]
		}
	}
	require.NotNil(t, roll)
	if recovery != nil {
		assert.Equal(t, []int32{3}, recovery.Brokers)
		assert.False(t, roll.StartedAt.Before(recovery.FinishedAt), "the recovery held the roll")
	} else {
		assert.True(t, sawWait, "the roll reported waiting on a gate")
		assert.True(t, sawLive, "status showed the wait's own progress, from its heartbeat")
	}

	var inSync3, firstKfleetStop time.Time
	for _, e := range stack.Fleet.Audit("local-a") {
		if e.Broker == 3 && e.Kind == localfleet.EventInSync && inSync3.IsZero() {
			inSync3 = e.Time
		}
		if e.Kind == localfleet.EventStop && e.Who != "someone else" && firstKfleetStop.IsZero() {
			firstKfleetStop = e.Time
		}
	}
	require.False(t, inSync3.IsZero())
	assert.True(t, firstKfleetStop.After(inSync3), "kfleet touched nothing until broker 3 was back in sync (stop %s, in sync %s)", firstKfleetStop, inSync3)
	assert.Empty(t, stack.Fleet.Violations("local-a"))
}
