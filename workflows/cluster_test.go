package workflows_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

type ClusterSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env         *testsuite.TestWorkflowEnvironment
	sim         *senseSim
	watchInputs []activities.SenseInput
}

func TestCluster(t *testing.T) { suite.Run(t, new(ClusterSuite)) }

func (s *ClusterSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterWorkflow(workflows.RollingRestartWorkflow)
	s.env.RegisterWorkflow(workflows.RecoveryWorkflow)
	s.env.RegisterWorkflow(workflows.VolumeExpansionWorkflow)
	s.env.RegisterWorkflow(workflows.CleanerHealthWorkflow)
	s.watchInputs = nil
	s.sim = stubSensing(s.env, &s.watchInputs)
}

// run executes the entity with its sensing seeing the registrations of
// steps. The entity's other parts get defaults registered after the test's
// own expectations (the first match wins): delivered notifications, and a
// recovery that finds the broker back by itself.
func (s *ClusterSuite) run(in workflows.ClusterInput, steps ...watchStep) {
	s.sim.steps = steps
	stubSelfHealing(s.env)
	s.env.ExecuteWorkflow(workflows.ClusterWorkflow, in)
}

func stubSelfHealing(env *testsuite.TestWorkflowEnvironment) {
	env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnWorkflow(workflows.RecoveryWorkflow, mock.Anything, mock.Anything).Return(workflows.RecoveryResult{CameBack: true}, nil).Maybe()
}

// healthyReport is a health tick on which every broker is fine.
func healthyReport(spec fleet.ClusterSpec, at time.Time) fleet.HealthReport {
	rep := fleet.HealthReport{Cluster: spec.ID, At: at}
	for _, id := range spec.BrokerIDs() {
		rep.Brokers = append(rep.Brokers, fleet.BrokerHealth{Broker: id, State: "RUNNING",
			Disk:    fleet.DiskUsage{SizeBytes: 100 << 30, UsedBytes: 40 << 30},
			Cleaner: fleet.CleanerHealth{SinceLastRun: 10 * time.Second},
			Heap:    fleet.HeapUsage{Used: 2 << 30, Max: 6 << 30}})
	}
	return rep
}

// update sends an update at delay and stores what it answered.
type answer struct {
	op  workflows.Operation
	err error
}

func (s *ClusterSuite) update(delay time.Duration, name string, arg any, into *answer) {
	s.env.RegisterDelayedCallback(func() { s.updateNow(name, arg, into) }, delay)
}

func (s *ClusterSuite) updateNow(name string, arg any, into *answer) {
	s.env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
		OnAccept:   func() {},
		OnReject:   func(err error) { into.err = err },
		OnComplete: func(v any, err error) { into.err = err; into.op, _ = v.(workflows.Operation) },
	}, arg)
}

func (s *ClusterSuite) status() workflows.ClusterStatus {
	v, err := s.env.QueryWorkflow(workflows.QueryStatus)
	s.Require().NoError(err)
	var st workflows.ClusterStatus
	s.Require().NoError(v.Get(&st))
	return st
}

func (s *ClusterSuite) TestRestartRunsAsChildAndDuplicateJoinsIt() {
	rolls := 0
	s.env.OnWorkflow(workflows.RollingRestartWorkflow, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in workflows.RollingRestartInput) (workflows.RollingRestartResult, error) {
			rolls++
			s.Equal("alice", in.RequestedBy)
			s.Equal(testSpec(), in.Spec)
			if err := workflow.Sleep(ctx, 10*time.Minute); err != nil {
				return workflows.RollingRestartResult{}, err
			}
			return workflows.RollingRestartResult{Brokers: []workflows.BrokerRestart{{Broker: 1}}}, nil
		})
	var first, dup, after answer
	s.update(time.Minute, workflows.UpdateRequest, restartReq("alice"), &first)
	s.update(5*time.Minute, workflows.UpdateRequest, restartReq("bob"), &dup)
	var running workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { running = s.status() }, 6*time.Minute)
	s.update(30*time.Minute, workflows.UpdateRequest, restartReq("alice"), &after)
	var final workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { final = s.status(); s.env.CancelWorkflow() }, 60*time.Minute)

	s.run(workflows.ClusterInput{Spec: testSpec()})

	s.Require().NoError(first.err)
	s.Equal(workflows.OpRollingRestart, first.op.Kind)
	s.Equal(workflows.OperationWorkflowID("test-a", "roll", first.op.ID), first.op.WorkflowID)
	s.False(first.op.Existing)
	s.Require().NoError(dup.err)
	s.Equal(first.op.ID, dup.op.ID, "a restart already running is joined, not queued twice")
	s.True(dup.op.Existing)
	s.Require().NotNil(running.Running)
	s.Equal(workflows.StatusRunning, running.Running.Status)
	s.Empty(running.Queue)
	s.NotEqual(first.op.ID, after.op.ID, "a restart after the first finished is a new operation")
	s.Equal(2, rolls)
	s.Require().Len(final.History, 2)
	s.Equal(workflows.StatusSucceeded, final.History[0].Status)
	s.Equal(workflows.StatusSucceeded, final.History[1].Status)
}

