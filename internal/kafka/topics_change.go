package kafka

import (
	"context"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kfleet/kfleet/internal/fleet"
)

// The admin lane's changes beside creation and deletion (issue #14): one
// CreatePartitions, IncrementalAlterConfigs or DeleteGroups request for a
// batch, answered per topic (or group) like CreateTopicsBatch, and the
// topics' shapes now (partitions, replicas, retention and segment
// configs) that the activity decides them on.

// TopicShapes describes the named topics that exist: their partitions,
// replication factor, retention.ms, segment.ms and segment.bytes (as
// fleet.TopicRequest, Tenant left empty). A topic missing from the answer
// does not exist.
func (a *Admin) TopicShapes(ctx context.Context, names []string) (map[string]fleet.TopicRequest, error) {
	out := make(map[string]fleet.TopicRequest, len(names))
	if len(names) == 0 {
		return out, nil
	}
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = false // asking must not create it
	for _, n := range names {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, a.client)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: metadata of %d topic(s): %w", a.cluster, len(names), err)
	}
	var found []string
	for _, t := range resp.Topics {
		if t.Topic == nil || kerr.ErrorForCode(t.ErrorCode) != nil || len(t.Partitions) == 0 {
			continue
		}
		out[*t.Topic] = fleet.TopicRequest{Name: *t.Topic, Partitions: len(t.Partitions), ReplicationFactor: len(t.Partitions[0].Replicas)}
		found = append(found, *t.Topic)
	}
	if len(found) == 0 {
		return out, nil
	}
	rcs, err := a.adm.DescribeTopicConfigs(ctx, found...)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: describe configs of %d topic(s): %w", a.cluster, len(found), err)
	}
	for _, rc := range rcs {
		if rc.Err != nil {
			return nil, fmt.Errorf("cluster %s: describe configs of topic %s: %w", a.cluster, rc.Name, rc.Err)
		}
		t := out[rc.Name]
		for _, c := range rc.Configs {
			if c.Value == nil {
				continue
			}
			var into *int64
			switch c.Key {
			case "retention.ms":
				into = &t.RetentionMs
			case "segment.ms":
				into = &t.SegmentMs
			case "segment.bytes":
				into = &t.SegmentBytes
			default:
				continue
			}
			v, err := strconv.ParseInt(*c.Value, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("cluster %s: topic %s: %s %q: %w", a.cluster, rc.Name, c.Key, *c.Value, err)
			}
			*into = v
		}
		out[rc.Name] = t
	}
	return out, nil
}

// CreatePartitionsBatch sends one CreatePartitions request taking each
// topic to its Partitions (a new total).
func (a *Admin) CreatePartitionsBatch(ctx context.Context, topics []fleet.TopicRequest) (map[string]TopicAnswer, error) {
	req := kmsg.NewPtrCreatePartitionsRequest()
	req.TimeoutMillis = adminTimeoutMillis
	for _, t := range topics {
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic = t.Name
		rt.Count = int32(t.Partitions)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, a.client)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: add partitions to %d topic(s): %w", a.cluster, len(topics), err)
	}
	out := make(map[string]TopicAnswer, len(resp.Topics))
	for _, t := range resp.Topics {
		out[t.Topic] = answer(t.ErrorCode, t.ErrorMessage, resp.ThrottleMillis, nil)
	}
	return out, nil
}

// AlterRetentionBatch sends one IncrementalAlterConfigs request setting
// each topic's retention.ms to its RetentionMs.
func (a *Admin) AlterRetentionBatch(ctx context.Context, topics []fleet.TopicRequest) (map[string]TopicAnswer, error) {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	for _, t := range topics {
		r := kmsg.NewIncrementalAlterConfigsRequestResource()
		r.ResourceType = kmsg.ConfigResourceTypeTopic
		r.ResourceName = t.Name
		c := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		c.Name, c.Op, c.Value = "retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(strconv.FormatInt(t.RetentionMs, 10))
		r.Configs = append(r.Configs, c)
		req.Resources = append(req.Resources, r)
	}
	resp, err := req.RequestWith(ctx, a.client)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: set retention of %d topic(s): %w", a.cluster, len(topics), err)
	}
	out := make(map[string]TopicAnswer, len(resp.Resources))
	for _, r := range resp.Resources {
		out[r.ResourceName] = answer(r.ErrorCode, r.ErrorMessage, resp.ThrottleMillis, nil)
	}
	return out, nil
}

// DeleteGroupsBatch sends one DeleteGroups request for every group. A
// group already gone (GROUP_ID_NOT_FOUND) is done; one with live members
// answers NON_EMPTY_GROUP, a refusal the caller reports rather than
// retries: the members must leave first.
func (a *Admin) DeleteGroupsBatch(ctx context.Context, groups []string) (map[string]TopicAnswer, error) {
	req := kmsg.NewPtrDeleteGroupsRequest()
	req.Groups = groups
	resp, err := req.RequestWith(ctx, a.client)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: delete %d group(s): %w", a.cluster, len(groups), err)
	}
	out := make(map[string]TopicAnswer, len(resp.Groups))
	for _, g := range resp.Groups {
		ans := answer(g.ErrorCode, nil, resp.ThrottleMillis, kerr.GroupIDNotFound)
		if kerr.ErrorForCode(g.ErrorCode) == kerr.NonEmptyGroup {
			ans.Err = fmt.Sprintf("group %s has live members (NON_EMPTY_GROUP): stop its consumers, then ask again", g.Group)
		}
		out[g.Group] = ans
	}
	return out, nil
}

// TopicShapes: see Admin.TopicShapes.
func (p *Pool) TopicShapes(ctx context.Context, spec fleet.ClusterSpec, names []string) (map[string]fleet.TopicRequest, error) {
	return withAdmin(p, spec, func(a *Admin) (map[string]fleet.TopicRequest, error) { return a.TopicShapes(ctx, names) })
}

// CreatePartitionsBatch: see Admin.CreatePartitionsBatch.
func (p *Pool) CreatePartitionsBatch(ctx context.Context, spec fleet.ClusterSpec, topics []fleet.TopicRequest) (map[string]TopicAnswer, error) {
	return withAdmin(p, spec, func(a *Admin) (map[string]TopicAnswer, error) { return a.CreatePartitionsBatch(ctx, topics) })
}

// AlterRetentionBatch: see Admin.AlterRetentionBatch.
func (p *Pool) AlterRetentionBatch(ctx context.Context, spec fleet.ClusterSpec, topics []fleet.TopicRequest) (map[string]TopicAnswer, error) {
	return withAdmin(p, spec, func(a *Admin) (map[string]TopicAnswer, error) { return a.AlterRetentionBatch(ctx, topics) })
}

// DeleteGroupsBatch: see Admin.DeleteGroupsBatch.
func (p *Pool) DeleteGroupsBatch(ctx context.Context, spec fleet.ClusterSpec, groups []string) (map[string]TopicAnswer, error) {
	return withAdmin(p, spec, func(a *Admin) (map[string]TopicAnswer, error) { return a.DeleteGroupsBatch(ctx, groups) })
}
