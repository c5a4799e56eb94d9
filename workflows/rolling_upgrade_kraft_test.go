package workflows_test

import (
	"context"
	"errors"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/workflows"
)

// kraftCluster is what the KRaft upgrade's activities see: the level, the
// refusals each finalize answers in turn, and what was unregistered.
type kraftCluster struct {
	current      int16
	refusals     []activities.FinalizeResult // answered in turn; then finalized
	unregistered []int32
	finalized    bool
	// refusedAtInput: no roll is expected.
	refusedAtInput bool
}

// mockKRaftUpgrade answers the KRaft upgrade's activities from c.
func (s *RollingUpgradeSuite) mockKRaftUpgrade(c *kraftCluster) {
	if !c.refusedAtInput {
		s.mockRolls(s.env, "")
	}
	s.env.OnActivity(acts.CurrentMetadataVersion, mock.Anything, mock.Anything).Return(c.current, nil).Maybe()
	s.env.OnActivity(acts.WaitUpgradeReady, mock.Anything, mock.Anything).Return(activities.ReadyVerdict{Ready: true, Brokers: 3, Controllers: 3}, nil).Maybe()
	s.env.OnActivity(acts.FinalizeMetadataVersion, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FinalizeInput) (activities.FinalizeResult, error) {
			if len(c.refusals) > 0 {
				r := c.refusals[0]
				c.refusals = c.refusals[1:]
				return r, nil
			}
			c.finalized = true
			return activities.FinalizeResult{From: c.current, To: 25}, nil
		}).Maybe()
	s.env.OnActivity(acts.DescribeGhost, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.GhostInput) (activities.Ghost, error) {
			return activities.Ghost{Node: in.Node, Registered: true, Fenced: true, LastVersion: "3.9.0",
				Why: "broker 7 (registered but not running, Kafka 3.9.0) does not support metadata.version 4.0-IV3"}, nil
		}).Maybe()
	s.env.OnActivity(acts.UnregisterGhost, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.GhostInput) (activities.Ghost, error) {
			c.unregistered = append(c.unregistered, in.Node)
			return activities.Ghost{Node: in.Node, Why: "unregistered"}, nil
		}).Maybe()
	s.env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(nil).Maybe()
}

func kraftUpgradeInput(version, metadata string) workflows.RollingUpgradeInput {
	return workflows.RollingUpgradeInput{Spec: kraftTestSpec(), OperationID: "u-1", RequestedBy: "alice", Version: version, MetadataVersion: metadata}
}

// ghostRefusal is FinalizeMetadataVersion's answer while ghost 7 blocks.
var ghostRefusal = activities.FinalizeResult{From: 21, To: 25, Ghosts: []int32{7},
	Refusals: []string{"broker 7 did not report what it supports and is a ghost (registered, not in the spec): unregister it, with approval"}}

// decideAt answers the upgrade's pause after delay, keeping what it was
// paused at.
func (s *RollingUpgradeSuite) decideAt(delay time.Duration, d workflows.Decision, paused *workflows.UpgradeProgress, into *error) {
	s.env.RegisterDelayedCallback(func() {
		*paused = s.progress()
		s.env.UpdateWorkflow(workflows.UpdateDecide, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { *into = err }, OnComplete: func(_ any, err error) { *into = err },
		}, d)
	}, delay)
}

// endResult is the result a KRaft upgrade's error carries.
func (s *RollingUpgradeSuite) endResult(wantType string) (workflows.RollingUpgradeResult, string) {
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr), err)
	s.Equal(wantType, appErr.Type())
	var res workflows.RollingUpgradeResult
	s.Require().NoError(appErr.Details(&res))
	return res, appErr.Message()
}

