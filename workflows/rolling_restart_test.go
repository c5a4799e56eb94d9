package workflows_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

var acts *activities.Activities

func testSpec() fleet.ClusterSpec {
	return fleet.ClusterSpec{
		ID:        "test-a",
		Bootstrap: []string{"127.0.0.1:9092"},
		ZooKeeper: "127.0.0.1:2181/kfleet/test-a",
		Brokers: []fleet.BrokerSpec{
			{ID: 1, InstanceID: "i-1"}, {ID: 2, InstanceID: "i-2"}, {ID: 3, InstanceID: "i-3"},
		},
	}
}

type RollingRestartSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	// calls records "<activity>:<broker>" in execution order; activities of
	// a batch run concurrently, hence mu.
	mu    sync.Mutex
	calls []string
}

func (s *RollingRestartSuite) record(call string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call)
}

func TestRollingRestart(t *testing.T) { suite.Run(t, new(RollingRestartSuite)) }

func (s *RollingRestartSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterActivity(acts)
	s.env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(nil).Maybe()
	s.calls = nil
}

func (s *RollingRestartSuite) AfterTest(_, _ string) { s.env.AssertExpectations(s.T()) }

// gatesOpen answers CheckRestartGates like the real activity: controller
// last, every gate open.
func (s *RollingRestartSuite) gatesOpen(controller int32) func(context.Context, activities.GateInput) (activities.GateReport, error) {
	return func(_ context.Context, in activities.GateInput) (activities.GateReport, error) {
		next, _ := fleet.NextBroker(fleet.Snapshot{Controller: controller}, in.Remaining)
		return activities.GateReport{Next: next, Controller: controller, NextIsControl: next == controller, Partitions: 8}, nil
	}
}

func (s *RollingRestartSuite) recordSteps() {
	for _, name := range []string{"StopBroker", "StartBroker", "WaitBrokerRegistered", "WaitReplicasInSync"} {
		name := name
		s.env.OnActivity(name, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BrokerInput) error {
			s.record(name + ":" + itoa(in.Broker))
			return nil
		})
	}
	s.env.OnActivity("ElectPreferredLeaders", mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BrokerInput) (int, error) {
		s.record("ElectPreferredLeaders:" + itoa(in.Broker))
		return 1, nil
	})
}

func itoa(b int32) string { return string(rune('0' + b)) }

func (s *RollingRestartSuite) TestRestartsEachBrokerOnceControllerLast() {
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(s.gatesOpen(1))
	s.recordSteps()

	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice"})

	s.True(s.env.IsWorkflowCompleted())
	s.NoError(s.env.GetWorkflowError())
	var res workflows.RollingRestartResult
	s.NoError(s.env.GetWorkflowResult(&res))
	var order []int32
	for _, b := range res.Brokers {
		order = append(order, b.Broker)
	}
	s.Equal([]int32{2, 3, 1}, order, "non-controllers first in id order, controller last")
	s.True(res.Brokers[2].WasController)
	want := []string{}
	for _, b := range []string{"2", "3", "1"} {
		for _, step := range []string{"StopBroker", "StartBroker", "WaitBrokerRegistered", "WaitReplicasInSync", "ElectPreferredLeaders"} {
			want = append(want, step+":"+b)
		}
	}
	s.Equal(want, s.calls, "each broker's steps run in order, one broker at a time")
}

func (s *RollingRestartSuite) TestRestrictedToRequestedBrokers() {
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(s.gatesOpen(3))
	s.recordSteps()

	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice", Brokers: []int32{3, 2}})

	s.NoError(s.env.GetWorkflowError())
	s.Equal(5*2, len(s.calls))
	s.False(slices.Contains(s.calls, "StopBroker:1"), "broker 1 was not asked for")
}

// counts counts the activities the workflow started, by type, and the
// timers it scheduled: what its history grows with.
type counts struct {
	mu         sync.Mutex
	activities map[string]int
	timers     int
}

func (c *counts) activity(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.activities[name]
}

func (c *counts) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, v := range c.activities {
		n += v
	}
	return n
}

func countCommands(env *testsuite.TestWorkflowEnvironment) *counts {
	c := &counts{activities: map[string]int{}}
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.activities[info.ActivityType.Name]++
	})
	env.SetOnTimerScheduledListener(func(string, time.Duration) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.timers++
	})
	return c
}

