package chatops_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/chatops"
	"github.com/kfleet/kfleet/internal/fleet"
)

func TestMigrateVerbsInChat(t *testing.T) {
	good := []struct {
		text, canon string
		want        chatops.Command
	}{
		{"migrate start orders", "migrate-start orders", chatops.Command{Verb: chatops.VerbMigrateStart, Cluster: "orders"}},
		{"migrate start orders controllers=5", "migrate-start orders controllers=5",
			chatops.Command{Verb: chatops.VerbMigrateStart, Cluster: "orders", Controllers: 5}},
		{"migrate-start orders controllers=3", "migrate-start orders controllers=3",
			chatops.Command{Verb: chatops.VerbMigrateStart, Cluster: "orders", Controllers: 3}},
		{"  migrate   status\torders ", "migrate-status orders", chatops.Command{Verb: chatops.VerbMigrateStatus, Cluster: "orders"}},
		{"migrate approve orders 1", "migrate-approve orders 1",
			chatops.Command{Verb: chatops.VerbMigrateApprove, Cluster: "orders", Phase: fleet.PhaseControllers}},
		{"migrate approve orders 4", "migrate-approve orders 4",
			chatops.Command{Verb: chatops.VerbMigrateApprove, Cluster: "orders", Phase: fleet.PhaseFinalize}},
		{"migrate rollback orders", "migrate-rollback orders", chatops.Command{Verb: chatops.VerbMigrateRollback, Cluster: "orders"}},
		{"migrate rollback orders  quorum   lost", "migrate-rollback orders quorum lost",
			chatops.Command{Verb: chatops.VerbMigrateRollback, Cluster: "orders", Reason: "quorum lost"}},
		{"migrate abandon orders change freeze until 2027", "migrate-abandon orders change freeze until 2027",
			chatops.Command{Verb: chatops.VerbMigrateAbandon, Cluster: "orders", Reason: "change freeze until 2027"}},
		{"migrate abandon orders", "migrate-abandon orders", chatops.Command{Verb: chatops.VerbMigrateAbandon, Cluster: "orders"}},
	}
	for _, tt := range good {
		t.Run(tt.text, func(t *testing.T) {
			cmd, err := chatops.Parse(tt.text)
			require.NoError(t, err)
			assert.Equal(t, tt.want, cmd)
			assert.Equal(t, tt.canon, cmd.String(), "canonical")
			assert.NoError(t, cmd.Validate())
			again, err := chatops.Parse(cmd.String())
			require.NoError(t, err)
			assert.Equal(t, cmd, again)
		})
	}

	bad := []struct{ text, says string }{
		{"migrate start", "missing cluster"},
		{"migrate start Orders", `cluster "Orders"`},
		{"migrate start orders controllers=4", `controllers "4": want 3 or 5`},
		{"migrate start orders controllers=03", `controllers "03": want 3 or 5`},
		{"migrate start orders controllers=3 controllers=5", "controllers= given twice"},
		{"migrate start orders 3", `unexpected "3" (options are controllers, as key=value)`},
		{"migrate status orders now", `unexpected "now"`},
		{"migrate approve orders", "missing phase"},
		{"migrate approve orders 0", `phase "0": want 1 to 4`},
		{"migrate approve orders 5", `phase "5": want 1 to 4`},
		{"migrate approve orders +1", `phase "+1"`},
		{"migrate approve orders 01", `phase "01"`},
		{"migrate approve orders 1-controllers", `phase "1-controllers"`},
		{"migrate approve orders 1 2", `unexpected "2"`},
		{"migrate rollback orders \x07bell", "control characters are not allowed"},
		{"migrate finalize orders", `unknown verb "migrate"`},
		{"migrate", `unknown verb "migrate"`},
		{"migrate-phase orders", `unknown verb "migrate-phase"`},
	}
	for _, tt := range bad {
		t.Run(tt.text, func(t *testing.T) {
			got, err := chatops.Parse(tt.text)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.says)
			assert.Equal(t, chatops.Command{}, got)
		})
	}

	// Validate refuses what Parse never makes.
	for _, c := range []chatops.Command{
		{Verb: chatops.VerbMigrateApprove, Cluster: "orders"},
		{Verb: chatops.VerbMigrateApprove, Cluster: "orders", Phase: 5},
		{Verb: chatops.VerbMigrateApprove, Cluster: "orders", Phase: 1, Reason: "why"},
		{Verb: chatops.VerbMigrateStart, Cluster: "orders", Controllers: 4},
		{Verb: chatops.VerbMigrateStart, Cluster: "orders", Phase: 1},
		{Verb: chatops.VerbMigrateStatus, Cluster: "orders", Controllers: 3},
		{Verb: chatops.VerbMigrateRollback, Cluster: "orders", Reason: "two  spaces"},
		{Verb: chatops.VerbMigrateAbandon, Cluster: "orders", Reason: "bell\x07"},
		{Verb: chatops.VerbMigrateAbandon, Cluster: "orders", Phase: 2},
		{Verb: chatops.VerbPause, Cluster: "orders", Phase: 2},
		{Verb: chatops.VerbRestart, Cluster: "orders", Controllers: 3},
	} {
		assert.Error(t, c.Validate(), "%#v", c)
	}

	// The migration holds each phase for a second person itself: chat
	// asks no approval of its own.
	for _, v := range []chatops.Verb{chatops.VerbMigrateStart, chatops.VerbMigrateStatus, chatops.VerbMigrateApprove,
		chatops.VerbMigrateRollback, chatops.VerbMigrateAbandon} {
		assert.True(t, v.Known(), v)
		assert.True(t, v.NeedsCluster(), v)
		assert.False(t, v.Destructive(), v)
	}
}

// The migration's verbs run at once, each as its own verb the policy
// grants: a user granted migrate-status only cannot start or approve.
func TestMigrateVerbsRunAsGranted(t *testing.T) {
	h := newHarness(t, func(c *chatops.Config) {
		c.Policy = mustPolicy(t, `
rules:
  - users: [U0ALICE, bob]
    verbs: [migrate-start, migrate-status, migrate-approve, migrate-rollback, migrate-abandon]
    clusters: ["*"]
    channels: [COPS]
  - users: [carol]
    verbs: [migrate-status]
    clusters: ["*"]
    channels: [COPS]
`)
	})
	for _, text := range []string{"migrate start orders controllers=5", "migrate status orders", "migrate approve orders 1",
		"migrate rollback orders quorum lost", "migrate abandon orders"} {
		r := h.slash(t, alice, "COPS", text)
		assert.Equal(t, "in_channel", r.ResponseType, text)
		assert.Empty(t, r.Blocks, "no approval buttons: %s", text)
	}
	r := h.slash(t, carol, "COPS", "migrate status orders")
	assert.Equal(t, "in_channel", r.ResponseType)
	r = h.slash(t, carol, "COPS", "migrate approve orders 1")
	assert.Equal(t, "ephemeral", r.ResponseType)
	assert.Contains(t, r.Text, ":no_entry:")
	assert.Equal(t, []string{
		"run migrate-start orders controllers=5 by U0ALICE",
		"run migrate-status orders by U0ALICE",
		"run migrate-approve orders 1 by U0ALICE",
		"run migrate-rollback orders quorum lost by U0ALICE",
		"run migrate-abandon orders by U0ALICE",
		"run migrate-status orders by carol",
	}, h.backend.Calls())
	r = h.slash(t, alice, "COPS", "help")
	assert.Contains(t, r.Text, "migrate approve &lt;cluster&gt; &lt;phase 1-4&gt;")
}
