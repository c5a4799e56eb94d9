package workflows

import (
	"encoding/json"
	"fmt"

	"github.com/kfleet/kfleet/internal/fleet"
)

// OpRollingRestart restarts brokers one at a time (or in batches of brokers
// that share no partition), every gate checked before each.
const OpRollingRestart = "rolling-restart"

// RestartParams are a rolling restart's parameters.
type RestartParams struct {
	// MaxBatch lets brokers that share no partition restart together;
	// 0 or 1 is one at a time (see RollingRestartInput.MaxBatch).
	MaxBatch int `json:"maxBatch,omitempty"`
}

var restartKind = &kind[RestartParams, RollingRestartInput, RollingRestartResult]{
	name:         OpRollingRestart,
	slug:         "roll",
	verb:         "restart",
	summary:      "rolling restart, one broker (or one batch of brokers sharing no partition) at a time, the controller last",
	lane:         LaneMaintenance,
	impact:       fleet.ImpactBrokerRoll,
	destructive:  true,
	schedulable:  true,
	decisions:    []string{DecisionResume, DecisionSkip, DecisionAbort},
	workflowName: "RollingRestartWorkflow",
	workflow:     RollingRestartWorkflow,
	validate: func(_ Request, p RestartParams) error {
		if p.MaxBatch < 0 {
			return fmt.Errorf("maxBatch %d: must not be negative", p.MaxBatch)
		}
		return nil
	},
	check: func(a admission, _ Request, p *RestartParams) error {
		if p.MaxBatch > len(a.spec.Brokers) {
			return fmt.Errorf("maxBatch %d: want 0..%d (the cluster's broker count)", p.MaxBatch, len(a.spec.Brokers))
		}
		return nil
	},
	input: func(spec fleet.ClusterSpec, op Operation, p RestartParams) RollingRestartInput {
		return RollingRestartInput{Spec: spec, OperationID: op.ID, RequestedBy: op.RequestedBy, Brokers: op.Brokers, MaxBatch: p.MaxBatch}
	},
	title: func(spec fleet.ClusterSpec, op Operation, _ RestartParams) string {
		return fmt.Sprintf("Rolling restart of **%s** (%s)", spec.ID, brokersPhrase(spec, op.Brokers))
	},
	report: func(res RollingRestartResult, _ error) Report {
		if len(res.Brokers) == 0 && len(res.Skipped) == 0 && len(res.Controllers) == 0 && len(res.SkippedControllers) == 0 {
			return Report{}
		}
		s := fmt.Sprintf("%d broker(s) restarted", len(res.Brokers))
		if len(res.Controllers) > 0 || len(res.SkippedControllers) > 0 {
			// A KRaft roll: its controllers went first.
			s = fmt.Sprintf("%d controller(s) then ", len(res.Controllers)) + s
		}
		if len(res.Skipped) > 0 {
			s += fmt.Sprintf(", skipped %v", res.Skipped)
		}
		if len(res.SkippedControllers) > 0 {
			s += fmt.Sprintf(", skipped controller(s) %v", res.SkippedControllers)
		}
		return Report{Outcome: s}
	},
	legacy: func(op Operation) RestartParams { return RestartParams{MaxBatch: op.MaxBatch} },
	describe: func(p RestartParams) string {
		if p.MaxBatch > 1 {
			return fmt.Sprintf("batches of up to %d", p.MaxBatch)
		}
		return ""
	},
	deciders: func(op Operation) []string { return []string{op.WorkflowID} },
	progress: func(op Operation, query func(string) json.RawMessage) []string {
		return rollLines(query(op.WorkflowID))
	},
}

// restartOperation is a roll of brokers kfleet itself asks for (a heap
// climbing on a broker).
func restartOperation(brokers ...int32) Operation {
	return Operation{Kind: OpRollingRestart, Brokers: brokers, Params: mustJSON(RestartParams{})}
}

// brokersPhrase names the brokers an operation concerns.
func brokersPhrase(spec fleet.ClusterSpec, brokers []int32) string {
	if len(brokers) == 0 {
		return fmt.Sprintf("%d brokers", len(spec.Brokers))
	}
	return fmt.Sprintf("broker(s) %v", brokers)
}
