package workflows_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// replaceScript is what a host replacement meets, for the stubs of
// replaceEnv: the first diagnosis, what starting a stopped instance gives,
// the plan, and how the launch goes.
type replaceScript struct {
	// diags are the diagnoses in turn; past the end the broker's host
	// (its instance started again, or its new host) runs.
	diags     []activities.Diagnosis
	start     activities.InstanceStart
	plan      activities.ReplacementPlan
	launchErr []error // one per LaunchReplacement call; nil or past the end: launched
}

// replaceEnv is a test environment whose host activities follow s; calls
// records the activities that act, in order, and notes the notifications.
type replaceEnv struct {
	env   *testsuite.TestWorkflowEnvironment
	mu    sync.Mutex
	calls []string
	notes []activities.Notification
	// started: kfleet started Kafka (on whichever host the spec names).
	started bool
	hosts   []string // the host each start reached
}

func (e *replaceEnv) record(call string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, call)
}

func newReplaceEnv(t *testing.T, s replaceScript) *replaceEnv {
	var suite testsuite.WorkflowTestSuite
	e := &replaceEnv{env: suite.NewTestWorkflowEnvironment()}
	env := e.env
	env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, n activities.Notification) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.notes = append(e.notes, n)
		return nil
	}).Maybe()
	diagnoses := 0
	env.OnActivity(acts.DiagnoseBroker, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BrokerInput) (activities.Diagnosis, error) {
		e.record("diagnose")
		if diagnoses++; diagnoses <= len(s.diags) {
			return s.diags[diagnoses-1], nil
		}
		return activities.Diagnosis{InstanceState: "running", Process: "stopped", Cause: fleet.CauseUnknown}, nil
	})
	env.OnActivity(acts.StartStoppedInstance, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.InstanceStartInput) (activities.InstanceStart, error) {
		e.record("start-instance")
		assert.Equal(t, 10*time.Minute, in.Timeout, "the default start timeout")
		return s.start, nil
	}).Maybe()
	env.OnActivity(acts.PlanHostReplacement, mock.Anything, mock.Anything).Return(func(context.Context, activities.ReplaceInput) (activities.ReplacementPlan, error) {
		e.record("plan")
		return s.plan, nil
	}).Maybe()
	launches := 0
	env.OnActivity(acts.LaunchReplacement, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.LaunchInput) (activities.Host, error) {
		e.record("launch")
		launches++
		if launches <= len(s.launchErr) && s.launchErr[launches-1] != nil {
			return activities.Host{}, s.launchErr[launches-1]
		}
		assert.Equal(t, countType(s.launchErr[:min(launches-1, len(s.launchErr))], activities.ErrTypeReplacementGone), in.Attempt,
			"a new attempt for each host that vanished")
		return activities.Host{InstanceID: "i-new", AZ: s.plan.Launch.AZ}, nil
	}).Maybe()
	env.OnActivity(acts.CreateDataVolume, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.VolumeCreateInput) (string, error) {
		e.record("create-volume")
		assert.Equal(t, s.plan.NewVolumeGiB, in.SizeGiB)
		return "vol-new", nil
	}).Maybe()
	env.OnActivity(acts.AttachDataVolume, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.AttachInput) error {
		e.record("attach " + in.Volume)
		assert.Equal(t, "i-2", in.Old)
		assert.Equal(t, "i-new", in.New)
		return nil
	}).Maybe()
	env.OnActivity(acts.ConfigureBroker, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ConfigureInput) error {
		e.record("configure")
		assert.Equal(t, "i-new", in.Instance)
		assert.Equal(t, s.plan.Rack, in.Rack, "the same rack")
		return nil
	}).Maybe()
	env.OnActivity(acts.StartBroker, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BrokerInput) error {
		e.record("start")
		host, _ := in.Spec.Broker(in.Broker)
		e.mu.Lock()
		defer e.mu.Unlock()
		e.started, e.hosts = true, append(e.hosts, host.InstanceID)
		return nil
	}).Maybe()
	stubRecoveryWaits(env, func() activities.BrokerObservation {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.started {
			return activities.BrokerObservation{Registered: true, Process: "running"}
		}
		return activities.BrokerObservation{Process: "stopped"}
	})
	env.OnActivity(acts.SetBrokerHost, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SetHostInput) (bool, error) {
		e.record("tell-entity")
		assert.Equal(t, activities.SetHostInput{Cluster: "test-a", Broker: 2, From: "i-2", To: "i-new"}, in)
		return true, nil
	}).Maybe()
	env.OnActivity(acts.WaitCatchUp, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CatchUpInput) (activities.CatchUpProgress, error) {
		e.record("catch-up " + string(in.Until))
		first := fleet.ByteSample{At: time.Date(2026, 11, 26, 3, 1, 0, 0, time.UTC), Bytes: 1 << 30}
		switch in.Until {
		case activities.CatchUpMeasured:
			return activities.CatchUpProgress{Now: fleet.CatchUp{Broker: 2, Replicas: 8, Bytes: 1 << 30}, First: first, Measured: true}, nil
		case activities.CatchUpPaced:
			assert.Equal(t, first, in.First, "the pace is measured from the first measure")
			return activities.CatchUpProgress{Now: fleet.CatchUp{Broker: 2, Replicas: 8, Bytes: 512 << 20}, First: first, Measured: true, Paced: true,
				Pace: fleet.CatchUpPace{Bytes: 512 << 20, BytesPerSec: 50 << 20, ETA: 10 * time.Second}}, nil
		}
		return activities.CatchUpProgress{Now: fleet.CatchUp{Broker: 2}, First: first}, nil
	}).Maybe()
	env.OnActivity(acts.WaitReplicasInSync, mock.Anything, mock.Anything).Return(func(context.Context, activities.BrokerInput) error {
		e.record("isr")
		return nil
	}).Maybe()
	env.OnActivity(acts.ElectPreferredLeaders, mock.Anything, mock.Anything).Return(func(context.Context, activities.BrokerInput) (int, error) {
		e.record("elect")
		return 3, nil
	}).Maybe()
	env.OnActivity(acts.RetireHost, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RetireInput) (string, error) {
		e.record("retire " + in.Old)
		return "shutting-down", nil
	}).Maybe()
	return e
}

