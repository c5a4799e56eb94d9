package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/internal/fleet"
)

// Operation kinds are units: each kind's file (op_*.go) holds its
// workflow, its parameters, its admission (lane, validation, what it
// joins), what a human decision means for it and how its outcome reads,
// and registers it once in the kinds table below. The entity, the worker,
// the replay test, the CLI, chat, schedules and approvals learn the kinds
// from that table; an unknown kind is an error that starts nothing.

// Lane is where an admitted operation waits and runs.
type Lane int

const (
	// LaneMaintenance operations run one at a time, in order, and not
	// while a recovery is queued or running (rolls, upgrades, cleaner
	// restarts).
	LaneMaintenance Lane = iota
	// LaneUrgent operations run beside the maintenance one, at most one
	// per broker: they never take a broker down (a recovery starts a
	// broker that is down; an expansion grows a disk online), and a
	// recovery queued behind a roll that waits for the cluster to be
	// healthy would wait forever.
	LaneUrgent
)

func (l Lane) String() string {
	if l == LaneUrgent {
		return "urgent"
	}
	return "maintenance"
}

// Request asks a cluster's entity for an operation (UpdateRequest). Params
// are the kind's own (RestartParams, UpgradeParams, ...), as JSON.
type Request struct {
	Kind        string `json:"kind"`
	RequestedBy string `json:"requestedBy"`
	// ApprovedBy is the second person who approved a request made in chat.
	ApprovedBy string          `json:"approvedBy,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	Brokers    []int32         `json:"brokers,omitempty"`
	Params     json.RawMessage `json:"params,omitempty"`
}

// Report is what the entity keeps from an operation's end: how its outcome
// reads, and what it must remember from it.
type Report struct {
	Outcome string `json:"outcome,omitempty"`
	// Volume is an expansion's result (the volume's cool-down).
	Volume *VolumeExpansionResult `json:"volume,omitempty"`
	// Protocol is the protocol level an upgrade left the cluster at.
	Protocol *ProtocolLevel `json:"protocol,omitempty"`
	// Deleted: the cluster is gone (a deletion); its entity ends.
	Deleted bool `json:"deleted,omitempty"`
	// Tenant is what a tenant operation changed (tenant_state.go).
	Tenant *TenantChange `json:"tenant,omitempty"`
}

// Kind is one operation kind, as registered.
type Kind interface {
	// Name is the kind as Operation.Kind and the Operation search
	// attribute carry it, e.g. "rolling-restart".
	Name() string
	// Verb is how people ask for it (CLI, chat, actions), e.g. "restart";
	// "" when only kfleet itself asks for it (a recovery).
	Verb() string
	// ActionVerbs are the verbs of a kind asked for by several, one per
	// action (the admin lane's topic-create, topic-delete, ...; nil for
	// the others). kinds_verbs.go.
	ActionVerbs() []ActionVerb
	// VerbOf is the verb req asks for the kind with: Verb, or the verb of
	// the action its parameters name.
	VerbOf(req Request) (string, error)
	// Summary says what it does, for help texts.
	Summary() string
	Lane() Lane
	// Destructive kinds take brokers down or change hosts: asked from
	// chat, a second person approves them.
	Destructive() bool
	// Impact is what the kind does to the cluster as a migration to
	// KRaft cares: mid-migration the entity admits only what the phase
	// allows (fleet.AllowedInPhase).
	Impact() fleet.OpImpact
	// Schedulable kinds may be a cluster's maintenance window.
	Schedulable() bool
	// Decisions are what a human may answer when it waits for one (nil:
	// it never asks).
	Decisions() []string
	// DecisionWorkflows are the workflows of op that may be waiting for a
	// human: the decide update goes to the one that is.
	DecisionWorkflows(op Operation) []string
	// Describe is one line about op's parameters ("" when none).
	Describe(op Operation) string
	// Progress describes op's progress while it runs, a few lines; query
	// asks one of its workflows for its progress (nil: no answer).
	Progress(op Operation, query func(workflowID string) json.RawMessage) []string
	// Check refuses a request that is invalid on its face, whatever the
	// cluster's state (malformed parameters, a bad version): clients call
	// it before asking the entity, which checks it again with its state.
	Check(req Request) error
	// Admissible checks a request against a cluster's spec, as the entity
	// would with no operation queued: a schedule is refused at creation,
	// not every week.
	Admissible(spec fleet.ClusterSpec, req Request) error

	workflowSlug() string
	admit(a admission, req Request) (op Operation, joined bool, err error)
	run(ctx workflow.Context, spec fleet.ClusterSpec, op Operation, started func()) (Report, error)
	register(r Registrar)
}

// kinds is the table of every operation kind, in the order help lists them.
var kinds = []Kind{restartKind, upgradeKind, expansionKind, cleanerKind, recoveryKind, addBrokersKind, removeBrokerKind, rebalanceKind, deleteKind,
	tenantCreateKind, tenantRotateKind, tenantChangePlanKind, tenantDeleteKind, tenantRetireKind, topicAdminKind, replaceControllerKind, migrationPhaseKind}

// Kinds lists every operation kind.
func Kinds() []Kind { return slices.Clone(kinds) }

// KindNamed finds a kind by name.
func KindNamed(name string) (Kind, error) {
	for _, k := range kinds {
		if k.Name() == name {
			return k, nil
		}
	}
	return nil, fmt.Errorf("unknown operation kind %q (known: %s)", name, strings.Join(kindNames(), ", "))
}

// KindOfVerb finds the kind people ask for with verb (its Verb or one of
// its ActionVerbs).
func KindOfVerb(verb string) (Kind, error) {
	for _, k := range kinds {
		if k.Verb() != "" && k.Verb() == verb {
			return k, nil
		}
		if _, ok := actionVerbOf(k, verb); ok {
			return k, nil
		}
	}
	return nil, fmt.Errorf("unknown verb %q", verb)
}

// laneOf is the lane of a kind's operations; an unknown kind (a state
// written by a newer worker) waits in the maintenance lane, where it fails
// with a clear error when it starts.
func laneOf(name string) Lane {
	if k, err := KindNamed(name); err == nil {
		return k.Lane()
	}
	return LaneMaintenance
}

// kindSlug names a kind in its operations' workflow IDs.
func kindSlug(name string) string {
	if k, err := KindNamed(name); err == nil {
		return k.workflowSlug()
	}
	return name
}

func kindNames() []string {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.Name()
	}
	return names
}

// admission is what a kind decides a request on: the entity's spec and
// state, and the time (the workflow clock).
type admission struct {
	spec fleet.ClusterSpec
	st   *ClusterState
	now  time.Time
	// healthLoop is set when the entity runs a health loop (entities
	// recorded before it existed do not).
	healthLoop bool
}

// kind is the one implementation of Kind: P is the kind's parameters (as
// requested and as admitted), In and Res its workflow's input and result.
type kind[P, In, Res any] struct {
	name, slug, verb, summary string
	lane                      Lane
	// impact is what the kind does to the cluster as a ZooKeeper-to-KRaft
	// migration cares (fleet.AllowedInPhase): every kind declares it.
	impact                   fleet.OpImpact
	destructive, schedulable bool
	decisions                []string
	// actions are the kind's verbs when it has several (verb ""), and
	// actionOf the action of a request's parameters.
	actions  []ActionVerb
	actionOf func(p P) string
	// workflowName and workflow are the child the entity starts; others
	// are workflows that child starts itself (registered too).
	workflowName string
	workflow     func(workflow.Context, In) (Res, error)
	others       []any
	// refuse says why a request from outside can never be admitted ("":
	// it can be), e.g. a recovery, which only the broker watch starts.
	refuse string
	// validate checks a request on its face (Check); check with the
	// cluster's state, filling in the parameters' defaults.
	validate func(req Request, p P) error
	check    func(a admission, req Request, p *P) error
	// joins finds the queued or running operation a request joins; the
	// default is one of the same kind on the same brokers or all.
	// joins may complete p once nothing is joined.
	joins func(a admission, req Request, p *P) (Operation, bool, error)
	// input is the child's input; title its static summary's head.
	input func(spec fleet.ClusterSpec, op Operation, p P) In
	title func(spec fleet.ClusterSpec, op Operation, p P) string
	// report reads the child's result (and error) for the entity.
	report func(res Res, err error) Report
	// legacy is the parameters of an operation recorded before
	// operations carried Params (its fields of the old union).
	legacy   func(op Operation) P
	describe func(p P) string
	deciders func(op Operation) []string
	progress func(op Operation, query func(string) json.RawMessage) []string
}

func (k *kind[P, In, Res]) Name() string           { return k.name }
func (k *kind[P, In, Res]) Verb() string           { return k.verb }
func (k *kind[P, In, Res]) Summary() string        { return k.summary }
func (k *kind[P, In, Res]) Lane() Lane             { return k.lane }
func (k *kind[P, In, Res]) Destructive() bool      { return k.destructive }
func (k *kind[P, In, Res]) Impact() fleet.OpImpact { return k.impact }
func (k *kind[P, In, Res]) Schedulable() bool      { return k.schedulable }
func (k *kind[P, In, Res]) Decisions() []string    { return slices.Clone(k.decisions) }
func (k *kind[P, In, Res]) workflowSlug() string   { return k.slug }

func (k *kind[P, In, Res]) DecisionWorkflows(op Operation) []string {
	if k.deciders == nil {
		return nil
	}
	return k.deciders(op)
}

func (k *kind[P, In, Res]) Describe(op Operation) string {
	if k.describe == nil {
		return ""
	}
	p, err := k.params(op)
	if err != nil {
		return err.Error()
	}
	return k.describe(p)
}

// params decodes op's parameters.
func (k *kind[P, In, Res]) params(op Operation) (P, error) { return paramsOf(op, k.legacy) }

// paramsOf decodes op's parameters, from its legacy fields when it was
// recorded before operations carried Params.
func paramsOf[P any](op Operation, legacy func(Operation) P) (P, error) {
	var p P
	if len(op.Params) == 0 {
		if legacy != nil {
			return legacy(op), nil
		}
		return p, nil
	}
	//workflowcheck:ignore JSON of kfleet's own types is deterministic (no maps iterated, no clock)
	if err := json.Unmarshal(op.Params, &p); err != nil {
		return p, fmt.Errorf("%s %s: parameters: %w", op.Kind, op.ID, err)
	}
	return p, nil
}

func (k *kind[P, In, Res]) Progress(op Operation, query func(string) json.RawMessage) []string {
	if k.progress == nil {
		return nil
	}
	return k.progress(op, query)
}

func (k *kind[P, In, Res]) Admissible(spec fleet.ClusterSpec, req Request) error {
	_, _, err := k.admit(admission{spec: spec, st: &ClusterState{}, healthLoop: true}, req)
	return err
}

func (k *kind[P, In, Res]) Check(req Request) error {
	_, err := k.checked(req)
	return err
}

// checked decodes and checks a request on its face.
func (k *kind[P, In, Res]) checked(req Request) (P, error) {
	var p P
	if k.refuse != "" {
		return p, errors.New(k.refuse)
	}
	if req.Kind != k.name {
		return p, fmt.Errorf("a request of kind %q is not a %s", req.Kind, k.name)
	}
	if req.RequestedBy == "" {
		return p, fmt.Errorf("requestedBy is required: say who asks for the %s", k.name)
	}
	for _, b := range req.Brokers {
		if b < 0 {
			return p, fmt.Errorf("broker %d: broker ids are not negative", b)
		}
	}
	if len(req.Params) > 0 {
		//workflowcheck:ignore JSON of kfleet's own types is deterministic (no maps iterated, no clock)
		dec := json.NewDecoder(strings.NewReader(string(req.Params)))
		dec.DisallowUnknownFields()
		//workflowcheck:ignore JSON of kfleet's own types is deterministic (no maps iterated, no clock)
		if err := dec.Decode(&p); err != nil {
			return p, fmt.Errorf("%s parameters %s: %w", k.name, req.Params, err)
		}
	}
	if k.validate != nil {
		return p, k.validate(req, p)
	}
	return p, nil
}

func (k *kind[P, In, Res]) admit(a admission, req Request) (Operation, bool, error) {
	p, err := k.checked(req)
	if err != nil {
		return Operation{}, false, err
	}
	for _, b := range req.Brokers {
		if _, ok := a.spec.Broker(b); !ok {
			return Operation{}, false, fmt.Errorf("broker %d is not in cluster %s (brokers %v)", b, a.spec.ID, a.spec.BrokerIDs())
		}
	}
	// Mid-migration the phase decides what may run (OPERATIONS.md
	// "KRaft"): no metadata.version change, no membership change, rolls
	// with the phase's config. Specs without a migration are unaffected.
	if a.spec.Mode() == fleet.ModeMigrating {
		if ok, why := fleet.AllowedInPhase(k.impact, a.spec.KRaft.Phase); !ok {
			return Operation{}, false, fmt.Errorf("cluster %s: %s: %s", a.spec.ID, k.name, why)
		}
	}
	if k.check != nil {
		if err := k.check(a, req, &p); err != nil {
			return Operation{}, false, err
		}
	}
	joins := k.joins
	if joins == nil {
		joins = func(a admission, req Request, _ *P) (Operation, bool, error) {
			op, ok := a.st.covering(k.name, req.Brokers)
			return op, ok, nil
		}
	}
	if op, ok, err := joins(a, req, &p); err != nil || ok {
		return op, ok, err
	}
	//workflowcheck:ignore JSON of kfleet's own types is deterministic (no maps iterated, no clock)
	raw, err := json.Marshal(p)
	if err != nil {
		return Operation{}, false, err
	}
	return Operation{Kind: k.name, RequestedBy: req.RequestedBy, ApprovedBy: req.ApprovedBy, Reason: req.Reason,
		Brokers: req.Brokers, Params: raw}, false, nil
}

// run starts op's workflow as a child of the entity and waits for it;
// started is called once the child started (or could not).
func (k *kind[P, In, Res]) run(ctx workflow.Context, spec fleet.ClusterSpec, op Operation, started func()) (Report, error) {
	p, err := k.params(op)
	if err != nil {
		started()
		return Report{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadRequest, err)
	}
	attrs := []temporal.SearchAttributeUpdate{AttrClusterID.ValueSet(spec.ID), AttrOperation.ValueSet(op.Kind)}
	if len(op.Brokers) == 1 {
		attrs = append(attrs, AttrBrokerID.ValueSet(int64(op.Brokers[0])))
	}
	why := "requested by " + op.RequestedBy
	if op.ApprovedBy != "" {
		why += ", approved by " + op.ApprovedBy
	}
	if op.Reason != "" {
		why += ": " + op.Reason
	}
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            op.WorkflowID,
		StaticSummary:         k.title(spec, op, p) + ", " + why,
		TypedSearchAttributes: temporal.NewSearchAttributes(attrs...),
		// The entity continues as new while operations run, and a
		// terminated entity must not leave one half-done: a child
		// finishes on its own and reports its end (reportEnd).
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
	})
	f := workflow.ExecuteChildWorkflow(cctx, k.workflowName, k.input(spec, op, p))
	startErr := f.GetChildWorkflowExecution().Get(ctx, nil)
	started()
	if startErr != nil {
		return Report{}, startErr
	}
	var res Res
	err = f.Get(ctx, &res)
	return k.report(res, err), err
}

// register registers the kind's workflows: its own under its name,
// wrapped so that it reports its end to its entity, and the others.
func (k *kind[P, In, Res]) register(r Registrar) {
	// The wrapper registers under the workflow's own name: children
	// started before (and recorded histories) name it so.
	if name := functionName(k.workflow); name != k.workflowName {
		panic(fmt.Sprintf("kind %s: workflowName %q is not its workflow's name %q", k.name, k.workflowName, name))
	}
	r.RegisterWorkflowWithOptions(func(ctx workflow.Context, in In) (Res, error) {
		res, err := k.workflow(ctx, in)
		reportEnd(ctx, k.report(res, err), err)
		return res, err
	}, workflow.RegisterOptions{Name: k.workflowName})
	for _, w := range k.others {
		r.RegisterWorkflow(w)
	}
}

// Registrar is what registers workflows: a worker, a replayer, a test
// environment.
type Registrar interface {
	RegisterWorkflow(w any)
	RegisterWorkflowWithOptions(w any, options workflow.RegisterOptions)
}

// Register registers every kfleet workflow on r: the entity, every
// operation kind's, and the operator actions'.
func Register(r Registrar) {
	r.RegisterWorkflow(ClusterWorkflow)
	registered := map[string]bool{}
	for _, k := range kinds {
		k.register(onceRegistrar{r, registered})
	}
	r.RegisterWorkflow(ApprovalWorkflow)
	r.RegisterWorkflow(ScheduledActionWorkflow)
	r.RegisterWorkflow(FleetSweepWorkflow)
	r.RegisterWorkflow(MigrationWorkflow)
	// Creating a cluster is no operation of its entity, which does not
	// exist yet: the provisioning registers it at its end.
	r.RegisterWorkflow(ProvisionClusterWorkflow)
}

// onceRegistrar registers a workflow several kinds start (a roll) once:
// the first registration, under its own name, wins.
type onceRegistrar struct {
	r    Registrar
	seen map[string]bool
}

func (o onceRegistrar) RegisterWorkflow(w any) {
	name := functionName(w)
	if o.seen[name] {
		return
	}
	o.seen[name] = true
	o.r.RegisterWorkflow(w)
}

func (o onceRegistrar) RegisterWorkflowWithOptions(w any, opts workflow.RegisterOptions) {
	if o.seen[opts.Name] {
		return
	}
	o.seen[opts.Name] = true
	o.r.RegisterWorkflowWithOptions(w, opts)
}

// ErrTypeBadRequest is the error type of an operation whose recorded
// parameters cannot be read: retrying cannot help.
const ErrTypeBadRequest = "BadOperationRequest"

// OperationEnd is what an operation's workflow tells its entity when it
// ends (SignalOperationEnded): the entity may have continued as new since
// it started it, and then has no future to wait on.
type OperationEnd struct {
	WorkflowID string `json:"workflowId"`
	Report     Report `json:"report"`
	Error      string `json:"error,omitempty"`
}

// reportEnd signals the entity that started this workflow how it ended.
// Only a workflow the entity started reports (a roll an upgrade runs does
// not). Versioned: histories recorded before it replay without the signal.
func reportEnd(ctx workflow.Context, rep Report, err error) {
	info := workflow.GetInfo(ctx)
	parent := info.ParentWorkflowExecution
	if parent == nil || !IsClusterWorkflowID(parent.ID) {
		return
	}
	if workflow.GetVersion(ctx, "report-end", workflow.DefaultVersion, 1) < 1 {
		return
	}
	end := OperationEnd{WorkflowID: info.WorkflowExecution.ID, Report: rep}
	if err != nil {
		end.Error = activityMessage(err)
	}
	// Awaited: the entity learns the end before the workflow closes.
	if serr := signalEntity(ctx, parent.ID, SignalOperationEnded, end); serr != nil {
		workflow.GetLogger(ctx).Warn("could not tell the cluster entity the operation ended", "Entity", parent.ID, "Error", serr)
	}
}

// functionName is the name Temporal registers a workflow function under.
func functionName(fn any) string {
	name := runtime.FuncForPC(reflect.ValueOf(fn).Pointer()).Name()
	return name[strings.LastIndex(name, ".")+1:]
}

// mustJSON encodes parameters of kfleet's own types, which always encode.
func mustJSON(v any) json.RawMessage {
	//workflowcheck:ignore JSON of kfleet's own types is deterministic (no maps iterated, no clock)
	raw, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	return raw
}
