package activities_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/metrics"
)

// ---- fakes for the waits: a cluster that changes while they poll ----

// liveRegistrations are the registered brokers, changed by the test (or by
// registerAfter) while a wait polls.
type liveRegistrations struct {
	fakeRegistrations
	mu    sync.Mutex
	ids   []int32
	reads int
	// registerAfter registers a broker once the ids were read this often.
	registerAfter map[int32]int
}

func (f *liveRegistrations) BrokerIDs(context.Context, fleet.ClusterSpec) ([]int32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	for id, n := range f.registerAfter {
		if f.reads > n && !slices.Contains(f.ids, id) {
			f.ids = append(f.ids, id)
		}
	}
	return slices.Clone(f.ids), nil
}

// fakeKafka serves a fixed controller and partitions.
type fakeKafka struct {
	controller int32
	partitions []fleet.Partition
}

func (f fakeKafka) Replication(context.Context, fleet.ClusterSpec) (int32, []fleet.Partition, error) {
	return f.controller, f.partitions, nil
}

func (fakeKafka) ElectPreferredLeaders(context.Context, fleet.ClusterSpec, []fleet.Partition) error {
	return nil
}

// recoveringMetrics is a broker recovering its logs: each scrape of url
// finds step fewer logs left, down to floor (a stall there; 0: none are
// left and it runs). Every other broker is healthy.
type recoveringMetrics struct {
	mu    sync.Mutex
	url   string
	left  int
	step  int
	floor int
}