func countType(errs []error, typ string) int {
	n := 0
	for _, err := range errs {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.Type() == typ {
			n++
		}
	}
	return n
}

func (e *replaceEnv) paged() bool {
	for _, n := range e.notes {
		if n.Severity == activities.SeverityPage {
			return true
		}
	}
	return false
}

// The decision paths of a broker whose instance is not running: terminated
// or stopped; a stopped one that comes back when started, or does not; its
// data volume moved over, or lost and replaced by a blank one.
func TestRecoveryOfAHostThatIsGone(t *testing.T) {
	moved := activities.ReplacementPlan{Old: "i-2", OldState: "terminated", Launch: activities.LaunchTemplate{AZ: "us-east-1b"}, Rack: "us-east-1b",
		Device: "/dev/xvdb", Volume: fleet.VolumeChoice{Volume: fleet.VolumeSighting{ID: "vol-2", State: "available", AZ: "us-east-1b"}, Why: "survived"}}
	lost := moved
	lost.Volume, lost.NewVolumeGiB = fleet.VolumeChoice{Lost: true, Why: "deleted"}, 100
	stoppedPlan := moved
	stoppedPlan.OldState, stoppedPlan.Volume.Volume.InstanceID = "stopped", "i-2"
	terminated := activities.Diagnosis{InstanceState: "terminated", InstanceGone: true, Cause: fleet.CauseUnknown}
	stopped := activities.Diagnosis{InstanceState: "stopped", InstanceGone: true, Cause: fleet.CauseUnknown}
	replaced := []string{"tell-entity", "catch-up measured", "catch-up paced", "catch-up in-sync", "elect", "retire i-2"}
	tests := []struct {
		name   string
		script replaceScript
		calls  []string
		// moved: the volume came with it; "" volume: no replacement.
		volume  string
		moved   bool
		started bool // its stopped instance started again
	}{
		{
			name:   "terminated, its volume survives: moved over",
			script: replaceScript{diags: []activities.Diagnosis{terminated}, plan: moved},
			calls:  append([]string{"diagnose", "plan", "launch", "attach vol-2", "configure", "start"}, replaced...),
			volume: "vol-2", moved: true,
		},
		{
			name:   "terminated with its volume: a blank one and a full catch-up",
			script: replaceScript{diags: []activities.Diagnosis{terminated}, plan: lost},
			calls:  append([]string{"diagnose", "plan", "launch", "create-volume", "attach vol-new", "configure", "start"}, replaced...),
			volume: "vol-new",
		},
		{
			name:    "stopped, and back once started: Kafka started there, nothing replaced",
			script:  replaceScript{diags: []activities.Diagnosis{stopped}, start: activities.InstanceStart{Back: true, State: "running"}},
			calls:   []string{"diagnose", "start-instance", "diagnose", "start", "isr", "elect"},
			started: true,
		},
		{
			name:   "stopped, and no capacity to start it: replaced, the stopped one terminated",
			script: replaceScript{diags: []activities.Diagnosis{stopped}, start: activities.InstanceStart{State: "stopped", Why: "EC2 has no capacity"}, plan: stoppedPlan},
			calls:  append([]string{"diagnose", "start-instance", "plan", "launch", "attach vol-2", "configure", "start"}, replaced...),
			volume: "vol-2", moved: true,
		},
		{
			name: "the new host vanished before it ran: another one launched",
			script: replaceScript{diags: []activities.Diagnosis{terminated, terminated}, plan: moved, launchErr: []error{
				temporal.NewNonRetryableApplicationError("its replacement host i-x is terminated", activities.ErrTypeReplacementGone, nil)}},
			calls:  append([]string{"diagnose", "plan", "launch", "diagnose", "plan", "launch", "attach vol-2", "configure", "start"}, replaced...),
			volume: "vol-2", moved: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newReplaceEnv(t, tt.script)
			e.env.ExecuteWorkflow(workflows.RecoveryWorkflow, recoveryInput())
			require.True(t, e.env.IsWorkflowCompleted())
			require.NoError(t, e.env.GetWorkflowError())
			var res workflows.RecoveryResult
			require.NoError(t, e.env.GetWorkflowResult(&res))
			assert.Equal(t, tt.calls, e.calls)
			assert.Equal(t, 1, res.Starts, "Kafka started once")
			assert.False(t, e.paged(), "no page: nobody needs to act")
			assert.Equal(t, tt.started, res.InstanceStarted)
			if tt.volume == "" {
				assert.Nil(t, res.Replaced)
				return
			}
			require.NotNil(t, res.Replaced)
			assert.Equal(t, fleet.CauseHostGone, res.Cause)
			assert.Equal(t, []string{"i-new"}, e.hosts, "started on its new host")
			assert.Equal(t, workflows.HostReplacement{Old: "i-2", New: "i-new", Why: res.Replaced.Why, Volume: tt.volume, VolumeMoved: tt.moved,
				CatchUpBytes: 1 << 30, CatchUpETA: 10 * time.Second, Retired: "shutting-down"}, *res.Replaced)
		})
	}
}

