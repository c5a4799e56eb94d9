package integration_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// crashLoopHarness has broker 2 of local-a in a "Map failed" crash loop
// whose log recovery, once the limit is raised, takes a few seconds.
func crashLoopHarness(t *testing.T) (*activityHarness, activities.BrokerInput) {
	t.Helper()
	h := startSelfHealHarness(t, func(c *localfleet.ClusterConfig) {
		c.Timing.RecoveryPerSegment = 100 * time.Microsecond
	})
	const broker = 2
	require.NoError(t, h.fleet.InjectFault(context.Background(), "local-a", broker, localfleet.Fault{Kind: localfleet.FaultCrashLoop}, "test"))
	bin := activities.BrokerInput{Spec: h.spec, Broker: broker, Reason: "wait activity test"}
	var d activities.Diagnosis
	require.NoError(t, h.run(t, h.acts.DiagnoseBroker, bin, &d))
	fix, ok := fleet.FixFor(d.Cause, d.Segments, d.MaxMapCount, d.Nofile)
	require.True(t, ok, "diagnosis %+v", d)
	require.NoError(t, h.run(t, h.acts.SetHostLimit, activities.LimitInput{Spec: h.spec, Broker: broker, Name: fix.Name, Value: fix.To, Reason: fix.Cause}, nil))
	// A recovery starts once the crashed broker's registration is gone
	// (its ZooKeeper session expired) and the controller moved its
	// leaders: so do these tests.
	require.Eventually(t, func() bool {
		ids, err := h.acts.ZooKeeper.BrokerIDs(context.Background(), h.spec)
		return err == nil && !slices.Contains(ids, int32(broker))
	}, time.Minute, 50*time.Millisecond, "the crashed broker's registration expires")
	require.Eventually(t, func() bool {
		_, partitions, err := h.acts.Kafka.Replication(context.Background(), h.spec)
		return err == nil && !slices.ContainsFunc(partitions, fleet.Partition.Offline)
	}, time.Minute, 50*time.Millisecond, "its partitions have new leaders")
	return h, bin
}

// TestIntegrationRecoveryWaitActivitiesAgainstTheFleet runs a recovery's
// waits against the fleet: the grace ends on a crashed broker, then after
// the start one wait reports log recovery and the next one lasts until the
// broker is registered, never touching it.
func TestIntegrationRecoveryWaitActivitiesAgainstTheFleet(t *testing.T) {
	t.Parallel() // its own fleet and stack; nothing it asserts depends on the machine being idle
	h, bin := crashLoopHarness(t)

	began := time.Now()
	var obs activities.BrokerObservation
	require.NoError(t, h.run(t, h.acts.WaitBrokerGrace, activities.GraceInput{BrokerInput: bin, Until: began.Add(300 * time.Millisecond)}, &obs))
	assert.False(t, obs.Registered)
	assert.False(t, fleet.ProcessUp(obs.Process), "a crash loop is not up: %q", obs.Process)
	assert.GreaterOrEqual(t, time.Since(began), 300*time.Millisecond, "the grace is waited out")

	require.NoError(t, h.run(t, h.acts.StartBroker, bin, nil))
	in := activities.ComeBackInput{BrokerInput: bin, Since: time.Now(), StallTimeout: time.Minute}
	var back activities.BrokerBack
	require.NoError(t, h.run(t, h.acts.WaitBrokerBack, in, &back))
	require.Equal(t, fleet.ComeBackRecovering, back.Verdict, "%+v", back)
	assert.Positive(t, back.Observation.LogsLeft)

	in.Recovering, in.Last = true, back.Last
	require.NoError(t, h.run(t, h.acts.WaitBrokerBack, in, &back))
	assert.Equal(t, fleet.ComeBackRegistered, back.Verdict, "%+v", back)
	assert.Positive(t, back.LogRecovery, "log recovery took a while")
	assert.Positive(t, back.Pace.PerMin, "and had a pace")

	starts := 0
	for _, e := range h.fleet.Audit("local-a") {
		if e.Broker == bin.Broker && e.Kind == localfleet.EventStart {
			starts++
		}
		assert.NotEqual(t, localfleet.EventStop, e.Kind, "the waits never stop a broker")
	}
	assert.Equal(t, 1, starts, "started once, by the test")
	assert.Empty(t, h.fleet.Violations("local-a"))
}

// TestIntegrationRollGateWaitOutlastsItsTimeoutWhileRecoveryAdvances: the
// next broker of a roll recovers its logs for seconds; WaitRestartGates
// waits it out well past its one-second timeout, because recovery
// advances, and answers once every gate is open.
func TestIntegrationRollGateWaitOutlastsItsTimeoutWhileRecoveryAdvances(t *testing.T) {
	h, bin := crashLoopHarness(t)
	require.NoError(t, h.run(t, h.acts.StartBroker, bin, nil))

	began := time.Now()
	in := activities.GateWaitInput{Gates: activities.GateInput{Spec: h.spec, Remaining: []int32{bin.Broker}}, Timeout: time.Second, PollInterval: 100 * time.Millisecond}
	var w activities.GateWait
	require.NoError(t, h.run(t, h.acts.WaitRestartGates, in, &w))

	assert.False(t, w.TimedOut)
	assert.Empty(t, w.Report.Blockers, "it answers once every gate is open")
	assert.Equal(t, bin.Broker, w.Report.Next)
	assert.Greater(t, time.Since(began), 2*time.Second, "log recovery outlasted the timeout")
	assert.Greater(t, w.Checks, 10)
	assert.Empty(t, h.fleet.Violations("local-a"))
}