func (s *ClusterSuite) TestFailedRollIsRecordedAndNextRequestRuns() {
	calls := 0
	s.env.OnWorkflow(workflows.RollingRestartWorkflow, mock.Anything, mock.Anything).Return(
		func(workflow.Context, workflows.RollingRestartInput) (workflows.RollingRestartResult, error) {
			calls++
			if calls == 1 {
				return workflows.RollingRestartResult{}, errBrokerDidNotStart
			}
			return workflows.RollingRestartResult{}, nil
		})
	var a1, a2 answer
	s.update(time.Minute, workflows.UpdateRequest, restartReq("alice"), &a1)
	s.update(10*time.Minute, workflows.UpdateRequest, restartReq("alice"), &a2)
	var final workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { final = s.status(); s.env.CancelWorkflow() }, 20*time.Minute)

	s.run(workflows.ClusterInput{Spec: testSpec()})

	s.Require().Len(final.History, 2)
	s.Equal(workflows.StatusFailed, final.History[0].Status)
	s.Contains(final.History[0].Error, "did not start")
	s.Equal(workflows.StatusSucceeded, final.History[1].Status)
}

func (s *ClusterSuite) TestValidatorsRejectNonsenseAndChangeNothing() {
	other := testSpec()
	other.ID = "test-b"
	bad := testSpec()
	bad.Brokers = append(bad.Brokers, bad.Brokers[0])
	cases := []struct {
		name, update string
		arg          any
		want         string
	}{
		{"no requester", workflows.UpdateRequest, restartReq(""), "requestedBy is required"},
		{"unknown broker", workflows.UpdateRequest, restartReq("alice", 7), "broker 7 is not in cluster test-a"},
		{"spec of another cluster", workflows.UpdateSetSpec, other, `spec is for cluster "test-b"`},
		{"invalid spec", workflows.UpdateSetSpec, bad, "listed twice"},
		{"unknown kind", workflows.UpdateRequest, workflows.Request{Kind: "reboot-everything", RequestedBy: "alice"}, `unknown operation kind "reboot-everything"`},
		{"a kind only kfleet starts", workflows.UpdateRequest, workflows.Request{Kind: workflows.OpRecovery, RequestedBy: "alice", Brokers: []int32{2}}, "cannot be requested"},
		{"parameters of another kind", workflows.UpdateRequest, workflows.Request{Kind: workflows.OpRollingRestart, RequestedBy: "alice", Params: json.RawMessage(`{"version":"3.7.1"}`)}, `unknown field "version"`},
		{"batch larger than the cluster", workflows.UpdateRequest, workflows.Request{Kind: workflows.OpRollingRestart, RequestedBy: "alice", Params: json.RawMessage(`{"maxBatch":4}`)}, "maxBatch 4: want 0..3"},
		{"an expansion of no broker", workflows.UpdateRequest, workflows.Request{Kind: workflows.OpVolumeExpansion, RequestedBy: "alice"}, "exactly one broker"},
	}
	answers := make([]answer, len(cases))
	for i, c := range cases {
		s.update(time.Duration(i+1)*time.Minute, c.update, c.arg, &answers[i])
	}
	var final workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { final = s.status(); s.env.CancelWorkflow() }, time.Hour)

	s.run(workflows.ClusterInput{Spec: testSpec()})

	for i, c := range cases {
		s.Require().Error(answers[i].err, c.name)
		s.Contains(answers[i].err.Error(), c.want, c.name)
	}
	s.Equal(testSpec(), final.Spec)
	s.Nil(final.Running)
	s.Empty(final.Queue)
	s.Empty(final.History)
	s.Zero(final.Seq)
}

