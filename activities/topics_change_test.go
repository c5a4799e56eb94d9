package activities_test

import (
	"context"
	"fmt"
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

// fakeChanges is a controller holding topics (their shapes) and groups
// (live members or not), with fakeTopics' mutation quota.
type fakeChanges struct {
	*fakeTopics
	shapes map[string]fleet.TopicRequest
	groups map[string]bool // live members
	sent   [][]fleet.TopicRequest
}

func (f *fakeChanges) TopicShapes(_ context.Context, _ fleet.ClusterSpec, names []string) (map[string]fleet.TopicRequest, error) {
	out := map[string]fleet.TopicRequest{}
	for _, n := range names {
		if s, ok := f.shapes[n]; ok {
			out[n] = s
		}
	}
	return out, nil
}

func (f *fakeChanges) CreatePartitionsBatch(_ context.Context, _ fleet.ClusterSpec, topics []fleet.TopicRequest) (map[string]kafka.TopicAnswer, error) {
	return f.change(topics, func(s *fleet.TopicRequest, t fleet.TopicRequest) { s.Partitions = t.Partitions }), nil
}

func (f *fakeChanges) AlterRetentionBatch(_ context.Context, _ fleet.ClusterSpec, topics []fleet.TopicRequest) (map[string]kafka.TopicAnswer, error) {
	return f.change(topics, func(s *fleet.TopicRequest, t fleet.TopicRequest) { s.RetentionMs = t.RetentionMs }), nil
}

func (f *fakeChanges) change(topics []fleet.TopicRequest, apply func(*fleet.TopicRequest, fleet.TopicRequest)) map[string]kafka.TopicAnswer {
	f.sent = append(f.sent, topics)
	names := make([]string, len(topics))
	for i, t := range topics {
		names[i] = t.Name
	}
	out := f.answer(names)
	for _, t := range topics {
		if !out[t.Name].Throttled {
			s := f.shapes[t.Name]
			apply(&s, t)
			f.shapes[t.Name] = s
		}
	}
	return out
}

func (f *fakeChanges) DeleteGroupsBatch(_ context.Context, _ fleet.ClusterSpec, groups []string) (map[string]kafka.TopicAnswer, error) {
	f.requests = append(f.requests, groups)
	out := map[string]kafka.TopicAnswer{}
	for _, g := range groups {
		live, ok := f.groups[g]
		switch {
		case !ok:
			out[g] = kafka.TopicAnswer{Exists: true}
		case live:
			out[g] = kafka.TopicAnswer{Err: fmt.Sprintf("group %s has live members (NON_EMPTY_GROUP): stop its consumers, then ask again", g)}
		default:
			delete(f.groups, g)
			out[g] = kafka.TopicAnswer{}
		}
	}
	return out, nil
}

func runChange(t *testing.T, f *fakeChanges, action string, topics ...fleet.TopicRequest) activities.TopicBatchResult {
	t.Helper()
	plan, err := fleet.DefaultTenantCatalog().Plan("basic-0")
	require.NoError(t, err)
	acts := &activities.Activities{Topics: f.fakeTopics, TopicChanges: f, Log: zerolog.Nop()}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(acts)
	spec := fleet.ClusterSpec{ID: "unit-a", Brokers: []fleet.BrokerSpec{{ID: 1}, {ID: 2}, {ID: 3}}}
	v, err := env.ExecuteActivity(acts.TopicBatch, activities.TopicBatchInput{Spec: spec, Action: action, Topics: topics,
		Plans: map[string]fleet.TenantPlan{"wabash-1": plan}})
	require.NoError(t, err)
	var res activities.TopicBatchResult
	require.NoError(t, v.Get(&res))
	assert.Equal(t, action, res.Action)
	return res
}

func reasons(res activities.TopicBatchResult) map[string]string {
	out := map[string]string{}
	for _, r := range res.Refused {
		out[r.Topic] = r.Reason
	}
	return out
}

const hour = int64(time.Hour / time.Millisecond)

// Partitions are added in one CreatePartitions for the batch, the
// throttled topic again after KIP-599's time; a total not above the
// topic's, a topic that does not exist or is outside the prefix, and
// partitions over the plan (the prefix holds 230 of 240) are refused,
// touching nothing.
func TestTopicBatchAddsPartitions(t *testing.T) {
	f := &fakeChanges{fakeTopics: &fakeTopics{quota: 1, throttle: 200 * time.Millisecond, existing: map[string]int{}}, shapes: map[string]fleet.TopicRequest{
		"wabash-1.a": {Name: "wabash-1.a", Partitions: 3, ReplicationFactor: 3, RetentionMs: 24 * hour},
		"wabash-1.b": {Name: "wabash-1.b", Partitions: 6, ReplicationFactor: 3, RetentionMs: 24 * hour},
		"wabash-1.c": {Name: "wabash-1.c", Partitions: 6, ReplicationFactor: 3, RetentionMs: 24 * hour},
		"wabash-1.d": {Name: "wabash-1.d", Partitions: 3, ReplicationFactor: 3, RetentionMs: 24 * hour},
		"wabash-1.e": {Name: "wabash-1.e", Partitions: 1, ReplicationFactor: 3, RetentionMs: 24 * hour},
	}}
	res := runChange(t, f, activities.TopicActionAddPartitions,
		fleet.TopicRequest{Tenant: "wabash-1", Name: "wabash-1.a", Partitions: 6},  // +3: 233
		fleet.TopicRequest{Tenant: "wabash-1", Name: "wabash-1.b", Partitions: 6},  // equal
		fleet.TopicRequest{Tenant: "wabash-1", Name: "wabash-1.c", Partitions: 4},  // fewer
		fleet.TopicRequest{Tenant: "wabash-1", Name: "wabash-1.x", Partitions: 4},  // no such topic
		fleet.TopicRequest{Tenant: "wabash-1", Name: "ohio-2.a", Partitions: 4},    // outside
		fleet.TopicRequest{Tenant: "wabash-1", Name: "wabash-1.d", Partitions: 12}, // +9: 242
		fleet.TopicRequest{Tenant: "wabash-1", Name: "wabash-1.e", Partitions: 5})  // +4: 237
	assert.Equal(t, 2, res.Done)
	got := reasons(res)
	require.Len(t, got, 5)
	assert.Contains(t, got["wabash-1.b"], "topic wabash-1.b has 6 partition(s): add-partitions wants a larger total, not 6")
	assert.Contains(t, got["wabash-1.c"], "has 6 partition(s): add-partitions wants a larger total, not 4")
	assert.Equal(t, "topic wabash-1.x does not exist on cluster unit-a", got["wabash-1.x"])
	assert.Contains(t, got["ohio-2.a"], "outside tenant wabash-1's prefix")
	assert.Equal(t, "topic wabash-1.d: 9 partitions would take tenant wabash-1 to 242, over plan basic-0's 240", got["wabash-1.d"])
	require.Len(t, f.requests, 2, "one request, then the throttled topic again")
	assert.Equal(t, []string{"wabash-1.a", "wabash-1.e"}, f.requests[0])
	assert.Equal(t, []string{"wabash-1.e"}, f.requests[1])
	assert.Equal(t, 1, res.Throttled)
	assert.Equal(t, int64(200), res.ThrottledMillis)
	assert.Equal(t, 6, f.shapes["wabash-1.a"].Partitions)
	assert.Equal(t, 5, f.shapes["wabash-1.e"].Partitions)
	assert.Equal(t, 3, f.shapes["wabash-1.d"].Partitions, "refused: untouched")
}

// Retention is set in one IncrementalAlterConfigs; a retention that
// grows re-checks the FD/mmap budget (segments grow with retention): 100
// partitions rolling every minute gain ~36,000 segments per broker from
// 6h to 12h (admitted), ~108,000 to 24h (over the default limits' 53,333);
// a shrink needs no room, an equal one is already so.
func TestTopicBatchSetsRetentionWithinTheBudget(t *testing.T) {
	minute := int64(time.Minute / time.Millisecond)
	shape := func(name string) fleet.TopicRequest {
		return fleet.TopicRequest{Name: name, Partitions: 100, ReplicationFactor: 3, RetentionMs: 6 * hour, SegmentMs: minute}
	}
	f := &fakeChanges{fakeTopics: &fakeTopics{quota: 10, existing: map[string]int{}}, shapes: map[string]fleet.TopicRequest{
		"wabash-1.a": shape("wabash-1.a"), "wabash-1.b": shape("wabash-1.b"), "wabash-1.c": shape("wabash-1.c"), "wabash-1.d": shape("wabash-1.d"),
	}}
	res := runChange(t, f, activities.TopicActionRetention,
		fleet.TopicRequest{Tenant: "wabash-1", Name: "wabash-1.a", RetentionMs: 12 * hour},
		fleet.TopicRequest{Tenant: "wabash-1", Name: "wabash-1.b", RetentionMs: 24 * hour},
		fleet.TopicRequest{Tenant: "wabash-1", Name: "wabash-1.c", RetentionMs: 6 * hour},
		fleet.TopicRequest{Tenant: "wabash-1", Name: "wabash-1.d", RetentionMs: 200 * hour})
	got := reasons(res)
	require.Len(t, got, 2)
	assert.Contains(t, got["wabash-1.b"], "topic wabash-1.b: its replicas need ~108000 more segments on broker 1, which has room for 17333")
	assert.Contains(t, got["wabash-1.d"], "retention 200h0m0s is outside plan basic-0's bounds")
	assert.Equal(t, 2, res.Done)
	assert.Equal(t, 1, res.Existing, "wabash-1.c has 6h already")
	require.Len(t, f.sent, 1)
	assert.Equal(t, 12*hour, f.shapes["wabash-1.a"].RetentionMs)
	assert.Equal(t, 6*hour, f.shapes["wabash-1.b"].RetentionMs, "refused: untouched")
}

// Groups are deleted in one DeleteGroups; one with live members is
// refused with Kafka's NON_EMPTY_GROUP reason, once (not retried), one
// already gone is done, one outside the prefix is never sent.
func TestTopicBatchDeletesGroups(t *testing.T) {
	f := &fakeChanges{fakeTopics: &fakeTopics{quota: 10, existing: map[string]int{}}, groups: map[string]bool{"wabash-1.idle": false, "wabash-1.live": true}}
	res := runChange(t, f, activities.TopicActionDeleteGroups,
		fleet.TopicRequest{Tenant: "wabash-1", Name: "wabash-1.idle"}, fleet.TopicRequest{Tenant: "wabash-1", Name: "wabash-1.live"},
		fleet.TopicRequest{Tenant: "wabash-1", Name: "wabash-1.gone"}, fleet.TopicRequest{Tenant: "wabash-1", Name: "ohio-2.g"})
	assert.Equal(t, 2, res.Done)
	assert.Equal(t, 1, res.Existing)
	got := reasons(res)
	require.Len(t, got, 2)
	assert.Contains(t, got["wabash-1.live"], "NON_EMPTY_GROUP")
	assert.Contains(t, got["ohio-2.g"], `group "ohio-2.g" is outside tenant wabash-1's prefix`)
	assert.Equal(t, [][]string{{"wabash-1.idle", "wabash-1.live", "wabash-1.gone"}}, f.requests, "one request, NON_EMPTY_GROUP not retried")
	assert.Equal(t, map[string]bool{"wabash-1.live": true}, f.groups)
}
