package workflows

import (
	"fmt"
	"strings"
	"time"
)

// ProvisionLines describes a provisioning's progress for every surface:
// the UI's current details, the CLI's create and status, chat.
func ProvisionLines(p ProvisionProgress) []string {
	if len(p.Refusals) > 0 {
		return []string{"refused, nothing launched: " + strings.Join(p.Refusals, "; ")}
	}
	s := fmt.Sprintf("phase %d/%d: %s", p.PhaseNumber, p.Phases, p.Phase)
	if p.Total > 0 {
		s += fmt.Sprintf(" (%d/%d)", p.Done, p.Total)
	}
	s += fmt.Sprintf("; %d host(s) launched, %d volume(s)", p.Hosts, p.Volumes)
	if p.Controllers > 0 {
		s += fmt.Sprintf(", %d/%d controller(s) started", p.ControllersStarted, p.Controllers)
	}
	s += fmt.Sprintf(", %d/%d broker(s) started", p.Started, p.Brokers)
	lines := []string{s}
	if pa := p.Paused; pa != nil {
		answers := []string{DecisionResume, DecisionUndo, DecisionAbort}
		if pa.Step == PhaseUndo {
			answers = []string{DecisionResume, DecisionAbort}
		}
		lines = append(lines, fmt.Sprintf("PAUSED since %s at %q: %s [decide: %s]",
			pa.Since.UTC().Format(time.TimeOnly), pa.Step, pa.Reason, strings.Join(answers, "|")))
	}
	return lines
}
