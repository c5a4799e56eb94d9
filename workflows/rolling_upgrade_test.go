package workflows_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/workflows"
)

type RollingUpgradeSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	// rolls records every child roll: its workflow ID and input, in order.
	rolls []childRoll
}

type childRoll struct {
	workflowID string
	in         workflows.RollingRestartInput
}

func TestRollingUpgrade(t *testing.T) { suite.Run(t, new(RollingUpgradeSuite)) }

func (s *RollingUpgradeSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterWorkflow(workflows.RollingRestartWorkflow)
	s.env.RegisterWorkflow(workflows.RollingUpgradeWorkflow)
	s.env.SetStartWorkflowOptions(s.upgradeOptions())
	s.rolls = nil
}

func (s *RollingUpgradeSuite) upgradeOptions() client.StartWorkflowOptions {
	return client.StartWorkflowOptions{ID: workflows.OperationWorkflowID("test-a", "upgrade", "u-1")}
}

func (s *RollingUpgradeSuite) AfterTest(_, _ string) { s.env.AssertExpectations(s.T()) }

// mockRolls answers every child roll after 10 minutes, or with failPhase's
// error for the roll of that phase.
func (s *RollingUpgradeSuite) mockRolls(env *testsuite.TestWorkflowEnvironment, failPhase string) {
	env.OnWorkflow(workflows.RollingRestartWorkflow, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in workflows.RollingRestartInput) (workflows.RollingRestartResult, error) {
			id := workflow.GetInfo(ctx).WorkflowExecution.ID
			s.rolls = append(s.rolls, childRoll{workflowID: id, in: in})
			if err := workflow.Sleep(ctx, 10*time.Minute); err != nil {
				return workflows.RollingRestartResult{}, err
			}
			if failPhase != "" && id == workflows.UpgradePhaseWorkflowID(s.upgradeOptions().ID, failPhase) {
				return workflows.RollingRestartResult{}, errBrokerDidNotStart
			}
			return workflows.RollingRestartResult{Brokers: []workflows.BrokerRestart{{Broker: 1}, {Broker: 2}, {Broker: 3}}}, nil
		})
}

func upgradeInput(version, fromIBP, targetIBP string) workflows.RollingUpgradeInput {
	return workflows.RollingUpgradeInput{Spec: testSpec(), OperationID: "u-1", RequestedBy: "alice", Version: version, FromIBP: fromIBP, TargetIBP: targetIBP}
}

func (s *RollingUpgradeSuite) progress() workflows.UpgradeProgress {
	v, err := s.env.QueryWorkflow(workflows.QueryProgress)
	s.Require().NoError(err)
	var p workflows.UpgradeProgress
	s.Require().NoError(v.Get(&p))
	return p
}

func (s *RollingUpgradeSuite) TestTwoRollsInOrderBinariesThenProtocol() {
	s.mockRolls(s.env, "")
	s.env.OnUpsertTypedSearchAttributes(temporal.NewSearchAttributes(
		workflows.AttrClusterID.ValueSet("test-a"), workflows.AttrOperation.ValueSet(workflows.OpRollingUpgrade))).Return(nil).Once()
	var during1, during2 workflows.UpgradeProgress
	s.env.RegisterDelayedCallback(func() { during1 = s.progress() }, 5*time.Minute)
	s.env.RegisterDelayedCallback(func() { during2 = s.progress() }, 15*time.Minute)

	s.env.ExecuteWorkflow(workflows.RollingUpgradeWorkflow, upgradeInput("3.7.1", "3.6", ""))

	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	s.Require().Len(s.rolls, 2)
	self := s.upgradeOptions().ID
	bin, proto := s.rolls[0], s.rolls[1]
	s.Equal(self+"/binaries", bin.workflowID, "the rolls' IDs derive from the upgrade's")
	s.Equal(self+"/protocol", proto.workflowID)
	s.Equal("3.7.1", bin.in.Version, "phase 1: the new binaries")
	s.Equal("3.6", bin.in.InterBrokerProtocolVersion, "phase 1: the protocol pinned to the old one")
	s.Equal("3.7.1", proto.in.Version, "phase 2: the same binaries")
	s.Equal("3.7", proto.in.InterBrokerProtocolVersion, "phase 2: the protocol bumped to the new major.minor")
	for _, r := range s.rolls {
		s.Equal(testSpec(), r.in.Spec)
		s.Equal("alice", r.in.RequestedBy)
		s.Empty(r.in.Brokers, "every broker")
	}
	s.Equal("u-1/binaries", bin.in.OperationID)

	s.Equal(workflows.UpgradeProgress{
		Upgrade: workflows.Upgrade{Version: "3.7.1", FromIBP: "3.6", TargetIBP: "3.7"},
		Phase:   workflows.UpgradePhaseBinaries, PhaseNumber: 1, Phases: 2, RollWorkflowID: self + "/binaries",
	}, during1)
	s.Equal(workflows.UpgradePhaseProtocol, during2.Phase)
	s.Equal(2, during2.PhaseNumber)
	s.Equal(self+"/protocol", during2.RollWorkflowID)
	s.Equal(workflows.UpgradePhaseDone, s.progress().Phase)

	var res workflows.RollingUpgradeResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal(workflows.Upgrade{Version: "3.7.1", FromIBP: "3.6", TargetIBP: "3.7"}, res.Upgrade)
	s.Len(res.Binaries.Brokers, 3)
	s.Require().NotNil(res.Protocol)
	s.Len(res.Protocol.Brokers, 3)
}

