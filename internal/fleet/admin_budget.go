package fleet

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// The admin lane's rules (OPERATIONS.md "Tenants", issue #14): what a
// tenant's topic request may be, before anything reaches the controller.
// A topic is refused, with its reason, when its name is outside the
// tenant's prefix, when its partitions would take the tenant past its
// plan's partition limit (counting what its prefix holds), when its
// retention is outside the plan's bounds, or when its replicas' segments
// would take the fullest broker past its file-descriptor or memory-map
// budget.
//
// The FD/mmap estimate. A partition replica holds one segment per roll
// within its retention, plus the active one:
//
//	segments = ceil(retention.ms / segment.ms) + 1
//
// segment.ms defaults to Kafka's log.roll.ms, 7 days. A size roll
// (segment.bytes) only adds segments when traffic fills them first; the
// tenant's produce quota bounds that traffic, so with segment.bytes given
// the estimate is also at least the quota's bytes over the retention,
// spread over the topic's partitions, divided by segment.bytes — the larger
// of the two counts. Each segment costs ~1.5 file descriptors (log, index,
// time index; the indexes are closed when idle) and 2 memory maps (offset
// and time indexes; MapsPerSegment, recovery.go). A broker may use 80% of its nofile and
// vm.max_map_count (20% headroom); replicas spread evenly, so the fullest
// broker (the one with the most segments now) takes
// ceil(partitions × RF / brokers) new replicas of each topic.

// Admin budget constants.
const (
	DefaultSegmentMs   = int64(7 * 24 * time.Hour / time.Millisecond)
	FDsPerSegment      = 1.5
	AdminBudgetShare   = 0.8 // 20% headroom
	DefaultNofile      = 100_000
	DefaultMaxMapCount = 262_144
	// MaxTopicPartitions bounds one topic's partitions.
	MaxTopicPartitions = 10_000
)

// TopicRequest is one topic a tenant asks for. RetentionMs 0 is the plan's
// default; SegmentMs and SegmentBytes 0 are Kafka's defaults.
type TopicRequest struct {
	Tenant            string `json:"tenant"`
	Name              string `json:"name"`
	Partitions        int    `json:"partitions,omitempty"`
	ReplicationFactor int    `json:"replicationFactor,omitempty"`
	RetentionMs       int64  `json:"retentionMs,omitempty"`
	SegmentMs         int64  `json:"segmentMs,omitempty"`
	SegmentBytes      int64  `json:"segmentBytes,omitempty"`
}

var topicNameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// CheckTopicName refuses a topic name Kafka would refuse or that is not
// under the tenant's prefix.
func CheckTopicName(tenant, name string) error {
	prefix := TenantPrefix(tenant)
	switch {
	case !strings.HasPrefix(name, prefix) || len(name) == len(prefix):
		return fmt.Errorf("topic %q is outside tenant %s's prefix %s", name, tenant, prefix)
	case !topicNameRE.MatchString(name):
		return fmt.Errorf("topic %q: want 1-249 characters of a-z, A-Z, 0-9, '.', '_' and '-'", name)
	}
	return nil
}

