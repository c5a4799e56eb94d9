package integration_test

import (
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// TestIntegrationTaskQueueFromEnvironment: with KFLEET_TASK_QUEUE set for
// the worker and the clients, entities start on that queue, sense on its
// -sensing queue, and a roll runs there.
func TestIntegrationTaskQueueFromEnvironment(t *testing.T) {
	t.Setenv("KFLEET_TASK_QUEUE", "kfleet-blue")
	stack := startStack(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)

	d, err := stack.Client.DescribeWorkflowExecution(ctx, workflows.ClusterWorkflowID("local-a"), "")
	require.NoError(t, err)
	assert.Equal(t, "kfleet-blue", d.GetExecutionConfig().GetTaskQueue().GetName())
	require.Eventually(t, func() bool {
		d, err := stack.Client.DescribeTaskQueue(ctx, "kfleet-blue-sensing", enumspb.TASK_QUEUE_TYPE_ACTIVITY)
		return err == nil && len(d.GetPollers()) > 0
	}, time.Minute, 100*time.Millisecond, "the worker polls the sensing queue")

	op, err := entity.Request(ctx, stack.Client, "local-a", restartReq("task-queue-test"))
	require.NoError(t, err)
	_, err = entity.FollowOperation(ctx, stack.Client, "local-a", op.ID, 100*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err)
	stops, starts := stopsAndStarts(stack.Fleet.Audit("local-a"))
	assert.Equal(t, map[int32]int{1: 1, 2: 1, 3: 1}, stops)
	assert.Equal(t, stops, starts)
}
