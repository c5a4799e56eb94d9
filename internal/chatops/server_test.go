package chatops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/chatops"
	"github.com/kfleet/kfleet/internal/fleet"
)

const testSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// fakeBackend records what it is asked and mimics the approval workflow's
// validator: no self-approval, no unknown approver, one decision.
type fakeBackend struct {
	mu        sync.Mutex
	calls     []string
	decisions []string
	approvals map[string]*fakeApproval
	// err fails every quick call; delay slows them (bounded by ctx).
	err   error
	delay time.Duration
	// runOperation is the operation Run starts ("" for none).
	runOperation string
	// progress are the lines Follow reports; block makes it wait for its
	// context instead of ending.
	progress []string
	block    bool
}

type fakeApproval struct {
	cmd       chatops.Command
	requester string
	approvers []string
	status    string
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{approvals: map[string]*fakeApproval{}}
}

func (b *fakeBackend) record(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, fmt.Sprintf(format, args...))
}

func (b *fakeBackend) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

func (b *fakeBackend) Decisions() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.decisions)
}

func (b *fakeBackend) quick(ctx context.Context) error {
	if b.delay > 0 {
		select {
		case <-time.After(b.delay):
		case <-ctx.Done():
			return fmt.Errorf("query cluster entity: %w", ctx.Err())
		}
	}
	return b.err
}

func (b *fakeBackend) Status(ctx context.Context, cluster string) (string, error) {
	b.record("status %s", cluster)
	if err := b.quick(ctx); err != nil {
		return "", err
	}
	return fmt.Sprintf("cluster %s: 3 brokers <all up> & healthy\nrunning: none", cluster), nil
}

func (b *fakeBackend) List(ctx context.Context) (string, error) {
	b.record("list")
	if err := b.quick(ctx); err != nil {
		return "", err
	}
	return "local-a  healthy\nlocal-b  paused", nil
}

func (b *fakeBackend) Run(ctx context.Context, cmd chatops.Command, user string) (string, string, error) {
	b.record("run %s by %s", cmd, user)
	if err := b.quick(ctx); err != nil {
		return "", "", err
	}
	if b.runOperation != "" {
		return "cleaner check " + b.runOperation + " queued", b.runOperation, nil
	}
	return cmd.Cluster + " " + string(cmd.Verb) + "d", "", nil
}

func (b *fakeBackend) Propose(ctx context.Context, cmd chatops.Command, user string, approvers []string) (string, error) {
	b.record("propose %s by %s to %s", cmd, user, strings.Join(approvers, ","))
	if err := b.quick(ctx); err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	id := fmt.Sprintf("cluster/%s/approval/%d", cmd.Cluster, len(b.approvals)+1)
	b.approvals[id] = &fakeApproval{cmd: cmd, requester: user, approvers: approvers, status: "pending"}
	return id, nil
}

func (b *fakeBackend) Decide(_ context.Context, approvalID, user string, approve bool) (string, string, error) {
	b.record("decide %s by %s approve=%t", approvalID, user, approve)
	b.mu.Lock()
	defer b.mu.Unlock()
	a, ok := b.approvals[approvalID]
	switch {
	case !ok:
		return "", "", fmt.Errorf("approval %s: %w: no such approval", approvalID, fleet.ErrRefused)
	case a.status != "pending":
		return "", "", fmt.Errorf("%w: this %s of %s is already %s", fleet.ErrRefused, a.cmd.Verb, a.cmd.Cluster, a.status)
	case user == a.requester:
		return "", "", fmt.Errorf("%w: %s asked for this %s: a second, different person must approve it", fleet.ErrRefused, user, a.cmd.Verb)
	case !slices.Contains(a.approvers, user):
		return "", "", fmt.Errorf("%w: %s may not approve a %s of %s", fleet.ErrRefused, user, a.cmd.Verb, a.cmd.Cluster)
	}
	a.status = "denied"
	if approve {
		a.status = "approved"
	}
	b.decisions = append(b.decisions, fmt.Sprintf("%s %s %s", user, a.status, approvalID))
	if !approve {
		return "nothing was started", "", nil
	}
	return "rolling restart op-7 queued", "op-7", nil
}

