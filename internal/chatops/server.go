package chatops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/kfleet/kfleet/internal/fleet"
)

// Routes the Server serves.
const (
	PathCommands    = "/slack/commands"
	PathInteractive = "/slack/interactive"
	PathHealth      = "/healthz"
)

// Defaults of Config.
const (
	DefaultQuickTimeout     = 2 * time.Second
	DefaultDecideTimeout    = 10 * time.Second
	DefaultProgressInterval = 20 * time.Second
	DefaultReplayCacheSize  = 100_000
	DefaultMaxBackground    = 256

	// slackAckLimit is how long Slack waits for an answer.
	slackAckLimit = 3 * time.Second
	// maxBody bounds a request body (an interaction carries the clicked
	// message, a few KiB).
	maxBody = 256 << 10
	// postTimeout bounds one post to a response_url.
	postTimeout = 10 * time.Second
	// shutdownGrace bounds Run's shutdown.
	shutdownGrace = 15 * time.Second
)

// Config configures a Server. SigningSecret, Policy and Backend are
// required; the zero value of every other field is a sensible default.
type Config struct {
	// SigningSecret is the Slack app's signing secret. Never logged.
	SigningSecret []byte
	Policy        *Policy
	Backend       Backend
	// Log receives one JSON line per request (who, what, outcome, how
	// long) and per background event. It never sees a secret, a
	// signature or a response_url.
	Log zerolog.Logger
	// HTTPClient posts follow-ups to response_urls (default: 10 s timeout,
	// no redirects).
	HTTPClient *http.Client
	// QuickTimeout bounds the backend calls made while Slack waits for the
	// answer (status, list, pause, resume, cleaner-check, propose); it
	// must leave room within Slack's 3 s.
	QuickTimeout time.Duration
	// DecideTimeout bounds the backend's Decide after a click (answered
	// through the response_url, so it may take longer).
	DecideTimeout time.Duration
	// FollowTimeout bounds how long an operation is followed (default: as
	// long as Slack keeps the response_url valid).
	FollowTimeout time.Duration
	// ProgressInterval is the least time between two progress posts of
	// one operation: Slack allows only MaxFollowUps posts, one of which is
	// kept for the final line.
	ProgressInterval time.Duration
	// ReplayCacheSize bounds the signatures remembered to refuse replays
	// (default 100,000: over 300 requests a second for 5 minutes). When
	// full, new requests are refused rather than a signature forgotten.
	ReplayCacheSize int
	// MaxBackground bounds the decisions and follows running at once.
	MaxBackground int
	// AllowHTTPResponseURLs lets response_urls be plain http (a local
	// Slack-compatible server); https only otherwise.
	AllowHTTPResponseURLs bool
	// Now is the clock signatures and response_url lifetimes are checked
	// against (default time.Now).
	Now func() time.Time
}

// minSecretLen guards against an empty or toy signing secret (Slack's are
// 32 hex characters).
const minSecretLen = 16

