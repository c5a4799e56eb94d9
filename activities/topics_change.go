package activities

import (
	"context"
	"fmt"

	"go.temporal.io/sdk/activity"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/kafka"
)

// The admin lane's changes to what exists (issue #14): partitions added
// to tenants' topics, their retention changed, their consumer groups
// deleted. Each topic is decided against what the cluster holds now, with
// the same rules (fleet.TopicBatch) as a creation of what the change adds:
// the partitions added count against the tenant's plan, and the segments
// its replicas gain (more partitions, or more retention: segments grow
// with retention) against the fullest broker's FD/mmap budget. What is
// admitted goes in ONE request, throttled topics again after KIP-599's
// throttle time, as creations do.

// TopicChangeAdmin is the Kafka side of those changes (*kafka.Pool).
type TopicChangeAdmin interface {
	TopicShapes(ctx context.Context, spec fleet.ClusterSpec, names []string) (map[string]fleet.TopicRequest, error)
	CreatePartitionsBatch(ctx context.Context, spec fleet.ClusterSpec, topics []fleet.TopicRequest) (map[string]kafka.TopicAnswer, error)
	AlterRetentionBatch(ctx context.Context, spec fleet.ClusterSpec, topics []fleet.TopicRequest) (map[string]kafka.TopicAnswer, error)
	DeleteGroupsBatch(ctx context.Context, spec fleet.ClusterSpec, groups []string) (map[string]kafka.TopicAnswer, error)
}

// topicChangeBatch runs a batch of add-partitions, retention or
// delete-groups.
func (a *Activities) topicChangeBatch(ctx context.Context, in TopicBatchInput) (TopicBatchResult, error) {
	res := TopicBatchResult{Action: in.Action, Requested: len(in.Topics)}
	if a.TopicChanges == nil {
		return res, badInput(fmt.Errorf("cluster %s: this worker has no topic change admin configured", in.Spec.ID))
	}
	tick := a.ticker(ctx, "topic batch "+in.Action)
	if in.Action == TopicActionDeleteGroups {
		var todo []string
		for _, g := range in.Topics {
			if err := fleet.CheckGroupName(g.Tenant, g.Name); err != nil {
				res.Refused = append(res.Refused, TopicRefusal{Topic: g.Name, Reason: err.Error()})
				continue
			}
			todo = append(todo, g.Name)
		}
		err := sendThrottled(ctx, todo, func(ctx context.Context, names []string) (map[string]kafka.TopicAnswer, error) {
			return a.TopicChanges.DeleteGroupsBatch(ctx, in.Spec, names)
		}, tick, &res)
		return res, err
	}
	admitted, err := a.decideChanges(ctx, in, &res)
	if err != nil {
		return res, err
	}
	todo := make([]string, 0, len(admitted))
	byName := make(map[string]fleet.TopicRequest, len(admitted))
	for _, t := range admitted {
		todo = append(todo, t.Name)
		byName[t.Name] = t
	}
	send := func(ctx context.Context, names []string) (map[string]kafka.TopicAnswer, error) {
		batch := make([]fleet.TopicRequest, len(names))
		for i, n := range names {
			batch[i] = byName[n]
		}
		if in.Action == TopicActionAddPartitions {
			return a.TopicChanges.CreatePartitionsBatch(ctx, in.Spec, batch)
		}
		return a.TopicChanges.AlterRetentionBatch(ctx, in.Spec, batch)
	}
	return res, sendThrottled(ctx, todo, send, tick, &res)
}

// decideChanges decides each change against the topics as they are now,
// recording refusals (and changes already made) in res, and returns the
// changes to send.
func (a *Activities) decideChanges(ctx context.Context, in TopicBatchInput, res *TopicBatchResult) ([]fleet.TopicRequest, error) {
	var names []string
	for _, t := range in.Topics {
		if err := fleet.CheckTopicName(t.Tenant, t.Name); err == nil {
			names = append(names, t.Name)
		}
	}
	shapes, err := a.TopicChanges.TopicShapes(ctx, in.Spec, names)
	if err != nil {
		return nil, err
	}
	// A retried attempt finds its own earlier change made: that is done,
	// not a request to refuse.
	retried := activity.IsActivity(ctx) && activity.GetInfo(ctx).Attempt > 1
	var changes []fleet.TopicChange
	for _, t := range in.Topics {
		refuse := func(reason string) { res.Refused = append(res.Refused, TopicRefusal{Topic: t.Name, Reason: reason}) }
		if err := fleet.CheckTopicName(t.Tenant, t.Name); err != nil {
			refuse(err.Error())
			continue
		}
		cur, ok := shapes[t.Name]
		if !ok {
			refuse(fmt.Sprintf("topic %s does not exist on cluster %s", t.Name, in.Spec.ID))
			continue
		}
		cur.Tenant = t.Tenant
		next := cur
		var same bool
		if in.Action == TopicActionAddPartitions {
			next.Partitions = t.Partitions
			same = t.Partitions == cur.Partitions
			if t.Partitions < cur.Partitions || (same && !retried) {
				refuse(fmt.Sprintf("topic %s has %d partition(s): add-partitions wants a larger total, not %d (partitions are never removed)", t.Name, cur.Partitions, t.Partitions))
				continue
			}
		} else {
			next.RetentionMs = t.RetentionMs
			same = t.RetentionMs == cur.RetentionMs
		}
		if same {
			res.Done++
			res.Existing++
			continue
		}
		changes = append(changes, fleet.TopicChange{Topic: next, Current: &cur})
	}
	if len(changes) == 0 {
		return nil, nil
	}
	b, err := a.topicBudget(ctx, in)
	if err != nil {
		return nil, err
	}
	var admitted []fleet.TopicRequest
	for i, v := range b.DecideChanges(changes) {
		if v.Reason != "" {
			res.Refused = append(res.Refused, TopicRefusal{Topic: v.Topic, Reason: v.Reason})
			continue
		}
		admitted = append(admitted, changes[i].Topic)
	}
	return admitted, nil
}