func (s *RollingUpgradeSuite) TestExplicitTargetProtocol() {
	s.mockRolls(s.env, "")
	s.env.ExecuteWorkflow(workflows.RollingUpgradeWorkflow, upgradeInput("3.7.1", "3.5-IV2", "3.6"))
	s.Require().NoError(s.env.GetWorkflowError())
	s.Require().Len(s.rolls, 2)
	s.Equal("3.5-IV2", s.rolls[0].in.InterBrokerProtocolVersion)
	s.Equal("3.6", s.rolls[1].in.InterBrokerProtocolVersion)
}

// A patch release speaks the protocol already in force: one roll.
func (s *RollingUpgradeSuite) TestPatchUpgradeRollsOnce() {
	s.mockRolls(s.env, "")
	s.env.ExecuteWorkflow(workflows.RollingUpgradeWorkflow, upgradeInput("3.7.2", "3.7", ""))
	s.Require().NoError(s.env.GetWorkflowError())
	s.Require().Len(s.rolls, 1)
	s.Equal("3.7.2", s.rolls[0].in.Version)
	s.Equal("3.7", s.rolls[0].in.InterBrokerProtocolVersion)
	var res workflows.RollingUpgradeResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Nil(res.Protocol)
}

func (s *RollingUpgradeSuite) TestPhaseOneFailureNeverBumpsTheProtocol() {
	s.mockRolls(s.env, workflows.UpgradePhaseBinaries)
	s.env.ExecuteWorkflow(workflows.RollingUpgradeWorkflow, upgradeInput("3.7.1", "3.6", ""))

	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	s.Contains(err.Error(), "phase 1/2 (binaries)")
	s.Contains(err.Error(), "did not start")
	s.Require().Len(s.rolls, 1, "no protocol roll after a failed binaries roll")
	s.Equal(workflows.UpgradePhaseBinaries, s.progress().Phase)
}

func (s *RollingUpgradeSuite) TestBadVersionsFailBeforeTouchingAnything() {
	cases := []struct {
		name                       string
		version, fromIBP, targetIB string
		want                       string
	}{
		{"no patch", "3.7", "3.6", "", `version "3.7": want major.minor.patch, like 3.7.1`},
		{"not a version", "latest", "3.6", "", `version "latest"`},
		{"shell", "3.7.1; reboot", "3.6", "", "want major.minor.patch"},
		{"kafka 4", "4.0.0", "3.9", "", "no ZooKeeper mode"},
		{"no current protocol", "3.7.1", "", "", "fromIbp is required"},
		{"bad current protocol", "3.7.1", "3.x", "", `current inter.broker.protocol.version "3.x"`},
		{"bad target protocol", "3.7.1", "3.6", "three", `target inter.broker.protocol.version "three"`},
		{"target newer than the binaries", "3.7.1", "3.6", "3.8", "newer than Kafka 3.7.1 speaks"},
		{"protocol downgrade", "3.7.1", "3.7", "3.6", "is a downgrade"},
		{"IV downgrade", "3.7.1", "3.7", "3.7-IV1", "is a downgrade"},
	}
	for _, c := range cases {
		s.Run(c.name, func() {
			env := s.NewTestWorkflowEnvironment()
			env.RegisterWorkflow(workflows.RollingRestartWorkflow)
			s.rolls = nil
			s.mockRolls(env, "")
			env.ExecuteWorkflow(workflows.RollingUpgradeWorkflow, upgradeInput(c.version, c.fromIBP, c.targetIB))

			err := env.GetWorkflowError()
			s.Require().Error(err)
			s.Contains(err.Error(), c.want)
			var appErr *temporal.ApplicationError
			s.Require().True(errors.As(err, &appErr), "an application error: %v", err)
			s.True(appErr.NonRetryable())
			s.Equal(activities.ErrTypeBadInput, appErr.Type())
			s.Empty(s.rolls, "no roll started")
		})
	}
	s.rolls = nil
	s.mockRolls(s.env, "") // the suite's env, so AfterTest finds nothing unmet
	s.env.ExecuteWorkflow(workflows.RollingUpgradeWorkflow, upgradeInput("3.7.1", "3.6", ""))
	s.NoError(s.env.GetWorkflowError())
}

