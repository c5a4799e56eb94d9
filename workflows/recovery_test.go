package workflows_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/testsuite"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

type RecoverySuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	mu  sync.Mutex
	// calls records the activities that act on the host, in order.
	calls  []string
	notes  []activities.Notification
	limits []activities.LimitInput
}

func TestRecovery(t *testing.T) { suite.Run(t, new(RecoverySuite)) }

func (s *RecoverySuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.calls, s.notes, s.limits = nil, nil, nil
	s.env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, n activities.Notification) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.notes = append(s.notes, n)
		return nil
	}).Maybe()
}

func (s *RecoverySuite) record(call string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call)
}

// host is a scripted broker host: what diagnoses and observations say.
type host struct {
	diagnoses    []activities.Diagnosis         // one per DiagnoseBroker call, the last repeats
	observations []activities.BrokerObservation // one per ObserveBroker call, the last repeats
}

func (s *RecoverySuite) stubHost(h *host) {
	next := func(i *int, n int) int { j := min(*i, n-1); *i++; return j }
	var d, o int
	s.env.OnActivity(acts.DiagnoseBroker, mock.Anything, mock.Anything).Return(func(context.Context, activities.BrokerInput) (activities.Diagnosis, error) {
		s.record("diagnose")
		return h.diagnoses[next(&d, len(h.diagnoses))], nil
	})
	s.env.OnActivity(acts.ObserveBroker, mock.Anything, mock.Anything).Return(func(context.Context, activities.BrokerInput) (activities.BrokerObservation, error) {
		return h.observations[next(&o, len(h.observations))], nil
	})
	s.env.OnActivity(acts.StartBroker, mock.Anything, mock.Anything).Return(func(context.Context, activities.BrokerInput) error {
		s.record("start")
		return nil
	}).Maybe()
	s.env.OnActivity(acts.SetHostLimit, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.LimitInput) error {
		s.record("set-limit")
		s.limits = append(s.limits, in)
		return nil
	}).Maybe()
	s.env.OnActivity(acts.WaitReplicasInSync, mock.Anything, mock.Anything).Return(func(context.Context, activities.BrokerInput) error {
		s.record("isr")
		return nil
	}).Maybe()
	s.env.OnActivity(acts.ElectPreferredLeaders, mock.Anything, mock.Anything).Return(func(context.Context, activities.BrokerInput) (int, error) {
		s.record("elect")
		return 4, nil
	}).Maybe()
}

// progress queries the recovery's progress now.
func (s *RecoverySuite) progress() workflows.RecoveryProgress {
	v, err := s.env.QueryWorkflow(workflows.QueryProgress)
	s.Require().NoError(err)
	var p workflows.RecoveryProgress
	s.Require().NoError(v.Get(&p))
	return p
}

// decide sends a decision now; a refusal is returned through refused
// (nil: the decision must be accepted).
func (s *RecoverySuite) decide(d workflows.Decision, refused *error) {
	s.env.UpdateWorkflow(workflows.UpdateDecide, "", &testsuite.TestUpdateCallback{
		OnAccept: func() {},
		OnReject: func(err error) {
			if refused == nil {
				s.Fail("decision refused", err)
				return
			}
			*refused = err
		},
		OnComplete: func(any, error) {},
	}, d)
}

func recoveryInput() workflows.RecoveryInput {
	return workflows.RecoveryInput{Spec: testSpec(), Broker: 2, LostAt: time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC), OperationID: "op-1", PollInterval: time.Second}
}

func (s *RecoverySuite) result() workflows.RecoveryResult {
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.RecoveryResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	return res
}

