package workflows_test

import (
	"cmp"
	"context"
	"math"
	"sync"
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
// An observation is one poll: one ObserveBroker call (histories recorded
// before the waits became activities), or one poll inside a wait.
type host struct {
	diagnoses    []activities.Diagnosis         // one per DiagnoseBroker call, the last repeats
	observations []activities.BrokerObservation // one per poll, the last repeats
	// observe, if set, replaces observations: the n-th poll's (from 0).
	observe func(n int) activities.BrokerObservation
	// grace, stall and poll are the recovery's (RecoveryInput).
	grace, stall, poll time.Duration
}

// stubHost answers the recovery's activities from h. The waits run the
// rules of the real activities (internal/fleet) over the scripted
// observations, one per poll, and take as long on the workflow's clock.
func (s *RecoverySuite) stubHost(h *host) {
	next := func(i *int, n int) int { j := min(*i, n-1); *i++; return j }
	var d, o int
	poll := func() activities.BrokerObservation {
		if h.observe != nil {
			o++
			return h.observe(o - 1)
		}
		return h.observations[next(&o, len(h.observations))]
	}
	s.env.OnActivity(acts.DiagnoseBroker, mock.Anything, mock.Anything).Return(func(context.Context, activities.BrokerInput) (activities.Diagnosis, error) {
		s.record("diagnose")
		return h.diagnoses[next(&d, len(h.diagnoses))], nil
	})
	s.env.OnActivity(acts.ObserveBroker, mock.Anything, mock.Anything).Return(func(context.Context, activities.BrokerInput) (activities.BrokerObservation, error) {
		return poll(), nil
	}).Maybe()
	pollEvery, stall := cmp.Or(h.poll, time.Second), cmp.Or(h.stall, 10*time.Minute)
	var grace activities.BrokerObservation
	var graceFrom time.Time
	s.env.OnActivity(acts.WaitBrokerGrace, mock.Anything, mock.Anything).AfterFn(func() time.Duration {
		graceFrom = s.env.Now()
		elapsed := time.Duration(0)
		for {
			grace = poll()
			if grace.Registered || fleet.ProcessUp(grace.Process) || elapsed >= h.grace {
				return elapsed
			}
			elapsed += min(pollEvery, h.grace-elapsed)
		}
	}).Return(func(_ context.Context, in activities.GraceInput) (activities.BrokerObservation, error) {
		s.WithinDuration(graceFrom.Add(h.grace), in.Until, 0, "the grace ends at its end")
		return grace, nil
	}).Maybe()
	// wait is the rules' state across waits: the workflow passes what it
	// needs of it (Last, Recovering) from one wait to the next.
	wait := fleet.ComeBack{Broker: 2}
	var back activities.BrokerBack
	s.env.OnActivity(acts.WaitBrokerBack, mock.Anything, mock.Anything).AfterFn(func() time.Duration {
		start := s.env.Now()
		wait.LastProgress = start
		for elapsed := time.Duration(0); ; elapsed += pollEvery {
			obs := poll()
			v := wait.Observe(start.Add(elapsed), fleet.BrokerSighting{Registered: obs.Registered, Process: obs.Process, Recovering: obs.Recovering, LogsLeft: obs.LogsLeft}, stall)
			if v != fleet.ComeBackWaiting {
				back = activities.BrokerBack{Verdict: v, Observation: obs, Last: wait.Last, Pace: wait.Pace}
				if v == fleet.ComeBackStalled {
					back.StalledFor = start.Add(elapsed).Sub(wait.LastProgress)
				}
				return elapsed
			}
		}
	}).Return(func(_ context.Context, in activities.ComeBackInput) (activities.BrokerBack, error) {
		s.Equal(stall, in.StallTimeout)
		s.Equal(wait.ReportedRecovering && back.Verdict != fleet.ComeBackRecovering, in.Recovering, "recovery is reported once")
		if !wait.LastRecovering.IsZero() {
			back.LogRecovery = wait.LastRecovering.Sub(in.Since)
		}
		return back, nil
	}).Maybe()
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

// oldHistories makes the recovery take the paths of histories recorded
// before its waits became activities: an observation and a timer per poll.
func (s *RecoverySuite) oldHistories() {
	for _, change := range []string{"recovery-grace-wait-activity", "recovery-come-back-wait-activity"} {
		s.env.OnGetVersion(change, workflow.DefaultVersion, 1).Return(workflow.DefaultVersion).Maybe()
	}
}

func crashedHost() *host {
	return &host{
		diagnoses: []activities.Diagnosis{{InstanceState: "running", Process: "crashed", Cause: fleet.CauseUnknown, Segments: 100, MaxMapCount: 65530, Nofile: 100000}},
		observations: []activities.BrokerObservation{
			{Process: "recovering", Recovering: true, LogsLeft: 40},
			{Process: "recovering", Recovering: true, LogsLeft: 20},
			{Process: "running", Registered: true},
		},
	}
}

func (s *RecoverySuite) TestCrashedBrokerIsStartedWaitedOutAndLeadersRestored() {
	c := countCommands(s.env)
	s.stubHost(crashedHost())
	var mid workflows.RecoveryProgress
	s.env.RegisterDelayedCallback(func() { mid = s.progress() }, 500*time.Millisecond)
	s.env.ExecuteWorkflow(workflows.RecoveryWorkflow, recoveryInput())

	res := s.result()
	s.Equal([]string{"diagnose", "start", "isr", "elect"}, s.calls, "one start; nothing touches it while it recovers")
	s.Equal(1, res.Starts)
	s.False(res.CameBack)
	s.Equal(4, res.Elected)
	s.Equal(time.Second, res.LogRecovery+res.Register, "registered one poll after the last sight of recovery")
	s.Equal(workflows.StepRecovering, mid.Step)
	s.Equal(40, mid.LogsLeft, "as the wait first saw it")
	s.Require().Len(s.notes, 2, "a notification when it starts and when it ends")
	s.Contains(s.notes[1].Title, "recovered")
	s.Equal(2, c.activity("WaitBrokerBack"), "one wait until recovery shows, one until it is registered")
	s.Zero(c.activity("ObserveBroker"))
	s.Zero(c.timers)
}

func (s *RecoverySuite) TestOldHistoriesObserveOnATimer() {
	s.oldHistories()
	c := countCommands(s.env)
	s.stubHost(crashedHost())
	var mid workflows.RecoveryProgress
	s.env.RegisterDelayedCallback(func() { mid = s.progress() }, 1500*time.Millisecond)
	s.env.ExecuteWorkflow(workflows.RecoveryWorkflow, recoveryInput())

	res := s.result()
	s.Equal([]string{"diagnose", "start", "isr", "elect"}, s.calls, "one start; nothing touches it while it recovers")
	s.Equal(1, res.Starts)
	s.Equal(workflows.StepRecovering, mid.Step)
	s.Equal(20, mid.LogsLeft)
	s.Equal("1200 logs/min", mid.Rate, "20 logs in a second")
	s.Equal("1s", mid.ETA)
	s.Equal(3, c.activity("ObserveBroker"))
	s.Equal(2, c.timers)
	s.Zero(c.activity("WaitBrokerBack"))
}

func (s *RecoverySuite) TestLogRecoveryOfSixHoursIsTwoWaits() {
	// 40,000 logs recovered at 111 a minute, polled every 5 s: 4,320
	// polls, yet the recovery's history holds two waits.
	c := countCommands(s.env)
	const logs, perPoll = 40000, 9.26
	polls := int(math.Ceil(logs / perPoll))
	s.stubHost(&host{
		diagnoses: []activities.Diagnosis{{InstanceState: "running", Process: "crashed", Cause: fleet.CauseMapFailed, Segments: 40000, MaxMapCount: 65530, Nofile: 1 << 20}},
		observe: func(n int) activities.BrokerObservation {
			switch {
			case n == 0:
				return activities.BrokerObservation{Process: "starting"}
			case n <= polls:
				return activities.BrokerObservation{Process: "recovering", Recovering: true, LogsLeft: logs - int(float64(n-1)*perPoll)}
			}
			return activities.BrokerObservation{Process: "running", Registered: true}
		},
		grace: 15 * time.Second,
		poll:  5 * time.Second,
	})
	var mid workflows.RecoveryProgress
	s.env.RegisterDelayedCallback(func() { mid = s.progress() }, 3*time.Hour)
	in := recoveryInput()
	in.Grace, in.PollInterval = 15*time.Second, 5*time.Second
	s.env.ExecuteWorkflow(workflows.RecoveryWorkflow, in)

	res := s.result()
	s.Equal([]string{"diagnose", "set-limit", "start", "isr", "elect"}, s.calls, "one start, never touched while it recovers")
	s.InDelta(6*time.Hour, res.LogRecovery, float64(5*time.Minute), "six hours of log recovery, waited out")
	s.Nil(mid.Paused, "a recovery that advances is no reason to ask a human")
	s.Equal(workflows.StepRecovering, mid.Step)
	s.Equal(1, c.activity("WaitBrokerGrace"))
	s.Equal(2, c.activity("WaitBrokerBack"), "one wait until recovery shows, one until it is registered: not one per poll")
	s.Zero(c.timers, "no timer per poll")
	s.LessOrEqual(c.total(), 10, "the history does not grow with the wait")
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
		grace:        10 * time.Second,
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
		grace:        2 * time.Second,
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

// Histories recorded before host replacement: an instance that is gone
// is left to a human, and nothing is touched meanwhile.
func (s *RecoverySuite) TestOldHistoriesLeaveAnInstanceThatIsGoneToAHuman() {
	s.env.OnGetVersion("recovery-replace-host", workflow.DefaultVersion, 1).Return(workflow.DefaultVersion)
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

func (s *RecoverySuite) TestStalledRecoveryShowsItsPaceAndResumeWaitsOn() {
	c := countCommands(s.env)
	s.stubHost(&host{
		diagnoses: []activities.Diagnosis{{InstanceState: "running", Process: "crashed"}},
		observe: func(n int) activities.BrokerObservation {
			switch {
			case n <= 1:
				return activities.BrokerObservation{Process: "recovering", Recovering: true, LogsLeft: 50}
			case n <= 900:
				return activities.BrokerObservation{Process: "recovering", Recovering: true, LogsLeft: 40}
			}
			return activities.BrokerObservation{Process: "running", Registered: true}
		},
	})
	var paused workflows.RecoveryProgress
	s.env.RegisterDelayedCallback(func() {
		paused = s.progress()
		s.decide(workflows.Decision{Action: workflows.DecisionResume, By: "erin", Reason: "it is a big broker"}, nil)
	}, 15*time.Minute)
	s.env.ExecuteWorkflow(workflows.RecoveryWorkflow, recoveryInput())

	res := s.result()
	s.Require().NotNil(paused.Paused)
	s.Equal(workflows.StepRecovering, paused.Paused.Step)
	s.Contains(paused.Paused.Reason, "has not come back for 10m0s (process recovering, 40 logs left to recover)")
	s.Equal(40, paused.LogsLeft)
	s.Equal("600 logs/min", paused.Rate, "10 logs in a second, the last progress")
	s.Equal("4s", paused.ETA)
	s.Equal([]string{"diagnose", "start", "isr", "elect"}, s.calls, "resume waits on: the broker is never restarted while it recovers")
	s.Equal(1, res.Starts)
	s.Equal(3, c.activity("WaitBrokerBack"), "recovering, stalled, registered")
	s.Zero(c.timers)
}

// stubRecoveryWaits answers a recovery's waits (WaitBrokerGrace,
// WaitBrokerBack) at once from observe, for tests whose host does not
// change while a wait would poll: the grace returns the observation; the
// wait for the broker ends registered, down, on the first sight of log
// recovery, or — since nothing will change — stalled.
func stubRecoveryWaits(env *testsuite.TestWorkflowEnvironment, observe func() activities.BrokerObservation) {
	env.OnActivity(acts.WaitBrokerGrace, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.GraceInput) (activities.BrokerObservation, error) {
			return observe(), nil
		}).Maybe()
	env.OnActivity(acts.WaitBrokerBack, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ComeBackInput) (activities.BrokerBack, error) {
			obs := observe()
			back := activities.BrokerBack{Verdict: fleet.ComeBackStalled, Observation: obs, StalledFor: in.StallTimeout}
			switch {
			case obs.Registered:
				back.Verdict = fleet.ComeBackRegistered
			case obs.Recovering && !in.Recovering:
				back.Verdict = fleet.ComeBackRecovering
			case obs.Process != "" && !fleet.ProcessUp(obs.Process):
				back.Verdict = fleet.ComeBackDown
			}
			return back, nil
		}).Maybe()
}
