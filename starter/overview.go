package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/logging"
)

func newOverviewCommand(g *globalFlags) *cobra.Command {
	var (
		listen     string
		temporalUI string
		refresh    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "overview",
		Short: "Serve the fleet overview page: every cluster's brokers, disk, cleaner, heap, operations and findings",
		Long: `Serves the fleet overview over HTTP: / is the page (it updates itself),
/api/overview the snapshot behind it (JSON), /metrics the fleet-wide gauges
(clusters by health, workflows waiting for a human and since when) and
/healthz.

It reads Temporal's visibility only: each cluster's entity keeps its summary
in its memo, so two thousand clusters are two listings a refresh. A running
operation's step is a query, asked only while somebody looks at the page.
The page changes nothing; it points at the chat commands that do, which the
ChatOps server authorizes.
Exit codes: 0 stopped (Ctrl-C), 2 bad flags, 3 Temporal unreachable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			opts, err := g.clientOptions()
			if err != nil {
				return err
			}
			c, err := g.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			// The same server the local stack runs (devstack.StartOverview).
			ov, err := devstack.StartOverview(c, opts.Namespace, listen, temporalUI, refresh, logging.Default())
			if err != nil {
				return exitError{exitBadInput, err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "kfleet fleet overview on %s (namespace %s, every %s)\n", ov.URL, opts.Namespace, refresh)
			<-ctx.Done()
			return ov.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8080", "address to serve on")
	f.StringVar(&temporalUI, "temporal-ui", "http://localhost:8233", "the Temporal UI's base URL, for links to workflows (empty: no links)")
	f.DurationVar(&refresh, "refresh", 5*time.Second, "how often to list the fleet (and the page to update)")
	return cmd
}