func (c *Config) setDefaults() error {
	var errs []error
	if len(c.SigningSecret) < minSecretLen {
		errs = append(errs, fmt.Errorf("signing secret: at least %d bytes are required", minSecretLen))
	}
	if c.Policy == nil {
		errs = append(errs, errors.New("policy is required"))
	}
	if c.Backend == nil {
		errs = append(errs, errors.New("backend is required"))
	}
	if c.QuickTimeout >= slackAckLimit {
		errs = append(errs, fmt.Errorf("quick timeout %v: must be under Slack's %v", c.QuickTimeout, slackAckLimit))
	}
	if c.HTTPClient == nil {
		c.HTTPClient = newFollowUpClient()
	}
	if c.QuickTimeout <= 0 {
		c.QuickTimeout = DefaultQuickTimeout
	}
	if c.DecideTimeout <= 0 {
		c.DecideTimeout = DefaultDecideTimeout
	}
	if c.FollowTimeout <= 0 {
		c.FollowTimeout = ResponseURLLifetime
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
	if c.ReplayCacheSize <= 0 {
		c.ReplayCacheSize = DefaultReplayCacheSize
	}
	if c.MaxBackground <= 0 {
		c.MaxBackground = DefaultMaxBackground
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return errors.Join(errs...)
}

// Server is the ChatOps HTTP server. It is safe for concurrent use.
type Server struct {
	cfg     Config
	log     zerolog.Logger
	verify  *verifier
	handler http.Handler
	http    *http.Server

	// Background work (decisions, follows) runs under ctx, which Shutdown
	// cancels; bg counts it, slots bounds it.
	ctx     context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex
	closing bool
	bg      sync.WaitGroup
	slots   chan struct{}
}

// NewServer checks cfg and returns a server ready to Serve (or to mount
// with Handler).
func NewServer(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("chatops: %w", err)
	}
	secret := append([]byte(nil), cfg.SigningSecret...)
	cfg.SigningSecret = nil // one copy, in the verifier
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:    cfg,
		log:    cfg.Log.With().Str("component", "chatops").Logger(),
		verify: &verifier{secret: secret, now: cfg.Now, seen: newReplayCache(cfg.ReplayCacheSize)},
		ctx:    ctx,
		cancel: cancel,
		slots:  make(chan struct{}, cfg.MaxBackground),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathCommands, s.handleCommand)
	mux.HandleFunc("POST "+PathInteractive, s.handleInteractive)
	mux.HandleFunc("GET "+PathHealth, func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	s.handler = mux
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          stdlog.New(s.log.With().Str("source", "net/http").Logger(), "", 0),
	}
	return s, nil
}

// Handler serves the routes: POST /slack/commands, POST /slack/interactive
// and GET /healthz.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves l until Shutdown, then returns nil.
func (s *Server) Serve(l net.Listener) error {
	s.log.Info().Str("addr", l.Addr().String()).Msg("chatops serving")
	if err := s.http.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("chatops: serve %s: %w", l.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting requests and waits for those in flight, then
// stops following operations (each follow says so in chat: the operations
// themselves go on) and waits for the background work, until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() { s.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, fmt.Errorf("chatops: background work still running: %w", ctx.Err()))
	}
	return err
}

