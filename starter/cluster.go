package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/kfleet/kfleet/internal/app"
	"github.com/kfleet/kfleet/internal/fleet"
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
		Short: "Show a cluster's entity: spec, running operation, queue, history (JSON)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cluster == "" {
				return exitError{exitBadInput, errors.New("--cluster is required")}
			}
			c, err := g.dial(cmd.Context())
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := app.ClusterStatus(cmd.Context(), c, cluster)
			if err != nil {
				if errors.Is(err, app.ErrUnknownCluster) {
					return exitError{exitBadInput, err}
				}
				return err
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(st)
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id")
	return cmd
}