// shutUntil answers CheckRestartGates with blocker on the next broker
// while check says so, and like gatesOpen otherwise.
func (s *RollingRestartSuite) shutUntil(controller int32, shut func() bool, blocker fleet.Blocker) func(context.Context, activities.GateInput) (activities.GateReport, error) {
	open := s.gatesOpen(controller)
	return func(ctx context.Context, in activities.GateInput) (activities.GateReport, error) {
		rep, _ := open(ctx, in)
		if shut() {
			rep.Blockers = []fleet.Blocker{blocker}
		}
		return rep, nil
	}
}

func (s *RollingRestartSuite) TestWaitsInOneActivityUntilGatesOpen() {
	c := countCommands(s.env)
	checks := 0
	underMinISR := fleet.Blocker{Gate: fleet.GateHealthy, Reason: "partition t/0 is under min.insync.replicas"}
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(s.shutUntil(3, func() bool { checks++; return checks == 1 }, underMinISR))
	var waited activities.GateWaitInput
	s.env.OnActivity(acts.WaitRestartGates, mock.Anything, mock.Anything).After(3 * time.Minute).Return(
		func(ctx context.Context, in activities.GateWaitInput) (activities.GateWait, error) {
			waited = in
			rep, _ := s.gatesOpen(3)(ctx, in.Gates)
			return activities.GateWait{Report: rep, Checks: 18}, nil
		}).Once()
	s.recordSteps()

	in := workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice", GatePollInterval: 10 * time.Second, GateTimeout: 20 * time.Minute}
	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, in)

	s.NoError(s.env.GetWorkflowError())
	var res workflows.RollingRestartResult
	s.NoError(s.env.GetWorkflowResult(&res))
	s.Equal(3*time.Minute, res.Brokers[0].GateWait, "the wait lasted as long as the gate stayed shut")
	s.Equal("StopBroker:1", s.calls[0], "nothing touched while the gate was shut")
	s.Equal(20*time.Minute, waited.Timeout)
	s.Equal(10*time.Second, waited.PollInterval, "the activity polls at the roll's pace")
	s.Equal([]int32{1, 2, 3}, waited.Gates.Remaining)
	s.Zero(c.timers, "no timer per poll")
	s.Equal(3, c.activity("CheckRestartGates"), "one check per broker: the wait's own report opened the first broker's gates")
}

func (s *RollingRestartSuite) TestGateShutForThreeDaysIsOneWait() {
	// Broker 1 recovers its logs for three days, advancing all along: the
	// roll waits it out in one activity, without a human and without a
	// timer per poll.
	c := countCommands(s.env)
	var openAt time.Time
	shut := func() bool {
		if openAt.IsZero() {
			openAt = s.env.Now().Add(72 * time.Hour)
		}
		return s.env.Now().Before(openAt)
	}
	recovering := fleet.Blocker{Gate: fleet.GateRecovering, Reason: "broker 1 is recovering its logs (state RECOVERY, 40000 logs left)"}
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(s.shutUntil(3, shut, recovering))
	s.env.OnActivity(acts.WaitRestartGates, mock.Anything, mock.Anything).
		AfterFn(func() time.Duration { return openAt.Sub(s.env.Now()) }).
		Return(func(ctx context.Context, in activities.GateWaitInput) (activities.GateWait, error) {
			rep, _ := s.gatesOpen(3)(ctx, in.Gates)
			return activities.GateWait{Report: rep, Checks: 72 * 360}, nil
		})
	s.recordSteps()
	var mid workflows.RollProgress
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(workflows.QueryProgress)
		s.Require().NoError(err)
		s.Require().NoError(v.Get(&mid))
	}, 36*time.Hour)

	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice"})

	s.NoError(s.env.GetWorkflowError())
	var res workflows.RollingRestartResult
	s.NoError(s.env.GetWorkflowResult(&res))
	s.Len(res.Brokers, 3, "every broker restarted")
	s.Equal(int32(1), res.Brokers[0].Broker)
	s.Equal(72*time.Hour, res.Brokers[0].GateWait)
	s.Equal(workflows.StepWaitGates, mid.Step, "while it waits the roll says so")
	s.Nil(mid.Paused, "a recovery that advances is no reason to ask a human")
	s.Contains(strings.Join(mid.Blockers, "\n"), "recovering its logs")
	s.Equal(1, c.activity("WaitRestartGates"), "one wait, not one activity per poll")
	s.Zero(c.timers, "no timer per poll")
	s.Equal(3+1+3*5, c.total(), "a check per broker, the wait, five steps per broker: the history does not grow with the wait")
}

