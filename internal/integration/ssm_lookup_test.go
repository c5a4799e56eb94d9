package integration_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// crashAfterSend is the product's SSM runner, except that it cuts off the
// next crashes sends once SSM has taken the command, as a worker killed
// between SendCommand returning and its heartbeat: the attempt fails and
// its retry has no command id. It records what FindCommand found.
type crashAfterSend struct {
	activities.HostRunner
	mu      sync.Mutex
	crashes int
	// waitEnd lets the command end on the host before the crash.
	waitEnd bool
	sent    []string // ids of the commands cut off
	found   []string // FindCommand's answers ("" for none)
}

func (c *crashAfterSend) Send(ctx context.Context, instance, document string, params map[string]string, comment string) (string, error) {
	id, err := c.HostRunner.Send(ctx, instance, document, params, comment)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil || c.crashes == 0 {
		return id, err
	}
	c.crashes--
	c.sent = append(c.sent, id)
	if c.waitEnd {
		_, _ = c.HostRunner.Wait(ctx, instance, document, id, func() {})
	}
	return "", errors.New("worker killed before its heartbeat")
}

func (c *crashAfterSend) FindCommand(ctx context.Context, instance, document, mark string, since time.Time) (string, error) {
	id, err := c.HostRunner.FindCommand(ctx, instance, document, mark, since)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.found = append(c.found, id)
	return id, err
}

// retriedStep runs one activity, by name, with one retry, which the SDK's
// test suite makes as Temporal does: the same activity id and first
// scheduled time, the last heartbeat's details (none here), attempt 2.
func retriedStep(ctx workflow.Context, activity string, in any) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 10 * time.Millisecond, MaximumAttempts: 2},
	})
	return workflow.ExecuteActivity(ctx, activity, in).Get(ctx, nil)
}

// runRetried runs activity on the harness's activities in workflow id.
func (h *activityHarness) runRetried(t *testing.T, id, activity string, in any) error {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestWorkflowEnvironment()
	env.SetTestTimeout(time.Minute)
	env.RegisterActivity(h.acts)
	env.RegisterWorkflow(retriedStep)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: id})
	env.ExecuteWorkflow(retriedStep, activity, in)
	require.True(t, env.IsWorkflowCompleted())
	return env.GetWorkflowError()
}

// TestIntegrationActivitiesStepFindsItsCommand: a step whose first attempt
// died between SendCommand and its heartbeat finds the command it sent
// through ListCommands (the real aws-sdk-go-v2 client against the fleet's
// SSM) by the step's mark, and follows it, so the host sees one command;
// another step's command is not followed; a command that failed is sent
// again; bad input sends nothing and asks SSM nothing.
func TestIntegrationActivitiesStepFindsItsCommand(t *testing.T) {
	t.Parallel() // its own fleet and stack; nothing it asserts depends on the machine being idle
	h := startActivityHarness(t)
	ctx := context.Background()
	runner := &crashAfterSend{HostRunner: h.acts.Hosts}
	h.acts.Hosts = runner
	const broker = 1
	commands := func(document string) int { return h.fleet.CommandCounts("local-a")[broker][document] }
	events := func(kind localfleet.EventKind) int {
		n := 0
		for _, e := range h.fleet.Audit("local-a") {
			if e.Broker == broker && e.Kind == kind {
				n++
			}
		}
		return n
	}

	// The crashed attempt's start is followed by the retry: one command,
	// one start.
	require.NoError(t, h.fleet.StopBroker(ctx, "local-a", broker, "test"))
	start := activities.BrokerInput{Spec: h.spec, Broker: broker, Reason: "cluster/local-a/roll/1"}
	runner.crashes = 1
	require.NoError(t, h.runRetried(t, "cluster/local-a/roll/1", "StartBroker", start))
	require.Len(t, runner.sent, 1)
	assert.Equal(t, []string{"", runner.sent[0]}, runner.found, "the retry found the command the first attempt sent")
	assert.Equal(t, 1, commands(cloud.DocStartBroker), "one command for the step")
	assert.Equal(t, 1, events(localfleet.EventStart), "one start")
	state, err := h.fleet.BrokerState("local-a", broker)
	require.NoError(t, err)
	assert.Equal(t, localfleet.StateRunning, state)

	// Another step (another workflow) has its own mark: it does not
	// follow that command, still in the lookup's window, but sends one.
	runner.found = nil
	require.NoError(t, h.runRetried(t, "cluster/local-a/roll/2", "StartBroker", start))
	assert.Equal(t, []string{""}, runner.found)
	assert.Equal(t, 2, commands(cloud.DocStartBroker))

	// A command that failed on the host (the volume is far from the
	// target) is a try of its own: the retry finds none to follow and
	// sends again.
	grow := activities.ExpandInput{Spec: h.spec, Broker: broker, TargetGiB: fleet.MaxVolumeGiB, Reason: "cluster/local-a/expand/1"}
	runner.crashes, runner.waitEnd, runner.sent, runner.found = 1, true, nil, nil
	err = h.runRetried(t, "cluster/local-a/expand/1", "GrowFilesystem", grow)
	require.ErrorContains(t, err, "command failed on host")
	assert.Equal(t, []string{"", ""}, runner.found, "the failed command is not followed")
	assert.Equal(t, 2, commands(cloud.DocGrowFilesystem), "the retry sent again")
	assert.Zero(t, events(localfleet.EventFilesystemGrown))

	// Bad input changes nothing and asks SSM nothing.
	before, audit := h.fleet.CommandCounts("local-a"), len(h.fleet.Audit("local-a"))
	runner.found = nil
	badBroker := start
	badBroker.Broker = 42
	require.ErrorContains(t, h.runRetried(t, "cluster/local-a/roll/3", "StartBroker", badBroker), "broker 42 is not in the cluster spec")
	badSize := grow
	badSize.TargetGiB = 0
	require.ErrorContains(t, h.runRetried(t, "cluster/local-a/expand/2", "GrowFilesystem", badSize), "target size 0 GiB")
	assert.True(t, maps.EqualFunc(before, h.fleet.CommandCounts("local-a"), maps.Equal), "no command sent")
	assert.Len(t, h.fleet.Audit("local-a"), audit, "nothing changed on the hosts")
	assert.Empty(t, runner.found, "SSM was not asked")
}
