package overview

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/kfleet/kfleet/internal/telemetry"
	"github.com/kfleet/kfleet/workflows"
)

//go:embed web
var webFS embed.FS

// Config is what a Server needs.
type Config struct {
	// Lister reads Temporal's visibility in Namespace.
	Lister    Lister
	Namespace string
	// TemporalUI is the Temporal UI's base URL, for links ("" : none).
	TemporalUI string
	// Refresh is how often the server lists the fleet, and the page asks
	// the server (default 5s).
	Refresh time.Duration
	// Progress reads a running operation's progress, a few lines
	// (entity.OperationProgress); nil: the page shows none.
	Progress func(ctx context.Context, op workflows.Operation) []string
	Log      zerolog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Progress is asked only while somebody looked at the page within
// viewerWindow, for at most progressPerRefresh operations a refresh, each
// at most every other refresh (and never more often than
// minProgressEvery): the page's cost in queries is bounded by what runs,
// not by the fleet's size.
const (
	viewerWindow       = 30 * time.Second
	progressPerRefresh = 50
	minProgressEvery   = 4 * time.Second
	progressParallel   = 4
)

// Server serves the overview page, its snapshot and its metrics.
type Server struct {
	cfg    Config
	read   reader
	page   []byte
	viewed atomic.Int64 // unix nanoseconds of the last snapshot served

	mu        sync.Mutex
	snap      Snapshot
	body, gz  []byte
	etag      string
	refreshed time.Time
	progress  map[string]progressEntry // by operation id
	// firstSeen is when the server first saw a workflow waiting whose
	// memo lacks the time (paused before kfleet kept it).
	firstSeen map[string]time.Time

	registry *prometheus.Registry
	failures prometheus.Counter
}

type progressEntry struct {
	lines []string
	at    time.Time
}

// New checks cfg and builds a Server; Run keeps its snapshot fresh.
func New(cfg Config) (*Server, error) {
	if cfg.Lister == nil {
		return nil, errors.New("overview: a Temporal client (Lister) is required")
	}
	if cfg.Namespace == "" {
		return nil, errors.New("overview: a namespace is required")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	page, err := fs.ReadFile(webFS, "web/index.html")
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		read:      reader{list: cfg.Lister, namespace: cfg.Namespace, ui: strings.TrimRight(cfg.TemporalUI, "/")},
		page:      page,
		progress:  map[string]progressEntry{},
		firstSeen: map[string]time.Time{},
		registry:  prometheus.NewRegistry(),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: metricRefreshFailures, Help: MetricHelp()[metricRefreshFailures],
		}),
	}
	s.registry.MustRegister(s.failures, collector{s})
	s.publish(Snapshot{Clusters: []Cluster{}, Waiting: []Waiting{}, Findings: []FleetFinding{}, Error: "not read yet"})
	return s, nil
}

