package devstack

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/telemetry"
	"github.com/kfleet/kfleet/workflows"
)

// Metrics is what the stack's Temporal client, and so its in-process
// worker, reports: the SDK's metrics, kfleet's workflows' own, and the Go
// runtime's.
type Metrics struct {
	Registry *prometheus.Registry
	// URL is where they are served (StackOptions.MetricsAddr); empty when
	// they are not.
	URL    string
	server *telemetry.Server
}

// startMetrics builds the stack's registry, serves it when asked, and
// returns the handler for its Temporal client. A registry is cheap, so a
// stack always has one: tests read it without serving it.
func (s *Stack) startMetrics() (client.MetricsHandler, error) {
	m := &Metrics{Registry: telemetry.NewRegistry()}
	h, err := telemetry.NewHandler(m.Registry, telemetry.Options{Help: workflows.MetricHelp()})
	if err != nil {
		return nil, err
	}
	if addr := s.opts.MetricsAddr; addr != "" {
		if m.server, err = telemetry.Listen(addr, m.Registry, s.opts.Log.With().Str("component", "metrics").Logger()); err != nil {
			return nil, err
		}
		m.URL = m.server.URL()
	}
	s.Metrics = m
	return h, nil
}

// closeMetrics stops serving the metrics.
func (s *Stack) closeMetrics() {
	if s.Metrics == nil || s.Metrics.server == nil {
		return
	}
	if err := s.Metrics.server.Close(); err != nil {
		s.opts.Log.Warn().Err(err).Msg("stop metrics endpoint")
	}
}
