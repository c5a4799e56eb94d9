package activities

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/kafka"
)

// The admin lane's activity (issue #14): a batch of tenants' topic
// creations or deletions (and, topics_change.go, partitions added,
// retention set, groups deleted), decided against what the cluster holds
// now (the prefixes' partitions, the brokers' segments and host limits),
// then sent as ONE CreateTopics (DeleteTopics, ...) request. Topics the controller
// answers THROTTLING_QUOTA_EXCEEDED (KIP-599) are sent again, together,
// after the throttle time it gave, heartbeating meanwhile.

// TopicBatchAdmin is the Kafka side of the admin lane (*kafka.Pool).
type TopicBatchAdmin interface {
	CreateTopicsBatch(ctx context.Context, spec fleet.ClusterSpec, plans map[string]fleet.TenantPlan, topics []fleet.TopicRequest) (map[string]kafka.TopicAnswer, error)
	DeleteTopicsBatch(ctx context.Context, spec fleet.ClusterSpec, names []string) (map[string]kafka.TopicAnswer, error)
	PrefixPartitions(ctx context.Context, spec fleet.ClusterSpec, prefixes []string) (map[string]int, error)
}

// Topic admin actions. Each is a batch of its own: its topics (or, for
// delete-groups, consumer groups) go in one request.
const (
	TopicActionCreate = "create"
	TopicActionDelete = "delete"
	// TopicActionAddPartitions takes each topic to its Partitions, a new
	// total (CreatePartitions).
	TopicActionAddPartitions = "add-partitions"
	// TopicActionRetention sets each topic's retention.ms to its
	// RetentionMs (IncrementalAlterConfigs).
	TopicActionRetention = "retention"
	// TopicActionDeleteGroups deletes consumer groups, each named by a
	// TopicRequest's Name (DeleteGroups).
	TopicActionDeleteGroups = "delete-groups"
)

// TopicActions lists the actions, in the order help shows them.
func TopicActions() []string {
	return []string{TopicActionCreate, TopicActionDelete, TopicActionAddPartitions, TopicActionRetention, TopicActionDeleteGroups}
}

// TopicBatchInput is one admin lane batch.
type TopicBatchInput struct {
	Spec   fleet.ClusterSpec           `json:"spec"`
	Action string                      `json:"action"`
	Topics []fleet.TopicRequest        `json:"topics"`
	Plans  map[string]fleet.TenantPlan `json:"plans"`
}

// TopicBatchResult is what the batch did: counts, and each refused topic's
// reason.
type TopicBatchResult struct {
	// Action is the batch's (results recorded before it was kept have
	// none: they were creations or deletions of topics).
	Action    string `json:"action,omitempty"`
	Requested int    `json:"requested"`
	// Done counts topics created (or deleted), including ones already
	// there (Existing).
	Done     int            `json:"done"`
	Existing int            `json:"existing,omitempty"`
	Refused  []TopicRefusal `json:"refused,omitempty"`
	// Requests counts the admin requests sent; Throttled the topics the
	// controller throttled, ThrottledMillis the time waited.
	Requests        int   `json:"requests"`
	Throttled       int   `json:"throttled,omitempty"`
	ThrottledMillis int64 `json:"throttledMillis,omitempty"`
}

// TopicRefusal is one refused topic (for delete-groups, group) and why.
type TopicRefusal struct {
	Topic  string `json:"topic"`
	Reason string `json:"reason"`
}

// minThrottleWait is the least wait after a throttle whose time is 0.
const minThrottleWait = 100 * time.Millisecond

