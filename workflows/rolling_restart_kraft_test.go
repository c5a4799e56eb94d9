package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// kraftTestSpec is testSpec as a KRaft cluster: three controllers, no
// ZooKeeper.
func kraftTestSpec() fleet.ClusterSpec {
	spec := testSpec()
	spec.ZooKeeper = ""
	spec.KRaft = &fleet.KRaftSpec{QuorumBootstrap: []string{"127.0.0.1:9093"}, Controllers: []fleet.ControllerSpec{
		{ID: 3000, InstanceID: "i-c0"}, {ID: 3001, InstanceID: "i-c1"}, {ID: 3002, InstanceID: "i-c2"}}}
	return spec
}

// quorumLedBy is a three-voter quorum led by leader in which the voters
// of lagging last caught up a minute before the leader's time.
func quorumLedBy(leader int32, lagging ...int32) fleet.Quorum {
	t := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	q := fleet.Quorum{Leader: leader, Epoch: 3, HighWatermark: 500}
	for _, id := range []int32{3000, 3001, 3002} {
		at := t
		if slices.Contains(lagging, id) {
			at = t.Add(-time.Minute)
		}
		q.Voters = append(q.Voters, fleet.QuorumReplica{ID: id, LogEndOffset: 500, LastFetch: at, LastCaughtUp: at})
	}
	return q
}

// recordControllerSteps records each controller step as "<activity>:<id>";
// a restarted controller is caught up from then on (restarted).
func (s *RollingRestartSuite) recordControllerSteps(restarted map[int32]bool) {
	for _, name := range []string{"StopController", "StartController"} {
		// A stop takes a (virtual) minute, so a test can look at the
		// roll's progress while a controller is down.
		after := time.Duration(0)
		if name == "StopController" {
			after = time.Minute
		}
		s.env.OnActivity(name, mock.Anything, mock.Anything).After(after).Return(func(_ context.Context, in activities.ControllerInput) error {
			s.record(fmt.Sprintf("%s:%d", name, in.Controller))
			return nil
		})
	}
	s.env.OnActivity(acts.WaitControllerCaughtUp, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.CaughtUpInput) (activities.ControllerCaughtUp, error) {
			s.record(fmt.Sprintf("WaitControllerCaughtUp:%d", in.Controller))
			restarted[in.Controller] = true
			return activities.ControllerCaughtUp{Leader: 3000, Epoch: 3, Checks: 2}, nil
		})
}

func (s *RollingRestartSuite) TestKRaftRollsControllersFirstUnreadyFollowersActiveLast() {
	// 3002 lags until it is restarted; 3000 leads throughout.
	restarted := map[int32]bool{}
	var gates []int32
	s.env.OnActivity(acts.DescribeQuorum, mock.Anything, mock.Anything).Return(func(context.Context, activities.QuorumInput) (fleet.Quorum, error) {
		if restarted[3002] {
			return quorumLedBy(3000), nil
		}
		return quorumLedBy(3000, 3002), nil
	})
	s.env.OnActivity(acts.CheckQuorumGate, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.QuorumInput) (fleet.QuorumVerdict, error) {
		gates = append(gates, in.Node)
		return fleet.QuorumVerdict{Safe: true, Voters: 3, CaughtUp: 2, Majority: 2}, nil
	})
	s.recordControllerSteps(restarted)
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(s.gatesOpen(3000))
	s.recordSteps()
	var mid workflows.RollProgress
	s.env.RegisterDelayedCallback(func() {
		v, err := s.env.QueryWorkflow(workflows.QueryProgress)
		s.Require().NoError(err)
		s.Require().NoError(v.Get(&mid))
	}, 30*time.Second)

	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, workflows.RollingRestartInput{Spec: kraftTestSpec(), OperationID: "op1", RequestedBy: "alice"})

	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.RollingRestartResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	var ctls []int32
	for _, c := range res.Controllers {
		ctls = append(ctls, c.Controller)
	}
	s.Equal([]int32{3002, 3001, 3000}, ctls, "the lagging voter first, then the follower, the active controller last")
	s.Equal([]bool{false, false, true}, []bool{res.Controllers[0].WasActive, res.Controllers[1].WasActive, res.Controllers[2].WasActive})
	s.Equal([]int32{3002, 3001, 3000}, gates, "each controller's gate checked right before it")
	s.Len(res.Brokers, 3, "then every broker, with the usual gates")
	var want []string
	for _, c := range []string{"3002", "3001", "3000"} {
		for _, step := range []string{"StopController", "StartController", "WaitControllerCaughtUp"} {
			want = append(want, step+":"+c)
		}
	}
	for _, b := range []string{"1", "2", "3"} {
		for _, step := range []string{"StopBroker", "StartBroker", "WaitBrokerRegistered", "WaitReplicasInSync", "ElectPreferredLeaders"} {
			want = append(want, step+":"+b)
		}
	}
	s.Equal(want, s.calls, "controllers one at a time, then brokers")
	s.Equal([]int32{3000, 3001, 3002}, mid.ControllersRemaining, "progress names the controllers apart from the brokers")
	s.Equal([]int32{1, 2, 3}, mid.Remaining)
	s.Equal(workflows.NodeController, mid.Node)
	s.Equal(int32(3002), mid.Current)
	s.Equal(workflows.StepCtlStop, mid.Step)
}

