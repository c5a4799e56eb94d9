package main

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/kfleet/kfleet/internal/logging"
)

type globalFlags struct {
	address   string
	namespace string
	// json prints each command's answer as one JSON document.
	json bool
	// secrets opens the secret source tenant handouts are fetched from
	// (tenant.go); nil: none is configured.
	secrets secretOpener
}

// dial connects to Temporal, failing fast with a clear message when it is
// not reachable.
func (g *globalFlags) dial(ctx context.Context) (client.Client, error) {
	opts, err := g.clientOptions()
	if err != nil {
		return nil, err
	}
	opts.Logger = logging.Temporal{Log: logging.Default().Level(3)} // warnings and up
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := client.DialContext(dctx, opts)
	if err != nil {
		return nil, exitError{exitUnreachable, fmt.Errorf("cannot reach Temporal at %s: %w (is `make run` running?)", opts.HostPort, err)}
	}
	return c, nil
}

// clientOptions are the SDK's environment configuration (envconfig:
// TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS or API key, a profile) with
// the flags over it.
func (g *globalFlags) clientOptions() (client.Options, error) {
	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return client.Options{}, exitError{exitBadInput, fmt.Errorf("temporal client options: %w", err)}
	}
	if g.address != "" {
		opts.HostPort = g.address
	}
	if g.namespace != "" {
		opts.Namespace = g.namespace
	}
	if opts.HostPort == "" {
		opts.HostPort = client.DefaultHostPort
	}
	if opts.Namespace == "" {
		opts.Namespace = client.DefaultNamespace
	}
	return opts, nil
}
