package overview

import (
	"fmt"
	"strings"
	"time"

	"github.com/kfleet/kfleet/workflows"
)

// Thresholds of the overview's verdicts. They only colour the page:
// kfleet's health loop acts on its own policy, per cluster.
const (
	diskWarnPct = 80
	heapWarnPct = 90
	// staleAfter is how long a cluster may go without a health report
	// before the page says so. Sensing reports on a change of verdict, or
	// within a few ticks while a concern is held back, so a steady
	// cluster is quiet for long: this only catches the one no worker
	// senses at all (its sensing heartbeat is minutes).
	staleAfter = 24 * time.Hour
)

// judge gives a cluster its verdict and the reasons, most urgent first:
// critical when a broker is down without kfleet's doing, sensing fails, or
// a workflow of it waits for a human; warning while kfleet works on it or
// a gauge runs high.
func judge(c *Cluster, waiting []Waiting, now time.Time) {
	c.Health, c.Concerns = OK, nil
	var critical, warning []string
	for _, b := range c.Brokers {
		switch b.State {
		case workflows.BrokerLost, workflows.BrokerRecovering, workflows.BrokerMissing:
			critical = append(critical, fmt.Sprintf("broker %d %s", b.ID, b.State))
		case workflows.BrokerRestarting, workflows.BrokerUnreadable:
			warning = append(warning, fmt.Sprintf("broker %d %s", b.ID, b.State))
		}
		if b.DiskPct >= diskWarnPct {
			warning = append(warning, fmt.Sprintf("broker %d disk %d%%", b.ID, b.DiskPct))
		}
		if b.HeapPct >= heapWarnPct {
			warning = append(warning, fmt.Sprintf("broker %d old gen %d%%", b.ID, b.HeapPct))
		}
		if b.CleanerDead > 0 {
			warning = append(warning, fmt.Sprintf("broker %d log cleaner: %d dead thread(s)", b.ID, b.CleanerDead))
		}
	}
	if c.SenseError != "" {
		critical = append(critical, "sensing fails: "+c.SenseError)
	} else if !c.SensedAt.IsZero() && now.Sub(c.SensedAt) > staleAfter {
		warning = append(warning, "no health report for "+now.Sub(c.SensedAt).Round(time.Minute).String())
	}
	for _, w := range waiting {
		if w.Cluster == c.Cluster && w.Operation != pausedCluster {
			critical = append(critical, w.Operation+" waits for a human")
		}
	}
	if p := c.Paused; p != nil {
		warning = append(warning, "paused by "+p.By)
	}
	for _, op := range c.Operations {
		warning = append(warning, op.Kind+" running")
	}
	if c.Queued > 0 {
		warning = append(warning, fmt.Sprintf("%d queued", c.Queued))
	}
	switch {
	case len(critical) > 0:
		c.Health = Critical
	case len(warning) > 0:
		c.Health = Warning
	}
	c.Concerns = append(critical, warning...)
}

// noOverviewYet is an entity's concern before it wrote a summary.
const noOverviewYet = "no overview yet: its entity started before kfleet kept one; it shows from its next continue-as-new"

// pausedCluster is the Operation of a Waiting that is a paused entity.
const pausedCluster = "paused cluster"

// chatHint is how people answer a waiting workflow: through chat, which
// the ChatOps server authorizes like any other command.
func chatHint(cluster, operation, opID string) string {
	if operation == pausedCluster {
		return "/kafka resume " + cluster
	}
	if opID == "" {
		return "/kafka status " + cluster
	}
	return fmt.Sprintf("the buttons of its chat message, or /kafka abort %s %s", cluster, opID)
}

// operationOf finds the running operation a workflow belongs to: its own,
// or one it runs (an upgrade's phase roll is the upgrade's workflow ID and
// a suffix).
func operationOf(c *Cluster, workflowID string) (workflows.OperationOverview, bool) {
	for _, op := range c.Operations {
		if workflowID == op.WorkflowID || strings.HasPrefix(workflowID, op.WorkflowID+"/") {
			return op, true
		}
	}
	return workflows.OperationOverview{}, false
}
