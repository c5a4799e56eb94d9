package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/entity"
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
follows it until it completes (with --json, prints only the operation and
its result at the end). A restart already queued or running is joined, not
run twice. Exit codes: 0 done, 1 failed, 2 bad input (a broker not in the
cluster, --batch out of range), unknown cluster or refused: nothing is
started, 3 Temporal unreachable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if batch < 1 {
				return exitError{exitBadInput, fmt.Errorf("--batch %d: want 1 (one broker at a time) up to the cluster's broker count", batch)}
			}
			return withCluster(cmd, g, cluster, func(ctx context.Context, c client.Client) error {
				if batch > 1 {
					// The entity refuses it too; asking first says it in
					// the flag's terms.
					st, err := entity.ClusterStatus(ctx, c, cluster)
					if err != nil {
						return err
					}
					if n := len(st.Spec.Brokers); batch > n {
						return exitError{exitBadInput, fmt.Errorf("--batch %d: want 1..%d (%s has %d brokers)", batch, n, cluster, n)}
					}
				}
				req := workflows.Request{Kind: workflows.OpRollingRestart, RequestedBy: by, Brokers: brokers}
				if batch > 1 { // 1 is the default: one broker at a time
					req.Params, _ = json.Marshal(workflows.RestartParams{MaxBatch: batch})
				}
				op, err := entity.Request(ctx, c, cluster, req)
				if err != nil {
					return err
				}
				return followRestart(ctx, cmd, g, c, cluster, op, noWait)
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

// operationAnswer is the --json answer of a command that asks for an
// operation: the operation as the entity last reported it and, once it
// succeeded, its workflow's result.
type operationAnswer struct {
	Operation workflows.Operation `json:"operation"`
	Result    any                 `json:"result,omitempty"`
}

// followRestart prints the admitted restart and, unless noWait, its
// progress until it ends.
func followRestart(ctx context.Context, cmd *cobra.Command, g *globalFlags, c client.Client, cluster string, op workflows.Operation, noWait bool) error {
	out := g.progressOut(cmd)
	verb := "queued"
	if op.Existing {
		verb = "joined existing"
	}
	fmt.Fprintf(out, "%s rolling restart %s of %s (workflow %s)\n", verb, op.ID, cluster, op.WorkflowID)
	if noWait {
		return g.emit(cmd, operationAnswer{Operation: op}, func(io.Writer) {})
	}
	res, err := entity.FollowOperation(ctx, c, cluster, op.ID, time.Second, func(p entity.Progress) {
		op = p.Operation
		fmt.Fprintf(out, "%s  %s\n", time.Now().Format(time.TimeOnly), describeProgress(p))
	})
	if err != nil {
		return err
	}
	return g.emit(cmd, operationAnswer{Operation: op, Result: res}, func(out io.Writer) {
		fmt.Fprintf(out, "rolling restart %s of %s completed:\n", op.ID, cluster)
		printBrokers(out, "  ", res)
	})
}

// describeProgress is an operation's status and, while it runs, its own
// progress as its kind reads it.
func describeProgress(p entity.Progress) string {
	if len(p.Lines) == 0 {
		return p.Operation.Status
	}
	return strings.Join(p.Lines, "\n  ")
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
