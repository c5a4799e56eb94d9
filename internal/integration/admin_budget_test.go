package integration_test

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// TestIntegrationAdminLaneRefusesTopicsOverTheMapBudget: the FD/mmap
// budget (OPERATIONS.md "Tenants"). Every broker holds 1,000 segments and
// may map 2,700 (vm.max_map_count), so the lane's budget (80% of it, 2
// maps a segment) leaves room for 80 more segments a broker. A tenant asks
// for a topic with Kafka's defaults (2 segments a replica) and one rolling
// a segment a minute for six hours (361 a replica) in one request: the
// first is created, the second refused with the broker and the figures,
// before any broker dies; no broker down, no violation, judged by the
// fleet's audit. The same rolling topic created straight at another
// cluster with the same limits kills its brokers with Map failed.
func TestIntegrationAdminLaneRefusesTopicsOverTheMapBudget(t *testing.T) {
	t.Parallel() // mostly waiting
	const (
		lane, straight = "budget-a", "budget-b"
		superPass      = "budget-superuser-secret"
		maxMapCount    = 2700
		tenant         = "deep-00001"
	)
	stack := startStackWith(t, fastFleet(
		secured(localfleet.ClusterConfig{ID: lane, Brokers: 3, SegmentsPerBroker: 1000}, superPass),
		localfleet.ClusterConfig{ID: straight, Brokers: 3, Topics: []localfleet.TopicConfig{}, SegmentsPerBroker: 1000},
	), func(o *devstack.StackOptions) {
		o.NotifyOut = io.Discard
		o.Secrets = "file:" + t.TempDir()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, id := range []string{lane, straight} {
		for b := int32(1); b <= 3; b++ {
			_, err := stack.Fleet.SetLimit(ctx, id, b, localfleet.LimitMaxMapCount, maxMapCount, "ops")
			require.NoError(t, err)
		}
	}
	waitStatus(ctx, t, stack, lane, 30*time.Second, "the brokers' disks are known", func(st workflows.ClusterStatus) bool {
		return workflows.TenantRoom(st).DiskBytes > 0
	})
	_, op, err := entity.CreateTenant(ctx, stack.Client, lane, workflows.TenantCreateParams{Plan: "basic-0", Name: tenant}, "alice", "")
	require.NoError(t, err)
	_, _, err = entity.Follow[workflows.TenantResult](ctx, stack.Client, lane, op.ID, 100*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err)

	rolling := fleet.TopicRequest{Tenant: tenant, Name: tenant + ".rolling", Partitions: 1,
		RetentionMs: (6 * time.Hour).Milliseconds(), SegmentMs: time.Minute.Milliseconds()}
	raw, err := json.Marshal(workflows.TopicAdminParams{Action: "create", Topics: []fleet.TopicRequest{
		{Tenant: tenant, Name: tenant + ".plain", Partitions: 3}, rolling}})
	require.NoError(t, err)
	op, err = entity.Request(ctx, stack.Client, lane, workflows.Request{Kind: workflows.OpTopicAdmin, RequestedBy: tenant, Params: raw})
	require.NoError(t, err, "admission: both topics' own figures are within the plan")
	st := waitStatus(ctx, t, stack, lane, time.Minute, "the batch ended", func(st workflows.ClusterStatus) bool {
		for _, h := range st.History {
			if h.ID == op.ID {
				return true
			}
		}
		return false
	})
	for _, h := range st.History {
		if h.ID == op.ID {
			t.Logf("batch %s: %s: %s", h.ID, h.Status, h.Outcome)
			assert.Equal(t, workflows.StatusSucceeded, h.Status, h.Error)
			assert.Contains(t, h.Outcome, "1 of 2 topic(s) done")
			assert.Contains(t, h.Outcome, "topic "+rolling.Name+": its replicas need ~361 more segments on broker")
			assert.Contains(t, h.Outcome, "which has room for 74 within 80% of nofile and vm.max_map_count")
		}
	}
	adm := superAdmin(t, stack, lane, superPass)
	listed, err := adm.ListTopics(ctx)
	require.NoError(t, err)
	assert.Contains(t, listed, tenant+".plain")
	assert.NotContains(t, listed, rolling.Name)
	for _, e := range stack.Fleet.Audit(lane) {
		assert.NotEqual(t, localfleet.EventCrash, e.Kind, "no broker died: %+v", e)
	}
	noViolations(t, stack, lane)

	// The contrast: the same topic straight at the other cluster.
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Specs[straight].Bootstrap...))
	require.NoError(t, err)
	defer cl.Close()
	six, minute := "21600000", "60000"
	created, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 3, map[string]*string{"retention.ms": &six, "segment.ms": &minute}, rolling.Name)
	require.NoError(t, err)
	require.NoError(t, created.Err)
	require.Eventually(t, func() bool {
		for _, e := range stack.Fleet.Audit(straight) {
			if e.Kind == localfleet.EventCrash && strings.Contains(e.Detail, "Map failed") {
				t.Logf("straight: broker %d: %s", e.Broker, e.Detail)
				return true
			}
		}
		return false
	}, 10*time.Second, 50*time.Millisecond, "the topic straight at the cluster kills a broker with Map failed")
}
