package entity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// StatusReport is a cluster's entity state and each running operation's
// own progress: what `starter status` prints (and --json), and what chat
// answers to a status command.
type StatusReport struct {
	workflows.ClusterStatus
	// Progress is each running operation's progress, a few lines, by
	// operation id (its kind renders it, workflows.Kind.Progress).
	Progress map[string][]string `json:"progress,omitempty"`
	// Provisioning is set for a cluster being created (no entity yet):
	// then the rest is empty.
	Provisioning *ProvisionStatus `json:"provisioning,omitempty"`
}

// Status reads a cluster's entity and its running operations' progress.
func Status(ctx context.Context, c client.Client, cluster string) (StatusReport, error) {
	st, err := ClusterStatus(ctx, c, cluster)
	if errors.Is(err, fleet.ErrUnknownCluster) {
		// No entity: a cluster being created has its provisioning.
		if ps, perr := Provisioning(ctx, c, cluster); perr == nil {
			return StatusReport{Provisioning: &ps}, nil
		}
	}
	if err != nil {
		return StatusReport{}, err
	}
	rep := StatusReport{ClusterStatus: st, Progress: map[string][]string{}}
	running := slices.Clone(st.Urgent)
	if st.Running != nil {
		running = append(running, *st.Running)
	}
	for _, op := range running {
		if lines := OperationProgress(ctx, c, op); len(lines) > 0 {
			rep.Progress[op.ID] = lines
		}
	}
	return rep, nil
}

// OperationProgress is a running operation's progress as its kind reads
// it, and what its workflows' waits see now; nil when it does not answer.
func OperationProgress(ctx context.Context, c client.Client, op workflows.Operation) []string {
	k, err := workflows.KindNamed(op.Kind)
	if err != nil {
		return nil
	}
	lines := k.Progress(op, func(workflowID string) json.RawMessage { return queryProgress(ctx, c, workflowID) })
	ids := append([]string{op.WorkflowID}, k.DecisionWorkflows(op)...)
	slices.Sort(ids)
	return append(lines, waitLines(ctx, c, slices.Compact(ids))...)
}

// waitLines describes the long waits (gates, a broker coming back) the
// workflows are in, from their pending activities' last heartbeats: the
// workflow itself knows only what the wait first saw.
func waitLines(ctx context.Context, c client.Client, workflowIDs []string) []string {
	var lines []string
	for _, id := range workflowIDs {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		d, err := c.DescribeWorkflowExecution(dctx, id, "")
		cancel()
		if err != nil || d.GetWorkflowExecutionInfo().GetStatus() != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
			continue
		}
		for _, pa := range d.GetPendingActivities() {
			details := pa.GetHeartbeatDetails()
			if details == nil {
				continue
			}
			decode := func(v any) error { return converter.GetDefaultDataConverter().FromPayloads(details, v) }
			if line, ok := activities.DescribeWait(pa.GetActivityType().GetName(), decode); ok {
				lines = append(lines, line)
			}
		}
	}
	return lines
}

// queryProgress asks a workflow for its progress; nil when it does not
// answer (it has no such query, it is not running, no worker is up).
func queryProgress(ctx context.Context, c client.Client, workflowID string) json.RawMessage {
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := c.QueryWorkflow(qctx, workflowID, "", workflows.QueryProgress)
	if err != nil {
		return nil
	}
	var raw json.RawMessage
	if v.Get(&raw) != nil || string(raw) == "null" {
		return nil
	}
	return raw
}

// RenderOptions tune RenderStatus.
type RenderOptions struct {
	// History is how many finished operations to show, newest first.
	History int
}

