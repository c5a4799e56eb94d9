package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// The tenant lifecycle's workflows (op_tenant.go registers them). Each is
// short, runs in its cluster's maintenance lane, sets the Tenant search
// attribute, and returns a TenantChange its entity applies. A new
// password never enters them: CreateTenantUser stores it in the secret
// source and answers only its handout's name.

// TenantInput is a tenant operation: the tenant as its entity knows it
// (for a creation, the tenant to be), and each kind's own.
type TenantInput struct {
	Spec        fleet.ClusterSpec `json:"spec"`
	OperationID string            `json:"operationId"`
	RequestedBy string            `json:"requestedBy"`
	Tenant      TenantState       `json:"tenant"`
	// Plan is a plan change's new plan.
	Plan *fleet.TenantPlan `json:"plan,omitempty"`
	// Grace is how long a rotation leaves the old credential working.
	Grace time.Duration `json:"grace,omitempty"`
	// User is the rotated-out user a retirement removes.
	User string `json:"user,omitempty"`
}

// TenantResult is what a tenant operation did, in counts.
type TenantResult struct {
	Cluster string       `json:"cluster"`
	Change  TenantChange `json:"change"`
	// Handout names where a new user's password waits (creation,
	// rotation): the caller fetches it once.
	Handout   *activities.TenantHandout `json:"handout,omitempty"`
	ACLs      int                       `json:"acls,omitempty"`
	Users     int                       `json:"users,omitempty"`
	Topics    int                       `json:"topics,omitempty"`
	Groups    int                       `json:"groups,omitempty"`
	Footprint fleet.TenantFootprint     `json:"footprint,omitzero"`
}

// Error types of tenant operations that retrying cannot help.
const (
	// ErrTypeTenantRefused: refused before anything was touched (a prefix
	// that holds something already, a plan the tenant is over).
	ErrTypeTenantRefused = "TenantRefused"
	// ErrTypeTenantLeftovers: a deletion left something of the tenant.
	ErrTypeTenantLeftovers = "TenantLeftovers"
)

// tenantRun is what a tenant workflow's steps share.
type tenantRun struct {
	in   TenantInput
	what string
}

func startTenantRun(ctx workflow.Context, in TenantInput, what string) *tenantRun {
	if err := workflow.UpsertTypedSearchAttributes(ctx, AttrTenant.ValueSet(in.Tenant.Name)); err != nil {
		workflow.GetLogger(ctx).Warn("cannot set the Tenant search attribute", "Error", err)
	}
	r := &tenantRun{in: in, what: what}
	r.step(ctx, "starting")
	return r
}

// step shows the step in the UI's current details.
func (r *tenantRun) step(ctx workflow.Context, step string) {
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s** tenant `%s` %s `%s`: %s.", r.in.Spec.ID, r.in.Tenant.Name, r.what, r.in.OperationID, step))
}

// tenantContext: admin calls take seconds; a failure is retried a few
// times (every call is idempotent), bad input never.
func tenantContext(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		HeartbeatTimeout:    time.Minute,
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: 30 * time.Second, MaximumAttempts: 10,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput}},
	})
}

func (r *tenantRun) user(name string, quotas bool) activities.TenantUserInput {
	in := activities.TenantUserInput{Spec: r.in.Spec, Tenant: r.in.Tenant.Name, User: name}
	if quotas {
		in.Quotas = r.in.Tenant.Plan.Quotas()
	}
	return in
}

func (r *tenantRun) footprint(ctx workflow.Context, users []string) (fleet.TenantFootprint, error) {
	var f fleet.TenantFootprint
	err := workflow.ExecuteActivity(tenantContext(ctx, "count what "+fleet.TenantPrefix(r.in.Tenant.Name)+" holds"), a.TenantFootprint,
		activities.TenantDataInput{Spec: r.in.Spec, Tenant: r.in.Tenant.Name, Users: users}).Get(ctx, &f)
	return f, err
}

