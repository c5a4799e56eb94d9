package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
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

// TestIntegrationAdminLaneRidesOutTheStorm: the seeds' admin storm, 5
// tenants × 20 topics (in requests of 5, and two refusals each) asked for at once
// through the cluster's entity, goes through the admin lane one request at
// a time (the controller never sees two admin requests in flight), every
// topic created or refused with its reason, no broker down and no
// violation; the same storm sent straight at another cluster by
// concurrent clients topples its controller in the fleet's model.
func TestIntegrationAdminLaneRidesOutTheStorm(t *testing.T) {
	t.Parallel() // mostly waiting
	const (
		lane, straight = "lane-a", "storm-b"
		superPass      = "lane-superuser-secret"
		tenants        = 5
		perTenant      = 20
		perRequest     = 5
	)
	stack := startStackWith(t, fastFleet(
		localfleet.ClusterConfig{ID: lane, Brokers: 3, Topics: []localfleet.TopicConfig{},
			SASL: localfleet.SASLConfig{Enabled: true, Superuser: "admin", SuperuserPassword: superPass}, ACLs: true},
		localfleet.ClusterConfig{ID: straight, Brokers: 3, Topics: []localfleet.TopicConfig{}},
	), func(o *devstack.StackOptions) {
		o.NotifyOut = io.Discard
		o.Secrets = "file:" + t.TempDir()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := stack.Client
	waitStatus(ctx, t, stack, lane, 30*time.Second, "the brokers' disks are known", func(st workflows.ClusterStatus) bool {
		return workflows.TenantRoom(st).DiskBytes > 0
	})
	created := time.Now()
	names := make([]string, tenants)
	for i := range names {
		names[i] = fmt.Sprintf("storm-%05d", i+1)
		_, op, err := entity.CreateTenant(ctx, c, lane, workflows.TenantCreateParams{Plan: "basic-0", Name: names[i]}, "alice", "")
		require.NoError(t, err)
		_, _, err = entity.Follow[workflows.TenantResult](ctx, c, lane, op.ID, 100*time.Millisecond, func(entity.Progress) {})
		require.NoError(t, err)
	}

	t.Logf("%d tenants created in %s", tenants, time.Since(created).Round(time.Millisecond))

	// The storm: every request at once, each its own update.
	type asked struct {
		topic string
		op    workflows.Operation
		err   error
	}
	// Each tenant asks for its topics in requests of perRequest, all at
	// once: the entity admits an update at a time (each a workflow task,
	// ~0.1-0.5 s on a loaded 2-CPU machine), so a request per topic would
	// measure Temporal, not the lane.
	var batches [][]fleet.TopicRequest
	for _, n := range names {
		for j := 0; j < perTenant; j += perRequest {
			var b []fleet.TopicRequest
			for k := j; k < j+perRequest; k++ {
				b = append(b, fleet.TopicRequest{Tenant: n, Name: fmt.Sprintf("%s.t%02d", n, k), Partitions: 2})
			}
			batches = append(batches, b)
		}
		batches = append(batches, []fleet.TopicRequest{{Tenant: n, Name: n + ".huge", Partitions: 300}}, // over basic-0's 240
			[]fleet.TopicRequest{{Tenant: n, Name: "elsewhere.t00", Partitions: 1}}) // outside its prefix
	}
	answers := make([]asked, len(batches))
	start := time.Now()
	var wg sync.WaitGroup
	for i, b := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw, _ := json.Marshal(workflows.TopicAdminParams{Action: "create", Topics: b})
			op, err := entity.Request(ctx, c, lane, workflows.Request{Kind: workflows.OpTopicAdmin, RequestedBy: b[0].Tenant, Params: raw})
			answers[i] = asked{topic: b[0].Name, op: op, err: err}
		}()
	}
	wg.Wait()
	t.Logf("%d requests answered in %s", len(batches), time.Since(start).Round(time.Millisecond))
	ops := map[string]bool{}
	refused := 0
	for _, a := range answers {
		switch {
		case strings.HasSuffix(a.topic, ".huge"):
			require.ErrorContains(t, a.err, "over plan basic-0's 240", a.topic)
			refused++
		case strings.HasPrefix(a.topic, "elsewhere."):
			require.ErrorContains(t, a.err, "is outside tenant", a.topic)
			refused++
		default:
			require.NoError(t, a.err, "%s: %v", a.topic, a.err)
			ops[a.op.ID] = true
		}
	}
	st := waitStatus(ctx, t, stack, lane, time.Minute, "every batch ended", func(st workflows.ClusterStatus) bool {
		ended := 0
		for _, op := range st.History {
			if ops[op.ID] && op.FinishedAt.After(start) {
				ended++
			}
		}
		return ended == len(ops)
	})
	recorded := false
	for _, op := range st.History {
		if ops[op.ID] {
			assert.Equal(t, workflows.StatusSucceeded, op.Status, "%s: %s", op.ID, op.Error)
			t.Logf("batch %s: %s", op.ID, op.Outcome)
			if !recorded {
				recordHistories(ctx, t, stack.Client, map[string]string{op.WorkflowID: "topic_admin_batch.json"})
				recorded = true
			}
		}
	}
	t.Logf("%d requests in %s: %d batches, %d refused at admission", len(batches), time.Since(start).Round(time.Millisecond), len(ops), refused)
	assert.Less(t, len(ops), tenants*perTenant/perRequest, "requests joined batches")

	adm := kadm.NewClient(tenantClient(t, fleet.TenantCredentials{User: "admin", Password: superPass, Mechanism: fleet.TenantSASLMechanism,
		Bootstrap: stack.Specs[lane].Bootstrap}))
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
	assert.Zero(t, stats.StormCrashes)
	noViolations(t, stack, lane)
	for _, e := range stack.Fleet.Audit(lane) {
		assert.NotEqual(t, localfleet.EventCrash, e.Kind, "no broker fell over: %+v", e)
	}

	// The contrast: the same topics straight at the controller, each
	// tenant's client asking for each of its topics, all at once (the
	// clients connect first, then ask together).
	var (
		swg, ready sync.WaitGroup
		fire       = make(chan struct{})
	)
	for _, b := range batches {
		for _, r := range b {
			if strings.HasSuffix(r.Name, ".huge") || strings.HasPrefix(r.Name, "elsewhere.") {
				continue
			}
			swg.Add(1)
			ready.Add(1)
			go func() {
				defer swg.Done()
				cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Specs[straight].Bootstrap...), kgo.RequestRetries(0), kgo.RetryTimeout(5*time.Second))
				if err != nil {
					ready.Done()
					return
				}
				defer cl.Close()
				_ = cl.Ping(ctx)
				ready.Done()
				<-fire
				sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
				defer scancel()
				_, _ = kadm.NewClient(cl).CreateTopic(sctx, 2, 3, nil, r.Name)
			}()
		}
	}
	ready.Wait()
	close(fire)
	swg.Wait()
	storm, err := stack.Fleet.AdminStats(straight)
	require.NoError(t, err)
	t.Logf("straight %s: %+v", straight, storm)
	assert.GreaterOrEqual(t, storm.StormCrashes, 1, "concurrent admin clients topple the controller")
	assert.Greater(t, storm.PeakInFlight, 40)
}
