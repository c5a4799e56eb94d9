package integration_test

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/devstack/tier"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/logging"
)

// temporalBinary finds the pinned temporal CLI: KFLEET_TEMPORAL_BIN (set by
// make) or bin/temporal at the repository root.
func temporalBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KFLEET_TEMPORAL_BIN"); p != "" {
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "bin", "temporal")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("temporal CLI not built (%v): run `make tools` or `make test`", err)
	}
	return p
}

// fastFleet is a fleet config whose brokers stop, start and catch up in
// fractions of a second, so a roll of a 3-broker cluster takes seconds.
func fastFleet(clusters ...localfleet.ClusterConfig) localfleet.Config {
	timing := localfleet.Timing{ControlledShutdown: 100 * time.Millisecond, Startup: 150 * time.Millisecond, CatchUp: 300 * time.Millisecond}
	for i := range clusters {
		clusters[i].Timing = timing
	}
	return localfleet.Config{Clusters: clusters}
}

// startStack starts a whole local stack on free ports in a temporary
// folder, stopped when the test ends.
// testSensingHeartbeat is the sensing heartbeat timeout of the test
// stacks (production: fleet.DefaultSensingHeartbeat).
const testSensingHeartbeat = 5 * time.Second

func startStack(t testing.TB, cfg localfleet.Config) *devstack.Stack {
	t.Helper()
	return startStackWith(t, cfg, nil)
}

// startStackWith is startStack with options changed by edit.
func startStackWith(t testing.TB, cfg localfleet.Config, edit func(*devstack.StackOptions)) *devstack.Stack {
	t.Helper()
	tier.Integration(t, tier.Temporal, tier.ZooKeeper)
	// Registering an entity takes ~0.1 s on this machine: a fleet of
	// thousands (the scale benchmark) needs minutes more.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute+time.Duration(len(cfg.Clusters))*200*time.Millisecond)
	defer cancel()
	level := zerolog.WarnLevel
	if testing.Verbose() {
		level = zerolog.InfoLevel
	}
	opts := devstack.StackOptions{
		Dir:                t.TempDir(),
		TemporalBinary:     temporalBinary(t),
		Fleet:              cfg,
		WorkerPollInterval: 100 * time.Millisecond,
		Log:                logging.New(os.Stderr, true, level),
	}
	if edit != nil {
		edit(&opts)
	}
	if opts.Health.SensingHeartbeat == 0 {
		// Tests kill workers: another takes a cluster's sensing over within
		// seconds, not production's minutes.
		opts.Health.SensingHeartbeat = testSensingHeartbeat
	}
	stack, err := devstack.StartStack(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(stack.Close)
	return stack
}
