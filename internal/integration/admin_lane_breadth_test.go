package integration_test

import (
	"context"
	"encoding/json"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/chatbackend"
	"github.com/kfleet/kfleet/internal/chatops"
	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// TestIntegrationAdminLaneBreadth: on a SASL+ACL cluster, a tenant's
// partitions added, retention set and consumer groups deleted go through
// the cluster's entity (one of them asked from chat, through the chat
// backend), and the cluster's state says so through a Kafka client: the
// partition counts, retention.ms by DescribeConfigs, the idle group gone.
// What is refused — over the plan, outside the prefix, a retention out of
// the plan's bounds at admission; fewer partitions, a retention over a
// broker's FD/mmap budget and a group with a live member (NON_EMPTY_GROUP)
// in the batch — touches nothing.
func TestIntegrationAdminLaneBreadth(t *testing.T) {
	t.Parallel() // mostly waiting
	const (
		cluster   = "breadth-a"
		superPass = "breadth-superuser-secret"
		tenant    = "breadth-00001"
	)
	stack := startStackWith(t, fastFleet(secured(localfleet.ClusterConfig{ID: cluster, Brokers: 3}, superPass)), func(o *devstack.StackOptions) {
		o.NotifyOut = io.Discard
		o.Secrets = "file:" + t.TempDir()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := stack.Client
	waitStatus(ctx, t, stack, cluster, 30*time.Second, "the brokers' disks are known", func(st workflows.ClusterStatus) bool {
		return workflows.TenantRoom(st).DiskBytes > 0
	})
	_, op, err := entity.CreateTenant(ctx, c, cluster, workflows.TenantCreateParams{Plan: "basic-0", Name: tenant}, "alice", "")
	require.NoError(t, err)
	_, _, err = entity.Follow[workflows.TenantResult](ctx, c, cluster, op.ID, 100*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err)

	name := func(s string) string { return fleet.TenantPrefix(tenant) + s }
	// run asks the entity for a batch of action and follows it to its end;
	// the histories of those in record are kept for the replay test
	// (`make record-histories`).
	record := map[string]string{activities.TopicActionAddPartitions: "topic_admin_add_partitions.json",
		activities.TopicActionRetention: "topic_admin_retention.json", activities.TopicActionDeleteGroups: "topic_admin_delete_groups.json"}
	run := func(action string, topics ...fleet.TopicRequest) activities.TopicBatchResult {
		t.Helper()
		raw, _ := json.Marshal(workflows.TopicAdminParams{Action: action, Topics: topics})
		op, err := entity.Request(ctx, c, cluster, workflows.Request{Kind: workflows.OpTopicAdmin, RequestedBy: "alice", Params: raw})
		require.NoError(t, err, action)
		res, end, err := entity.Follow[activities.TopicBatchResult](ctx, c, cluster, op.ID, 100*time.Millisecond, func(entity.Progress) {})
		require.NoError(t, err, action)
		t.Logf("%s: %s", action, end.Outcome)
		if file, ok := record[action]; ok {
			recordHistories(ctx, t, c, map[string]string{end.WorkflowID: file})
			delete(record, action)
		}
		return res
	}
	refused := func(action string, topic fleet.TopicRequest, says string) {
		t.Helper()
		raw, _ := json.Marshal(workflows.TopicAdminParams{Action: action, Topics: []fleet.TopicRequest{topic}})
		_, err := entity.Request(ctx, c, cluster, workflows.Request{Kind: workflows.OpTopicAdmin, RequestedBy: "alice", Params: raw})
		require.ErrorContains(t, err, says, action)
	}

	res := run(activities.TopicActionCreate, fleet.TopicRequest{Tenant: tenant, Name: name("a"), Partitions: 3},
		fleet.TopicRequest{Tenant: tenant, Name: name("b"), Partitions: 4})
	require.Equal(t, 2, res.Done, "%+v", res)

	// Admission refuses, touching nothing.
	refused(activities.TopicActionAddPartitions, fleet.TopicRequest{Tenant: tenant, Name: name("a"), Partitions: 300}, "over plan basic-0's 240")
	refused(activities.TopicActionAddPartitions, fleet.TopicRequest{Tenant: tenant, Name: "elsewhere.a", Partitions: 6}, "is outside tenant")
	refused(activities.TopicActionRetention, fleet.TopicRequest{Tenant: tenant, Name: name("a"), RetentionMs: time.Hour.Milliseconds()},
		"retention 1h0m0s is outside plan basic-0's bounds")
	refused(activities.TopicActionDeleteGroups, fleet.TopicRequest{Tenant: tenant, Name: "elsewhere.g"}, "is outside tenant")

	// Partitions: a to 6; b to 2 is refused in the batch (fewer than its 4).
	res = run(activities.TopicActionAddPartitions, fleet.TopicRequest{Tenant: tenant, Name: name("a"), Partitions: 6},
		fleet.TopicRequest{Tenant: tenant, Name: name("b"), Partitions: 2})
	assert.Equal(t, 1, res.Done)
	require.Len(t, res.Refused, 1)
	assert.Contains(t, res.Refused[0].Reason, "has 4 partition(s): add-partitions wants a larger total, not 2")
	// From chat, through the chat backend (what the Slack server calls).
	cmd, err := chatops.Parse("topic partitions " + cluster + " " + tenant + " " + name("b") + " 8")
	require.NoError(t, err)
	chat := chatbackend.New(c)
	text, opID, err := chat.Run(ctx, cmd, "U0ALICE")
	require.NoError(t, err)
	t.Logf("chat: %s", text)
	_, _, err = entity.Follow[activities.TopicBatchResult](ctx, c, cluster, opID, 100*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err)

	// Retention: a to 36h.
	res = run(activities.TopicActionRetention, fleet.TopicRequest{Tenant: tenant, Name: name("a"), RetentionMs: (36 * time.Hour).Milliseconds()})
	assert.Equal(t, 1, res.Done, "%+v", res)
	// The FD/mmap budget: with broker 2's vm.max_map_count lowered, a
	// week's retention (more segments per partition) is refused in the
	// batch, and a keeps its 36h.
	mapsBefore, err := stack.Fleet.SetLimit(ctx, cluster, 2, localfleet.LimitMaxMapCount, 64, "integration-test")
	require.NoError(t, err)
	res = run(activities.TopicActionRetention, fleet.TopicRequest{Tenant: tenant, Name: name("a"), RetentionMs: (168 * time.Hour).Milliseconds()})
	require.Len(t, res.Refused, 1, "%+v", res)
	assert.Contains(t, res.Refused[0].Reason, "more segments on broker 2")
	_, err = stack.Fleet.SetLimit(ctx, cluster, 2, localfleet.LimitMaxMapCount, mapsBefore, "integration-test")
	require.NoError(t, err)

	// Groups: an idle one (offsets committed, no member) and a live one.
	adm := superAdmin(t, stack, cluster, superPass)
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: name("a"), Partition: 0, At: 0, LeaderEpoch: -1})
	_, err = adm.CommitOffsets(ctx, name("idle"), offsets)
	require.NoError(t, err)
	member := tenantClient(t, fleet.TenantCredentials{User: "admin", Password: superPass, Mechanism: fleet.TenantSASLMechanism,
		Bootstrap: stack.Specs[cluster].Bootstrap}, kgo.ConsumerGroup(name("live")), kgo.ConsumeTopics(name("a")))
	require.Eventually(t, func() bool {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer pcancel()
		member.PollFetches(pctx)
		g, err := adm.DescribeGroups(ctx, name("live"))
		return err == nil && len(g[name("live")].Members) > 0
	}, 20*time.Second, 100*time.Millisecond, "the consumer joins its group")
	res = run(activities.TopicActionDeleteGroups, fleet.TopicRequest{Tenant: tenant, Name: name("idle")}, fleet.TopicRequest{Tenant: tenant, Name: name("live")})
	assert.Equal(t, 1, res.Done)
	require.Len(t, res.Refused, 1)
	assert.Contains(t, res.Refused[0].Reason, "NON_EMPTY_GROUP")
	assert.Equal(t, 1, res.Requests, "NON_EMPTY_GROUP is not retried")

	// The cluster's state, through a Kafka client.
	listed, err := adm.ListTopics(ctx, name("a"), name("b"))
	require.NoError(t, err)
	assert.Len(t, listed[name("a")].Partitions, 6)
	assert.Len(t, listed[name("b")].Partitions, 8)
	rcs, err := adm.DescribeTopicConfigs(ctx, name("a"))
	require.NoError(t, err)
	rc, err := rcs.On(name("a"), nil)
	require.NoError(t, err)
	retention := ""
	for _, cfg := range rc.Configs {
		if cfg.Key == "retention.ms" && cfg.Value != nil {
			retention = *cfg.Value
		}
	}
	assert.Equal(t, strconv.FormatInt((36*time.Hour).Milliseconds(), 10), retention)
	groups, err := adm.ListGroups(ctx)
	require.NoError(t, err)
	assert.NotContains(t, groups, name("idle"), "the idle group is gone")
	assert.Contains(t, groups, name("live"), "the live group is untouched")
	noViolations(t, stack, cluster)
}