func (b *fakeBackend) Follow(ctx context.Context, cluster, operationID string, progress func(string)) (string, error) {
	b.record("follow %s %s", cluster, operationID)
	for _, line := range b.progress {
		progress(line)
	}
	if b.block {
		<-ctx.Done()
		return "", ctx.Err()
	}
	return "rolling restart " + operationID + " completed", nil
}

// slackPost is what a response_url received.
type slackPost struct {
	Path            string
	ResponseType    string `json:"response_type"`
	Text            string `json:"text"`
	ReplaceOriginal *bool  `json:"replace_original"`
}

// fakeSlack serves response_urls over TLS, as Slack does.
type fakeSlack struct {
	*httptest.Server
	posts chan slackPost
}

func newFakeSlack(t testing.TB) *fakeSlack {
	s := &fakeSlack{posts: make(chan slackPost, 100)}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p slackPost
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "invalid_payload", http.StatusBadRequest)
			return
		}
		p.Path = r.URL.Path
		s.posts <- p
	}))
	t.Cleanup(s.Close)
	return s
}

// responseURL is a response_url whose path is a secret, as Slack's are.
func (s *fakeSlack) responseURL(name string) string {
	return s.URL + "/actions/T0001/" + name + "/s3cr3t-" + name
}

// next waits for the next post to path.
func (s *fakeSlack) next(t testing.TB, path string) slackPost {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case p := <-s.posts:
			if p.Path == path {
				return p
			}
			s.posts <- p // someone else's: put it back
			time.Sleep(time.Millisecond)
		case <-timeout:
			t.Fatalf("no post to %s", path)
		}
	}
}

// syncBuffer collects log lines from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	server  *chatops.Server
	url     string
	backend *fakeBackend
	slack   *fakeSlack
	logs    *syncBuffer
	now     func() time.Time
}

func newHarness(t testing.TB, tweak func(*chatops.Config)) *harness {
	t.Helper()
	h := &harness{backend: newFakeBackend(), slack: newFakeSlack(t), logs: &syncBuffer{}, now: time.Now}
	cfg := chatops.Config{
		SigningSecret:    []byte(testSecret),
		Policy:           mustPolicy(t, testPolicy),
		Backend:          h.backend,
		Log:              zerolog.New(h.logs),
		HTTPClient:       h.slack.Client(),
		QuickTimeout:     500 * time.Millisecond,
		ProgressInterval: time.Nanosecond,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := chatops.NewServer(cfg)
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, srv.Shutdown(ctx))
	})
	h.server, h.url = srv, ts.URL
	return h
}

// request builds a request to path signed at ts under secret.
func request(t testing.TB, base, path, body, secret string, ts time.Time) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(chatops.HeaderTimestamp, strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set(chatops.HeaderSignature, chatops.Sign([]byte(secret), ts.Unix(), []byte(body)))
	return req
}

