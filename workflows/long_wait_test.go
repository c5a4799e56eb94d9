package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// The entity over a week-long wait, in the SDK's time-skipping test
// environment, at the production cadence (a health tick a minute).
//
// The test environment ends a test when its workflow continues as new, and
// its history length is a number the test sets. So the entity runs under a
// harness (entityRuns) that does what the server does on continue-as-new —
// it starts the next run with the input the last one carried, under the
// same workflow ID, where the operations' workflows, which outlive every
// run, keep signalling it — and the history grows by a busy entity's pace:
// 11 events a minute, what a health tick recorded before sensing reported
// only on change (entity version 4), so the week spans many runs.

const (
	// eventsPerTick is what the harness adds to the entity's history at
	// each simulated health tick: a pre-version-4 tick's activity
	// (scheduled, started, completed), timer (started, fired) and two
	// workflow tasks (scheduled, started, completed).
	eventsPerTick = 11
	// weekBudget is the production event budget (ClusterInput default).
	weekBudget = 5000
	week       = 7 * 24 * time.Hour
)

// entityHistory plays the server's history length for the harness.
type entityHistory struct {
	env *testsuite.TestWorkflowEnvironment

	mu     sync.Mutex
	events int
	// longest is the longest run's history, in events; runs counts the
	// entity's runs.
	longest int
	runs    int
	// ticks counts the simulated ticks.
	ticks int
}

// tick adds a health tick's events.
func (h *entityHistory) tick() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events += eventsPerTick
	h.ticks++
	h.longest = max(h.longest, h.events)
	h.env.SetCurrentHistoryLength(h.events)
}

// NewRun starts a run's history afresh (an activity the harness calls).
func (h *entityHistory) NewRun(context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = 0
	h.runs++
	h.env.SetCurrentHistoryLength(0)
	return nil
}

// entityRuns runs the cluster entity as the server would across
// continue-as-new, and returns how many runs it took.
func entityRuns(ctx workflow.Context, in workflows.ClusterInput) (int, error) {
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	for runs := 1; ; runs++ {
		err := workflows.ClusterWorkflow(ctx, in)
		var can *workflow.ContinueAsNewError
		if !errors.As(err, &can) {
			return runs, err
		}
		in = workflows.ClusterInput{}
		if err := converter.GetDefaultDataConverter().FromPayloads(can.Input, &in); err != nil {
			return runs, fmt.Errorf("run %d: decode the continue-as-new input: %w", runs, err)
		}
		if err := workflow.ExecuteActivity(actx, "NewRun").Get(ctx, nil); err != nil {
			return runs, err
		}
	}
}

type LongWaitSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env     *testsuite.TestWorkflowEnvironment
	history *entityHistory
}

func TestLongWait(t *testing.T) { suite.Run(t, new(LongWaitSuite)) }

func (s *LongWaitSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.SetTestTimeout(5 * time.Minute)
	s.history = &entityHistory{env: s.env}
	// The harness is the entity's workflow: cluster/test-a.
	s.env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: workflows.ClusterWorkflowID("test-a")})
	s.env.RegisterWorkflowWithOptions(entityRuns, workflow.RegisterOptions{Name: "EntityRuns"})
	workflows.Register(s.env)
	s.env.RegisterActivity(acts)
	s.env.RegisterActivityWithOptions(s.history.NewRun, activity.RegisterOptions{Name: "NewRun"})
	s.env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(nil).Maybe()
}

func (s *LongWaitSuite) status() workflows.ClusterStatus {
	v, err := s.env.QueryWorkflow(workflows.QueryStatus)
	s.Require().NoError(err)
	var st workflows.ClusterStatus
	s.Require().NoError(v.Get(&st))
	return st
}

// decide answers the operation's paused workflow at delay.
func (s *LongWaitSuite) decide(delay time.Duration, workflowID func() string, d workflows.Decision, into *error) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflowByID(workflowID(), workflows.UpdateDecide, "", &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   func(err error) { *into = err },
			OnComplete: func(_ any, err error) { *into = err },
		}, d)
	}, delay)
}

// A roll that pauses at broker 2 (it will not start) and waits a week for
// a human: the entity continues as new on its budget throughout, the roll
// never notices, and when the human resumes, the roll completes and the
// entity's current run records it.
func (s *LongWaitSuite) TestRollPausedForAWeek() {
	stubSensing(s.env, nil).onTick = s.history.tick
	var fixed bool
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.GateInput) (activities.GateReport, error) {
			next, _ := fleet.NextBroker(fleet.Snapshot{Controller: 1}, in.Remaining)
			return activities.GateReport{Next: next, Controller: 1, NextIsControl: next == 1, Partitions: 8}, nil
		})
	stops := map[int32]int{}
	s.env.OnActivity(acts.StopBroker, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BrokerInput) error {
		stops[in.Broker]++
		return nil
	})
	s.env.OnActivity(acts.StartBroker, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BrokerInput) error {
		if in.Broker == 2 && !fixed {
			return errors.New("broker 2: Failed to acquire lock on file .lock")
		}
		return nil
	})
	for _, a := range []any{acts.WaitBrokerRegistered, acts.WaitReplicasInSync} {
		s.env.OnActivity(a, mock.Anything, mock.Anything).Return(nil)
	}
	s.env.OnActivity(acts.ElectPreferredLeaders, mock.Anything, mock.Anything).Return(1, nil)

	var req answer
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(workflows.UpdateRequest, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { req.err = err },
			OnComplete: func(v any, err error) { req.err = err; req.op, _ = v.(workflows.Operation) },
		}, restartReq("alice"))
	}, time.Minute)
	var waiting, done workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { waiting = s.status() }, week)
	var resumed error
	s.env.RegisterDelayedCallback(func() { fixed = true }, week)
	s.decide(week+time.Minute, func() string { return req.op.WorkflowID }, workflows.Decision{Action: workflows.DecisionResume, By: "oncall"}, &resumed)
	s.env.RegisterDelayedCallback(func() { done = s.status(); s.env.CancelWorkflow() }, week+time.Hour)

	s.env.ExecuteWorkflow("EntityRuns", workflows.ClusterInput{Spec: testSpec()})

	s.Require().NoError(req.err)
	s.Require().NotNil(waiting.Running, "after a week the paused roll is still the entity's running operation")
	s.Equal(req.op.ID, waiting.Running.ID)
	s.Require().NoError(resumed, "the human's decision reaches the roll, a week and many runs later")
	s.Nil(done.Running)
	s.Require().Len(done.History, 1)
	s.Equal(workflows.StatusSucceeded, done.History[0].Status, done.History[0].Error)
	s.Equal("3 broker(s) restarted", done.History[0].Outcome)
	s.Equal(map[int32]int{1: 1, 2: 1, 3: 1}, stops, "each broker stopped once, across every run")
	s.Empty(done.Touching, "the roll let go of broker 2")
	s.Empty(done.OpenLosses())
	s.assertRuns(week)
}