func (s *RollingRestartSuite) TestKRaftQuorumGateShutWaitsThenPausesAndTouchesNothing() {
	c := countCommands(s.env)
	s.env.OnActivity(acts.DescribeQuorum, mock.Anything, mock.Anything).Return(quorumLedBy(3000, 3002), nil)
	shut := fleet.QuorumVerdict{Voters: 3, CaughtUp: 1, Majority: 2, Lagging: []int32{3002},
		Reason: "without controller 3002, 1 of 3 voters are caught up (a majority is 2): voter 3001 is 40 offsets behind"}
	s.env.OnActivity(acts.CheckQuorumGate, mock.Anything, mock.Anything).Return(shut, nil)
	s.env.OnActivity(acts.WaitQuorumGate, mock.Anything, mock.Anything).After(10*time.Minute).
		Return(activities.QuorumGateWait{Verdict: shut, TimedOut: true, Checks: 60}, nil).Once()
	var abort error
	var paused workflows.RollProgress
	s.decide(time.Hour, workflows.Decision{Action: workflows.DecisionAbort, By: "alice"}, &abort, &paused)

	in := workflows.RollingRestartInput{Spec: kraftTestSpec(), OperationID: "op1", RequestedBy: "alice", GatePollInterval: time.Minute, GateTimeout: 10 * time.Minute}
	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, in)

	s.NoError(abort)
	s.Require().NotNil(paused.Paused, "still shut at the deadline: the roll asks a human")
	s.True(paused.Paused.Controller)
	s.Equal(int32(3002), paused.Paused.Broker, "the lagging voter is next")
	s.True(paused.Paused.CanSkip, "nothing was touched yet")
	s.Contains(paused.Paused.Reason, "controller 3002: quorum gate still shut after 10m0s")
	s.Equal([]string{"quorum: " + shut.Reason}, paused.Blockers)
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	var appErr *temporal.ApplicationError
	s.Require().True(errors.As(err, &appErr))
	s.Equal(workflows.ErrTypeAbortedByHuman, appErr.Type())
	s.Contains(err.Error(), "aborted by alice at controller 3002")
	s.Empty(s.calls, "no controller, no broker touched")
	s.Equal(1, c.activity("WaitQuorumGate"), "the wait is one activity, not a timer per poll")
	s.Zero(c.timers)
}

