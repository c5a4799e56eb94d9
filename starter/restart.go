package main

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/app"
	"github.com/kfleet/kfleet/workflows"
)

func newRestartCommand(g *globalFlags) *cobra.Command {
	var (
		cluster string
		brokers []int32
		by      string
		noWait  bool
		batch   int
	)
	cmd := &cobra.Command{
		Use:   "restart --cluster ID",
		Short: "Rolling restart of a cluster, one broker at a time, the controller last",
		Long: `Asks the cluster's entity workflow (cluster/<id>) for a rolling restart and
follows it until it completes. A restart already queued or running is
joined, not run twice. Exit codes: 0 done, 1 failed, 2 bad input or unknown
cluster, 3 Temporal unreachable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCluster(cmd, g, cluster, func(ctx context.Context, c client.Client) error {
				op, err := app.RequestRestart(ctx, c, cluster, workflows.RestartRequest{RequestedBy: by, Brokers: brokers, MaxBatch: batch})
				if err != nil {
					return err
				}
				return followRestart(ctx, cmd, c, cluster, op, noWait)
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id, e.g. local-a")
	cmd.Flags().Int32SliceVar(&brokers, "brokers", nil, "restrict the roll to these broker ids (default: all)")
	cmd.Flags().StringVar(&by, "requested-by", defaultRequester(), "who asks (recorded in the operation and on the hosts)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the restart is admitted")
	cmd.Flags().IntVar(&batch, "batch", 1, "restart up to this many brokers that share no partition together (e.g. one rack at a time); 1 is one at a time")
	return cmd
}

// followRestart prints the admitted restart and, unless noWait, its
// progress until it ends.
func followRestart(ctx context.Context, cmd *cobra.Command, c client.Client, cluster string, op workflows.Operation, noWait bool) error {
	out := cmd.OutOrStdout()
	verb := "queued"
	if op.Existing {
		verb = "joined existing"
	}
	fmt.Fprintf(out, "%s rolling restart %s of %s (workflow %s)\n", verb, op.ID, cluster, op.WorkflowID)
	if noWait {
		return nil
	}
	res, err := app.FollowOperation(ctx, c, cluster, op.ID, time.Second, func(p app.Progress) {
		fmt.Fprintf(out, "%s  %s\n", time.Now().Format(time.TimeOnly), describeProgress(cluster, p))
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "rolling restart %s of %s completed:\n", op.ID, cluster)
	for _, b := range res.Brokers {
		ctl := ""
		if b.WasController {
			ctl = " (controller)"
		}
		fmt.Fprintf(out, "  broker %d%s: %s (gates %s, stop %s, start %s, register %s, ISR %s, election %s)\n",
			b.Broker, ctl, round(b.Total), round(b.GateWait), round(b.Stop), round(b.Start), round(b.Register), round(b.CatchUp), round(b.Elect))
	}
	return nil
}

func describeProgress(cluster string, p app.Progress) string {
	if p.Roll == nil {
		return p.Operation.Status
	}
	r := p.Roll
	s := fmt.Sprintf("%d/%d brokers done", len(r.Done), len(r.Done)+len(r.Remaining))
	if r.Current >= 0 {
		s += fmt.Sprintf(", broker %d: %s", r.Current, r.Step)
	}
	if len(r.Blockers) > 0 {
		s += " [" + strings.Join(r.Blockers, "; ") + "]"
	}
	if p := r.Paused; p != nil {
		s += fmt.Sprintf("\n  PAUSED at broker %d (%s): %s\n  decide with: bin/starter decide --cluster %s resume|abort", p.Broker, p.Step, p.Reason, cluster)
		if p.CanSkip {
			s += "|skip"
		}
	}
	return s
}

func round(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }

func defaultRequester() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if h, err := os.Hostname(); err == nil {
		return h
	}
	return "cli"
}