func (s *RollingUpgradeSuite) TestKRaftRollsThenFinalizes() {
	c := &kraftCluster{current: 21}
	s.mockKRaftUpgrade(c)
	s.env.ExecuteWorkflow(workflows.RollingUpgradeWorkflow, kraftUpgradeInput("4.0.0", ""))

	s.Require().NoError(s.env.GetWorkflowError())
	s.Require().Len(s.rolls, 1, "one roll: KRaft has no protocol to bump")
	s.Equal(s.upgradeOptions().ID+"/binaries", s.rolls[0].workflowID)
	s.Equal("4.0.0", s.rolls[0].in.Version)
	s.Empty(s.rolls[0].in.InterBrokerProtocolVersion)
	s.True(c.finalized)
	var res workflows.RollingUpgradeResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal("4.0-IV3", res.Upgrade.MetadataVersion, "the default target: the highest level 4.0 supports")
	s.Require().NotNil(res.MetadataVersion)
	s.Equal(workflows.MetadataVersionOutcome{From: "3.9-IV0", Target: "4.0-IV3", Finalized: true}, *res.MetadataVersion)
	s.Equal(workflows.UpgradePhaseDone, s.progress().Phase)
}

func (s *RollingUpgradeSuite) TestKRaftGhostApproved() {
	c := &kraftCluster{current: 21, refusals: []activities.FinalizeResult{ghostRefusal}}
	s.mockKRaftUpgrade(c)
	var paused workflows.UpgradeProgress
	var decideErr error
	s.decideAt(time.Hour, workflows.Decision{Action: workflows.DecisionResume, By: "bob", Reason: "decommissioned"}, &paused, &decideErr)
	s.env.ExecuteWorkflow(workflows.RollingUpgradeWorkflow, kraftUpgradeInput("4.0.0", "4.0-IV3"))

	s.Require().NoError(s.env.GetWorkflowError())
	s.NoError(decideErr)
	s.Require().NotNil(paused.Paused, "the upgrade waited for a human")
	s.Equal(int32(7), paused.Paused.Broker)
	s.Equal(workflows.StepApproveGhost, paused.Paused.Step)
	s.Contains(paused.Paused.Reason, "ghost broker 7")
	s.Contains(paused.Paused.Reason, "last known Kafka 3.9.0")
	s.Equal([]int32{7}, c.unregistered, "unregistered once, after the yes")
	s.True(c.finalized, "finalized after the ghost went")
	var res workflows.RollingUpgradeResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal([]int32{7}, res.MetadataVersion.Unregistered)
	s.Equal([]string{"bob"}, res.MetadataVersion.ApprovedBy)
}

func (s *RollingUpgradeSuite) TestKRaftGhostDenied() {
	for _, action := range []string{workflows.DecisionSkip, workflows.DecisionAbort} {
		s.Run(action, func() {
			s.SetupTest()
			c := &kraftCluster{current: 21, refusals: []activities.FinalizeResult{ghostRefusal}}
			s.mockKRaftUpgrade(c)
			var paused workflows.UpgradeProgress
			var decideErr error
			s.decideAt(time.Hour, workflows.Decision{Action: action, By: "bob", Reason: "still needed"}, &paused, &decideErr)
			s.env.ExecuteWorkflow(workflows.RollingUpgradeWorkflow, kraftUpgradeInput("4.0.0", ""))

			s.NoError(decideErr)
			s.Empty(c.unregistered, "nothing unregistered without a yes")
			s.False(c.finalized)
			res, msg := s.endResult(workflows.ErrTypeMetadataVersionRefused)
			s.Contains(msg, "binaries rolled to Kafka 4.0.0, metadata.version NOT finalized (unchanged at 3.9-IV0, target 4.0-IV3)")
			s.Contains(msg, "ghost broker 7")
			s.Len(res.Binaries.Brokers, 3, "the binaries rolled")
			s.Equal([]int32{7}, res.MetadataVersion.Kept)
			s.Contains(res.MetadataVersion.Refusal, "declined to unregister ghost broker 7")
		})
	}
}

