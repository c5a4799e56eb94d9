package localfleet_test

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/devstack/tier"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// testTiming keeps simulated transitions short but distinct, so tests can
// observe the states in between.
var testTiming = localfleet.Timing{
	ControlledShutdown: 50 * time.Millisecond,
	Startup:            50 * time.Millisecond,
	CatchUp:            300 * time.Millisecond,
}

func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel).With().Timestamp().Logger()
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startZooKeeper starts a real ZooKeeper for one test.
func startZooKeeper(t *testing.T) *devstack.ZooKeeper {
	t.Helper()
	tier.Integration(t, tier.ZooKeeper)
	z, err := devstack.StartZooKeeper(testContext(t), t.TempDir(), 0, testLogger(t))
	require.NoError(t, err)
	t.Cleanup(func() { _ = z.Stop() })
	return z
}

// testCluster is the one-cluster configuration most tests use.
func testCluster(id string) localfleet.ClusterConfig {
	return localfleet.ClusterConfig{ID: id, Brokers: 3, Timing: testTiming}
}

// startFleet starts a fleet (and its own ZooKeeper) for one test.
func startFleet(t *testing.T, cfg localfleet.Config) (*localfleet.Fleet, *devstack.ZooKeeper) {
	t.Helper()
	z := startZooKeeper(t)
	f, err := localfleet.Start(testContext(t), cfg, localfleet.Options{ZooKeeper: z.Addr, DataDir: t.TempDir(), Logger: testLogger(t)})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, f.Close()) })
	return f, z
}

// kafkaClient returns a kgo client and a kadm client bootstrapped through
// the cluster's proxies, as the product connects.
func kafkaClient(t *testing.T, f *localfleet.Fleet, cluster string, opts ...kgo.Opt) (*kgo.Client, *kadm.Client) {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.SeedBrokers(f.Endpoints().Clusters[cluster].Bootstrap...),
		kgo.MetadataMinAge(50 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
	}, opts...)
	cl, err := kgo.NewClient(opts...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

// metadata returns fresh metadata as clients see it. kadm.Metadata answers
// from kgo's cache (up to MetadataMinAge old) unless authorized operations
// are requested, which forces a real request.
func metadata(t *testing.T, adm *kadm.Client) kadm.Metadata {
	t.Helper()
	m, err := adm.Metadata(kadm.WithAuthorizedOps(testContext(t)))
	require.NoError(t, err)
	return m
}

// waitInSync waits until broker has rejoined every ISR n times in total,
// as a careful operator waits before touching the next broker.
func waitInSync(t *testing.T, f *localfleet.Fleet, cluster string, broker int32, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		count := 0
		for _, e := range f.Audit(cluster) {
			if e.Broker == broker && e.Kind == localfleet.EventInSync {
				count++
			}
		}
		return count >= n
	}, 10*time.Second, 20*time.Millisecond, "broker %d in sync", broker)
}
