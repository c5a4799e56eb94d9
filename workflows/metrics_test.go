package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/telemetry"
	"github.com/kfleet/kfleet/workflows"
)

// sample is a series the test expects: a metric, the labels it must carry
// (a worker's SDK adds its own, which are ignored), and its value: a counter's
// count, a histogram's number of observations.
type sample struct {
	metric string
	labels map[string]string
	value  float64
}

// TestMetrics runs workflows on the SDK's test suite with the worker's
// Prometheus handler and reads what they emitted from the registry.
func TestMetrics(t *testing.T) {
	tests := []struct {
		name string
		run  func(env *testsuite.TestWorkflowEnvironment)
		want []sample
		// min is a lower bound of a histogram's sum, by metric.
		minSum map[string]float64
	}{
		{
			name: "a roll records each broker's gate wait",
			run: func(env *testsuite.TestWorkflowEnvironment) {
				shut := true // the first check finds a gate shut
				env.OnActivity(acts.CheckRestartGates, mock.Anything, mock.Anything).Return(
					func(_ context.Context, in activities.GateInput) (activities.GateReport, error) {
						rep := activities.GateReport{Next: in.Remaining[0], Controller: 3, Partitions: 4}
						if shut {
							shut = false
							rep.Blockers = []fleet.Blocker{{Gate: fleet.GateHealthy, Reason: "broker 2 is not registered"}}
						}
						return rep, nil
					})
				env.OnActivity(acts.WaitRestartGates, mock.Anything, mock.Anything).After(30 * time.Second).Return(
					func(_ context.Context, in activities.GateWaitInput) (activities.GateWait, error) {
						return activities.GateWait{Report: activities.GateReport{Next: in.Gates.Remaining[0], Controller: 3, Partitions: 4}}, nil
					}).Once()
				for _, step := range []any{acts.StopBroker, acts.StartBroker, acts.WaitBrokerRegistered, acts.WaitReplicasInSync} {
					env.OnActivity(step, mock.Anything, mock.Anything).Return(nil)
				}
				env.OnActivity(acts.ElectPreferredLeaders, mock.Anything, mock.Anything).Return(0, nil)
				env.ExecuteWorkflow(workflows.RollingRestartWorkflow, workflows.RollingRestartInput{
					Spec: testSpec(), OperationID: "op1", RequestedBy: "alice", GatePollInterval: 30 * time.Second})
			},
			want:   []sample{{workflows.MetricGateWait, map[string]string{workflows.TagCluster: "test-a"}, 3}},
			minSum: map[string]float64{workflows.MetricGateWait: 30},
		},
		{
			name: "a broker that came back within its grace",
			run: func(env *testsuite.TestWorkflowEnvironment) {
				stubRecoveryHost(env, activities.Diagnosis{}, activities.BrokerObservation{Process: "running", Registered: true})
				in := recoveryInput()
				in.Grace = time.Minute
				env.ExecuteWorkflow(workflows.RecoveryWorkflow, in)
			},
			want: []sample{{workflows.MetricRecoveries, map[string]string{
				workflows.TagCluster: "test-a", workflows.TagCause: workflows.CauseUndiagnosed, workflows.TagOutcome: workflows.RecoveryCameBack}, 1}},
		},
		{
			name: "a Map failed crash fixed and started",
			run: func(env *testsuite.TestWorkflowEnvironment) {
				stubRecoveryHost(env,
					activities.Diagnosis{InstanceState: "running", Process: "failed", Cause: fleet.CauseMapFailed, Segments: 36045, MaxMapCount: 65530, Nofile: 100000},
					activities.BrokerObservation{Process: "running", Registered: true})
				env.ExecuteWorkflow(workflows.RecoveryWorkflow, recoveryInput())
			},
			want: []sample{{workflows.MetricRecoveries, map[string]string{
				workflows.TagCluster: "test-a", workflows.TagCause: string(fleet.CauseMapFailed), workflows.TagOutcome: workflows.RecoveryRecovered}, 1}},
		},
		{
			name: "a recovery a human aborted",
			run: func(env *testsuite.TestWorkflowEnvironment) {
				stubRecoveryHost(env, activities.Diagnosis{InstanceState: "terminated", InstanceGone: true, Cause: fleet.CauseUnknown}, activities.BrokerObservation{})
				// Its host cannot be replaced: a human is asked, and aborts.
				env.OnActivity(acts.PlanHostReplacement, mock.Anything, mock.Anything).Return(activities.ReplacementPlan{},
					temporal.NewNonRetryableApplicationError("no zone to launch in", activities.ErrTypeBadInput, nil))
				env.RegisterDelayedCallback(func() {
					env.UpdateWorkflow(workflows.UpdateDecide, "", &testsuite.TestUpdateCallback{
						OnAccept: func() {}, OnReject: func(err error) { t.Errorf("abort refused: %v", err) }, OnComplete: func(any, error) {},
					}, workflows.Decision{Action: workflows.DecisionAbort, By: "bob"})
				}, time.Minute)
				env.ExecuteWorkflow(workflows.RecoveryWorkflow, recoveryInput())
			},
			want: []sample{{workflows.MetricRecoveries, map[string]string{
				workflows.TagCluster: "test-a", workflows.TagCause: string(fleet.CauseHostGone), workflows.TagOutcome: workflows.RecoveryAborted}, 1}},
		},
		{
			name: "the entity counts operations by outcome and broker losses",
			run: func(env *testsuite.TestWorkflowEnvironment) {
				env.RegisterWorkflow(workflows.RecoveryWorkflow)
				env.RegisterWorkflow(workflows.VolumeExpansionWorkflow)
				env.RegisterWorkflow(workflows.CleanerHealthWorkflow)
				// A registered stand-in, not a mock: cancelling the entity's
				// running operation must reach it.
				rolls := 0
				env.RegisterWorkflowWithOptions(func(ctx workflow.Context, _ workflows.RollingRestartInput) (workflows.RollingRestartResult, error) {
					if rolls++; rolls == 1 {
						return workflows.RollingRestartResult{}, errors.New("broker 2 did not start")
					}
					return workflows.RollingRestartResult{}, workflow.Sleep(ctx, time.Hour)
				}, workflow.RegisterOptions{Name: "RollingRestartWorkflow"})
				request := func(at time.Duration) {
					env.RegisterDelayedCallback(func() {
						env.UpdateWorkflow(workflows.UpdateRequest, "", &testsuite.TestUpdateCallback{
							OnAccept: func() {}, OnReject: func(err error) { t.Errorf("restart refused: %v", err) }, OnComplete: func(any, error) {},
						}, restartReq("alice"))
					}, at)
				}
				request(time.Minute)      // fails
				request(20 * time.Minute) // runs until cancelled
				env.RegisterDelayedCallback(func() {
					v, err := env.QueryWorkflow(workflows.QueryStatus)
					if err != nil {
						t.Errorf("status: %v", err)
						return
					}
					var st workflows.ClusterStatus
					if err := v.Get(&st); err != nil || st.Running == nil {
						t.Errorf("status %+v, %v: want a running roll", st, err)
						return
					}
					env.UpdateWorkflow(workflows.UpdateCancel, "", &testsuite.TestUpdateCallback{
						OnAccept: func() {}, OnReject: func(err error) { t.Errorf("cancel refused: %v", err) }, OnComplete: func(any, error) {},
					}, workflows.CancelRequest{OperationID: st.Running.ID, By: "bob", Reason: "wrong cluster"})
				}, 30*time.Minute)
				env.RegisterDelayedCallback(env.CancelWorkflow, time.Hour)
				stubSensing(env, nil, watchStep{5 * time.Minute, []int32{1, 3}}) // broker 2 crashes
				stubSelfHealing(env)                                             // its recovery finds it back
				env.ExecuteWorkflow(workflows.ClusterWorkflow, workflows.ClusterInput{Spec: testSpec()})
			},
			want: []sample{
				{workflows.MetricOperations, map[string]string{workflows.TagCluster: "test-a", workflows.TagKind: workflows.OpRollingRestart, workflows.TagOutcome: workflows.StatusFailed}, 1},
				{workflows.MetricOperations, map[string]string{workflows.TagCluster: "test-a", workflows.TagKind: workflows.OpRollingRestart, workflows.TagOutcome: workflows.StatusCancelled}, 1},
				{workflows.MetricOperations, map[string]string{workflows.TagCluster: "test-a", workflows.TagKind: workflows.OpRecovery, workflows.TagOutcome: workflows.StatusSucceeded}, 1},
				{workflows.MetricOperations, map[string]string{workflows.TagOutcome: workflows.StatusSucceeded, workflows.TagKind: workflows.OpRollingRestart}, 0},
				{workflows.MetricBrokerLosses, map[string]string{workflows.TagCluster: "test-a"}, 1},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			h, err := telemetry.NewHandler(reg, telemetry.Options{Help: workflows.MetricHelp()})
			if err != nil {
				t.Fatal(err)
			}
			var ts testsuite.WorkflowTestSuite
			ts.SetMetricsHandler(h)
			env := ts.NewTestWorkflowEnvironment()
			tt.run(env)
			if !env.IsWorkflowCompleted() {
				t.Fatal("workflow did not complete")
			}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatalf("gather: %v", err)
			}
			for _, w := range tt.want {
				count, sum := telemetry.Find(mfs, w.metric, w.labels)
				if count != w.value {
					t.Errorf("%s%v = %v, want %v; have:\n%s", w.metric, w.labels, count, w.value, dump(mfs))
				}
				if min, ok := tt.minSum[w.metric]; ok && sum < min {
					t.Errorf("%s%v sum = %v, want at least %v", w.metric, w.labels, sum, min)
				}
			}
		})
	}
}

