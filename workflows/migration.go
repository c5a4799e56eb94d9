package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// A ZooKeeper cluster's migration to KRaft as one durable operation
// (issue #15, OPERATIONS.md "KRaft"): preflight, then phases 1-4, each
// started by a human's approval, with weeks between them if need be. The
// migration holds no lane while it waits: each phase (or rollback) is an
// operation of the cluster's entity (OpMigrationPhase), queued behind
// whatever the entity runs, and the entity knows the phase the cluster is
// in and admits only what fits it. A worker crash anywhere resumes where
// the migration was; a phase asked again after a crash joins the one
// running, and the entity refuses one already done, so none runs twice.

// Names clients use with a migration.
const (
	// UpdateMigrationDecide approves the next phase, rolls back, or
	// abandons the migration (MigrationDecision).
	UpdateMigrationDecide = "migration-decide"
	QueryMigration        = "migration"
)

// MigrationWorkflowID is the cluster's migration: one at a time.
func MigrationWorkflowID(cluster string) string { return "migration/" + cluster }

// MigrationInput starts a cluster's migration.
type MigrationInput struct {
	Cluster     string `json:"cluster"`
	RequestedBy string `json:"requestedBy"`
	// Controllers, MetadataVersion and WaitTimeout go to its phases
	// (MigrationParams; defaults there).
	Controllers     int           `json:"controllers,omitempty"`
	MetadataVersion string        `json:"metadataVersion,omitempty"`
	WaitTimeout     time.Duration `json:"waitTimeout,omitempty"`
	// PollInterval paces the wait for each phase's operation (default
	// 5 s).
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

// Migration decisions.
const (
	MigrationApprove  = "approve"
	MigrationRollback = "rollback"
	MigrationAbandon  = "abandon"
)

// MigrationDecision is a human's answer to a waiting migration.
type MigrationDecision struct {
	By     string `json:"by"`
	Action string `json:"action"`
	// Phase is the phase an approval starts: it must be the one waiting,
	// so a stale "yes" never starts the phase after it.
	Phase  fleet.MigrationPhase `json:"phase,omitempty"`
	Reason string               `json:"reason,omitempty"`
}

// Migration statuses.
const (
	MigrationPreflightStatus = "preflight"
	MigrationRefused         = "refused"
	MigrationAwaiting        = "awaiting-approval"
	MigrationRunning         = "running"
	MigrationFailed          = "failed"
	MigrationFinalized       = "finalized"
	MigrationRolledBack      = "rolled-back"
	MigrationAbandoned       = "abandoned"
)

// MigrationState is what the migration query and its result say.
type MigrationState struct {
	Cluster     string               `json:"cluster"`
	RequestedBy string               `json:"requestedBy"`
	Status      string               `json:"status"`
	Stage       fleet.MigrationStage `json:"stage"`
	// Next is the phase awaiting approval; Rollback what rolling back the
	// cluster's phase would do.
	Next     fleet.MigrationPhase `json:"next,omitempty"`
	Rollback string               `json:"rollback,omitempty"`
	Blockers []fleet.Blocker      `json:"blockers,omitempty"`
	Steps    []MigrationStep      `json:"steps,omitempty"`
	Error    string               `json:"error,omitempty"`
	Since    time.Time            `json:"since"`
}

// MigrationStep is one phase or rollback the migration ran.
type MigrationStep struct {
	Params      MigrationParams `json:"params"`
	ApprovedBy  string          `json:"approvedBy"`
	OperationID string          `json:"operationId,omitempty"`
	Started     time.Time       `json:"started"`
	Ended       time.Time       `json:"ended,omitzero"`
	Status      string          `json:"status"`
	Outcome     string          `json:"outcome,omitempty"`
	Error       string          `json:"error,omitempty"`
}

// MigrationWorkflow is a cluster's migration to KRaft.
func MigrationWorkflow(ctx workflow.Context, in MigrationInput) (MigrationState, error) {
	mg := &migration{in: in, st: MigrationState{Cluster: in.Cluster, RequestedBy: in.RequestedBy, Status: MigrationPreflightStatus, Since: workflow.Now(ctx)}}
	if in.PollInterval <= 0 {
		mg.in.PollInterval = 5 * time.Second
	}
	if err := workflow.SetQueryHandler(ctx, QueryMigration, func() (MigrationState, error) { return mg.st, nil }); err != nil {
		return mg.st, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateMigrationDecide,
		func(ctx workflow.Context, d MigrationDecision) (MigrationState, error) {
			mg.decision = &d
			// Answer once the decision is taken up, not when its step
			// ends: a phase may roll for hours.
			if err := workflow.Await(ctx, func() bool { return mg.decision == nil }); err != nil {
				return mg.st, err
			}
			return mg.st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, d MigrationDecision) error { return mg.validate(d) }},
	); err != nil {
		return mg.st, err
	}
	if err := mg.sync(ctx); err != nil {
		return mg.st, err
	}
	switch {
	case mg.st.Stage.Mode == fleet.ModeKRaft || mg.st.Stage.Mode == fleet.ModeZooKeeper && len(mg.st.Blockers) > 0:
		mg.set(ctx, MigrationRefused)
		return mg.st, nil
	}
	for {
		mg.set(ctx, MigrationAwaiting)
		mg.page(ctx, "Migration of "+in.Cluster+" to KRaft awaits a decision", mg.awaiting())
		if err := workflow.Await(ctx, func() bool { return mg.decision != nil }); err != nil {
			return mg.st, err
		}
		d := *mg.decision
		mg.decision = nil // taken up: the update answers with the step started
		var err error
		switch d.Action {
		case MigrationAbandon:
			mg.st.Error = fmt.Sprintf("abandoned by %s at %s%s", d.By, mg.st.Stage, because(d.Reason))
			mg.set(ctx, MigrationAbandoned)
		case MigrationApprove:
			err = mg.run(ctx, d, MigrationParams{Phase: mg.st.Next})
		case MigrationRollback:
			err = mg.run(ctx, d, MigrationParams{Phase: max(mg.st.Stage.Phase, fleet.PhaseControllers), Rollback: true})
		}
		if err != nil {
			return mg.st, err
		}
		switch mg.st.Status {
		case MigrationFinalized, MigrationRolledBack, MigrationAbandoned:
			mg.page(ctx, fmt.Sprintf("Migration of %s to KRaft %s", in.Cluster, mg.st.Status), mg.st.Error)
			// Let the decide update answer before the run closes.
			_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
			return mg.st, nil
		}
	}
}

