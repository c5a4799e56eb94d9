package integration_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/chatops"
	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// slackStandIn plays Slack against the local stack's ChatOps server: it
// signs slash commands and button clicks with the app's signing secret,
// and receives the follow-ups posted to response_urls.
type slackStandIn struct {
	t       *testing.T
	server  string
	secret  []byte
	replies *httptest.Server

	mu    sync.Mutex
	posts []string
}

func newSlackStandIn(t *testing.T, c *devstack.Chatops) *slackStandIn {
	secret, err := os.ReadFile(c.SecretFile)
	require.NoError(t, err)
	s := &slackStandIn{t: t, server: c.URL, secret: secret}
	s.replies = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m struct {
			Text string `json:"text"`
		}
		_ = json.Unmarshal(body, &m)
		s.mu.Lock()
		s.posts = append(s.posts, m.Text)
		s.mu.Unlock()
	}))
	t.Cleanup(s.replies.Close)
	return s
}

// post signs body (with ts, default now) and posts it to path.
func (s *slackStandIn) post(path, body string, ts time.Time) (int, string) {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	req, err := http.NewRequest(http.MethodPost, s.server+path, strings.NewReader(body))
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(chatops.HeaderTimestamp, stamp)
	req.Header.Set(chatops.HeaderSignature, chatops.Sign(s.secret, ts.Unix(), []byte(body)))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// command is a /kafka slash command typed by user.
func (s *slackStandIn) command(user, text string) (int, string) {
	form := url.Values{"command": {"/kafka"}, "text": {text}, "user_id": {"U" + strings.ToUpper(user)}, "user_name": {user},
		"channel_id": {"C0OPS"}, "team_id": {"T0KFLEET"}, "response_url": {s.replies.URL + "/respond/" + user}}
	return s.post(chatops.PathCommands, form.Encode(), time.Now())
}

// click presses a button of an approval message as user.
func (s *slackStandIn) click(user, actionID, blockID, value string) (int, string) {
	payload, err := json.Marshal(map[string]any{
		"type":         "block_actions",
		"user":         map[string]string{"id": "U" + strings.ToUpper(user), "username": user, "name": user},
		"team":         map[string]string{"id": "T0KFLEET"},
		"channel":      map[string]string{"id": "C0OPS"},
		"response_url": s.replies.URL + "/respond/click-" + user,
		"actions":      []map[string]string{{"action_id": actionID, "block_id": blockID, "value": value}},
	})
	require.NoError(s.t, err)
	return s.post(chatops.PathInteractive, url.Values{"payload": {string(payload)}}.Encode(), time.Now())
}

func (s *slackStandIn) posted() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.posts, "\n")
}

