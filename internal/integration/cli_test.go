package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/devstack/tier"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// buildStarter compiles the operator CLI once per test.
func buildStarter(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "starter")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/kfleet/kfleet/starter").CombinedOutput()
	require.NoError(t, err, "go build starter: %s", out)
	return bin
}

// buildStarterAsync compiles the operator CLI in the background, for a
// test to start its stack meanwhile. It skips the test under -short first:
// a build started before the stack's own skip would outlive the test.
func buildStarterAsync(t *testing.T) <-chan string {
	t.Helper()
	tier.Integration(t, tier.Temporal, tier.ZooKeeper)
	bin := make(chan string, 1)
	go func() { bin <- buildStarter(t) }()
	return bin
}

// runStarter runs the CLI and returns what it printed (stdout and stderr)
// and its exit code.
func runStarter(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	var out bytes.Buffer
	code := execStarter(t, bin, &out, &out, args...)
	return out.String(), code
}

// runStarterJSON runs the CLI with --json and decodes its stdout into v
// when it exits 0; stderr is returned for messages.
func runStarterJSON(t *testing.T, bin string, v any, args ...string) (string, int) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := execStarter(t, bin, &stdout, &stderr, append(args, "--json")...)
	if code == 0 {
		require.NoError(t, json.Unmarshal(stdout.Bytes(), v), "stdout is one JSON document: %s", stdout.String())
	}
	return stderr.String(), code
}

func execStarter(t *testing.T, bin string, stdout, stderr *bytes.Buffer, args ...string) int {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	require.NoError(t, err)
	return 0
}

// TestIntegrationStarterRestart drives the operator CLI as a person would:
// a restart that prints progress and exits 0, and the clear failures with
// their exit codes.
func TestIntegrationStarterRestart(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	stack := startStack(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}))
	bin := buildStarter(t)

	out, code := runStarter(t, bin, "restart", "--address", stack.Temporal.Addr, "--cluster", "local-a", "--requested-by", "cli-test")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "rolling restart")
	assert.Contains(t, out, "completed")
	for _, b := range []string{"broker 1", "broker 2", "broker 3"} {
		assert.Contains(t, out, b)
	}
	assert.Empty(t, stack.Fleet.Violations("local-a"))

	out, code = runStarter(t, bin, "restart", "--address", stack.Temporal.Addr, "--cluster", "nope")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "unknown cluster")

	out, code = runStarter(t, bin, "restart", "--address", stack.Temporal.Addr)
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "--cluster is required")

	port, err := devstack.FreePort()
	require.NoError(t, err)
	start := time.Now()
	out, code = runStarter(t, bin, "restart", "--address", "127.0.0.1:"+strconv.Itoa(port), "--cluster", "local-a")
	assert.Equal(t, 3, code, out)
	assert.Contains(t, out, "cannot reach Temporal")
	t.Logf("unreachable Temporal reported in %s", time.Since(start).Round(time.Millisecond))
}