func (s *RollingRestartSuite) TestOldHistoriesWaitOnDurableTimerUntilGatesOpen() {
	// Histories recorded before the gate wait moved into an activity
	// replay the loop of a check and a timer per poll.
	s.env.OnGetVersion("roll-gate-wait-activity", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	c := countCommands(s.env)
	checks := 0
	underMinISR := fleet.Blocker{Gate: fleet.GateHealthy, Reason: "partition t/0 is under min.insync.replicas"}
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(s.shutUntil(3, func() bool { checks++; return checks <= 3 }, underMinISR))
	s.recordSteps()

	in := workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice", GatePollInterval: time.Minute}
	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, in)

	s.NoError(s.env.GetWorkflowError())
	var res workflows.RollingRestartResult
	s.NoError(s.env.GetWorkflowResult(&res))
	s.Equal(3*time.Minute, res.Brokers[0].GateWait, "three shut checks, one poll interval each")
	s.Equal("StopBroker:1", s.calls[0], "nothing touched while the gate was shut")
	s.Equal(3, c.timers)
	s.Zero(c.activity("WaitRestartGates"))
}

// decide sends the decide update at delay and stores the outcome.
func (s *RollingRestartSuite) decide(delay time.Duration, d workflows.Decision, into *error, progress *workflows.RollProgress) {
	s.env.RegisterDelayedCallback(func() {
		if progress != nil {
			v, err := s.env.QueryWorkflow(workflows.QueryProgress)
			s.Require().NoError(err)
			s.Require().NoError(v.Get(progress))
		}
		s.env.UpdateWorkflow(workflows.UpdateDecide, "", &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   func(err error) { *into = err },
			OnComplete: func(_ any, err error) { *into = err },
		}, d)
	}, delay)
}

// timesOut answers WaitRestartGates like the real activity when the
// gates stay shut: after the timeout, with the last report.
func (s *RollingRestartSuite) timesOut(timeout time.Duration, rep activities.GateReport) {
	s.env.OnActivity(acts.WaitRestartGates, mock.Anything, mock.Anything).After(timeout).Return(activities.GateWait{Report: rep, TimedOut: true, Checks: 60}, nil)
}

func (s *RollingRestartSuite) TestGateStillShutAtDeadlinePausesThenAbortTouchesNothing() {
	rep := activities.GateReport{Next: 1, Blockers: []fleet.Blocker{{Gate: fleet.GateHealthy, Reason: "broker 2 is not registered in ZooKeeper"}}}
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(rep, nil)
	s.timesOut(10*time.Minute, rep)
	var early, abort error
	var waiting, paused workflows.RollProgress
	s.decide(5*time.Minute, workflows.Decision{Action: workflows.DecisionAbort, By: "alice"}, &early, &waiting)
	s.decide(time.Hour, workflows.Decision{Action: workflows.DecisionAbort, By: "alice", Reason: "broker 2 is being replaced"}, &abort, &paused)

	in := workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice", GatePollInterval: time.Minute, GateTimeout: 10 * time.Minute}
	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, in)

	s.Require().Error(early, "nothing to decide while the roll still waits on its own")
	s.Contains(early.Error(), "not paused")
	s.Equal(workflows.StepWaitGates, waiting.Step)
	s.Equal([]string{"cluster-healthy: broker 2 is not registered in ZooKeeper"}, waiting.Blockers, "the wait shows what it waits on")
	s.NoError(abort)
	s.Require().NotNil(paused.Paused, "past the deadline the roll asks a human")
	s.True(paused.Paused.CanSkip)
	s.Contains(paused.Paused.Reason, "gates still shut after 10m0s")
	s.Contains(paused.Paused.Reason, "broker 2 is not registered")
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr))
	s.Equal(workflows.ErrTypeAbortedByHuman, appErr.Type())
	s.Contains(err.Error(), "aborted by alice")
	s.Empty(s.calls, "no broker was touched")
}

func (s *RollingRestartSuite) TestResumeAfterTheDeadlineChecksAndWaitsAgain() {
	c := countCommands(s.env)
	shut := true
	notRegistered := fleet.Blocker{Gate: fleet.GateHealthy, Reason: "broker 2 is not registered in ZooKeeper"}
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(s.shutUntil(3, func() bool { return shut }, notRegistered))
	s.timesOut(30*time.Minute, activities.GateReport{Next: 1, Blockers: []fleet.Blocker{notRegistered}})
	s.recordSteps()
	var resume error
	s.env.RegisterDelayedCallback(func() { shut = false }, 2*time.Hour)
	s.decide(3*time.Hour, workflows.Decision{Action: workflows.DecisionResume, By: "bob", Reason: "broker 2 replaced"}, &resume, nil)

	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice"})

	s.NoError(resume)
	s.NoError(s.env.GetWorkflowError())
	var res workflows.RollingRestartResult
	s.NoError(s.env.GetWorkflowResult(&res))
	s.Equal(3*time.Hour, res.Brokers[0].GateWait, "the default 30 minutes, then the human's time")
	s.Equal(1, c.activity("WaitRestartGates"), "the check after resume found the gates open")
	s.Equal(4, c.activity("CheckRestartGates"))
	s.Equal(1, c.activity("Notify"), "the on-call channel is paged once")
}

