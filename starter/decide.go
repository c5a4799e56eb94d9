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
		cluster, by, reason string
	)
	cmd := &cobra.Command{
		Use:   "decide --cluster ID resume|skip|abort",
		Short: "Answer a roll that paused for a human: resume (re-check or retry), skip the broker, or abort",
		Long: `A roll pauses when a gate stays shut past its deadline, when a gate can
never open (e.g. a partition whose replication factor is at or below
min.insync.replicas), or when a step keeps failing. Until someone decides, it
touches nothing. skip is only allowed at a gate, before the broker was touched.`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{workflows.DecisionResume, workflows.DecisionSkip, workflows.DecisionAbort},
		RunE: func(cmd *cobra.Command, args []string) error {
			action := args[0]
			if action != workflows.DecisionResume && action != workflows.DecisionSkip && action != workflows.DecisionAbort {
				return exitError{exitBadInput, fmt.Errorf("unknown decision %q: want resume, skip or abort", action)}
			}
			return withCluster(cmd, g, cluster, func(ctx context.Context, c client.Client) error {
				p, err := app.Decide(ctx, c, cluster, workflows.Decision{Action: action, By: by, Reason: reason})
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
	return cmd
}