// TopicBatch runs one admin lane batch.
func (a *Activities) TopicBatch(ctx context.Context, in TopicBatchInput) (TopicBatchResult, error) {
	res := TopicBatchResult{Action: in.Action, Requested: len(in.Topics)}
	if in.Spec.ID == "" || !slices.Contains(TopicActions(), in.Action) {
		return res, badInput(fmt.Errorf("topic batch: a cluster and an action (one of %v) are required (got %q, %q)", TopicActions(), in.Spec.ID, in.Action))
	}
	if a.Topics == nil {
		return res, badInput(fmt.Errorf("cluster %s: this worker has no topic admin configured", in.Spec.ID))
	}
	switch in.Action {
	case TopicActionAddPartitions, TopicActionRetention, TopicActionDeleteGroups:
		return a.topicChangeBatch(ctx, in) // topics_change.go
	}
	var send func(ctx context.Context, names []string) (map[string]kafka.TopicAnswer, error)
	todo := make([]string, 0, len(in.Topics))
	byName := make(map[string]fleet.TopicRequest, len(in.Topics))
	if in.Action == TopicActionCreate {
		verdicts, err := a.decideCreations(ctx, in)
		if err != nil {
			return res, err
		}
		for i, v := range verdicts {
			if v.Reason != "" {
				res.Refused = append(res.Refused, TopicRefusal{Topic: v.Topic, Reason: v.Reason})
				continue
			}
			todo = append(todo, v.Topic)
			byName[v.Topic] = in.Topics[i]
		}
		send = func(ctx context.Context, names []string) (map[string]kafka.TopicAnswer, error) {
			batch := make([]fleet.TopicRequest, len(names))
			for i, n := range names {
				batch[i] = byName[n]
			}
			return a.Topics.CreateTopicsBatch(ctx, in.Spec, in.Plans, batch)
		}
	} else {
		for _, t := range in.Topics {
			if err := fleet.CheckTopicName(t.Tenant, t.Name); err != nil {
				res.Refused = append(res.Refused, TopicRefusal{Topic: t.Name, Reason: err.Error()})
				continue
			}
			todo = append(todo, t.Name)
		}
		send = func(ctx context.Context, names []string) (map[string]kafka.TopicAnswer, error) {
			return a.Topics.DeleteTopicsBatch(ctx, in.Spec, names)
		}
	}
	err := sendThrottled(ctx, todo, send, a.ticker(ctx, "topic batch "+in.Action), &res)
	return res, err
}

// decideCreations decides each creation against the cluster now.
func (a *Activities) decideCreations(ctx context.Context, in TopicBatchInput) ([]fleet.TopicVerdict, error) {
	b, err := a.topicBudget(ctx, in)
	if err != nil {
		return nil, err
	}
	return b.Decide(in.Topics), nil
}

// topicBudget is what a batch is decided on: the partitions the batch's
// tenants' prefixes hold now and the brokers' segments and host limits.
func (a *Activities) topicBudget(ctx context.Context, in TopicBatchInput) (fleet.TopicBatch, error) {
	var prefixes []string
	for name := range in.Plans {
		prefixes = append(prefixes, fleet.TenantPrefix(name))
	}
	slices.Sort(prefixes)
	counts, err := a.Topics.PrefixPartitions(ctx, in.Spec, prefixes)
	if err != nil {
		return fleet.TopicBatch{}, err
	}
	b := fleet.TopicBatch{Plans: in.Plans, Existing: map[string]int{}}
	for name := range in.Plans {
		b.Existing[name] = counts[fleet.TenantPrefix(name)]
	}
	for _, br := range in.Spec.Brokers {
		budget := fleet.BrokerBudget{Broker: br.ID}
		if a.Hosts != nil && br.InstanceID != "" {
			lim, err := a.hostLimits(ctx, BrokerInput{Spec: in.Spec, Broker: br.ID, Reason: "admin lane: FD/mmap budget"}, br)
			if err != nil {
				return fleet.TopicBatch{}, err
			}
			budget.Segments, budget.Nofile, budget.MaxMapCount = int64(lim.Segments), lim.Nofile, lim.MaxMapCount
		}
		b.Brokers = append(b.Brokers, budget)
	}
	return b, nil
}

// sendThrottled sends names in one request, then the throttled ones again
// after the controller's throttle time, until none is throttled; the rest
// of the answers are done or refused.
func sendThrottled(ctx context.Context, names []string, send func(context.Context, []string) (map[string]kafka.TopicAnswer, error), tick func(), res *TopicBatchResult) error {
	for len(names) > 0 {
		res.Requests++
		answers, err := send(ctx, names)
		if err != nil {
			return err
		}
		var again []string
		var wait time.Duration
		for _, n := range names {
			ans, ok := answers[n]
			switch {
			case !ok:
				res.Refused = append(res.Refused, TopicRefusal{Topic: n, Reason: "the controller did not answer about it"})
			case ans.Throttled:
				again = append(again, n)
				res.Throttled++
				wait = max(wait, time.Duration(ans.ThrottleMillis)*time.Millisecond)
			case ans.Exists:
				res.Done++
				res.Existing++
			case ans.Err != "":
				res.Refused = append(res.Refused, TopicRefusal{Topic: n, Reason: ans.Err})
			default:
				res.Done++
			}
		}
		names = again
		if len(again) == 0 {
			break
		}
		wait = max(wait, minThrottleWait)
		res.ThrottledMillis += wait.Milliseconds()
		if err := sleepTicking(ctx, wait, tick); err != nil {
			return err
		}
	}
	return nil
}

// sleepTicking waits d, heartbeating every second.
func sleepTicking(ctx context.Context, d time.Duration, tick func()) error {
	end := time.NewTimer(d)
	defer end.Stop()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		tick()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end.C:
			return nil
		case <-t.C:
		}
	}
}
