// Package schedules keeps kfleet's maintenance windows and the fleet
// sweep as Temporal Schedules, with their cron and interval grammar.
package schedules

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	// Time zones are checked where the request is made (the CLI), which
	// may have no zoneinfo installed; the server loads its own.
	_ "time/tzdata"

	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// Maintenance windows and the fleet sweep are Temporal Schedules, not cron
// in the worker: the server keeps the calendar, so a window survives any
// worker restart, shows in the UI with its next runs, and can be paused,
// triggered or deleted without a deploy.
//
// IDs (workflows/ids.go): a cluster's window is schedule/<cluster>/<verb>;
// it starts cluster/<cluster>/scheduled/<verb>-<time> (the server appends
// the scheduled time), a ScheduledActionWorkflow that only submits the
// action to the cluster's entity. The fleet sweep is schedule/fleet-sweep
// and starts fleet/sweep-<time>.
const (
	// DefaultSweepEvery is how often the fleet sweep runs by default:
	// each entity already ticks its own health every minute; the sweep is
	// the fleet-wide, auditable pass that proves every cluster was looked
	// at, so hourly is plenty.
	DefaultSweepEvery = time.Hour
	// ScheduleCatchupWindow is how late a missed run may still start
	// (Temporal's default is one year). A restart window exists so that
	// brokers restart when the tenants expect it — typically a quiet
	// night; after a Temporal outage a missed window must be skipped, not
	// fired hours late into peak traffic. Ten minutes covers a server or
	// worker restart, nothing more.
	ScheduleCatchupWindow = 10 * time.Minute
	// minScheduleEvery refuses intervals that make no sense for
	// maintenance (and would flood the entity's queue).
	minScheduleEvery = time.Minute
)

// schedulableVerbs are what a cluster's window may do: the operation
// kinds registered as schedulable (a roll, a cleaner check), which go
// through the entity's queue like any request. Upgrades and expansions
// need a person (a version, a reason), not a calendar.
func schedulableVerbs() []string {
	var verbs []string
	for _, k := range workflows.Kinds() {
		if k.Schedulable() {
			verbs = append(verbs, k.Verb())
		}
	}
	return verbs
}

// ErrBadSchedule is returned for a schedule request that is invalid on its
// face (no spec, a malformed cron expression, an interval too short): no
// schedule was created or changed.
var ErrBadSchedule = errors.New("invalid schedule")

// ErrUnknownSchedule is returned for a schedule ID that does not exist.
var ErrUnknownSchedule = errors.New("unknown schedule")

// ScheduleRequest creates (or updates) a cluster's maintenance window or
// the fleet sweep.
type ScheduleRequest struct {
	// Sweep asks for the fleet-wide sweep (Cluster and Action stay empty).
	Sweep bool `json:"sweep,omitempty"`
	// Cluster and Action (activities.VerbRestart or VerbCleanerCheck)
	// name a cluster's window.
	Cluster string `json:"cluster,omitempty"`
	Action  string `json:"action,omitempty"`
	// Params are the action's operation parameters, e.g. {"maxBatch":3}
	// for a restart in batches.
	Params json.RawMessage `json:"params,omitempty"`
	// Cron is a 5-field cron expression (minute hour day-of-month month
	// day-of-week, e.g. "0 3 * * SUN") or @hourly/@daily/@weekly/
	// @monthly/@yearly; Every an interval, with Offset into it (Every 24h,
	// Offset 3h: daily at 03:00 in UTC). Exactly one, except for the sweep,
	// which defaults to Every DefaultSweepEvery.
	Cron   string        `json:"cron,omitempty"`
	Every  time.Duration `json:"every,omitempty"`
	Offset time.Duration `json:"offset,omitempty"`
	// TimeZone is the IANA zone cron expressions are read in (default
	// UTC).
	TimeZone string `json:"timeZone,omitempty"`
	// CreatedBy is recorded in the schedule's note.
	CreatedBy string `json:"createdBy"`
}