func (s *RollingRestartSuite) TestPermanentBlockerAsksAtOnceAndSkipGoesOn() {
	checks := 0
	open := s.gatesOpen(3)
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.GateInput) (activities.GateReport, error) {
		checks++
		rep, _ := open(ctx, in)
		if rep.Next == 1 {
			rep.Blockers = []fleet.Blocker{{Gate: fleet.GateAvailability, Reason: "partition t/0 has replication factor 2 with min.insync.replicas 2", Permanent: true}}
		}
		return rep, nil
	})
	s.env.OnActivity(acts.WaitRestartGates, mock.Anything, mock.Anything).Never()
	s.recordSteps()
	var skip error
	var paused workflows.RollProgress
	s.decide(time.Minute, workflows.Decision{Action: workflows.DecisionSkip, By: "bob"}, &skip, &paused)

	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice"})

	s.NoError(skip)
	s.Require().NotNil(paused.Paused, "a permanent blocker is reported at once, not waited on")
	s.Contains(paused.Paused.Reason, "no wait can open")
	s.NoError(s.env.GetWorkflowError())
	var res workflows.RollingRestartResult
	s.NoError(s.env.GetWorkflowResult(&res))
	s.Equal([]int32{1}, res.Skipped)
	s.Len(res.Brokers, 2)
	s.NotContains(s.calls, "StopBroker:1", "the skipped broker is left alone")
}

func (s *RollingRestartSuite) TestBrokerThatFailsToStartPausesAndResumeRetries() {
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(s.gatesOpen(3))
	starts := 0
	s.env.OnActivity(acts.StopBroker, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BrokerInput) error {
		s.record("StopBroker:" + itoa(in.Broker))
		return nil
	})
	s.env.OnActivity(acts.StartBroker, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BrokerInput) error {
		starts++
		if starts == 1 {
			return temporal.NewNonRetryableApplicationError("broker 1 failed to start: Map failed", "StartFailed", nil)
		}
		s.record("StartBroker:" + itoa(in.Broker))
		return nil
	})
	for _, name := range []string{"WaitBrokerRegistered", "WaitReplicasInSync"} {
		s.env.OnActivity(name, mock.Anything, mock.Anything).Return(nil)
	}
	s.env.OnActivity(acts.ElectPreferredLeaders, mock.Anything, mock.Anything).Return(0, nil)
	var skip, resume error
	var paused workflows.RollProgress
	s.decide(time.Minute, workflows.Decision{Action: workflows.DecisionSkip, By: "bob"}, &skip, &paused)
	s.decide(2*time.Minute, workflows.Decision{Action: workflows.DecisionResume, By: "bob"}, &resume, nil)

	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice", Brokers: []int32{1, 2}})

	s.Require().NotNil(paused.Paused)
	s.Equal(workflows.StepStart, paused.Paused.Step)
	s.False(paused.Paused.CanSkip)
	s.Require().Error(skip, "a broker that is down cannot be skipped")
	s.Contains(skip.Error(), "cannot be skipped")
	s.NoError(resume)
	s.NoError(s.env.GetWorkflowError())
	s.Equal([]string{"StopBroker:1", "StartBroker:1", "StopBroker:2", "StartBroker:2"}, s.calls,
		"while paused nothing else is touched; resume retries the failed step, not the stop")
}

func (s *RollingRestartSuite) TestGracePeriodSizedToPartitions() {
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.GateInput) (activities.GateReport, error) {
		return activities.GateReport{Next: in.Remaining[0], Partitions: 4000}, nil
	})
	var graces []int
	s.env.OnActivity(acts.StopBroker, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BrokerInput) error {
		graces = append(graces, in.GracePeriodSeconds)
		return nil
	})
	for _, name := range []string{"StartBroker", "WaitBrokerRegistered", "WaitReplicasInSync"} {
		s.env.OnActivity(name, mock.Anything, mock.Anything).Return(nil)
	}
	s.env.OnActivity(acts.ElectPreferredLeaders, mock.Anything, mock.Anything).Return(0, nil)

	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice", Brokers: []int32{1}})

	s.NoError(s.env.GetWorkflowError())
	s.Equal([]int{fleet.GracePeriodSeconds(4000)}, graces)
	s.Greater(graces[0], fleet.GracePeriodSeconds(0))
}

