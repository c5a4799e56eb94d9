package integration_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/devstack/tier"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/kafka"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/logging"
	"github.com/kfleet/kfleet/internal/zookeeper"
)

// activityHarness runs kfleet's real activities (real kadm, go-zookeeper and
// aws-sdk-go-v2 clients) against a local fleet and a real ZooKeeper, without
// Temporal: the activity test environment provides heartbeats.
type activityHarness struct {
	fleet *localfleet.Fleet
	spec  fleet.ClusterSpec
	env   *testsuite.TestActivityEnvironment
	acts  *activities.Activities
	// ec2 is the product's EC2 client on the fleet, for checks.
	ec2 *cloud.EC2
}

// startActivityHarness starts the harness's fleet: cluster local-a of
// three brokers on fast timing; configure adjusts that cluster (timing
// included).
func startActivityHarness(t *testing.T, configure ...func(*localfleet.ClusterConfig)) *activityHarness {
	t.Helper()
	tier.Integration(t, tier.ZooKeeper)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := logging.New(zerologTestWriter{t}, false, zerolog.WarnLevel)
	zk, err := devstack.StartZooKeeper(ctx, t.TempDir(), 0, log)
	require.NoError(t, err)
	t.Cleanup(func() { _ = zk.Stop() })
	cfg := fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3})
	for _, c := range configure {
		c(&cfg.Clusters[0])
	}
	f, err := localfleet.Start(ctx, cfg, localfleet.Options{
		ZooKeeper: zk.Addr, DataDir: t.TempDir(), Logger: log,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })

	ep := f.Endpoints()
	kp, zp := kafka.NewPool(), zookeeper.NewPool()
	t.Cleanup(kp.Close)
	t.Cleanup(zp.Close)
	awsCfg := aws.Config{
		Region:      ep.AWS.Region,
		Credentials: credentials.NewStaticCredentialsProvider(ep.AWS.AccessKeyID, ep.AWS.SecretAccessKey, ""),
	}
	ec2 := cloud.NewEC2(awsCfg, ep.AWS.Endpoint)
	acts := &activities.Activities{
		Kafka:        kp,
		ZooKeeper:    zp,
		Hosts:        cloud.NewSSM(awsCfg, ep.AWS.Endpoint),
		Instances:    ec2,
		Quotas:       kp,
		Ensemble:     zookeeper.Ensemble{},
		Log:          log,
		PollInterval: 50 * time.Millisecond,
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	return &activityHarness{acts: acts, fleet: f, spec: devstack.SpecsFromFleet(ep)["local-a"], env: env, ec2: ec2}
}

type zerologTestWriter struct{ t *testing.T }

func (w zerologTestWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func (h *activityHarness) gates(t *testing.T, remaining ...int32) activities.GateReport {
	t.Helper()
	v, err := h.env.ExecuteActivity(h.acts.CheckRestartGates, activities.GateInput{Spec: h.spec, Remaining: remaining})
	require.NoError(t, err)
	var rep activities.GateReport
	require.NoError(t, v.Get(&rep))
	return rep
}

func (h *activityHarness) broker(t *testing.T, activity any, b int32) error {
	t.Helper()
	_, err := h.env.ExecuteActivity(activity, activities.BrokerInput{Spec: h.spec, Broker: b, Reason: "activity test", GracePeriodSeconds: 30})
	return err
}

// TestIntegrationActivitiesAgainstTheFleet walks one broker restart step by
// step through the real activities and checks what each one sees.
func TestIntegrationActivitiesAgainstTheFleet(t *testing.T) {
	t.Parallel() // its own fleet and stack; nothing it asserts depends on the machine being idle
	h := startActivityHarness(t)
	ctx := context.Background()

	rep := h.gates(t, 1, 2, 3)
	require.Empty(t, rep.Blockers, "a fresh cluster is healthy")
	controller, err := h.fleet.Controller("local-a")
	require.NoError(t, err)
	assert.Equal(t, controller, rep.Controller)
	assert.NotEqual(t, controller, rep.Next, "the controller goes last")
	assert.Positive(t, rep.Partitions)
	next := rep.Next

	// A broker stopped behind kfleet's back shuts both gates for the others.
	var other int32
	for _, b := range []int32{1, 2, 3} {
		if b != next {
			other = b
			break
		}
	}
	require.NoError(t, h.fleet.StopBroker(ctx, "local-a", other, "test"))
	rep = h.gates(t, next)
	reasons := ""
	for _, b := range rep.Blockers {
		reasons += b.String() + "\n"
	}
	assert.Contains(t, reasons, "is not registered in ZooKeeper")
	assert.Contains(t, reasons, "availability: stopping broker")
	require.NoError(t, h.fleet.StartBroker(ctx, "local-a", other, "test"))
	require.NoError(t, h.broker(t, h.acts.WaitReplicasInSync, other))
	require.Empty(t, h.gates(t, next).Blockers, "gates open again once it is back in sync")

	// One restart, step by step; stop and start are idempotent.
	require.NoError(t, h.broker(t, h.acts.StopBroker, next))
	require.NoError(t, h.broker(t, h.acts.StopBroker, next), "a retried stop is harmless")
	state, err := h.fleet.BrokerState("local-a", next)
	require.NoError(t, err)
	assert.Equal(t, localfleet.StateStopped, state)
	require.NoError(t, h.broker(t, h.acts.StartBroker, next))
	require.NoError(t, h.broker(t, h.acts.StartBroker, next), "a retried start is harmless")
	require.NoError(t, h.broker(t, h.acts.WaitBrokerRegistered, next))
	require.NoError(t, h.broker(t, h.acts.WaitReplicasInSync, next))
	v, err := h.env.ExecuteActivity(h.acts.ElectPreferredLeaders, activities.BrokerInput{Spec: h.spec, Broker: next})
	require.NoError(t, err)
	var moved int
	require.NoError(t, v.Get(&moved))
	assert.Positive(t, moved, "leadership it lost in the controlled shutdown comes back")

	stops, starts := 0, 0
	for _, e := range h.fleet.Audit("local-a") {
		if e.Broker != next {
			continue
		}
		switch e.Kind {
		case localfleet.EventStop:
			stops++
		case localfleet.EventStart:
			starts++
		}
	}
	assert.Equal(t, 1, stops, "the retried stop did not stop it twice")
	assert.Equal(t, 1, starts, "the retried start did not start it twice")

	// Bad input is refused before anything is touched.
	err = h.broker(t, h.acts.StopBroker, 42)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "broker 42 is not in the cluster spec")
}
