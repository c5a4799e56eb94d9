package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

type ClusterSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
}

func TestCluster(t *testing.T) { suite.Run(t, new(ClusterSuite)) }

func (s *ClusterSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterWorkflow(workflows.RollingRestartWorkflow)
}

// update sends an update at delay and stores what it answered.
type answer struct {
	op  workflows.Operation
	err error
}

func (s *ClusterSuite) update(delay time.Duration, name string, arg any, into *answer) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   func(err error) { into.err = err },
			OnComplete: func(v any, err error) { into.err = err; into.op, _ = v.(workflows.Operation) },
		}, arg)
	}, delay)
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
	s.update(time.Minute, workflows.UpdateRequestRestart, workflows.RestartRequest{RequestedBy: "alice"}, &first)
	s.update(5*time.Minute, workflows.UpdateRequestRestart, workflows.RestartRequest{RequestedBy: "bob"}, &dup)
	var running workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { running = s.status() }, 6*time.Minute)
	s.update(30*time.Minute, workflows.UpdateRequestRestart, workflows.RestartRequest{RequestedBy: "alice"}, &after)
	var final workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { final = s.status(); s.env.CancelWorkflow() }, 60*time.Minute)

	s.env.ExecuteWorkflow(workflows.ClusterWorkflow, workflows.ClusterInput{Spec: testSpec()})

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
	s.update(time.Minute, workflows.UpdateRequestRestart, workflows.RestartRequest{RequestedBy: "alice"}, &a1)
	s.update(10*time.Minute, workflows.UpdateRequestRestart, workflows.RestartRequest{RequestedBy: "alice"}, &a2)
	var final workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { final = s.status(); s.env.CancelWorkflow() }, 20*time.Minute)

	s.env.ExecuteWorkflow(workflows.ClusterWorkflow, workflows.ClusterInput{Spec: testSpec()})

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
		{"no requester", workflows.UpdateRequestRestart, workflows.RestartRequest{}, "requestedBy is required"},
		{"unknown broker", workflows.UpdateRequestRestart, workflows.RestartRequest{RequestedBy: "alice", Brokers: []int32{7}}, "broker 7 is not in cluster test-a"},
		{"spec of another cluster", workflows.UpdateSetSpec, other, `spec is for cluster "test-b"`},
		{"invalid spec", workflows.UpdateSetSpec, bad, "listed twice"},
	}
	answers := make([]answer, len(cases))
	for i, c := range cases {
		s.update(time.Duration(i+1)*time.Minute, c.update, c.arg, &answers[i])
	}
	var final workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { final = s.status(); s.env.CancelWorkflow() }, time.Hour)

	s.env.ExecuteWorkflow(workflows.ClusterWorkflow, workflows.ClusterInput{Spec: testSpec()})

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
	s.update(2*time.Minute, workflows.UpdateRequestRestart, workflows.RestartRequest{RequestedBy: "alice"}, &a2)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Hour)

	s.env.ExecuteWorkflow(workflows.ClusterWorkflow, workflows.ClusterInput{Spec: testSpec()})

	s.NoError(a1.err)
	s.NoError(a2.err)
	s.Equal(newSpec, got)
}
