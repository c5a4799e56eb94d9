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

// Tenant operations through a cluster's entity: what it admits and
// refuses (a refusal starts nothing), what it keeps of its tenants, and
// the removal of a rotated-out user once its grace is over.
type TenantEntitySuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env   *testsuite.TestWorkflowEnvironment
	sim   *senseSim
	steps []string
}

func TestTenantEntity(t *testing.T) { suite.Run(t, new(TenantEntitySuite)) }

func (s *TenantEntitySuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.sim = stubSensing(s.env, nil)
	s.steps = nil
	for _, w := range []any{workflows.TenantCreateWorkflow, workflows.TenantRotateWorkflow, workflows.TenantChangePlanWorkflow,
		workflows.TenantDeleteWorkflow, workflows.TenantRetireUserWorkflow} {
		s.env.RegisterWorkflow(w)
	}
	record := func(step string) { s.steps = append(s.steps, step) }
	s.env.OnActivity(acts.TenantFootprint, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TenantDataInput) (fleet.TenantFootprint, error) {
		record("footprint " + in.Tenant)
		return fleet.TenantFootprint{}, nil
	}).Maybe()
	s.env.OnActivity(acts.CreateTenantUser, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TenantUserInput) (activities.TenantHandout, error) {
		record("create " + in.User)
		return activities.TenantHandout{User: in.User, Handout: fleet.HandoutName(in.Spec.ID, in.Tenant, in.User)}, nil
	}).Maybe()
	s.env.OnActivity(acts.GrantTenantUser, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TenantUserInput) (activities.TenantGrant, error) {
		record("grant " + in.User)
		return activities.TenantGrant{ACLs: 10}, nil
	}).Maybe()
	s.env.OnActivity(acts.RemoveTenantUser, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TenantUserInput) (activities.TenantUserRemoved, error) {
		record("remove " + in.User)
		return activities.TenantUserRemoved{ACLs: 10}, nil
	}).Maybe()
	s.env.OnActivity(acts.DeleteTenantData, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TenantDataInput) (activities.TenantDataDeleted, error) {
		record("data " + in.Tenant)
		return activities.TenantDataDeleted{}, nil
	}).Maybe()
}

// run, update and status are ClusterSuite's (without its tests).
func (s *TenantEntitySuite) run(in workflows.ClusterInput) {
	stubSelfHealing(s.env)
	s.env.ExecuteWorkflow(workflows.ClusterWorkflow, in)
}

func (s *TenantEntitySuite) update(delay time.Duration, name string, arg any, into *answer) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(name, "", &testsuite.TestUpdateCallback{
			OnAccept:   func() {},
			OnReject:   func(err error) { into.err = err },
			OnComplete: func(v any, err error) { into.err = err; into.op, _ = v.(workflows.Operation) },
		}, arg)
	}, delay)
}

func (s *TenantEntitySuite) status() workflows.ClusterStatus {
	v, err := s.env.QueryWorkflow(workflows.QueryStatus)
	s.Require().NoError(err)
	var st workflows.ClusterStatus
	s.Require().NoError(v.Get(&st))
	return st
}

func createReq(plan, name string) workflows.Request {
	p := tenantPlan(plan)
	raw, _ := json.Marshal(workflows.TenantCreateParams{Plan: plan, Limits: &p, Name: name})
	return workflows.Request{Kind: workflows.OpTenantCreate, RequestedBy: "alice", Params: raw}
}

func tenantReq(kind string, params any) workflows.Request {
	raw, _ := json.Marshal(params)
	return workflows.Request{Kind: kind, RequestedBy: "alice", Params: raw}
}

