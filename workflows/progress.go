package workflows

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kfleet/kfleet/internal/fleet"
)

// How operations' progress reads, for every surface (CLI status, chat
// follow-ups): each kind's progress hook renders its workflows' progress
// queries with these. query asks a workflow for its progress and returns
// nil when it does not answer (not started, closed, no worker).

// rollLines describes a roll's progress (RollProgress).
func rollLines(raw json.RawMessage) []string {
	var r RollProgress
	if !decodeProgress(raw, &r) {
		return nil
	}
	s := fmt.Sprintf("%d/%d brokers done", len(r.Done), len(r.Done)+len(r.Remaining))
	if n := len(r.ControllersDone) + len(r.ControllersRemaining) + len(r.ControllersSkipped); n > 0 {
		s = fmt.Sprintf("%d/%d controllers done, ", len(r.ControllersDone), n) + s
	}
	if r.Current >= 0 && r.Paused == nil {
		node := "broker"
		if r.Node == NodeController {
			node = NodeController
		}
		s += fmt.Sprintf(", %s %d: %s", node, r.Current, r.Step)
	}
	if len(r.Blockers) > 0 {
		s += " [" + strings.Join(r.Blockers, "; ") + "]"
	}
	lines := []string{s}
	if p := r.Paused; p != nil {
		answers := []string{DecisionResume, DecisionAbort}
		if p.CanSkip {
			answers = []string{DecisionResume, DecisionSkip, DecisionAbort}
		}
		lines = append(lines, pauseLine(*p, answers))
	}
	return lines
}

// recoveryLines describes a recovery's progress (RecoveryProgress).
func recoveryLines(raw json.RawMessage) []string {
	var p RecoveryProgress
	if !decodeProgress(raw, &p) || p.Step == "" {
		return nil
	}
	s := fmt.Sprintf("broker %d: %s", p.Broker, p.Step)
	if p.Cause != "" {
		s += fmt.Sprintf(" (cause: %s)", p.Cause)
	}
	if p.LogsLeft > 0 {
		s += fmt.Sprintf(", %d logs left to recover", p.LogsLeft)
		if p.ETA != "" {
			s += ", ETA " + p.ETA
		}
	}
	lines := []string{s}
	if p.NewHost != "" {
		lines = append(lines, fmt.Sprintf("new host %s, data volume %s", p.NewHost, cmp.Or(p.Volume, "not attached yet")))
	}
	if p.CatchUpReplicas > 0 {
		c := fmt.Sprintf("catching up: %d replica(s), %s to copy", p.CatchUpReplicas, fleet.Bytes(p.CatchUpBytes))
		if p.CatchUpPace != "" {
			c += " (" + p.CatchUpPace + ")"
		}
		lines = append(lines, c)
	}
	if p.Paused != nil {
		lines = append(lines, pauseLine(*p.Paused, []string{DecisionResume, DecisionAbort}))
	}
	return lines
}

// upgradeLines describes an upgrade's phase and its running roll.
func upgradeLines(op Operation, query func(string) json.RawMessage) []string {
	var up UpgradeProgress
	if !decodeProgress(query(op.WorkflowID), &up) {
		return nil
	}
	lines := []string{fmt.Sprintf("phase %d/%d (%s)", up.PhaseNumber, up.Phases, up.Phase)}
	if up.RollWorkflowID != "" {
		lines = append(lines, rollLines(query(up.RollWorkflowID))...)
	}
	if up.Step != "" {
		lines = append(lines, up.Step)
	}
	if up.Paused != nil { // a KRaft upgrade's approval of a ghost's removal
		lines = append(lines, pauseLine(*up.Paused, []string{DecisionResume, DecisionSkip, DecisionAbort}))
	}
	return lines
}

// pauseLine says why an operation waits for a human and what it takes.
func pauseLine(p Pause, answers []string) string {
	return fmt.Sprintf("PAUSED at %s (%s) since %s: %s [decide: %s]",
		p.node(), p.Step, p.Since.UTC().Format(time.TimeOnly), p.Reason, strings.Join(answers, "|"))
}

func decodeProgress(raw json.RawMessage, v any) bool {
	return len(raw) > 0 && string(raw) != "null" && json.Unmarshal(raw, v) == nil
}