func (s *RecoverySuite) TestCrashedBrokerIsStartedWaitedOutAndLeadersRestored() {
	s.stubHost(&host{
		diagnoses: []activities.Diagnosis{{InstanceState: "running", Process: "crashed", Cause: fleet.CauseUnknown, Segments: 100, MaxMapCount: 65530, Nofile: 100000}},
		observations: []activities.BrokerObservation{
			{Process: "recovering", Recovering: true, LogsLeft: 40},
			{Process: "recovering", Recovering: true, LogsLeft: 20},
			{Process: "running", Registered: true},
		},
	})
	var mid workflows.RecoveryProgress
	s.env.RegisterDelayedCallback(func() { mid = s.progress() }, 1500*time.Millisecond)
	s.env.ExecuteWorkflow(workflows.RecoveryWorkflow, recoveryInput())

	res := s.result()
	s.Equal([]string{"diagnose", "start", "isr", "elect"}, s.calls, "one start; nothing touches it while it recovers")
	s.Equal(1, res.Starts)
	s.False(res.CameBack)
	s.Equal(4, res.Elected)
	s.Equal(workflows.StepRecovering, mid.Step)
	s.Equal(20, mid.LogsLeft)
	s.Equal("1200 logs/min", mid.Rate, "20 logs in a second")
	s.Equal("1s", mid.ETA)
	s.Require().Len(s.notes, 2, "a notification when it starts and when it ends")
	s.Contains(s.notes[1].Title, "recovered")
}

func (s *RecoverySuite) TestBrokerThatCameBackByItselfIsOnlyObserved() {
	s.stubHost(&host{
		diagnoses:    []activities.Diagnosis{{InstanceState: "running", Process: "recovering"}},
		observations: []activities.BrokerObservation{{Process: "recovering", Recovering: true, LogsLeft: 3}, {Process: "running", Registered: true}},
	})
	s.env.ExecuteWorkflow(workflows.RecoveryWorkflow, recoveryInput())

	res := s.result()
	s.True(res.CameBack)
	s.Zero(res.Starts)
	s.Equal([]string{"diagnose", "isr", "elect"}, s.calls, "never started, never stopped")
}

func (s *RecoverySuite) TestBrokerBackWithinTheGraceIsNotTouched() {
	s.stubHost(&host{
		diagnoses:    []activities.Diagnosis{{InstanceState: "running", Process: "crashed"}},
		observations: []activities.BrokerObservation{{Process: "crashed"}, {Process: "crashed"}, {Process: "running", Registered: true}},
	})
	in := recoveryInput()
	in.Grace = 10 * time.Second
	s.env.ExecuteWorkflow(workflows.RecoveryWorkflow, in)

	res := s.result()
	s.True(res.CameBack)
	s.Equal([]string{"isr", "elect"}, s.calls, "no diagnosis, no start: only observed")
}

func (s *RecoverySuite) TestGraceEndsAndTheRecoveryActs() {
	s.stubHost(&host{
		diagnoses:    []activities.Diagnosis{{InstanceState: "running", Process: "crashed"}},
		observations: []activities.BrokerObservation{{Process: "crashed"}, {Process: "crashed"}, {Process: "crashed"}, {Process: "running", Registered: true}},
	})
	in := recoveryInput()
	in.Grace = 2 * time.Second
	s.env.ExecuteWorkflow(workflows.RecoveryWorkflow, in)

	res := s.result()
	s.False(res.CameBack)
	s.Equal([]string{"diagnose", "start", "isr", "elect"}, s.calls)
}

func (s *RecoverySuite) TestMapFailedCrashLoopRaisesTheLimitBeforeTheStart() {
	mapFailed := activities.Diagnosis{InstanceState: "running", Process: "failed", Cause: fleet.CauseMapFailed,
		Evidence: []string{"java.io.IOException: Map failed"}, Segments: 36045, MaxMapCount: 65530, Nofile: 100000}
	s.stubHost(&host{
		diagnoses:    []activities.Diagnosis{mapFailed},
		observations: []activities.BrokerObservation{{Process: "recovering", Recovering: true, LogsLeft: 9}, {Process: "running", Registered: true}},
	})
	s.env.ExecuteWorkflow(workflows.RecoveryWorkflow, recoveryInput())

	res := s.result()
	s.Equal([]string{"diagnose", "set-limit", "start", "isr", "elect"}, s.calls, "the limit first, then the start")
	s.Require().Len(s.limits, 1)
	s.Equal(fleet.LimitMaxMapCount, s.limits[0].Name)
	s.GreaterOrEqual(s.limits[0].Value, int64(36045*2), "covers two maps per segment")
	s.Equal(fleet.CauseMapFailed, res.Cause)
	s.Require().Len(res.Fixes, 1)
	s.Equal(int64(65530), res.Fixes[0].From)
}