// ID is the schedule the request creates or updates.
func (r ScheduleRequest) ID() string {
	if r.Sweep {
		return workflows.FleetSweepScheduleID
	}
	return workflows.ClusterScheduleID(r.Cluster, r.Action)
}

// withDefaults fills in the sweep's interval and the time zone.
func (r ScheduleRequest) withDefaults() ScheduleRequest {
	if r.Sweep && r.Cron == "" && r.Every == 0 {
		r.Every = DefaultSweepEvery
	}
	if r.TimeZone == "" {
		r.TimeZone = "UTC"
	}
	return r
}

// Validate refuses a request no schedule should be made of, before
// Temporal is asked.
func (r ScheduleRequest) Validate() error {
	r = r.withDefaults()
	var errs []error
	if r.CreatedBy == "" {
		errs = append(errs, errors.New("createdBy is required: say who creates the schedule"))
	}
	if r.Sweep {
		if r.Cluster != "" || r.Action != "" || len(r.Params) != 0 {
			errs = append(errs, errors.New("the fleet sweep runs on every cluster: it takes no cluster, action or parameters"))
		}
	} else {
		if verbs := schedulableVerbs(); !slices.Contains(verbs, r.Action) {
			errs = append(errs, fmt.Errorf("action %q: want one of %s", r.Action, strings.Join(verbs, ", ")))
		} else if err := entity.CheckAction(r.action()); err != nil {
			// The action's own checks: the cluster id's form, its
			// parameters (a negative batch, a batch of a cleaner check).
			errs = append(errs, err)
		}
	}
	switch {
	case r.Cron != "" && r.Every != 0:
		errs = append(errs, errors.New("give either a cron expression or an interval, not both"))
	case r.Cron != "":
		if err := validateCron(r.Cron); err != nil {
			errs = append(errs, err)
		}
		if r.Offset != 0 {
			errs = append(errs, errors.New("an offset goes with an interval, not a cron expression"))
		}
	case r.Every < minScheduleEvery:
		if r.Every == 0 {
			errs = append(errs, errors.New(`a cron expression (e.g. "0 3 * * SUN") or an interval (e.g. 24h) is required`))
		} else {
			errs = append(errs, fmt.Errorf("interval %s: want at least %s", r.Every, minScheduleEvery))
		}
	case r.Offset < 0 || r.Offset >= r.Every:
		errs = append(errs, fmt.Errorf("offset %s: want 0 up to the interval (%s)", r.Offset, r.Every))
	}
	if _, err := time.LoadLocation(r.TimeZone); err != nil {
		errs = append(errs, fmt.Errorf("time zone %q: %w", r.TimeZone, err))
	} else if r.Cron == "" && r.TimeZone != "UTC" {
		// Intervals count from the Unix epoch whatever the zone: a zone
		// there would read as a promise the schedule does not keep.
		errs = append(errs, fmt.Errorf("time zone %s: a time zone goes with a cron expression; an interval counts from the Unix epoch (UTC)", r.TimeZone))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%s: %w: %w", r.ID(), ErrBadSchedule, err)
	}
	return nil
}

// action is what a cluster's window submits to the entity. RequestedBy
// is the schedule's ID, so the entity's history and the hosts' audit say
// which window restarted a broker.
func (r ScheduleRequest) action() activities.Action {
	return activities.Action{Verb: r.Action, Cluster: r.Cluster, Params: r.Params, RequestedBy: r.ID()}
}