// TestIntegrationCLICommands drives every other command of the operator CLI
// against the local stack: the human and --json views, requests that are
// admitted, and bad input that exits 2 with a clear message and starts
// nothing.
func TestIntegrationCLICommands(t *testing.T) {
	t.Parallel()                // mostly waiting: beside the other long tests
	bin := buildStarterAsync(t) // while the stack starts
	stack := startStack(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3,
		Volume: localfleet.VolumeConfig{Modifying: 300 * time.Millisecond, Optimizing: time.Second}}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	starter := <-bin
	run := func(args ...string) (string, int) {
		t.Helper()
		return runStarter(t, starter, append(args, "--address", stack.Temporal.Addr)...)
	}
	// nothingStarted: a refused request leaves the entity and the fleet as
	// they were.
	nothingStarted := func(what string, history, audit int) {
		t.Helper()
		st, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
		require.NoError(t, err)
		assert.Nil(t, st.Running, what)
		assert.Empty(t, st.Queue, what)
		assert.Empty(t, st.Urgent, what)
		assert.Len(t, st.History, history, what)
		assert.Len(t, stack.Fleet.Audit("local-a"), audit, what)
	}

	// status: a human summary by default, the whole status with --json.
	out, code := run("status", "--cluster", "local-a")
	require.Equal(t, 0, code, out)
	for _, want := range []string{"cluster local-a: 3 brokers [1 2 3]", "paused", "running: nothing", "queue:   empty", "open losses: none", "health"} {
		assert.Contains(t, out, want)
	}
	var st workflows.ClusterStatus
	out, code = runStarterJSON(t, starter, &st, "status", "--cluster", "local-a", "--address", stack.Temporal.Addr)
	require.Equal(t, 0, code, out)
	assert.Equal(t, "local-a", st.Spec.ID)
	assert.Equal(t, []int32{1, 2, 3}, st.Spec.BrokerIDs())
	out, code = run("cluster", "status", "--cluster", "local-a")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "cluster local-a: 3 brokers")

	// cluster list, from Temporal's visibility (eventually consistent).
	require.Eventually(t, func() bool {
		out, code = run("cluster", "list")
		return code == 0 && strings.Contains(out, "local-a")
	}, 10*time.Second, 200*time.Millisecond, "cluster list shows local-a: %s", out)
	var clusters []entity.ClusterSummary
	out, code = runStarterJSON(t, starter, &clusters, "cluster", "list", "--address", stack.Temporal.Addr)
	require.Equal(t, 0, code, out)
	require.Len(t, clusters, 1)
	assert.Equal(t, "local-a", clusters[0].ID)

	// Bad input: exit 2, a clear message, nothing started.
	audit := len(stack.Fleet.Audit("local-a"))
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"expand", "--cluster", "local-a", "--broker", "9"}, "broker 9 is not in cluster local-a (brokers [1 2 3])"},
		{[]string{"expand", "--cluster", "local-a"}, "--broker is required"},
		{[]string{"expand", "--cluster", "nope", "--broker", "1"}, "unknown cluster"},
		{[]string{"expand", "--cluster", "Local_A", "--broker", "1"}, `--cluster "Local_A": want 1-63 characters`},
		{[]string{"cleaner-check", "--cluster", "local-a", "--brokers", "1,7"}, "broker 7 is not in cluster local-a"},
		{[]string{"upgrade", "--cluster", "local-a", "--version", "3.7"}, "want major.minor.patch, like 3.7.1"},
		{[]string{"upgrade", "--cluster", "local-a", "--version", "latest"}, "want major.minor.patch, like 3.7.1"},
		{[]string{"restart", "--cluster", "local-a", "--batch", "0"}, "--batch 0: want 1"},
		{[]string{"restart", "--cluster", "local-a", "--batch", "4"}, "--batch 4: want 1..3 (local-a has 3 brokers)"},
		{[]string{"restart", "--cluster", "local-a", "--brokers", "5"}, "broker 5 is not in cluster local-a"},
		{[]string{"approve", "--cluster", "local-a"}, "no operation is waiting for a human"},
		{[]string{"skip", "--cluster", "local-a"}, "no operation is waiting for a human"},
		{[]string{"abort", "--cluster", "local-a", "--operation", "roll-9"}, `operation "roll-9" is not running`},
		{[]string{"decide", "--cluster", "local-a", "resume"}, "no operation is waiting for a human"},
		{[]string{"approve"}, "--cluster (a paused operation) or --approval (a chat request) is required"},
		{[]string{"approve", "--approval", "cluster/local-a/approval/none"}, "not found"},
		{[]string{"deny"}, "--approval is required"},
		{[]string{"resume", "--cluster", "local-a"}, "not paused"},
	} {
		out, code := run(bad.args...)
		assert.Equal(t, 2, code, "%v: %s", bad.args, out)
		assert.Contains(t, out, bad.want, bad.args)
		assert.NotContains(t, out, "(type: ", "%v: the entity's refusal reads as its message", bad.args)
	}
	nothingStarted("after bad input", 0, audit)

	// A cleaner check, admitted and followed to its end (--json: one document).
	var check struct{ Operation workflows.Operation }
	out, code = runStarterJSON(t, starter, &check, "cleaner-check", "--cluster", "local-a", "--requested-by", "cli-test", "--wait", "--address", stack.Temporal.Addr)
	require.Equal(t, 0, code, out)
	assert.Equal(t, workflows.OpCleanerHealth, check.Operation.Kind)
	assert.Equal(t, workflows.StatusSucceeded, check.Operation.Status)
	assert.Equal(t, "cli-test", check.Operation.RequestedBy)
	out, code = run("cleaner-check", "--cluster", "local-a", "--requested-by", "cli-test")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "queued cleaner-health")
	finishedOp(ctx, t, stack, "local-a", 2)

	// An expansion of broker 2, then a second one inside EBS's cool-down:
	// refused with the time of the next allowed change.
	out, code = run("expand", "--cluster", "local-a", "--broker", "2", "--reason", "cli test", "--requested-by", "cli-test", "--wait")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "queued volume-expansion")
	assert.Contains(t, out, "succeeded")
	audit = len(stack.Fleet.Audit("local-a"))
	out, code = run("expand", "--cluster", "local-a", "--broker", "2")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "EBS allows the next change at")
	nothingStarted("after the refused expansion", 3, audit)

	// The status shows what happened, newest first.
	out, code = run("status", "--cluster", "local-a")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "history (newest first, 3 of 3)")
	assert.Contains(t, out, "volume-expansion")
	assert.Contains(t, out, "cool-down until")

	// A chat approval: neither the requester nor a stranger may approve it.
	approval, err := entity.Propose(ctx, stack.Client, activities.Action{Verb: "cleaner-check", Cluster: "local-a", RequestedBy: "bob"}, []string{"alice"}, "cli-test-1")
	require.NoError(t, err)
	out, code = run("approve", "--approval", approval, "--by", "bob")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "a second, different person must approve it")
	out, code = run("approve", "--approval", "cli-test-1", "--cluster", "local-a", "--by", "mallory")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "mallory may not approve")
	out, code = run("approve", "--approval", approval, "--by", "alice", "--reason", "looks right")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "approved cleaner-check of local-a asked by bob (by alice)")
	out, code = run("deny", "--approval", approval, "--by", "alice")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "already approved")
	noViolations(t, stack, "local-a")
}

// finishedOp waits until the entity has n finished operations and none
// queued or running.
func finishedOp(ctx context.Context, t *testing.T, stack *devstack.Stack, cluster string, n int) {
	t.Helper()
	waitStatus(ctx, t, stack, cluster, time.Minute, "operations finish", func(st workflows.ClusterStatus) bool {
		return st.Running == nil && len(st.Queue) == 0 && len(st.Urgent) == 0 && len(st.History) >= n
	})
}
