package workflows

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// OpMigrationPhase is one step of a ZooKeeper cluster's migration to KRaft
// (KIP-866): a phase forward, or the rollback of the phase the cluster is
// in. The migration (MigrationWorkflow, one per cluster) asks for each
// after a human approved it; the entity runs it in the maintenance lane,
// so no roll or upgrade runs beside it.
const OpMigrationPhase = "kraft-migration"

// MigrationParams are a migration step's parameters.
type MigrationParams struct {
	Phase    fleet.MigrationPhase `json:"phase"`
	Rollback bool                 `json:"rollback,omitempty"`
	// Controllers is how many controllers phase 1 provisions: 3 (the
	// default) or 5.
	Controllers int `json:"controllers,omitempty"`
	// MetadataVersion is what phase 1 formats the controllers with
	// (default 3.9-IV0, the migration's release).
	MetadataVersion string `json:"metadataVersion,omitempty"`
	// WaitTimeout bounds each of the phase's waits for the cluster (the
	// quorum forming, the KRaft controller's takeover; default 10 min).
	WaitTimeout time.Duration `json:"waitTimeout,omitempty"`
}

// Defaults of a migration's phase 1.
const (
	defaultMigrationControllers = 3
	// MigrationMetadataVersion is the metadata.version a migration's
	// controllers are formatted with: the 3.9 line's.
	MigrationMetadataVersion   = "3.9-IV0"
	defaultMigrationWaitTimout = 10 * time.Minute
)

func (p MigrationParams) withDefaults() MigrationParams {
	if p.Controllers == 0 {
		p.Controllers = defaultMigrationControllers
	}
	if p.MetadataVersion == "" {
		p.MetadataVersion = MigrationMetadataVersion
	}
	if p.WaitTimeout <= 0 {
		p.WaitTimeout = defaultMigrationWaitTimout
	}
	return p
}

func (p MigrationParams) validate() error {
	var errs []error
	if !p.Phase.Valid() || p.Phase == fleet.PhasePreflight {
		errs = append(errs, fmt.Errorf("phase %d: want 1 to %d", p.Phase, fleet.PhaseFinalize))
	}
	if p.Controllers != 0 && p.Controllers != 3 && p.Controllers != 5 {
		errs = append(errs, fmt.Errorf("controllers %d: want 3 or 5", p.Controllers))
	}
	if p.MetadataVersion != "" {
		if _, err := fleet.ParseMetadataVersion(p.MetadataVersion); err != nil {
			errs = append(errs, fmt.Errorf("metadataVersion: %w", err))
		}
	}
	if p.WaitTimeout < 0 {
		errs = append(errs, fmt.Errorf("waitTimeout %s: must not be negative", p.WaitTimeout))
	}
	return errors.Join(errs...)
}

func (p MigrationParams) String() string {
	if p.Rollback {
		return fmt.Sprintf("rollback of phase %s", p.Phase)
	}
	return fmt.Sprintf("phase %s", p.Phase)
}

var migrationPhaseKind = &kind[MigrationParams, MigrationPhaseInput, MigrationPhaseResult]{
	name:         OpMigrationPhase,
	slug:         "migrate",
	verb:         "migrate-phase",
	summary:      "one phase of a ZooKeeper cluster's migration to KRaft, or its rollback (the migration asks for it after a human's approval)",
	lane:         LaneMaintenance,
	impact:       fleet.ImpactMigration,
	destructive:  true,
	decisions:    []string{DecisionResume, DecisionAbort},
	workflowName: "MigrationPhaseWorkflow",
	workflow:     MigrationPhaseWorkflow,
	others:       []any{RollingRestartWorkflow},
	validate:     func(_ Request, p MigrationParams) error { return p.validate() },
	check: func(a admission, _ Request, p *MigrationParams) error {
		*p = p.withDefaults()
		return fleet.CheckMigrationStep(a.spec, p.Phase, p.Rollback)
	},
	// A step joins the same step queued or running (a migration asking
	// again after a crash), never another one.
	joins: func(a admission, _ Request, p *MigrationParams) (Operation, bool, error) {
		ops := a.st.Queue
		if a.st.Running != nil {
			ops = append([]Operation{*a.st.Running}, ops...)
		}
		for _, op := range ops {
			if op.Kind != OpMigrationPhase {
				continue
			}
			var q MigrationParams
			if err := json.Unmarshal(op.Params, &q); err == nil && q.Phase == p.Phase && q.Rollback == p.Rollback {
				return op, true, nil
			}
			return Operation{}, false, fmt.Errorf("cluster %s: migration %s is %s already: one step at a time", a.spec.ID, describeMigrationOp(op), op.Status)
		}
		return Operation{}, false, nil
	},
	input: func(spec fleet.ClusterSpec, op Operation, p MigrationParams) MigrationPhaseInput {
		return MigrationPhaseInput{Spec: spec, OperationID: op.ID, WorkflowID: op.WorkflowID, RequestedBy: op.RequestedBy,
			ApprovedBy: op.ApprovedBy, Step: p}
	},
	title: func(spec fleet.ClusterSpec, _ Operation, p MigrationParams) string {
		return fmt.Sprintf("Migration of **%s** to KRaft: %s", spec.ID, p)
	},
	report: func(res MigrationPhaseResult, _ error) Report {
		return Report{Outcome: res.Outcome}
	},
	legacy:   func(Operation) MigrationParams { return MigrationParams{} },
	describe: func(p MigrationParams) string { return p.String() },
	deciders: func(op Operation) []string {
		return []string{MigrationRollWorkflowID(op.WorkflowID, cloud.MetadataModeMigration), MigrationRollWorkflowID(op.WorkflowID, cloud.MetadataModeKRaft),
			MigrationRollWorkflowID(op.WorkflowID, cloud.MetadataModeZooKeeper)}
	},
	progress: func(op Operation, query func(string) json.RawMessage) []string {
		var p MigrationPhaseProgress
		if raw := query(op.WorkflowID); raw == nil || json.Unmarshal(raw, &p) != nil {
			return nil
		}
		lines := []string{p.Step}
		if p.RollWorkflowID != "" {
			lines = append(lines, rollLines(query(p.RollWorkflowID))...)
		}
		return lines
	},
}

func describeMigrationOp(op Operation) string {
	var p MigrationParams
	if json.Unmarshal(op.Params, &p) != nil {
		return op.ID
	}
	return fmt.Sprintf("%s (%s)", op.ID, p)
}

// MigrationRollWorkflowID is a migration step's roll into metadata mode
// (a step runs at most one roll per mode).
func MigrationRollWorkflowID(stepWorkflowID, mode string) string {
	return stepWorkflowID + "/roll-" + mode
}

// CheckMigrationParams refuses a migration's parameters on their face,
// before anything starts.
func CheckMigrationParams(p MigrationParams) error { return p.validate() }