// CheckGroupName refuses a consumer group id that is not under the
// tenant's prefix, or that chat and logs could not show as one word.
func CheckGroupName(tenant, group string) error {
	prefix := TenantPrefix(tenant)
	switch {
	case !strings.HasPrefix(group, prefix) || len(group) == len(prefix):
		return fmt.Errorf("group %q is outside tenant %s's prefix %s", group, tenant, prefix)
	case len(group) > 255 || strings.ContainsFunc(group, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return fmt.Errorf("group %q: want up to 255 characters without spaces or control characters", group)
	}
	return nil
}

// CheckTopicShape refuses a topic to create whose own figures are wrong
// for the plan or a cluster of brokers brokers (0: not known).
func CheckTopicShape(p TenantPlan, brokers int, t TopicRequest) error {
	if err := CheckTopicName(t.Tenant, t.Name); err != nil {
		return err
	}
	switch {
	case t.Partitions < 1 || t.Partitions > MaxTopicPartitions:
		return fmt.Errorf("topic %s: %d partitions: want 1 to %d", t.Name, t.Partitions, MaxTopicPartitions)
	case t.ReplicationFactor < 0 || (brokers > 0 && t.ReplicationFactor > brokers):
		return fmt.Errorf("topic %s: replication factor %d: want 1 to the cluster's %d brokers", t.Name, t.ReplicationFactor, brokers)
	case t.SegmentMs < 0 || t.SegmentBytes < 0:
		return fmt.Errorf("topic %s: segment.ms and segment.bytes must not be negative", t.Name)
	}
	if t.RetentionMs != 0 {
		return CheckRetention(p, t.Name, t.RetentionMs)
	}
	return nil
}

// CheckRetention refuses a topic's retention.ms outside the plan's bounds.
func CheckRetention(p TenantPlan, topic string, retentionMs int64) error {
	r := time.Duration(retentionMs) * time.Millisecond
	if r < p.Retention.Min || r > p.Retention.Max {
		return fmt.Errorf("topic %s: retention %s is outside plan %s's bounds (%s to %s)", topic, r, p.Name, p.Retention.Min, p.Retention.Max)
	}
	return nil
}

// RetentionOf is the topic's retention.ms: its own, else the plan's default.
func (t TopicRequest) RetentionOf(p TenantPlan) int64 {
	if t.RetentionMs > 0 {
		return t.RetentionMs
	}
	return p.Retention.Default.Milliseconds()
}

// RF is the topic's replication factor, the default when none is given.
func (t TopicRequest) RF() int {
	if t.ReplicationFactor > 0 {
		return t.ReplicationFactor
	}
	return DefaultReplicationFactor
}

// SegmentsPerPartition estimates a replica's segments (see the top of the
// file).
func SegmentsPerPartition(p TenantPlan, t TopicRequest) int64 {
	ret := t.RetentionOf(p)
	seg := t.SegmentMs
	if seg <= 0 {
		seg = DefaultSegmentMs
	}
	n := ceilDiv(ret, seg)
	if t.SegmentBytes > 0 && t.Partitions > 0 {
		bytes := p.ProduceKBps * KiB * (ret / 1000) / int64(t.Partitions)
		n = max(n, ceilDiv(bytes, t.SegmentBytes))
	}
	return n + 1
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// BrokerBudget is what one broker holds and may hold: counts only.
type BrokerBudget struct {
	Broker      int32 `json:"broker"`
	Segments    int64 `json:"segments"`
	Nofile      int64 `json:"nofile,omitempty"`
	MaxMapCount int64 `json:"maxMapCount,omitempty"`
}

// SegmentRoom is how many more segments the broker may hold within 80% of
// both its nofile and vm.max_map_count (defaults when unknown).
func (b BrokerBudget) SegmentRoom() int64 {
	nofile, maps := b.Nofile, b.MaxMapCount
	if nofile <= 0 {
		nofile = DefaultNofile
	}
	if maps <= 0 {
		maps = DefaultMaxMapCount
	}
	// The 20% headroom left covers sockets and the rest.
	bySegFD := int64(float64(nofile) * AdminBudgetShare / FDsPerSegment)
	byMaps := int64(float64(maps) * AdminBudgetShare / MapsPerSegment)
	return min(bySegFD, byMaps) - b.Segments
}

// TopicBatch is what the admin lane decides a batch on: the tenants'
// plans, the partitions their prefixes hold now, and the brokers' budgets.
type TopicBatch struct {
	Plans    map[string]TenantPlan `json:"plans"`
	Existing map[string]int        `json:"existing"`
	Brokers  []BrokerBudget        `json:"brokers"`
}

// TopicVerdict is the decision on one topic: Reason "" admits it.
type TopicVerdict struct {
	Topic  string `json:"topic"`
	Reason string `json:"reason,omitempty"`
}

// TopicChange is a change to decide: the topic as it would be after it
// (Partitions the new total, RetentionMs the new retention) and as it is
// now (Current nil: a creation). Adding partitions and growing retention
// are decided like a creation of what they add: the tenant's new
// partitions against its plan's limit, the replicas' new segments against
// the fullest broker's FD/mmap room.
type TopicChange struct {
	Topic   TopicRequest  `json:"topic"`
	Current *TopicRequest `json:"current,omitempty"`
}

// Decide decides each creation in order, counting the ones it admitted
// against the later ones: a batch cannot pass a limit its topics pass one
// at a time.
func (b TopicBatch) Decide(topics []TopicRequest) []TopicVerdict {
	changes := make([]TopicChange, len(topics))
	for i, t := range topics {
		changes[i] = TopicChange{Topic: t}
	}
	return b.DecideChanges(changes)
}

// DecideChanges decides each change in order, like Decide.
func (b TopicBatch) DecideChanges(changes []TopicChange) []TopicVerdict {
	used := make(map[string]int, len(b.Existing))
	for k, v := range b.Existing {
		used[k] = v
	}
	var added int64 // segments added on the fullest broker
	fullest := BrokerBudget{Segments: 0}
	room := int64(-1)
	for i, br := range b.Brokers {
		if r := br.SegmentRoom(); i == 0 || r < room {
			fullest, room = br, r
		}
	}
	out := make([]TopicVerdict, len(changes))
	for i, c := range changes {
		t := c.Topic
		out[i] = TopicVerdict{Topic: t.Name}
		grown, err := b.decide(c, used, &added, fullest, room)
		if err != nil {
			out[i].Reason = err.Error()
			continue
		}
		used[t.Tenant] += grown
	}
	return out
}

// decide decides one change and returns the partitions it adds to its
// tenant.
func (b TopicBatch) decide(c TopicChange, used map[string]int, added *int64, fullest BrokerBudget, room int64) (int, error) {
	t := c.Topic
	p, ok := b.Plans[t.Tenant]
	if !ok {
		return 0, fmt.Errorf("topic %s: tenant %s is not known to the cluster", t.Name, t.Tenant)
	}
	brokers := len(b.Brokers)
	if err := CheckTopicShape(p, brokers, t); err != nil {
		return 0, err
	}
	cur := TopicRequest{Tenant: t.Tenant, Name: t.Name, ReplicationFactor: t.ReplicationFactor}
	if c.Current != nil {
		cur = *c.Current
	}
	grown := t.Partitions - cur.Partitions
	limit := p.PartitionLimit(max(brokers, 1))
	if grown > 0 && used[t.Tenant]+grown > limit {
		return 0, fmt.Errorf("topic %s: %d partitions would take tenant %s to %d, over plan %s's %d", t.Name, grown, t.Tenant, used[t.Tenant]+grown, p.Name, limit)
	}
	if brokers == 0 {
		return 0, errors.New("no broker budget known: cannot place replicas")
	}
	segs := replicaSegments(p, t, brokers)
	if cur.Partitions > 0 {
		segs -= replicaSegments(p, cur, brokers)
	}
	if segs > 0 && *added+segs > room {
		return 0, fmt.Errorf("topic %s: its replicas need ~%d more segments on broker %d, which has room for %d within 80%% of nofile and vm.max_map_count (~%.1f FDs, %d maps per segment)",
			t.Name, segs, fullest.Broker, max(room-*added, 0), FDsPerSegment, MapsPerSegment)
	}
	*added += max(segs, 0)
	return max(grown, 0), nil
}

// replicaSegments is the segments t's replicas put on the fullest of
// brokers brokers (replicas spread evenly).
func replicaSegments(p TenantPlan, t TopicRequest, brokers int) int64 {
	return ceilDiv(int64(t.Partitions*t.RF()), int64(brokers)) * SegmentsPerPartition(p, t)
}
