package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/app"
	"github.com/kfleet/kfleet/workflows"
)

// newControlCommands are the cluster entity's controls: pause, resume and
// cancel. Exit codes: 0 done, 1 unexpected error, 2 bad input, an unknown
// cluster or a request the entity refused (nothing changed), 3 Temporal
// unreachable.
func newControlCommands(g *globalFlags) []*cobra.Command {
	return []*cobra.Command{newPauseCommand(g), newResumeCommand(g), newCancelCommand(g)}
}

func newPauseCommand(g *globalFlags) *cobra.Command {
	var cluster, by, reason string
	cmd := &cobra.Command{
		Use:   "pause --cluster ID",
		Short: "Pause a cluster: no queued operation starts until resume (a running one goes on)",
		Long: `Pauses the cluster's entity workflow (cluster/<id>): requests are still
admitted and queued, but none starts until someone resumes. An operation
already running goes on (cancel it to stop it). Pausing a paused cluster is
refused (exit 2).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCluster(cmd, g, cluster, func(ctx context.Context, c client.Client) error {
				p, err := app.Pause(ctx, c, cluster, workflows.PauseRequest{By: by, Reason: reason})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "paused %s (by %s at %s): no queued operation starts until `starter resume --cluster %s`\n",
					cluster, p.By, p.Since.Local().Format(time.DateTime), cluster)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id")
	cmd.Flags().StringVar(&by, "by", defaultRequester(), "who pauses (recorded)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded, shown in status)")
	return cmd
}

func newResumeCommand(g *globalFlags) *cobra.Command {
	var cluster, by string
	cmd := &cobra.Command{
		Use:   "resume --cluster ID",
		Short: "Resume a paused cluster: queued operations start again, in order",
		Long:  `Lifts a pause. Resuming a cluster that is not paused is refused (exit 2).`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCluster(cmd, g, cluster, func(ctx context.Context, c client.Client) error {
				p, err := app.Resume(ctx, c, cluster, workflows.ResumeRequest{By: by})
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "resumed %s (paused by %s since %s%s)\n",
					cluster, p.By, p.Since.Local().Format(time.DateTime), suffix(": ", p.Reason))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id")
	cmd.Flags().StringVar(&by, "by", defaultRequester(), "who resumes (recorded)")
	return cmd
}

func newCancelCommand(g *globalFlags) *cobra.Command {
	var cluster, by, reason string
	cmd := &cobra.Command{
		Use:   "cancel --cluster ID OPERATION_ID",
		Short: "Cancel an operation: a queued one is removed, the running one is asked to stop",
		Long: `Cancels an operation of the cluster's entity by its id (see starter status).
A queued operation is removed at once. The running one's workflow is
cancelled: it stops at its next step and the entity records it as cancelled.
An unknown or finished operation is refused (exit 2).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCluster(cmd, g, cluster, func(ctx context.Context, c client.Client) error {
				op, err := app.Cancel(ctx, c, cluster, workflows.CancelRequest{OperationID: args[0], By: by, Reason: reason})
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				if op.Status == workflows.StatusCancelled {
					fmt.Fprintf(out, "cancelled queued %s %s of %s\n", op.Kind, op.ID, cluster)
					return nil
				}
				fmt.Fprintf(out, "cancelling running %s %s of %s (workflow %s); `starter status --cluster %s` shows when it stopped\n",
					op.Kind, op.ID, cluster, op.WorkflowID, cluster)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id")
	cmd.Flags().StringVar(&by, "by", defaultRequester(), "who cancels (recorded)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded)")
	return cmd
}

// withCluster checks --cluster, dials Temporal and runs fn, mapping the
// errors scripts tell apart to exit codes.
func withCluster(cmd *cobra.Command, g *globalFlags, cluster string, fn func(context.Context, client.Client) error) error {
	if cluster == "" {
		return exitError{exitBadInput, errors.New("--cluster is required")}
	}
	ctx := cmd.Context()
	c, err := g.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	err = fn(ctx, c)
	if errors.Is(err, app.ErrUnknownCluster) || errors.Is(err, app.ErrRefused) || errors.Is(err, app.ErrNothingRunning) {
		return exitError{exitBadInput, err}
	}
	return err
}

func suffix(sep, s string) string {
	if s == "" {
		return ""
	}
	return sep + s
}