func (s *ClusterSuite) TestSetSpecReplacesSpecForNextOperations() {
	newSpec := testSpec()
	newSpec.Bootstrap = []string{"10.0.0.1:9092"}
	var got fleet.ClusterSpec
	s.env.OnWorkflow(workflows.RollingRestartWorkflow, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in workflows.RollingRestartInput) (workflows.RollingRestartResult, error) {
			got = in.Spec
			return workflows.RollingRestartResult{}, nil
		})
	var a1, a2 answer
	s.update(time.Minute, workflows.UpdateSetSpec, newSpec, &a1)
	s.update(2*time.Minute, workflows.UpdateRequest, restartReq("alice"), &a2)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Hour)

	s.run(workflows.ClusterInput{Spec: testSpec()})

	s.NoError(a1.err)
	s.NoError(a2.err)
	s.Equal(newSpec, got)
}

// statusAt queries the entity's status at delay into st.
func (s *ClusterSuite) statusAt(delay time.Duration, into *workflows.ClusterStatus) {
	s.env.RegisterDelayedCallback(func() { *into = s.status() }, delay)
}

// controlAt sends a pause, resume or cancel update at delay.
func (s *ClusterSuite) controlAt(delay time.Duration, name string, arg any, into *error, out any) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {},
			OnReject: func(err error) { *into = err },
			OnComplete: func(v any, err error) {
				*into = err
				switch o := out.(type) {
				case *workflows.PauseState:
					*o, _ = v.(workflows.PauseState)
				case *workflows.Operation:
					*o, _ = v.(workflows.Operation)
				}
			},
		}, arg)
	}, delay)
}

// sleepyRoll stands in for the roll: it takes d and honours cancellation.
// It is registered under the roll's name rather than mocked: the test
// environment does not cancel mocked child workflows.
func (s *ClusterSuite) sleepyRoll(d time.Duration, rolls *int) {
	s.env = s.NewTestWorkflowEnvironment()
	s.sim = stubSensing(s.env, &s.watchInputs)
	s.env.RegisterWorkflowWithOptions(func(ctx workflow.Context, _ workflows.RollingRestartInput) (workflows.RollingRestartResult, error) {
		*rolls++
		return workflows.RollingRestartResult{}, workflow.Sleep(ctx, d)
	}, workflow.RegisterOptions{Name: "RollingRestartWorkflow"})
}

func (s *ClusterSuite) TestBrokerLossRecordedOnceAndClosedWhenItComesBack() {
	var first, both, back, again workflows.ClusterStatus
	s.statusAt(7*time.Minute, &first)
	s.statusAt(17*time.Minute, &both)
	s.statusAt(27*time.Minute, &back)
	s.statusAt(37*time.Minute, &again)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Hour)

	s.run(workflows.ClusterInput{Spec: testSpec()},
		watchStep{5 * time.Minute, []int32{1, 3}},     // broker 2 crashes
		watchStep{10 * time.Minute, []int32{3}},       // then broker 1
		watchStep{10 * time.Minute, []int32{1, 2, 3}}, // both come back
		watchStep{10 * time.Minute, []int32{1, 3}},    // broker 2 crashes again
	)

	s.Require().Len(first.Losses, 1, "one loss, recorded once")
	s.Equal(int32(2), first.Losses[0].Broker)
	s.False(first.Losses[0].Recovered)
	s.Empty(first.Losses[0].Operation)
	s.Require().NotNil(first.Watch)
	s.Equal([]int32{1, 3}, first.Watch.Registered)
	s.Equal([]int32{2}, first.Watch.Missing)
	s.Equal(1, first.Watch.Changes)

	s.Require().Len(both.Losses, 2, "broker 2 still lost is not recorded again; broker 1 is a new loss")
	s.Equal(int32(1), both.Losses[1].Broker)

	s.Require().Len(back.Losses, 2)
	for _, l := range back.Losses {
		s.True(l.Recovered, "broker %d registered again", l.Broker)
		s.False(l.RecoveredAt.Before(l.At))
	}
	s.Empty(back.OpenLosses())

	s.Require().Len(again.Losses, 3, "a second loss of the same broker is a new record")
	s.Equal(int32(2), again.Losses[2].Broker)
	s.False(again.Losses[2].Recovered)
	s.Equal(4, again.Watch.Changes)

	// Each sensing run starts from the set the previous one answered (a
	// health report in between changes none).
	s.Require().GreaterOrEqual(len(s.watchInputs), 5)
	s.True(s.watchInputs[0].Initial, "the first sensing asks for a baseline")
	var known [][]int32
	for _, in := range s.watchInputs[1:] {
		s.False(in.Initial)
		if len(known) == 0 || !slices.Equal(known[len(known)-1], in.Known) {
			known = append(known, in.Known)
		}
	}
	s.Equal([][]int32{{1, 2, 3}, {1, 3}, {3}, {1, 2, 3}, {1, 3}}, known)
}