func do(t testing.TB, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func slashBody(u chatops.User, channel, text, responseURL string) string {
	return url.Values{
		"token": {"legacy-verification-token"}, "team_id": {"T0001"}, "channel_id": {channel}, "channel_name": {"kafka-ops"},
		"user_id": {u.ID}, "user_name": {u.Name}, "command": {"/kafka"}, "text": {text},
		"response_url": {responseURL}, "trigger_id": {"13345224609.738474920.8088930838d88f008e0"},
	}.Encode()
}

// reply is a slash command's immediate answer.
type reply struct {
	ResponseType    string `json:"response_type"`
	Text            string `json:"text"`
	ReplaceOriginal bool   `json:"replace_original"`
	Blocks          []struct {
		Type     string `json:"type"`
		BlockID  string `json:"block_id"`
		Elements []struct {
			Type     string `json:"type"`
			ActionID string `json:"action_id"`
			Value    string `json:"value"`
			Style    string `json:"style"`
		} `json:"elements"`
	} `json:"blocks"`
}

// slash runs a signed slash command and decodes the answer.
func (h *harness) slash(t testing.TB, u chatops.User, channel, text string) reply {
	t.Helper()
	status, body := do(t, request(t, h.url, chatops.PathCommands, slashBody(u, channel, text, h.slack.responseURL("cmd")), testSecret, h.now()))
	require.Equal(t, http.StatusOK, status, body)
	var r reply
	require.NoError(t, json.Unmarshal([]byte(body), &r), body)
	return r
}

func clickBody(t testing.TB, u chatops.User, channel, actionID, blockID, value, responseURL string) string {
	t.Helper()
	payload, err := json.Marshal(map[string]any{
		"type":         "block_actions",
		"user":         map[string]string{"id": u.ID, "username": u.Name, "name": u.Name, "team_id": "T0001"},
		"team":         map[string]string{"id": "T0001"},
		"channel":      map[string]string{"id": channel, "name": "kafka-ops"},
		"container":    map[string]any{"type": "message", "channel_id": channel},
		"response_url": responseURL,
		"trigger_id":   "123.456.abc",
		"message": map[string]any{"blocks": []map[string]any{
			{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": "<@U0ALICE> asks for `restart local-a`"}},
		}},
		"actions": []map[string]string{{"type": "button", "action_id": actionID, "block_id": blockID, "value": value}},
	})
	require.NoError(t, err)
	return url.Values{"payload": {string(payload)}}.Encode()
}

// click sends a signed click and returns its HTTP status.
func (h *harness) click(t testing.TB, u chatops.User, channel, actionID, blockID, value, responseURL string) int {
	t.Helper()
	status, body := do(t, request(t, h.url, chatops.PathInteractive, clickBody(t, u, channel, actionID, blockID, value, responseURL), testSecret, h.now()))
	require.Equal(t, http.StatusOK, status, body)
	return status
}

func TestSlashStatus(t *testing.T) {
	h := newHarness(t, nil)
	r := h.slash(t, carol, "CRANDOM", "status local-a")
	assert.Equal(t, "ephemeral", r.ResponseType)
	assert.Contains(t, r.Text, "cluster local-a: 3 brokers &lt;all up&gt; &amp; healthy", "backend text is escaped")
	assert.Equal(t, []string{"status local-a"}, h.backend.Calls())
}

func TestSlashQuickVerbs(t *testing.T) {
	tests := []struct {
		user            chatops.User
		text            string
		call            string
		responseType    string
		replyContaining string
	}{
		{bob, "list", "list", "ephemeral", "local-b  paused"},
		{alice, "pause local-a change freeze", "run pause local-a change freeze by U0ALICE", "in_channel", "<@U0ALICE> ran `pause local-a change freeze`: local-a paused"},
		{bob, "resume local-a", "run resume local-a by bob", "in_channel", "local-a resumed"},
		{alice, "help", "", "ephemeral", "`upgrade &lt;cluster&gt; &lt;version&gt;`"},
		{alice, "", "", "ephemeral", "`restart &lt;cluster&gt; [brokers=1,2] [batch=N]`"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			h := newHarness(t, nil)
			r := h.slash(t, tt.user, "COPS", tt.text)
			assert.Equal(t, tt.responseType, r.ResponseType)
			assert.Contains(t, r.Text, tt.replyContaining)
			if tt.call == "" {
				assert.Empty(t, h.backend.Calls())
			} else {
				assert.Equal(t, []string{tt.call}, h.backend.Calls())
			}
		})
	}
}

func TestSignatureRefused(t *testing.T) {
	now := time.Now()
	body := slashBody(alice, "COPS", "status local-a", "https://hooks.slack.com/commands/T/1/secret")
	tests := []struct {
		name string
		req  func(t *testing.T, base string) *http.Request
		want int
		says string
	}{
		{"wrong secret", func(t *testing.T, base string) *http.Request {
			return request(t, base, chatops.PathCommands, body, "another-secret-of-32-characters!", now)
		}, http.StatusUnauthorized, "bad signature"},
		{"tampered body", func(t *testing.T, base string) *http.Request {
			r := request(t, base, chatops.PathCommands, body, testSecret, now)
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(body, "local-a", "local-b", 1)))
			return r
		}, http.StatusUnauthorized, "bad signature"},
		{"no signature", func(t *testing.T, base string) *http.Request {
			r := request(t, base, chatops.PathCommands, body, testSecret, now)
			r.Header.Del(chatops.HeaderSignature)
			return r
		}, http.StatusUnauthorized, "unsigned request"},
		{"timestamp swapped after signing", func(t *testing.T, base string) *http.Request {
			r := request(t, base, chatops.PathCommands, body, testSecret, now)
			r.Header.Set(chatops.HeaderTimestamp, strconv.FormatInt(now.Unix()+1, 10))
			return r
		}, http.StatusUnauthorized, "bad signature"},
		{"6 minutes old", func(t *testing.T, base string) *http.Request {
			return request(t, base, chatops.PathCommands, body, testSecret, now.Add(-6*time.Minute))
		}, http.StatusUnauthorized, "more than 5m0s off"},
		{"6 minutes ahead", func(t *testing.T, base string) *http.Request {
			return request(t, base, chatops.PathCommands, body, testSecret, now.Add(6*time.Minute))
		}, http.StatusUnauthorized, "more than 5m0s off"},
		{"click with a wrong secret", func(t *testing.T, base string) *http.Request {
			return request(t, base, chatops.PathInteractive, clickBody(t, bob, "COPS", chatops.ActionApprove, "kfleet_approval:restart:local-a", "x", "https://hooks.slack.com/actions/x"), "another-secret-of-32-characters!", now)
		}, http.StatusUnauthorized, "bad signature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			status, got := do(t, tt.req(t, h.url))
			assert.Equal(t, tt.want, status)
			assert.Contains(t, got, tt.says)
			assert.Empty(t, h.backend.Calls(), "nothing reaches the backend")
		})
	}
}

