package workflows_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/testsuite"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// MigrationSuite runs MigrationWorkflow against a fake cluster whose
// stage moves when a step's operation succeeds.
type MigrationSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	// stage is the fake entity's; blockers its preflight's.
	stage    fleet.MigrationStage
	blockers []fleet.Blocker
	// steps are the steps submitted; fail makes the next step fail.
	steps []workflows.MigrationParams
	fail  string
}

func TestMigration(t *testing.T) { suite.Run(t, new(MigrationSuite)) }

func (s *MigrationSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.stage, s.blockers, s.steps, s.fail = fleet.MigrationStage{Mode: fleet.ModeZooKeeper}, nil, nil, ""
	s.env.OnActivity(acts.CheckMigrationPreflight, mock.Anything, mock.Anything).Return(func(context.Context, string) (activities.MigrationPreflight, error) {
		return activities.MigrationPreflight{Stage: s.stage, Blockers: s.blockers}, nil
	}).Maybe()
	s.env.OnActivity(acts.SubmitAction, mock.Anything, mock.Anything).Return(func(_ context.Context, a activities.Action) (activities.Submitted, error) {
		var p workflows.MigrationParams
		s.Require().NoError(json.Unmarshal(a.Params, &p))
		s.steps = append(s.steps, p)
		return activities.Submitted{OperationID: "op-" + p.String(), Kind: workflows.OpMigrationPhase}, nil
	}).Maybe()
	s.env.OnActivity(acts.WaitOperationEnded, mock.Anything, mock.Anything).Return(func(context.Context, activities.WaitOperationInput) (activities.OperationState, error) {
		p := s.steps[len(s.steps)-1]
		if s.fail != "" {
			err := s.fail
			s.fail = ""
			return activities.OperationState{Status: workflows.StatusFailed, Ended: true, Error: err}, nil
		}
		switch {
		case p.Rollback:
			s.stage = fleet.MigrationStage{Mode: fleet.ModeZooKeeper}
		case p.Phase == fleet.PhaseFinalize:
			s.stage = fleet.MigrationStage{Mode: fleet.ModeKRaft}
		default:
			s.stage = fleet.MigrationStage{Mode: fleet.ModeMigrating, Phase: p.Phase}
		}
		return activities.OperationState{Status: workflows.StatusSucceeded, Ended: true, Outcome: p.String() + " done"}, nil
	}).Maybe()
	s.env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(nil).Maybe()
}

func (s *MigrationSuite) decideAt(delay time.Duration, d workflows.MigrationDecision, refused *error) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(workflows.UpdateMigrationDecide, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { *refused = err }, OnComplete: func(any, error) {},
		}, d)
	}, delay)
}

func (s *MigrationSuite) approve(at time.Duration, by string, phase fleet.MigrationPhase) *error {
	var err error
	s.decideAt(at, workflows.MigrationDecision{By: by, Action: workflows.MigrationApprove, Phase: phase}, &err)
	return &err
}

func (s *MigrationSuite) result() workflows.MigrationState {
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var st workflows.MigrationState
	s.Require().NoError(s.env.GetWorkflowResult(&st))
	return st
}

func byAlice() workflows.MigrationInput {
	return workflows.MigrationInput{Cluster: "local-z", RequestedBy: "alice", PollInterval: time.Second}
}

func (s *MigrationSuite) TestRefusedAtPreflightChangesNothing() {
	s.blockers = []fleet.Blocker{{Gate: fleet.GatePreflight, Reason: "every broker must run Kafka 3.9.x"}}
	s.env.ExecuteWorkflow(workflows.MigrationWorkflow, byAlice())
	st := s.result()
	s.Equal(workflows.MigrationRefused, st.Status)
	s.Require().Len(st.Blockers, 1)
	s.Empty(s.steps, "nothing submitted")
}