func (s *ClusterSuite) TestOwnRestartIsNoLossButAnotherBrokerCrashingIs() {
	var rollID string
	s.env.OnWorkflow(workflows.RollingRestartWorkflow, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, _ workflows.RollingRestartInput) (workflows.RollingRestartResult, error) {
			rollID = workflow.GetInfo(ctx).WorkflowExecution.ID
			workflows.NotifyEntity(ctx, 2, true) // at 1 min, before stopping broker 2
			if err := workflow.Sleep(ctx, 5*time.Minute+30*time.Second); err != nil {
				return workflows.RollingRestartResult{}, err
			}
			workflows.NotifyEntity(ctx, 2, false) // at 6.5 min, broker 2 back in the ISR
			return workflows.RollingRestartResult{}, workflow.Sleep(ctx, 3*time.Minute)
		})
	var req answer
	s.update(time.Minute, workflows.UpdateRequest, restartReq("alice"), &req)
	var during, crashed, after workflows.ClusterStatus
	var cancelDown error
	s.statusAt(5*time.Minute, &during)
	s.env.RegisterDelayedCallback(func() {
		s.controlAt(0, workflows.UpdateCancel, workflows.CancelRequest{OperationID: req.op.ID, By: "bob"}, &cancelDown, nil)
	}, 5*time.Minute)
	s.statusAt(8*time.Minute, &crashed)
	s.statusAt(20*time.Minute, &after)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Hour)

	s.run(workflows.ClusterInput{Spec: testSpec()},
		watchStep{4 * time.Minute, []int32{1, 3}},    // the roll stopped broker 2
		watchStep{2 * time.Minute, []int32{1, 2, 3}}, // and started it again
		watchStep{time.Minute, []int32{1, 2}},        // broker 3 crashes during the roll
	)

	s.Require().NoError(req.err)
	s.Empty(during.Losses, "the broker the roll took down is not a loss")
	s.Require().Len(during.Touching, 1)
	s.Equal(int32(2), during.Touching[0].Broker)
	s.Equal(rollID, during.Touching[0].By)
	s.Equal([]int32{1, 3}, during.Watch.Registered)
	s.Require().Error(cancelDown, "no cancel while the roll has a broker down")
	s.Contains(cancelDown.Error(), "has broker 2 down")

	s.Require().Len(crashed.Losses, 1)
	s.Equal(int32(3), crashed.Losses[0].Broker, "a broker the roll did not touch is a loss")
	s.Equal(req.op.ID, crashed.Losses[0].Operation)
	s.Empty(crashed.Touching, "the roll let go of broker 2")

	s.Require().Len(after.History, 2)
	s.Equal(workflows.OpRecovery, after.History[0].Kind, "broker 3 is recovered beside the running roll")
	s.Equal([]int32{3}, after.History[0].Brokers)
	s.Equal(workflows.OpRollingRestart, after.History[1].Kind)
	s.Equal(workflows.StatusSucceeded, after.History[1].Status)
	s.Len(after.Losses, 1)
}

func (s *ClusterSuite) TestTouchesAreReleasedWhenTheOperationEnds() {
	s.env.OnWorkflow(workflows.RollingRestartWorkflow, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, _ workflows.RollingRestartInput) (workflows.RollingRestartResult, error) {
			workflows.NotifyEntity(ctx, 1, true)
			return workflows.RollingRestartResult{}, errBrokerDidNotStart // gone without letting go
		})
	var req answer
	s.update(time.Minute, workflows.UpdateRequest, restartReq("alice"), &req)
	var final workflows.ClusterStatus
	s.statusAt(30*time.Minute, &final)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Hour)

	s.run(workflows.ClusterInput{Spec: testSpec()},
		watchStep{10 * time.Minute, []int32{2, 3}}, // broker 1 leaves after the roll ended
	)

	s.Require().Len(final.History, 2)
	s.Equal(workflows.StatusFailed, final.History[0].Status)
	s.Empty(final.Touching)
	s.Require().Len(final.Losses, 1, "once the operation ended, broker 1 leaving is a loss")
	s.Equal(int32(1), final.Losses[0].Broker)
	s.Equal(workflows.OpRecovery, final.History[1].Kind, "and is recovered")
}