func TestReplayRefused(t *testing.T) {
	h := newHarness(t, nil)
	body := slashBody(alice, "COPS", "pause local-a", h.slack.responseURL("cmd"))
	ts := time.Now()
	status, _ := do(t, request(t, h.url, chatops.PathCommands, body, testSecret, ts))
	require.Equal(t, http.StatusOK, status)
	status, got := do(t, request(t, h.url, chatops.PathCommands, body, testSecret, ts))
	assert.Equal(t, http.StatusConflict, status)
	assert.Contains(t, got, "replayed request refused")
	assert.Equal(t, []string{"run pause local-a by U0ALICE"}, h.backend.Calls(), "the backend is called once")

	// The same for a click.
	id := proposeRestart(t, h)
	click := clickBody(t, bob, "COPS", chatops.ActionApprove, "kfleet_approval:restart:local-a", id, h.slack.responseURL("bob"))
	status, _ = do(t, request(t, h.url, chatops.PathInteractive, click, testSecret, ts))
	require.Equal(t, http.StatusOK, status)
	status, got = do(t, request(t, h.url, chatops.PathInteractive, click, testSecret, ts))
	assert.Equal(t, http.StatusConflict, status)
	assert.Contains(t, got, "replayed request refused")
	h.slack.next(t, "/actions/T0001/bob/s3cr3t-bob")
	assert.Len(t, h.backend.Decisions(), 1)
}

func TestUnauthorizedRefused(t *testing.T) {
	eve := chatops.User{ID: "U0EVE", Name: "eve"}
	tests := []struct {
		name    string
		user    chatops.User
		channel string
		text    string
		says    string
	}{
		{"unknown user", eve, "COPS", "restart local-a", "you may not run restart"},
		{"unknown user, no name", chatops.User{ID: "U0EVE"}, "COPS", "pause local-a", "you may not run pause"},
		{"a name that looks like someone's id", chatops.User{ID: "U0EVE", Name: "U0ALICE"}, "COPS", "restart local-a", "you may not run restart"},
		{"wrong channel", alice, "CRANDOM", "restart local-a", "you may not run restart on cluster local-a from this channel"},
		{"wrong cluster", alice, "COPS", "pause local-b", "you may not run pause on cluster local-b"},
		{"verb not granted", carol, "COPS", "cleaner-check local-a", "you may not run cleaner-check"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			r := h.slash(t, tt.user, tt.channel, tt.text)
			assert.Equal(t, "ephemeral", r.ResponseType)
			assert.Contains(t, r.Text, ":no_entry: not authorized: "+tt.says)
			assert.Empty(t, r.Blocks)
			assert.Empty(t, h.backend.Calls(), "nothing reaches the backend")
		})
	}
}