var errBrokerDidNotStart = errors.New("broker 2 did not start")

func (s *RollingRestartSuite) TestBatchesMoveInLockstep() {
	spec := testSpec()
	spec.Brokers = append(spec.Brokers, fleet.BrokerSpec{ID: 4, InstanceID: "i-4"})
	// Brokers 2 and 4 share no partition; the controller (1) goes alone.
	snap := fleet.Snapshot{Controller: 1, Partitions: []fleet.Partition{
		part(0, []int32{1, 2, 3}), part(1, []int32{4, 1, 3}),
	}}
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.GateInput) (activities.GateReport, error) {
		batch := fleet.NextBatch(snap, in.Remaining, in.MaxBatch, nil)
		return activities.GateReport{Next: batch[0], Batch: batch, Controller: 1, NextIsControl: batch[0] == 1}, nil
	})
	s.recordSteps()

	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, workflows.RollingRestartInput{Spec: spec, OperationID: "op1", RequestedBy: "alice", MaxBatch: 3})

	s.NoError(s.env.GetWorkflowError())
	var res workflows.RollingRestartResult
	s.NoError(s.env.GetWorkflowResult(&res))
	batchOf := map[int32]int{}
	for _, b := range res.Brokers {
		batchOf[b.Broker] = b.Batch
	}
	s.Equal(map[int32]int{2: 0, 4: 0, 3: 1, 1: 2}, batchOf)
	// Activities of one step run concurrently, in no fixed order.
	s.ElementsMatch([]string{"StopBroker:2", "StopBroker:4"}, s.calls[:2], "both brokers of a batch stop before either starts")
	s.ElementsMatch([]string{"StartBroker:2", "StartBroker:4"}, s.calls[2:4])
	s.Equal("StopBroker:1", s.calls[len(s.calls)-5], "the controller goes last, alone")
}

func part(p int32, replicas []int32) fleet.Partition {
	return fleet.Partition{Topic: "t", Partition: p, Leader: replicas[0], Replicas: replicas, ISR: replicas, MinISR: 2}
}

func (s *RollingRestartSuite) recoveringGates(left func(check int) int) {
	checks := 0
	open := s.gatesOpen(3)
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.GateInput) (activities.GateReport, error) {
		checks++
		rep, _ := open(ctx, in)
		if n := left(checks); n > 0 {
			rep.Recovering = []activities.Recovery{{Broker: rep.Next, LogsLeft: n}}
			rep.Blockers = []fleet.Blocker{{Gate: fleet.GateRecovering, Reason: "broker is recovering its logs"}}
		}
		return rep, nil
	})
}

func (s *RollingRestartSuite) TestRecoveryThatProgressesIsWaitedOutPastTheDeadline() {
	// 100 logs left, 2 a minute: 50 minutes, far past the 10-minute gate
	// deadline; the wait goes on while recovery advances, and a human is
	// never asked.
	s.recoveringGates(func(check int) int {
		if check == 1 {
			return 100
		}
		return 0
	})
	s.env.OnActivity(acts.WaitRestartGates, mock.Anything, mock.Anything).After(50 * time.Minute).Return(
		func(ctx context.Context, in activities.GateWaitInput) (activities.GateWait, error) {
			rep, _ := s.gatesOpen(3)(ctx, in.Gates)
			return activities.GateWait{Report: rep, Checks: 10, Paces: []fleet.RecoveryPace{{Broker: 1, Left: 10, PerMin: 2, ETA: 5 * time.Minute}}}, nil
		}).Once()
	s.recordSteps()
	var details workflows.RollProgress
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(workflows.QueryProgress)
		s.Require().NoError(err)
		s.Require().NoError(v.Get(&details))
	}, 21*time.Minute)

	in := workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice", GatePollInterval: 5 * time.Minute, GateTimeout: 10 * time.Minute}
	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, in)

	s.NoError(s.env.GetWorkflowError())
	s.Nil(details.Paused)
	s.Equal(workflows.StepWaitGates, details.Step)
	s.Contains(strings.Join(details.Blockers, "\n"), "recovering its logs")
	var res workflows.RollingRestartResult
	s.NoError(s.env.GetWorkflowResult(&res))
	s.Equal(50*time.Minute, res.Brokers[0].GateWait)
}