// Run serves l until ctx ends, then shuts down (within 15 s).
func (s *Server) Run(ctx context.Context, l net.Listener) error {
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	var err error
	select {
	case err = <-served:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	err = errors.Join(err, s.Shutdown(sctx))
	if err == nil {
		err = <-served
	}
	return err
}

// spawn runs fn in the background unless the server is shutting down or
// MaxBackground things already run.
func (s *Server) spawn(fn func(ctx context.Context)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	select {
	case s.slots <- struct{}{}:
	default:
		return false
	}
	s.bg.Add(1)
	go func() {
		defer func() { <-s.slots; s.bg.Done() }()
		fn(s.ctx)
	}()
	return true
}

// record is what the log line of one request says.
type record struct {
	route       string
	user        User
	channel     string
	team        string
	verb        Verb
	cluster     string
	approvalID  string
	operationID string
	outcome     string
	err         error
}

// Outcomes of a request, as logged.
const (
	outcomeOK           = "ok"
	outcomeBadRequest   = "bad-request"
	outcomeRefused      = "refused"
	outcomeUnauthorized = "unauthorized"
	outcomeUnavailable  = "unavailable"
	outcomeIgnored      = "ignored"
	outcomeBusy         = "busy"
	// outcomeAccepted: a click handed to the background (its decision is
	// logged on its own line).
	outcomeAccepted = "accepted"
)

func (s *Server) logRecord(rec *record, took time.Duration) {
	ev := s.log.Info()
	switch rec.outcome {
	case outcomeUnavailable, outcomeBusy:
		ev = s.log.Error()
	case outcomeRefused, outcomeUnauthorized, outcomeBadRequest:
		ev = s.log.Warn()
	}
	ev.Str("route", rec.route).Str("user_id", rec.user.ID).Str("user_name", rec.user.Name).
		Str("channel", rec.channel).Str("team", rec.team)
	if rec.verb != "" {
		ev.Str("verb", string(rec.verb))
	}
	if rec.cluster != "" {
		ev.Str("cluster", rec.cluster)
	}
	if rec.approvalID != "" {
		ev.Str("approval", rec.approvalID)
	}
	if rec.operationID != "" {
		ev.Str("operation", rec.operationID)
	}
	if rec.err != nil {
		ev.AnErr("error", rec.err)
	}
	ev.Str("outcome", rec.outcome).Float64("ms", float64(took.Microseconds())/1000).Msg("chat request")
}

// readSigned reads a request's body, verifies its signature and decodes
// it as a form. On failure it answers the request and returns false.
func (s *Server) readSigned(w http.ResponseWriter, r *http.Request, route string) (url.Values, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		status := http.StatusBadRequest
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			status = http.StatusRequestEntityTooLarge
		}
		http.Error(w, "cannot read the request body", status)
		s.log.Warn().Str("route", route).Str("remote", r.RemoteAddr).AnErr("error", err).Msg("chat request refused")
		return nil, false
	}
	if err := s.verify.verify(r.Header, body); err != nil {
		status := http.StatusUnauthorized
		switch {
		case errors.Is(err, errReplayed):
			status = http.StatusConflict
		case errors.Is(err, errBusy):
			status = http.StatusServiceUnavailable
			w.Header().Set("Retry-After", "10")
		}
		http.Error(w, err.Error(), status)
		s.log.Warn().Str("route", route).Str("remote", r.RemoteAddr).Int("status", status).AnErr("error", err).Msg("chat request refused")
		return nil, false
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "the body is not a form", http.StatusBadRequest)
		s.log.Warn().Str("route", route).Str("remote", r.RemoteAddr).Msg("chat request refused: not a form")
		return nil, false
	}
	return form, true
}