func TestBadCommandsRefused(t *testing.T) {
	tests := []struct{ text, says string }{
		{"reboot local-a", `unknown verb &quot;reboot&quot;`},
		{"status", "status: missing cluster"},
		{"status local-a now", `unexpected &quot;now&quot;`},
		{"status Local_A", `cluster &quot;Local_A&quot;`},
		{"expand local-a two", `broker &quot;two&quot;`},
		{"upgrade local-a 3.7", `version &quot;3.7&quot;`},
		{"restart local-a batch=99", `batch &quot;99&quot;: want a number from 1 to 64`},
		{"status <@U0ALICE>", `cluster &quot;&lt;@U0ALICE&gt;&quot;`},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			h := newHarness(t, nil)
			r := h.slash(t, alice, "COPS", tt.text)
			assert.Equal(t, "ephemeral", r.ResponseType)
			// encoding/json escapes & < > as \u0026... and decodes them
			// back; what Slack shows is the mrkdwn below.
			assert.Contains(t, strings.ReplaceAll(r.Text, `"`, "&quot;"), tt.says)
			assert.Contains(t, r.Text, "Try `/kafka help`.")
			assert.Empty(t, h.backend.Calls(), "nothing reaches the backend")
		})
	}
}

func TestBackendErrors(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		delay time.Duration
		says  string
	}{
		{"refused", fmt.Errorf("cluster local-a: pause: %w: already paused by bob", fleet.ErrRefused), 0, ":no_entry: cluster local-a: pause: refused: already paused by bob"},
		{"unknown cluster", fmt.Errorf("cluster local-a: %w: register it first", fleet.ErrUnknownCluster), 0, ":no_entry: cluster local-a: unknown cluster: register it first"},
		{"unavailable", errors.New("dial tcp 127.0.0.1:7233: connection refused"), 0, "kfleet is unavailable, try again"},
		{"too slow", nil, time.Minute, "kfleet is unavailable, try again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.backend.err, h.backend.delay = tt.err, tt.delay
			start := time.Now()
			r := h.slash(t, alice, "COPS", "pause local-a")
			assert.Less(t, time.Since(start), 2*time.Second, "answered well within Slack's 3 s")
			assert.Equal(t, "ephemeral", r.ResponseType)
			assert.Contains(t, r.Text, tt.says)
			assert.NotContains(t, r.Text, "7233", "internal errors are logged, not shown")
		})
	}
}

// proposeRestart has alice ask for a restart of local-a and returns the
// approval id from the Approve button.
func proposeRestart(t *testing.T, h *harness) string {
	t.Helper()
	r := h.slash(t, alice, "COPS", "restart local-a brokers=1,2")
	require.Equal(t, "in_channel", r.ResponseType)
	require.Len(t, r.Blocks, 2)
	actions := r.Blocks[1]
	require.Equal(t, "actions", actions.Type)
	require.Len(t, actions.Elements, 2)
	approve, deny := actions.Elements[0], actions.Elements[1]
	assert.Equal(t, "button", approve.Type)
	assert.Equal(t, chatops.ActionApprove, approve.ActionID)
	assert.Equal(t, chatops.ActionDeny, deny.ActionID)
	assert.Equal(t, approve.Value, deny.Value)
	assert.Equal(t, "kfleet_approval:restart:local-a", actions.BlockID)
	return approve.Value
}

