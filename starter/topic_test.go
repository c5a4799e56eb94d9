package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// Bad input to the topic commands exits 2 before Temporal is dialled.
func TestTopicCommandsRefuseBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"topic", "create", "--tenant", "wabash-1", "--topic", "wabash-1.a", "--partitions", "3"}, "--cluster is required"},
		{[]string{"topic", "create", "--cluster", "orders", "--topic", "wabash-1.a", "--partitions", "3"}, "--tenant"},
		{[]string{"topic", "create", "--cluster", "orders", "--tenant", "wabash-1", "--partitions", "3"}, "--topic is required"},
		{[]string{"topic", "create", "--cluster", "orders", "--tenant", "wabash-1", "--topic", "wabash-1.a"}, "--partitions is required"},
		{[]string{"topic", "create", "--cluster", "orders", "--tenant", "wabash-1", "--topic", "ohio-2.a", "--partitions", "3"}, "outside tenant wabash-1's prefix"},
		{[]string{"topic", "delete", "--cluster", "orders", "--tenant", "wabash-1", "--topic", "ohio-2.a"}, "outside tenant wabash-1's prefix"},
		{[]string{"topic", "add-partitions", "--cluster", "orders", "--tenant", "wabash-1", "--topic", "wabash-1.a"}, "--partitions is required"},
		{[]string{"topic", "add-partitions", "--cluster", "orders", "--tenant", "wabash-1", "--topic", "ohio-2.a", "--partitions", "6"}, "outside tenant wabash-1's prefix"},
		{[]string{"topic", "add-partitions", "--cluster", "orders", "--tenant", "wabash-1", "--topic", "wabash-1.a", "--partitions", "10001"}, "want 1 to 10000"},
		{[]string{"topic", "retention", "--cluster", "orders", "--tenant", "wabash-1", "--topic", "wabash-1.a"}, "--retention is required"},
		{[]string{"topic", "retention", "--cluster", "orders", "--tenant", "wabash-1", "--topic", "wabash-1.a", "--retention", "-1h"}, "--retention is required"},
		{[]string{"topic", "retention", "--tenant", "wabash-1", "--topic", "wabash-1.a", "--retention", "6h"}, "--cluster is required"},
		{[]string{"group", "delete", "--cluster", "orders", "--tenant", "wabash-1"}, "--group is required"},
		{[]string{"group", "delete", "--cluster", "orders", "--tenant", "wabash-1", "--group", "ohio-2.g"}, `group "ohio-2.g" is outside tenant wabash-1's prefix`},
		{[]string{"group", "delete", "--cluster", "orders", "--group", "wabash-1.g"}, "--tenant"},
	} {
		t.Run(tc.says, func(t *testing.T) {
			root := newRootCommand()
			root.SetArgs(append(tc.args, "--address", "127.0.0.1:1"))
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			err := root.Execute()
			var ee exitError
			require.True(t, errors.As(err, &ee), "%v", err)
			assert.Equal(t, exitBadInput, ee.code)
			assert.ErrorContains(t, err, tc.says)
		})
	}
}

func TestTopicCreateRequest(t *testing.T) {
	f := topicFlags{tenantFlags: tenantFlags{cluster: "orders", tenant: "wabash-1", by: "alice"}, topic: "wabash-1.a"}
	req, err := f.request("create", fleet.TopicRequest{Partitions: 6, RetentionMs: 86_400_000})
	require.NoError(t, err)
	assert.Equal(t, workflows.OpTopicAdmin, req.Kind)
	assert.JSONEq(t, `{"action":"create","topics":[{"tenant":"wabash-1","name":"wabash-1.a","partitions":6,"retentionMs":86400000}]}`, string(req.Params))
	k, err := workflows.KindNamed(req.Kind)
	require.NoError(t, err)
	assert.NoError(t, k.Check(req))
}

// Each command asks for its action, a batch of one, which the kind's own
// check accepts and whose verb is the chat's.
func TestTopicAndGroupRequests(t *testing.T) {
	f := topicFlags{tenantFlags: tenantFlags{cluster: "orders", tenant: "wabash-1", by: "alice"}, topic: "wabash-1.a"}
	g := groupFlags{tenantFlags: tenantFlags{cluster: "orders", tenant: "wabash-1", by: "alice"}, group: "wabash-1.g"}
	for _, tc := range []struct {
		req    func() (workflows.Request, error)
		params string
		verb   string
	}{
		{func() (workflows.Request, error) {
			return f.request("add-partitions", fleet.TopicRequest{Partitions: 12})
		},
			`{"action":"add-partitions","topics":[{"tenant":"wabash-1","name":"wabash-1.a","partitions":12}]}`, "topic-partitions"},
		{func() (workflows.Request, error) {
			return f.request("retention", fleet.TopicRequest{RetentionMs: 129_600_000})
		},
			`{"action":"retention","topics":[{"tenant":"wabash-1","name":"wabash-1.a","retentionMs":129600000}]}`, "topic-retention"},
		{func() (workflows.Request, error) { return f.request("delete", fleet.TopicRequest{}) },
			`{"action":"delete","topics":[{"tenant":"wabash-1","name":"wabash-1.a"}]}`, "topic-delete"},
		{g.request, `{"action":"delete-groups","topics":[{"tenant":"wabash-1","name":"wabash-1.g"}]}`, "group-delete"},
	} {
		t.Run(tc.verb, func(t *testing.T) {
			req, err := tc.req()
			require.NoError(t, err)
			assert.Equal(t, workflows.OpTopicAdmin, req.Kind)
			assert.JSONEq(t, tc.params, string(req.Params))
			k, err := workflows.KindNamed(req.Kind)
			require.NoError(t, err)
			require.NoError(t, k.Check(req))
			verb, err := k.VerbOf(req)
			require.NoError(t, err)
			assert.Equal(t, tc.verb, verb)
		})
	}
}

// A batch that succeeded but refused one of this request's topics fails
// the command with the reason; other requests' refusals in the same batch
// are not this command's.
func TestRefusedInJudgesOnlyTheRequestsTopics(t *testing.T) {
	raw, err := json.Marshal(workflows.TopicAdminParams{Action: "create", Topics: []fleet.TopicRequest{{Tenant: "wabash-1", Name: "wabash-1.a", Partitions: 1}}})
	require.NoError(t, err)
	judge := refusedIn(workflows.Request{Kind: workflows.OpTopicAdmin, Params: raw})
	tests := []struct {
		name    string
		refused []activities.TopicRefusal
		want    string
	}{
		{"none refused", nil, ""},
		{"another request's topic refused", []activities.TopicRefusal{{Topic: "ohio-2.b", Reason: "over ohio-2's plan"}}, ""},
		{"this request's topic refused", []activities.TopicRefusal{{Topic: "ohio-2.b", Reason: "x"}, {Topic: "wabash-1.a", Reason: "topic wabash-1.a: its replicas need ~361 more segments"}},
			"topic wabash-1.a: its replicas need ~361 more segments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := json.Marshal(activities.TopicBatchResult{Requested: 2, Refused: tt.refused})
			require.NoError(t, err)
			err = judge(res)
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			assert.EqualError(t, err, tt.want)
		})
	}
}
