package chatops

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/notify"
)

// Slack's message and interaction shapes, as far as kfleet uses them.

// The action_ids of an approval's buttons; their value is the approval id.
const (
	ActionApprove = "kfleet_approve"
	ActionDeny    = "kfleet_deny"
)

// Slack's limits on a response_url.
const (
	// MaxFollowUps is how many times a response_url may be used.
	MaxFollowUps = 5
	// ResponseURLLifetime is how long a response_url stays valid.
	ResponseURLLifetime = 30 * time.Minute
)

const (
	responseEphemeral = "ephemeral"
	responseInChannel = "in_channel"

	// approvalBlockPrefix starts the block_id of an approval's buttons:
	// "kfleet_approval:<verb>:<cluster>". A click carries it back, so the
	// server can authorize the clicker without keeping any state (the
	// approval itself, durable, has the last word).
	approvalBlockPrefix = "kfleet_approval:"

	// maxApproversShown bounds the approvers an approval request names.
	maxApproversShown = 20

	// maxApprovalIDLen is Slack's limit on a button's value.
	maxApprovalIDLen = 2000
)

// message is a Slack message: a slash command's immediate answer or a
// post to a response_url.
type message struct {
	ResponseType    string  `json:"response_type,omitempty"`
	Text            string  `json:"text"`
	Blocks          []block `json:"blocks,omitempty"`
	ReplaceOriginal bool    `json:"replace_original"`
}

func ephemeral(text string) message { return message{ResponseType: responseEphemeral, Text: text} }
func inChannel(text string) message { return message{ResponseType: responseInChannel, Text: text} }

// block is a Block Kit block: a section (Text) or actions (Elements).
type block struct {
	Type     string    `json:"type"`
	BlockID  string    `json:"block_id,omitempty"`
	Text     *textObj  `json:"text,omitempty"`
	Elements []element `json:"elements,omitempty"`
}

type textObj struct {
	Type string `json:"type"` // "mrkdwn" or "plain_text"
	Text string `json:"text"`
}

// element is a button.
type element struct {
	Type     string   `json:"type"`
	ActionID string   `json:"action_id"`
	Text     textObj  `json:"text"`
	Value    string   `json:"value"`
	Style    string   `json:"style,omitempty"`
	Confirm  *confirm `json:"confirm,omitempty"`
}

// confirm is the dialog Slack shows before a click is sent.
type confirm struct {
	Title   textObj `json:"title"`
	Text    textObj `json:"text"`
	Confirm textObj `json:"confirm"`
	Deny    textObj `json:"deny"`
}

func plain(s string) textObj  { return textObj{Type: "plain_text", Text: s} }
func mrkdwn(s string) textObj { return textObj{Type: "mrkdwn", Text: s} }

// approvalMessage asks for a second person's approval of cmd, with
// Approve / Deny buttons carrying the approval id.
func approvalMessage(cmd Command, requester User, approvers []string, approvalID string) message {
	// Name a few: a section holds 3,000 characters at most.
	var names []string
	for i, a := range approvers {
		if i == maxApproversShown {
			names = append(names, fmt.Sprintf("and %d more", len(approvers)-i))
			break
		}
		names = append(names, mentionEntry(a))
	}
	text := fmt.Sprintf("%s asks for `%s`: a second person must approve (one of %s).", mention(requester), escape(cmd.String()), strings.Join(names, ", "))
	return message{
		ResponseType: responseInChannel,
		Text:         text,
		Blocks: []block{
			{Type: "section", Text: &textObj{Type: "mrkdwn", Text: text}},
			{Type: "actions", BlockID: approvalBlockID(cmd.Verb, cmd.Cluster), Elements: []element{
				{Type: "button", ActionID: ActionApprove, Text: plain("Approve"), Value: approvalID, Style: "primary",
					Confirm: &confirm{
						Title:   plain("Approve?"),
						Text:    mrkdwn(fmt.Sprintf("Run `%s` now?", escape(cmd.String()))),
						Confirm: plain("Approve"), Deny: plain("Cancel"),
					}},
				{Type: "button", ActionID: ActionDeny, Text: plain("Deny"), Value: approvalID, Style: "danger"},
			}},
		},
	}
}

func approvalBlockID(v Verb, cluster string) string {
	return approvalBlockPrefix + string(v) + ":" + cluster
}

// parseApprovalBlockID reads back what approvalBlockID wrote.
func parseApprovalBlockID(id string) (Verb, string, bool) {
	rest, ok := strings.CutPrefix(id, approvalBlockPrefix)
	if !ok {
		return "", "", false
	}
	v, cluster, ok := strings.Cut(rest, ":")
	if !ok || !Verb(v).Destructive() || !fleet.ValidClusterID(cluster) {
		return "", "", false
	}
	return Verb(v), cluster, true
}

