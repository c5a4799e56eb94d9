package workflows_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// The tenant workflows alone, against a fake Kafka side that records each
// step: what runs in which order, and that a refusal touches nothing.
type TenantSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env   *testsuite.TestWorkflowEnvironment
	steps []string
	// footprints answer the footprint steps in turn (the last repeats).
	footprints []fleet.TenantFootprint
	failGrant  error
}

func TestTenantWorkflows(t *testing.T) { suite.Run(t, new(TenantSuite)) }

func tenantPlan(name string) fleet.TenantPlan {
	p, err := fleet.DefaultTenantCatalog().Plan(name)
	if err != nil {
		panic(err)
	}
	return p
}

func (s *TenantSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.steps, s.footprints, s.failGrant = nil, nil, nil
	s.env.OnActivity(acts.TenantFootprint, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TenantDataInput) (fleet.TenantFootprint, error) {
		s.steps = append(s.steps, "footprint "+in.Tenant)
		if len(s.footprints) == 0 {
			return fleet.TenantFootprint{}, nil
		}
		f := s.footprints[0]
		if len(s.footprints) > 1 {
			s.footprints = s.footprints[1:]
		}
		return f, nil
	}).Maybe()
	s.env.OnActivity(acts.CreateTenantUser, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TenantUserInput) (activities.TenantHandout, error) {
		s.steps = append(s.steps, "create "+in.User)
		return activities.TenantHandout{User: in.User, Handout: fleet.HandoutName(in.Spec.ID, in.Tenant, in.User)}, nil
	}).Maybe()
	s.env.OnActivity(acts.GrantTenantUser, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TenantUserInput) (activities.TenantGrant, error) {
		s.steps = append(s.steps, "grant "+in.User)
		s.Equal(tenantPlan("basic-0").Quotas(), in.Quotas, "the plan's quotas")
		if s.failGrant != nil {
			return activities.TenantGrant{}, s.failGrant
		}
		return activities.TenantGrant{ACLs: 10}, nil
	}).Maybe()
	s.env.OnActivity(acts.SetTenantQuotas, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TenantUserInput) error {
		s.steps = append(s.steps, "quotas "+in.User)
		s.Equal(tenantPlan("basic-1").Quotas(), in.Quotas)
		return nil
	}).Maybe()
	s.env.OnActivity(acts.RemoveTenantUser, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TenantUserInput) (activities.TenantUserRemoved, error) {
		s.steps = append(s.steps, "remove "+in.User)
		return activities.TenantUserRemoved{ACLs: 10}, nil
	}).Maybe()
	s.env.OnActivity(acts.DeleteTenantData, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.TenantDataInput) (activities.TenantDataDeleted, error) {
		s.steps = append(s.steps, "data "+in.Tenant)
		return activities.TenantDataDeleted{Topics: 2, Groups: 1}, nil
	}).Maybe()
}

func tenantIn(users ...string) workflows.TenantInput {
	t := workflows.TenantState{Name: "wabash-58799", Plan: tenantPlan("basic-0")}
	for _, u := range users {
		t.Users = append(t.Users, workflows.TenantUserState{Name: u})
	}
	t.Rotations = max(len(users)-1, 0)
	return workflows.TenantInput{Spec: testSpec(), OperationID: "op-1", RequestedBy: "alice", Tenant: t}
}

func (s *TenantSuite) result() workflows.TenantResult {
	s.Require().NoError(s.env.GetWorkflowError())
	var r workflows.TenantResult
	s.Require().NoError(s.env.GetWorkflowResult(&r))
	return r
}

func (s *TenantSuite) refusedWith(typ, msg string) {
	var appErr *temporal.ApplicationError
	s.Require().ErrorAs(s.env.GetWorkflowError(), &appErr)
	s.Equal(typ, appErr.Type())
	s.Contains(appErr.Message(), msg)
}

// A creation checks the prefix is free, then makes the user (its password
// goes to the secret source), then grants ACLs and quotas; only the
// handout's name comes back.
func (s *TenantSuite) TestCreateInOrder() {
	s.env.ExecuteWorkflow(workflows.TenantCreateWorkflow, tenantIn())
	r := s.result()
	s.Equal([]string{"footprint wabash-58799", "create wabash-58799", "grant wabash-58799"}, s.steps)
	s.Equal("kfleet/tenants/test-a/wabash-58799/wabash-58799", r.Handout.Handout)
	s.Require().NotNil(r.Change.Created)
	s.Equal([]string{"wabash-58799"}, r.Change.Created.UserNames())
	s.Equal("basic-0", r.Change.Created.Plan.Name)
	s.Equal(10, r.ACLs)
}

