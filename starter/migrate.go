package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

const migrateLong = `The migration of a ZooKeeper cluster to KRaft (KIP-866) is one durable
operation that may last weeks: start runs its preflight (Kafka 3.9.x and
inter.broker.protocol.version 3.9 on every broker, /cluster/id known, no
leftover /migration znode, no upgrade pending) and then waits. Each phase
starts only when a second person approves it:

  1 controllers   provision the KRaft controllers in migration mode
  2 dual-write    roll the brokers with the migration flag; the KRaft
                  controller takes over and copies the metadata
  3 brokers-kraft roll the brokers to process.roles=broker
  4 finalize      roll the controllers without the migration flag: no undo

Until finalization, rollback undoes the phase the cluster is in and every
one before it, back to ZooKeeper. While migrating, the cluster's entity
refuses what the phase forbids (upgrades, metadata.version changes, adding
or removing brokers, deletion). A refused decision exits 2.`

func newMigrateCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate start|status|approve|rollback|abandon --cluster ID",
		Short: "Migrate a ZooKeeper cluster to KRaft, one approved phase at a time",
		Long:  migrateLong,
	}
	cmd.AddCommand(newMigrateStartCommand(g), newMigrateStatusCommand(g),
		newMigrateDecideCommand(g, workflows.MigrationApprove, "Approve the phase the migration waits for (a second person: not who started it)"),
		newMigrateDecideCommand(g, workflows.MigrationRollback, "Roll the cluster back to ZooKeeper from the phase it is in"),
		newMigrateDecideCommand(g, workflows.MigrationAbandon, "End the migration where it is (a later start resumes from the cluster's phase)"))
	return cmd
}

func newMigrateStartCommand(g *globalFlags) *cobra.Command {
	var in workflows.MigrationInput
	cmd := &cobra.Command{
		Use:   "start --cluster ID",
		Short: "Start a cluster's migration: its preflight runs at once, then it waits for phase 1's approval",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := workflows.MigrationParams{Phase: fleet.PhaseControllers, Controllers: in.Controllers, MetadataVersion: in.MetadataVersion, WaitTimeout: in.WaitTimeout}
			if err := workflows.CheckMigrationParams(p); err != nil {
				return exitError{exitBadInput, err}
			}
			return withCluster(cmd, g, in.Cluster, func(ctx context.Context, c client.Client) error {
				if _, err := entity.StartMigration(ctx, c, in); err != nil {
					return err
				}
				st, err := waitMigration(ctx, c, in.Cluster, func(st workflows.MigrationState) bool { return st.Status != workflows.MigrationPreflightStatus })
				if err != nil {
					return err
				}
				if err := g.emit(cmd, st, func(out io.Writer) { printMigration(out, st) }); err != nil {
					return err
				}
				if st.Status == workflows.MigrationRefused {
					return exitError{exitBadInput, fmt.Errorf("cluster %s: the migration was refused at preflight", in.Cluster)}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&in.Cluster, "cluster", "", "cluster id")
	cmd.Flags().StringVar(&in.RequestedBy, "by", defaultRequester(), "who asks (recorded; may not approve its phases)")
	cmd.Flags().IntVar(&in.Controllers, "controllers", 3, "KRaft controllers phase 1 provisions: 3 or 5")
	cmd.Flags().StringVar(&in.MetadataVersion, "metadata-version", workflows.MigrationMetadataVersion, "metadata.version the controllers are formatted with")
	cmd.Flags().DurationVar(&in.WaitTimeout, "wait-timeout", 10*time.Minute, "how long each phase waits for the cluster (quorum, takeover) before it fails")
	return cmd
}

func newMigrateStatusCommand(g *globalFlags) *cobra.Command {
	var cluster string
	cmd := &cobra.Command{
		Use:   "status --cluster ID",
		Short: "Show where a cluster's migration is",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCluster(cmd, g, cluster, func(ctx context.Context, c client.Client) error {
				st, err := entity.MigrationStatus(ctx, c, cluster)
				if err != nil {
					return err
				}
				return g.emit(cmd, st, func(out io.Writer) { printMigration(out, st) })
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id")
	return cmd
}

func newMigrateDecideCommand(g *globalFlags, action, short string) *cobra.Command {
	var (
		cluster string
		d       = workflows.MigrationDecision{Action: action}
		phase   int
		wait    bool
	)
	cmd := &cobra.Command{
		Use:   action + " --cluster ID",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d.Phase = fleet.MigrationPhase(phase)
			return withCluster(cmd, g, cluster, func(ctx context.Context, c client.Client) error {
				st, err := entity.DecideMigration(ctx, c, cluster, d)
				if err != nil {
					return err
				}
				if wait {
					steps := len(st.Steps)
					st, err = waitMigration(ctx, c, cluster, func(st workflows.MigrationState) bool {
						return st.Status != workflows.MigrationRunning && len(st.Steps) >= steps
					})
					if err != nil {
						return err
					}
				}
				if err := g.emit(cmd, st, func(out io.Writer) { printMigration(out, st) }); err != nil {
					return err
				}
				if wait && st.Error != "" {
					return exitError{exitFailed, fmt.Errorf("cluster %s: %s", cluster, st.Error)}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id")
	cmd.Flags().StringVar(&d.By, "by", defaultRequester(), "who decides (recorded)")
	cmd.Flags().StringVar(&d.Reason, "reason", "", "why (recorded)")
	if action == workflows.MigrationApprove {
		cmd.Flags().IntVar(&phase, "phase", 0, "the phase approved: the one the migration waits for (a stale approval is refused)")
	}
	if action != workflows.MigrationAbandon {
		cmd.Flags().BoolVar(&wait, "wait", false, "follow the step until it ends; exit 1 when it failed")
	}
	return cmd
}

// waitMigration polls the migration until done says so.
func waitMigration(ctx context.Context, c client.Client, cluster string, done func(workflows.MigrationState) bool) (workflows.MigrationState, error) {
	for {
		st, err := entity.MigrationStatus(ctx, c, cluster)
		if err == nil && done(st) {
			return st, nil
		}
		select {
		case <-ctx.Done():
			return st, fmt.Errorf("cluster %s: migration: %w (last error: %v)", cluster, ctx.Err(), err)
		case <-time.After(time.Second):
		}
	}
}

// printMigration is RenderMigration with the CLI's command to approve.
func printMigration(out io.Writer, st workflows.MigrationState) {
	entity.RenderMigration(out, st, fmt.Sprintf("starter migrate approve --cluster %s --phase %d", st.Cluster, int(st.Next)))
}