// The cluster entity's side: request-upgrade admits, joins, refuses, and the
// entity runs the upgrade (the real workflow) whose rolls are mocked.
type ClusterUpgradeSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env   *testsuite.TestWorkflowEnvironment
	rolls []childRoll
}

func TestClusterUpgrade(t *testing.T) { suite.Run(t, new(ClusterUpgradeSuite)) }

func (s *ClusterUpgradeSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.RegisterWorkflow(workflows.RollingRestartWorkflow)
	s.env.RegisterWorkflow(workflows.RollingUpgradeWorkflow)
	stubSensing(s.env, nil) // the entity's broker watch (cluster_test.go)
	s.rolls = nil
	s.env.OnWorkflow(workflows.RollingRestartWorkflow, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in workflows.RollingRestartInput) (workflows.RollingRestartResult, error) {
			s.rolls = append(s.rolls, childRoll{workflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, in: in})
			return workflows.RollingRestartResult{}, workflow.Sleep(ctx, 10*time.Minute)
		}).Maybe()
}

func (s *ClusterUpgradeSuite) update(delay time.Duration, name string, arg any, into *answer) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   func(err error) { into.err = err },
			OnComplete: func(v any, err error) { into.err = err; into.op, _ = v.(workflows.Operation) },
		}, arg)
	}, delay)
}

func (s *ClusterUpgradeSuite) status() workflows.ClusterStatus {
	v, err := s.env.QueryWorkflow(workflows.QueryStatus)
	s.Require().NoError(err)
	var st workflows.ClusterStatus
	s.Require().NoError(v.Get(&st))
	return st
}

func (s *ClusterUpgradeSuite) TestUpgradeRunsBothRollsAndDuplicateJoins() {
	var first, dup, other, patch answer
	req := upgradeReq("alice", "3.7.1", "3.6")
	s.update(time.Minute, workflows.UpdateRequest, req, &first)
	s.update(5*time.Minute, workflows.UpdateRequest, upgradeReq("bob", "3.7.1", ""), &dup)
	s.update(6*time.Minute, workflows.UpdateRequest, upgradeReq("bob", "3.8.0", "3.6"), &other)
	var running workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { running = s.status() }, 7*time.Minute)
	// After it finished: a patch upgrade takes the protocol the last one ended on.
	s.update(40*time.Minute, workflows.UpdateRequest, upgradeReq("carol", "3.7.2", ""), &patch)
	var final workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { final = s.status(); s.env.CancelWorkflow() }, 2*time.Hour)

	s.env.ExecuteWorkflow(workflows.ClusterWorkflow, workflows.ClusterInput{Spec: testSpec()})

	s.Require().NoError(first.err)
	s.Equal(workflows.OpRollingUpgrade, first.op.Kind)
	s.Equal(workflows.OperationWorkflowID("test-a", "upgrade", first.op.ID), first.op.WorkflowID)
	s.Equal(workflows.UpgradeParams{Version: "3.7.1", FromIBP: "3.6", TargetIBP: "3.7"}, upgradeOf(s.T(), first.op))
	s.Require().NoError(dup.err)
	s.True(dup.op.Existing, "an upgrade to the same version joins the running one")
	s.Equal(first.op.ID, dup.op.ID)
	s.Require().Error(other.err, "an upgrade to another version while one runs is refused")
	s.Contains(other.err.Error(), "already running")
	s.Require().NotNil(running.Running)
	s.Equal(first.op.ID, running.Running.ID)
	s.Empty(running.Queue)

	s.Require().NoError(patch.err)
	s.Equal(workflows.UpgradeParams{Version: "3.7.2", FromIBP: "3.7", TargetIBP: "3.7"}, upgradeOf(s.T(), patch.op))

	s.Require().Len(s.rolls, 3, "two rolls for the minor upgrade, one for the patch")
	s.Equal(workflows.UpgradePhaseWorkflowID(first.op.WorkflowID, workflows.UpgradePhaseBinaries), s.rolls[0].workflowID)
	s.Equal("3.6", s.rolls[0].in.InterBrokerProtocolVersion)
	s.Equal(workflows.UpgradePhaseWorkflowID(first.op.WorkflowID, workflows.UpgradePhaseProtocol), s.rolls[1].workflowID)
	s.Equal("3.7", s.rolls[1].in.InterBrokerProtocolVersion)
	s.Equal("3.7.2", s.rolls[2].in.Version)
	s.Equal("3.7", s.rolls[2].in.InterBrokerProtocolVersion)

	s.Require().Len(final.History, 2)
	for _, op := range final.History {
		s.Equal(workflows.StatusSucceeded, op.Status, op.Error)
	}
	s.Require().NotNil(final.Protocol, "the entity keeps the protocol level")
	s.Equal("3.7.2", final.Protocol.KafkaVersion)
	s.Equal("3.7", final.Protocol.InterBrokerProtocol)
	s.Equal(patch.op.ID, final.Protocol.By)
}

