package integration_test

import (
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/app"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// TestIntegrationCrashSafetyKillWorker kills the worker process with
// SIGKILL at random moments of a roll (KFLEET_CHAOS_KILLS times, default
// 5; `make chaos` does many more), starting a new one each time, and shows
// from the fleet's audit that the roll still completes with each broker
// stopped and started exactly once and nothing unsafe on the way.
func TestIntegrationCrashSafetyKillWorker(t *testing.T) {
	kills := 5
	if v, err := strconv.Atoi(os.Getenv("KFLEET_CHAOS_KILLS")); err == nil && v > 0 {
		kills = v
	}
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("KFLEET_CHAOS_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("KFLEET_CHAOS_SEED=%d KFLEET_CHAOS_KILLS=%d", seed, kills)
	rng := rand.New(rand.NewPCG(seed, seed))

	stack := startStack(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}))
	stack.StopWorker() // the in-process worker only served registration
	bin := filepath.Join(t.TempDir(), "worker")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/kfleet/kfleet/worker").CombinedOutput()
	require.NoError(t, err, "go build worker: %s", out)
	logs := t.TempDir()
	w, err := stack.StartWorkerProcess(bin, logs)
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.Kill() })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	op, err := app.RequestRestart(ctx, stack.Client, "local-a", workflows.RestartRequest{RequestedBy: "chaos"})
	require.NoError(t, err)

	done := make(chan error, 1)
	var res workflows.RollingRestartResult
	go func() {
		var err error
		res, err = app.FollowOperation(ctx, stack.Client, "local-a", op.ID, 200*time.Millisecond, func(app.Progress) {})
		done <- err
	}()
	killed := 0
	seen := 0 // audit events when the last worker was started
kill:
	for killed < kills {
		// Let the new worker make progress first, so the kills spread
		// over the whole roll instead of piling up on one step.
		for len(stack.Fleet.Audit("local-a")) == seen {
			select {
			case err := <-done:
				done <- err
				break kill
			case <-time.After(50 * time.Millisecond):
			}
		}
		select {
		case err := <-done:
			done <- err
			break kill
		case <-time.After(time.Duration(rng.IntN(1500)) * time.Millisecond):
		}
		require.NoError(t, w.Kill())
		killed++
		stops, _ := stopsAndStarts(stack.Fleet.Audit("local-a"))
		t.Logf("kill %d: worker killed; brokers stopped so far %v", killed, stops)
		seen = len(stack.Fleet.Audit("local-a"))
		w, err = stack.StartWorkerProcess(bin, logs)
		require.NoError(t, err)
	}
	require.NoError(t, <-done, "the roll completes despite %d kills (worker logs in %s)", killed, logs)
	t.Logf("roll completed after %d worker kills", killed)
	require.Len(t, res.Brokers, 3)

	stops, starts := stopsAndStarts(stack.Fleet.Audit("local-a"))
	assert.Equal(t, map[int32]int{1: 1, 2: 1, 3: 1}, stops, "each broker stopped exactly once")
	assert.Equal(t, map[int32]int{1: 1, 2: 1, 3: 1}, starts, "each broker started exactly once")
	assert.Empty(t, stack.Fleet.Violations("local-a"), "never two down, never under min ISR")
}

// TestIntegrationCrashSafetyRestartTemporal restarts the Temporal server in
// the middle of a roll: the roll resumes from its persisted history and
// completes, each broker restarted exactly once.
func TestIntegrationCrashSafetyRestartTemporal(t *testing.T) {
	cc := localfleet.ClusterConfig{ID: "local-a", Brokers: 3}
	cfg := fastFleet(cc)
	// Slow enough that the restart lands mid-roll.
	cfg.Clusters[0].Timing.CatchUp = 2 * time.Second
	stack := startStack(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	op, err := app.RequestRestart(ctx, stack.Client, "local-a", workflows.RestartRequest{RequestedBy: "chaos"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		stops, _ := stopsAndStarts(stack.Fleet.Audit("local-a"))
		return len(stops) >= 1
	}, time.Minute, 50*time.Millisecond, "the roll has begun")
	require.NoError(t, stack.Temporal.Restart(ctx))
	stops, _ := stopsAndStarts(stack.Fleet.Audit("local-a"))
	t.Logf("Temporal restarted with brokers stopped so far %v", stops)

	res, err := app.FollowOperation(ctx, stack.Client, "local-a", op.ID, 200*time.Millisecond, func(app.Progress) {})
	require.NoError(t, err)
	require.Len(t, res.Brokers, 3)
	stops, starts := stopsAndStarts(stack.Fleet.Audit("local-a"))
	assert.Equal(t, map[int32]int{1: 1, 2: 1, 3: 1}, stops, "each broker stopped exactly once")
	assert.Equal(t, map[int32]int{1: 1, 2: 1, 3: 1}, starts, "each broker started exactly once")
	assert.Empty(t, stack.Fleet.Violations("local-a"))
}
