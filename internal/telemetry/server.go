package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// MetricsPath is where a Server serves the exposition.
const MetricsPath = "/metrics"

// HTTPHandler serves g's metrics in the Prometheus exposition format. A
// collector that fails costs its own series, not the whole scrape, and is
// logged.
func HTTPHandler(g prometheus.Gatherer, log zerolog.Logger) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      errorLog{log},
		ErrorHandling: promhttp.ContinueOnError,
		// A scrape must not queue behind a slow one for ever.
		Timeout: 10 * time.Second,
	})
}

// errorLog adapts zerolog to promhttp's logger.
type errorLog struct{ log zerolog.Logger }

func (l errorLog) Println(v ...any) { l.log.Warn().Msg(fmt.Sprint(v...)) }

// Server serves MetricsPath over HTTP.
type Server struct {
	srv *http.Server
	url string
}

// Listen binds addr now, so a taken port fails the process at start
// rather than leaving it unscraped, and serves g's metrics there until
// Close.
func Listen(addr string, g prometheus.Gatherer, log zerolog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics endpoint on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle(MetricsPath, HTTPHandler(g, log))
	s := &Server{
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		url: "http://" + ln.Addr().String() + MetricsPath,
	}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error().Err(err).Str("addr", ln.Addr().String()).Msg("metrics endpoint stopped")
		}
	}()
	return s, nil
}

// URL is the address to scrape, e.g. http://127.0.0.1:9464/metrics.
func (s *Server) URL() string { return s.url }

// Close stops serving, letting a scrape in flight finish for a moment.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