// addUser creates a user with a new password (handed out), the tenant's
// ACLs and its plan's quotas; if a step fails for good, what it made is
// removed again, so a failed operation leaves no half-made user.
func (r *tenantRun) addUser(ctx workflow.Context, user string, res *TenantResult) error {
	r.step(ctx, "creating user "+user+" (its password goes to the secret source)")
	var h activities.TenantHandout
	err := workflow.ExecuteActivity(tenantContext(ctx, "create SCRAM user "+user), a.CreateTenantUser, r.user(user, false)).Get(ctx, &h)
	if err == nil {
		res.Handout = &h
		r.step(ctx, "granting "+user+" ACLs on "+fleet.TenantPrefix(r.in.Tenant.Name)+" and its plan's quotas")
		var g activities.TenantGrant
		err = workflow.ExecuteActivity(tenantContext(ctx, "grant ACLs and quotas to "+user), a.GrantTenantUser, r.user(user, true)).Get(ctx, &g)
		res.ACLs = g.ACLs
	}
	if err != nil {
		res.Handout = nil
		// Undone even if the operation was cancelled.
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		if uerr := r.removeUser(dctx, user, nil); uerr != nil {
			workflow.GetLogger(ctx).Error("could not undo a half-made tenant user", "Cluster", r.in.Spec.ID, "Tenant", r.in.Tenant.Name, "User", user, "Error", uerr)
		}
		return fmt.Errorf("cluster %s tenant %s: user %s: %w", r.in.Spec.ID, r.in.Tenant.Name, user, err)
	}
	return nil
}

func (r *tenantRun) removeUser(ctx workflow.Context, user string, res *TenantResult) error {
	r.step(ctx, "removing user "+user+": ACLs, SCRAM credential, quotas")
	var rm activities.TenantUserRemoved
	err := workflow.ExecuteActivity(tenantContext(ctx, "remove user "+user), a.RemoveTenantUser, r.user(user, false)).Get(ctx, &rm)
	if res != nil {
		res.ACLs += rm.ACLs
		if err == nil {
			res.Users++
		}
	}
	return err
}

func (r *tenantRun) refused(format string, args ...any) error {
	msg := fmt.Sprintf("cluster %s tenant %s: %s refused, nothing touched: ", r.in.Spec.ID, r.in.Tenant.Name, r.what) + fmt.Sprintf(format, args...)
	return temporal.NewNonRetryableApplicationError(msg, ErrTypeTenantRefused, nil)
}

// TenantCreateWorkflow creates a tenant: its prefix must hold nothing
// (no topic, group, ACL, user or quota of that name), then its first
// user gets a new password (handed out through the secret source), ACLs
// PREFIXED on the prefix and the plan's quotas.
func TenantCreateWorkflow(ctx workflow.Context, in TenantInput) (TenantResult, error) {
	r := startTenantRun(ctx, in, "creation")
	name, user := in.Tenant.Name, fleet.TenantUser(in.Tenant.Name, 0)
	res := TenantResult{Cluster: in.Spec.ID, Change: TenantChange{Tenant: name}}
	r.step(ctx, "checking that "+fleet.TenantPrefix(name)+" holds nothing")
	f, err := r.footprint(ctx, []string{user})
	if err != nil {
		return res, err
	}
	if !f.Empty() {
		return res, r.refused("prefix %s or user %s holds something already: %s", fleet.TenantPrefix(name), user, f)
	}
	if err := r.addUser(ctx, user, &res); err != nil {
		return res, err
	}
	now := workflow.Now(ctx)
	t := in.Tenant
	t.Users, t.Created, t.Rotations = []TenantUserState{{Name: user, Created: now}}, now, 0
	res.Change.Created = &t
	r.step(ctx, fmt.Sprintf("created: user %s, %d ACL(s), plan %s", user, res.ACLs, t.Plan.Name))
	return res, nil
}

// TenantRotateWorkflow rotates a tenant's credential. SCRAM holds one
// credential per mechanism per user, so a rotation is a new user
// (<name>-r2, -r3, ...) with the same ACLs and quotas, handed out now;
// the entity removes the old users once the grace is over
// (tenantRetirements), so clients move over without an outage.
func TenantRotateWorkflow(ctx workflow.Context, in TenantInput) (TenantResult, error) {
	r := startTenantRun(ctx, in, "rotation")
	t := in.Tenant
	res := TenantResult{Cluster: in.Spec.ID, Change: TenantChange{Tenant: t.Name}}
	user := fleet.TenantUser(t.Name, t.Rotations+1)
	if err := r.addUser(ctx, user, &res); err != nil {
		return res, err
	}
	now := workflow.Now(ctx)
	res.Change.Added = &TenantUserState{Name: user, Created: now}
	res.Change.Retire, res.Change.RetireAt = t.UserNames(), now.Add(in.Grace)
	r.step(ctx, fmt.Sprintf("rotated: new user %s; %v removed at %s", user, res.Change.Retire, res.Change.RetireAt.Format(time.RFC3339)))
	return res, nil
}

