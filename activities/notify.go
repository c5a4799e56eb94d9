package activities

import (
	"context"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/kfleet/kfleet/internal/notify"
)

// Notification is a message for the humans on call (a Slack-compatible
// incoming webhook). It must never carry a secret.
type Notification struct {
	Cluster  string `json:"cluster"`
	Broker   int32  `json:"broker,omitempty"`
	Severity string `json:"severity"` // SeverityInfo, SeverityWarning or SeverityPage
	Title    string `json:"title"`
	Text     string `json:"text,omitempty"`
	// Operation is the workflow the message is about (a link in chat).
	Operation string `json:"operation,omitempty"`
}

// Notification severities.
const (
	SeverityInfo    = notify.SeverityInfo
	SeverityWarning = notify.SeverityWarning
	SeverityPage    = notify.SeverityPage
)

// Notify posts n to the configured webhook; with none configured it only
// logs it. A failed post is retryable; an empty title or an unknown
// severity is bad input ("" means info).
func (a *Activities) Notify(ctx context.Context, n Notification) error {
	switch n.Severity {
	case "":
		n.Severity = SeverityInfo
	case SeverityInfo, SeverityWarning, SeverityPage:
	default:
		return badInput(fmt.Errorf("cluster %s: notification %q: unknown severity %q (want %s, %s or %s)",
			n.Cluster, n.Title, n.Severity, SeverityInfo, SeverityWarning, SeverityPage))
	}
	if n.Title == "" {
		return badInput(fmt.Errorf("cluster %s: notification without a title", n.Cluster))
	}
	if a.Notifier == nil {
		a.logNotification(n).Str("text", n.Text).Msg("notification (no webhook configured)")
		return nil
	}
	if err := a.Notifier.Notify(ctx, n); err != nil {
		a.Log.Error().Err(err).Str("cluster", n.Cluster).Str("title", n.Title).Msg("notification not delivered")
		return fmt.Errorf("cluster %s: notify %q: %w", n.Cluster, n.Title, err)
	}
	a.logNotification(n).Msg("notification posted")
	return nil
}

func (a *Activities) logNotification(n Notification) *zerolog.Event {
	ev := a.Log.Info()
	if n.Severity != SeverityInfo {
		ev = a.Log.Warn()
	}
	ev = ev.Str("cluster", n.Cluster).Str("severity", n.Severity).Str("title", n.Title).Str("operation", n.Operation)
	if n.Broker != 0 {
		ev = ev.Int32("broker", n.Broker)
	}
	return ev
}

// WebhookNotifier is the Notifier of an incoming webhook.
type WebhookNotifier struct{ Webhook *notify.Webhook }

// Notify posts n.
func (w WebhookNotifier) Notify(ctx context.Context, n Notification) error {
	return w.Webhook.Post(ctx, notify.Message{
		Cluster: n.Cluster, Broker: n.Broker, HasBroker: n.Broker != 0,
		Severity: n.Severity, Title: n.Title, Text: n.Text, Operation: n.Operation,
	})
}