// options are the schedule's Temporal options.
func (r ScheduleRequest) options() client.ScheduleOptions {
	spec := client.ScheduleSpec{TimeZoneName: r.TimeZone}
	if r.Cron != "" {
		spec.CronExpressions = []string{r.Cron}
	} else {
		spec.Intervals = []client.ScheduleIntervalSpec{{Every: r.Every, Offset: r.Offset}}
	}
	action := &client.ScheduleWorkflowAction{TaskQueue: workflows.QueueFromEnv()}
	if r.Sweep {
		action.ID = workflows.FleetSweepWorkflowIDPrefix
		action.Workflow = workflows.FleetSweepWorkflow
		action.Args = []any{workflows.FleetSweepInput{RequestedBy: workflows.FleetSweepScheduleID}}
		action.StaticSummary = "Fleet sweep: a health check of every cluster (disk, cleaner, heap, ZooKeeper)"
		action.TypedSearchAttributes = temporal.NewSearchAttributes(workflows.AttrOperation.ValueSet(workflows.OpFleetSweep))
	} else {
		action.ID = workflows.ScheduledWorkflowID(r.Cluster, r.Action)
		action.Workflow = workflows.ScheduledActionWorkflow
		action.Args = []any{r.action()}
		action.StaticSummary = fmt.Sprintf("Scheduled **%s** of %s (%s)", r.Action, r.Cluster, r.ID())
		action.TypedSearchAttributes = temporal.NewSearchAttributes(
			workflows.AttrClusterID.ValueSet(r.Cluster),
			workflows.AttrOperation.ValueSet(workflows.ScheduledOperation(r.Action)),
		)
	}
	return client.ScheduleOptions{
		ID:     r.ID(),
		Spec:   spec,
		Action: action,
		// A window's run only submits to the entity, which joins a roll
		// already queued or running; a run still going when the next one
		// is due means something is stuck, and two would not help.
		Overlap:       enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		CatchupWindow: ScheduleCatchupWindow,
		Note:          "created by " + r.CreatedBy,
	}
}

// CreateSchedule creates the schedule req describes, or updates it when it
// exists (so running it twice, as every `make run` does for the sweep, is
// safe). An update keeps the schedule's paused state: someone paused it on
// purpose. A cluster's window is refused for a cluster kfleet does not
// know (fleet.ErrUnknownCluster) — it would fail silently at every run —
// and for an action the cluster's entity would refuse (a batch larger than
// the cluster). It returns the schedule as Temporal
// now holds it, and whether it was created (false: updated).
func CreateSchedule(ctx context.Context, c client.Client, req ScheduleRequest) (Schedule, bool, error) {
	req = req.withDefaults()
	if err := req.Validate(); err != nil {
		return Schedule{}, false, err
	}
	if !req.Sweep {
		st, err := entity.ClusterStatus(ctx, c, req.Cluster)
		if err != nil {
			return Schedule{}, false, err
		}
		opReq, _, err := entity.ActionRequest(req.action())
		if err == nil {
			k, _ := workflows.KindNamed(opReq.Kind)
			err = k.Admissible(st.Spec, opReq)
		}
		if err != nil {
			return Schedule{}, false, fmt.Errorf("%s: %w: %w", req.ID(), ErrBadSchedule, err)
		}
	}
	opts := req.options()
	sc := c.ScheduleClient()
	created := true
	h, err := sc.Create(ctx, opts)
	if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		created = false
		h = sc.GetHandle(ctx, opts.ID)
		err = h.Update(ctx, client.ScheduleUpdateOptions{DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			state := in.Description.Schedule.State
			if state == nil {
				state = &client.ScheduleState{}
			}
			if !state.Paused {
				state.Note = "updated by " + req.CreatedBy
			}
			return &client.ScheduleUpdate{Schedule: &client.Schedule{
				Action: opts.Action,
				Spec:   &opts.Spec,
				Policy: &client.SchedulePolicies{Overlap: opts.Overlap, CatchupWindow: opts.CatchupWindow},
				State:  state,
			}}, nil
		}})
	}
	if err != nil {
		return Schedule{}, false, scheduleError(opts.ID, "create", err)
	}
	s, err := describeSchedule(ctx, c, h)
	return s, created, err
}

