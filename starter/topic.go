package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// newTopicCommand asks the cluster's admin lane (the topic-admin kind) to
// create or delete a tenant's topic.
func newTopicCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topic",
		Short: "Tenants' topics through the cluster's admin lane: create, delete, add-partitions, retention",
		Long: `A tenant's topic changes go through its cluster's entity (the topic-admin
kind, README "Topic admin lane"): serialized in the maintenance lane, never
during a roll, batched with the requests queued beside them into one
CreateTopics (DeleteTopics, CreatePartitions, IncrementalAlterConfigs),
waiting out KIP-599 throttles. A topic outside the tenant's prefix, over
its plan's partitions or retention bounds, or over the brokers' FD/mmap
budget is refused with its reason. Consumer groups: starter group delete.`,
	}
	cmd.AddCommand(newTopicCreateCommand(g), newTopicDeleteCommand(g), newTopicAddPartitionsCommand(g), newTopicRetentionCommand(g))
	return cmd
}

// topicFlags are what both commands share.
type topicFlags struct {
	tenantFlags
	topic string
	wait  bool
}

func (f *topicFlags) register(cmd *cobra.Command) {
	f.tenantFlags.register(cmd, true)
	cmd.Flags().StringVar(&f.topic, "topic", "", "the topic's full name, under the tenant's prefix: <tenant>.<name>")
	cmd.Flags().BoolVar(&f.wait, "wait", false, "follow the batch until it ends")
}

// request is the topic-admin request of action for t.
func (f *topicFlags) request(action string, t fleet.TopicRequest) (workflows.Request, error) {
	if err := f.check(); err != nil {
		return workflows.Request{}, err
	}
	if f.topic == "" {
		return workflows.Request{}, exitError{exitBadInput, errors.New("--topic is required: the topic's full name, e.g. " + fleet.TenantPrefix(f.tenant) + "orders")}
	}
	t.Tenant, t.Name = f.tenant, f.topic
	raw, err := json.Marshal(workflows.TopicAdminParams{Action: action, Topics: []fleet.TopicRequest{t}})
	if err != nil {
		return workflows.Request{}, err
	}
	return workflows.Request{Kind: workflows.OpTopicAdmin, RequestedBy: f.by, Reason: f.reason, Params: raw}, nil
}

const topicExits = `A malformed flag, a request the entity refuses (outside the prefix, over
the plan, an unknown tenant) or an unknown cluster exits 2: nothing is
started; 3: Temporal unreachable. With --wait, follows the batch until it
ends: 0 when it ran (its outcome says what was done and refused), 1 when it
failed.`

func newTopicCreateCommand(g *globalFlags) *cobra.Command {
	var (
		f         topicFlags
		t         fleet.TopicRequest
		retention time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create --cluster C --tenant T --topic NAME --partitions N [--retention 24h]",
		Short: "Create a tenant's topic through the admin lane",
		Long:  "Asks the cluster's entity to create the topic; it joins the queued creation batch if there is one.\n\n" + topicExits,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if t.Partitions < 1 {
				return exitError{exitBadInput, errors.New("--partitions is required: at least 1")}
			}
			t.RetentionMs = retention.Milliseconds()
			req, err := f.request(activities.TopicActionCreate, t)
			if err != nil {
				return err
			}
			return askJudged(cmd, g, f.cluster, req, f.wait, refusedIn(req))
		},
	}
	f.register(cmd)
	cmd.Flags().IntVar(&t.Partitions, "partitions", 0, "partitions")
	cmd.Flags().IntVar(&t.ReplicationFactor, "replication-factor", 0, "replicas per partition (default 3)")
	cmd.Flags().DurationVar(&retention, "retention", 0, "retention.ms as a duration, within the plan's bounds (default: the plan's)")
	cmd.Flags().Int64Var(&t.SegmentMs, "segment-ms", 0, "segment.ms (default Kafka's, 7 days)")
	cmd.Flags().Int64Var(&t.SegmentBytes, "segment-bytes", 0, "segment.bytes (default Kafka's)")
	return cmd
}

