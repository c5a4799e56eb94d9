package devstack

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/overview"
	"github.com/kfleet/kfleet/workflows"
)

// Overview is the fleet overview page, as `starter overview` serves it.
type Overview struct {
	// URL is the page's.
	URL    string
	Server *overview.Server

	cancel context.CancelFunc
	done   chan error
}

// StartOverview serves the fleet overview of c's namespace on addr (":0"
// for a free port), listing every refresh, with links into temporalUI.
func StartOverview(c client.Client, namespace, addr, temporalUI string, refresh time.Duration, log zerolog.Logger) (*Overview, error) {
	srv, err := overview.New(overview.Config{
		Lister: c, Namespace: namespace, TemporalUI: temporalUI, Refresh: refresh, Log: log,
		Progress: func(ctx context.Context, op workflows.Operation) []string {
			return entity.OperationProgress(ctx, c, op)
		},
	})
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("overview: listen on %s: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	o := &Overview{URL: "http://" + l.Addr().String() + "/", Server: srv, cancel: cancel, done: make(chan error, 1)}
	go func() { o.done <- srv.Serve(ctx, l) }()
	return o, nil
}

// Close stops the refreshes and the server.
func (o *Overview) Close() error {
	o.cancel()
	return <-o.done
}
