package workflows

import (
	"encoding/json"
	"fmt"

	"github.com/kfleet/kfleet/internal/fleet"
)

// OpCleanerHealth checks the log cleaner and restarts, gated, the brokers
// whose cleaner is dead or stuck.
const OpCleanerHealth = "cleaner-health"

// CleanerParams are a cleaner check's parameters: none beyond its brokers.
type CleanerParams struct{}

var cleanerKind = &kind[CleanerParams, CleanerHealthInput, CleanerHealthResult]{
	name:         OpCleanerHealth,
	slug:         OpCleanerHealth,
	verb:         "cleaner-check",
	summary:      "check the log cleaner now; restart, gated, the brokers whose cleaner is dead or stuck",
	lane:         LaneMaintenance,
	impact:       fleet.ImpactBrokerRoll,
	schedulable:  true,
	decisions:    []string{DecisionResume, DecisionSkip, DecisionAbort},
	workflowName: "CleanerHealthWorkflow",
	workflow:     CleanerHealthWorkflow,
	others:       []any{RollingRestartWorkflow},
	check:        needsHealthLoop[CleanerParams]("cleaner checks"),
	input: func(spec fleet.ClusterSpec, op Operation, _ CleanerParams) CleanerHealthInput {
		return CleanerHealthInput{Spec: spec, OperationID: op.ID, RequestedBy: op.RequestedBy, Brokers: op.Brokers}
	},
	title: func(spec fleet.ClusterSpec, op Operation, _ CleanerParams) string {
		return fmt.Sprintf("Log cleaner check of **%s** %s", spec.ID, brokersPhrase(spec, op.Brokers))
	},
	report: func(r CleanerHealthResult, err error) Report {
		switch {
		case err != nil && len(r.Unhealthy) == 0:
			return Report{}
		case len(r.Unhealthy) == 0:
			return Report{Outcome: "every cleaner healthy"}
		case len(r.StillUnhealthy) > 0:
			return Report{Outcome: fmt.Sprintf("restarted %v, still unhealthy: %s", r.Restarted, describeFindings(r.StillUnhealthy))}
		case err != nil:
			return Report{Outcome: fmt.Sprintf("found %s", describeFindings(r.Unhealthy))}
		}
		return Report{Outcome: fmt.Sprintf("restarted %v, cleaners healthy again", r.Restarted)}
	},
	// Its roll takes the decisions.
	deciders: func(op Operation) []string { return []string{CleanerRestartWorkflowID(op.WorkflowID)} },
	progress: func(op Operation, query func(string) json.RawMessage) []string {
		if lines := rollLines(query(CleanerRestartWorkflowID(op.WorkflowID))); len(lines) > 0 {
			return append([]string{"restarting the brokers whose cleaner is unhealthy"}, lines...)
		}
		return nil
	},
}

// cleanerOperation is a cleaner check kfleet itself asks for (a finding).
func cleanerOperation(broker int32) Operation {
	return Operation{Kind: OpCleanerHealth, Brokers: []int32{broker}, Params: mustJSON(CleanerParams{})}
}

// needsHealthLoop refuses a request an entity recorded before the health
// loop existed cannot serve (it accepts it after its next continue-as-new).
func needsHealthLoop[P any](what string) func(admission, Request, *P) error {
	return func(a admission, _ Request, _ *P) error {
		if a.st.Health == nil && !a.healthLoop {
			return fmt.Errorf("cluster %s's entity predates %s; it accepts them after its next continue-as-new", a.spec.ID, what)
		}
		return nil
	}
}
