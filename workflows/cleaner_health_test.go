package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

type CleanerHealthSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env   *testsuite.TestWorkflowEnvironment
	rolls []workflows.RollingRestartInput
}

func TestCleanerHealth(t *testing.T) { suite.Run(t, new(CleanerHealthSuite)) }

func (s *CleanerHealthSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.rolls = nil
	s.env.RegisterWorkflow(workflows.RollingRestartWorkflow)
	s.env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(nil).Maybe()
	s.env.OnWorkflow(workflows.RollingRestartWorkflow, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in workflows.RollingRestartInput) (workflows.RollingRestartResult, error) {
			s.rolls = append(s.rolls, in)
			return workflows.RollingRestartResult{}, nil
		}).Maybe()
}

// stubCleaners answers each CheckHealth with the next cleaner states (per
// broker of testSpec), the last repeating.
func (s *CleanerHealthSuite) stubCleaners(ticks ...map[int32]fleet.CleanerHealth) {
	i := 0
	s.env.OnActivity(acts.CheckHealth, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.HealthInput) (fleet.HealthReport, error) {
		rep := healthyReport(in.Spec, time.Now())
		tick := ticks[min(i, len(ticks)-1)]
		i++
		for j := range rep.Brokers {
			if c, ok := tick[rep.Brokers[j].Broker]; ok {
				rep.Brokers[j].Cleaner = c
			}
		}
		return rep, nil
	})
}

func (s *CleanerHealthSuite) run() workflows.CleanerHealthResult {
	s.env.ExecuteWorkflow(workflows.CleanerHealthWorkflow, workflows.CleanerHealthInput{Spec: testSpec(), OperationID: "op-3", RequestedBy: "kfleet-health"})
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.CleanerHealthResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	return res
}

func (s *CleanerHealthSuite) TestDeadCleanerGetsAGatedRestartOfItsBrokerOnly() {
	dead := fleet.CleanerHealth{DeadThreads: 1, SinceLastRun: 20 * time.Minute}
	s.stubCleaners(map[int32]fleet.CleanerHealth{3: dead}, map[int32]fleet.CleanerHealth{})
	res := s.run()

	s.Require().Len(res.Unhealthy, 1)
	s.Equal(int32(3), res.Unhealthy[0].Broker)
	s.Contains(res.Unhealthy[0].Reason, "thread(s) dead")
	s.Require().Len(s.rolls, 1, "the fix is a rolling restart: every gate applies")
	s.Equal([]int32{3}, s.rolls[0].Brokers)
	s.Equal([]int32{3}, res.Restarted)
	s.Empty(res.StillUnhealthy)
}

func (s *CleanerHealthSuite) TestStaleCleanerCountsAsStuck() {
	stale := fleet.CleanerHealth{SinceLastRun: 3 * time.Hour}
	s.stubCleaners(map[int32]fleet.CleanerHealth{1: stale, 2: stale}, map[int32]fleet.CleanerHealth{2: stale})
	res := s.run()

	s.Equal([]int32{1, 2}, res.Restarted)
	s.Require().Len(s.rolls, 1)
	s.Equal([]int32{1, 2}, s.rolls[0].Brokers)
	s.Require().Len(res.StillUnhealthy, 1, "a restart that did not help is reported, not repeated")
	s.Equal(int32(2), res.StillUnhealthy[0].Broker)
}

func (s *CleanerHealthSuite) TestHealthyCleanersTouchNothing() {
	s.stubCleaners(map[int32]fleet.CleanerHealth{})
	res := s.run()

	s.Empty(res.Unhealthy)
	s.Empty(s.rolls)
}