// A creation gets a generated name at admission, runs, and the entity
// keeps the tenant; a second creation is a tenant of its own.
func (s *TenantEntitySuite) TestCreateKeepsTheTenant() {
	var first, second answer
	s.update(time.Minute, workflows.UpdateRequest, createReq("basic-0", ""), &first)
	s.update(2*time.Minute, workflows.UpdateRequest, createReq("basic-1", ""), &second)
	var st workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { st = s.status(); s.env.CancelWorkflow() }, 10*time.Minute)
	s.run(workflows.ClusterInput{Spec: testSpec()})

	s.Require().NoError(first.err)
	s.Require().NoError(second.err)
	s.False(second.op.Existing, "every creation is a tenant of its own")
	var p workflows.TenantCreateParams
	s.Require().NoError(json.Unmarshal(first.op.Params, &p))
	s.Regexp(`^[a-z-]+-[0-9]{5}$`, p.Name)
	s.Require().Len(st.Tenants, 2)
	t := st.Tenants[0]
	s.Equal(p.Name, t.Name)
	s.Equal("basic-0", t.Plan.Name)
	s.Equal([]string{p.Name}, t.UserNames())
	s.Equal("alice", t.CreatedBy)
	s.Equal(workflows.StatusSucceeded, st.History[0].Status)
	s.Contains(st.History[0].Outcome, "bin/starter tenant credentials --cluster test-a --tenant "+p.Name)
	s.NotEqual(st.Tenants[0].Name, st.Tenants[1].Name)
}

// Bad input starts nothing, each refused with its reason.
func (s *TenantEntitySuite) TestRefusalsStartNothing() {
	noLimits := createReq("basic-0", "")
	noLimits.Params = json.RawMessage(`{"plan":"basic-0"}`)
	cases := []struct {
		req  workflows.Request
		want string
	}{
		{noLimits, "its limits are missing"},
		{createReq("basic-2", "acme"), "needs 64 GB of disk, 16 GB of 80 are free"},
		{createReq("basic-0", "wabash-58799"), "already has a tenant or user wabash-58799"},
		{createReq("basic-0", "wabash-58799-r2"), "ends like a rotated user"},
		{tenantReq(workflows.OpTenantRotate, workflows.TenantRotateParams{Tenant: "nobody"}), "has no tenant nobody (tenants: wabash-58799)"},
		{tenantReq(workflows.OpTenantDelete, workflows.TenantDeleteParams{Tenant: "nobody"}), "has no tenant nobody"},
		{tenantReq(workflows.OpTenantRotate, workflows.TenantRotateParams{Tenant: "wabash-58799", Grace: "1ms"}), "want a duration from 1s"},
		{tenantReq(workflows.OpTenantChangePlan, workflows.TenantChangePlanParams{Tenant: "wabash-58799", Plan: "basic-2", Limits: ptrTo(tenantPlan("basic-2"))}),
			"on plan basic-2 already"},
		{tenantReq(workflows.OpTenantRetire, workflows.TenantRetireParams{Tenant: "wabash-58799", User: "wabash-58799"}), "removes a rotated-out user by itself"},
	}
	var seed answer
	s.update(time.Minute, workflows.UpdateRequest, createReq("basic-2", "wabash-58799"), &seed)
	answers := make([]answer, len(cases))
	for i, c := range cases {
		s.update(5*time.Minute, workflows.UpdateRequest, c.req, &answers[i])
	}
	var st workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { st = s.status(); s.env.CancelWorkflow() }, 10*time.Minute)
	s.run(workflows.ClusterInput{Spec: testSpec()})

	s.Require().NoError(seed.err)
	for i, c := range cases {
		s.ErrorContains(answers[i].err, c.want, c.req.Kind)
	}
	s.Len(st.History, 1, "only the seed tenant's creation ran")
	s.Equal([]string{"footprint wabash-58799", "create wabash-58799", "grant wabash-58799"}, s.steps)
}

func ptrTo[T any](v T) *T { return &v }

