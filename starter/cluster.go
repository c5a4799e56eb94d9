package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"
	"gopkg.in/yaml.v3"

	"github.com/kfleet/kfleet/internal/app"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

func newClusterCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "cluster", Short: "Manage the clusters kfleet operates"}
	var file string
	register := &cobra.Command{
		Use:   "register --file SPEC.yaml",
		Short: "Register a cluster (or update its spec) by starting its entity workflow",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec, err := readSpec(file)
			if err != nil {
				return exitError{exitBadInput, err}
			}
			c, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			if err := app.RegisterCluster(cmd.Context(), c, spec); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registered cluster %s (%d brokers)\n", spec.ID, len(spec.Brokers))
			return nil
		},
	}
	register.Flags().StringVarP(&file, "file", "f", "", "cluster spec (YAML)")
	cmd.AddCommand(register)
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

func newStatusCommand(g *globalFlags) *cobra.Command {
	var cluster string
	cmd := &cobra.Command{
		Use:   "status --cluster ID",
		Short: "Show a cluster's entity: spec, running operations and their steps, queue, history, losses, health (JSON)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCluster(cmd, g, cluster, func(ctx context.Context, c client.Client) error {
				st, err := app.ClusterStatus(ctx, c, cluster)
				if err != nil {
					return err
				}
				out := struct {
					workflows.ClusterStatus
					// Progress is the running operation's own progress
					// (its step, broker, blockers, pause), when it answers.
					Progress any `json:"runningProgress,omitempty"`
					// UrgentProgress is each running recovery's or
					// expansion's progress, by operation id.
					UrgentProgress map[string]any `json:"urgentProgress,omitempty"`
				}{ClusterStatus: st}
				progress := func(workflowID string) (p any) {
					if v, err := c.QueryWorkflow(ctx, workflowID, "", workflows.QueryProgress); err == nil {
						_ = v.Get(&p)
					}
					return p
				}
				if st.Running != nil {
					out.Progress = progress(st.Running.WorkflowID)
				}
				for _, op := range st.Urgent {
					if out.UrgentProgress == nil {
						out.UrgentProgress = map[string]any{}
					}
					out.UrgentProgress[op.ID] = progress(op.WorkflowID)
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(out)
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id")
	return cmd
}