func writeJSON(w http.ResponseWriter, m message) {
	body, err := json.Marshal(m)
	if err != nil { // cannot happen: message holds strings only
		http.Error(w, "encode reply", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

// slashRequest is a slash command as the server reads it.
type slashRequest struct {
	command     string // e.g. "/kafka"
	text        string
	user        User
	channel     string
	responseURL string
}

func (s *Server) handleCommand(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	form, ok := s.readSigned(w, r, "command")
	if !ok {
		return
	}
	if form.Get("ssl_check") == "1" { // Slack checking our certificate
		return
	}
	in := slashRequest{
		command:     commandName(form.Get("command")),
		text:        unescape(form.Get("text")),
		user:        User{ID: form.Get("user_id"), Name: form.Get("user_name")},
		channel:     form.Get("channel_id"),
		responseURL: form.Get("response_url"),
	}
	rec := &record{route: "command", user: in.user, channel: in.channel, team: form.Get("team_id"), outcome: outcomeOK}
	writeJSON(w, s.slash(r.Context(), in, rec))
	s.logRecord(rec, time.Since(start))
}

// commandName is the slash command as the workspace named it, for help.
func commandName(c string) string {
	if c == "" || len(c) > 32 || c[0] != '/' || strings.ContainsFunc(c[1:], func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) {
		return "/kafka"
	}
	return c
}

// slash answers a slash command. Nothing reaches the backend unless the
// command parsed and the policy allows it.
func (s *Server) slash(ctx context.Context, in slashRequest, rec *record) message {
	cmd, err := Parse(in.text)
	if err != nil {
		rec.outcome, rec.err = outcomeBadRequest, err
		return ephemeral(fmt.Sprintf(":warning: %s\nTry `%s help`.", escape(err.Error()), in.command))
	}
	rec.verb, rec.cluster = cmd.Verb, cmd.Cluster
	if cmd.Verb == VerbHelp {
		return ephemeral(helpText(in.command))
	}
	who, err := s.cfg.Policy.Authorize(in.user, cmd.Verb, cmd.Cluster, in.channel)
	if err != nil {
		rec.outcome, rec.err = outcomeUnauthorized, err
		return ephemeral(":no_entry: " + escape(err.Error()))
	}
	qctx, cancel := context.WithTimeout(ctx, s.cfg.QuickTimeout)
	defer cancel()
	switch {
	case cmd.Verb == VerbStatus:
		text, err := s.cfg.Backend.Status(qctx, cmd.Cluster)
		if err != nil {
			return s.failure(err, rec)
		}
		return ephemeral(fmt.Sprintf("*%s*\n%s", cmd.Cluster, codeBlock(text)))
	case cmd.Verb == VerbList:
		text, err := s.cfg.Backend.List(qctx)
		if err != nil {
			return s.failure(err, rec)
		}
		return ephemeral(codeBlock(text))
	case cmd.Verb.Destructive():
		return s.propose(qctx, cmd, in, who, rec)
	default:
		return s.run(qctx, cmd, in, who, rec)
	}
}

// run runs a non-destructive command now and follows the operation it
// started, if any.
func (s *Server) run(ctx context.Context, cmd Command, in slashRequest, who string, rec *record) message {
	text, opID, err := s.cfg.Backend.Run(ctx, cmd, who)
	if err != nil {
		return s.failure(err, rec)
	}
	rec.operationID = opID
	reply := inChannel(fmt.Sprintf("%s ran `%s`: %s", mention(in.user), escape(cmd.String()), escape(text)))
	if opID == "" {
		return reply
	}
	if err := checkResponseURL(in.responseURL, s.cfg.AllowHTTPResponseURLs); err != nil {
		s.log.Warn().Str("cluster", cmd.Cluster).Str("operation", opID).AnErr("error", err).Msg("cannot follow: no usable response_url")
		reply.Text += fmt.Sprintf("\n(not following operation `%s`: see `starter status --cluster %s`)", escape(opID), cmd.Cluster)
		return reply
	}
	rsp := newResponder(in.responseURL, s.cfg.HTTPClient, s.cfg.Now)
	if !s.spawn(func(ctx context.Context) { s.follow(ctx, rsp, cmd.Cluster, opID) }) {
		reply.Text += fmt.Sprintf("\n(too busy to follow operation `%s`: see `starter status --cluster %s`)", escape(opID), cmd.Cluster)
		return reply
	}
	reply.Text += fmt.Sprintf("\nFollowing operation `%s`: progress will be posted here.", escape(opID))
	return reply
}

// propose asks the backend to hold a destructive command until a second
// person approves it, and answers with the buttons to do so.
func (s *Server) propose(ctx context.Context, cmd Command, in slashRequest, who string, rec *record) message {
	approvers := s.cfg.Policy.Approvers(cmd.Verb, cmd.Cluster, in.channel, in.user)
	if len(approvers) == 0 {
		rec.outcome = outcomeRefused
		return ephemeral(fmt.Sprintf(":no_entry: nobody else may approve %s on cluster %s from this channel: the ChatOps policy must allow a second person", cmd.Verb, cmd.Cluster))
	}
	id, err := s.cfg.Backend.Propose(ctx, cmd, who, approvers)
	if err != nil {
		return s.failure(err, rec)
	}
	if !validApprovalID(id) {
		return s.failure(fmt.Errorf("backend returned a malformed approval id (%d bytes)", len(id)), rec)
	}
	rec.approvalID = id
	return approvalMessage(cmd, in.user, approvers, id)
}

// failure tells the person what a backend error means for them: a refusal
// is shown as such; anything else is kfleet being unavailable (logged).
func (s *Server) failure(err error, rec *record) message {
	rec.err = err
	if errors.Is(err, fleet.ErrRefused) || errors.Is(err, fleet.ErrUnknownCluster) {
		rec.outcome = outcomeRefused
		return ephemeral(":no_entry: " + escape(err.Error()))
	}
	rec.outcome = outcomeUnavailable
	return ephemeral(":hourglass: kfleet is unavailable, try again in a moment.")
}

func (s *Server) handleInteractive(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	form, ok := s.readSigned(w, r, "interactive")
	if !ok {
		return
	}
	rec := &record{route: "interactive", outcome: outcomeAccepted}
	defer func() { s.logRecord(rec, time.Since(start)) }()
	var in interaction
	if err := json.Unmarshal([]byte(form.Get("payload")), &in); err != nil {
		rec.outcome, rec.err = outcomeBadRequest, errors.New("payload is not JSON")
		http.Error(w, "payload: not JSON", http.StatusBadRequest)
		return
	}
	rec.user, rec.channel, rec.team = in.user(), in.channel(), in.Team.ID
	if in.Type != "block_actions" {
		rec.outcome = outcomeIgnored
		return
	}
	// The one action of ours; other apps' actions are not our business.
	i := -1
	for j, a := range in.Actions {
		if a.ActionID == ActionApprove || a.ActionID == ActionDeny {
			i = j
			break
		}
	}
	if i < 0 {
		rec.outcome = outcomeIgnored
		return
	}
	action := in.Actions[i]
	verb, cluster, ok := parseApprovalBlockID(action.BlockID)
	if !ok || !validApprovalID(action.Value) {
		rec.outcome = outcomeBadRequest
		http.Error(w, "not a kfleet approval button", http.StatusBadRequest)
		return
	}
	rec.verb, rec.cluster, rec.approvalID = verb, cluster, action.Value
	if err := checkResponseURL(in.ResponseURL, s.cfg.AllowHTTPResponseURLs); err != nil {
		rec.outcome, rec.err = outcomeBadRequest, err
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rsp := newResponder(in.ResponseURL, s.cfg.HTTPClient, s.cfg.Now)
	user := in.user()
	who, err := s.cfg.Policy.Authorize(user, verb, cluster, in.channel())
	if err != nil {
		rec.outcome, rec.err = outcomeUnauthorized, err
		s.spawn(func(ctx context.Context) {
			s.post(ctx, rsp, ephemeral(fmt.Sprintf(":no_entry: you cannot approve or deny this %s: %s", verb, escape(err.Error()))))
		})
		return
	}
	c := click{approvalID: action.Value, approve: action.ActionID == ActionApprove, user: user, who: who,
		verb: verb, cluster: cluster, original: in.originalText()}
	// Slack ignores what we answer a click with; the decision's outcome
	// goes to the response_url.
	if !s.spawn(func(ctx context.Context) { s.decide(ctx, rsp, c) }) {
		rec.outcome = outcomeBusy
		http.Error(w, "kfleet is busy, try again", http.StatusServiceUnavailable)
	}
}

// click is an authorized Approve or Deny.
type click struct {
	approvalID string
	approve    bool
	user       User
	who        string
	verb       Verb
	cluster    string
	original   string
}

// decide hands a click to the backend, says the outcome through the
// response_url and, once approved, follows the operation started.
func (s *Server) decide(ctx context.Context, rsp *responder, c click) {
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DecideTimeout)
	text, opID, err := s.cfg.Backend.Decide(dctx, c.approvalID, c.who, c.approve)
	cancel()
	logger := s.log.With().Str("approval", c.approvalID).Str("verb", string(c.verb)).Str("cluster", c.cluster).
		Str("user_id", c.user.ID).Str("user_name", c.user.Name).Bool("approve", c.approve).Logger()
	if err != nil {
		rec := &record{}
		m := s.failure(err, rec)
		logger.WithLevel(levelOf(rec.outcome)).AnErr("error", err).Str("outcome", rec.outcome).Msg("decision not taken")
		s.post(ctx, rsp, m)
		return
	}
	logger.Info().Str("operation", opID).Str("outcome", outcomeOK).Msg("decision taken")
	what := c.original
	if what == "" {
		what = fmt.Sprintf("`%s` of cluster `%s`", c.verb, c.cluster)
	}
	decision := ":no_entry_sign: *Denied* by " + mention(c.user)
	if c.approve {
		decision = ":white_check_mark: *Approved* by " + mention(c.user)
	}
	if text != "" {
		decision += ": " + escape(text)
	}
	// Replacing the message takes its buttons away.
	m := inChannel(what + "\n" + decision)
	m.ReplaceOriginal = true
	s.post(ctx, rsp, m)
	if c.approve && opID != "" {
		s.follow(ctx, rsp, c.cluster, opID)
	}
}

func levelOf(outcome string) zerolog.Level {
	if outcome == outcomeUnavailable {
		return zerolog.ErrorLevel
	}
	return zerolog.WarnLevel
}

// follow posts an operation's progress to the response_url, spaced by
// ProgressInterval and keeping one post for the final line, until the
// operation ends, FollowTimeout passes or the server shuts down.
func (s *Server) follow(ctx context.Context, rsp *responder, cluster, opID string) {
	logger := s.log.With().Str("cluster", cluster).Str("operation", opID).Logger()
	fctx, cancel := context.WithTimeout(ctx, s.cfg.FollowTimeout)
	defer cancel()
	var (
		mu       sync.Mutex // progress may be called from any goroutine
		lastLine string
		lastPost time.Time
	)
	final, err := s.cfg.Backend.Follow(fctx, cluster, opID, func(line string) {
		mu.Lock()
		defer mu.Unlock()
		if line == lastLine || rsp.remaining() <= 1 || time.Since(lastPost) < s.cfg.ProgressInterval {
			return
		}
		lastLine, lastPost = line, time.Now()
		s.post(fctx, rsp, inChannel(fmt.Sprintf("`%s` %s: %s", cluster, escape(opID), escape(line))))
	})
	switch {
	case err == nil:
		logger.Info().Msg("operation followed to its end")
		s.post(ctx, rsp, inChannel(fmt.Sprintf(":white_check_mark: `%s` %s: %s", cluster, escape(opID), escape(final))))
	case ctx.Err() != nil:
		// Shutting down: say so once, on a context of its own.
		logger.Info().Msg("stopped following: shutting down")
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		s.post(pctx, rsp, inChannel(fmt.Sprintf(":pause_button: kfleet's chat server is stopping and no longer follows %s on `%s`; the operation goes on (`starter status --cluster %s`).", escape(opID), cluster, cluster)))
	case fctx.Err() != nil:
		// The response_url has expired: nowhere to post.
		logger.Info().Dur("after", s.cfg.FollowTimeout).Msg("stopped following: follow timeout")
	default:
		logger.Warn().AnErr("error", err).Msg("operation ended in error")
		s.post(ctx, rsp, inChannel(fmt.Sprintf(":x: `%s` %s: %s", cluster, escape(opID), escape(err.Error()))))
	}
}

// post sends m to the response_url, logging (never the URL) what fails.
func (s *Server) post(ctx context.Context, rsp *responder, m message) {
	pctx, cancel := context.WithTimeout(ctx, postTimeout)
	defer cancel()
	if err := rsp.post(pctx, m); err != nil {
		s.log.Warn().AnErr("error", err).Msg("follow-up not posted")
	}
}

func codeBlock(text string) string {
	text = strings.TrimRight(text, "\n")
	if text == "" {
		text = "(nothing)"
	}
	// A ``` inside would end the block early.
	return "```\n" + escape(strings.ReplaceAll(text, "```", "'''")) + "\n```"
}

func helpText(command string) string {
	var b strings.Builder
	// Usages hold < and >, which Slack reads as markup unless escaped.
	fmt.Fprintf(&b, "*kfleet* — safe operations on Kafka clusters. Usage: `%s %s`\n", command, escape("<verb> …"))
	for _, v := range verbSpecs {
		fmt.Fprintf(&b, "• `%s` — %s\n", escape(v.usage), v.does)
	}
	var held []string
	for _, v := range verbSpecs {
		if v.verb.Destructive() {
			held = append(held, string(v.verb))
		}
	}
	fmt.Fprintf(&b, "%s are not run at once: they wait for a second person to press Approve.", strings.Join(held, ", "))
	return b.String()
}
