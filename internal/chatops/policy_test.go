package chatops_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/chatops"
)

const testPolicy = `
rules:
  # The on-call pair runs everything on local-a, from #kafka-ops only.
  - users: [U0ALICE, bob]
    verbs: [status, list, restart, upgrade, expand, abort, pause, resume, cleaner-check]
    clusters: [local-a]
    channels: [COPS]
  # Dave may restart any cluster, from anywhere.
  - users: [U0DAVE]
    verbs: [restart]
    clusters: ["*"]
    channels: ["*"]
  # Everyone may read status, anywhere.
  - users: ["*"]
    verbs: [status]
    clusters: ["*"]
    channels: ["*"]
`

var (
	alice = chatops.User{ID: "U0ALICE", Name: "alice"}
	bob   = chatops.User{ID: "U0BOB", Name: "bob"}
	carol = chatops.User{ID: "U0CAROL", Name: "carol"}
	dave  = chatops.User{ID: "U0DAVE", Name: "dave"}
)

func mustPolicy(t testing.TB, yaml string) *chatops.Policy {
	t.Helper()
	p, err := chatops.ParsePolicy([]byte(yaml))
	require.NoError(t, err)
	return p
}

func TestAuthorize(t *testing.T) {
	p := mustPolicy(t, testPolicy)
	tests := []struct {
		name    string
		user    chatops.User
		verb    chatops.Verb
		cluster string
		channel string
		// who is the identity when allowed; else refusal is in the error.
		who, refusal string
	}{
		{"by id", alice, chatops.VerbRestart, "local-a", "COPS", "U0ALICE", ""},
		{"by name", bob, chatops.VerbRestart, "local-a", "COPS", "bob", ""},
		{"list ignores cluster", bob, chatops.VerbList, "", "COPS", "bob", ""},
		{"wildcard user", carol, chatops.VerbStatus, "local-b", "CRANDOM", "U0CAROL", ""},
		{"wildcard cluster and channel", dave, chatops.VerbRestart, "prod-x", "CRANDOM", "U0DAVE", ""},
		{"help for anyone", chatops.User{ID: "U0NOBODY"}, chatops.VerbHelp, "", "CX", "U0NOBODY", ""},
		{"id wins over name when both match", alice, chatops.VerbStatus, "local-a", "COPS", "U0ALICE", ""},
		{"unknown user, wildcard status", chatops.User{ID: "U0EVE", Name: "eve"}, chatops.VerbRestart, "local-a", "COPS", "", "you may not run restart"},
		{"verb not granted", carol, chatops.VerbRestart, "local-a", "COPS", "", "you may not run restart"},
		{"cluster not granted", alice, chatops.VerbRestart, "local-b", "COPS", "", "you may not run restart on cluster local-b"},
		{"channel not granted", alice, chatops.VerbRestart, "local-a", "CRANDOM", "", "on cluster local-a from this channel"},
		{"list from another channel", alice, chatops.VerbList, "", "CRANDOM", "", "may not run list from this channel"},
		{"a name does not match an id", chatops.User{ID: "U0MALLORY", Name: "U0ALICE"}, chatops.VerbRestart, "local-a", "COPS", "", "you may not run restart"},
		{"an id does not match a name", chatops.User{ID: "bob", Name: "mallory"}, chatops.VerbRestart, "local-a", "COPS", "", "you may not run restart"},
		{"nobody", chatops.User{}, chatops.VerbStatus, "local-a", "COPS", "", "names no user"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			who, err := p.Authorize(tt.user, tt.verb, tt.cluster, tt.channel)
			if tt.refusal != "" {
				require.ErrorIs(t, err, chatops.ErrUnauthorized)
				assert.Contains(t, err.Error(), tt.refusal)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.who, who)
		})
	}
}

func TestAuthorizeUnknownUser(t *testing.T) {
	p := mustPolicy(t, "rules:\n- users: [U0ALICE]\n  verbs: [status]\n  clusters: ['*']\n  channels: ['*']\n")
	_, err := p.Authorize(chatops.User{ID: "U0EVE", Name: "eve"}, chatops.VerbStatus, "local-a", "COPS")
	require.ErrorIs(t, err, chatops.ErrUnauthorized)
	assert.EqualError(t, err, "not authorized: you are not in kfleet's ChatOps policy")
	_, err = p.Authorize(chatops.User{ID: "U0MALLORY", Name: "U0ALICE"}, chatops.VerbStatus, "local-a", "COPS")
	assert.ErrorContains(t, err, "not in kfleet's ChatOps policy", "a user name never passes for an id")
}

func TestApprovers(t *testing.T) {
	p := mustPolicy(t, testPolicy)
	assert.Equal(t, []string{"U0DAVE", "bob"}, p.Approvers(chatops.VerbRestart, "local-a", "COPS", alice))
	assert.Equal(t, []string{"U0ALICE", "U0DAVE"}, p.Approvers(chatops.VerbRestart, "local-a", "COPS", bob))
	assert.Equal(t, []string{"U0DAVE"}, p.Approvers(chatops.VerbRestart, "local-b", "COPS", alice))
	assert.Empty(t, p.Approvers(chatops.VerbRestart, "local-b", "CRANDOM", dave))
	assert.Equal(t, []string{"bob"}, p.Approvers(chatops.VerbUpgrade, "local-a", "COPS", alice))
}

func TestParsePolicyRefuses(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"empty", "", "no rules"},
		{"no rules", "rules: []", "no rules"},
		{"typo in a field", "rules:\n- user: [a]\n  verbs: [status]\n  clusters: [a]\n  channels: [C1]", "field user not found"},
		{"unknown verb", "rules:\n- users: [a]\n  verbs: [retsart]\n  clusters: [a]\n  channels: [C1]", `rule 1: verbs: unknown verb "retsart"`},
		{"bad cluster", "rules:\n- users: [a]\n  verbs: [status]\n  clusters: [Prod_A]\n  channels: [C1]", `rule 1: clusters: cluster "Prod_A"`},
		{"missing channels", "rules:\n- users: [a]\n  verbs: [status]\n  clusters: [a]", "rule 1: channels: at least one is required"},
		{"empty user", "rules:\n- users: ['']\n  verbs: [status]\n  clusters: [a]\n  channels: [C1]", "is not a user id or name"},
		{"anyone may restart", "rules:\n- users: ['*']\n  verbs: [status, restart]\n  clusters: [a]\n  channels: [C1]", `users "*" may not be granted restart`},
		{"anyone may do anything", "rules:\n- users: ['*']\n  verbs: ['*']\n  clusters: [a]\n  channels: [C1]", "may not be granted abort"},
		{"second rule", "rules:\n- users: [a]\n  verbs: [status]\n  clusters: [a]\n  channels: [C1]\n- users: [a]\n  verbs: [status]\n  clusters: []\n  channels: [C1]", "rule 2: clusters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := chatops.ParsePolicy([]byte(tt.yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestLoadPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chatops.yaml")
	require.NoError(t, os.WriteFile(path, []byte(testPolicy), 0o600))
	p, err := chatops.LoadPolicy(path)
	require.NoError(t, err)
	_, err = p.Authorize(alice, chatops.VerbRestart, "local-a", "COPS")
	assert.NoError(t, err)

	_, err = chatops.LoadPolicy(filepath.Join(t.TempDir(), "missing.yaml"))
	assert.ErrorContains(t, err, "chatops policy")
}
