package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/app"
	"github.com/kfleet/kfleet/workflows"
)

func newDecideCommand(g *globalFlags) *cobra.Command {
	var (
		cluster, by, reason, operation string
	)
	cmd := &cobra.Command{
		Use:   "decide --cluster ID resume|skip|abort",
		Short: "Answer an operation that paused for a human: resume (re-check or retry), skip the broker, or abort",
		Long: `A roll pauses when a gate stays shut past its deadline, when a gate can
never open (e.g. a partition whose replication factor is at or below
min.insync.replicas), or when a step keeps failing. A recovery pauses when the
broker's instance is gone, when starts keep failing, or when log recovery
stalls. Until someone decides, it touches nothing. skip is only allowed at a
roll's gate, before the broker was touched. Without --operation the decision
goes to the running roll, else to the first recovery that waits.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{workflows.DecisionResume, workflows.DecisionSkip, workflows.DecisionAbort},
		RunE: func(cmd *cobra.Command, args []string) error {
			action := args[0]
			if action != workflows.DecisionResume && action != workflows.DecisionSkip && action != workflows.DecisionAbort {
				return exitError{exitBadInput, fmt.Errorf("unknown decision %q: want resume, skip or abort", action)}
			}
			return withCluster(cmd, g, cluster, func(ctx context.Context, c client.Client) error {
				p, err := app.Decide(ctx, c, cluster, operation, workflows.Decision{Action: action, By: by, Reason: reason})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: broker %d was paused at %q (%s)\n", action, p.Broker, p.Step, p.Reason)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id")
	cmd.Flags().StringVar(&by, "by", defaultRequester(), "who decides (recorded)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded)")
	cmd.Flags().StringVar(&operation, "operation", "", "the operation id to answer (see status), when several wait")
	return cmd
}