func (s *ClusterSuite) TestPauseHoldsQueuedWorkUntilResume() {
	rolls := 0
	s.sleepyRoll(10*time.Minute, &rolls)
	var early, noBy, paused, twice, resumed error
	var pause, lifted workflows.PauseState
	s.controlAt(30*time.Second, workflows.UpdateResume, workflows.ResumeRequest{By: "bob"}, &early, nil)
	s.controlAt(time.Minute, workflows.UpdatePause, workflows.PauseRequest{Reason: "no reason"}, &noBy, nil)
	s.controlAt(2*time.Minute, workflows.UpdatePause, workflows.PauseRequest{By: "bob", Reason: "broker maintenance"}, &paused, &pause)
	s.controlAt(3*time.Minute, workflows.UpdatePause, workflows.PauseRequest{By: "carol"}, &twice, nil)
	var req answer
	s.update(4*time.Minute, workflows.UpdateRequest, restartReq("alice"), &req)
	var held, running, final workflows.ClusterStatus
	s.statusAt(15*time.Minute, &held)
	s.controlAt(20*time.Minute, workflows.UpdateResume, workflows.ResumeRequest{By: "bob"}, &resumed, &lifted)
	s.statusAt(21*time.Minute, &running)
	s.statusAt(40*time.Minute, &final)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Hour)

	s.run(workflows.ClusterInput{Spec: testSpec()})

	s.Require().Error(early)
	s.Contains(early.Error(), "not paused")
	s.Require().Error(noBy)
	s.Contains(noBy.Error(), "by is required")
	s.Require().NoError(paused)
	s.Equal("bob", pause.By)
	s.Require().Error(twice)
	s.Contains(twice.Error(), "already paused (by bob")
	s.Contains(twice.Error(), "broker maintenance")

	s.Require().NoError(req.err, "a request while paused is queued")
	s.Require().NotNil(held.Paused)
	s.Nil(held.Running, "nothing starts while paused")
	s.Require().Len(held.Queue, 1)
	s.Equal(req.op.ID, held.Queue[0].ID)

	s.Require().NoError(resumed)
	s.Equal("broker maintenance", lifted.Reason)
	s.Nil(running.Paused)
	s.Require().NotNil(running.Running, "resume starts the queued restart")
	s.Equal(req.op.ID, running.Running.ID)
	s.Require().Len(final.History, 1)
	s.Equal(workflows.StatusSucceeded, final.History[0].Status)
	s.Equal(1, rolls)
}

func (s *ClusterSuite) TestPauseLetsTheRunningOperationFinish() {
	rolls := 0
	s.sleepyRoll(10*time.Minute, &rolls)
	var req answer
	var paused error
	s.update(time.Minute, workflows.UpdateRequest, restartReq("alice"), &req)
	s.controlAt(2*time.Minute, workflows.UpdatePause, workflows.PauseRequest{By: "bob"}, &paused, nil)
	var final workflows.ClusterStatus
	s.statusAt(30*time.Minute, &final)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Hour)

	s.run(workflows.ClusterInput{Spec: testSpec()})

	s.Require().NoError(paused)
	s.NotNil(final.Paused)
	s.Require().Len(final.History, 1)
	s.Equal(workflows.StatusSucceeded, final.History[0].Status)
}

