package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"gopkg.in/yaml.v3"

	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

func newClusterCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Manage the clusters kfleet operates: register, list, status"}
	var file string
	register := &cobra.Command{
		Use:   "register --file SPEC.yaml",
		Short: "Register a cluster (or update its spec) by starting its entity workflow",
		Long: `Starts the cluster's entity workflow (cluster/<id>) with the spec, or hands
the spec to the running one: registering twice is safe. The spec is YAML:
id, bootstrap, zookeeper (with its chroot), brokers (id, instanceId, rack,
metricsUrl), health. An invalid spec exits 2 and starts nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := readSpec(file)
			if err != nil {
				return exitError{exitBadInput, err}
			}
			return withClient(cmd, g, func(ctx context.Context, c client.Client) error {
				if err := entity.RegisterCluster(ctx, c, spec); err != nil {
					return err
				}
				return g.emit(cmd, spec, func(out io.Writer) {
					fmt.Fprintf(out, "registered cluster %s (%d brokers)\n", spec.ID, len(spec.Brokers))
				})
			})
		},
	}
	register.Flags().StringVarP(&file, "file", "f", "", "cluster spec (YAML)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the registered clusters (running entity workflows, from Temporal's visibility)",
		Long: `Lists the clusters whose entity workflow runs, from Temporal's visibility
(eventually consistent: a cluster registered a moment ago may take a second
to show).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(cmd, g, func(ctx context.Context, c client.Client) error {
				cs, err := entity.ListClusters(ctx, c)
				if err != nil {
					return err
				}
				if cs == nil {
					cs = []entity.ClusterSummary{} // [] rather than null for scripts
				}
				return g.emit(cmd, cs, func(out io.Writer) {
					if len(cs) == 0 {
						fmt.Fprintln(out, "no cluster is registered (starter cluster register --file SPEC.yaml)")
						return
					}
					tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "CLUSTER\tENTITY WORKFLOW\tCURRENT RUN STARTED")
					for _, cl := range cs {
						fmt.Fprintf(tw, "%s\t%s\t%s (%s)\n", cl.ID, workflows.ClusterWorkflowID(cl.ID), entity.Clock(cl.StartedAt), entity.Ago(cl.StartedAt))
					}
					tw.Flush()
				})
			})
		},
	}
	cmd.AddCommand(register, list, newStatusCommand(g))
	return cmd
}

func readSpec(path string) (fleet.ClusterSpec, error) {
	var spec fleet.ClusterSpec
	if path == "" {
		return spec, errors.New("--file is required")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return spec, err
	}
	if err := yaml.Unmarshal(data, &spec); err != nil {
		return spec, fmt.Errorf("%s: %w", path, err)
	}
	return spec, spec.Validate()
}