// TenantChangePlanWorkflow moves a tenant to a new plan: refused,
// touching nothing, if its prefix is over the new plan's partitions or
// outside its retention bounds; else every user gets the new quotas.
func TenantChangePlanWorkflow(ctx workflow.Context, in TenantInput) (TenantResult, error) {
	r := startTenantRun(ctx, in, "plan change")
	res := TenantResult{Cluster: in.Spec.ID, Change: TenantChange{Tenant: in.Tenant.Name}}
	if in.Plan == nil {
		return res, temporal.NewNonRetryableApplicationError("a plan change needs its new plan", ErrTypeBadRequest, nil)
	}
	r.step(ctx, "reading what "+fleet.TenantPrefix(in.Tenant.Name)+" holds")
	f, err := r.footprint(ctx, in.Tenant.UserNames())
	if err != nil {
		return res, err
	}
	res.Footprint = f
	if err := in.Plan.Admits(f, len(in.Spec.Brokers)); err != nil {
		return res, r.refused("the tenant is over plan %s: %v", in.Plan.Name, err)
	}
	r.in.Tenant.Plan = *in.Plan
	for _, u := range in.Tenant.UserNames() {
		r.step(ctx, "setting "+u+"'s quotas to plan "+in.Plan.Name+"'s")
		if err := workflow.ExecuteActivity(tenantContext(ctx, "set quotas of "+u), a.SetTenantQuotas, r.user(u, true)).Get(ctx, nil); err != nil {
			return res, fmt.Errorf("cluster %s tenant %s: %w", in.Spec.ID, in.Tenant.Name, err)
		}
		res.Users++
	}
	res.Change.Plan = in.Plan
	r.step(ctx, "moved to plan "+in.Plan.Name)
	return res, nil
}

// TenantDeleteWorkflow deletes a tenant: its users are cut off first
// (ACLs, SCRAM credentials, quotas: nothing can recreate a topic while the
// data goes), then its prefix's topics and groups are deleted, then what
// is left is counted again: anything left fails the deletion, loudly.
func TenantDeleteWorkflow(ctx workflow.Context, in TenantInput) (TenantResult, error) {
	r := startTenantRun(ctx, in, "deletion")
	res := TenantResult{Cluster: in.Spec.ID, Change: TenantChange{Tenant: in.Tenant.Name}}
	users := in.Tenant.UserNames()
	for _, u := range users {
		if err := r.removeUser(ctx, u, &res); err != nil {
			return res, fmt.Errorf("cluster %s tenant %s: %w", in.Spec.ID, in.Tenant.Name, err)
		}
	}
	r.step(ctx, "deleting the topics and groups of "+fleet.TenantPrefix(in.Tenant.Name))
	var d activities.TenantDataDeleted
	if err := workflow.ExecuteActivity(tenantContext(ctx, "delete topics and groups of "+fleet.TenantPrefix(in.Tenant.Name)), a.DeleteTenantData,
		activities.TenantDataInput{Spec: in.Spec, Tenant: in.Tenant.Name}).Get(ctx, &d); err != nil {
		return res, fmt.Errorf("cluster %s tenant %s: %w", in.Spec.ID, in.Tenant.Name, err)
	}
	res.Topics, res.Groups = d.Topics, d.Groups
	r.step(ctx, "verifying nothing of the tenant is left")
	f, err := r.footprint(ctx, users)
	if err != nil {
		return res, err
	}
	res.Footprint = f
	if !f.Empty() {
		return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("cluster %s tenant %s: deleted, yet still there: %s", in.Spec.ID, in.Tenant.Name, f),
			ErrTypeTenantLeftovers, nil)
	}
	res.Change.Deleted = true
	r.step(ctx, "deleted; nothing is left")
	return res, nil
}

// TenantRetireUserWorkflow removes a user a rotation left behind, once its
// grace ended (the entity asks for it).
func TenantRetireUserWorkflow(ctx workflow.Context, in TenantInput) (TenantResult, error) {
	r := startTenantRun(ctx, in, "retirement of "+in.User)
	res := TenantResult{Cluster: in.Spec.ID, Change: TenantChange{Tenant: in.Tenant.Name}}
	if in.User == "" {
		return res, temporal.NewNonRetryableApplicationError("a retirement needs the user to remove", ErrTypeBadRequest, nil)
	}
	if err := r.removeUser(ctx, in.User, &res); err != nil {
		return res, fmt.Errorf("cluster %s tenant %s: %w", in.Spec.ID, in.Tenant.Name, err)
	}
	res.Change.Removed = in.User
	r.step(ctx, "removed "+in.User)
	return res, nil
}
