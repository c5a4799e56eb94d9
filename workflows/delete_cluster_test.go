package workflows_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

type DeleteSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env       *testsuite.TestWorkflowEnvironment
	residents activities.Residents
	steps     []string
}

func TestDeleteCluster(t *testing.T) { suite.Run(t, new(DeleteSuite)) }

func (s *DeleteSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.residents, s.steps = activities.Residents{}, nil
	s.env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(nil).Maybe()
	s.env.OnActivity(acts.ClusterResidents, mock.Anything, mock.Anything).Return(func(context.Context, fleet.ClusterSpec) (activities.Residents, error) {
		s.steps = append(s.steps, "residents")
		return s.residents, nil
	}).Maybe()
	s.env.OnActivity(acts.TerminateHosts, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RemoveInput) (activities.Removed, error) {
		s.steps = append(s.steps, "terminate "+in.Role)
		return activities.Removed{Removed: 3}, nil
	}).Maybe()
	s.env.OnActivity(acts.RemoveChroot, mock.Anything, mock.Anything).Return(func(context.Context, fleet.ClusterSpec) (int, error) {
		s.steps = append(s.steps, "chroot")
		return 12, nil
	}).Maybe()
	s.env.OnActivity(acts.DeleteDataVolumes, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RemoveInput) (activities.Removed, error) {
		s.steps = append(s.steps, "volumes")
		return activities.Removed{Removed: 3}, nil
	}).Maybe()
}

func deleteInput(force bool) workflows.DeleteClusterInput {
	return workflows.DeleteClusterInput{Spec: testSpec(), OperationID: "op-1", RequestedBy: "alice", ApprovedBy: "bob", Force: force}
}

// While topics or tenants remain, a deletion that is not forced touches
// nothing and says what remains.
func (s *DeleteSuite) TestRefusedWhileTopicsRemain() {
	s.residents = activities.Residents{Topics: 2, Users: 1, Some: []string{"topic orders", "topic payments", "tenant wabash-58799"}}
	s.env.ExecuteWorkflow(workflows.DeleteClusterWorkflow, deleteInput(false))
	var appErr *temporal.ApplicationError
	s.Require().ErrorAs(s.env.GetWorkflowError(), &appErr)
	s.Equal(workflows.ErrTypeDeleteRefused, appErr.Type())
	s.Contains(appErr.Message(), "nothing touched: 2 topic(s) and 1 tenant(s) remain (topic orders, topic payments, tenant wabash-58799)")
	s.Equal([]string{"residents"}, s.steps)
}

// An empty cluster goes in order: brokers, the chroot while the ensemble
// serves, the ensemble, the volumes.
func (s *DeleteSuite) TestDeletesInOrder() {
	s.env.ExecuteWorkflow(workflows.DeleteClusterWorkflow, deleteInput(false))
	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.DeleteClusterResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal([]string{"residents", "terminate " + cloud.RoleBroker, "chroot", "terminate " + cloud.RoleZooKeeper, "volumes"}, s.steps)
	s.Equal(6, res.Hosts)
	s.Equal(3, res.Volumes)
	s.Equal(12, res.Znodes)
}

// Forced, it does not even read the cluster (it may be unreachable).
func (s *DeleteSuite) TestForcedSkipsTheCheck() {
	s.residents = activities.Residents{Topics: 5}
	s.env.ExecuteWorkflow(workflows.DeleteClusterWorkflow, deleteInput(true))
	s.Require().NoError(s.env.GetWorkflowError())
	s.NotContains(s.steps, "residents")
	s.Contains(s.steps, "volumes")
}