func validApprovalID(id string) bool {
	return id != "" && len(id) <= maxApprovalIDLen && !strings.ContainsFunc(id, isSpaceOrControl)
}

// interaction is the part of a Slack interactivity payload kfleet reads.
type interaction struct {
	Type string `json:"type"`
	User struct {
		ID       string `json:"id"`
		Username string `json:"username"`
		Name     string `json:"name"`
	} `json:"user"`
	Team struct {
		ID string `json:"id"`
	} `json:"team"`
	Channel struct {
		ID string `json:"id"`
	} `json:"channel"`
	Container struct {
		ChannelID string `json:"channel_id"`
	} `json:"container"`
	// Message is the message whose button was clicked (absent for
	// ephemeral ones).
	Message *struct {
		Blocks []block `json:"blocks"`
	} `json:"message"`
	ResponseURL string `json:"response_url"`
	Actions     []struct {
		ActionID string `json:"action_id"`
		BlockID  string `json:"block_id"`
		Value    string `json:"value"`
	} `json:"actions"`
}

func (in *interaction) user() User {
	name := in.User.Username
	if name == "" {
		name = in.User.Name
	}
	return User{ID: in.User.ID, Name: name}
}

func (in *interaction) channel() string {
	if in.Channel.ID != "" {
		return in.Channel.ID
	}
	return in.Container.ChannelID
}

// originalText is the first section of the clicked message: what was
// asked, to keep when the decision replaces the message.
func (in *interaction) originalText() string {
	if in.Message == nil {
		return ""
	}
	for _, b := range in.Message.Blocks {
		if b.Type == "section" && b.Text != nil {
			return b.Text.Text
		}
	}
	return ""
}

// escape keeps text from being read as Slack markup (mentions, links):
// Slack asks for &, < and > to be escaped.
var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func escape(s string) string { return escaper.Replace(s) }

// unescape undoes Slack's escaping of a slash command's text.
var unescaper = strings.NewReplacer("&amp;", "&", "&lt;", "<", "&gt;", ">")

func unescape(s string) string { return unescaper.Replace(s) }

// mention names a user so Slack renders it: <@U…> for an id, the name
// otherwise.
func mention(u User) string {
	if u.ID != "" && isSlackUserID(u.ID) {
		return "<@" + u.ID + ">"
	}
	return escape(u.Name)
}

// mentionEntry renders a policy entry (an id or a name).
func mentionEntry(e string) string {
	if isSlackUserID(e) {
		return "<@" + e + ">"
	}
	return escape(e)
}

// checkResponseURL accepts an https URL (http only when allowed, for local
// stacks). Its errors never quote the URL.
func checkResponseURL(raw string, allowHTTP bool) error {
	if raw == "" {
		return errors.New("no response_url")
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("response_url is not a URL")
	case u.Scheme != "https" && !(allowHTTP && u.Scheme == "http"):
		return fmt.Errorf("response_url scheme %q is not allowed", u.Scheme)
	case u.Host == "" || u.User != nil:
		return errors.New("response_url has no host, or has credentials")
	}
	return nil
}

var errNoFollowUps = errors.New("response_url used up or expired")

// responder posts to one response_url within Slack's limits: MaxFollowUps
// posts, until ResponseURLLifetime after the request. The URL is a
// capability: it never leaves this struct but in the request itself, and
// no error carries it.
type responder struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	left    int
	expires time.Time
}

func newResponder(rawURL string, client *http.Client, now func() time.Time) *responder {
	return &responder{url: rawURL, client: client, now: now, left: MaxFollowUps, expires: now().Add(ResponseURLLifetime)}
}

// remaining is how many posts are left.
func (r *responder) remaining() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.now().Before(r.expires) {
		return 0
	}
	return r.left
}

func (r *responder) take() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.left == 0 || !r.now().Before(r.expires) {
		return false
	}
	r.left--
	return true
}

// post sends m. A post counts against the budget even when it fails:
// Slack may have counted it.
func (r *responder) post(ctx context.Context, m message) error {
	if !r.take() {
		return errNoFollowUps
	}
	if err := notify.PostJSON(ctx, r.client, r.url, m); err != nil {
		return fmt.Errorf("follow-up: %w", err)
	}
	return nil
}

// newFollowUpClient is the default client for follow-ups. It does not
// follow redirects: a response_url answers, it does not send us elsewhere.
func newFollowUpClient() *http.Client {
	return &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