type migration struct {
	in       MigrationInput
	st       MigrationState
	decision *MigrationDecision
}

// validate refuses a decision that does not fit where the migration is,
// before it is recorded.
func (mg *migration) validate(d MigrationDecision) error {
	switch {
	case d.By == "":
		return errors.New("by is required: say who decides")
	case mg.decision != nil || mg.st.Status != MigrationAwaiting:
		return fmt.Errorf("the migration of %s is %s: it takes no decision now", mg.in.Cluster, mg.st.Status)
	}
	switch d.Action {
	case MigrationApprove:
		if d.By == mg.in.RequestedBy {
			return fmt.Errorf("%s asked for this migration: a second, different person approves its phases", d.By)
		}
		if d.Phase != mg.st.Next {
			return fmt.Errorf("phase %s is not the one awaiting approval: phase %s is", d.Phase, mg.st.Next)
		}
	case MigrationRollback:
		if mg.st.Stage.Mode != fleet.ModeMigrating && !mg.failedPhaseOne() {
			return fmt.Errorf("cluster %s is %s: there is nothing to roll back", mg.in.Cluster, mg.st.Stage)
		}
		if !mg.st.Stage.Phase.CanRollBack() {
			return fmt.Errorf("cluster %s: phase %s cannot be rolled back", mg.in.Cluster, mg.st.Stage.Phase)
		}
	case MigrationAbandon:
	default:
		return fmt.Errorf("action %q: want %s, %s or %s", d.Action, MigrationApprove, MigrationRollback, MigrationAbandon)
	}
	return nil
}

// failedPhaseOne: a phase 1 failed before the entity knew of its
// controllers; its rollback terminates what it launched.
func (mg *migration) failedPhaseOne() bool {
	n := len(mg.st.Steps)
	return n > 0 && mg.st.Steps[n-1].Params.Phase == fleet.PhaseControllers && mg.st.Steps[n-1].Status != StatusSucceeded
}

func (mg *migration) actx(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput}},
	})
}