// No capacity for a new host in the broker's zone: after a few attempts a
// human is paged and the recovery waits, touching nothing more; resumed
// once capacity is back, it launches the host and completes.
func TestRecoveryAsksAHumanWhenNoHostCanBeLaunched(t *testing.T) {
	plan := activities.ReplacementPlan{Old: "i-2", OldState: "terminated", Launch: activities.LaunchTemplate{AZ: "us-east-1b"}, Rack: "us-east-1b",
		Device: "/dev/xvdb", Volume: fleet.VolumeChoice{Volume: fleet.VolumeSighting{ID: "vol-2", State: "available", AZ: "us-east-1b"}}}
	noCapacity := temporal.NewApplicationError("cluster test-a broker 2: no capacity to launch: InsufficientInstanceCapacity in us-east-1b", activities.ErrTypeNoCapacity)
	terminated := activities.Diagnosis{InstanceState: "terminated", InstanceGone: true, Cause: fleet.CauseUnknown}
	e := newReplaceEnv(t, replaceScript{diags: []activities.Diagnosis{terminated, terminated}, plan: plan,
		launchErr: []error{noCapacity, noCapacity, noCapacity}})
	var paused workflows.RecoveryProgress
	var callsWhilePaused []string
	e.env.RegisterDelayedCallback(func() {
		v, err := e.env.QueryWorkflow(workflows.QueryProgress)
		require.NoError(t, err)
		require.NoError(t, v.Get(&paused))
		e.mu.Lock()
		callsWhilePaused = append([]string(nil), e.calls...)
		e.mu.Unlock()
		e.env.UpdateWorkflow(workflows.UpdateDecide, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { t.Errorf("resume refused: %v", err) }, OnComplete: func(any, error) {},
		}, workflows.Decision{Action: workflows.DecisionResume, By: "oncall", Reason: "capacity is back"})
	}, 6*time.Hour)
	e.env.ExecuteWorkflow(workflows.RecoveryWorkflow, recoveryInput())

	require.True(t, e.env.IsWorkflowCompleted())
	require.NoError(t, e.env.GetWorkflowError())
	require.NotNil(t, paused.Paused, "waiting for a human")
	assert.Equal(t, workflows.StepLaunch, paused.Paused.Step)
	assert.Contains(t, paused.Paused.Reason, "InsufficientInstanceCapacity in us-east-1b")
	assert.Equal(t, []string{"diagnose", "plan", "launch", "launch", "launch"}, callsWhilePaused, "three attempts, then nothing while it waits")
	assert.True(t, e.paged(), "a human is paged")
	assert.Equal(t, []string{"diagnose", "plan", "launch", "launch", "launch", "diagnose", "plan", "launch", "attach vol-2", "configure", "start",
		"tell-entity", "catch-up measured", "catch-up paced", "catch-up in-sync", "elect", "retire i-2"}, e.calls)
}