func (f *recoveringMetrics) Scrape(_ context.Context, url string) (metrics.BrokerMetrics, error) {
	m := healthyMetrics()
	if url != f.url {
		return m, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.left > 0 {
		m.BrokerState, m.LogsLeftToRecover = metrics.BrokerRecovery, f.left
		f.left = max(f.floor, f.left-f.step)
	}
	return m, nil
}

func replicated(ids ...int32) []fleet.Partition {
	return []fleet.Partition{{Topic: "t", Partition: 0, Leader: ids[0], Replicas: ids, ISR: ids, MinISR: 2}}
}

// waitUnit is the activities over a 3-broker cluster whose controller is
// broker 3, so a roll's next broker is 1.
func waitUnit(t *testing.T) (*unit, *liveRegistrations) {
	t.Helper()
	u := newUnit(t)
	zk := &liveRegistrations{ids: []int32{1, 2, 3}}
	u.acts.ZooKeeper = zk
	u.acts.Kafka = fakeKafka{controller: 3, partitions: replicated(1, 2, 3)}
	for _, b := range []string{"http://b1/metrics", "http://b2/metrics", "http://b3/metrics"} {
		u.m.set(b, healthyMetrics())
	}
	return u, zk
}

// heartbeats collects the details a wait heartbeats, decoded into T.
func heartbeats[T any](t *testing.T, u *unit) func() []T {
	t.Helper()
	var mu sync.Mutex
	var got []T
	u.env.SetOnActivityHeartbeatListener(func(_ *activity.Info, details converter.EncodedValues) {
		var v T
		if details.Get(&v) == nil {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, v)
		}
	})
	return func() []T {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

func gateWait(u *unit, timeout time.Duration) activities.GateWaitInput {
	return activities.GateWaitInput{Gates: activities.GateInput{Spec: u.spec, Remaining: []int32{1, 2, 3}}, Timeout: timeout, PollInterval: 2 * time.Millisecond}
}

// ---- WaitRestartGates ----

func TestWaitRestartGatesAnswersAtOnceWhenOpen(t *testing.T) {
	u, _ := waitUnit(t)
	var w activities.GateWait
	require.NoError(t, u.exec(t, u.acts.WaitRestartGates, gateWait(u, time.Minute), &w))
	assert.Empty(t, w.Report.Blockers)
	assert.Equal(t, int32(1), w.Report.Next, "the controller goes last")
	assert.Equal(t, 1, w.Checks)
	assert.False(t, w.TimedOut)
}

func TestWaitRestartGatesWaitsUntilTheGatesOpen(t *testing.T) {
	u, zk := waitUnit(t)
	zk.ids, zk.registerAfter = []int32{1, 3}, map[int32]int{2: 5}
	beats := heartbeats[activities.GateWaitProgress](t, u)
	var w activities.GateWait
	require.NoError(t, u.exec(t, u.acts.WaitRestartGates, gateWait(u, time.Minute), &w))

	assert.Empty(t, w.Report.Blockers, "it returns once every gate is open")
	assert.False(t, w.TimedOut)
	assert.Equal(t, 6, w.Checks, "five checks found broker 2 unregistered")
	// The test environment records the first heartbeat only (the SDK
	// throttles the rest to one per 30 s without a heartbeat timeout).
	require.NotEmpty(t, beats())
	last := beats()[0]
	assert.Contains(t, last.First, "broker 2 is not registered", "the heartbeat shows what the wait waits on")
	assert.Equal(t, 1, last.Blockers)
	assert.False(t, last.Wait.Deadline.IsZero(), "and the deadline a retry resumes from")
}

func TestWaitRestartGatesTimesOut(t *testing.T) {
	u, zk := waitUnit(t)
	zk.ids = []int32{1, 3}
	began := time.Now()
	var w activities.GateWait
	require.NoError(t, u.exec(t, u.acts.WaitRestartGates, gateWait(u, 30*time.Millisecond), &w))

	assert.True(t, w.TimedOut)
	assert.GreaterOrEqual(t, time.Since(began), 30*time.Millisecond)
	require.Len(t, w.Report.Blockers, 1)
	assert.Contains(t, w.Report.Blockers[0].Reason, "broker 2 is not registered")
	assert.Greater(t, w.Checks, 1)
}

func TestWaitRestartGatesReportsAPermanentBlockerAtOnce(t *testing.T) {
	u, _ := waitUnit(t)
	u.acts.Kafka = fakeKafka{controller: 3, partitions: replicated(1, 2)} // RF 2, min ISR 2
	var w activities.GateWait
	require.NoError(t, u.exec(t, u.acts.WaitRestartGates, gateWait(u, time.Minute), &w))

	assert.Equal(t, 1, w.Checks, "no wait can open it")
	assert.False(t, w.TimedOut)
	require.NotEmpty(t, w.Report.Blockers)
	assert.True(t, w.Report.Blockers[0].Permanent)
}

func TestWaitRestartGatesWaitsOutARecoveryThatAdvances(t *testing.T) {
	u, _ := waitUnit(t)
	u.acts.Metrics = &recoveringMetrics{url: "http://b1/metrics", left: 40, step: 2}
	var w activities.GateWait
	// 20 checks 2 ms apart: far past a 10 ms timeout, but recovery
	// advances at every check.
	require.NoError(t, u.exec(t, u.acts.WaitRestartGates, gateWait(u, 10*time.Millisecond), &w))

	assert.False(t, w.TimedOut)
	assert.Empty(t, w.Report.Blockers)
	assert.Equal(t, 21, w.Checks)
	assert.Empty(t, w.Paces, "done recovering: no pace")
}

func TestWaitRestartGatesTimesOutOnAStalledRecovery(t *testing.T) {
	u, _ := waitUnit(t)
	u.acts.Metrics = &recoveringMetrics{url: "http://b1/metrics", left: 40, step: 2, floor: 30}
	var w activities.GateWait
	require.NoError(t, u.exec(t, u.acts.WaitRestartGates, gateWait(u, 20*time.Millisecond), &w))

	assert.True(t, w.TimedOut, "20 ms after its last progress")
	require.Len(t, w.Report.Recovering, 1)
	assert.Equal(t, 30, w.Report.Recovering[0].LogsLeft)
	require.Len(t, w.Paces, 1, "the pace at the last progress")
	assert.Equal(t, int32(1), w.Paces[0].Broker)
	assert.Equal(t, 30, w.Paces[0].Left)
	assert.Positive(t, w.Paces[0].PerMin)
	assert.Greater(t, w.Checks, 6)
}

func TestWaitRestartGatesResumesFromItsHeartbeat(t *testing.T) {
	u, zk := waitUnit(t)
	zk.ids = []int32{1, 3}
	// A previous attempt's deadline has passed while the worker was gone.
	u.env.SetHeartbeatDetails(activities.GateWaitProgress{Wait: fleet.GateWait{Deadline: time.Now().Add(-time.Second)}, Checks: 7})
	var w activities.GateWait
	require.NoError(t, u.exec(t, u.acts.WaitRestartGates, gateWait(u, time.Hour), &w))

	assert.True(t, w.TimedOut, "the deadline of the first attempt holds")
	assert.Equal(t, 8, w.Checks)
}

func TestWaitRestartGatesBadInput(t *testing.T) {
	u, _ := waitUnit(t)
	requireBadInput(t, u.exec(t, u.acts.WaitRestartGates, gateWait(u, 0), nil), "gate timeout")
	in := gateWait(u, time.Minute)
	in.Gates.Remaining = []int32{9}
	requireBadInput(t, u.exec(t, u.acts.WaitRestartGates, in, nil), "broker 9 is not in the cluster spec")
}

// ---- WaitBrokerGrace ----

func grace(u *unit, until time.Time) activities.GraceInput {
	return activities.GraceInput{BrokerInput: activities.BrokerInput{Spec: u.spec, Broker: 2}, Until: until, PollInterval: 2 * time.Millisecond}
}

func TestWaitBrokerGrace(t *testing.T) {
	tests := []struct {
		name       string
		registered []int32
		process    string
		grace      time.Duration
		registers  bool
		wait       time.Duration // at least
	}{
		{name: "registered again", registered: []int32{1, 2, 3}, process: "running", grace: time.Minute, registers: true},
		{name: "its service manager restarted it", registered: []int32{1, 3}, process: "starting", grace: time.Minute},
		{name: "still down when the grace ends", registered: []int32{1, 3}, process: "crashed", grace: 20 * time.Millisecond, wait: 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, zk := waitUnit(t)
			zk.ids = tt.registered
			u.hosts.stdout[cloud.DocBrokerStatus] = tt.process + "\n"
			began := time.Now()
			var obs activities.BrokerObservation
			require.NoError(t, u.exec(t, u.acts.WaitBrokerGrace, grace(u, began.Add(tt.grace)), &obs))
			assert.Equal(t, tt.registers, obs.Registered)
			assert.Equal(t, tt.process, obs.Process)
			assert.GreaterOrEqual(t, time.Since(began), tt.wait)
			assert.Less(t, time.Since(began), time.Minute)
		})
	}
}

func TestWaitBrokerGraceObservesOnceAfterItsEnd(t *testing.T) {
	u, zk := waitUnit(t)
	zk.ids = []int32{1, 3}
	u.hosts.stdout[cloud.DocBrokerStatus] = "crashed\n"
	var obs activities.BrokerObservation
	require.NoError(t, u.exec(t, u.acts.WaitBrokerGrace, grace(u, time.Now().Add(-time.Minute)), &obs))
	assert.Equal(t, "crashed", obs.Process, "a retry after the grace still answers")
	assert.Equal(t, []string{cloud.DocBrokerStatus}, u.hosts.documents())
}

func TestWaitBrokerGraceOnAHostSSMCannotReach(t *testing.T) {
	u, zk := waitUnit(t)
	zk.ids = []int32{1, 3}
	u.hosts.errs[cloud.DocBrokerStatus] = fmt.Errorf("InvalidInstanceId: instance not in a valid state: %w", cloud.ErrCommandFailed)
	began := time.Now()
	var obs activities.BrokerObservation
	require.NoError(t, u.exec(t, u.acts.WaitBrokerGrace, grace(u, began.Add(20*time.Millisecond)), &obs), "an observation, not a failure")
	assert.Empty(t, obs.Process)
	assert.Contains(t, obs.ProcessError, "InvalidInstanceId")
	assert.GreaterOrEqual(t, time.Since(began), 20*time.Millisecond, "an unknown process is waited on until the grace ends")
}

func TestWaitBrokerGraceBadInput(t *testing.T) {
	u, _ := waitUnit(t)
	requireBadInput(t, u.exec(t, u.acts.WaitBrokerGrace, grace(u, time.Time{}), nil), "needs its end")
}

// ---- WaitBrokerBack ----

func comeBack(u *unit, stall time.Duration) activities.ComeBackInput {
	return activities.ComeBackInput{BrokerInput: activities.BrokerInput{Spec: u.spec, Broker: 2}, Since: time.Now(), StallTimeout: stall, PollInterval: 2 * time.Millisecond}
}

func TestWaitBrokerBackReportsRecoveryOnce(t *testing.T) {
	u, zk := waitUnit(t)
	zk.ids = []int32{1, 3}
	u.hosts.stdout[cloud.DocBrokerStatus] = "recovering\n"
	u.acts.Metrics = &recoveringMetrics{url: "http://b2/metrics", left: 40, step: 2}
	var back activities.BrokerBack
	require.NoError(t, u.exec(t, u.acts.WaitBrokerBack, comeBack(u, time.Minute), &back))

	assert.Equal(t, fleet.ComeBackRecovering, back.Verdict)
	assert.Equal(t, 40, back.Observation.LogsLeft)
	assert.Equal(t, 40, back.Last.Left, "the first sight is recovery's first progress")
}

func TestWaitBrokerBackWaitsOutRecoveryUntilRegistered(t *testing.T) {
	u, zk := waitUnit(t)
	zk.ids, zk.registerAfter = []int32{1, 3}, map[int32]int{2: 20}
	u.hosts.stdout[cloud.DocBrokerStatus] = "recovering\n"
	u.acts.Metrics = &recoveringMetrics{url: "http://b2/metrics", left: 40, step: 2}
	beats := heartbeats[activities.BrokerBackProgress](t, u)
	in := comeBack(u, 500*time.Millisecond)
	in.Recovering = true
	var back activities.BrokerBack
	require.NoError(t, u.exec(t, u.acts.WaitBrokerBack, in, &back))

	assert.Equal(t, fleet.ComeBackRegistered, back.Verdict)
	assert.Positive(t, back.LogRecovery, "measured from Since to the last sight of recovery")
	assert.Equal(t, int32(2), back.Pace.Broker)
	assert.Positive(t, back.Pace.PerMin)
	require.NotEmpty(t, beats())
	assert.Equal(t, int32(2), beats()[0].Wait.Broker, "the heartbeat carries the wait's state")
}

func TestWaitBrokerBackDownAgain(t *testing.T) {
	u, zk := waitUnit(t)
	zk.ids = []int32{1, 3}
	u.hosts.stdout[cloud.DocBrokerStatus] = "failed\n"
	var back activities.BrokerBack
	require.NoError(t, u.exec(t, u.acts.WaitBrokerBack, comeBack(u, time.Minute), &back))
	assert.Equal(t, fleet.ComeBackDown, back.Verdict)
	assert.Equal(t, "failed", back.Observation.Process)
}

func TestWaitBrokerBackStalls(t *testing.T) {
	u, zk := waitUnit(t)
	zk.ids = []int32{1, 3}
	u.hosts.stdout[cloud.DocBrokerStatus] = "recovering\n"
	u.acts.Metrics = &recoveringMetrics{url: "http://b2/metrics", left: 40}
	in := comeBack(u, 20*time.Millisecond)
	in.Recovering, in.Last = true, fleet.RecoverySample{At: time.Now(), Left: 40}
	var back activities.BrokerBack
	require.NoError(t, u.exec(t, u.acts.WaitBrokerBack, in, &back))

	assert.Equal(t, fleet.ComeBackStalled, back.Verdict)
	assert.GreaterOrEqual(t, back.StalledFor, 20*time.Millisecond)
	assert.Equal(t, 40, back.Observation.LogsLeft)
	assert.NotContains(t, u.hosts.documents(), cloud.DocStartBroker, "never restarted while it recovers")
}

func TestWaitBrokerBackOnAHostSSMCannotReachStalls(t *testing.T) {
	u, zk := waitUnit(t)
	zk.ids = []int32{1, 3}
	u.hosts.errs[cloud.DocBrokerStatus] = fmt.Errorf("agent offline: %w", cloud.ErrCommandFailed)
	var back activities.BrokerBack
	require.NoError(t, u.exec(t, u.acts.WaitBrokerBack, comeBack(u, 20*time.Millisecond), &back))
	assert.Equal(t, fleet.ComeBackStalled, back.Verdict, "not down: unknown, so a human judges")
	assert.Contains(t, back.Observation.ProcessError, "agent offline")
}

func TestWaitBrokerBackResumesFromItsHeartbeat(t *testing.T) {
	u, zk := waitUnit(t)
	zk.ids = []int32{1, 3}
	u.hosts.stdout[cloud.DocBrokerStatus] = "recovering\n"
	u.acts.Metrics = &recoveringMetrics{url: "http://b2/metrics", left: 40}
	// The previous attempt saw no progress for an hour before its worker died.
	u.env.SetHeartbeatDetails(activities.BrokerBackProgress{Wait: fleet.ComeBack{Broker: 2, LastProgress: time.Now().Add(-time.Hour),
		Last: fleet.RecoverySample{At: time.Now().Add(-time.Hour), Left: 40}, ReportedRecovering: true}})
	var back activities.BrokerBack
	require.NoError(t, u.exec(t, u.acts.WaitBrokerBack, comeBack(u, 10*time.Minute), &back))
	assert.Equal(t, fleet.ComeBackStalled, back.Verdict, "the stall clock of the first attempt holds")
	assert.GreaterOrEqual(t, back.StalledFor, time.Hour)
}

func TestWaitBrokerBackBadInput(t *testing.T) {
	u, _ := waitUnit(t)
	requireBadInput(t, u.exec(t, u.acts.WaitBrokerBack, comeBack(u, 0), nil), "stall timeout")
	in := comeBack(u, time.Minute)
	in.Broker = 9
	requireBadInput(t, u.exec(t, u.acts.WaitBrokerBack, in, nil), "broker 9 is not in the cluster spec")
}
