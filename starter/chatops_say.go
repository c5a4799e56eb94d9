package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kfleet/kfleet/internal/chatops"
)

// newChatopsSayCommand plays Slack against a ChatOps server: it signs a
// slash command as a user would send it, prints the answer, and prints the
// follow-ups the server posts to its response_url for a while. For the
// local stack and for checking a deployment's signing secret.
func newChatopsSayCommand() *cobra.Command {
	var server, secretFile, as, channel string
	var follow time.Duration
	cmd := &cobra.Command{
		Use:   `say --as USER "restart local-a"`,
		Short: "Send a signed /kafka command to a ChatOps server, as Slack would, and print the answers",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			secret, err := os.ReadFile(secretFile)
			if err != nil {
				return exitError{exitBadInput, fmt.Errorf("signing secret: %w", err)}
			}
			out := cmd.OutOrStdout()
			// The response_url: a local listener that prints follow-ups.
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(out, "[follow-up] %s\n", replyText(r.Body))
			})}
			go func() { _ = srv.Serve(l) }()
			defer srv.Close()

			form := url.Values{"command": {"/kafka"}, "text": {args[0]}, "user_id": {"U" + strings.ToUpper(as)}, "user_name": {as},
				"channel_id": {channel}, "team_id": {"T0LOCAL"}, "response_url": {"http://" + l.Addr().String() + "/respond"}}
			body := form.Encode()
			ts := time.Now().Unix()
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, strings.TrimSuffix(server, "/")+chatops.PathCommands, strings.NewReader(body))
			if err != nil {
				return exitError{exitBadInput, err}
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set(chatops.HeaderTimestamp, strconv.FormatInt(ts, 10))
			req.Header.Set(chatops.HeaderSignature, chatops.Sign(secret, ts, []byte(body)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return exitError{exitUnreachable, fmt.Errorf("chatops server %s: %w", server, err)}
			}
			defer resp.Body.Close()
			fmt.Fprintf(out, "[%d] %s\n", resp.StatusCode, replyText(resp.Body))
			if resp.StatusCode != http.StatusOK {
				return exitError{exitBadInput, errors.New("refused")}
			}
			select {
			case <-cmd.Context().Done():
			case <-time.After(follow):
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "http://127.0.0.1:3000", "ChatOps server")
	f.StringVar(&secretFile, "signing-secret-file", filepath.Join(".kfleet", "chatops", "signing-secret"), "the app's signing secret (the local stack's by default)")
	f.StringVar(&as, "as", defaultRequester(), "the Slack user name to send as")
	f.StringVar(&channel, "channel", "C0LOCAL", "the channel id to send from")
	f.DurationVar(&follow, "follow", 30*time.Second, "how long to print follow-ups for")
	return cmd
}

// replyText is a Slack message's text and, for an approval, its buttons'
// approval id (answer it with `starter approve --approval ID`).
func replyText(r io.Reader) string {
	raw, _ := io.ReadAll(io.LimitReader(r, 1<<20))
	var m struct {
		Text   string `json:"text"`
		Blocks []struct {
			Elements []struct {
				ActionID string `json:"action_id"`
				Value    string `json:"value"`
			} `json:"elements"`
		} `json:"blocks"`
	}
	if json.Unmarshal(raw, &m) != nil || m.Text == "" {
		return strings.TrimSpace(string(raw))
	}
	text := m.Text
	for _, b := range m.Blocks {
		for _, e := range b.Elements {
			if e.ActionID == chatops.ActionApprove {
				text += fmt.Sprintf("\n  [Approve] [Deny]  approval %s (bin/starter approve --approval %s --by <someone else>)", e.Value, e.Value)
			}
		}
	}
	return text
}
