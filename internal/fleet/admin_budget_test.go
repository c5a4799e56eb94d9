package fleet_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/fleet"
)

func basic0(t *testing.T) fleet.TenantPlan {
	t.Helper()
	p, err := fleet.DefaultTenantCatalog().Plan("basic-0")
	require.NoError(t, err)
	return p
}

func TestSegmentsPerPartition(t *testing.T) {
	p := basic0(t)
	day := int64(24 * time.Hour / time.Millisecond)
	tests := []struct {
		name string
		t    fleet.TopicRequest
		want int64
	}{
		{"plan default 24h, 7d roll: one closed, one active", fleet.TopicRequest{Partitions: 1}, 2},
		{"168h retention, 7d roll", fleet.TopicRequest{Partitions: 1, RetentionMs: 7 * day}, 2},
		{"168h retention, 1h roll", fleet.TopicRequest{Partitions: 1, RetentionMs: 7 * day, SegmentMs: day / 24}, 169},
		// 64 KiB/s × 86,400 s = 5,400 MiB over 10 partitions, 100 MiB segments: 6 each.
		{"size roll bounded by the produce quota", fleet.TopicRequest{Partitions: 10, SegmentBytes: 100 << 20}, 7},
		{"size roll never below the time roll", fleet.TopicRequest{Partitions: 10, SegmentBytes: 1 << 40}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, fleet.SegmentsPerPartition(p, tt.t))
		})
	}
}

func TestBrokerSegmentRoom(t *testing.T) {
	// Defaults: min(100,000 × 0.8 / 1.5, 262,144 × 0.8 / 2) = 53,333.
	assert.Equal(t, int64(53_333), fleet.BrokerBudget{}.SegmentRoom())
	assert.Equal(t, int64(53_333-1_000), fleet.BrokerBudget{Segments: 1_000}.SegmentRoom())
	// Linux's default vm.max_map_count binds first: 65,530 × 0.8 / 2.
	assert.Equal(t, int64(26_212), fleet.BrokerBudget{MaxMapCount: 65_530}.SegmentRoom())
	assert.Equal(t, int64(800), fleet.BrokerBudget{Nofile: 1_500}.SegmentRoom())
}

func TestTopicBatchDecide(t *testing.T) {
	p := basic0(t)
	three := []fleet.BrokerBudget{{Broker: 1}, {Broker: 2}, {Broker: 3}}
	topic := func(name string, parts int) fleet.TopicRequest {
		return fleet.TopicRequest{Tenant: "wabash-1", Name: name, Partitions: parts}
	}
	tests := []struct {
		name     string
		existing int
		brokers  []fleet.BrokerBudget
		topics   []fleet.TopicRequest
		reasons  []string // "" admitted
	}{
		{"fits", 0, three, []fleet.TopicRequest{topic("wabash-1.a", 6)}, []string{""}},
		{"outside the prefix", 0, three, []fleet.TopicRequest{topic("other-2.a", 6), topic("wabash-1.", 1), topic("wabash-1a", 1)},
			[]string{"outside tenant wabash-1's prefix", "outside", "outside"}},
		{"bad name", 0, three, []fleet.TopicRequest{topic("wabash-1.a b", 1)}, []string{"want 1-249 characters"}},
		{"unknown tenant", 0, three, []fleet.TopicRequest{{Tenant: "nobody-1", Name: "nobody-1.a", Partitions: 1}}, []string{"not known"}},
		{"no partitions", 0, three, []fleet.TopicRequest{topic("wabash-1.a", 0)}, []string{"want 1 to"}},
		{"replication over the brokers", 0, three, []fleet.TopicRequest{{Tenant: "wabash-1", Name: "wabash-1.a", Partitions: 1, ReplicationFactor: 4}},
			[]string{"replication factor 4"}},
		{"retention below the plan's", 0, three, []fleet.TopicRequest{{Tenant: "wabash-1", Name: "wabash-1.a", Partitions: 1, RetentionMs: time.Hour.Milliseconds()}},
			[]string{"retention 1h0m0s is outside plan basic-0's bounds (6h0m0s to 168h0m0s)"}},
		{"retention above the plan's", 0, three, []fleet.TopicRequest{{Tenant: "wabash-1", Name: "wabash-1.a", Partitions: 1, RetentionMs: (200 * time.Hour).Milliseconds()}},
			[]string{"outside plan basic-0's bounds"}},
		{"existing partitions count", 230, three, []fleet.TopicRequest{topic("wabash-1.a", 10), topic("wabash-1.b", 1)},
			[]string{"", "would take tenant wabash-1 to 241, over plan basic-0's 240"}},
		{"the batch counts its own", 0, three, []fleet.TopicRequest{topic("wabash-1.a", 200), topic("wabash-1.b", 50), topic("wabash-1.c", 40)},
			[]string{"", "over plan basic-0's 240", ""}},
		// Room 800 - 790 = 10 segments on broker 2; 3 partitions × RF 3 / 3
		// brokers = 3 replicas × 2 segments = 6, then 6 more is over.
		{"FD budget of the fullest broker", 0, []fleet.BrokerBudget{{Broker: 1, Nofile: 1_500}, {Broker: 2, Nofile: 1_500, Segments: 790}, {Broker: 3}},
			[]fleet.TopicRequest{topic("wabash-1.a", 3), topic("wabash-1.b", 3), topic("wabash-1.c", 1)},
			[]string{"", "need ~6 more segments on broker 2, which has room for 4", ""}},
		{"no brokers known", 0, nil, []fleet.TopicRequest{topic("wabash-1.a", 1)}, []string{"no broker budget"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := fleet.TopicBatch{Plans: map[string]fleet.TenantPlan{"wabash-1": p}, Existing: map[string]int{"wabash-1": tt.existing}, Brokers: tt.brokers}
			got := b.Decide(tt.topics)
			require.Len(t, got, len(tt.reasons))
			for i, want := range tt.reasons {
				assert.Equal(t, tt.topics[i].Name, got[i].Topic)
				if want == "" {
					assert.Empty(t, got[i].Reason, "topic %d", i)
				} else {
					assert.Contains(t, got[i].Reason, want, "topic %d", i)
				}
			}
		})
	}
}