// A rotation hands the new user out at once; the old user keeps working
// for the grace, then the entity removes it (a durable timer) and keeps
// the one user left. A deletion then removes every user and the data.
func (s *TenantEntitySuite) TestRotationGraceThenDelete() {
	var create, rotate, del answer
	s.update(time.Minute, workflows.UpdateRequest, createReq("basic-0", "wabash-58799"), &create)
	s.update(5*time.Minute, workflows.UpdateRequest, tenantReq(workflows.OpTenantRotate, workflows.TenantRotateParams{Tenant: "wabash-58799", Grace: "2h"}), &rotate)
	var during, after workflows.ClusterStatus
	var stepsDuring []string
	s.env.RegisterDelayedCallback(func() { during, stepsDuring = s.status(), append([]string(nil), s.steps...) }, 2*time.Hour)
	s.env.RegisterDelayedCallback(func() { after = s.status() }, 2*time.Hour+10*time.Minute)
	s.update(3*time.Hour, workflows.UpdateRequest, tenantReq(workflows.OpTenantDelete, workflows.TenantDeleteParams{Tenant: "wabash-58799"}), &del)
	var final workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { final = s.status(); s.env.CancelWorkflow() }, 4*time.Hour)
	s.run(workflows.ClusterInput{Spec: testSpec()})

	s.Require().NoError(create.err)
	s.Require().NoError(rotate.err)
	s.Equal([]string{"footprint wabash-58799", "create wabash-58799", "grant wabash-58799", "create wabash-58799-r2", "grant wabash-58799-r2"},
		stepsDuring, "within the grace the old user stays")
	s.Require().Len(during.Tenants, 1)
	s.Equal([]string{"wabash-58799", "wabash-58799-r2"}, during.Tenants[0].UserNames())
	s.False(during.Tenants[0].Users[0].RetireAt.IsZero())

	s.Require().Len(after.Tenants, 1)
	s.Equal([]string{"wabash-58799-r2"}, after.Tenants[0].UserNames(), "removed once its grace ended")
	retired := after.History[len(after.History)-1]
	s.Equal(workflows.OpTenantRetire, retired.Kind)
	s.Equal("kfleet-tenant-rotation", retired.RequestedBy)
	s.Equal(workflows.StatusSucceeded, retired.Status)

	s.Require().NoError(del.err)
	s.Empty(final.Tenants)
	s.Equal([]string{"remove wabash-58799", "remove wabash-58799-r2", "data wabash-58799", "footprint wabash-58799"}, s.steps[len(s.steps)-4:])
}

// An operation of a tenant holds the others of that tenant (each is
// admitted against the state it runs on); the same kind joins.
func (s *TenantEntitySuite) TestOneOperationPerTenantAtATime() {
	s.env.OnWorkflow(workflows.TenantDeleteWorkflow, mock.Anything, mock.Anything).Return(func(ctx workflow.Context, in workflows.TenantInput) (workflows.TenantResult, error) {
		return workflows.TenantResult{}, workflow.Sleep(ctx, time.Hour)
	})
	var create, del, delAgain, rotate answer
	s.update(time.Minute, workflows.UpdateRequest, createReq("basic-0", "wabash-58799"), &create)
	s.update(5*time.Minute, workflows.UpdateRequest, tenantReq(workflows.OpTenantDelete, workflows.TenantDeleteParams{Tenant: "wabash-58799"}), &del)
	s.update(10*time.Minute, workflows.UpdateRequest, tenantReq(workflows.OpTenantDelete, workflows.TenantDeleteParams{Tenant: "wabash-58799"}), &delAgain)
	s.update(11*time.Minute, workflows.UpdateRequest, tenantReq(workflows.OpTenantRotate, workflows.TenantRotateParams{Tenant: "wabash-58799"}), &rotate)
	s.env.RegisterDelayedCallback(func() { s.env.CancelWorkflow() }, 20*time.Minute)
	s.run(workflows.ClusterInput{Spec: testSpec()})

	s.Require().NoError(del.err)
	s.Require().NoError(delAgain.err)
	s.True(delAgain.op.Existing)
	s.Equal(del.op.ID, delAgain.op.ID)
	s.ErrorContains(rotate.err, "has tenant-delete "+del.op.ID)
}