// Run refreshes the snapshot every Refresh until ctx ends.
func (s *Server) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Refresh)
	defer t.Stop()
	for {
		if err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Log.Warn().Err(err).Msg("overview: refresh failed; serving the previous snapshot")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Refresh lists the fleet once and publishes the snapshot; on failure the
// previous one stays, with the error.
func (s *Server) Refresh(ctx context.Context) error {
	now := s.cfg.Now()
	snap, err := s.read.read(ctx, now)
	if err != nil {
		s.failures.Inc()
		s.mu.Lock()
		prev := s.snap
		s.mu.Unlock()
		prev.Error = err.Error()
		s.publish(prev)
		return err
	}
	s.addProgress(ctx, &snap, now)
	s.mu.Lock()
	seen := make(map[string]time.Time, len(snap.Waiting))
	for i := range snap.Waiting {
		w := &snap.Waiting[i]
		if w.Since.IsZero() {
			w.Since = cmpTime(s.firstSeen[w.WorkflowID], now)
			seen[w.WorkflowID] = w.Since
		}
	}
	s.firstSeen, s.refreshed = seen, now
	s.mu.Unlock()
	s.publish(snap)
	return nil
}

// cmpTime is t, or def when t is zero.
func cmpTime(t, def time.Time) time.Time {
	if t.IsZero() {
		return def
	}
	return t
}

// addProgress attaches the running operations' progress: cached, asked
// anew while somebody looks, bounded per refresh.
func (s *Server) addProgress(ctx context.Context, snap *Snapshot, now time.Time) {
	if s.cfg.Progress == nil {
		return
	}
	looking := now.Sub(time.Unix(0, s.viewed.Load())) < viewerWindow
	every := max(2*s.cfg.Refresh, minProgressEvery)
	s.mu.Lock()
	cache := s.progress
	s.mu.Unlock()
	next := map[string]progressEntry{}
	type ask struct {
		op      workflows.Operation
		cluster int
	}
	var asks []ask
	for i := range snap.Clusters {
		c := &snap.Clusters[i]
		for _, op := range c.Operations {
			e, ok := cache[op.ID]
			if ok {
				next[op.ID] = e
			}
			if looking && (!ok || now.Sub(e.at) >= every) && len(asks) < progressPerRefresh {
				asks = append(asks, ask{workflows.Operation{ID: op.ID, Kind: op.Kind, WorkflowID: op.WorkflowID, Brokers: op.Brokers}, i})
			}
		}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	sem := make(chan struct{}, progressParallel)
	for _, a := range asks {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			lines := s.cfg.Progress(ctx, a.op)
			mu.Lock()
			next[a.op.ID] = progressEntry{lines: lines, at: now}
			mu.Unlock()
		}()
	}
	wg.Wait()
	for i := range snap.Clusters {
		c := &snap.Clusters[i]
		for _, op := range c.Operations {
			if e := next[op.ID]; len(e.lines) > 0 {
				if c.Progress == nil {
					c.Progress = map[string][]string{}
				}
				c.Progress[op.ID] = e.lines
			}
		}
	}
	s.mu.Lock()
	s.progress = next
	s.mu.Unlock()
}

// publish encodes snap once for every viewer: plain, gzipped, and its tag.
// The tag leaves out when the listing was read, so a fleet that did not
// change answers 304 and costs a viewer no download and no redraw.
func (s *Server) publish(snap Snapshot) {
	snap.RefreshMillis = s.cfg.Refresh.Milliseconds()
	generated := snap.Generated
	snap.Generated = time.Time{}
	unchanged, err := json.Marshal(snap)
	if err != nil {
		s.cfg.Log.Error().Err(err).Msg("overview: cannot encode the snapshot")
		return
	}
	sum := sha256.Sum256(unchanged)
	snap.Generated = generated
	body, err := json.Marshal(snap)
	if err != nil {
		s.cfg.Log.Error().Err(err).Msg("overview: cannot encode the snapshot")
		return
	}
	var gz bytes.Buffer
	w, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	_, _ = w.Write(body)
	_ = w.Close()
	s.mu.Lock()
	s.snap, s.body, s.gz, s.etag = snap, body, gz.Bytes(), `"`+hex.EncodeToString(sum[:12])+`"`
	s.mu.Unlock()
}

// Snapshot is the current snapshot.
func (s *Server) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap
}

// Handler serves the page, the snapshot, metrics and health; it accepts
// only GET and HEAD: the page changes nothing.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathPage+"{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		_, _ = w.Write(s.page)
	})
	mux.HandleFunc("GET "+PathSnapshot, s.serveSnapshot)
	mux.Handle("GET "+PathMetrics, telemetry.HTTPHandler(s.registry, s.cfg.Log))
	mux.HandleFunc("GET "+PathHealthz, func(w http.ResponseWriter, _ *http.Request) {
		s.mu.Lock()
		age := s.cfg.Now().Sub(s.refreshed)
		s.mu.Unlock()
		if age > 3*s.cfg.Refresh+10*time.Second {
			http.Error(w, "no successful listing for "+age.Round(time.Second).String(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

func (s *Server) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	s.viewed.Store(s.cfg.Now().UnixNano())
	s.mu.Lock()
	body, gz, etag := s.body, s.gz, s.etag
	s.mu.Unlock()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", etag)
	h.Set("Vary", "Accept-Encoding")
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		body = gz
	}
	_, _ = w.Write(body)
}

// Serve refreshes the snapshot and serves Handler on l until ctx ends,
// then lets the requests in flight finish.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go s.Run(ctx)
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(l) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
