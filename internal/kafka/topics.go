package kafka

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kfleet/kfleet/internal/fleet"
)

// The admin lane's Kafka side (issue #14): one CreateTopics or
// DeleteTopics request for a batch, answered per topic, with KIP-599's
// THROTTLING_QUOTA_EXCEEDED and the throttle time left to the caller to
// wait out (activities/topics.go), and the partitions tenants' prefixes
// hold. Counts, not lists.

// TopicAnswer is the broker's answer about one topic of a batch.
type TopicAnswer struct {
	// Err is the topic's error ("" on success).
	Err string `json:"err,omitempty"`
	// Throttled: THROTTLING_QUOTA_EXCEEDED (89); ThrottleMillis is how
	// long to wait before asking again.
	Throttled      bool  `json:"throttled,omitempty"`
	ThrottleMillis int32 `json:"throttleMillis,omitempty"`
	// Exists: TOPIC_ALREADY_EXISTS (creation) or UNKNOWN_TOPIC_OR_PARTITION
	// (deletion): the change is already there.
	Exists bool `json:"exists,omitempty"`
}

// adminTimeoutMillis is the controller's timeout for a batch.
const adminTimeoutMillis = 30_000

// CreateTopicsBatch sends one CreateTopics request for every topic.
func (a *Admin) CreateTopicsBatch(ctx context.Context, plans map[string]fleet.TenantPlan, topics []fleet.TopicRequest) (map[string]TopicAnswer, error) {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = adminTimeoutMillis
	for _, t := range topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = t.Name
		rt.NumPartitions = int32(t.Partitions)
		rt.ReplicationFactor = int16(t.RF())
		configs := map[string]int64{"retention.ms": t.RetentionOf(plans[t.Tenant])}
		if t.SegmentMs > 0 {
			configs["segment.ms"] = t.SegmentMs
		}
		if t.SegmentBytes > 0 {
			configs["segment.bytes"] = t.SegmentBytes
		}
		for _, k := range []string{"retention.ms", "segment.ms", "segment.bytes"} {
			if v, ok := configs[k]; ok {
				c := kmsg.NewCreateTopicsRequestTopicConfig()
				c.Name, c.Value = k, kmsg.StringPtr(strconv.FormatInt(v, 10))
				rt.Configs = append(rt.Configs, c)
			}
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, a.client)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: create %d topic(s): %w", a.cluster, len(topics), err)
	}
	out := make(map[string]TopicAnswer, len(resp.Topics))
	for _, t := range resp.Topics {
		out[t.Topic] = answer(t.ErrorCode, t.ErrorMessage, resp.ThrottleMillis, kerr.TopicAlreadyExists)
	}
	return out, nil
}

// DeleteTopicsBatch sends one DeleteTopics request for every topic.
func (a *Admin) DeleteTopicsBatch(ctx context.Context, names []string) (map[string]TopicAnswer, error) {
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.TimeoutMillis = adminTimeoutMillis
	for _, n := range names {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		req.Topics = append(req.Topics, rt)
		req.TopicNames = append(req.TopicNames, n)
	}
	resp, err := req.RequestWith(ctx, a.client)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: delete %d topic(s): %w", a.cluster, len(names), err)
	}
	out := make(map[string]TopicAnswer, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Topic != nil {
			out[*t.Topic] = answer(t.ErrorCode, t.ErrorMessage, resp.ThrottleMillis, kerr.UnknownTopicOrPartition)
		}
	}
	return out, nil
}

func answer(code int16, msg *string, throttle int32, done *kerr.Error) TopicAnswer {
	err := kerr.ErrorForCode(code)
	switch {
	case err == nil:
		return TopicAnswer{}
	case err == kerr.ThrottlingQuotaExceeded:
		return TopicAnswer{Throttled: true, ThrottleMillis: throttle, Err: err.Error()}
	case err == done:
		return TopicAnswer{Exists: true, Err: err.Error()}
	}
	s := err.Error()
	if msg != nil && *msg != "" {
		s += ": " + *msg
	}
	return TopicAnswer{Err: s}
}

// PrefixPartitions counts the partitions each prefix holds now.
func (a *Admin) PrefixPartitions(ctx context.Context, prefixes []string) (map[string]int, error) {
	tp, err := a.topicPartitions(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(prefixes))
	for _, p := range prefixes {
		out[p] = 0
	}
	for topic, n := range tp {
		for _, p := range prefixes {
			if strings.HasPrefix(topic, p) {
				out[p] += n
			}
		}
	}
	return out, nil
}

// CreateTopicsBatch: see Admin.CreateTopicsBatch.
func (p *Pool) CreateTopicsBatch(ctx context.Context, spec fleet.ClusterSpec, plans map[string]fleet.TenantPlan, topics []fleet.TopicRequest) (map[string]TopicAnswer, error) {
	return withAdmin(p, spec, func(a *Admin) (map[string]TopicAnswer, error) { return a.CreateTopicsBatch(ctx, plans, topics) })
}

// DeleteTopicsBatch: see Admin.DeleteTopicsBatch.
func (p *Pool) DeleteTopicsBatch(ctx context.Context, spec fleet.ClusterSpec, names []string) (map[string]TopicAnswer, error) {
	return withAdmin(p, spec, func(a *Admin) (map[string]TopicAnswer, error) { return a.DeleteTopicsBatch(ctx, names) })
}

// PrefixPartitions: see Admin.PrefixPartitions.
func (p *Pool) PrefixPartitions(ctx context.Context, spec fleet.ClusterSpec, prefixes []string) (map[string]int, error) {
	return withAdmin(p, spec, func(a *Admin) (map[string]int, error) { return a.PrefixPartitions(ctx, prefixes) })
}
