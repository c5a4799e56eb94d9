package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/entity"
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
				rep, err := entity.Status(ctx, c, cluster)
				if err != nil {
					return err
				}
				return g.emit(cmd, rep, func(out io.Writer) { entity.RenderStatus(out, rep, entity.RenderOptions{History: history}) })
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id")
	cmd.Flags().IntVar(&history, "history", 5, "finished operations to show (newest first)")
	return cmd
}
