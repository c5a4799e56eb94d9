package chatops_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/chatops"
)

func TestTopicVerbsInChat(t *testing.T) {
	good := []struct {
		text, canon string
		want        chatops.Command
	}{
		{"topic create orders wabash-1 wabash-1.clicks", "topic-create orders wabash-1 wabash-1.clicks",
			chatops.Command{Verb: chatops.VerbTopicCreate, Cluster: "orders", Tenant: "wabash-1", Topic: "wabash-1.clicks"}},
		{"topic create orders wabash-1 wabash-1.clicks retention=6h rf=2 partitions=12", "topic-create orders wabash-1 wabash-1.clicks partitions=12 rf=2 retention=6h",
			chatops.Command{Verb: chatops.VerbTopicCreate, Cluster: "orders", Tenant: "wabash-1", Topic: "wabash-1.clicks", Partitions: 12, ReplicationFactor: 2, Retention: "6h"}},
		{"topic-create orders wabash-1 wabash-1.a", "topic-create orders wabash-1 wabash-1.a",
			chatops.Command{Verb: chatops.VerbTopicCreate, Cluster: "orders", Tenant: "wabash-1", Topic: "wabash-1.a"}},
		{"topic delete orders wabash-1 wabash-1.clicks", "topic-delete orders wabash-1 wabash-1.clicks",
			chatops.Command{Verb: chatops.VerbTopicDelete, Cluster: "orders", Tenant: "wabash-1", Topic: "wabash-1.clicks"}},
		{"topic partitions orders wabash-1 wabash-1.clicks 24", "topic-partitions orders wabash-1 wabash-1.clicks 24",
			chatops.Command{Verb: chatops.VerbTopicPartitions, Cluster: "orders", Tenant: "wabash-1", Topic: "wabash-1.clicks", Partitions: 24}},
		{"topic retention orders wabash-1 wabash-1.clicks 36h", "topic-retention orders wabash-1 wabash-1.clicks 36h",
			chatops.Command{Verb: chatops.VerbTopicRetention, Cluster: "orders", Tenant: "wabash-1", Topic: "wabash-1.clicks", Retention: "36h"}},
		{"group delete orders wabash-1 wabash-1.billing", "group-delete orders wabash-1 wabash-1.billing",
			chatops.Command{Verb: chatops.VerbGroupDelete, Cluster: "orders", Tenant: "wabash-1", Group: "wabash-1.billing"}},
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
	assert.Equal(t, int64(36*3600*1000), chatops.Command{Retention: "36h"}.RetentionMs())
	assert.True(t, chatops.VerbTopicDelete.Destructive(), "deleting a tenant's topic loses its data: a second person approves it")
	for _, v := range []chatops.Verb{chatops.VerbTopicCreate, chatops.VerbTopicPartitions, chatops.VerbTopicRetention, chatops.VerbGroupDelete} {
		assert.False(t, v.Destructive(), v)
	}

	bad := []struct{ text, says string }{
		{"topic create orders", "missing tenant"},
		{"topic create orders wabash-1", "missing topic"},
		{"topic create orders wabash-1 ohio-2.a", `topic "ohio-2.a": want a topic under tenant wabash-1's prefix wabash-1.`},
		{"topic create orders wabash-1 wabash-1.", `topic "wabash-1."`},
		{"topic create orders wabash-1 wabash-1.a partitions=0", `partitions "0": want a number from 1 to 10000`},
		{"topic create orders wabash-1 wabash-1.a rf=17", `rf "17"`},
		{"topic create orders wabash-1 wabash-1.a retention=6d", `retention "6d": want a duration like 6h`},
		{"topic create orders wabash-1 wabash-1.a retention=-1h", `retention "-1h"`},
		{"topic create orders wabash-1 wabash-1.a segment=1", `unexpected "segment=1" (options are partitions, rf, retention, as key=value)`},
		{"topic create orders wabash-1 wabash-1.a partitions=1 partitions=2", "partitions= given twice"},
		{"topic delete orders wabash-1 wabash-1.a now", `unexpected "now"`},
		{"topic partitions orders wabash-1 wabash-1.a", "missing partitions"},
		{"topic partitions orders wabash-1 wabash-1.a +3", `partitions "+3"`},
		{"topic retention orders wabash-1 wabash-1.a", "missing retention"},
		{"topic retention orders wabash-1 wabash-1.a 1.5ns", `retention "1.5ns"`},
		{"group delete orders wabash-1 ohio-2.g", `group "ohio-2.g": want a group id under tenant wabash-1's prefix`},
		{"group delete orders wabash-1", "missing group"},
		{"topic rename orders wabash-1 wabash-1.a", `unknown verb "topic"`},
		{"topic", `unknown verb "topic"`},
	}
	for _, tt := range bad {
		t.Run(tt.text, func(t *testing.T) {
			got, err := chatops.Parse(tt.text)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.says)
			assert.Equal(t, chatops.Command{}, got)
		})
	}
	assert.Error(t, chatops.Command{Verb: chatops.VerbTopicDelete, Cluster: "orders", Tenant: "wabash-1", Topic: "wabash-1.a", Partitions: 3}.Validate(),
		"fields of another verb")
	assert.Error(t, chatops.Command{Verb: chatops.VerbGroupDelete, Cluster: "orders", Tenant: "wabash-1", Topic: "wabash-1.a"}.Validate())
}

// A topic's creation, new partitions and retention run at once; its
// deletion waits for a second person; a group's deletion runs at once.
func TestTopicVerbsRunOrWaitForApproval(t *testing.T) {
	h := newHarness(t, func(c *chatops.Config) {
		c.Policy = mustPolicy(t, `
rules:
  - users: [U0ALICE, bob]
    verbs: [topic-create, topic-delete, topic-partitions, topic-retention, group-delete]
    clusters: ["*"]
    channels: [COPS]
`)
	})
	for _, text := range []string{"topic create orders wabash-1 wabash-1.a partitions=3", "topic partitions orders wabash-1 wabash-1.a 6",
		"topic retention orders wabash-1 wabash-1.a 12h", "group delete orders wabash-1 wabash-1.g"} {
		r := h.slash(t, alice, "COPS", text)
		assert.Equal(t, "in_channel", r.ResponseType, text)
	}
	r := h.slash(t, alice, "COPS", "topic delete orders wabash-1 wabash-1.a")
	assert.Contains(t, r.Text, "asks for `topic-delete orders wabash-1 wabash-1.a`: a second person must approve")
	assert.Equal(t, []string{
		"run topic-create orders wabash-1 wabash-1.a partitions=3 by U0ALICE",
		"run topic-partitions orders wabash-1 wabash-1.a 6 by U0ALICE",
		"run topic-retention orders wabash-1 wabash-1.a 12h by U0ALICE",
		"run group-delete orders wabash-1 wabash-1.g by U0ALICE",
		"propose topic-delete orders wabash-1 wabash-1.a by U0ALICE to bob",
	}, h.backend.Calls())
	r = h.slash(t, alice, "COPS", "help")
	assert.Contains(t, r.Text, "topic partitions &lt;cluster&gt; &lt;tenant&gt; &lt;topic&gt; &lt;N&gt;")
}
