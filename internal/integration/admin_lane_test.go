package integration_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// TestIntegrationAdminLaneRidesOutTheStorm: the seeds' admin storm, 500
// topics from 50 tenants of a 10-broker cluster (a request of 10 each; 5 tenants also ask
// for a topic over their plan and one outside their prefix) asked for at
// once through the cluster's entity, under a KIP-599 controller mutation
// quota on kfleet's own principal. It goes through the admin lane one
// request at a time (the controller never sees two admin requests in
// flight), the throttled topics sent again after the throttle time, every
// topic created or refused with its reason, no broker down and no
// violation, judged by the fleet. The same topics sent straight at another
// cluster by concurrent clients topple its controller in the fleet's
// model.
func TestIntegrationAdminLaneRidesOutTheStorm(t *testing.T) {
	t.Parallel() // mostly waiting
	const (
		lane, straight = "lane-a", "storm-b"
		superPass      = "lane-superuser-secret"
		tenants        = 50
		perTenant      = 10
		perRequest     = 10
		refusers       = 5
		// mutationRate: kfleet's principal may create 40 partitions a
		// second (a burst of 440): the storm's 1,000 are throttled.
		mutationRate = 40
	)
	stack := startStackWith(t, fastFleet(
		// 10 brokers: room for 55 basic-0 tenants (4,000 partition
		// replicas a broker; 240 partitions a tenant, replicated 3 times).
		secured(localfleet.ClusterConfig{ID: lane, Brokers: 10}, superPass),
		localfleet.ClusterConfig{ID: straight, Brokers: 3, Topics: []localfleet.TopicConfig{}},
	), func(o *devstack.StackOptions) {
		o.NotifyOut = io.Discard
		o.Secrets = "file:" + t.TempDir()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	names := stormTenants(ctx, t, stack, lane, tenants)
	adm := superAdmin(t, stack, lane, superPass)
	limitMutations(ctx, t, adm, "admin", mutationRate)

	storm := runLaneStorm(ctx, t, stack, lane, names, perTenant, perRequest, refusers)
	t.Logf("%d requests answered in %s, %d batches ended in %s, %d refused at admission",
		storm.requests, storm.answered.Round(time.Millisecond), len(storm.batches), storm.took.Round(time.Millisecond), storm.refused)
	assert.Equal(t, 2*refusers, storm.refused)
	assert.Less(t, len(storm.batches), tenants, "requests joined batches")
	throttled := false
	for i, op := range storm.ended {
		assert.Equal(t, workflows.StatusSucceeded, op.Status, "%s: %s", op.ID, op.Error)
		assert.NotContains(t, op.Outcome, "refused", op.ID)
		throttled = throttled || strings.Contains(op.Outcome, "throttled by KIP-599")
		t.Logf("batch %s: %s", op.ID, op.Outcome)
		if i == 0 {
			recordHistories(ctx, t, stack.Client, map[string]string{op.WorkflowID: "topic_admin_batch.json"})
		}
	}
	assert.True(t, throttled, "the lane met the mutation quota and waited it out")

	listed, err := adm.ListTopics(ctx)
	require.NoError(t, err)
	for _, n := range names {
		got := 0
		for name := range listed {
			if strings.HasPrefix(name, fleet.TenantPrefix(n)) {
				got++
				assert.Len(t, listed[name].Partitions, 2, name)
			}
		}
		assert.Equal(t, perTenant, got, n)
	}
	assert.NotContains(t, listed, "elsewhere.t00")
	stats, err := stack.Fleet.AdminStats(lane)
	require.NoError(t, err)
	t.Logf("lane %s: %+v", lane, stats)
	assert.Equal(t, 1, stats.PeakInFlight, "one admin request in flight at a time")
	assert.Positive(t, stats.MutationsThrottled, "the controller throttled the lane")
	assert.Zero(t, stats.StormCrashes)
	noViolations(t, stack, lane)
	for _, e := range stack.Fleet.Audit(lane) {
		assert.NotEqual(t, localfleet.EventCrash, e.Kind, "no broker fell over: %+v", e)
	}

	// The contrast: the same topics straight at the controller, each
	// from its own client, all at once.
	var topics []string
	for name := range listed {
		if strings.HasPrefix(name, "storm-") {
			topics = append(topics, name)
		}
	}
	created, took, wait := straightStorm(ctx, stack, straight, topics, len(topics))
	s, err := stack.Fleet.AdminStats(straight)
	require.NoError(t, err)
	t.Logf("straight %s: %d of %d created in %s, mean wait %s; %+v", straight, created, len(topics), took.Round(time.Millisecond), wait.Round(time.Millisecond), s)
	assert.GreaterOrEqual(t, s.StormCrashes, 1, "concurrent admin clients topple the controller")
	assert.Greater(t, s.PeakInFlight, 40)
}
