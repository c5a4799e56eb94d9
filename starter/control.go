package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/entity"
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
				p, err := entity.Pause(ctx, c, cluster, workflows.PauseRequest{By: by, Reason: reason})
				if err != nil {
					return err
				}
				return g.emit(cmd, controlAnswer{Cluster: cluster, Paused: &p}, func(out io.Writer) {
					fmt.Fprintf(out, "paused %s (by %s at %s): no queued operation starts until `starter resume --cluster %s`\n",
						cluster, p.By, entity.Clock(p.Since), cluster)
				})
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
				p, err := entity.Resume(ctx, c, cluster, workflows.ResumeRequest{By: by})
				if err != nil {
					return err
				}
				return g.emit(cmd, controlAnswer{Cluster: cluster, Resumed: &p}, func(out io.Writer) {
					fmt.Fprintf(out, "resumed %s (paused by %s since %s%s)\n", cluster, p.By, entity.Clock(p.Since), entity.Suffix(": ", p.Reason, ""))
				})
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
				op, err := entity.Cancel(ctx, c, cluster, workflows.CancelRequest{OperationID: args[0], By: by, Reason: reason})
				if err != nil {
					return err
				}
				return g.emit(cmd, op, func(out io.Writer) {
					if op.Status == workflows.StatusCancelled {
						fmt.Fprintf(out, "cancelled queued %s %s of %s\n", op.Kind, op.ID, cluster)
						return
					}
					fmt.Fprintf(out, "cancelling running %s %s of %s (workflow %s); `starter status --cluster %s` shows when it stopped\n",
						op.Kind, op.ID, cluster, op.WorkflowID, cluster)
				})
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id")
	cmd.Flags().StringVar(&by, "by", defaultRequester(), "who cancels (recorded)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded)")
	return cmd
}

// controlAnswer is pause's and resume's --json answer.
type controlAnswer struct {
	Cluster string                `json:"cluster"`
	Paused  *workflows.PauseState `json:"paused,omitempty"`
	// Resumed is the pause that was lifted.
	Resumed *workflows.PauseState `json:"resumed,omitempty"`
}