// approvalButtons finds the Approve button's block and value in a reply.
func approvalButtons(t *testing.T, reply string) (blockID, approvalID string) {
	var m struct {
		Blocks []struct {
			BlockID  string `json:"block_id"`
			Elements []struct {
				ActionID string `json:"action_id"`
				Value    string `json:"value"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	require.NoError(t, json.Unmarshal([]byte(reply), &m), reply)
	for _, b := range m.Blocks {
		for _, e := range b.Elements {
			if e.ActionID == chatops.ActionApprove {
				return b.BlockID, e.Value
			}
		}
	}
	t.Fatalf("no Approve button in %s", reply)
	return "", ""
}

// TestIntegrationChatopsRestartNeedsASecondPerson drives ChatOps as two
// people in a channel would, against the real stack: alice asks for a
// restart, which starts nothing but an approval; her own Approve is
// refused; bob's starts the roll, whose progress and end reach the
// channel through the response_url. Forged, stale and replayed requests
// start nothing.
func TestIntegrationChatopsRestartNeedsASecondPerson(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	stack := startStackWith(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}), func(o *devstack.StackOptions) {
		o.ChatopsAddr = "127.0.0.1:0"
	})
	slack := newSlackStandIn(t, stack.Chatops)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	code, reply := slack.command("alice", "status local-a")
	require.Equal(t, http.StatusOK, code, reply)
	assert.Contains(t, reply, "local-a")

	began := time.Now()
	code, reply = slack.command("alice", "restart local-a")
	require.Equal(t, http.StatusOK, code, reply)
	t.Logf("restart acknowledged in %s", time.Since(began).Round(time.Millisecond))
	blockID, approvalID := approvalButtons(t, reply)
	st, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	assert.Nil(t, st.Running, "nothing starts before a second person approves")
	assert.Empty(t, st.Queue)

	code, _ = slack.click("alice", chatops.ActionApprove, blockID, approvalID)
	require.Equal(t, http.StatusOK, code)
	require.Eventually(t, func() bool { return strings.Contains(slack.posted(), "second, different person") },
		20*time.Second, 100*time.Millisecond, "alice's own approval is refused: %s", slack.posted())

	code, _ = slack.click("bob", chatops.ActionApprove, blockID, approvalID)
	require.Equal(t, http.StatusOK, code)
	op := finished(ctx, t, stack, "local-a", workflows.OpRollingRestart, time.Minute)
	require.Equal(t, workflows.StatusSucceeded, op.Status, op.Error)
	assert.Equal(t, "alice", op.RequestedBy, "the roll is alice's, approved by bob")
	approval, err := entity.ApprovalStatus(ctx, stack.Client, approvalID)
	require.NoError(t, err)
	assert.Equal(t, workflows.ApprovalApproved, approval.Status)
	assert.Equal(t, "bob", approval.DecidedBy)
	recordHistories(ctx, t, stack.Client, map[string]string{approvalID: "approval_restart.json"})
	require.Eventually(t, func() bool { return strings.Contains(slack.posted(), "succeeded") },
		30*time.Second, 200*time.Millisecond, "the end of the roll reaches the channel: %s", slack.posted())
	a := auditSerial(t, stack.Fleet.Audit("local-a"))
	assert.Equal(t, map[int32]int{1: 1, 2: 1, 3: 1}, a.stops, "exactly one roll")
	noViolations(t, stack, "local-a")

	// Forged, stale and replayed requests start nothing.
	form := url.Values{"command": {"/kafka"}, "text": {"restart local-a"}, "user_id": {"UALICE"}, "user_name": {"alice"},
		"channel_id": {"C0OPS"}, "response_url": {slack.replies.URL + "/respond/x"}}.Encode()
	stale := time.Now().Add(-6 * time.Minute)
	code, _ = slack.post(chatops.PathCommands, form, stale)
	assert.Equal(t, http.StatusUnauthorized, code, "a request more than 5 minutes old is refused")
	forged := &slackStandIn{t: t, server: slack.server, secret: []byte("not-the-signing-secret-of-this-app")}
	code, _ = forged.post(chatops.PathCommands, form, time.Now())
	assert.Equal(t, http.StatusUnauthorized, code, "a forged signature is refused")
	now := time.Now()
	code, _ = slack.post(chatops.PathCommands, url.Values{"command": {"/kafka"}, "text": {"pause local-a"}, "user_id": {"UALICE"},
		"user_name": {"alice"}, "channel_id": {"C0OPS"}, "response_url": {slack.replies.URL + "/respond/p"}}.Encode(), now)
	require.Equal(t, http.StatusOK, code)
	code, _ = slack.post(chatops.PathCommands, url.Values{"command": {"/kafka"}, "text": {"pause local-a"}, "user_id": {"UALICE"},
		"user_name": {"alice"}, "channel_id": {"C0OPS"}, "response_url": {slack.replies.URL + "/respond/p"}}.Encode(), now)
	assert.Equal(t, http.StatusConflict, code, "a replay is refused")
	st, err = entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	require.NotNil(t, st.Paused, "the pause ran once")
	assert.Len(t, st.History, 1, "no second roll")
}
