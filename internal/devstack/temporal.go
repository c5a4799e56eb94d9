package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
)

// TemporalOptions configures a Temporal dev server.
type TemporalOptions struct {
	// Binary is the temporal CLI (built into ./bin by `make tools`).
	Binary string
	// Dir holds the sqlite database and the server log.
	Dir string
	// Port is the frontend gRPC port and UIPort the web UI's; 0 picks free
	// ports.
	Port, UIPort int
	// SearchAttributes are registered at start, as NAME=TYPE.
	SearchAttributes []string
	// MetricsPort serves the server's Prometheus metrics (its `action`
	// counter is what Temporal Cloud bills); 0 serves none.
	MetricsPort int
	Log         zerolog.Logger
}

// Temporal is a running `temporal server start-dev`.
type Temporal struct {
	// Addr is the frontend's host:port; UI the web UI's URL.
	Addr, UI string
	proc     *process
	// opts are the options it runs with, ports resolved, for Restart.
	opts TemporalOptions
}

// StartTemporal starts a dev server with a sqlite file under opts.Dir and
// returns once its frontend answers.
func StartTemporal(ctx context.Context, opts TemporalOptions) (*Temporal, error) {
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("temporal: resolve dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("temporal: %w", err)
	}
	// The server runs in dir: a relative binary path would resolve there.
	if opts.Binary, err = filepath.Abs(opts.Binary); err != nil {
		return nil, fmt.Errorf("temporal: resolve binary: %w", err)
	}
	if _, err := os.Stat(opts.Binary); err != nil {
		return nil, fmt.Errorf("temporal: CLI not found at %s (run `make tools`): %w", opts.Binary, err)
	}
	opts.Dir = dir
	// The dev server picks free ports of its own for its internal
	// services (HTTP API, history, matching …); another process can take
	// one between its check and its bind, and the server then dies at
	// start. When kfleet chose the ports too, a fresh set is worth a retry.
	chosen := opts.Port == 0 || opts.UIPort == 0
	const attempts = 3
	for attempt := 1; ; attempt++ {
		o := opts
		for _, p := range []*int{&o.Port, &o.UIPort} {
			if *p == 0 {
				if *p, err = FreePort(); err != nil {
					return nil, fmt.Errorf("temporal: %w", err)
				}
			}
		}
		t := &Temporal{
			Addr: fmt.Sprintf("127.0.0.1:%d", o.Port),
			UI:   fmt.Sprintf("http://127.0.0.1:%d", o.UIPort),
			opts: o,
		}
		err := t.start(ctx)
		if err == nil {
			opts.Log.Info().Str("addr", t.Addr).Str("ui", t.UI).Msg("temporal dev server started")
			return t, nil
		}
		if !chosen || attempt == attempts || !errors.Is(err, errExitedEarly) || ctx.Err() != nil {
			return nil, err
		}
		opts.Log.Warn().Err(err).Int("attempt", attempt).Msg("temporal dev server died at start; retrying on fresh ports")
	}
}

func (t *Temporal) start(ctx context.Context) error {
	logPath := filepath.Join(t.opts.Dir, "temporal.log")
	proc, err := startProcess("temporal", t.opts.Dir, logPath, nil, t.argv()...)
	if err != nil {
		return err
	}
	t.proc = proc
	if err := t.waitReady(ctx); err != nil {
		_ = t.Stop()
		return fmt.Errorf("temporal on %s: %w\n--- %s (tail) ---\n%s", t.Addr, err, logPath, tail(logPath, logTailBytes))
	}
	if err := t.ensureSearchAttributes(ctx); err != nil {
		_ = t.Stop()
		return err
	}
	return nil
}

// Restart stops the server and starts it again on the same ports and
// database, as an operator restarting Temporal would: workflows resume from
// their persisted histories, and clients reconnect by themselves.
func (t *Temporal) Restart(ctx context.Context) error {
	if err := t.Stop(); err != nil {
		return err
	}
	if err := t.start(ctx); err != nil {
		return err
	}
	t.opts.Log.Info().Str("addr", t.Addr).Msg("temporal dev server restarted")
	return nil
}

func (t *Temporal) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	for {
		if err := t.proc.exitedEarly(); err != nil {
			return err
		}
		c, err := client.DialContext(ctx, client.Options{HostPort: t.Addr, Logger: quietTemporalLogger{}})
		if err == nil {
			// The default namespace is registered shortly after the
			// frontend answers.
			_, err = c.WorkflowService().DescribeNamespace(ctx, describeDefaultNamespace())
			c.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (t *Temporal) argv() []string {
	o := t.opts
	argv := []string{o.Binary, "server", "start-dev",
		"--ip", "127.0.0.1",
		"--port", strconv.Itoa(o.Port),
		"--ui-port", strconv.Itoa(o.UIPort),
		"--db-filename", filepath.Join(o.Dir, "temporal.db"),
		"--log-level", "warn",
	}
	for _, sa := range o.SearchAttributes {
		argv = append(argv, "--search-attribute", sa)
	}
	if o.MetricsPort > 0 {
		argv = append(argv, "--metrics-port", strconv.Itoa(o.MetricsPort))
	}
	return argv
}

// Stop stops the server; safe to call twice.
func (t *Temporal) Stop() error { return t.proc.stop(10 * time.Second) }

func describeDefaultNamespace() *workflowservice.DescribeNamespaceRequest {
	return &workflowservice.DescribeNamespaceRequest{Namespace: "default"}
}

// quietTemporalLogger drops the SDK's own logs while probing readiness.
type quietTemporalLogger struct{}

func (quietTemporalLogger) Debug(string, ...any) {}
func (quietTemporalLogger) Info(string, ...any)  {}
func (quietTemporalLogger) Warn(string, ...any)  {}
func (quietTemporalLogger) Error(string, ...any) {}

// ensureSearchAttributes registers the search attributes the server lacks.
// `start-dev --search-attribute` registers them only in a new database: a
// state folder from an older kfleet (a second `make run`) would lack the
// attributes added since, and a workflow upserting one would fail its
// workflow tasks.
func (t *Temporal) ensureSearchAttributes(ctx context.Context) error {
	if len(t.opts.SearchAttributes) == 0 {
		return nil
	}
	c, err := client.DialContext(ctx, client.Options{HostPort: t.Addr, Logger: quietTemporalLogger{}})
	if err != nil {
		return fmt.Errorf("temporal: search attributes: %w", err)
	}
	defer c.Close()
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: "default"})
	if err != nil {
		return fmt.Errorf("temporal: list search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for _, sa := range t.opts.SearchAttributes {
		name, typ, ok := strings.Cut(sa, "=")
		if !ok {
			return fmt.Errorf("temporal: search attribute %q: want NAME=TYPE", sa)
		}
		if _, ok := have.GetCustomAttributes()[name]; ok {
			continue
		}
		v, ok := enumspb.IndexedValueType_value["INDEXED_VALUE_TYPE_"+strings.ToUpper(typ)]
		if !ok {
			return fmt.Errorf("temporal: search attribute %q: unknown type %q", name, typ)
		}
		missing[name] = enumspb.IndexedValueType(v)
	}
	if len(missing) == 0 {
		return nil
	}
	if _, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: "default", SearchAttributes: missing,
	}); err != nil {
		return fmt.Errorf("temporal: add search attributes: %w", err)
	}
	t.opts.Log.Info().Int("added", len(missing)).Msg("search attributes registered on an existing state")
	return nil
}
