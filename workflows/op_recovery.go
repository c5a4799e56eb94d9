package workflows

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/kfleet/kfleet/internal/fleet"
)

// OpRecovery brings back a broker lost without a controlled shutdown.
const OpRecovery = "recovery"

// RecoveryParams are a recovery's parameters; its broker is the
// operation's one broker.
type RecoveryParams struct {
	LostAt time.Time `json:"lostAt"`
}

var recoveryKind = &kind[RecoveryParams, RecoveryInput, RecoveryResult]{
	name:         OpRecovery,
	slug:         OpRecovery,
	summary:      "bring back a broker lost without a controlled shutdown (started by the broker watch, once per loss)",
	lane:         LaneUrgent,
	impact:       fleet.ImpactRecovery,
	decisions:    []string{DecisionResume, DecisionAbort},
	workflowName: "RecoveryWorkflow",
	workflow:     RecoveryWorkflow,
	refuse:       "a recovery is started by kfleet's broker watch, once per loss: it cannot be requested",
	input: func(spec fleet.ClusterSpec, op Operation, p RecoveryParams) RecoveryInput {
		return RecoveryInput{Spec: spec, Broker: op.Brokers[0], LostAt: p.LostAt, OperationID: op.ID, Grace: spec.Health.WithDefaults().RecoveryGrace}
	},
	title: func(spec fleet.ClusterSpec, op Operation, _ RecoveryParams) string {
		return fmt.Sprintf("Recovery of **%s** broker %d", spec.ID, op.Brokers[0])
	},
	report: func(r RecoveryResult, err error) Report {
		switch {
		case r.CameBack:
			return Report{Outcome: "came back by itself"}
		case err != nil && r.Cause == "":
			return Report{}
		}
		s := fmt.Sprintf("cause %s, %d start(s)", r.Cause, r.Starts)
		for _, f := range r.Fixes {
			s += fmt.Sprintf(", %s %d -> %d", f.Name, f.From, f.To)
		}
		switch rep := r.Replaced; {
		case rep != nil:
			s += fmt.Sprintf(", host %s replaced by %s, %s", rep.Old, rep.New, rep.volumeText())
		case r.InstanceStarted:
			s += ", its stopped instance started again"
		}
		return Report{Outcome: s}
	},
	legacy: func(op Operation) RecoveryParams { return RecoveryParams{LostAt: op.LostAt} },
	describe: func(p RecoveryParams) string {
		return "lost at " + p.LostAt.Format(time.RFC3339)
	},
	deciders: func(op Operation) []string { return []string{op.WorkflowID} },
	progress: func(op Operation, query func(string) json.RawMessage) []string {
		return recoveryLines(query(op.WorkflowID))
	},
}

// recoveryOperation is the recovery of a broker lost at lostAt.
func recoveryOperation(broker int32, lostAt time.Time) Operation {
	return Operation{Kind: OpRecovery, Brokers: []int32{broker}, Params: mustJSON(RecoveryParams{LostAt: lostAt})}
}
