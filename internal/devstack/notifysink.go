package devstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/kfleet/kfleet/internal/notify"
)

// NotifySink is the local stack's stand-in for a chat channel: a
// Slack-compatible incoming webhook that prints each message it receives
// and keeps them for tests.
type NotifySink struct {
	// URL is the webhook to post to.
	URL string

	srv *http.Server
	out io.Writer

	mu       sync.Mutex
	messages []string
}

// sinkKept bounds the messages a sink keeps.
const sinkKept = 1000

// StartNotifySink serves a webhook on a free loopback port and prints
// every message to out.
func StartNotifySink(out io.Writer) (*NotifySink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("notification sink: %w", err)
	}
	s := &NotifySink{URL: "http://" + ln.Addr().String() + "/webhook", out: out}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhook", s.receive)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

func (s *NotifySink) receive(w http.ResponseWriter, r *http.Request) {
	var p notify.Payload
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&p); err != nil || p.Text == "" {
		http.Error(w, "want a JSON body with a text", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.messages = append(s.messages, p.Text)
	if len(s.messages) > sinkKept {
		s.messages = s.messages[len(s.messages)-sinkKept:]
	}
	fmt.Fprintf(s.out, "[chat] %s\n", p.Text)
	s.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

// Messages returns the texts received so far, oldest first.
func (s *NotifySink) Messages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.messages...)
}

// Close stops serving.
func (s *NotifySink) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("notification sink: %w", err)
	}
	return nil
}
