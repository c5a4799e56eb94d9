package activities_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/kafka"
)

// fakeTopics is a controller with a mutation quota: each request admits
// the first quota topics and throttles the rest for throttle.
type fakeTopics struct {
	mu       sync.Mutex
	quota    int
	throttle time.Duration
	existing map[string]int
	requests [][]string
	at       []time.Time
}

func (f *fakeTopics) answer(names []string) map[string]kafka.TopicAnswer {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, names)
	f.at = append(f.at, time.Now())
	out := map[string]kafka.TopicAnswer{}
	for i, n := range names {
		switch {
		case i >= f.quota:
			out[n] = kafka.TopicAnswer{Throttled: true, ThrottleMillis: int32(f.throttle.Milliseconds()), Err: "THROTTLING_QUOTA_EXCEEDED"}
		case f.existing[n] > 0:
			out[n] = kafka.TopicAnswer{Exists: true}
		default:
			f.existing[n] = 1
			out[n] = kafka.TopicAnswer{}
		}
	}
	return out
}

func (f *fakeTopics) CreateTopicsBatch(_ context.Context, _ fleet.ClusterSpec, _ map[string]fleet.TenantPlan, topics []fleet.TopicRequest) (map[string]kafka.TopicAnswer, error) {
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	return f.answer(names), nil
}

func (f *fakeTopics) DeleteTopicsBatch(_ context.Context, _ fleet.ClusterSpec, names []string) (map[string]kafka.TopicAnswer, error) {
	return f.answer(names), nil
}

func (f *fakeTopics) PrefixPartitions(_ context.Context, _ fleet.ClusterSpec, prefixes []string) (map[string]int, error) {
	out := map[string]int{}
	for _, p := range prefixes {
		out[p] = 230 // wabash-1 holds 230 of basic-0's 240
	}
	return out, nil
}

func TestTopicBatchOneRequestThenThrottledAgain(t *testing.T) {
	plan, err := fleet.DefaultTenantCatalog().Plan("basic-0")
	require.NoError(t, err)
	f := &fakeTopics{quota: 2, throttle: 300 * time.Millisecond, existing: map[string]int{}}
	acts := &activities.Activities{Topics: f, Log: zerolog.Nop()}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	spec := fleet.ClusterSpec{ID: "unit-a", Brokers: []fleet.BrokerSpec{{ID: 1}, {ID: 2}, {ID: 3}}}
	topics := []fleet.TopicRequest{
		{Tenant: "wabash-1", Name: "wabash-1.a", Partitions: 3},
		{Tenant: "wabash-1", Name: "other-2.b", Partitions: 1},
		{Tenant: "wabash-1", Name: "wabash-1.c", Partitions: 3},
		{Tenant: "wabash-1", Name: "wabash-1.d", Partitions: 5}, // 241 after a and c
		{Tenant: "wabash-1", Name: "wabash-1.e", Partitions: 1},
		{Tenant: "wabash-1", Name: "wabash-1.f", Partitions: 4}, // 241 after e
	}
	v, err := env.ExecuteActivity(acts.TopicBatch, activities.TopicBatchInput{Spec: spec, Action: activities.TopicActionCreate, Topics: topics,
		Plans: map[string]fleet.TenantPlan{"wabash-1": plan}})
	require.NoError(t, err)
	var res activities.TopicBatchResult
	require.NoError(t, v.Get(&res))
	assert.Equal(t, 6, res.Requested)
	assert.Equal(t, 3, res.Done)
	require.Len(t, res.Refused, 3)
	assert.Contains(t, res.Refused[0].Reason, "outside tenant wabash-1's prefix")
	assert.Contains(t, res.Refused[1].Reason, "wabash-1.d: 5 partitions would take tenant wabash-1 to 241, over plan basic-0's 240")
	assert.Contains(t, res.Refused[2].Reason, "wabash-1.f: 4 partitions")
	// One request for the batch, then the throttled one after 300 ms.
	require.Len(t, f.requests, 2)
	assert.Equal(t, []string{"wabash-1.a", "wabash-1.c", "wabash-1.e"}, f.requests[0])
	assert.Equal(t, []string{"wabash-1.e"}, f.requests[1])
	assert.GreaterOrEqual(t, f.at[1].Sub(f.at[0]), 300*time.Millisecond)
	assert.Equal(t, 2, res.Requests)
	assert.Equal(t, 1, res.Throttled)
	assert.Equal(t, int64(300), res.ThrottledMillis)
}

func TestTopicBatchDeletesOnlyItsPrefix(t *testing.T) {
	f := &fakeTopics{quota: 10, existing: map[string]int{"wabash-1.a": 1}}
	acts := &activities.Activities{Topics: f, Log: zerolog.Nop()}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	v, err := env.ExecuteActivity(acts.TopicBatch, activities.TopicBatchInput{Spec: fleet.ClusterSpec{ID: "unit-a"}, Action: activities.TopicActionDelete,
		Topics: []fleet.TopicRequest{{Tenant: "wabash-1", Name: "wabash-1.a"}, {Tenant: "wabash-1", Name: "other-2.a"}}})
	require.NoError(t, err)
	var res activities.TopicBatchResult
	require.NoError(t, v.Get(&res))
	assert.Equal(t, 1, res.Done)
	require.Len(t, res.Refused, 1)
	assert.Equal(t, "other-2.a", res.Refused[0].Topic)
	assert.Equal(t, [][]string{{"wabash-1.a"}}, f.requests)
}