// A prefix that holds anything already refuses the creation, touching
// nothing.
func (s *TenantSuite) TestCreateRefusedOnAnOccupiedPrefix() {
	s.footprints = []fleet.TenantFootprint{{Topics: 1, Partitions: 3}}
	s.env.ExecuteWorkflow(workflows.TenantCreateWorkflow, tenantIn())
	s.refusedWith(workflows.ErrTypeTenantRefused, "creation refused, nothing touched: prefix wabash-58799. or user wabash-58799 holds something already: 1 topic(s)")
	s.Equal([]string{"footprint wabash-58799"}, s.steps)
}

// A user half made (its grant failed for good) is removed again.
func (s *TenantSuite) TestCreateUndoesAHalfMadeUser() {
	s.failGrant = temporal.NewNonRetryableApplicationError("no ACLs for you", activities.ErrTypeBadInput, nil)
	s.env.ExecuteWorkflow(workflows.TenantCreateWorkflow, tenantIn())
	s.Error(s.env.GetWorkflowError())
	s.Equal([]string{"footprint wabash-58799", "create wabash-58799", "grant wabash-58799", "remove wabash-58799"}, s.steps)
}

// A rotation makes the next user with the same ACLs and quotas and hands
// it out; the old users are removed later, by the entity, after the grace.
func (s *TenantSuite) TestRotateAddsTheNextUser() {
	in := tenantIn("wabash-58799", "wabash-58799-r2")
	in.Grace = workflows.DefaultRotationGrace
	s.env.ExecuteWorkflow(workflows.TenantRotateWorkflow, in)
	r := s.result()
	s.Equal([]string{"create wabash-58799-r3", "grant wabash-58799-r3"}, s.steps, "nothing is removed now")
	s.Equal("wabash-58799-r3", r.Change.Added.Name)
	s.Equal([]string{"wabash-58799", "wabash-58799-r2"}, r.Change.Retire)
	s.Equal(workflows.DefaultRotationGrace, r.Change.RetireAt.Sub(r.Change.Added.Created))
	s.Equal("kfleet/tenants/test-a/wabash-58799/wabash-58799-r3", r.Handout.Handout)
}

// A plan change over the new plan's limits is refused, touching nothing;
// within them, every user gets the new quotas.
func (s *TenantSuite) TestChangePlan() {
	in := tenantIn("wabash-58799", "wabash-58799-r2")
	basic1 := tenantPlan("basic-1")
	in.Plan = &basic1
	s.footprints = []fleet.TenantFootprint{{Topics: 2, Partitions: 481, MinRetentionMs: 86_400_000, MaxRetentionMs: 86_400_000}}
	s.env.ExecuteWorkflow(workflows.TenantChangePlanWorkflow, in)
	s.refusedWith(workflows.ErrTypeTenantRefused, "over plan basic-1: 481 partitions, plan basic-1 allows 480")
	s.Equal([]string{"footprint wabash-58799"}, s.steps)

	s.SetupTest()
	s.footprints = []fleet.TenantFootprint{{Topics: 2, Partitions: 400, MinRetentionMs: 86_400_000, MaxRetentionMs: 86_400_000}}
	s.env.ExecuteWorkflow(workflows.TenantChangePlanWorkflow, in)
	r := s.result()
	s.Equal([]string{"footprint wabash-58799", "quotas wabash-58799", "quotas wabash-58799-r2"}, s.steps)
	s.Equal("basic-1", r.Change.Plan.Name)
}

// A deletion cuts every user off first, then deletes the data, then
// verifies nothing is left.
func (s *TenantSuite) TestDeleteInOrder() {
	s.env.ExecuteWorkflow(workflows.TenantDeleteWorkflow, tenantIn("wabash-58799", "wabash-58799-r2"))
	r := s.result()
	s.Equal([]string{"remove wabash-58799", "remove wabash-58799-r2", "data wabash-58799", "footprint wabash-58799"}, s.steps)
	s.True(r.Change.Deleted)
	s.Equal(2, r.Users)
	s.Equal(20, r.ACLs)
	s.Equal(2, r.Topics)
}

// Anything left after a deletion fails it loudly, and the entity keeps the
// tenant.
func (s *TenantSuite) TestDeleteFailsLoudlyOnLeftovers() {
	s.footprints = []fleet.TenantFootprint{{Groups: 1}}
	s.env.ExecuteWorkflow(workflows.TenantDeleteWorkflow, tenantIn("wabash-58799"))
	s.refusedWith(workflows.ErrTypeTenantLeftovers, "deleted, yet still there: 0 topic(s) (0 partitions), 1 group(s)")
	var r workflows.TenantResult
	_ = s.env.GetWorkflowResult(&r)
	s.False(r.Change.Deleted)
}

// A retirement removes the one user.
func (s *TenantSuite) TestRetireRemovesTheUser() {
	in := tenantIn()
	in.User = "wabash-58799"
	s.env.ExecuteWorkflow(workflows.TenantRetireUserWorkflow, in)
	r := s.result()
	s.Equal([]string{"remove wabash-58799"}, s.steps)
	s.Equal("wabash-58799", r.Change.Removed)
}
