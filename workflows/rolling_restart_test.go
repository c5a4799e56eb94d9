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
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

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

func (s *RollingRestartSuite) TestWaitsOnDurableTimerUntilGatesOpen() {
	checks := 0
	open := s.gatesOpen(3)
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.GateInput) (activities.GateReport, error) {
		checks++
		rep, _ := open(context.Background(), in)
		if checks <= 3 {
			rep.Blockers = []fleet.Blocker{{Gate: fleet.GateHealthy, Reason: "partition t/0 is under min.insync.replicas"}}
		}
		return rep, nil
	})
	s.recordSteps()

	in := workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice", GatePollInterval: time.Minute}
	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, in)

	s.NoError(s.env.GetWorkflowError())
	var res workflows.RollingRestartResult
	s.NoError(s.env.GetWorkflowResult(&res))
	s.Equal(3*time.Minute, res.Brokers[0].GateWait, "three shut checks, one poll interval each")
	s.Equal("StopBroker:1", s.calls[0], "nothing touched while the gate was shut")
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

func (s *RollingRestartSuite) TestGateStillShutAtDeadlinePausesThenAbortTouchesNothing() {
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(activities.GateReport{
		Next: 1, Blockers: []fleet.Blocker{{Gate: fleet.GateHealthy, Reason: "broker 2 is not registered in ZooKeeper"}},
	}, nil)
	var early, abort error
	var paused workflows.RollProgress
	s.decide(5*time.Minute, workflows.Decision{Action: workflows.DecisionAbort, By: "alice"}, &early, nil)
	s.decide(time.Hour, workflows.Decision{Action: workflows.DecisionAbort, By: "alice", Reason: "broker 2 is being replaced"}, &abort, &paused)

	in := workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice", GatePollInterval: time.Minute, GateTimeout: 10 * time.Minute}
	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, in)

	s.Require().Error(early, "nothing to decide while the roll still waits on its own")
	s.Contains(early.Error(), "not paused")
	s.NoError(abort)
	s.Require().NotNil(paused.Paused, "past the deadline the roll asks a human")
	s.True(paused.Paused.CanSkip)
	s.Contains(paused.Paused.Reason, "broker 2 is not registered")
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr))
	s.Equal(workflows.ErrTypeAborted, appErr.Type())
	s.Contains(err.Error(), "aborted by alice")
	s.Empty(s.calls, "no broker was touched")
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
	// 100 logs left, 10 fewer each 5-minute check: 50 minutes, far past the
	// 10-minute gate deadline, yet never a reason to ask a human.
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