// sync reads where the cluster is (and, before phase 1, its preflight).
func (mg *migration) sync(ctx workflow.Context) error {
	var pre activities.MigrationPreflight
	if err := workflow.ExecuteActivity(mg.actx(ctx), a.CheckMigrationPreflight, mg.in.Cluster).Get(ctx, &pre); err != nil {
		return err
	}
	mg.st.Stage, mg.st.Blockers = pre.Stage, pre.Blockers
	mg.st.Next = mg.st.Stage.Phase + 1
	if mg.st.Stage.Mode == fleet.ModeZooKeeper {
		mg.st.Next = fleet.PhaseControllers
	}
	mg.st.Rollback = ""
	if mg.st.Stage.Mode == fleet.ModeMigrating {
		mg.st.Rollback = mg.st.Stage.Phase.Rollback()
	}
	return nil
}

// run submits one step to the entity, waits for its end and reads where
// the cluster is after it.
func (mg *migration) run(ctx workflow.Context, d MigrationDecision, p MigrationParams) error {
	p.Controllers, p.MetadataVersion, p.WaitTimeout = mg.in.Controllers, mg.in.MetadataVersion, mg.in.WaitTimeout
	step := MigrationStep{Params: p, ApprovedBy: d.By, Started: workflow.Now(ctx), Status: StatusRunning}
	mg.st.Steps = append(mg.st.Steps, step)
	cur := &mg.st.Steps[len(mg.st.Steps)-1]
	mg.st.Error = ""
	mg.set(ctx, MigrationRunning)
	//workflowcheck:ignore JSON of kfleet's own types is deterministic
	params, _ := json.Marshal(p)
	act := activities.Action{Verb: migrationPhaseKind.verb, Cluster: mg.in.Cluster, Params: params,
		RequestedBy: mg.in.RequestedBy, ApprovedBy: d.By, Reason: d.Reason}
	var sub activities.Submitted
	err := workflow.ExecuteActivity(submitContext(ctx), a.SubmitAction, act).Get(ctx, &sub)
	var end activities.OperationState
	if err == nil {
		cur.OperationID = sub.OperationID
		wctx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 30 * 24 * time.Hour,
			// It heartbeats at every poll: a wait whose worker died is
			// taken up again within ten polls.
			HeartbeatTimeout: max(10*mg.in.PollInterval, 10*time.Second),
			RetryPolicy:      &temporal.RetryPolicy{NonRetryableErrorTypes: []string{activities.ErrTypeBadInput}},
		})
		err = workflow.ExecuteActivity(wctx, a.WaitOperationEnded,
			activities.WaitOperationInput{Cluster: mg.in.Cluster, OperationID: sub.OperationID, PollInterval: mg.in.PollInterval}).Get(ctx, &end)
	}
	cur.Ended = workflow.Now(ctx)
	switch {
	case err != nil:
		cur.Status, cur.Error = StatusFailed, activityMessage(err)
	default:
		cur.Status, cur.Outcome, cur.Error = end.Status, end.Outcome, end.Error
	}
	if err := mg.sync(ctx); err != nil {
		return err
	}
	switch {
	case cur.Status != StatusSucceeded:
		mg.st.Error = fmt.Sprintf("%s %s: %s", p, cur.Status, cur.Error)
		mg.set(ctx, MigrationFailed)
		mg.page(ctx, fmt.Sprintf("Migration of %s to KRaft: %s %s", mg.in.Cluster, p, cur.Status), cur.Error)
	case p.Rollback:
		mg.set(ctx, MigrationRolledBack)
	case mg.st.Stage.Mode == fleet.ModeKRaft:
		mg.set(ctx, MigrationFinalized)
	}
	return nil
}

// set records the status (a failed step's error stays in st.Error while
// the migration awaits the next decision).
func (mg *migration) set(ctx workflow.Context, status string) {
	mg.st.Status = status
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("Migration of **%s** to KRaft: **%s** at %s%s", mg.in.Cluster, status, mg.st.Stage, suffix(mg.st.Error)))
}

func (mg *migration) awaiting() string {
	s := fmt.Sprintf("The cluster is %s. Next: phase %s (approve with `starter migrate approve --cluster %s --phase %d`).",
		mg.st.Stage, mg.st.Next, mg.in.Cluster, int(mg.st.Next))
	if mg.st.Rollback != "" {
		s += " Rollback: " + mg.st.Rollback + "."
	}
	if mg.st.Error != "" {
		s += " Last step: " + mg.st.Error
	}
	return s
}

func (mg *migration) page(ctx workflow.Context, title, text string) {
	notifyHumans(ctx, activities.Notification{Cluster: mg.in.Cluster, Severity: "info", Title: title, Text: text,
		Operation: workflow.GetInfo(ctx).WorkflowExecution.ID})
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}