// stubRecoveryHost answers a recovery's activities: every diagnosis is
// diag, every observation obs (the waits end on it), and every action
// succeeds.
func stubRecoveryHost(env *testsuite.TestWorkflowEnvironment, diag activities.Diagnosis, obs activities.BrokerObservation) {
	env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(acts.DiagnoseBroker, mock.Anything, mock.Anything).Return(diag, nil).Maybe()
	env.OnActivity(acts.ObserveBroker, mock.Anything, mock.Anything).Return(obs, nil).Maybe()
	stubRecoveryWaits(env, func() activities.BrokerObservation { return obs })
	env.OnActivity(acts.SetHostLimit, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(acts.StartBroker, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(acts.WaitReplicasInSync, mock.Anything, mock.Anything).Return(nil).Maybe()
	env.OnActivity(acts.ElectPreferredLeaders, mock.Anything, mock.Anything).Return(1, nil).Maybe()
}

// dump lists kfleet's series, for a failure message.
func dump(mfs []*dto.MetricFamily) string {
	var b strings.Builder
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "kfleet_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			fmt.Fprintf(&b, "  %s%v %v\n", mf.GetName(), m.GetLabel(), m.GetCounter().GetValue()+float64(m.GetHistogram().GetSampleCount()))
		}
	}
	return b.String()
}