func (s *RecoverySuite) TestStartThatFailsAgainIsDiagnosedAgainThenAsksAHuman() {
	loop := activities.Diagnosis{InstanceState: "running", Process: "failed", Cause: fleet.CauseUnknown}
	s.stubHost(&host{
		diagnoses:    []activities.Diagnosis{loop},
		observations: []activities.BrokerObservation{{Process: "failed"}},
	})
	var paused workflows.RecoveryProgress
	s.env.RegisterDelayedCallback(func() {
		paused = s.progress()
		s.decide(workflows.Decision{Action: workflows.DecisionAbort, By: "carol", Reason: "host looks broken"}, nil)
	}, time.Hour)
	in := recoveryInput()
	in.MaxStarts = 2
	s.env.ExecuteWorkflow(workflows.RecoveryWorkflow, in)

	s.Require().Error(s.env.GetWorkflowError())
	s.Contains(s.env.GetWorkflowError().Error(), "aborted by carol")
	s.Require().NotNil(paused.Paused)
	s.Contains(paused.Paused.Reason, "2 starts did not bring it back")
	s.Equal([]string{"diagnose", "start", "diagnose", "start", "diagnose"}, s.calls, "bounded starts, each after a diagnosis")
}

func (s *RecoverySuite) TestInstanceGoneTouchesNothingAndWaitsForAHuman() {
	s.stubHost(&host{
		diagnoses:    []activities.Diagnosis{{InstanceState: "terminated", InstanceGone: true}, {InstanceState: "running", Process: "stopped"}},
		observations: []activities.BrokerObservation{{Process: "running", Registered: true}},
	})
	var paused workflows.RecoveryProgress
	var skipErr error
	s.env.RegisterDelayedCallback(func() {
		paused = s.progress()
		s.Equal([]string{"diagnose"}, s.calls, "nothing touched while the instance is gone")
		s.decide(workflows.Decision{Action: workflows.DecisionSkip, By: "dave"}, &skipErr)
		s.decide(workflows.Decision{Action: workflows.DecisionResume, By: "dave", Reason: "instance replaced"}, nil)
	}, 2*time.Hour)
	s.env.ExecuteWorkflow(workflows.RecoveryWorkflow, recoveryInput())

	res := s.result()
	s.Require().NotNil(paused.Paused)
	s.Contains(paused.Paused.Reason, "instance i-2 is terminated")
	s.Require().Error(skipErr)
	s.Contains(skipErr.Error(), "nothing to skip")
	s.Equal([]string{"diagnose", "diagnose", "start", "isr", "elect"}, s.calls)
	s.Equal(1, res.Starts)
	var paged bool
	for _, n := range s.notes {
		paged = paged || n.Severity == activities.SeverityPage && n.Broker == 2
	}
	s.True(paged, "a human is paged")
}

func (s *RecoverySuite) TestStalledLogRecoveryIsNeverRestartedButReported() {
	s.stubHost(&host{
		diagnoses:    []activities.Diagnosis{{InstanceState: "running", Process: "crashed"}},
		observations: []activities.BrokerObservation{{Process: "recovering", Recovering: true, LogsLeft: 50}},
	})
	var paused workflows.RecoveryProgress
	s.env.RegisterDelayedCallback(func() {
		paused = s.progress()
		s.decide(workflows.Decision{Action: workflows.DecisionAbort, By: "erin"}, nil)
	}, 15*time.Minute)
	s.env.ExecuteWorkflow(workflows.RecoveryWorkflow, recoveryInput())

	s.Require().Error(s.env.GetWorkflowError())
	s.Require().NotNil(paused.Paused)
	s.Contains(paused.Paused.Reason, "never restarted while it recovers")
	s.Equal([]string{"diagnose", "start"}, s.calls, "one start, then only observation")
}
