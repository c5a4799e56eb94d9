package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// The seeds' admin storm, shared by TestIntegrationAdminLaneRidesOutTheStorm
// and BenchmarkAdminStorm: many tenants asking for topics at once, through
// kfleet's admin lane or straight at a cluster.

// stormTenants creates n basic-0 tenants (storm-00001, ...) on cluster
// through its entity, one after the other (a tenant's creation is an
// operation of the maintenance lane: they would queue anyway).
func stormTenants(ctx context.Context, tb testing.TB, stack *devstack.Stack, cluster string, n int) []string {
	tb.Helper()
	waitStatus(ctx, tb, stack, cluster, 30*time.Second, "the brokers' disks are known", func(st workflows.ClusterStatus) bool {
		return workflows.TenantRoom(st).DiskBytes > 0
	})
	began := time.Now()
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("storm-%05d", i+1)
		_, op, err := entity.CreateTenant(ctx, stack.Client, cluster, workflows.TenantCreateParams{Plan: "basic-0", Name: names[i]}, "alice", "")
		require.NoError(tb, err, names[i])
		_, _, err = entity.Follow[workflows.TenantResult](ctx, stack.Client, cluster, op.ID, 50*time.Millisecond, func(entity.Progress) {})
		require.NoError(tb, err, names[i])
	}
	tb.Logf("%d tenants created in %s", n, time.Since(began).Round(time.Millisecond))
	return names
}

// laneStorm is what a storm through the admin lane came to.
type laneStorm struct {
	requests int
	// refused counts the requests refused at admission (each with the
	// reason the storm expected of it).
	refused int
	// batches are the operations the admitted requests made or joined,
	// ended is how they ended.
	batches map[string]bool
	ended   []workflows.Operation
	// answered: every request answered; took: every batch ended.
	answered, took time.Duration
}

// runLaneStorm has each tenant ask for perTenant topics of 2 partitions
// (named <tenant>.tNN) in requests of perRequest, every request at once,
// each its own update of the entity; the first refusers tenants also ask
// for a topic over basic-0's 240 partitions (<tenant>.huge) and one outside
// their prefix, which admission must refuse with the reason.
func runLaneStorm(ctx context.Context, tb testing.TB, stack *devstack.Stack, cluster string, names []string, perTenant, perRequest, refusers int) laneStorm {
	tb.Helper()
	var batches [][]fleet.TopicRequest
	for i, n := range names {
		for j := 0; j < perTenant; j += perRequest {
			var b []fleet.TopicRequest
			for k := j; k < min(j+perRequest, perTenant); k++ {
				b = append(b, fleet.TopicRequest{Tenant: n, Name: fmt.Sprintf("%s.t%02d", n, k), Partitions: 2})
			}
			batches = append(batches, b)
		}
		if i < refusers {
			batches = append(batches, []fleet.TopicRequest{{Tenant: n, Name: n + ".huge", Partitions: 300}},
				[]fleet.TopicRequest{{Tenant: n, Name: "elsewhere.t00", Partitions: 1}})
		}
	}
	type answer struct {
		op  workflows.Operation
		err error
	}
	answers := make([]answer, len(batches))
	start := time.Now()
	var wg sync.WaitGroup
	for i, b := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			raw, _ := json.Marshal(workflows.TopicAdminParams{Action: "create", Topics: b})
			op, err := entity.Request(ctx, stack.Client, cluster, workflows.Request{Kind: workflows.OpTopicAdmin, RequestedBy: b[0].Tenant, Params: raw})
			answers[i] = answer{op: op, err: err}
		}()
	}
	wg.Wait()
	res := laneStorm{requests: len(batches), batches: map[string]bool{}, answered: time.Since(start)}
	for i, a := range answers {
		topic := batches[i][0].Name
		switch {
		case strings.HasSuffix(topic, ".huge"):
			require.ErrorContains(tb, a.err, "over plan basic-0's 240", topic)
			res.refused++
		case strings.HasPrefix(topic, "elsewhere."):
			require.ErrorContains(tb, a.err, "is outside tenant", topic)
			res.refused++
		default:
			require.NoError(tb, a.err, topic)
			res.batches[a.op.ID] = true
		}
	}
	st := waitStatus(ctx, tb, stack, cluster, 3*time.Minute, "every batch ended", func(st workflows.ClusterStatus) bool {
		ended := 0
		for _, op := range st.History {
			if res.batches[op.ID] && op.FinishedAt.After(start) {
				ended++
			}
		}
		return ended == len(res.batches)
	})
	res.took = time.Since(start)
	for _, op := range st.History {
		if res.batches[op.ID] {
			res.ended = append(res.ended, op)
		}
	}
	return res
}

// limitMutations sets controller_mutation_rate (KIP-599) on user.
func limitMutations(ctx context.Context, tb testing.TB, adm *kadm.Client, user string, rate float64) {
	tb.Helper()
	altered, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &user}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "controller_mutation_rate", Value: rate}},
	}})
	require.NoError(tb, err)
	for _, a := range altered {
		require.NoError(tb, a.Err)
	}
}

// straightStorm sends each topic's creation (2 partitions, replication 3)
// straight at cluster from clients workers at once, each taking the next
// topic when it has its answer; workers = len(topics) is the storm all at
// once. The clients connect first, then ask together. It returns how many
// topics were created, how long the storm lasted and the clients' mean
// wait for an answer.
func straightStorm(ctx context.Context, stack *devstack.Stack, cluster string, topics []string, workers int) (created int, took, meanWait time.Duration) {
	var (
		wg, ready sync.WaitGroup
		fire      = make(chan struct{})
		next      = make(chan string, len(topics))
		mu        sync.Mutex
		waited    time.Duration
	)
	for _, name := range topics {
		next <- name
	}
	close(next)
	for range min(workers, len(topics)) {
		wg.Add(1)
		ready.Add(1)
		go func() {
			defer wg.Done()
			cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Specs[cluster].Bootstrap...), kgo.RequestRetries(0), kgo.RetryTimeout(5*time.Second))
			if err != nil {
				ready.Done()
				return
			}
			defer cl.Close()
			_ = cl.Ping(ctx)
			ready.Done()
			<-fire
			for name := range next {
				sctx, scancel := context.WithTimeout(ctx, 20*time.Second)
				asked := time.Now()
				resp, err := kadm.NewClient(cl).CreateTopic(sctx, 2, 3, nil, name)
				scancel()
				mu.Lock()
				waited += time.Since(asked)
				if err == nil && resp.Err == nil {
					created++
				}
				mu.Unlock()
			}
		}()
	}
	ready.Wait()
	start := time.Now()
	close(fire)
	wg.Wait()
	return created, time.Since(start), waited / time.Duration(max(len(topics), 1))
}