func (s *ClusterSuite) TestCancelQueuedAndRunningOperations() {
	rolls := 0
	s.sleepyRoll(10*time.Minute, &rolls)
	var paused, resumed, queuedErr, runningErr, twice, finished, unknown, noBy error
	var queuedOp, runningOp workflows.Operation
	var first, second answer
	// A queued restart is removed.
	s.controlAt(time.Minute, workflows.UpdatePause, workflows.PauseRequest{By: "bob"}, &paused, nil)
	s.update(2*time.Minute, workflows.UpdateRequest, restartReq("alice"), &first)
	s.env.RegisterDelayedCallback(func() {
		s.controlAt(0, workflows.UpdateCancel, workflows.CancelRequest{OperationID: first.op.ID, By: "bob", Reason: "wrong cluster"}, &queuedErr, &queuedOp)
	}, 3*time.Minute)
	s.controlAt(4*time.Minute, workflows.UpdateResume, workflows.ResumeRequest{By: "bob"}, &resumed, nil)
	var afterQueued workflows.ClusterStatus
	s.statusAt(5*time.Minute, &afterQueued)
	// The running one is cancelled through its workflow.
	s.update(6*time.Minute, workflows.UpdateRequest, restartReq("alice"), &second)
	s.env.RegisterDelayedCallback(func() {
		s.controlAt(0, workflows.UpdateCancel, workflows.CancelRequest{OperationID: second.op.ID, By: "carol"}, &runningErr, &runningOp)
		s.controlAt(0, workflows.UpdateCancel, workflows.CancelRequest{OperationID: second.op.ID, By: "dave"}, &twice, nil)
	}, 8*time.Minute)
	s.env.RegisterDelayedCallback(func() {
		s.controlAt(0, workflows.UpdateCancel, workflows.CancelRequest{OperationID: first.op.ID, By: "bob"}, &finished, nil)
		s.controlAt(0, workflows.UpdateCancel, workflows.CancelRequest{OperationID: "nope", By: "bob"}, &unknown, nil)
		s.controlAt(0, workflows.UpdateCancel, workflows.CancelRequest{OperationID: second.op.ID}, &noBy, nil)
	}, 30*time.Minute)
	var final workflows.ClusterStatus
	s.statusAt(31*time.Minute, &final)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Hour)

	s.run(workflows.ClusterInput{Spec: testSpec()})

	s.Require().NoError(paused)
	s.Require().NoError(queuedErr)
	s.Equal(workflows.StatusCancelled, queuedOp.Status)
	s.Equal("bob", queuedOp.CancelledBy)
	s.Require().NoError(resumed)
	s.Empty(afterQueued.Queue)
	s.Nil(afterQueued.Running, "the cancelled restart never started")

	s.Require().NoError(runningErr)
	s.Equal(workflows.StatusRunning, runningOp.Status, "the answer comes at once; the roll stops on its own")
	s.Equal("carol", runningOp.CancelledBy)
	s.Require().Error(twice)
	s.Contains(twice.Error(), "already being cancelled (by carol)")

	s.Equal(1, rolls, "only the second restart ever ran")
	s.Require().Len(final.History, 2)
	s.Equal(workflows.StatusCancelled, final.History[0].Status)
	s.Equal("wrong cluster", final.History[0].CancelReason)
	s.Equal(workflows.StatusCancelled, final.History[1].Status)
	s.Equal("carol", final.History[1].CancelledBy)
	s.Less(final.History[1].FinishedAt.Sub(final.History[1].StartedAt), 10*time.Minute, "the roll was cut short")

	s.Require().Error(finished)
	s.Contains(finished.Error(), "already finished (cancelled)")
	s.Require().Error(unknown)
	s.Contains(unknown.Error(), `unknown operation "nope" on cluster test-a (nothing is running or queued)`)
	s.Require().Error(noBy)
	s.Contains(noBy.Error(), "by is required")
}

// continuedAs decodes the input the entity continued as new with.
func (s *ClusterSuite) continuedAs() workflows.ClusterInput {
	var can *workflow.ContinueAsNewError
	s.Require().ErrorAs(s.env.GetWorkflowError(), &can)
	s.Equal("ClusterWorkflow", can.WorkflowType.Name)
	var in workflows.ClusterInput
	s.Require().NoError(converter.GetDefaultDataConverter().FromPayloads(can.Input, &in))
	return in
}