// Schedule is one of kfleet's schedules as Temporal holds it.
type Schedule struct {
	ID string `json:"id"`
	// Cluster is the window's cluster; "" for the fleet sweep.
	Cluster string `json:"cluster,omitempty"`
	// Action is the verb a window submits (restart, cleaner-check), or
	// fleet-sweep.
	Action string          `json:"action"`
	Params json.RawMessage `json:"params,omitempty"`
	// Spec says when it runs, e.g. "cron 0 3 * * SUN" or "every 1h0m0s".
	Spec          string        `json:"spec"`
	TimeZone      string        `json:"timeZone,omitempty"`
	Overlap       string        `json:"overlap"`
	CatchupWindow time.Duration `json:"catchupWindow"`
	Paused        bool          `json:"paused"`
	Note          string        `json:"note,omitempty"`
	// NextRuns are the next few times it fires (none while paused).
	NextRuns []time.Time `json:"nextRuns,omitempty"`
	// Runs counts the actions taken (triggers included); SkippedOverlap
	// those skipped because the previous run still ran, MissedCatchup those
	// missed by more than the catch-up window.
	Runs           int `json:"runs"`
	SkippedOverlap int `json:"skippedOverlap,omitempty"`
	MissedCatchup  int `json:"missedCatchup,omitempty"`
	// LastRun is the most recent run, with its result once it ended.
	LastRun   *ScheduledRun `json:"lastRun,omitempty"`
	CreatedAt time.Time     `json:"createdAt"`
}

// ScheduledRun is one workflow a schedule started.
type ScheduledRun struct {
	WorkflowID  string    `json:"workflowId"`
	RunID       string    `json:"runId"`
	ScheduledAt time.Time `json:"scheduledAt"`
	StartedAt   time.Time `json:"startedAt"`
	// Status is Temporal's, in lower case (running, completed, failed,
	// timed_out, ...).
	Status string `json:"status"`
	// Result is what the run did: the entity's answer to a window, the
	// sweep's summary, or the failure.
	Result string `json:"result,omitempty"`
}

