package devstack

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"

	"github.com/kfleet/kfleet/internal/chatbackend"
	"github.com/kfleet/kfleet/internal/chatops"
)

// Chatops is the local stack's ChatOps server, as `starter chatops` runs it
// for a real Slack app.
type Chatops struct {
	// URL is where slash commands and interactivity post
	// (URL+chatops.PathCommands, URL+chatops.PathInteractive).
	URL string
	// SecretFile holds the signing secret a local client signs with;
	// PolicyFile the policy.
	SecretFile, PolicyFile string

	srv *chatops.Server
}

// devPolicy lets the local stack's people do everything on every cluster
// from any channel: alice, bob and carol, so that one can approve
// another's restart.
const devPolicy = `# ChatOps policy of the local stack (starter dev); edit and restart.
rules:
  - users: [alice, bob, carol]
    verbs: ["*"]
    clusters: ["*"]
    channels: ["*"]
`

// startChatops serves ChatOps on addr with a signing secret and a policy
// kept under dir (created on first use, kept across restarts).
func (s *Stack) startChatops(addr, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("chatops: %w", err)
	}
	c := &Chatops{SecretFile: filepath.Join(dir, "signing-secret"), PolicyFile: filepath.Join(dir, "policy.yaml")}
	secret, err := os.ReadFile(c.SecretFile)
	if errors.Is(err, fs.ErrNotExist) {
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return fmt.Errorf("chatops: signing secret: %w", err)
		}
		secret = []byte(hex.EncodeToString(raw))
		err = os.WriteFile(c.SecretFile, secret, 0o600)
	}
	if err != nil {
		return fmt.Errorf("chatops: signing secret: %w", err)
	}
	if _, err := os.Stat(c.PolicyFile); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(c.PolicyFile, []byte(devPolicy), 0o600); err != nil {
			return fmt.Errorf("chatops: policy: %w", err)
		}
	}
	policy, err := chatops.LoadPolicy(c.PolicyFile)
	if err != nil {
		return err
	}
	if c.srv, err = chatops.NewServer(chatops.Config{
		SigningSecret:         secret,
		Policy:                policy,
		Backend:               chatbackend.New(s.Client),
		Log:                   s.opts.Log.With().Str("component", "chatops").Logger(),
		AllowHTTPResponseURLs: true, // a local Slack stand-in has no TLS
	}); err != nil {
		return err
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("chatops: listen on %s: %w", addr, err)
	}
	c.URL = "http://" + l.Addr().String()
	go func() { _ = c.srv.Serve(l) }()
	s.Chatops = c
	return nil
}