func (s *ClusterSuite) TestContinueAsNewCarriesQueueAndDedup() {
	rolls := 0
	s.sleepyRoll(10*time.Minute, &rolls)
	var paused error
	var req, dup answer
	s.controlAt(time.Minute, workflows.UpdatePause, workflows.PauseRequest{By: "bob", Reason: "window closed"}, &paused, nil)
	s.update(2*time.Minute, workflows.UpdateRequest, restartReq("alice", 2), &req)
	// A duplicate, and past the (injected) budget: the duplicate is
	// answered with the queued restart, then the entity continues as new
	// with the restart still queued.
	s.update(3*time.Minute, workflows.UpdateRequest, restartReq("carol", 2), &dup)
	s.env.RegisterDelayedCallback(func() { s.env.SetCurrentHistoryLength(150) }, 4*time.Minute)

	s.run(workflows.ClusterInput{Spec: testSpec(), EventBudget: 100}, watchStep{90 * time.Second, []int32{1, 3}})

	s.Require().NoError(paused)
	s.Require().NoError(req.err)
	s.Require().NoError(dup.err)
	s.True(dup.op.Existing)
	s.Equal(req.op.ID, dup.op.ID)
	in := s.continuedAs()
	s.Equal(testSpec(), in.Spec)
	s.Equal(100, in.EventBudget, "the budget is carried")
	s.Require().NotNil(in.State)
	s.Require().Len(in.State.Queue, 2, "the queued restart and the recovery of the lost broker are carried")
	s.Equal(workflows.OpRecovery, in.State.Queue[0].Kind, "a pause holds recoveries too")
	s.Equal(in.State.Queue[0].ID, in.State.Losses[0].Recovery)
	s.Equal(req.op.ID, in.State.Queue[1].ID)
	s.Equal([]int32{2}, in.State.Queue[1].Brokers)
	s.Require().NotNil(in.State.Paused)
	s.Equal("window closed", in.State.Paused.Reason)
	s.Require().NotNil(in.State.Watch)
	s.Equal([]int32{1, 3}, in.State.Watch.Registered, "what the watch saw is carried")
	s.Len(in.State.Losses, 1)
	s.Zero(rolls)

	// The next run: the same request still joins the carried one, the
	// watch goes on from the carried set, and resume runs it.
	s.SetupTest()
	s.sleepyRoll(10*time.Minute, &rolls)
	var again answer
	var resumed error
	s.update(time.Minute, workflows.UpdateRequest, restartReq("dave", 2), &again)
	s.controlAt(2*time.Minute, workflows.UpdateResume, workflows.ResumeRequest{By: "bob"}, &resumed, nil)
	var final workflows.ClusterStatus
	s.statusAt(30*time.Minute, &final)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Hour)

	s.run(in)

	s.Require().NoError(again.err)
	s.True(again.op.Existing)
	s.Equal(req.op.ID, again.op.ID)
	s.Require().NoError(resumed)
	s.Equal(1, rolls)
	s.Require().Len(final.History, 2)
	s.Equal(workflows.OpRecovery, final.History[0].Kind, "the recovery runs first")
	s.Equal(req.op.ID, final.History[1].ID)
	s.Equal(workflows.StatusSucceeded, final.History[1].Status)
	s.Require().NotEmpty(s.watchInputs)
	s.False(s.watchInputs[0].Initial, "no new baseline after continue-as-new")
	s.Equal([]int32{1, 3}, s.watchInputs[0].Known)
}

// The entity continues as new on its budget while a roll runs: the roll
// goes on (it is abandoned by this run, not cancelled) and the next run
// carries it as running, to hear its end by signal.
func (s *ClusterSuite) TestContinuesAsNewWhileAnOperationRuns() {
	rolls := 0
	s.sleepyRoll(10*time.Minute, &rolls)
	var req, dup answer
	s.update(time.Minute, workflows.UpdateRequest, restartReq("alice"), &req)
	s.update(3*time.Minute, workflows.UpdateRequest, restartReq("bob"), &dup)
	s.env.RegisterDelayedCallback(func() { s.env.SetCurrentHistoryLength(6000) }, 3*time.Minute+time.Second)

	s.run(workflows.ClusterInput{Spec: testSpec()}) // default budget: 5,000

	s.Require().NoError(dup.err)
	s.True(dup.op.Existing, "a request while it runs joins it")
	in := s.continuedAs()
	s.Equal(1, rolls, "the roll was started once")
	s.Require().NotNil(in.State.Running, "the running roll is carried over")
	s.Equal(req.op.ID, in.State.Running.ID)
	s.Equal(workflows.StatusRunning, in.State.Running.Status)
	s.Empty(in.State.History, "the roll had not ended when the entity continued as new")
}

// Requests of each kind, as clients send them (UpdateRequest).
func restartReq(by string, brokers ...int32) workflows.Request {
	return workflows.Request{Kind: workflows.OpRollingRestart, RequestedBy: by, Brokers: brokers}
}

