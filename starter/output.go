package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/schedules"
)

// emit prints a command's answer: v as indented JSON with --json (one
// document, for scripts), else what human writes.
func (g *globalFlags) emit(cmd *cobra.Command, v any, human func(io.Writer)) error {
	out := cmd.OutOrStdout()
	if g.json {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	human(out)
	return nil
}

// progressOut is where a command that follows an operation prints its
// progress: nowhere with --json, whose stdout is one document.
func (g *globalFlags) progressOut(cmd *cobra.Command) io.Writer {
	if g.json {
		return io.Discard
	}
	return cmd.OutOrStdout()
}

// checkCluster checks --cluster before Temporal is dialled, so a typo is
// bad input, not an unknown cluster.
func checkCluster(cluster string) error {
	switch {
	case cluster == "":
		return exitError{exitBadInput, errors.New("--cluster is required")}
	case !fleet.ValidClusterID(cluster):
		return exitError{exitBadInput, fmt.Errorf("--cluster %q: want 1-63 characters of a-z, 0-9 and '-'", cluster)}
	}
	return nil
}

// withCluster checks --cluster, dials Temporal and runs fn, mapping the
// errors scripts tell apart to exit codes.
func withCluster(cmd *cobra.Command, g *globalFlags, cluster string, fn func(context.Context, client.Client) error) error {
	if err := checkCluster(cluster); err != nil {
		return err
	}
	return withClient(cmd, g, fn)
}

// withClient dials Temporal and runs fn, mapping its errors to exit codes.
func withClient(cmd *cobra.Command, g *globalFlags, fn func(context.Context, client.Client) error) error {
	ctx := cmd.Context()
	c, err := g.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return classify(fn(ctx, c))
}

// classify gives an error the exit code scripts rely on: 2 for what was
// refused before anything started (an unknown cluster, schedule or
// approval, a request the entity's validator refused, nothing waiting for
// a decision, an invalid schedule), 3 when Temporal stopped answering,
// else 1.
func classify(err error) error {
	var ee exitError
	var nf *serviceerror.NotFound
	var unavailable *serviceerror.Unavailable
	switch {
	case err == nil || errors.As(err, &ee):
		return err
	case errors.Is(err, fleet.ErrUnknownCluster), errors.Is(err, fleet.ErrRefused),
		errors.Is(err, entity.ErrNothingWaiting), errors.Is(err, schedules.ErrBadSchedule),
		errors.Is(err, schedules.ErrUnknownSchedule), errors.As(err, &nf):
		return exitError{exitBadInput, err}
	case errors.As(err, &unavailable):
		return exitError{exitUnreachable, err}
	}
	return err
}