// A deletion needs a second person; once it succeeded the entity records
// it, cancels what was queued and ends.
func (s *ClusterSuite) TestDeletionNeedsApprovalAndEndsTheEntity() {
	s.env.RegisterWorkflow(workflows.DeleteClusterWorkflow)
	s.env.OnWorkflow(workflows.DeleteClusterWorkflow, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in workflows.DeleteClusterInput) (workflows.DeleteClusterResult, error) {
			s.Equal("bob", in.ApprovedBy)
			s.False(in.Force)
			if err := workflow.Sleep(ctx, 5*time.Minute); err != nil {
				return workflows.DeleteClusterResult{}, err
			}
			return workflows.DeleteClusterResult{Hosts: 3, Volumes: 3}, nil
		})
	s.env.OnWorkflow(workflows.RollingRestartWorkflow, mock.Anything, mock.Anything).Return(workflows.RollingRestartResult{}, nil).Maybe()
	del := workflows.Request{Kind: workflows.OpDeleteCluster, RequestedBy: "alice"}
	var unapproved, self, approved, queued answer
	s.update(time.Minute, workflows.UpdateRequest, del, &unapproved)
	selfApproved := del
	selfApproved.ApprovedBy = "alice"
	s.update(time.Minute, workflows.UpdateRequest, selfApproved, &self)
	del.ApprovedBy = "bob"
	s.update(2*time.Minute, workflows.UpdateRequest, del, &approved)
	s.update(3*time.Minute, workflows.UpdateRequest, restartReq("carol"), &queued)
	s.run(workflows.ClusterInput{Spec: testSpec()})

	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError(), "the entity ends by itself")
	s.ErrorContains(unapproved.err, "needs a second person's approval")
	s.ErrorContains(self.err, "a second, different person must approve it")
	s.Require().NoError(approved.err)
	s.Require().NoError(queued.err)
	st := s.status()
	s.Require().Len(st.History, 2)
	s.Equal(workflows.OpDeleteCluster, st.History[0].Kind)
	s.Equal(workflows.StatusSucceeded, st.History[0].Status)
	s.Contains(st.History[0].Outcome, "deleted: 3 host(s) terminated")
	s.Equal(workflows.StatusCancelled, st.History[1].Status, "a roll queued behind the deletion never runs")
	s.Equal("the cluster was deleted", st.History[1].CancelReason)
}

// The approver forces a deletion by approving with force; a kind without
// force refuses it.
func (s *ApprovalSuite) TestApproverForcesADeletion() {
	var refused error
	s.decideAt(time.Minute, workflows.ApprovalDecision{By: "bob", Approve: true, Force: true}, &refused)
	s.env.ExecuteWorkflow(workflows.ApprovalWorkflow, workflows.ApprovalInput{
		Action: activities.Action{Verb: "delete", Cluster: "local-a", RequestedBy: "alice"}, Approvers: []string{"bob"}})
	st := s.result()
	s.Require().NoError(refused)
	s.Equal(workflows.ApprovalApproved, st.Status)
	s.Require().Len(s.submitted, 1)
	s.JSONEq(`{"force":true}`, string(s.submitted[0].Params))
	s.Equal("bob", s.submitted[0].ApprovedBy)
}

func (s *ApprovalSuite) TestARestartCannotBeForced() {
	var refused, denied error
	s.decideAt(time.Minute, workflows.ApprovalDecision{By: "bob", Approve: true, Force: true}, &refused)
	s.decideAt(2*time.Minute, workflows.ApprovalDecision{By: "bob", Approve: false, Force: true}, &denied)
	s.decideAt(3*time.Minute, workflows.ApprovalDecision{By: "bob", Approve: true}, new(error))
	s.env.ExecuteWorkflow(workflows.ApprovalWorkflow, restartByAlice())
	s.ErrorContains(refused, "a restart cannot be forced")
	s.ErrorContains(denied, "force goes with an approval")
	s.Equal(workflows.ApprovalApproved, s.result().Status)
	s.Empty(s.submitted[0].Params)
}

func TestDeleteKindRefusesBrokersAndUnknownParams(t *testing.T) {
	k, err := workflows.KindOfVerb("delete")
	require.NoError(t, err)
	require.True(t, k.Destructive())
	require.False(t, k.Schedulable(), "a deletion is never a maintenance window")
	require.ErrorContains(t, k.Check(workflows.Request{Kind: workflows.OpDeleteCluster, RequestedBy: "a", Brokers: []int32{1}}), "whole cluster")
	require.Error(t, k.Check(workflows.Request{Kind: workflows.OpDeleteCluster, RequestedBy: "a", Params: json.RawMessage(`{"purge":true}`)}))
	require.NoError(t, k.Check(workflows.Request{Kind: workflows.OpDeleteCluster, RequestedBy: "a", Params: json.RawMessage(`{"force":true}`)}))
}
