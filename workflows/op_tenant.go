package workflows

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"time"

	"github.com/kfleet/kfleet/internal/fleet"
)

// Tenant lifecycle kinds (OPERATIONS.md "Tenants"): create, rotate
// credentials, change plan, delete, and the retirement of a rotated-out
// user after its grace, which only the entity asks for. Their workflows
// are in tenant.go; what the entity keeps of tenants in tenant_state.go.
// All run in the maintenance lane: one admin change at a time per cluster,
// never during a roll.
const (
	OpTenantCreate     = "tenant-create"
	OpTenantRotate     = "tenant-rotate"
	OpTenantChangePlan = "tenant-change-plan"
	OpTenantDelete     = "tenant-delete"
	OpTenantRetire     = "tenant-retire-user"
)

// Rotation grace: the old credential keeps working this long after the
// new one is handed out, so clients can move over.
const (
	DefaultRotationGrace = 24 * time.Hour
	MinRotationGrace     = time.Second
	MaxRotationGrace     = 30 * 24 * time.Hour
)

// TenantCreateParams ask for a tenant on plan Plan. Limits are the plan's,
// resolved from the catalog by the client (entity.Request): operations
// carry their limits, and workflow code reads no catalog. Name is a name
// asked for; "" generates one (admission fills it in).
type TenantCreateParams struct {
	Plan   string            `json:"plan"`
	Limits *fleet.TenantPlan `json:"limits,omitempty"`
	Name   string            `json:"name,omitempty"`
}

// TenantRotateParams ask for a new credential of a tenant; the old one
// goes after Grace (a duration like 24h; "" is DefaultRotationGrace).
// Current is the tenant as admitted (admission fills it in).
type TenantRotateParams struct {
	Tenant  string       `json:"tenant"`
	Grace   string       `json:"grace,omitempty"`
	Current *TenantState `json:"current,omitempty"`
}

// TenantChangePlanParams move a tenant to plan Plan (Limits as for a
// creation).
type TenantChangePlanParams struct {
	Tenant  string            `json:"tenant"`
	Plan    string            `json:"plan"`
	Limits  *fleet.TenantPlan `json:"limits,omitempty"`
	Current *TenantState      `json:"current,omitempty"`
}

// TenantDeleteParams delete a tenant.
type TenantDeleteParams struct {
	Tenant  string       `json:"tenant"`
	Current *TenantState `json:"current,omitempty"`
}

// TenantRetireParams remove a rotated-out user.
type TenantRetireParams struct {
	Tenant string `json:"tenant"`
	User   string `json:"user"`
}

func (p TenantRotateParams) grace() time.Duration {
	if p.Grace == "" {
		return DefaultRotationGrace
	}
	d, _ := time.ParseDuration(p.Grace) // validated
	return d
}

func validateGrace(s string) error {
	if s == "" {
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < MinRotationGrace || d > MaxRotationGrace {
		return fmt.Errorf("grace %q: want a duration from %s to %s, like 24h", s, MinRotationGrace, MaxRotationGrace)
	}
	return nil
}

func validateLimits(plan string, limits *fleet.TenantPlan) error {
	switch {
	case plan == "":
		return errors.New("plan is required (e.g. basic-0)")
	case limits == nil:
		return fmt.Errorf("plan %s: its limits are missing: ask through kfleet's client (the CLI, chat), which reads the plan catalog", plan)
	case limits.Name != plan:
		return fmt.Errorf("plan %s: the limits given are plan %s's", plan, limits.Name)
	}
	return limits.Validate()
}

func noBrokers(req Request) error {
	if len(req.Brokers) > 0 {
		return fmt.Errorf("a tenant operation concerns the whole cluster, not broker(s) %v", req.Brokers)
	}
	return nil
}

// tenantRef is the tenant in any tenant kind's parameters.
type tenantRef struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
}

// tenantOf is the tenant an operation of a tenant kind concerns.
func tenantOf(op Operation) string {
	p, err := paramsOf[tenantRef](op, nil)
	if err != nil {
		return ""
	}
	if p.Tenant != "" {
		return p.Tenant
	}
	return p.Name
}

