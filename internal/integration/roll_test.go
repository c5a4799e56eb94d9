package integration_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// TestIntegrationRollingRestart rolls a 3-broker cluster through its entity
// workflow and proves from the fleet's audit — not from the workflow's own
// account — that each broker was stopped and started exactly once, one at a
// time, the controller last, and that nothing unsafe happened.
func TestIntegrationRollingRestart(t *testing.T) {
	stack := startStackWith(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}),
		func(o *devstack.StackOptions) { o.MetricsAddr = "127.0.0.1:0" })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	controllerBefore, err := stack.Fleet.Controller("local-a")
	require.NoError(t, err)
	auditBefore := len(stack.Fleet.Audit("local-a"))

	op, err := entity.Request(ctx, stack.Client, "local-a", restartReq("integration-test"))
	require.NoError(t, err)
	res, err := entity.FollowOperation(ctx, stack.Client, "local-a", op.ID, 200*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err)

	// The workflow's own account.
	require.Len(t, res.Brokers, 3)
	assert.Equal(t, controllerBefore, res.Brokers[2].Broker, "the controller is restarted last")

	// The fleet's account.
	audit := auditSerial(t, stack.Fleet.Audit("local-a")[auditBefore:])
	stops, starts, stopOrder := audit.stops, audit.starts, audit.stopOrder
	for _, b := range []int32{1, 2, 3} {
		assert.Equal(t, 1, stops[b], "broker %d stops", b)
		assert.Equal(t, 1, starts[b], "broker %d starts", b)
	}
	require.Len(t, stopOrder, 3)
	assert.Equal(t, controllerBefore, stopOrder[2], "the fleet saw the controller stop last")
	assert.Empty(t, stack.Fleet.Violations("local-a"), "no two brokers down, no partition under min ISR")

	st, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	require.NotEmpty(t, st.History)
	assert.Equal(t, workflows.StatusSucceeded, st.History[len(st.History)-1].Status)

	// What Prometheus scrapes from the worker: kfleet's metrics beside the
	// SDK's and the runtime's.
	reg := stack.Metrics.Registry
	local := map[string]string{workflows.TagCluster: "local-a"}
	assert.Equal(t, 1.0, metricValue(t, reg, workflows.MetricOperations, map[string]string{workflows.TagCluster: "local-a",
		workflows.TagKind: workflows.OpRollingRestart, workflows.TagOutcome: workflows.StatusSucceeded, "workflow_type": "ClusterWorkflow"}))
	assert.Equal(t, 3.0, metricValue(t, reg, workflows.MetricGateWait, local), "one gate wait per broker")
	assert.Zero(t, metricValue(t, reg, workflows.MetricBrokerLosses, local), "kfleet's own restarts are no losses")
	body := scrape(t, stack.Metrics.URL)
	for _, want := range []string{workflows.MetricOperations + "{", workflows.MetricGateWait + "_bucket{", "temporal_workflow_completed_total{", "go_goroutines "} {
		assert.Contains(t, body, want)
	}

	// What an operator finds in the Temporal UI with a visibility query.
	query := `ClusterID = "local-a" AND Operation = "rolling-restart"`
	require.Eventually(t, func() bool {
		resp, err := stack.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		return err == nil && len(resp.Executions) == 1 && resp.Executions[0].Execution.WorkflowId == op.WorkflowID
	}, 20*time.Second, 200*time.Millisecond, "the roll is found by its search attributes")
	desc, err := stack.Client.DescribeWorkflow(ctx, op.WorkflowID, "")
	require.NoError(t, err)
	summary, err := desc.GetStaticSummary()
	require.NoError(t, err)
	assert.Contains(t, summary, "Rolling restart of **local-a**")

	recordHistories(ctx, t, stack.Client, map[string]string{
		op.WorkflowID:                          "rolling_restart_3_brokers.json",
		workflows.ClusterWorkflowID("local-a"): "cluster_after_one_roll.json",
	})
}