func TestApprovalFlow(t *testing.T) {
	h := newHarness(t, nil)
	h.backend.progress = []string{"broker 1: stopping", "broker 1: waiting for ISR", "broker 2: stopping", "broker 2: waiting for ISR", "done"}

	id := proposeRestart(t, h)
	assert.Equal(t, "cluster/local-a/approval/1", id)
	assert.Equal(t, []string{"propose restart local-a brokers=1,2 by U0ALICE to U0DAVE,bob"}, h.backend.Calls(),
		"approvers: everyone allowed to restart local-a from here, but alice")

	// Alice may not approve her own request: the approval's validator
	// (the fake) refuses, and she is told why, privately.
	h.click(t, alice, "COPS", chatops.ActionApprove, "kfleet_approval:restart:local-a", id, h.slack.responseURL("alice"))
	p := h.slack.next(t, "/actions/T0001/alice/s3cr3t-alice")
	assert.Equal(t, "ephemeral", p.ResponseType)
	assert.Contains(t, p.Text, "U0ALICE asked for this restart: a second, different person must approve it")
	assert.Empty(t, h.backend.Decisions())

	// Bob approves: the decision replaces the buttons, then the restart is
	// followed on the same response_url.
	h.click(t, bob, "COPS", chatops.ActionApprove, "kfleet_approval:restart:local-a", id, h.slack.responseURL("bob"))
	bobURL := "/actions/T0001/bob/s3cr3t-bob"
	p = h.slack.next(t, bobURL)
	assert.Equal(t, "in_channel", p.ResponseType)
	require.NotNil(t, p.ReplaceOriginal)
	assert.True(t, *p.ReplaceOriginal)
	assert.Contains(t, p.Text, "<@U0ALICE> asks for `restart local-a`")
	assert.Contains(t, p.Text, ":white_check_mark: *Approved* by <@U0BOB>: rolling restart op-7 queued")
	assert.Equal(t, []string{"bob approved cluster/local-a/approval/1"}, h.backend.Decisions(), "bob is the approver under his policy name")

	// Slack allows 5 posts per response_url: 1 decision, 3 progress
	// lines, 1 final line.
	var follow []slackPost
	for range 4 {
		follow = append(follow, h.slack.next(t, bobURL))
	}
	for _, p := range follow {
		assert.Equal(t, "in_channel", p.ResponseType)
		require.NotNil(t, p.ReplaceOriginal)
		assert.False(t, *p.ReplaceOriginal)
	}
	assert.Contains(t, follow[0].Text, "broker 1: stopping")
	assert.Contains(t, follow[2].Text, "broker 2: stopping")
	assert.Equal(t, ":white_check_mark: `local-a` op-7: rolling restart op-7 completed", follow[3].Text)
	select {
	case p := <-h.slack.posts:
		t.Fatalf("a sixth post: %+v", p)
	case <-time.After(100 * time.Millisecond):
	}

	// Once decided, another click is refused by the approval.
	h.click(t, dave, "COPS", chatops.ActionDeny, "kfleet_approval:restart:local-a", id, h.slack.responseURL("dave"))
	p = h.slack.next(t, "/actions/T0001/dave/s3cr3t-dave")
	assert.Equal(t, "ephemeral", p.ResponseType)
	assert.Contains(t, p.Text, "already approved")
	assert.Len(t, h.backend.Decisions(), 1)
}

func TestDeny(t *testing.T) {
	h := newHarness(t, nil)
	id := proposeRestart(t, h)
	h.click(t, dave, "COPS", chatops.ActionDeny, "kfleet_approval:restart:local-a", id, h.slack.responseURL("dave"))
	p := h.slack.next(t, "/actions/T0001/dave/s3cr3t-dave")
	assert.Contains(t, p.Text, ":no_entry_sign: *Denied* by <@U0DAVE>: nothing was started")
	assert.Equal(t, []string{"U0DAVE denied cluster/local-a/approval/1"}, h.backend.Decisions())
	assert.NotContains(t, strings.Join(h.backend.Calls(), "\n"), "follow", "a denial starts nothing to follow")
}

