package integration_test

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// buildStarter compiles the operator CLI once per test.
func buildStarter(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "starter")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/kfleet/kfleet/starter").CombinedOutput()
	require.NoError(t, err, "go build starter: %s", out)
	return bin
}

func runStarter(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), code
}

// TestIntegrationStarterRestart drives the operator CLI as a person would:
// a restart that prints progress and exits 0, and the clear failures with
// their exit codes.
func TestIntegrationStarterRestart(t *testing.T) {
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
