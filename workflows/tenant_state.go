package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/internal/fleet"
)

// What a cluster's entity keeps of its tenants (ClusterState.Tenants):
// name, plan, users and when they came; small, whatever the cluster holds.
// Tenant operations report a TenantChange at their end, which the entity
// applies; it also retires the users a rotation left behind once their
// grace is over (tenantRetirements).

// TenantState is one tenant as its cluster's entity knows it.
type TenantState struct {
	Name      string            `json:"name"`
	Plan      fleet.TenantPlan  `json:"plan"`
	Users     []TenantUserState `json:"users"`
	Rotations int               `json:"rotations,omitempty"`
	Created   time.Time         `json:"created"`
	CreatedBy string            `json:"createdBy,omitempty"`
}

// TenantUserState is one of a tenant's SCRAM users.
type TenantUserState struct {
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	// RetireAt is when a rotated-out user is removed (its grace's end);
	// Retiring is the operation that removes it, once queued.
	RetireAt time.Time `json:"retireAt,omitzero"`
	Retiring string    `json:"retiring,omitempty"`
}

// UserNames are the tenant's users' names.
func (t TenantState) UserNames() []string {
	names := make([]string, len(t.Users))
	for i, u := range t.Users {
		names[i] = u.Name
	}
	return names
}

// CurrentUser is the newest user: the one a rotation handed out last.
func (t TenantState) CurrentUser() string {
	if len(t.Users) == 0 {
		return ""
	}
	return t.Users[len(t.Users)-1].Name
}

// TenantChange is what a tenant operation changed, for its entity to apply
// (Report.Tenant).
type TenantChange struct {
	Tenant string `json:"tenant"`
	// Created is a new tenant.
	Created *TenantState `json:"created,omitempty"`
	// Plan is a plan change's new plan.
	Plan *fleet.TenantPlan `json:"plan,omitempty"`
	// Added is a rotation's new user; Retire are the users it rotated
	// out, removed at RetireAt.
	Added    *TenantUserState `json:"added,omitempty"`
	Retire   []string         `json:"retire,omitempty"`
	RetireAt time.Time        `json:"retireAt,omitzero"`
	// Removed is a user removed after its grace.
	Removed string `json:"removed,omitempty"`
	// Deleted: the tenant is gone.
	Deleted bool `json:"deleted,omitempty"`
}

// tenant finds a tenant by name.
func (st *ClusterState) tenant(name string) *TenantState {
	i := slices.IndexFunc(st.Tenants, func(t TenantState) bool { return t.Name == name })
	if i < 0 {
		return nil
	}
	return &st.Tenants[i]
}

// applyTenant applies a tenant operation's change.
func (st *ClusterState) applyTenant(c *TenantChange) {
	if c == nil {
		return
	}
	if c.Created != nil && st.tenant(c.Tenant) == nil {
		st.Tenants = append(st.Tenants, *c.Created)
		return
	}
	if c.Deleted {
		st.Tenants = slices.DeleteFunc(st.Tenants, func(t TenantState) bool { return t.Name == c.Tenant })
		return
	}
	t := st.tenant(c.Tenant)
	if t == nil {
		return // deleted meanwhile (a retirement after a deletion)
	}
	if c.Plan != nil {
		t.Plan = *c.Plan
	}
	for i := range t.Users {
		u := &t.Users[i]
		if slices.Contains(c.Retire, u.Name) && (u.RetireAt.IsZero() || c.RetireAt.Before(u.RetireAt)) {
			u.RetireAt = c.RetireAt
		}
	}
	if c.Added != nil && !slices.ContainsFunc(t.Users, func(u TenantUserState) bool { return u.Name == c.Added.Name }) {
		t.Users = append(t.Users, *c.Added)
		t.Rotations++
	}
	if c.Removed != "" {
		t.Users = slices.DeleteFunc(t.Users, func(u TenantUserState) bool { return u.Name == c.Removed })
	}
}

// tenantEnded applies a tenant operation's end: its change, and a failed
// retirement is tried again an hour later rather than never.
func (st *ClusterState) tenantEnded(op Operation, rep Report, err error, now time.Time) {
	st.applyTenant(rep.Tenant)
	if op.Kind != OpTenantRetire || err == nil {
		return
	}
	for i := range st.Tenants {
		for j := range st.Tenants[i].Users {
			if u := &st.Tenants[i].Users[j]; u.Retiring == op.ID {
				u.Retiring, u.RetireAt = "", now.Add(time.Hour)
			}
		}
	}
}