func TestClickRefusedByPolicy(t *testing.T) {
	tests := []struct {
		name    string
		user    chatops.User
		channel string
		blockID string
		status  int
		says    string
	}{
		{"not allowed to restart", carol, "COPS", "kfleet_approval:restart:local-a", http.StatusOK, "you cannot approve or deny this restart: not authorized: you may not run restart"},
		{"from another channel", bob, "CRANDOM", "kfleet_approval:restart:local-a", http.StatusOK, "from this channel"},
		{"another cluster", bob, "COPS", "kfleet_approval:restart:local-b", http.StatusOK, "on cluster local-b"},
		{"not kfleet's block", bob, "COPS", "kfleet_approval:status:local-a", http.StatusBadRequest, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			id := proposeRestart(t, h)
			body := clickBody(t, tt.user, tt.channel, chatops.ActionApprove, tt.blockID, id, h.slack.responseURL("x"))
			status, _ := do(t, request(t, h.url, chatops.PathInteractive, body, testSecret, time.Now()))
			require.Equal(t, tt.status, status)
			if tt.says != "" {
				p := h.slack.next(t, "/actions/T0001/x/s3cr3t-x")
				assert.Equal(t, "ephemeral", p.ResponseType)
				assert.Contains(t, p.Text, tt.says)
			}
			assert.Len(t, h.backend.Calls(), 1, "only the proposal reached the backend")
		})
	}
}

func TestProposalNobodyCanApprove(t *testing.T) {
	h := newHarness(t, nil)
	// Dave alone may restart local-b.
	r := h.slash(t, dave, "CRANDOM", "restart local-b")
	assert.Equal(t, "ephemeral", r.ResponseType)
	assert.Contains(t, r.Text, "nobody else may approve restart on cluster local-b from this channel")
	assert.Empty(t, h.backend.Calls())
}

func TestCleanerCheckFollowUps(t *testing.T) {
	h := newHarness(t, nil)
	h.backend.runOperation = "op-9"
	for i := range 10 {
		h.backend.progress = append(h.backend.progress, fmt.Sprintf("broker %d: cleaner ok", i))
	}
	r := h.slash(t, alice, "COPS", "cleaner-check local-a")
	assert.Equal(t, "in_channel", r.ResponseType)
	assert.Contains(t, r.Text, "cleaner check op-9 queued")
	assert.Contains(t, r.Text, "Following operation `op-9`")

	// 10 progress lines, but 5 posts at most: 4 lines and the final one.
	var posts []slackPost
	for range chatops.MaxFollowUps {
		posts = append(posts, h.slack.next(t, "/actions/T0001/cmd/s3cr3t-cmd"))
	}
	assert.Contains(t, posts[0].Text, "broker 0: cleaner ok")
	assert.Contains(t, posts[3].Text, "broker 3: cleaner ok")
	assert.Contains(t, posts[4].Text, "rolling restart op-9 completed")
	for _, p := range posts {
		assert.Equal(t, "in_channel", p.ResponseType)
		require.NotNil(t, p.ReplaceOriginal)
		assert.False(t, *p.ReplaceOriginal)
	}
	select {
	case p := <-h.slack.posts:
		t.Fatalf("a sixth post: %+v", p)
	case <-time.After(100 * time.Millisecond):
	}
}

func TestProgressIsSpaced(t *testing.T) {
	h := newHarness(t, func(c *chatops.Config) { c.ProgressInterval = time.Hour })
	h.backend.runOperation = "op-9"
	h.backend.progress = []string{"one", "two", "three"}
	h.slash(t, alice, "COPS", "cleaner-check local-a")
	assert.Contains(t, h.slack.next(t, "/actions/T0001/cmd/s3cr3t-cmd").Text, "one")
	assert.Contains(t, h.slack.next(t, "/actions/T0001/cmd/s3cr3t-cmd").Text, "completed", "two and three fell within the interval")
}