func (s *MigrationSuite) TestEachPhaseWaitsForASecondPersonsApprovalInOrder() {
	self := s.approve(time.Hour, "alice", fleet.PhaseControllers)
	skipAhead := s.approve(2*time.Hour, "bob", fleet.PhaseDualWrite)
	var errs []*error
	// A week between phases, as in the field.
	for i, p := range []fleet.MigrationPhase{fleet.PhaseControllers, fleet.PhaseDualWrite, fleet.PhaseBrokersKRaft, fleet.PhaseFinalize} {
		errs = append(errs, s.approve(time.Duration(i+1)*7*24*time.Hour, "bob", p))
	}
	stale := s.approve(15*24*time.Hour, "bob", fleet.PhaseDualWrite) // a second "yes" to phase 2
	s.env.ExecuteWorkflow(workflows.MigrationWorkflow, byAlice())

	st := s.result()
	s.Require().Error(*self)
	s.Contains((*self).Error(), "a second, different person")
	s.Require().Error(*skipAhead)
	s.Contains((*skipAhead).Error(), "phase 2-dual-write is not the one awaiting approval: phase 1-controllers is")
	for _, err := range errs {
		s.NoError(*err)
	}
	s.Require().Error(*stale, "a stale approval never starts the phase after it")
	s.Contains((*stale).Error(), "phase 3-brokers-kraft is")
	s.Equal(workflows.MigrationFinalized, st.Status)
	s.Equal(fleet.ModeKRaft, st.Stage.Mode)
	s.Require().Len(s.steps, 4, "each phase once")
	for i, p := range s.steps {
		s.Equal(fleet.MigrationPhase(i+1), p.Phase)
		s.False(p.Rollback)
	}
	s.Equal("bob", st.Steps[3].ApprovedBy)
}

func (s *MigrationSuite) TestAFailedPhaseWaitsThenRollsBackToZooKeeper() {
	s.approve(time.Hour, "bob", fleet.PhaseControllers)
	s.env.RegisterDelayedCallback(func() { s.fail = "wait for the KRaft controller to take over: No brokers are known to KRaft" }, 90*time.Minute)
	s.approve(2*time.Hour, "bob", fleet.PhaseDualWrite)
	var rollback error
	s.decideAt(3*time.Hour, workflows.MigrationDecision{By: "carol", Action: workflows.MigrationRollback}, &rollback)
	s.env.ExecuteWorkflow(workflows.MigrationWorkflow, byAlice())

	st := s.result()
	s.NoError(rollback)
	s.Equal(workflows.MigrationRolledBack, st.Status)
	s.Equal(fleet.ModeZooKeeper, st.Stage.Mode)
	s.Require().Len(s.steps, 3)
	s.Equal(workflows.MigrationParams{Phase: fleet.PhaseControllers, Rollback: true}, s.steps[2],
		"the failed phase 2 left the cluster in phase 1: that is what is rolled back")
	s.Equal(workflows.StatusFailed, st.Steps[1].Status)
	s.Contains(st.Steps[1].Error, "No brokers are known to KRaft")
}

func (s *MigrationSuite) TestResumesAtTheClustersPhase() {
	s.stage = fleet.MigrationStage{Mode: fleet.ModeMigrating, Phase: fleet.PhaseDualWrite}
	var early error
	s.decideAt(time.Minute, workflows.MigrationDecision{By: "bob", Action: workflows.MigrationApprove, Phase: fleet.PhaseControllers}, &early)
	s.approve(time.Hour, "bob", fleet.PhaseBrokersKRaft)
	s.decideAt(2*time.Hour, workflows.MigrationDecision{By: "bob", Action: workflows.MigrationAbandon, Reason: "freeze"}, new(error))
	s.env.ExecuteWorkflow(workflows.MigrationWorkflow, byAlice())

	st := s.result()
	s.Error(early, "phase 1 is done already")
	s.Equal(workflows.MigrationAbandoned, st.Status)
	s.Equal(fleet.MigrationStage{Mode: fleet.ModeMigrating, Phase: fleet.PhaseBrokersKRaft}, st.Stage)
	s.Require().Len(s.steps, 1)
	s.Equal(fleet.PhaseBrokersKRaft, s.steps[0].Phase)
}
