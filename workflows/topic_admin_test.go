package workflows_test

import (
	"context"
	"encoding/json"
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

// The admin lane through a cluster's entity: requests join the queued
// batch of their action, refusals start and touch nothing, and one
// activity runs each batch.
type TopicAdminSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env     *testsuite.TestWorkflowEnvironment
	batches []activities.TopicBatchInput
	// batchedAt is when each batch's activity ran (the test clock).
	batchedAt []time.Time
}

func TestTopicAdmin(t *testing.T) { suite.Run(t, new(TopicAdminSuite)) }

func (s *TopicAdminSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	stubSensing(s.env, nil)
	s.batches, s.batchedAt = nil, nil
	s.env.RegisterWorkflow(workflows.TopicAdminWorkflow)
	s.env.OnActivity(acts.TopicBatch, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TopicBatchInput) (activities.TopicBatchResult, error) {
		s.batches = append(s.batches, in)
		s.batchedAt = append(s.batchedAt, s.env.Now())
		return activities.TopicBatchResult{Requested: len(in.Topics), Done: len(in.Topics) - 1, Requests: 2, Throttled: 1, ThrottledMillis: 1200,
			Refused: []activities.TopicRefusal{{Topic: in.Topics[0].Name, Reason: "topic " + in.Topics[0].Name + ": its replicas need ~6 more segments"}}}, nil
	}).Maybe()
}

func (s *TopicAdminSuite) update(delay time.Duration, name string, arg any, into *answer) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   func(err error) { into.err = err },
			OnComplete: func(v any, err error) { into.err = err; into.op, _ = v.(workflows.Operation) },
		}, arg)
	}, delay)
}

func topicReq(action string, topics ...fleet.TopicRequest) workflows.Request {
	raw, _ := json.Marshal(workflows.TopicAdminParams{Action: action, Topics: topics})
	return workflows.Request{Kind: workflows.OpTopicAdmin, RequestedBy: "alice", Params: raw}
}

func topicOf(tenant, name string, partitions int) fleet.TopicRequest {
	return fleet.TopicRequest{Tenant: tenant, Name: tenant + "." + name, Partitions: partitions}
}

func (s *TopicAdminSuite) TestBatchedRefusedAndRunOnce() {
	tenants := []workflows.TenantState{{Name: "wabash-1", Plan: tenantPlan("basic-0")}, {Name: "ohio-2", Plan: tenantPlan("basic-1")}}
	state := &workflows.ClusterState{Tenants: tenants, Paused: &workflows.PauseState{By: "test", Reason: "hold the queue"}}
	var first, joined, third, outside, over, unknown, badRetention, twice, del answer
	s.update(time.Minute, workflows.UpdateRequest, topicReq("create", topicOf("wabash-1", "a", 3), topicOf("wabash-1", "b", 3)), &first)
	s.update(2*time.Minute, workflows.UpdateRequest, topicReq("create", topicOf("ohio-2", "x", 6)), &joined)
	s.update(3*time.Minute, workflows.UpdateRequest, topicReq("create", topicOf("wabash-1", "c", 200)), &third)
	s.update(4*time.Minute, workflows.UpdateRequest, topicReq("create", fleet.TopicRequest{Tenant: "wabash-1", Name: "ohio-2.y", Partitions: 1}), &outside)
	s.update(5*time.Minute, workflows.UpdateRequest, topicReq("create", topicOf("wabash-1", "d", 40)), &over) // 3+3+200+40 > 240
	s.update(6*time.Minute, workflows.UpdateRequest, topicReq("create", topicOf("nobody-9", "a", 1)), &unknown)
	s.update(7*time.Minute, workflows.UpdateRequest, topicReq("create", fleet.TopicRequest{Tenant: "ohio-2", Name: "ohio-2.r", Partitions: 1,
		RetentionMs: time.Hour.Milliseconds()}), &badRetention)
	s.update(8*time.Minute, workflows.UpdateRequest, topicReq("create", topicOf("wabash-1", "a", 1)), &twice)
	s.update(9*time.Minute, workflows.UpdateRequest, topicReq("delete", topicOf("ohio-2", "old", 0)), &del)
	var queued workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { queued = s.status() }, 9*time.Minute+30*time.Second)
	s.update(10*time.Minute, workflows.UpdateResume, workflows.ResumeRequest{By: "test"}, &answer{})
	var st workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { st = s.status(); s.env.CancelWorkflow() }, 20*time.Minute)
	stubSelfHealing(s.env)
	s.env.ExecuteWorkflow(workflows.ClusterWorkflow, workflows.ClusterInput{Spec: testSpec(), State: state})

	s.Require().NoError(first.err)
	s.Require().NoError(joined.err)
	s.Require().NoError(third.err)
	s.True(joined.op.Existing, "a creation joins the queued batch")
	s.True(third.op.Existing)
	s.Equal(first.op.ID, joined.op.ID)
	s.ErrorContains(outside.err, `topic "ohio-2.y" is outside tenant wabash-1's prefix wabash-1.`)
	s.ErrorContains(over.err, "tenant wabash-1: 246 partition(s) asked for (with the queued batch) are over plan basic-0's 240")
	s.ErrorContains(unknown.err, "has no tenant nobody-9")
	s.ErrorContains(badRetention.err, "retention 1h0m0s is outside plan basic-1's bounds")
	s.ErrorContains(twice.err, "topic wabash-1.a is in the queued batch already")
	s.Require().NoError(del.err)
	s.False(del.op.Existing, "a deletion is a batch of its own")

	s.Require().Len(queued.Queue, 2, "refusals queue nothing")
	// One activity per batch, the creations' carrying all three requests.
	s.Require().Len(s.batches, 2)
	s.Equal("create", s.batches[0].Action)
	s.Len(s.batches[0].Topics, 4)
	s.Equal([]string{"ohio-2", "wabash-1"}, sortedPlanNames(s.batches[0].Plans))
	s.Equal("basic-1", s.batches[0].Plans["ohio-2"].Name)
	s.Equal("delete", s.batches[1].Action)
	s.Require().Len(st.History, 2)
	s.Equal(workflows.StatusSucceeded, st.History[0].Status)
	s.Contains(st.History[0].Outcome, "3 of 4 topic(s) done (0 already so) in 2 admin request(s); 1 throttled by KIP-599, waited 1200 ms; 1 refused; topic wabash-1.a: its replicas need ~6 more segments")
}