// knownTenant finds the tenant a request names, and refuses it while
// another kind of operation of that tenant is queued or running (each
// operation is admitted against the state it will run on).
func knownTenant(a admission, name, kind string) (*TenantState, error) {
	if err := fleet.ValidateTenantName(name); err != nil {
		return nil, err
	}
	t := a.st.tenant(name)
	if t == nil {
		names := make([]string, len(a.st.Tenants))
		for i, t := range a.st.Tenants {
			names[i] = t.Name
		}
		return nil, fmt.Errorf("cluster %s has no tenant %s (tenants: %s)", a.spec.ID, name, orNone(names))
	}
	for _, op := range a.st.pendingTenantOps() {
		if op.Kind != kind && tenantOf(op) == name {
			return nil, fmt.Errorf("tenant %s on cluster %s has %s %s %s: ask again once it ended", name, a.spec.ID, op.Kind, op.ID, op.Status)
		}
	}
	c := *t
	c.Users = slices.Clone(t.Users)
	return &c, nil
}

func orNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// joinsTenant joins a queued or running operation of the same kind on the
// same tenant.
func joinsTenant(kind string) func(a admission, _ Request, tenant string) (Operation, bool) {
	return func(a admission, _ Request, tenant string) (Operation, bool) {
		for _, op := range a.st.pendingTenantOps() {
			if op.Kind == kind && tenantOf(op) == tenant {
				return op, true
			}
		}
		return Operation{}, false
	}
}

// nameTaken says why a new tenant may not be called name: a tenant or a
// user of that name exists on the cluster, or a creation of it is queued.
func nameTaken(a admission, name string) error {
	for _, t := range a.st.Tenants {
		if t.Name == name || slices.Contains(t.UserNames(), name) {
			return fmt.Errorf("cluster %s already has a tenant or user %s (prefix %s)", a.spec.ID, name, fleet.TenantPrefix(name))
		}
	}
	for _, op := range a.st.pendingTenantOps() {
		if op.Kind == OpTenantCreate && tenantOf(op) == name {
			return fmt.Errorf("tenant %s is being created on cluster %s (%s)", name, a.spec.ID, op.ID)
		}
	}
	return nil
}

// generatedName is a tenant name no tenant of the cluster has, derived
// from the admission's clock and the entity's counter: deterministic in
// workflow code, different for each request.
func generatedName(a admission, req Request) string {
	h := fnv.New64a()
	h.Write([]byte(a.spec.ID + "\x00" + req.RequestedBy))
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(a.now.UnixNano()))
	binary.BigEndian.PutUint64(b[8:], uint64(a.st.Seq))
	h.Write(b[:])
	seed := h.Sum64()
	for i := uint64(0); ; i++ {
		if name := fleet.TenantName(seed + i*7919); nameTaken(a, name) == nil {
			return name
		}
	}
}

func tenantInput(spec fleet.ClusterSpec, op Operation, t TenantState) TenantInput {
	return TenantInput{Spec: spec, OperationID: op.ID, RequestedBy: op.RequestedBy, Tenant: t}
}

// tenantReport reads a tenant workflow's result: the change, even of a
// failed operation that changed something, and the outcome.
func tenantReport(outcome func(TenantResult) string) func(TenantResult, error) Report {
	return func(r TenantResult, err error) Report {
		rep := Report{}
		if r.Change.Tenant != "" {
			c := r.Change
			rep.Tenant = &c
		}
		if err == nil {
			rep.Outcome = outcome(r)
		}
		return rep
	}
}

// fetchHint says where a handed-out password waits: a command, never the
// password.
func fetchHint(r TenantResult) string {
	if r.Handout == nil {
		return ""
	}
	return fmt.Sprintf("; its password waits in the secret source under %s, shown once: bin/starter tenant credentials --cluster %s --tenant %s --user %s",
		r.Handout.Handout, r.Cluster, r.Change.Tenant, r.Handout.User)
}

var tenantCreateKind = &kind[TenantCreateParams, TenantInput, TenantResult]{
	name:         OpTenantCreate,
	slug:         "tenant-create",
	verb:         "tenant-create",
	summary:      "create a tenant on a plan: a generated name, its prefix, a SCRAM-SHA-512 user, ACLs PREFIXED on its prefix only and the plan's quotas; its password is handed out once through the secret source",
	lane:         LaneMaintenance,
	impact:       fleet.ImpactAdmin,
	workflowName: "TenantCreateWorkflow",
	workflow:     TenantCreateWorkflow,
	validate: func(req Request, p TenantCreateParams) error {
		if err := noBrokers(req); err != nil {
			return err
		}
		if p.Name != "" {
			if err := fleet.ValidateTenantName(p.Name); err != nil {
				return err
			}
		}
		return validateLimits(p.Plan, p.Limits)
	},
	check: func(a admission, req Request, p *TenantCreateParams) error {
		if p.Name != "" {
			if err := nameTaken(a, p.Name); err != nil {
				return err
			}
		} else {
			p.Name = generatedName(a, req)
		}
		return TenantRoom(ClusterStatus{Spec: a.spec, ClusterState: *a.st}).Fits(*p.Limits)
	},
	// Every creation is a tenant of its own.
	joins: func(admission, Request, *TenantCreateParams) (Operation, bool, error) { return Operation{}, false, nil },
	input: func(spec fleet.ClusterSpec, op Operation, p TenantCreateParams) TenantInput {
		return tenantInput(spec, op, TenantState{Name: p.Name, Plan: *p.Limits, CreatedBy: op.RequestedBy})
	},
	title: func(spec fleet.ClusterSpec, _ Operation, p TenantCreateParams) string {
		return fmt.Sprintf("Creation of tenant **%s** (plan %s) on **%s**", p.Name, p.Plan, spec.ID)
	},
	report: tenantReport(func(r TenantResult) string {
		return fmt.Sprintf("tenant %s created: prefix %s, user %s, %d ACL(s) on its prefix, quotas of its plan%s",
			r.Change.Tenant, fleet.TenantPrefix(r.Change.Tenant), r.Handout.User, r.ACLs, fetchHint(r))
	}),
	describe: func(p TenantCreateParams) string { return strings.TrimSpace(p.Name + " on plan " + p.Plan) },
}