// TestIntegrationBadRequestsChangeNothing: an unknown cluster or a broker
// that is not in the cluster gets a clear error and no broker is touched.
func TestIntegrationBadRequestsChangeNothing(t *testing.T) {
	t.Parallel() // its own fleet and stack; nothing it asserts depends on the machine being idle
	stack := startStack(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	before := len(stack.Fleet.Audit("local-a"))

	_, err := entity.Request(ctx, stack.Client, "no-such-cluster", restartReq("t"))
	require.ErrorIs(t, err, fleet.ErrUnknownCluster)
	assert.Contains(t, err.Error(), "no-such-cluster")

	_, err = entity.Request(ctx, stack.Client, "local-a", restartReq("t", 9))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "broker 9 is not in cluster local-a")

	st, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	assert.Nil(t, st.Running)
	assert.Empty(t, st.Queue)
	assert.Len(t, stack.Fleet.Audit("local-a"), before, "no broker was touched")
}

// recordHistories writes the histories of workflowIDs (their latest runs)
// as JSON into KFLEET_RECORD_HISTORIES, when set: that is how
// workflows/testdata/ is refreshed for the replay tests (`make
// record-histories`).
func recordHistories(ctx context.Context, t *testing.T, c client.Client, names map[string]string) {
	for workflowID, file := range names {
		recordRun(ctx, t, c, workflowID, "", file)
	}
}

// recordRun is recordHistories for one run of a workflow ("" : the latest).
func recordRun(ctx context.Context, t *testing.T, c client.Client, workflowID, runID, file string) {
	dir := os.Getenv("KFLEET_RECORD_HISTORIES")
	if dir == "" {
		return
	}
	require.NoError(t, writeHistory(ctx, c, workflowID, runID, filepath.Join(dir, file)))
}

// writeHistory writes the history of one run of a workflow ("" : the
// latest) to path as JSON, as the replay tests and `temporal workflow
// show --output json` read it.
func writeHistory(ctx context.Context, c client.Client, workflowID, runID, path string) error {
	var events []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(ctx, workflowID, runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return fmt.Errorf("history of %s: %w", workflowID, err)
		}
		events = append(events, ev)
	}
	data, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// TestIntegrationBatchedRollOneRackAtATime rolls local-b (6 brokers over 3
// racks, replicas placed rack-aware) in batches: brokers that share no
// partition — one rack at a time — go together, the controller alone and
// last, and no partition ever drops under min.insync.replicas.
func TestIntegrationBatchedRollOneRackAtATime(t *testing.T) {
	stack := startStack(t, fastFleet(localfleet.ClusterConfig{ID: "local-b", Brokers: 6, Racks: 3}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rackOf := map[int32]string{}
	for _, b := range stack.Fleet.Endpoints().Clusters["local-b"].Brokers {
		rackOf[b.ID] = b.Rack
	}
	controller, err := stack.Fleet.Controller("local-b")
	require.NoError(t, err)

	op, err := entity.Request(ctx, stack.Client, "local-b", batchedRestartReq("integration-test", 3))
	require.NoError(t, err)
	res, err := entity.FollowOperation(ctx, stack.Client, "local-b", op.ID, 200*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err)
	require.Len(t, res.Brokers, 6)

	batches := map[int][]int32{}
	for _, b := range res.Brokers {
		batches[b.Batch] = append(batches[b.Batch], b.Broker)
	}
	assert.Less(t, len(batches), 6, "some brokers restarted together")
	last := res.Brokers[len(res.Brokers)-1]
	assert.Equal(t, controller, last.Broker, "the controller goes last")
	assert.Len(t, batches[last.Batch], 1, "and alone")
	for n, brokers := range batches {
		for _, b := range brokers[1:] {
			assert.Equal(t, rackOf[brokers[0]], rackOf[b], "batch %d %v spans racks", n, brokers)
		}
	}
	stops, starts := stopsAndStarts(stack.Fleet.Audit("local-b"))
	for id := int32(1); id <= 6; id++ {
		assert.Equal(t, 1, stops[id], "broker %d stops", id)
		assert.Equal(t, 1, starts[id], "broker %d starts", id)
	}
	// Two brokers down at once is the point of a batch, as long as they
	// share no partition: the fleet flags anything else.
	assert.Empty(t, stack.Fleet.Violations("local-b"))
}