// nextRetirement is the earliest end of a grace whose retirement is not
// queued yet (zero: none).
func (st ClusterState) nextRetirement() time.Time {
	var next time.Time
	for _, t := range st.Tenants {
		for _, u := range t.Users {
			if !u.RetireAt.IsZero() && u.Retiring == "" && (next.IsZero() || u.RetireAt.Before(next)) {
				next = u.RetireAt
			}
		}
	}
	return next
}

// tenantRetirements queues the removal of each rotated-out user once its
// grace is over: a durable timer until the next one, woken early when a
// rotation adds an earlier one. An entity without tenants records nothing
// here, so histories recorded before tenants replay unchanged.
func (e *entity) tenantRetirements(ctx workflow.Context) {
	st := &e.st
	for !e.stopped {
		now := workflow.Now(ctx)
		for i := range st.Tenants {
			t := &st.Tenants[i]
			for j := range t.Users {
				u := &t.Users[j]
				if u.RetireAt.IsZero() || u.Retiring != "" || u.RetireAt.After(now) {
					continue
				}
				op := Operation{Kind: OpTenantRetire, RequestedBy: "kfleet-tenant-rotation",
					Reason: fmt.Sprintf("tenant %s's user %s was rotated out; its grace ended at %s", t.Name, u.Name, u.RetireAt.Format(time.RFC3339)),
					Params: mustJSON(TenantRetireParams{Tenant: t.Name, User: u.Name})}
				u.Retiring = e.enqueue(ctx, op).ID
			}
		}
		next := st.nextRetirement()
		changed := func() bool { return e.stopped || !st.nextRetirement().Equal(next) }
		var err error
		if next.IsZero() {
			err = workflow.Await(ctx, changed)
		} else if d := next.Sub(workflow.Now(ctx)); d > 0 {
			_, err = workflow.AwaitWithTimeout(ctx, d, changed)
		}
		if err != nil {
			return
		}
	}
}

// TenantRoom is what placement knows of the cluster from its entity's
// status: its brokers, their disks (the last health report) and its
// tenants' plans, with those of tenants being created.
func TenantRoom(s ClusterStatus) fleet.ClusterRoom {
	r := fleet.ClusterRoom{Cluster: s.Spec.ID, Brokers: len(s.Spec.Brokers)}
	if h := s.Health; h != nil {
		for _, b := range h.Brokers {
			if _, ok := s.Spec.Broker(b.Broker); ok {
				r.DiskBytes += b.Last.Disk.SizeBytes
			}
		}
	}
	for _, t := range s.Tenants {
		r.Tenants = append(r.Tenants, t.Plan)
	}
	for _, op := range s.pendingTenantOps() {
		if p, err := paramsOf[TenantCreateParams](op, nil); err == nil && op.Kind == OpTenantCreate && p.Limits != nil {
			r.Tenants = append(r.Tenants, *p.Limits)
		}
	}
	return r
}

// pendingTenantOps are the tenant operations queued or running.
func (st ClusterState) pendingTenantOps() []Operation {
	var ops []Operation
	if st.Running != nil && isTenantKind(st.Running.Kind) {
		ops = append(ops, *st.Running)
	}
	for _, op := range st.Queue {
		if isTenantKind(op.Kind) {
			ops = append(ops, op)
		}
	}
	return ops
}

func isTenantKind(kind string) bool { return strings.HasPrefix(kind, "tenant-") }

// tenantDetails is the tenants' part of the entity's current details.
func (st ClusterState) tenantDetails() string {
	if len(st.Tenants) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString(fmt.Sprintf("\n\n**Tenants** (%d):", len(st.Tenants)))
	for _, t := range st.Tenants {
		b.WriteString(fmt.Sprintf("\n- `%s` on %s, user %s", t.Name, t.Plan.Name, t.CurrentUser()))
		for _, u := range t.Users {
			if !u.RetireAt.IsZero() {
				b.WriteString(fmt.Sprintf("; %s retires at %s", u.Name, u.RetireAt.Format(time.RFC3339)))
			}
		}
	}
	return b.String()
}
