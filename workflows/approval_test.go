package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/workflows"
)

type ApprovalSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env       *testsuite.TestWorkflowEnvironment
	submitted []activities.Action
}

func TestApproval(t *testing.T) { suite.Run(t, new(ApprovalSuite)) }

func (s *ApprovalSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.submitted = nil
	s.env.OnActivity(acts.SubmitAction, mock.Anything, mock.Anything).Return(func(_ context.Context, a activities.Action) (activities.Submitted, error) {
		s.submitted = append(s.submitted, a)
		return activities.Submitted{OperationID: "op-9", Kind: workflows.OpRollingRestart, Text: "queued rolling-restart op-9"}, nil
	}).Maybe()
}

func restartByAlice() workflows.ApprovalInput {
	return workflows.ApprovalInput{
		Action:    activities.Action{Verb: "restart", Cluster: "local-a", RequestedBy: "alice"},
		Approvers: []string{"bob", "carol"},
	}
}

// decideAt sends a decision at delay and stores its refusal, if any.
func (s *ApprovalSuite) decideAt(delay time.Duration, d workflows.ApprovalDecision, refused *error) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(workflows.UpdateApprove, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { *refused = err }, OnComplete: func(any, error) {},
		}, d)
	}, delay)
}

func (s *ApprovalSuite) result() workflows.ApprovalState {
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var st workflows.ApprovalState
	s.Require().NoError(s.env.GetWorkflowResult(&st))
	return st
}

func (s *ApprovalSuite) TestASecondPersonApprovesAndTheActionIsSubmitted() {
	var self, stranger, bob error
	s.decideAt(time.Minute, workflows.ApprovalDecision{By: "alice", Approve: true}, &self)
	s.decideAt(2*time.Minute, workflows.ApprovalDecision{By: "mallory", Approve: true}, &stranger)
	s.decideAt(3*time.Minute, workflows.ApprovalDecision{By: "bob", Approve: true, Reason: "window open"}, &bob)
	s.env.ExecuteWorkflow(workflows.ApprovalWorkflow, restartByAlice())

	st := s.result()
	s.Require().Error(self, "self-approval is refused")
	s.Contains(self.Error(), "a second, different person")
	s.Require().Error(stranger, "an unknown approver is refused")
	s.Contains(stranger.Error(), "mallory may not approve")
	s.NoError(bob)
	s.Equal(workflows.ApprovalApproved, st.Status)
	s.Equal("bob", st.DecidedBy)
	s.Require().Len(s.submitted, 1, "submitted once, after the approval")
	s.Equal("alice", s.submitted[0].RequestedBy)
	s.Equal("bob", s.submitted[0].ApprovedBy, "the approver goes with the action to the operation it starts")
	s.Equal("window open", s.submitted[0].Reason)
	s.Equal("op-9", st.Submitted.OperationID)
}

func (s *ApprovalSuite) TestDenialStartsNothing() {
	var carol error
	s.decideAt(time.Minute, workflows.ApprovalDecision{By: "carol", Approve: false, Reason: "not during the sale"}, &carol)
	s.env.ExecuteWorkflow(workflows.ApprovalWorkflow, restartByAlice())

	st := s.result()
	s.NoError(carol)
	s.Equal(workflows.ApprovalDenied, st.Status)
	s.Empty(s.submitted)
}

func (s *ApprovalSuite) TestUnansweredApprovalExpires() {
	in := restartByAlice()
	in.Timeout = 30 * time.Minute
	s.env.ExecuteWorkflow(workflows.ApprovalWorkflow, in)

	st := s.result()
	s.Equal(workflows.ApprovalExpired, st.Status)
	s.Empty(s.submitted, "a stale yes never comes")
}

func (s *ApprovalSuite) TestARefusalByTheEntityIsReportedNotRetried() {
	s.env = s.NewTestWorkflowEnvironment() // without SetupTest's accepting entity
	s.env.OnActivity(acts.SubmitAction, mock.Anything, mock.Anything).Return(activities.Submitted{},
		temporal.NewNonRetryableApplicationError("broker 9 is not in cluster local-a", activities.ErrTypeBadInput, nil)).Once()
	var bob error
	s.decideAt(time.Minute, workflows.ApprovalDecision{By: "bob", Approve: true}, &bob)
	s.env.ExecuteWorkflow(workflows.ApprovalWorkflow, restartByAlice())

	st := s.result()
	s.Equal(workflows.ApprovalFailed, st.Status)
	s.Contains(st.Error, "broker 9 is not in cluster local-a")
}

func TestFleetSweepAsksEveryClusterAndReportsFailures(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.OnActivity(acts.ListClusters, mock.Anything).Return([]string{"local-b", "local-a", "broken"}, nil)
	env.OnActivity(acts.SubmitAction, mock.Anything, mock.Anything).Return(func(_ context.Context, a activities.Action) (activities.Submitted, error) {
		if a.Verb != activities.VerbHealthCheck {
			t.Errorf("verb %q, want a health check", a.Verb)
		}
		if a.Cluster == "broken" {
			return activities.Submitted{}, temporal.NewNonRetryableApplicationError("unknown cluster broken", activities.ErrTypeBadInput, nil)
		}
		return activities.Submitted{Text: a.Cluster + ": healthy"}, nil
	})
	env.ExecuteWorkflow(workflows.FleetSweepWorkflow, workflows.FleetSweepInput{Parallel: 2})

	if !env.IsWorkflowCompleted() || env.GetWorkflowError() != nil {
		t.Fatalf("sweep: %v", env.GetWorkflowError())
	}
	var res workflows.FleetSweepResult
	if err := env.GetWorkflowResult(&res); err != nil {
		t.Fatal(err)
	}
	want := []workflows.SweptCluster{
		{Cluster: "broken", Error: "unknown cluster broken"},
		{Cluster: "local-a", Summary: "local-a: healthy"},
		{Cluster: "local-b", Summary: "local-b: healthy"},
	}
	if len(res.Clusters) != len(want) {
		t.Fatalf("got %+v", res.Clusters)
	}
	for i := range want {
		if res.Clusters[i] != want[i] {
			t.Errorf("cluster %d: got %+v, want %+v", i, res.Clusters[i], want[i])
		}
	}
}