func (s *RollingRestartSuite) TestOldHistoriesWaitOutARecoveryThatProgresses() {
	// The loop of histories recorded before the wait activity: 100 logs
	// left, 10 fewer each 5-minute check.
	s.env.OnGetVersion("roll-gate-wait-activity", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	s.recoveringGates(func(check int) int { return max(0, 110-10*check) })
	s.recordSteps()
	var details workflows.RollProgress
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(workflows.QueryProgress)
		s.Require().NoError(err)
		s.Require().NoError(v.Get(&details))
	}, 21*time.Minute)

	in := workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice", GatePollInterval: 5 * time.Minute, GateTimeout: 10 * time.Minute}
	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, in)

	s.NoError(s.env.GetWorkflowError())
	s.Nil(details.Paused)
	s.Contains(strings.Join(details.Blockers, "\n"), "recovering at 2 logs/min, 60 left, ETA 30m0s")
}

func (s *RollingRestartSuite) TestStalledRecoveryAsksAHuman() {
	s.recoveringGates(func(int) int { return 50 })
	s.timesOut(10*time.Minute, activities.GateReport{Next: 1, Recovering: []activities.Recovery{{Broker: 1, LogsLeft: 50}},
		Blockers: []fleet.Blocker{{Gate: fleet.GateRecovering, Reason: "broker 1 is recovering its logs"}}})
	var abort error
	var paused workflows.RollProgress
	s.decide(time.Hour, workflows.Decision{Action: workflows.DecisionAbort, By: "alice"}, &abort, &paused)

	in := workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice", GatePollInterval: 5 * time.Minute, GateTimeout: 10 * time.Minute}
	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, in)

	s.Require().NotNil(paused.Paused)
	s.Contains(paused.Paused.Reason, "recovering")
	s.Error(s.env.GetWorkflowError())
	s.Empty(s.calls, "a recovering broker is never restarted")
}

func (s *RollingRestartSuite) TestOldHistoriesAskAboutAStalledRecovery() {
	s.env.OnGetVersion("roll-gate-wait-activity", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	s.recoveringGates(func(int) int { return 50 })
	var abort error
	var paused workflows.RollProgress
	s.decide(time.Hour, workflows.Decision{Action: workflows.DecisionAbort, By: "alice"}, &abort, &paused)

	in := workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice", GatePollInterval: 5 * time.Minute, GateTimeout: 10 * time.Minute}
	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, in)

	s.Require().NotNil(paused.Paused)
	s.Contains(paused.Paused.Reason, "recovering")
	s.Error(s.env.GetWorkflowError())
	s.Empty(s.calls, "a recovering broker is never restarted")
}

func (s *RollingRestartSuite) TestCancelFinishesTheBrokerInFlightThenStops() {
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(s.gatesOpen(3))
	record := func(name string) func(context.Context, activities.BrokerInput) error {
		return func(_ context.Context, in activities.BrokerInput) error {
			s.record(name + ":" + itoa(in.Broker))
			return nil
		}
	}
	s.env.OnActivity(acts.StopBroker, mock.Anything, mock.Anything).Return(record("StopBroker"))
	// The start takes five minutes; the cancel lands in the middle.
	s.env.OnActivity(acts.StartBroker, mock.Anything, mock.Anything).After(5 * time.Minute).Return(record("StartBroker"))
	s.env.OnActivity(acts.WaitBrokerRegistered, mock.Anything, mock.Anything).Return(record("WaitBrokerRegistered"))
	s.env.OnActivity(acts.WaitReplicasInSync, mock.Anything, mock.Anything).Return(record("WaitReplicasInSync"))
	s.env.OnActivity(acts.ElectPreferredLeaders, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BrokerInput) (int, error) {
		s.record("ElectPreferredLeaders:" + itoa(in.Broker))
		return 0, nil
	})
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 2*time.Minute)

	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice"})

	s.Require().Error(s.env.GetWorkflowError())
	s.True(temporal.IsCanceledError(s.env.GetWorkflowError()), s.env.GetWorkflowError().Error())
	s.Equal([]string{"StopBroker:1", "StartBroker:1", "WaitBrokerRegistered:1", "WaitReplicasInSync:1", "ElectPreferredLeaders:1"}, s.calls,
		"the broker in flight is brought back into sync; no other broker is touched")
}