func TestHTTPResponseURLRefusedByDefault(t *testing.T) {
	h := newHarness(t, nil)
	h.backend.runOperation = "op-9"
	body := slashBody(alice, "COPS", "cleaner-check local-a", "http://hooks.example/plain")
	status, got := do(t, request(t, h.url, chatops.PathCommands, body, testSecret, time.Now()))
	require.Equal(t, http.StatusOK, status)
	assert.Contains(t, got, "not following operation `op-9`")
	assert.NotContains(t, h.logs.String(), "hooks.example")
}

func TestShutdownStopsFollowing(t *testing.T) {
	h := newHarness(t, nil)
	h.backend.runOperation, h.backend.block = "op-9", true
	h.slash(t, alice, "COPS", "cleaner-check local-a")
	require.Eventually(t, func() bool { return slices.Contains(h.backend.Calls(), "follow local-a op-9") }, 5*time.Second, time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, h.server.Shutdown(ctx))
	p := h.slack.next(t, "/actions/T0001/cmd/s3cr3t-cmd")
	assert.Contains(t, p.Text, "no longer follows op-9")
}

func TestRunServesUntilCancelled(t *testing.T) {
	srv, err := chatops.NewServer(chatops.Config{SigningSecret: []byte(testSecret), Policy: mustPolicy(t, testPolicy), Backend: newFakeBackend()})
	require.NoError(t, err)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, l) }()
	resp, err := http.Get("http://" + l.Addr().String() + chatops.PathHealth)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
}

func TestNewServerRefusesBadConfig(t *testing.T) {
	p := mustPolicy(t, testPolicy)
	tests := []struct {
		name string
		cfg  chatops.Config
		says string
	}{
		{"no secret", chatops.Config{Policy: p, Backend: newFakeBackend()}, "signing secret"},
		{"short secret", chatops.Config{SigningSecret: []byte("short"), Policy: p, Backend: newFakeBackend()}, "signing secret"},
		{"no policy", chatops.Config{SigningSecret: []byte(testSecret), Backend: newFakeBackend()}, "policy is required"},
		{"no backend", chatops.Config{SigningSecret: []byte(testSecret), Policy: p}, "backend is required"},
		{"slow quick timeout", chatops.Config{SigningSecret: []byte(testSecret), Policy: p, Backend: newFakeBackend(), QuickTimeout: 3 * time.Second}, "under Slack's 3s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := chatops.NewServer(tt.cfg)
			assert.ErrorContains(t, err, tt.says)
		})
	}
}

// TestNoCapabilitiesLogged runs every path that logs and checks that no
// secret, signature, token or response_url reached the log.
func TestNoCapabilitiesLogged(t *testing.T) {
	h := newHarness(t, nil)
	h.backend.runOperation = "op-9"
	h.backend.progress = []string{"working"}
	h.slash(t, alice, "COPS", "cleaner-check local-a")
	h.slack.next(t, "/actions/T0001/cmd/s3cr3t-cmd")
	id := proposeRestart(t, h)
	h.click(t, alice, "COPS", chatops.ActionApprove, "kfleet_approval:restart:local-a", id, h.slack.responseURL("alice"))
	h.slack.next(t, "/actions/T0001/alice/s3cr3t-alice")
	h.click(t, bob, "COPS", chatops.ActionApprove, "kfleet_approval:restart:local-a", id, h.slack.responseURL("bob"))
	h.slack.next(t, "/actions/T0001/bob/s3cr3t-bob")
	do(t, request(t, h.url, chatops.PathCommands, slashBody(alice, "COPS", "status local-a", h.slack.responseURL("x")), "wrong-secret-wrong-secret-wrong!", time.Now()))
	h.backend.err = errors.New("temporal down")
	h.slash(t, alice, "COPS", "pause local-a")

	logs := h.logs.String()
	require.NotEmpty(t, logs)
	for _, secret := range []string{testSecret, "s3cr3t", "/actions/", "v0=", "legacy-verification-token", "13345224609"} {
		assert.NotContains(t, logs, secret)
	}
	// Every line is JSON and says who did what.
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
	}
	assert.Contains(t, logs, `"user_id":"U0ALICE"`)
	assert.Contains(t, logs, `"outcome":"unavailable"`)
}