func (s *RollingUpgradeSuite) TestKRaftRefusalWithoutGhostEndsWithoutAsking() {
	c := &kraftCluster{current: 21, refusals: []activities.FinalizeResult{{From: 21, To: 25,
		Refusals: []string{"cluster test-a: metadata.version 25 refused: INVALID_UPDATE_VERSION: controller 3001 does not support metadata.version 4.0-IV3"}}}}
	s.mockKRaftUpgrade(c)
	s.env.ExecuteWorkflow(workflows.RollingUpgradeWorkflow, kraftUpgradeInput("4.0.0", ""))

	s.False(c.finalized)
	s.Empty(c.unregistered)
	res, msg := s.endResult(workflows.ErrTypeMetadataVersionRefused)
	s.Contains(msg, "controller 3001 does not support metadata.version 4.0-IV3")
	s.Nil(s.progress().Paused, "no human is asked: no yes could help")
	s.Len(res.Binaries.Brokers, 3)
	s.False(res.MetadataVersion.Finalized)
}

func (s *RollingUpgradeSuite) TestKRaftNotReadyFinalizesNothing() {
	c := &kraftCluster{current: 21}
	s.env.OnActivity(acts.WaitUpgradeReady, mock.Anything, mock.Anything).Return(
		activities.ReadyVerdict{Reason: "not ready after 5m0s: broker 2 is fenced"}, nil).Once()
	s.mockKRaftUpgrade(c)
	s.env.ExecuteWorkflow(workflows.RollingUpgradeWorkflow, kraftUpgradeInput("4.0.0", ""))

	s.False(c.finalized)
	_, msg := s.endResult(workflows.ErrTypeMetadataVersionRefused)
	s.Contains(msg, "not every node runs the new binaries and is registered: not ready after 5m0s: broker 2 is fenced")
}

func (s *RollingUpgradeSuite) TestKRaftBadInputTouchesNothing() {
	cases := []struct {
		name, version, metadata string
		current                 int16
		want                    string
	}{
		{"a level the release does not support", "4.0.0", "4.1-IV0", 21, "metadata.version 4.1-IV0 needs Kafka 4.1 or later: Kafka 4.0.0 supports up to 4.0-IV3"},
		{"an unknown level", "4.0.0", "4.0-IV9", 21, "unknown"},
		{"a downgrade", "4.0.0", "3.8-IV0", 21, "below the cluster's 3.9-IV0: downgrading metadata.version is refused"},
		{"a protocol given", "4.0.0", "", 21, ""},
	}
	for _, c := range cases {
		s.Run(c.name, func() {
			s.SetupTest()
			k := &kraftCluster{current: c.current, refusedAtInput: true}
			s.mockKRaftUpgrade(k)
			in := kraftUpgradeInput(c.version, c.metadata)
			if c.name == "a protocol given" {
				in.FromIBP, c.want = "3.9", "no inter.broker.protocol.version"
			}
			s.env.ExecuteWorkflow(workflows.RollingUpgradeWorkflow, in)
			_, msg := s.endResult(activities.ErrTypeBadInput)
			s.Contains(msg, "refused before anything was rolled")
			s.Contains(msg, c.want)
			s.Empty(s.rolls, "nothing rolled")
			s.False(k.finalized)
		})
	}
}

// TestZooKeeperUpgradeNeverAsksAboutKRaft: a ZooKeeper cluster's upgrade
// records exactly the commands it did before the KRaft path existed: no
// GetVersion marker, none of its activities.
func (s *RollingUpgradeSuite) TestZooKeeperUpgradeNeverAsksAboutKRaft() {
	s.env.OnGetVersion(workflows.VersionKRaftUpgrade, workflow.DefaultVersion, 1).Never()
	for _, activity := range []any{acts.CurrentMetadataVersion, acts.WaitUpgradeReady, acts.FinalizeMetadataVersion, acts.DescribeGhost, acts.UnregisterGhost} {
		s.env.OnActivity(activity, mock.Anything, mock.Anything).Never()
	}
	s.mockRolls(s.env, "")
	s.env.ExecuteWorkflow(workflows.RollingUpgradeWorkflow, upgradeInput("3.7.1", "3.6", ""))

	s.Require().NoError(s.env.GetWorkflowError())
	s.Len(s.rolls, 2, "binaries, then the protocol")
	var res workflows.RollingUpgradeResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Empty(res.Mode)
	s.Nil(res.MetadataVersion)
}
