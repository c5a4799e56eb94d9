package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kfleet/kfleet/internal/chatbackend"
	"github.com/kfleet/kfleet/internal/chatops"
	"github.com/kfleet/kfleet/internal/logging"
)

// envSigningSecret holds the Slack app's signing secret when no
// --signing-secret-file is given.
const envSigningSecret = "KFLEET_SLACK_SIGNING_SECRET"

func newChatopsCommand(g *globalFlags) *cobra.Command {
	var listen, authFile, secretFile string
	cmd := &cobra.Command{
		Use:   "chatops --auth FILE",
		Short: "Serve Slack-compatible slash commands (/kafka status local-a) and approval buttons",
		Long: `Serves kfleet's ChatOps over HTTP, for a Slack app (or a Slack-compatible
chat) whose slash command posts to /slack/commands and whose interactivity
posts to /slack/interactive (put a TLS-terminating proxy in front of it).

Every request must carry a valid Slack v0 signature under the app's signing
secret, read from --signing-secret-file or else from
KFLEET_SLACK_SIGNING_SECRET, and be less than 5 minutes old; a replay is
refused. --auth is the policy (YAML) of who may run which verb on which
cluster from which channel; what it does not allow is refused:

  rules:
    - users: [U0123ABCD, alice]          # Slack user ids (preferred) or names
      verbs: [status, list, restart, pause, resume, cleaner-check]
      clusters: [local-a]                # or "*"
      channels: [C0456EFGH]              # channel ids, or "*"

restart, upgrade, expand, remove-broker, delete and abort are never run at
once: they wait for someone else the policy allows to run them there to
press Approve.
Exit codes: 0 stopped (Ctrl-C), 1 failed, 2 bad flags, policy or secret,
3 Temporal unreachable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if authFile == "" {
				return exitError{exitBadInput, errors.New("--auth is required: the ChatOps policy file")}
			}
			secret, err := signingSecret(secretFile)
			if err != nil {
				return exitError{exitBadInput, err}
			}
			policy, err := chatops.LoadPolicy(authFile)
			if err != nil {
				return exitError{exitBadInput, err}
			}
			ctx := cmd.Context()
			c, err := g.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			log := logging.Default()
			srv, err := chatops.NewServer(chatops.Config{
				SigningSecret: secret,
				Policy:        policy,
				Backend:       chatbackend.New(c),
				Log:           log,
			})
			if err != nil {
				return exitError{exitBadInput, err}
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return exitError{exitBadInput, fmt.Errorf("listen on %s: %w", listen, err)}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "kfleet ChatOps on http://%s: slash commands %s, interactivity %s (policy %s)\n",
				l.Addr(), chatops.PathCommands, chatops.PathInteractive, authFile)
			return srv.Run(ctx, l)
		},
	}
	cmd.AddCommand(newChatopsSayCommand())
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:3000", "address to serve on")
	f.StringVar(&authFile, "auth", "", "ChatOps policy file (YAML): who may run which verb on which cluster, from which channel")
	f.StringVar(&secretFile, "signing-secret-file", "", "file holding the Slack app's signing secret (default: $"+envSigningSecret+")")
	return cmd
}

// signingSecret reads the signing secret from file, or else from the
// environment. Its errors never quote it.
func signingSecret(file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("signing secret: %w", err)
		}
		if b = bytes.TrimSpace(b); len(b) == 0 {
			return nil, fmt.Errorf("signing secret: %s is empty", file)
		}
		return b, nil
	}
	if s := strings.TrimSpace(os.Getenv(envSigningSecret)); s != "" {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("no signing secret: set %s or pass --signing-secret-file", envSigningSecret)
}
