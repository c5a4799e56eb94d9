package integration_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// brokerSessionTimeout is the local fleet's brokers' ZooKeeper session
// timeout: a crash is seen once it expires.
const brokerSessionTimeout = 4 * time.Second

// sensingWorker is the pid of the worker process whose Sense activity
// senses cluster now (0 while none holds it).
func sensingWorker(ctx context.Context, t *testing.T, stack *devstack.Stack, cluster string) int {
	t.Helper()
	d, err := stack.Client.DescribeWorkflowExecution(ctx, workflows.ClusterWorkflowID(cluster), "")
	require.NoError(t, err)
	for _, pa := range d.GetPendingActivities() {
		if pa.GetActivityType().GetName() != "Sense" || pa.GetLastWorkerIdentity() == "" {
			continue
		}
		var pid int
		if _, err := fmt.Sscanf(pa.GetLastWorkerIdentity(), "%d@", &pid); err == nil && pa.GetLastStartedTime() != nil {
			return pid
		}
	}
	return 0
}

// TestIntegrationSensingMovesToAnotherWorkerWhenItsWorkerDies: two worker
// processes; the one sensing local-a is killed (SIGKILL), and a broker
// crashes right after. The other worker takes the sensing over once its
// heartbeat times out, and the loss is seen and recovered — within the
// heartbeat timeout plus the ZooKeeper session timeout and a moment.
func TestIntegrationSensingMovesToAnotherWorkerWhenItsWorkerDies(t *testing.T) {
	stack := startStackWith(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}), func(o *devstack.StackOptions) {
		o.Health = fleet.HealthPolicy{Interval: time.Second, RecoveryGrace: time.Second, SensingHeartbeat: 4 * time.Second}
	})
	workers := startWorkerProcesses(t, stack, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)

	// The stack's in-process worker handed the sensing over as it stopped:
	// wait for a worker process to hold it.
	var holder int
	victim := -1
	require.Eventually(t, func() bool {
		holder = sensingWorker(ctx, t, stack, "local-a")
		for i, w := range workers.w {
			if w.PID() == holder {
				victim = i
			}
		}
		return victim >= 0
	}, time.Minute, 100*time.Millisecond, "a worker process senses local-a")
	require.NoError(t, workers.w[victim].Kill())
	killed := time.Now()
	require.NoError(t, stack.Fleet.InjectFault(ctx, "local-a", 2, localfleet.Fault{Kind: localfleet.FaultCrash}, "test"))

	st := waitStatus(ctx, t, stack, "local-a", time.Minute, "the loss of broker 2 is seen", func(st workflows.ClusterStatus) bool {
		return len(st.Losses) > 0
	})
	seen := st.Losses[0].At.Sub(killed)
	t.Logf("worker %d killed; broker 2 crashed; its loss seen %.1f s later (heartbeat timeout 4 s)", holder, seen.Seconds())
	assert.Less(t, seen, 4*time.Second+brokerSessionTimeout+5*time.Second, "within the heartbeat timeout, the session timeout and a moment")
	now := sensingWorker(ctx, t, stack, "local-a")
	assert.NotEqual(t, holder, now, "the other worker senses local-a now")

	op := finished(ctx, t, stack, "local-a", workflows.OpRecovery, 2*time.Minute)
	assert.Equal(t, workflows.StatusSucceeded, op.Status, op.Error)
	_, starts := stopsAndStarts(stack.Fleet.Audit("local-a"))
	assert.Equal(t, map[int32]int{2: 1}, starts, "the lost broker started once")
	noViolations(t, stack, "local-a")
}