var tenantRotateKind = &kind[TenantRotateParams, TenantInput, TenantResult]{
	name:         OpTenantRotate,
	slug:         "tenant-rotate",
	verb:         "tenant-rotate",
	summary:      "rotate a tenant's credential: a new SCRAM user with the same ACLs and quotas, its password handed out once; the old user is removed after a grace (default 24h)",
	lane:         LaneMaintenance,
	impact:       fleet.ImpactAdmin,
	workflowName: "TenantRotateWorkflow",
	workflow:     TenantRotateWorkflow,
	validate: func(req Request, p TenantRotateParams) error {
		if err := noBrokers(req); err != nil {
			return err
		}
		if err := fleet.ValidateTenantName(p.Tenant); err != nil {
			return err
		}
		return validateGrace(p.Grace)
	},
	check: func(a admission, _ Request, p *TenantRotateParams) (err error) {
		p.Current, err = knownTenant(a, p.Tenant, OpTenantRotate)
		return err
	},
	joins: func(a admission, req Request, p *TenantRotateParams) (Operation, bool, error) {
		op, ok := joinsTenant(OpTenantRotate)(a, req, p.Tenant)
		return op, ok, nil
	},
	input: func(spec fleet.ClusterSpec, op Operation, p TenantRotateParams) TenantInput {
		in := tenantInput(spec, op, *p.Current)
		in.Grace = p.grace()
		return in
	},
	title: func(spec fleet.ClusterSpec, _ Operation, p TenantRotateParams) string {
		return fmt.Sprintf("Credential rotation of tenant **%s** on **%s**", p.Tenant, spec.ID)
	},
	report: tenantReport(func(r TenantResult) string {
		return fmt.Sprintf("tenant %s rotated: new user %s with the same ACLs (%d) and quotas; %s removed at %s%s", r.Change.Tenant, r.Handout.User,
			r.ACLs, strings.Join(r.Change.Retire, ", "), r.Change.RetireAt.Format(time.RFC3339), fetchHint(r))
	}),
	describe: func(p TenantRotateParams) string { return fmt.Sprintf("tenant %s, grace %s", p.Tenant, p.grace()) },
}

var tenantChangePlanKind = &kind[TenantChangePlanParams, TenantInput, TenantResult]{
	name:         OpTenantChangePlan,
	slug:         "tenant-change-plan",
	verb:         "tenant-change-plan",
	summary:      "move a tenant to another plan: its users' quotas and its limits; refused if its prefix is over the new plan's partitions or retention bounds, or the cluster has no room",
	lane:         LaneMaintenance,
	impact:       fleet.ImpactAdmin,
	workflowName: "TenantChangePlanWorkflow",
	workflow:     TenantChangePlanWorkflow,
	validate: func(req Request, p TenantChangePlanParams) error {
		if err := noBrokers(req); err != nil {
			return err
		}
		if err := fleet.ValidateTenantName(p.Tenant); err != nil {
			return err
		}
		return validateLimits(p.Plan, p.Limits)
	},
	check: func(a admission, _ Request, p *TenantChangePlanParams) (err error) {
		if p.Current, err = knownTenant(a, p.Tenant, OpTenantChangePlan); err != nil {
			return err
		}
		if p.Current.Plan.Name == p.Plan {
			return fmt.Errorf("tenant %s on cluster %s is on plan %s already", p.Tenant, a.spec.ID, p.Plan)
		}
		return TenantRoom(ClusterStatus{Spec: a.spec, ClusterState: *a.st}).FitsInstead(*p.Limits, &p.Current.Plan)
	},
	joins: func(a admission, req Request, p *TenantChangePlanParams) (Operation, bool, error) {
		op, ok := joinsTenant(OpTenantChangePlan)(a, req, p.Tenant)
		return op, ok, nil
	},
	input: func(spec fleet.ClusterSpec, op Operation, p TenantChangePlanParams) TenantInput {
		in := tenantInput(spec, op, *p.Current)
		in.Plan = p.Limits
		return in
	},
	title: func(spec fleet.ClusterSpec, _ Operation, p TenantChangePlanParams) string {
		return fmt.Sprintf("Plan change of tenant **%s** to %s on **%s**", p.Tenant, p.Plan, spec.ID)
	},
	report: tenantReport(func(r TenantResult) string {
		return fmt.Sprintf("tenant %s moved to plan %s: quotas of %d user(s) set; its prefix holds %d partition(s)",
			r.Change.Tenant, r.Change.Plan.Name, r.Users, r.Footprint.Partitions)
	}),
	describe: func(p TenantChangePlanParams) string { return fmt.Sprintf("tenant %s to plan %s", p.Tenant, p.Plan) },
}