func sortedPlanNames(m map[string]fleet.TenantPlan) []string {
	var out []string
	for _, n := range []string{"ohio-2", "wabash-1"} {
		if _, ok := m[n]; ok {
			out = append(out, n)
		}
	}
	return out
}

func (s *TopicAdminSuite) status() workflows.ClusterStatus {
	v, err := s.env.QueryWorkflow(workflows.QueryStatus)
	s.Require().NoError(err)
	var st workflows.ClusterStatus
	s.Require().NoError(v.Get(&st))
	return st
}

// The admin lane is held while a roll runs: a creation asked for in the
// middle of a rolling restart is admitted and queued, and its batch starts
// only once the roll has ended (a controller that moves mid-batch would
// leave it half-done).
func (s *TopicAdminSuite) TestHeldWhileARollRuns() {
	var rollEnded time.Time
	s.env.OnWorkflow(workflows.RollingRestartWorkflow, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, _ workflows.RollingRestartInput) (workflows.RollingRestartResult, error) {
			err := workflow.Sleep(ctx, 10*time.Minute)
			rollEnded = workflow.Now(ctx)
			return workflows.RollingRestartResult{}, err
		})
	state := &workflows.ClusterState{Tenants: []workflows.TenantState{{Name: "wabash-1", Plan: tenantPlan("basic-0")}}}
	var roll, create answer
	s.update(time.Minute, workflows.UpdateRequest, workflows.Request{Kind: workflows.OpRollingRestart, RequestedBy: "bob"}, &roll)
	s.update(2*time.Minute, workflows.UpdateRequest, topicReq("create", topicOf("wabash-1", "a", 3)), &create)
	var during workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { during = s.status() }, 5*time.Minute)
	var st workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { st = s.status(); s.env.CancelWorkflow() }, 30*time.Minute)
	stubSelfHealing(s.env)
	s.env.ExecuteWorkflow(workflows.ClusterWorkflow, workflows.ClusterInput{Spec: testSpec(), State: state})

	s.Require().NoError(roll.err)
	s.Require().NoError(create.err)
	s.Require().NotNil(during.Running)
	s.Equal(workflows.OpRollingRestart, during.Running.Kind)
	s.Require().Len(during.Queue, 1, "the batch waits behind the roll")
	s.Equal(workflows.OpTopicAdmin, during.Queue[0].Kind)
	s.Require().False(rollEnded.IsZero(), "the roll ran")
	s.Require().Len(s.batchedAt, 1, "the batch ran after the roll")
	s.False(s.batchedAt[0].Before(rollEnded), "batch started %s, roll ended %s", s.batchedAt[0], rollEnded)
	s.Require().Len(st.History, 2)
}