func newTopicDeleteCommand(g *globalFlags) *cobra.Command {
	var f topicFlags
	cmd := &cobra.Command{
		Use:   "delete --cluster C --tenant T --topic NAME",
		Short: "Delete a tenant's topic through the admin lane",
		Long:  fmt.Sprintf("Asks the cluster's entity to delete the topic; it joins the queued deletion batch if there is one.\n\n%s", topicExits),
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.request(activities.TopicActionDelete, fleet.TopicRequest{})
			if err != nil {
				return err
			}
			return askJudged(cmd, g, f.cluster, req, f.wait, refusedIn(req))
		},
	}
	f.register(cmd)
	return cmd
}

func newTopicAddPartitionsCommand(g *globalFlags) *cobra.Command {
	var (
		f     topicFlags
		total int
	)
	cmd := &cobra.Command{
		Use:   "add-partitions --cluster C --tenant T --topic NAME --partitions N",
		Short: "Take a tenant's topic to N partitions in all through the admin lane",
		Long: "Asks the cluster's entity to add partitions to the topic, up to a total of N (more than it has: partitions are never\n" +
			"removed); it joins the queued add-partitions batch if there is one. The batch refuses a topic that does not exist, N not above\n" +
			"its partitions, or partitions over the plan's limit or the brokers' FD/mmap budget.\n\n" + topicExits,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if total < 1 {
				return exitError{exitBadInput, errors.New("--partitions is required: the topic's new total")}
			}
			req, err := f.request(activities.TopicActionAddPartitions, fleet.TopicRequest{Partitions: total})
			if err != nil {
				return err
			}
			return askJudged(cmd, g, f.cluster, req, f.wait, refusedIn(req))
		},
	}
	f.register(cmd)
	cmd.Flags().IntVar(&total, "partitions", 0, "the topic's new total of partitions")
	return cmd
}

func newTopicRetentionCommand(g *globalFlags) *cobra.Command {
	var (
		f         topicFlags
		retention time.Duration
	)
	cmd := &cobra.Command{
		Use:   "retention --cluster C --tenant T --topic NAME --retention 36h",
		Short: "Set a tenant's topic's retention.ms through the admin lane",
		Long: "Asks the cluster's entity to set the topic's retention.ms, within the plan's bounds; it joins the queued retention batch if\n" +
			"there is one. A longer retention keeps more segments: the batch refuses one over the brokers' FD/mmap budget.\n\n" + topicExits,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if retention <= 0 {
				return exitError{exitBadInput, errors.New("--retention is required: a duration like 36h")}
			}
			req, err := f.request(activities.TopicActionRetention, fleet.TopicRequest{RetentionMs: retention.Milliseconds()})
			if err != nil {
				return err
			}
			return askJudged(cmd, g, f.cluster, req, f.wait, refusedIn(req))
		},
	}
	f.register(cmd)
	cmd.Flags().DurationVar(&retention, "retention", 0, "retention.ms as a duration, within the plan's bounds")
	return cmd
}

// refusedIn judges a finished batch for the request's own topics (the
// batch carries other requests' too): one the batch refused makes the
// command fail with the reason, though the batch succeeded.
func refusedIn(req workflows.Request) func(json.RawMessage) error {
	var p workflows.TopicAdminParams
	_ = json.Unmarshal(req.Params, &p) // built by this command: it decodes
	mine := map[string]bool{}
	for _, t := range p.Topics {
		mine[t.Name] = true
	}
	return func(raw json.RawMessage) error {
		var res activities.TopicBatchResult
		if err := json.Unmarshal(raw, &res); err != nil {
			return fmt.Errorf("read the batch's result: %w", err)
		}
		var errs []error
		for _, r := range res.Refused {
			if mine[r.Topic] {
				errs = append(errs, errors.New(r.Reason))
			}
		}
		return errors.Join(errs...)
	}
}