var tenantDeleteKind = &kind[TenantDeleteParams, TenantInput, TenantResult]{
	name:         OpTenantDelete,
	slug:         "tenant-delete",
	verb:         "tenant-delete",
	summary:      "delete a tenant: its users cut off (ACLs, SCRAM credentials, quotas), its prefix's topics and groups deleted, then verified gone",
	lane:         LaneMaintenance,
	impact:       fleet.ImpactAdmin,
	destructive:  true,
	workflowName: "TenantDeleteWorkflow",
	workflow:     TenantDeleteWorkflow,
	validate: func(req Request, p TenantDeleteParams) error {
		if err := noBrokers(req); err != nil {
			return err
		}
		return fleet.ValidateTenantName(p.Tenant)
	},
	check: func(a admission, _ Request, p *TenantDeleteParams) (err error) {
		p.Current, err = knownTenant(a, p.Tenant, OpTenantDelete)
		return err
	},
	joins: func(a admission, req Request, p *TenantDeleteParams) (Operation, bool, error) {
		op, ok := joinsTenant(OpTenantDelete)(a, req, p.Tenant)
		return op, ok, nil
	},
	input: func(spec fleet.ClusterSpec, op Operation, p TenantDeleteParams) TenantInput {
		return tenantInput(spec, op, *p.Current)
	},
	title: func(spec fleet.ClusterSpec, _ Operation, p TenantDeleteParams) string {
		return fmt.Sprintf("Deletion of tenant **%s** on **%s**", p.Tenant, spec.ID)
	},
	report: tenantReport(func(r TenantResult) string {
		return fmt.Sprintf("tenant %s deleted: %d user(s), %d ACL(s), %d topic(s), %d group(s) removed; verified: nothing of %s is left",
			r.Change.Tenant, r.Users, r.ACLs, r.Topics, r.Groups, fleet.TenantPrefix(r.Change.Tenant))
	}),
	describe: func(p TenantDeleteParams) string { return "tenant " + p.Tenant },
}

var tenantRetireKind = &kind[TenantRetireParams, TenantInput, TenantResult]{
	name:         OpTenantRetire,
	slug:         "tenant-retire",
	summary:      "remove a tenant's rotated-out user once its grace ended (kfleet asks for it itself)",
	lane:         LaneMaintenance,
	impact:       fleet.ImpactAdmin,
	workflowName: "TenantRetireUserWorkflow",
	workflow:     TenantRetireUserWorkflow,
	refuse:       "kfleet removes a rotated-out user by itself once its rotation's grace ended: ask for a rotation (tenant-rotate) instead",
	input: func(spec fleet.ClusterSpec, op Operation, p TenantRetireParams) TenantInput {
		in := tenantInput(spec, op, TenantState{Name: p.Tenant})
		in.User = p.User
		return in
	},
	title: func(spec fleet.ClusterSpec, _ Operation, p TenantRetireParams) string {
		return fmt.Sprintf("Removal of tenant **%s**'s rotated-out user %s on **%s**", p.Tenant, p.User, spec.ID)
	},
	report: tenantReport(func(r TenantResult) string {
		return fmt.Sprintf("tenant %s's rotated-out user %s removed (%d ACL(s))", r.Change.Tenant, r.Change.Removed, r.ACLs)
	}),
	describe: func(p TenantRetireParams) string { return fmt.Sprintf("tenant %s, user %s", p.Tenant, p.User) },
}
