package workflows_test

import (
	"context"
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

// replaceWorld is what the replacement's activities answer and saw.
type replaceWorld struct {
	plan activities.ControllerReplacementPlan
	gate fleet.QuorumVerdict
	// gates, when set, are the gate's answers in turn.
	gates    []fleet.QuorumVerdict
	calls    []string
	launched activities.ControllerLaunchInput
	caughtUp activities.CaughtUpInput
	retired  activities.RetireControllerInput
	set      activities.SetControllerHostInput
	// failStart fails the new controller's start while above 0.
	failStart int
}

func ctlReplaceEnv(t *testing.T, w *replaceWorld) *testsuite.TestWorkflowEnvironment {
	var ts testsuite.WorkflowTestSuite
	env := ts.NewTestWorkflowEnvironment()
	env.SetTestTimeout(time.Minute)
	call := func(name string) { w.calls = append(w.calls, name) }
	env.OnActivity(acts.PlanControllerReplacement, mock.Anything, mock.Anything).Return(func(context.Context, activities.ControllerInput) (activities.ControllerReplacementPlan, error) {
		call("plan")
		return w.plan, nil
	})
	env.OnActivity(acts.CheckQuorumGate, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.QuorumInput) (fleet.QuorumVerdict, error) {
		call("gate")
		if len(w.gates) > 0 {
			g := w.gates[0]
			w.gates = w.gates[1:]
			return g, nil
		}
		return w.gate, nil
	})
	env.OnActivity(acts.StopController, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ControllerInput) error {
		call("stop")
		return nil
	}).Maybe()
	env.OnActivity(acts.LaunchControllerReplacement, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ControllerLaunchInput) (activities.Host, error) {
		call("launch")
		w.launched = in
		id := "i-new"
		if w.plan.Existing != "" {
			id = w.plan.Existing
		}
		return activities.Host{InstanceID: id, AZ: in.Plan.Launch.AZ, Adopted: w.plan.Existing != ""}, nil
	}).Maybe()
	env.OnActivity(acts.ConfigureReplacementController, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ControllerConfigInput) (string, error) {
		call("configure")
		return "127.0.0.1:29001", nil
	}).Maybe()
	env.OnActivity(acts.StartControllerHost, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ControllerNodeInput) error {
		call("start")
		if w.failStart > 0 {
			w.failStart--
			return temporal.NewNonRetryableApplicationError("kafka failed to start", activities.ErrTypeBadInput, nil)
		}
		return nil
	}).Maybe()
	env.OnActivity(acts.WaitControllerCaughtUp, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CaughtUpInput) (activities.ControllerCaughtUp, error) {
		call("caught-up")
		w.caughtUp = in
		return activities.ControllerCaughtUp{Leader: 3000, Epoch: 4, Checks: 3}, nil
	}).Maybe()
	env.OnActivity(acts.RetireControllerHost, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RetireControllerInput) (string, error) {
		call("retire")
		w.retired = in
		return "shutting-down", nil
	}).Maybe()
	env.OnActivity(acts.SetControllerHost, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.SetControllerHostInput) (bool, error) {
		call("set-spec")
		w.set = in
		return true, nil
	}).Maybe()
	return env
}

func ctlReplaceInput() workflows.ReplaceControllerInput {
	spec := kraftTestSpec()
	spec.KRaft.QuorumBootstrap = []string{"127.0.0.1:29000", "127.0.0.1:19001", "127.0.0.1:29002"}
	return workflows.ReplaceControllerInput{Spec: spec, OperationID: "op-1", RequestedBy: "alice", Node: 3001}
}

