// Package notify posts messages for the humans on call to a Slack-compatible
// incoming webhook (Slack, Mattermost, Rocket.Chat and others accept the
// same {"text": ...} body).
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Severities a Message may carry.
const (
	SeverityInfo    = "info"
	SeverityWarning = "warning"
	SeverityPage    = "page"
)

// Message is one notification.
type Message struct {
	Cluster string
	// Broker is the broker concerned; 0 with HasBroker false for none.
	Broker    int32
	HasBroker bool
	Severity  string
	Title     string
	Text      string
	// Operation names the workflow the message is about.
	Operation string
}

// DefaultTimeout bounds a post when the Webhook has no Client of its own.
const DefaultTimeout = 10 * time.Second

// maxErrorBody is how much of a refusal's body an error quotes.
const maxErrorBody = 256

// Webhook posts to an incoming-webhook URL. The URL is a secret (anyone
// holding it can post): it never appears in an error or a log.
type Webhook struct {
	URL string
	// Client sends the posts; nil uses one with DefaultTimeout.
	Client *http.Client
}

// Payload is the JSON body posted: Slack's incoming-webhook message with
// text only, which every compatible chat renders.
type Payload struct {
	Text string `json:"text"`
}

// Format renders m as the message text: a severity marker, the title in
// bold, where it happened, and the text.
func Format(m Message) string {
	var b strings.Builder
	switch m.Severity {
	case SeverityPage:
		b.WriteString("<!here> :rotating_light: ")
	case SeverityWarning:
		b.WriteString(":warning: ")
	default:
		b.WriteString(":information_source: ")
	}
	sev := m.Severity
	if sev == "" {
		sev = SeverityInfo
	}
	fmt.Fprintf(&b, "*[%s] %s*", strings.ToUpper(sev), escape(m.Title))
	var where []string
	if m.Cluster != "" {
		where = append(where, "cluster `"+escape(m.Cluster)+"`")
	}
	if m.HasBroker {
		where = append(where, "broker "+strconv.Itoa(int(m.Broker)))
	}
	if m.Operation != "" {
		where = append(where, "operation `"+escape(m.Operation)+"`")
	}
	if len(where) > 0 {
		b.WriteString("\n" + strings.Join(where, " · "))
	}
	if m.Text != "" {
		b.WriteString("\n" + escape(m.Text))
	}
	return b.String()
}

// escape keeps user-provided text from being read as Slack markup
// (mentions, links): Slack asks for &, < and > to be escaped.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Post sends m. A response other than 2xx is an error quoting the start of
// its body; no error carries the URL.
func (w *Webhook) Post(ctx context.Context, m Message) error {
	if w.URL == "" {
		return errors.New("notify: no webhook URL")
	}
	client := w.Client
	if client == nil {
		client = &http.Client{Timeout: DefaultTimeout}
	}
	if err := PostJSON(ctx, client, w.URL, Payload{Text: Format(m)}); err != nil {
		return fmt.Errorf("notify: webhook: %w", err)
	}
	return nil
}

// PostJSON posts body as JSON to url, a capability (an incoming webhook, a
// Slack response_url) that must never be logged: no error carries it. A
// response other than 2xx is an error quoting the start of its body.
func PostJSON(ctx context.Context, client *http.Client, url string, body any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return fmt.Errorf("bad URL: %w", redact(err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post: %w", redact(err))
	}
	defer resp.Body.Close()
	quote, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("answered %s: %s", resp.Status, strings.TrimSpace(string(quote)))
	}
	return nil
}

// redact drops the URL a *url.Error carries (net/http's errors name it),
// keeping what went wrong.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