// A cluster registered with its versions needs no fromIbp for its first
// upgrade through kfleet.
func (s *ClusterUpgradeSuite) TestTheSpecSeedsTheProtocolLevel() {
	spec := testSpec()
	spec.KafkaVersion, spec.InterBrokerProtocol = "3.6.2", "3.6"
	var up answer
	var before workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { before = s.status() }, 30*time.Second)
	s.update(time.Minute, workflows.UpdateRequest, upgradeReq("alice", "3.7.1", ""), &up)
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, time.Hour)

	s.env.ExecuteWorkflow(workflows.ClusterWorkflow, workflows.ClusterInput{Spec: spec})

	s.Require().NotNil(before.Protocol)
	s.Equal(workflows.ProtocolLevel{KafkaVersion: "3.6.2", InterBrokerProtocol: "3.6"}, *before.Protocol)
	s.Require().NoError(up.err)
	s.Equal(workflows.UpgradeParams{Version: "3.7.1", FromIBP: "3.6", TargetIBP: "3.7"}, upgradeOf(s.T(), up.op))
}

func (s *ClusterUpgradeSuite) TestValidatorRejectsNonsenseAndChangesNothing() {
	cases := []struct {
		name string
		req  workflows.Request
		want string
	}{
		{"no requester", upgradeReq("", "3.7.1", "3.6"), "requestedBy is required"},
		{"bad version", upgradeReq("alice", "3.7", "3.6"), "want major.minor.patch, like 3.7.1"},
		{"bad protocol", upgradeReq("alice", "3.7.1", "3"), "want major.minor"},
		{"downgrade", upgradeReq("alice", "3.6.2", "3.7"), "is a downgrade"},
		{"current protocol unknown", upgradeReq("alice", "3.7.1", ""), "fromIbp is required"},
	}
	answers := make([]answer, len(cases))
	for i, c := range cases {
		s.update(time.Duration(i+1)*time.Minute, workflows.UpdateRequest, c.req, &answers[i])
	}
	var final workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { final = s.status(); s.env.CancelWorkflow() }, time.Hour)

	s.env.ExecuteWorkflow(workflows.ClusterWorkflow, workflows.ClusterInput{Spec: testSpec()})

	for i, c := range cases {
		s.Require().Error(answers[i].err, c.name)
		s.Contains(answers[i].err.Error(), c.want, c.name)
	}
	s.Nil(final.Running)
	s.Empty(final.Queue)
	s.Empty(final.History)
	s.Zero(final.Seq)
	s.Empty(s.rolls)
}

// After a failed upgrade the brokers may run either protocol: kfleet will
// not guess the current one.
func (s *ClusterUpgradeSuite) TestNoProtocolGuessAfterAFailedUpgrade() {
	s.env.OnWorkflow(workflows.RollingUpgradeWorkflow, mock.Anything, mock.Anything).Return(
		workflows.RollingUpgradeResult{}, errBrokerDidNotStart).Once()
	var first, next answer
	s.update(time.Minute, workflows.UpdateRequest, upgradeReq("alice", "3.7.1", "3.6"), &first)
	s.update(10*time.Minute, workflows.UpdateRequest, upgradeReq("alice", "3.7.1", ""), &next)
	var final workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { final = s.status(); s.env.CancelWorkflow() }, time.Hour)

	s.env.ExecuteWorkflow(workflows.ClusterWorkflow, workflows.ClusterInput{Spec: testSpec()})

	s.Require().NoError(first.err)
	s.Require().Error(next.err)
	s.Contains(next.err.Error(), "fromIbp is required: an upgrade failed")
	s.Require().Len(final.History, 1)
	s.Equal(workflows.StatusFailed, final.History[0].Status)
}