func TestReplaceController(t *testing.T) {
	safe := fleet.QuorumVerdict{Safe: true, Voters: 3, CaughtUp: 2, Majority: 2, Reason: "without controller 3001, 2 of 3 voters are caught up"}
	unsafe := fleet.QuorumVerdict{Voters: 3, CaughtUp: 1, Majority: 2, Lagging: []int32{3002}, Reason: "without controller 3001, 1 of 3 voters are caught up (a majority is 2): 3002 lags"}
	base := activities.ControllerReplacementPlan{Old: "i-c1", OldState: "running", Launch: activities.LaunchTemplate{AZ: "us-east-1b"},
		Rack: "us-east-1b", OldAddress: "127.0.0.1:19001", KafkaClusterID: "abc"}
	full := []string{"plan", "gate", "gate", "stop", "launch", "configure", "start", "caught-up", "retire", "set-spec"}
	cases := []struct {
		name      string
		plan      func(p activities.ControllerReplacementPlan) activities.ControllerReplacementPlan
		gate      fleet.QuorumVerdict
		wantCalls []string
		wantErr   string
		adopted   bool
		gates     []fleet.QuorumVerdict
	}{
		{"reachable: stopped, replaced, old host terminated", nil, safe, full, "", false, nil},
		{"already down: not stopped, the gate is about the others", func(p activities.ControllerReplacementPlan) activities.ControllerReplacementPlan {
			p.OldState, p.OldAddress = "terminated", ""
			return p
		}, safe, []string{"plan", "gate", "gate", "launch", "configure", "start", "caught-up", "retire", "set-spec"}, "", false, nil},
		{"quorum not safe without it: refused, nothing touched", nil, unsafe, []string{"plan", "gate"}, "refused, nothing touched", false, nil},
		{"a voter stopped just before the first read: the second refuses", nil, safe, []string{"plan", "gate", "gate"}, "refused, nothing touched", false,
			[]fleet.QuorumVerdict{safe, unsafe}},
		{"a re-run finds the new host: not stopped again, not launched again", func(p activities.ControllerReplacementPlan) activities.ControllerReplacementPlan {
			p.Existing = "i-earlier"
			return p
		}, safe, []string{"plan", "gate", "gate", "launch", "configure", "start", "caught-up", "retire", "set-spec"}, "", true, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := &replaceWorld{plan: base, gate: c.gate, gates: c.gates}
			if c.plan != nil {
				w.plan = c.plan(base)
			}
			env := ctlReplaceEnv(t, w)
			env.ExecuteWorkflow(workflows.ReplaceControllerWorkflow, ctlReplaceInput())
			require.True(t, env.IsWorkflowCompleted())
			assert.Equal(t, c.wantCalls, w.calls)
			if c.wantErr != "" {
				var appErr *temporal.ApplicationError
				require.ErrorAs(t, env.GetWorkflowError(), &appErr)
				assert.Equal(t, workflows.ErrTypeReplaceControllerRefused, appErr.Type())
				assert.Contains(t, appErr.Message(), c.wantErr)
				assert.Contains(t, appErr.Message(), "3002 lags")
				return
			}
			require.NoError(t, env.GetWorkflowError())
			var res workflows.ReplaceControllerResult
			require.NoError(t, env.GetWorkflowResult(&res))
			assert.Equal(t, c.adopted, res.Adopted)
			assert.Equal(t, "us-east-1b", w.launched.Plan.Launch.AZ, "the new host goes to the controller's zone")
			// The wait sees the spec with the new host and address.
			ctl, ok := w.caughtUp.Spec.Controller(3001)
			require.True(t, ok)
			assert.Equal(t, res.New, ctl.InstanceID)
			if w.plan.OldAddress != "" {
				assert.Equal(t, []string{"127.0.0.1:29000", "127.0.0.1:29001", "127.0.0.1:29002"}, w.caughtUp.Spec.KRaft.QuorumBootstrap)
			}
			assert.Equal(t, "i-c1", w.retired.Old)
			assert.Equal(t, res.New, w.retired.New)
			assert.Equal(t, activities.SetControllerHostInput{Cluster: "test-a", Controller: 3001, From: "i-c1", To: res.New,
				OldAddress: w.plan.OldAddress, Address: "127.0.0.1:29001"}, w.set)
		})
	}
}

// A start that fails pauses for a human; resume starts it again without
// configuring or launching again.
func TestReplaceControllerResumesAFailedStart(t *testing.T) {
	w := &replaceWorld{plan: activities.ControllerReplacementPlan{Old: "i-c1", OldState: "running", Launch: activities.LaunchTemplate{AZ: "us-east-1b"}, KafkaClusterID: "abc"},
		gate: fleet.QuorumVerdict{Safe: true}, failStart: 1}
	env := ctlReplaceEnv(t, w)
	var paused workflows.ResizeProgress
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(workflows.QueryProgress)
		require.NoError(t, err)
		require.NoError(t, v.Get(&paused))
		env.UpdateWorkflow(workflows.UpdateDecide, "", &testsuite.TestUpdateCallback{OnAccept: func() {}, OnReject: func(err error) { t.Error(err) },
			OnComplete: func(any, error) {}}, workflows.Decision{Action: workflows.DecisionResume, By: "bob"})
	}, time.Minute)
	env.ExecuteWorkflow(workflows.ReplaceControllerWorkflow, ctlReplaceInput())
	require.NoError(t, env.GetWorkflowError())
	require.NotNil(t, paused.Paused)
	assert.Contains(t, paused.Paused.Reason, "kafka failed to start")
	assert.Equal(t, []string{"plan", "gate", "gate", "stop", "launch", "configure", "start", "start", "caught-up", "retire", "set-spec"}, w.calls)
}

// The kind: KRaft clusters only, a controller of the spec, the same
// controller's replacement joins.
func TestReplaceControllerKindAdmission(t *testing.T) {
	k, err := workflows.KindNamed(workflows.OpReplaceController)
	require.NoError(t, err)
	assert.True(t, k.Destructive())
	assert.Equal(t, fleet.ImpactMembership, k.Impact())
	req := func(node string) workflows.Request {
		return workflows.Request{Kind: workflows.OpReplaceController, RequestedBy: "alice", Params: []byte(`{"node":` + node + `}`)}
	}
	assert.NoError(t, k.Admissible(kraftTestSpec(), req("3001")))
	assert.ErrorContains(t, k.Admissible(kraftTestSpec(), req("7")), "controller 7 is not in cluster test-a")
	assert.ErrorContains(t, k.Admissible(testSpec(), req("3001")), "is a zookeeper cluster")
	assert.ErrorContains(t, k.Check(req("-1")), "not negative")
	withBrokers := req("3001")
	withBrokers.Brokers = []int32{1}
	assert.ErrorContains(t, k.Check(withBrokers), "not brokers")
}