// assertRuns checks the entity continued as new on its budget throughout
// a wait of d, and no run grew much past it.
func (s *LongWaitSuite) assertRuns(d time.Duration) {
	runs := s.history.runs + 1
	ticks := s.history.ticks
	s.GreaterOrEqual(ticks, int(d/time.Minute)*9/10, "sensing ticked about once a minute")
	want := ticks * eventsPerTick / weekBudget
	s.T().Logf("%s: %d ticks, %d entity runs, the longest %d events (budget %d)", d, ticks, runs, s.history.longest, weekBudget)
	s.GreaterOrEqual(runs, want, "the entity continued as new on its budget throughout")
	s.LessOrEqual(s.history.longest, weekBudget+2*eventsPerTick, "no run grew past its budget")
}

// A broker lost with its instance stopped, in a zone without capacity: its
// recovery can neither start the instance nor launch a new host there, and
// waits a week for a human, while the entity continues as new on its
// budget throughout and never starts a second recovery for the loss. The
// human starts the instance and resumes; the recovery starts the broker
// once and the entity's current run records it.
func (s *LongWaitSuite) TestRecoveryWaitsAWeekForAHuman() {
	stubSensing(s.env, nil, watchStep{after: 5 * time.Minute, registered: []int32{1, 3}}).onTick = s.history.tick
	var instanceBack, started bool
	starts := 0
	stubRecoveryWaits(s.env, func() activities.BrokerObservation {
		if started {
			return activities.BrokerObservation{Registered: true, Process: "running"}
		}
		return activities.BrokerObservation{Process: "stopped"}
	})
	s.env.OnActivity(acts.DiagnoseBroker, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.BrokerInput) (activities.Diagnosis, error) {
			if !instanceBack {
				return activities.Diagnosis{InstanceState: "stopped", InstanceGone: true, Cause: fleet.CauseUnknown}, nil
			}
			return activities.Diagnosis{InstanceState: "running", Process: "stopped", Cause: fleet.CauseUnknown}, nil
		})
	s.env.OnActivity(acts.StartStoppedInstance, mock.Anything, mock.Anything).Return(
		activities.InstanceStart{State: "stopped", Why: "EC2 has no capacity to start it"}, nil)
	s.env.OnActivity(acts.PlanHostReplacement, mock.Anything, mock.Anything).Return(
		activities.ReplacementPlan{Old: "i-2", Launch: activities.LaunchTemplate{AZ: "us-east-1a"}, Rack: "us-east-1a", Device: "/dev/xvdb"}, nil)
	s.env.OnActivity(acts.LaunchReplacement, mock.Anything, mock.Anything).Return(activities.Host{},
		temporal.NewApplicationError("no capacity to launch in us-east-1a", activities.ErrTypeNoCapacity))
	s.env.OnActivity(acts.StartBroker, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BrokerInput) error {
		s.Equal(int32(2), in.Broker)
		starts++
		started = true
		return nil
	})
	s.env.OnActivity(acts.WaitReplicasInSync, mock.Anything, mock.Anything).Return(nil)
	s.env.OnActivity(acts.ElectPreferredLeaders, mock.Anything, mock.Anything).Return(4, nil)

	var waiting, done workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { waiting = s.status(); instanceBack = true }, week)
	var resumed error
	s.decide(week+time.Minute, func() string { return waiting.Urgent[0].WorkflowID }, workflows.Decision{Action: workflows.DecisionResume, By: "oncall"}, &resumed)
	s.env.RegisterDelayedCallback(func() { done = s.status(); s.env.CancelWorkflow() }, week+time.Hour)

	s.env.ExecuteWorkflow("EntityRuns", workflows.ClusterInput{Spec: testSpec()})

	s.Require().Len(waiting.Urgent, 1, "after a week the recovery still waits, carried across every run")
	s.Equal(workflows.OpRecovery, waiting.Urgent[0].Kind)
	s.Require().Len(waiting.OpenLosses(), 1)
	s.Equal(waiting.Urgent[0].ID, waiting.OpenLosses()[0].Recovery, "one loss, one recovery")
	s.Require().NoError(resumed)
	s.Empty(done.Urgent)
	s.Require().Len(done.History, 1, "no second recovery was ever queued for the loss")
	s.Equal(workflows.StatusSucceeded, done.History[0].Status, done.History[0].Error)
	s.Equal(1, starts, "the broker started once, after the human")
	s.assertRuns(week)
}