// ListSchedules lists kfleet's schedules (IDs under schedule/), sorted by
// ID, each described in full. Listing goes through Temporal's visibility,
// so a schedule created a moment ago may not be listed yet.
func ListSchedules(ctx context.Context, c client.Client) ([]Schedule, error) {
	sc := c.ScheduleClient()
	it, err := sc.List(ctx, client.ScheduleListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	var ids []string
	for it.HasNext() {
		e, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("list schedules: %w", err)
		}
		if strings.HasPrefix(e.ID, workflows.SchedulePrefix) {
			ids = append(ids, e.ID)
		}
	}
	slices.Sort(ids)
	out := make([]Schedule, 0, len(ids))
	for _, id := range ids {
		s, err := describeSchedule(ctx, c, sc.GetHandle(ctx, id))
		if errors.Is(err, ErrUnknownSchedule) {
			continue // deleted since it was listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// DescribeSchedule describes one of kfleet's schedules. id may leave out
// the schedule/ prefix (local-a/restart, fleet-sweep).
func DescribeSchedule(ctx context.Context, c client.Client, id string) (Schedule, error) {
	return describeSchedule(ctx, c, c.ScheduleClient().GetHandle(ctx, ScheduleID(id)))
}

// PauseSchedule stops a schedule from firing until UnpauseSchedule; note
// (who and why) is shown in its listing. A run already started goes on.
func PauseSchedule(ctx context.Context, c client.Client, id, note string) error {
	id = ScheduleID(id)
	if note == "" {
		note = "paused"
	}
	if err := c.ScheduleClient().GetHandle(ctx, id).Pause(ctx, client.SchedulePauseOptions{Note: note}); err != nil {
		return scheduleError(id, "pause", err)
	}
	return nil
}

// UnpauseSchedule lets a paused schedule fire again from its next time;
// the runs it missed while paused are not caught up.
func UnpauseSchedule(ctx context.Context, c client.Client, id, note string) error {
	id = ScheduleID(id)
	if note == "" {
		note = "unpaused"
	}
	if err := c.ScheduleClient().GetHandle(ctx, id).Unpause(ctx, client.ScheduleUnpauseOptions{Note: note}); err != nil {
		return scheduleError(id, "unpause", err)
	}
	return nil
}

// DeleteSchedule deletes a schedule. The workflows it started, and the
// operations they asked for, are not touched: cancel those through the
// cluster's entity.
func DeleteSchedule(ctx context.Context, c client.Client, id string) error {
	id = ScheduleID(id)
	if err := c.ScheduleClient().GetHandle(ctx, id).Delete(ctx); err != nil {
		return scheduleError(id, "delete", err)
	}
	return nil
}

// ErrSkippedOverlap is returned by TriggerSchedule when the schedule's
// previous run still runs: the overlap policy skipped the trigger.
var ErrSkippedOverlap = errors.New("skipped: the previous run is still running")

// TriggerSchedule runs a schedule's action now (even while paused), under
// its overlap policy, and returns the run it started once the schedule
// reports it.
func TriggerSchedule(ctx context.Context, c client.Client, id string) (ScheduledRun, error) {
	id = ScheduleID(id)
	h := c.ScheduleClient().GetHandle(ctx, id)
	before, err := h.Describe(ctx)
	if err != nil {
		return ScheduledRun{}, scheduleError(id, "trigger", err)
	}
	if err := h.Trigger(ctx, client.ScheduleTriggerOptions{}); err != nil {
		return ScheduledRun{}, scheduleError(id, "trigger", err)
	}
	// The scheduler takes the trigger asynchronously: wait until it
	// counts it, as a new action or as one skipped for overlap.
	for {
		select {
		case <-ctx.Done():
			return ScheduledRun{}, fmt.Errorf("schedule %s: trigger sent, but no run was reported: %w", id, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
		d, err := h.Describe(ctx)
		if err != nil {
			return ScheduledRun{}, scheduleError(id, "trigger", err)
		}
		switch {
		case d.Info.NumActions > before.Info.NumActions && len(d.Info.RecentActions) > 0:
			return lastRun(ctx, c, d.Info.RecentActions), nil
		case d.Info.NumActionsSkippedOverlap > before.Info.NumActionsSkippedOverlap:
			return ScheduledRun{}, fmt.Errorf("schedule %s: %w: %w", id, fleet.ErrRefused, ErrSkippedOverlap)
		}
	}
}

// ScheduleID completes a short schedule ID (local-a/restart, fleet-sweep)
// with the schedule/ prefix.
func ScheduleID(id string) string {
	if strings.HasPrefix(id, workflows.SchedulePrefix) {
		return id
	}
	return workflows.SchedulePrefix + id
}

func describeSchedule(ctx context.Context, c client.Client, h client.ScheduleHandle) (Schedule, error) {
	d, err := h.Describe(ctx)
	if err != nil {
		return Schedule{}, scheduleError(h.GetID(), "describe", err)
	}
	s := Schedule{
		ID:             h.GetID(),
		NextRuns:       d.Info.NextActionTimes,
		Runs:           d.Info.NumActions,
		SkippedOverlap: d.Info.NumActionsSkippedOverlap,
		MissedCatchup:  d.Info.NumActionsMissedCatchupWindow,
		CreatedAt:      d.Info.CreatedAt,
	}
	if len(s.NextRuns) > 3 {
		s.NextRuns = s.NextRuns[:3]
	}
	if sp := d.Schedule.Spec; sp != nil {
		s.Spec, s.TimeZone = describeSpec(*sp), sp.TimeZoneName
	}
	if p := d.Schedule.Policy; p != nil {
		s.Overlap = strings.ToLower(strings.TrimPrefix(p.Overlap.String(), "SCHEDULE_OVERLAP_POLICY_"))
		s.CatchupWindow = p.CatchupWindow
	}
	if st := d.Schedule.State; st != nil {
		s.Paused, s.Note = st.Paused, st.Note
	}
	if a, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction); ok {
		s.Action = fmt.Sprint(a.Workflow)
		if s.Action == fleetSweepWorkflowType {
			s.Action = workflows.OpFleetSweep
		} else if act, ok := decodeAction(a); ok {
			s.Action, s.Cluster, s.Params = act.Verb, act.Cluster, act.Params
		}
	}
	if len(d.Info.RecentActions) > 0 {
		r := lastRun(ctx, c, d.Info.RecentActions)
		s.LastRun = &r
	}
	return s, nil
}

// fleetSweepWorkflowType is the sweep's workflow type name (the
// function's name, as the worker registers it).
const fleetSweepWorkflowType = "FleetSweepWorkflow"

// decodeAction reads the activities.Action a window's workflow is started
// with (Describe returns arguments as payloads).
func decodeAction(a *client.ScheduleWorkflowAction) (activities.Action, bool) {
	var act activities.Action
	if len(a.Args) != 1 {
		return act, false
	}
	p, ok := a.Args[0].(*commonpb.Payload)
	if !ok {
		return act, false
	}
	return act, converter.GetDefaultDataConverter().FromPayload(p, &act) == nil
}

// lastRun describes the newest of a schedule's recent actions: its
// workflow's status and, once it ended, what it did.
func lastRun(ctx context.Context, c client.Client, recent []client.ScheduleActionResult) ScheduledRun {
	a := recent[len(recent)-1]
	r := ScheduledRun{ScheduledAt: a.ScheduleTime, StartedAt: a.ActualTime}
	if a.StartWorkflowResult == nil {
		return r
	}
	r.WorkflowID, r.RunID = a.StartWorkflowResult.WorkflowID, a.StartWorkflowResult.FirstExecutionRunID
	d, err := c.DescribeWorkflowExecution(ctx, r.WorkflowID, r.RunID)
	if err != nil {
		r.Status = "unknown"
		r.Result = err.Error()
		return r
	}
	info := d.GetWorkflowExecutionInfo()
	status := info.GetStatus()
	r.Status = strings.ToLower(strings.TrimPrefix(status.String(), "WORKFLOW_EXECUTION_STATUS_"))
	if status == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
		return r
	}
	run := c.GetWorkflow(ctx, r.WorkflowID, r.RunID)
	switch info.GetType().GetName() {
	case fleetSweepWorkflowType:
		var res workflows.FleetSweepResult
		if err := run.Get(ctx, &res); err != nil {
			r.Result = failureMessage(err)
			return r
		}
		r.Result = summarizeSweep(res)
	default:
		var sub activities.Submitted
		if err := run.Get(ctx, &sub); err != nil {
			r.Result = failureMessage(err)
			return r
		}
		r.Result = sub.Text
	}
	return r
}

// failureMessage is what a failed run says, without the wrapping of the
// workflow and activity errors around it (an entity's refusal reads as
// itself).
func failureMessage(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	return err.Error()
}

func summarizeSweep(res workflows.FleetSweepResult) string {
	var failed []string
	for _, c := range res.Clusters {
		if c.Error != "" {
			failed = append(failed, c.Cluster)
		}
	}
	s := fmt.Sprintf("%d clusters checked", len(res.Clusters))
	if len(res.Clusters) == 1 {
		s = "1 cluster checked"
	}
	if len(failed) > 0 {
		s += "; failed: " + strings.Join(failed, ", ")
	}
	return s
}

// scheduleError maps Temporal's answers to kfleet's errors: a schedule
// that does not exist, a spec the server refuses.
func scheduleError(id, what string, err error) error {
	var nf *serviceerror.NotFound
	var inv *serviceerror.InvalidArgument
	switch {
	case errors.As(err, &nf):
		return fmt.Errorf("schedule %s: %w (see `starter schedule list`)", id, ErrUnknownSchedule)
	case errors.As(err, &inv):
		return fmt.Errorf("schedule %s: %s: %w: %s", id, what, ErrBadSchedule, inv.Message)
	}
	return fmt.Errorf("schedule %s: %s: %w", id, what, err)
}