func (s *RollingRestartSuite) TestKRaftQuorumGateThatOpensInTheWaitGoesOn() {
	restarted := map[int32]bool{}
	s.env.OnActivity(acts.DescribeQuorum, mock.Anything, mock.Anything).Return(quorumLedBy(3000), nil)
	s.env.OnActivity(acts.CheckQuorumGate, mock.Anything, mock.Anything).Return(fleet.QuorumVerdict{Reason: "lagging"}, nil).Once()
	s.env.OnActivity(acts.CheckQuorumGate, mock.Anything, mock.Anything).Return(fleet.QuorumVerdict{Safe: true}, nil)
	s.env.OnActivity(acts.WaitQuorumGate, mock.Anything, mock.Anything).After(2*time.Minute).
		Return(activities.QuorumGateWait{Verdict: fleet.QuorumVerdict{Safe: true}, Checks: 12}, nil).Once()
	s.recordControllerSteps(restarted)
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(s.gatesOpen(3000))
	s.recordSteps()

	in := workflows.RollingRestartInput{Spec: kraftTestSpec(), OperationID: "op1", RequestedBy: "alice", Brokers: []int32{3001, 2}}
	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, in)

	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.RollingRestartResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Require().Len(res.Controllers, 1, "a request naming a controller rolls only that one")
	s.Equal(int32(3001), res.Controllers[0].Controller)
	s.GreaterOrEqual(res.Controllers[0].GateWait, 2*time.Minute)
	s.Require().Len(res.Brokers, 1)
	s.Equal(int32(2), res.Brokers[0].Broker)
}

// TestZooKeeperRollNeverAsksAboutControllers: a ZooKeeper spec's roll
// records the commands it did before KRaft rolls existed: no version
// marker, no quorum read, no controller step.
func (s *RollingRestartSuite) TestZooKeeperRollNeverAsksAboutControllers() {
	s.env.OnGetVersion(workflows.VersionKRaftControllers, workflow.DefaultVersion, 1).Never()
	for _, name := range []string{"DescribeQuorum", "CheckQuorumGate", "WaitQuorumGate", "StopController", "StartController", "WaitControllerCaughtUp"} {
		s.env.OnActivity(name, mock.Anything, mock.Anything).Never()
	}
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(s.gatesOpen(1))
	s.recordSteps()

	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, workflows.RollingRestartInput{Spec: testSpec(), OperationID: "op1", RequestedBy: "alice"})

	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.RollingRestartResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Len(res.Brokers, 3)
	s.Empty(res.Controllers)
}

// TestKRaftRollRecordedBeforeControllersRollsBrokersOnly: a KRaft roll
// whose history predates controller rolls replays its brokers-only path.
func (s *RollingRestartSuite) TestKRaftRollRecordedBeforeControllersRollsBrokersOnly() {
	s.env.OnGetVersion(workflows.VersionKRaftControllers, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(s.gatesOpen(3000))
	s.recordSteps()

	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, workflows.RollingRestartInput{Spec: kraftTestSpec(), OperationID: "op1", RequestedBy: "alice"})

	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.RollingRestartResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Len(res.Brokers, 3)
	s.Empty(res.Controllers)
}

func (s *RollingRestartSuite) TestKRaftSkipAtTheQuorumGateLeavesThatControllerAlone() {
	restarted := map[int32]bool{}
	s.env.OnActivity(acts.DescribeQuorum, mock.Anything, mock.Anything).Return(quorumLedBy(3000, 3002), nil)
	s.env.OnActivity(acts.CheckQuorumGate, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.QuorumInput) (fleet.QuorumVerdict, error) {
		return fleet.QuorumVerdict{Safe: in.Node != 3002, Reason: fmt.Sprintf("controller %d", in.Node)}, nil
	})
	s.env.OnActivity(acts.WaitQuorumGate, mock.Anything, mock.Anything).After(10*time.Minute).
		Return(activities.QuorumGateWait{Verdict: fleet.QuorumVerdict{Reason: "still lagging"}, TimedOut: true}, nil).Once()
	s.recordControllerSteps(restarted)
	s.env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(s.gatesOpen(3000))
	s.recordSteps()
	var skip error
	s.decide(time.Hour, workflows.Decision{Action: workflows.DecisionSkip, By: "alice"}, &skip, nil)

	in := workflows.RollingRestartInput{Spec: kraftTestSpec(), OperationID: "op1", RequestedBy: "alice", GateTimeout: 10 * time.Minute}
	s.env.ExecuteWorkflow(workflows.RollingRestartWorkflow, in)

	s.NoError(skip)
	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.RollingRestartResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal([]int32{3002}, res.SkippedControllers)
	s.Require().Len(res.Controllers, 2)
	s.Equal(int32(3001), res.Controllers[0].Controller)
	s.Equal(int32(3000), res.Controllers[1].Controller, "the active controller still last")
	s.Len(res.Brokers, 3)
	s.NotContains(s.calls, "StopController:3002")
}