func upgradeReq(by, version, fromIBP string) workflows.Request {
	params, _ := json.Marshal(workflows.UpgradeParams{Version: version, FromIBP: fromIBP})
	return workflows.Request{Kind: workflows.OpRollingUpgrade, RequestedBy: by, Params: params}
}

func expansionReq(by string, broker int32) workflows.Request {
	return workflows.Request{Kind: workflows.OpVolumeExpansion, RequestedBy: by, Brokers: []int32{broker}}
}

func cleanerReq(by string) workflows.Request {
	return workflows.Request{Kind: workflows.OpCleanerHealth, RequestedBy: by}
}

// upgradeOf is the upgrade an operation was admitted with.
func upgradeOf(t *testing.T, op workflows.Operation) workflows.UpgradeParams {
	t.Helper()
	var p workflows.UpgradeParams
	if err := json.Unmarshal(op.Params, &p); err != nil {
		t.Fatalf("operation %s: params %s: %v", op.ID, op.Params, err)
	}
	return p
}

// Clients of earlier versions ask with one update per kind; they go
// through the same door, with the same checks.
func (s *ClusterSuite) TestLegacyRequestUpdatesAdmitThroughTheSameDoor() {
	rolls := 0
	s.sleepyRoll(time.Minute, &rolls)
	var restart, badBroker answer
	s.update(time.Minute, "request-restart", map[string]any{"requestedBy": "alice", "maxBatch": 2}, &restart)
	s.update(2*time.Minute, "request-restart", map[string]any{"requestedBy": "alice", "brokers": []int32{9}}, &badBroker)
	var final workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { final = s.status(); s.env.CancelWorkflow() }, time.Hour)

	s.run(workflows.ClusterInput{Spec: testSpec()})

	s.Require().NoError(restart.err)
	s.Equal(workflows.OpRollingRestart, restart.op.Kind)
	s.JSONEq(`{"maxBatch":2}`, string(restart.op.Params))
	s.Require().Error(badBroker.err)
	s.Contains(badBroker.err.Error(), "broker 9 is not in cluster test-a")
	s.Equal(1, rolls)
	s.Require().Len(final.History, 1)
	s.Equal(workflows.StatusSucceeded, final.History[0].Status)
}

// An answer of sensing can reach the entity after the roll released the
// broker it saw gone (the answer's workflow task was lost with a killed
// worker): judged by when it was observed, it is still the roll's own
// restart. A broker that leaves after the release is a loss.
func (s *ClusterSuite) TestAnAnswerObservedBeforeTheReleaseIsNoLoss() {
	s.env.OnWorkflow(workflows.RollingRestartWorkflow, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, _ workflows.RollingRestartInput) (workflows.RollingRestartResult, error) {
			workflows.NotifyEntity(ctx, 2, true) // at 1 min
			if err := workflow.Sleep(ctx, 2*time.Minute); err != nil {
				return workflows.RollingRestartResult{}, err
			}
			workflows.NotifyEntity(ctx, 2, false) // at 3 min
			return workflows.RollingRestartResult{}, nil
		})
	var req answer
	s.update(time.Minute, workflows.UpdateRequest, restartReq("alice"), &req)
	var late, final workflows.ClusterStatus
	s.statusAt(5*time.Minute, &late)
	s.statusAt(30*time.Minute, &final)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Hour)
	s.sim.answerDelay = 2 * time.Minute

	s.run(workflows.ClusterInput{Spec: testSpec()},
		watchStep{2 * time.Minute, []int32{1, 3}},     // broker 2 down at 2 min, heard at 4 min
		watchStep{30 * time.Second, []int32{1, 2, 3}}, // back at 2.5 min, heard at 4.5 min
		watchStep{10 * time.Minute, []int32{1, 3}},    // down again at 12.5 min: no touch
	)

	s.Require().NoError(req.err)
	s.Equal(2, late.Watch.Changes, "the late answers were heard")
	s.Empty(late.Losses, "observed while the roll touched broker 2")
	s.Empty(late.Touching)
	s.Require().Len(final.Losses, 1, "the later departure is a loss")
	s.Equal(int32(2), final.Losses[0].Broker)
	s.Empty(final.Released, "forgotten once an answer observed after the release came")
}