// A change is decided like a creation of what it adds: the partitions
// added against the plan, the replicas' new segments (more partitions, or
// a longer retention) against the fullest broker's room; a shorter
// retention needs none.
func TestTopicBatchDecideChanges(t *testing.T) {
	minute := time.Minute.Milliseconds()
	cur := fleet.TopicRequest{Tenant: "wabash-1", Name: "wabash-1.a", Partitions: 100, ReplicationFactor: 3, RetentionMs: 6 * time.Hour.Milliseconds(), SegmentMs: minute}
	from := func(cur fleet.TopicRequest, f func(*fleet.TopicRequest)) fleet.TopicChange {
		next := cur
		f(&next)
		return fleet.TopicChange{Topic: next, Current: &cur}
	}
	with := func(f func(*fleet.TopicRequest)) fleet.TopicChange { return from(cur, f) }
	long := cur // a day of one-minute segments
	long.RetentionMs = 24 * time.Hour.Milliseconds()
	// 3 brokers with the default limits: room for 53,333 segments each.
	brokers := []fleet.BrokerBudget{{Broker: 1}, {Broker: 2}, {Broker: 3}}
	for _, tc := range []struct {
		name     string
		existing int
		change   fleet.TopicChange
		refuse   string
	}{
		{"partitions within the plan", 130, with(func(t *fleet.TopicRequest) { t.Partitions = 200 }), ""},
		{"partitions over the plan", 150, with(func(t *fleet.TopicRequest) { t.Partitions = 200 }),
			"topic wabash-1.a: 100 partitions would take tenant wabash-1 to 250, over plan basic-0's 240"},
		{"partitions over the budget", 100, from(long, func(t *fleet.TopicRequest) { t.Partitions = 140 }),
			"topic wabash-1.a: its replicas need ~57640 more segments on broker 1, which has room for 53333"},
		{"retention within the budget", 100, with(func(t *fleet.TopicRequest) { t.RetentionMs = 12 * time.Hour.Milliseconds() }), ""},
		{"retention over the budget", 100, with(func(t *fleet.TopicRequest) { t.RetentionMs = 24 * time.Hour.Milliseconds() }),
			"topic wabash-1.a: its replicas need ~108000 more segments"},
		{"retention out of the plan's bounds", 100, with(func(t *fleet.TopicRequest) { t.RetentionMs = time.Hour.Milliseconds() }),
			"retention 1h0m0s is outside plan basic-0's bounds"},
		{"a shorter retention needs no room", 100, from(long, func(t *fleet.TopicRequest) { t.RetentionMs = 12 * time.Hour.Milliseconds() }), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := fleet.TopicBatch{Plans: map[string]fleet.TenantPlan{"wabash-1": basic0(t)}, Existing: map[string]int{"wabash-1": tc.existing}, Brokers: brokers}
			v := b.DecideChanges([]fleet.TopicChange{tc.change})
			require.Len(t, v, 1)
			if tc.refuse == "" {
				assert.Empty(t, v[0].Reason)
			} else {
				assert.Contains(t, v[0].Reason, tc.refuse)
			}
		})
	}
}
