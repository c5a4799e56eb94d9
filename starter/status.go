package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/app"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

func newStatusCommand(g *globalFlags) *cobra.Command {
	var cluster string
	var history int
	cmd := &cobra.Command{
		Use:   "status --cluster ID",
		Short: "Show a cluster's entity: pause, running operation and its step, queue, history, losses, health",
		Long: `Shows what the cluster's entity (cluster/<id>) knows: its spec, whether it
is paused, the running operation with its own progress (broker, step, what
blocks a gate, a pause waiting for a human), urgent operations (recoveries,
expansions), the queue, the recent history with outcomes, open broker
losses, and the last health tick per broker (disk, cleaner, heap) with the
recent findings. --json prints the whole status and each running
operation's progress as reported.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if history < 0 {
				return exitError{exitBadInput, fmt.Errorf("--history %d: want 0 or more", history)}
			}
			return withCluster(cmd, g, cluster, func(ctx context.Context, c client.Client) error {
				rep, err := statusOf(ctx, c, cluster)
				if err != nil {
					return err
				}
				return g.emit(cmd, rep, func(out io.Writer) { printStatus(out, cluster, rep, history) })
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id")
	cmd.Flags().IntVar(&history, "history", 5, "finished operations to show (newest first)")
	return cmd
}

// statusReport is the entity's status and the running operations' own
// progress (status --json).
type statusReport struct {
	workflows.ClusterStatus
	// Progress is the running operation's own progress (its step, broker,
	// blockers, pause), when it answers.
	Progress json.RawMessage `json:"runningProgress,omitempty"`
	// RollProgress is the roll an upgrade's phase or a cleaner check runs
	// now, when there is one.
	RollProgress json.RawMessage `json:"runningRollProgress,omitempty"`
	// UrgentProgress is each running recovery's or expansion's progress,
	// by operation id.
	UrgentProgress map[string]json.RawMessage `json:"urgentProgress,omitempty"`
}

func statusOf(ctx context.Context, c client.Client, cluster string) (statusReport, error) {
	st, err := app.ClusterStatus(ctx, c, cluster)
	if err != nil {
		return statusReport{}, err
	}
	rep := statusReport{ClusterStatus: st}
	if op := st.Running; op != nil {
		rep.Progress = queryProgress(ctx, c, op.WorkflowID)
		switch op.Kind {
		case workflows.OpRollingUpgrade:
			var up workflows.UpgradeProgress
			if json.Unmarshal(rep.Progress, &up) == nil && up.RollWorkflowID != "" {
				rep.RollProgress = queryProgress(ctx, c, up.RollWorkflowID)
			}
		case workflows.OpCleanerHealth:
			rep.RollProgress = queryProgress(ctx, c, workflows.CleanerRestartWorkflowID(op.WorkflowID))
		}
	}
	for _, op := range st.Urgent {
		if p := queryProgress(ctx, c, op.WorkflowID); p != nil {
			if rep.UrgentProgress == nil {
				rep.UrgentProgress = map[string]json.RawMessage{}
			}
			rep.UrgentProgress[op.ID] = p
		}
	}
	return rep, nil
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

// printStatus is the human view of a cluster's status.
func printStatus(w io.Writer, cluster string, rep statusReport, history int) {
	st, spec := rep.ClusterState, rep.Spec
	fmt.Fprintf(w, "cluster %s: %d brokers %v\n", cluster, len(spec.Brokers), spec.BrokerIDs())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  bootstrap\t%s\n", strings.Join(spec.Bootstrap, ", "))
	fmt.Fprintf(tw, "  zookeeper\t%s\n", spec.ZooKeeper)
	if p := st.Paused; p != nil {
		fmt.Fprintf(tw, "  paused\tPAUSED by %s since %s (%s)%s: no queued operation starts\n", p.By, clock(p.Since), since(p.Since), suffix(": ", p.Reason))
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
		fmt.Fprintf(w, "running: %s\n", describeOperation(*op))
		for _, line := range runningProgress(cluster, *op, rep) {
			fmt.Fprintf(w, "  %s\n", line)
		}
	} else {
		fmt.Fprintln(w, "running: nothing")
	}
	for _, op := range st.Urgent {
		fmt.Fprintf(w, "urgent:  %s\n", describeOperation(op))
		if line := urgentProgress(cluster, rep.UrgentProgress[op.ID]); line != "" {
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
			fmt.Fprintf(w, "  %s\n", describeOperation(op))
		}
	}

	if n := min(history, len(st.History)); n > 0 {
		fmt.Fprintf(w, "\nhistory (newest first, %d of %d):\n", n, len(st.History))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, op := range slices.Backward(st.History[len(st.History)-n:]) {
			result := op.Outcome
			if op.Error != "" {
				result = op.Error
			}
			if op.CancelledBy != "" {
				result = "cancelled by " + op.CancelledBy + suffix(": ", op.CancelReason)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s%s\t%s\tby %s\t%s\n", clock(op.FinishedAt), op.ID, op.Kind, brokersSuffix(op.Brokers), op.Status, op.RequestedBy, result)
		}
		tw.Flush()
	}

	if open := st.OpenLosses(); len(open) > 0 {
		fmt.Fprintf(w, "\nopen losses:\n")
		for _, l := range open {
			s := fmt.Sprintf("  broker %d lost at %s (%s)", l.Broker, clock(l.At), since(l.At))
			if l.Recovery != "" {
				s += ", recovery " + l.Recovery
			} else {
				s += ", within its grace: no recovery yet"
			}
			fmt.Fprintln(w, s)
		}
	} else {
		fmt.Fprintf(w, "\nopen losses: none\n")
	}

	printHealth(w, st.Health)
}

// describeOperation is one line about an operation: what, for whom, when.
func describeOperation(op workflows.Operation) string {
	s := fmt.Sprintf("%s %s%s requested by %s %s", op.Kind, op.ID, brokersSuffix(op.Brokers), op.RequestedBy, since(op.RequestedAt))
	if op.MaxBatch > 1 {
		s += fmt.Sprintf(", batches of up to %d", op.MaxBatch)
	}
	if op.Upgrade != nil {
		s += fmt.Sprintf(", to Kafka %s (protocol %s -> %s)", op.Upgrade.Version, op.Upgrade.FromIBP, op.Upgrade.TargetIBP)
	}
	if !op.StartedAt.IsZero() {
		s += fmt.Sprintf(", running for %s", roughly(time.Since(op.StartedAt)))
	}
	if op.Reason != "" {
		s += " (" + op.Reason + ")"
	}
	if op.CancelledBy != "" {
		s += ", CANCELLING (asked by " + op.CancelledBy + ")"
	}
	return s
}

// runningProgress describes the running operation's own progress.
func runningProgress(cluster string, op workflows.Operation, rep statusReport) []string {
	var roll *workflows.RollProgress
	var lines []string
	switch op.Kind {
	case workflows.OpRollingRestart:
		roll = decodeRoll(rep.Progress)
	case workflows.OpRollingUpgrade:
		var up workflows.UpgradeProgress
		if json.Unmarshal(rep.Progress, &up) == nil && rep.Progress != nil {
			lines = append(lines, fmt.Sprintf("phase %d/%d (%s)", up.PhaseNumber, up.Phases, up.Phase))
		}
		roll = decodeRoll(rep.RollProgress)
	case workflows.OpCleanerHealth:
		if roll = decodeRoll(rep.RollProgress); roll != nil {
			lines = append(lines, "restarting the brokers whose cleaner is unhealthy")
		}
	}
	if roll != nil {
		lines = append(lines, strings.Split(describeProgress(cluster, app.Progress{Operation: op, Roll: roll}), "\n")...)
	}
	return lines
}

func decodeRoll(raw json.RawMessage) *workflows.RollProgress {
	if raw == nil {
		return nil
	}
	var r workflows.RollProgress
	if json.Unmarshal(raw, &r) != nil {
		return nil
	}
	return &r
}

// urgentProgress describes a recovery's progress (expansions report none).
func urgentProgress(cluster string, raw json.RawMessage) string {
	var p workflows.RecoveryProgress
	if raw == nil || json.Unmarshal(raw, &p) != nil || p.Step == "" {
		return ""
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
	if p.Paused != nil {
		s += "\n  " + describePause(cluster, *p.Paused)
	}
	return s
}

// printHealth prints the last health tick per broker and the recent
// findings with what was done about them.
func printHealth(w io.Writer, hs *workflows.HealthState) {
	if hs == nil || hs.LastTick.IsZero() {
		fmt.Fprintf(w, "\nhealth: no tick yet\n")
		return
	}
	fmt.Fprintf(w, "\nhealth (last tick %s, %s):\n", clock(hs.LastTick), since(hs.LastTick))
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
			disk += fmt.Sprintf(" (cool-down until %s)", clock(b.Cooldown.Until))
		}
		fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", b.Broker, orDash(h.State), disk, describeCleaner(h.Cleaner), describeHeap(h.Heap))
	}
	tw.Flush()
	for _, z := range hs.ZooKeeper {
		if !z.OK {
			fmt.Fprintf(w, "  zookeeper %s: DOWN%s\n", z.Address, suffix(": ", z.Error))
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
			acted = "-> " + f.Operation + suffix(": ", f.Outcome)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", clock(f.At), f.Kind, where, f.Reason, acted)
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
	return strings.Join(parts, ", ") + fmt.Sprintf(" (last run %s ago)", roughly(c.SinceLastRun))
}

func describeHeap(h fleet.HeapUsage) string {
	if h.Max <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%% of %d MiB", float64(h.Used)*100/float64(h.Max), h.Max>>20)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