// RenderStatus writes a cluster's status for humans: its spec, pause,
// protocol level, the running and urgent operations with their progress,
// the queue, recent history, open losses and the last health tick. The CLI
// prints it; chat answers it in a code block.
func RenderStatus(w io.Writer, rep StatusReport, opts RenderOptions) {
	if ps := rep.Provisioning; ps != nil {
		renderProvisioning(w, *ps)
		return
	}
	st, spec := rep.ClusterState, rep.Spec
	if i := slices.IndexFunc(st.History, func(op workflows.Operation) bool {
		return op.Kind == workflows.OpDeleteCluster && op.Status == workflows.StatusSucceeded
	}); i >= 0 {
		last := st.History[i]
		fmt.Fprintf(w, "cluster %s: DELETED at %s by %s, approved by %s: %s\n", spec.ID, Clock(last.FinishedAt), last.RequestedBy, last.ApprovedBy, last.Outcome)
		return
	}
	fmt.Fprintf(w, "cluster %s: %d brokers %v\n", spec.ID, len(spec.Brokers), spec.BrokerIDs())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  bootstrap\t%s\n", strings.Join(spec.Bootstrap, ", "))
	switch spec.Mode() {
	case fleet.ModeKRaft:
		fmt.Fprintf(tw, "  kraft\tcontrollers %v at %s\n", spec.ControllerIDs(), strings.Join(spec.KRaft.QuorumBootstrap, ", "))
	case fleet.ModeMigrating:
		fmt.Fprintf(tw, "  zookeeper\t%s\n", spec.ZooKeeper)
		fmt.Fprintf(tw, "  kraft\tmigrating, phase %s; controllers %v\n", spec.KRaft.Phase, spec.ControllerIDs())
	default:
		fmt.Fprintf(tw, "  zookeeper\t%s\n", spec.ZooKeeper)
	}
	if sec := spec.Security.String(); sec != "" {
		fmt.Fprintf(tw, "  security\t%s\n", sec) // secret names only
	}
	if p := st.Protocol; p != nil {
		switch {
		case p.Uncertain != "":
			fmt.Fprintf(tw, "  protocol\tUNCERTAIN: %s\n", p.Uncertain)
		default:
			fmt.Fprintf(tw, "  protocol\tKafka %s, inter.broker.protocol.version %s%s\n", orDash(p.KafkaVersion), orDash(p.InterBrokerProtocol), Suffix(" (set by ", p.By, ")"))
		}
	}
	if p := st.Paused; p != nil {
		fmt.Fprintf(tw, "  paused\tPAUSED by %s since %s (%s)%s: no queued operation starts\n", p.By, Clock(p.Since), Ago(p.Since), Suffix(": ", p.Reason, ""))
	} else {
		fmt.Fprintf(tw, "  paused\tno\n")
	}
	if wst := st.Watch; wst != nil {
		s := fmt.Sprintf("registered %v", wst.Registered)
		if len(wst.Missing) > 0 {
			s += fmt.Sprintf(", MISSING %v", wst.Missing)
		}
		if wst.Error != "" {
			s += ", watch error: " + wst.Error
		}
		fmt.Fprintf(tw, "  brokers\t%s\n", s)
	}
	tw.Flush()

	fmt.Fprintln(w)
	if op := st.Running; op != nil {
		fmt.Fprintf(w, "running: %s\n", DescribeOperation(*op))
		for _, line := range rep.Progress[op.ID] {
			fmt.Fprintf(w, "  %s\n", line)
		}
	} else {
		fmt.Fprintln(w, "running: nothing")
	}
	for _, op := range st.Urgent {
		fmt.Fprintf(w, "urgent:  %s\n", DescribeOperation(op))
		for _, line := range rep.Progress[op.ID] {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	if len(st.Queue) == 0 {
		fmt.Fprintln(w, "queue:   empty")
	} else {
		held := ""
		if st.Paused != nil {
			held = " (held by the pause)"
		}
		fmt.Fprintf(w, "queue:   %d waiting%s\n", len(st.Queue), held)
		for _, op := range st.Queue {
			fmt.Fprintf(w, "  %s\n", DescribeOperation(op))
		}
	}
	renderHistory(w, st.History, opts.History)
	renderLosses(w, st.OpenLosses())
	renderHealth(w, st.Health)
	renderTenants(w, st.Tenants) // tenants.go
}

func renderHistory(w io.Writer, history []workflows.Operation, shown int) {
	n := min(shown, len(history))
	if n <= 0 {
		return
	}
	fmt.Fprintf(w, "\nhistory (newest first, %d of %d):\n", n, len(history))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, op := range slices.Backward(history[len(history)-n:]) {
		result := op.Outcome
		if op.Error != "" {
			result = op.Error
		}
		if op.CancelledBy != "" {
			result = "cancelled by " + op.CancelledBy + Suffix(": ", op.CancelReason, "")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s%s\t%s\tby %s%s\t%s\n", Clock(op.FinishedAt), op.ID, op.Kind, BrokersSuffix(op.Brokers), op.Status,
			op.RequestedBy, Suffix(", approved by ", op.ApprovedBy, ""), result)
	}
	tw.Flush()
}

func renderLosses(w io.Writer, open []workflows.BrokerLoss) {
	if len(open) == 0 {
		fmt.Fprintf(w, "\nopen losses: none\n")
		return
	}
	fmt.Fprintf(w, "\nopen losses:\n")
	for _, l := range open {
		s := fmt.Sprintf("  broker %d lost at %s (%s)", l.Broker, Clock(l.At), Ago(l.At))
		if l.Recovery != "" {
			s += ", recovery " + l.Recovery
		} else {
			s += ", no recovery yet"
		}
		fmt.Fprintln(w, s)
	}
}

// DescribeOperation is one line about an operation: what, for whom, when.
func DescribeOperation(op workflows.Operation) string {
	s := fmt.Sprintf("%s %s%s requested by %s %s", op.Kind, op.ID, BrokersSuffix(op.Brokers), op.RequestedBy, Ago(op.RequestedAt))
	if op.ApprovedBy != "" {
		s += ", approved by " + op.ApprovedBy
	}
	if k, err := workflows.KindNamed(op.Kind); err == nil {
		s += Suffix(", ", k.Describe(op), "")
	}
	if !op.StartedAt.IsZero() {
		s += fmt.Sprintf(", running for %s", Roughly(time.Since(op.StartedAt)))
	}
	if op.Reason != "" {
		s += " (" + op.Reason + ")"
	}
	if op.CancelledBy != "" {
		s += ", CANCELLING (asked by " + op.CancelledBy + ")"
	}
	return s
}

// renderHealth prints the last health tick per broker and the recent
// findings with what was done about them.
func renderHealth(w io.Writer, hs *workflows.HealthState) {
	if hs == nil || hs.LastTick.IsZero() {
		fmt.Fprintf(w, "\nhealth: no tick yet\n")
		return
	}
	if hs.Verdict != "" {
		// Sensing reports on change: the last report stands until then.
		fmt.Fprintf(w, "\nhealth: %s (reported %s, %s; sensing ticks where it runs and reports any change at once):\n",
			hs.Verdict, Clock(hs.LastTick), Ago(hs.LastTick))
	} else {
		fmt.Fprintf(w, "\nhealth (last tick %s, %s):\n", Clock(hs.LastTick), Ago(hs.LastTick))
	}
	if hs.Error != "" {
		fmt.Fprintf(w, "  tick failed: %s\n", hs.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  BROKER\tSTATE\tDISK\tCLEANER\tHEAP (OLD GEN)")
	for _, b := range hs.Brokers {
		h := b.Last
		if h.Error != "" {
			fmt.Fprintf(tw, "  %d\tunreadable\t-\t-\t-\t%s\n", b.Broker, h.Error)
			continue
		}
		disk := fmt.Sprintf("%.1f%%", h.Disk.Percent())
		if b.Cooldown != nil && time.Now().Before(b.Cooldown.Until) {
			disk += fmt.Sprintf(" (cool-down until %s)", Clock(b.Cooldown.Until))
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", b.Broker, orDash(h.State), disk, describeCleaner(h.Cleaner), describeHeap(h.Heap))
	}
	tw.Flush()
	for _, z := range hs.ZooKeeper {
		if !z.OK {
			fmt.Fprintf(w, "  zookeeper %s: DOWN%s\n", z.Address, Suffix(": ", z.Error, ""))
		}
	}
	if len(hs.Findings) == 0 {
		fmt.Fprintln(w, "findings: none")
		return
	}
	const shown = 5
	n := min(shown, len(hs.Findings))
	fmt.Fprintf(w, "findings (newest first, %d of %d):\n", n, hs.Found)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, f := range slices.Backward(hs.Findings[len(hs.Findings)-n:]) {
		where := fmt.Sprintf("broker %d", f.Broker)
		if f.Broker < 0 {
			where = "cluster"
		}
		acted := "observed"
		if f.Operation != "" {
			acted = "-> " + f.Operation + Suffix(": ", f.Outcome, "")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", Clock(f.At), f.Kind, where, f.Reason, acted)
	}
	tw.Flush()
}

func describeCleaner(c fleet.CleanerHealth) string {
	var parts []string
	if c.DeadThreads > 0 {
		parts = append(parts, fmt.Sprintf("%d DEAD thread(s)", c.DeadThreads))
	}
	if c.Uncleanable > 0 {
		parts = append(parts, fmt.Sprintf("%d uncleanable", c.Uncleanable))
	}
	if len(parts) == 0 {
		parts = append(parts, "ok")
	}
	return strings.Join(parts, ", ") + fmt.Sprintf(" (last run %s ago)", Roughly(c.SinceLastRun))
}

func describeHeap(h fleet.HeapUsage) string {
	if h.Max <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%% of %d MiB", float64(h.Used)*100/float64(h.Max), h.Max>>20)
}
