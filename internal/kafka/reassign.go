package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kfleet/kfleet/internal/fleet"
)

// Partition reassignment under replication throttles, as
// kafka-reassign-partitions runs it: a per-broker rate
// (leader/follower.replication.throttled.rate) applied to the replicas a
// topic names (leader.replication.throttled.replicas: the partitions'
// current replicas, which send; follower...: the replicas being added,
// which receive), so normal replication is never throttled.

// Throttle config keys (Kafka's dynamic configs).
const (
	LeaderThrottledRate       = "leader.replication.throttled.rate"
	FollowerThrottledRate     = "follower.replication.throttled.rate"
	LeaderThrottledReplicas   = "leader.replication.throttled.replicas"
	FollowerThrottledReplicas = "follower.replication.throttled.replicas"
)

// Reassigning is a partition's reassignment under way: Target is where it
// is going (its replicas less those being removed).
type Reassigning struct {
	Topic     string
	Partition int32
	Target    []int32
	Adding    []int32
	Removing  []int32
}

// Reassignments lists the cluster's reassignments under way. It asks
// with no topics, which Kafka answers with every reassignment (kadm's
// ListPartitionReassignments answers an empty set with nothing).
func (a *Admin) Reassignments(ctx context.Context) ([]Reassigning, error) {
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	req.TimeoutMillis = 30_000
	resp, err := req.RequestWith(ctx, a.client)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: list reassignments: %w", a.cluster, err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, fmt.Errorf("cluster %s: list reassignments: %w", a.cluster, err)
	}
	var out []Reassigning
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			target := slices.DeleteFunc(slices.Clone(p.Replicas), func(b int32) bool { return slices.Contains(p.RemovingReplicas, b) })
			out = append(out, Reassigning{Topic: t.Topic, Partition: p.Partition, Target: target, Adding: slices.Clone(p.AddingReplicas),
				Removing: slices.Clone(p.RemovingReplicas)})
		}
	}
	slices.SortFunc(out, func(x, y Reassigning) int {
		return cmp.Or(strings.Compare(x.Topic, y.Topic), cmp.Compare(x.Partition, y.Partition))
	})
	return out, nil
}

// Reassign starts moves (AlterPartitionAssignments). A partition whose
// move is refused is an error naming it; the others have started.
func (a *Admin) Reassign(ctx context.Context, moves []fleet.Move) error {
	if len(moves) == 0 {
		return nil
	}
	req := kadm.AlterPartitionAssignmentsReq{}
	for _, m := range moves {
		req.Assign(m.Topic, m.Partition, m.To)
	}
	res, err := a.adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return fmt.Errorf("cluster %s: reassign %d partition(s): %w", a.cluster, len(moves), err)
	}
	var errs []error
	for _, r := range res.Sorted() {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s/%d: %w %s", r.Topic, r.Partition, r.Err, r.ErrMessage))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster %s: reassign: %w", a.cluster, err)
	}
	return nil
}

// CancelReassignments cancels reassignments under way: each partition
// goes back to its replicas before the move.
func (a *Admin) CancelReassignments(ctx context.Context, parts []Reassigning) error {
	if len(parts) == 0 {
		return nil
	}
	req := kadm.AlterPartitionAssignmentsReq{}
	for _, r := range parts {
		req.CancelAssign(r.Topic, r.Partition)
	}
	res, err := a.adm.AlterPartitionAssignments(ctx, req)
	if err != nil {
		return fmt.Errorf("cluster %s: cancel %d reassignment(s): %w", a.cluster, len(parts), err)
	}
	var errs []error
	for _, r := range res.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.NoReassignmentInProgress) {
			errs = append(errs, fmt.Errorf("%s/%d: %w", r.Topic, r.Partition, r.Err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster %s: cancel reassignments: %w", a.cluster, err)
	}
	return nil
}

// SetThrottleRate sets brokers' leader and follower replication throttle
// to bytesPerSec.
func (a *Admin) SetThrottleRate(ctx context.Context, brokers []int32, bytesPerSec int64) error {
	v := strconv.FormatInt(bytesPerSec, 10)
	cfgs := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: LeaderThrottledRate, Value: &v}, {Op: kadm.SetConfig, Name: FollowerThrottledRate, Value: &v}}
	return a.alterBrokers(ctx, "set replication throttle", cfgs, brokers)
}

// ThrottledReplicas are a topic's throttled replica lists, in Kafka's
// "partition:broker,..." form; an empty list clears the key.
type ThrottledReplicas struct {
	Leader, Follower string
}

// ThrottleReplicas throttles the replicas moves send and receive: for
// each topic, the partitions' current replicas as leaders and their
// adding replicas as followers. Topics not in moves are left alone.
func (a *Admin) ThrottleReplicas(ctx context.Context, moves []fleet.Move) error {
	byTopic := map[string]ThrottledReplicas{}
	leader, follower := map[string][]string{}, map[string][]string{}
	for _, m := range moves {
		for _, b := range m.From {
			leader[m.Topic] = append(leader[m.Topic], fmt.Sprintf("%d:%d", m.Partition, b))
		}
		for _, b := range m.Adding() {
			follower[m.Topic] = append(follower[m.Topic], fmt.Sprintf("%d:%d", m.Partition, b))
		}
		byTopic[m.Topic] = ThrottledReplicas{}
	}
	for t := range byTopic {
		byTopic[t] = ThrottledReplicas{Leader: strings.Join(leader[t], ","), Follower: strings.Join(follower[t], ",")}
	}
	return a.SetThrottledReplicas(ctx, byTopic)
}

// SetThrottledReplicas sets (or, empty, clears) topics' throttled replica
// lists.
func (a *Admin) SetThrottledReplicas(ctx context.Context, byTopic map[string]ThrottledReplicas) error {
	var errs []error
	for _, t := range slices.Sorted(maps.Keys(byTopic)) {
		r := byTopic[t]
		cfgs := []kadm.AlterConfig{throttleConfig(LeaderThrottledReplicas, r.Leader), throttleConfig(FollowerThrottledReplicas, r.Follower)}
		res, err := a.adm.AlterTopicConfigs(ctx, cfgs, t)
		if err != nil {
			return fmt.Errorf("cluster %s: throttle replicas of topic %s: %w", a.cluster, t, err)
		}
		errs = append(errs, configErrors(res)...)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster %s: throttle replicas: %w", a.cluster, err)
	}
	return nil
}

func throttleConfig(name, value string) kadm.AlterConfig {
	if value == "" {
		return kadm.AlterConfig{Op: kadm.DeleteConfig, Name: name}
	}
	return kadm.AlterConfig{Op: kadm.SetConfig, Name: name, Value: &value}
}

// ClearThrottles removes every replication throttle kfleet sets: brokers'
// rates and topics' replica lists. Clearing what is not set is not an
// error, so it can run after any crash.
func (a *Admin) ClearThrottles(ctx context.Context, brokers []int32, topics []string) error {
	del := []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: LeaderThrottledRate}, {Op: kadm.DeleteConfig, Name: FollowerThrottledRate}}
	if err := a.alterBrokers(ctx, "clear replication throttle", del, brokers); err != nil {
		return err
	}
	if len(topics) == 0 {
		return nil
	}
	res, err := a.adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.DeleteConfig, Name: LeaderThrottledReplicas}, {Op: kadm.DeleteConfig, Name: FollowerThrottledReplicas}}, topics...)
	if err != nil {
		return fmt.Errorf("cluster %s: clear throttled replicas of %d topic(s): %w", a.cluster, len(topics), err)
	}
	if err := errors.Join(configErrors(res)...); err != nil {
		return fmt.Errorf("cluster %s: clear throttled replicas: %w", a.cluster, err)
	}
	return nil
}

// ThrottlesLeft lists the throttles set on brokers and topics: what a
// reassignment left behind, for a check after clearing.
func (a *Admin) ThrottlesLeft(ctx context.Context, brokers []int32, topics []string) ([]string, error) {
	var left []string
	for _, b := range brokers {
		rcs, err := a.adm.DescribeBrokerConfigs(ctx, b)
		if err != nil {
			return nil, fmt.Errorf("cluster %s broker %d: describe configs: %w", a.cluster, b, err)
		}
		left = append(left, throttlesIn(rcs, fmt.Sprintf("broker %d", b), LeaderThrottledRate, FollowerThrottledRate)...)
	}
	if len(topics) > 0 {
		rcs, err := a.adm.DescribeTopicConfigs(ctx, topics...)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: describe topic configs: %w", a.cluster, err)
		}
		left = append(left, throttlesIn(rcs, "topic", LeaderThrottledReplicas, FollowerThrottledReplicas)...)
	}
	return left, nil
}

func throttlesIn(rcs kadm.ResourceConfigs, what string, keys ...string) []string {
	var out []string
	for _, rc := range rcs {
		for _, c := range rc.Configs {
			if slices.Contains(keys, c.Key) && c.Value != nil && *c.Value != "" && c.Source != kmsg.ConfigSourceDefaultConfig {
				out = append(out, fmt.Sprintf("%s %s %s=%s", what, rc.Name, c.Key, *c.Value))
			}
		}
	}
	return out
}

func (a *Admin) alterBrokers(ctx context.Context, what string, cfgs []kadm.AlterConfig, brokers []int32) error {
	if len(brokers) == 0 {
		return nil
	}
	res, err := a.adm.AlterBrokerConfigs(ctx, cfgs, brokers...)
	if err != nil {
		return fmt.Errorf("cluster %s: %s on brokers %v: %w", a.cluster, what, brokers, err)
	}
	if err := errors.Join(configErrors(res)...); err != nil {
		return fmt.Errorf("cluster %s: %s: %w", a.cluster, what, err)
	}
	return nil
}

func configErrors(res kadm.AlterConfigsResponses) []error {
	var errs []error
	for _, r := range res {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w %s", r.Name, r.Err, r.ErrMessage))
		}
	}
	return errs
}

// PartitionSizes returns each partition's size on its largest replica
// (DescribeLogDirs of every broker): what a move copies.
func (a *Admin) PartitionSizes(ctx context.Context) (map[string]map[int32]int64, error) {
	all, err := a.adm.DescribeAllLogDirs(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: describe log dirs: %w", a.cluster, err)
	}
	out := map[string]map[int32]int64{}
	for _, dirs := range all {
		for _, d := range dirs {
			if d.Err != nil {
				continue
			}
			d.Topics.Each(func(p kadm.DescribedLogDirPartition) {
				if out[p.Topic] == nil {
					out[p.Topic] = map[int32]int64{}
				}
				out[p.Topic][p.Partition] = max(out[p.Topic][p.Partition], p.Size)
			})
		}
	}
	return out, nil
}

// The pooled connection's reassignment calls (activities.Reassigner).

func (p *Pool) Reassignments(ctx context.Context, spec fleet.ClusterSpec) ([]Reassigning, error) {
	return withAdmin(p, spec, func(a *Admin) ([]Reassigning, error) { return a.Reassignments(ctx) })
}

func (p *Pool) Reassign(ctx context.Context, spec fleet.ClusterSpec, moves []fleet.Move) error {
	_, err := withAdmin(p, spec, func(a *Admin) (struct{}, error) { return struct{}{}, a.Reassign(ctx, moves) })
	return err
}

func (p *Pool) CancelReassignments(ctx context.Context, spec fleet.ClusterSpec, parts []Reassigning) error {
	_, err := withAdmin(p, spec, func(a *Admin) (struct{}, error) { return struct{}{}, a.CancelReassignments(ctx, parts) })
	return err
}

func (p *Pool) SetThrottleRate(ctx context.Context, spec fleet.ClusterSpec, brokers []int32, bytesPerSec int64) error {
	_, err := withAdmin(p, spec, func(a *Admin) (struct{}, error) { return struct{}{}, a.SetThrottleRate(ctx, brokers, bytesPerSec) })
	return err
}

func (p *Pool) ThrottleReplicas(ctx context.Context, spec fleet.ClusterSpec, moves []fleet.Move) error {
	_, err := withAdmin(p, spec, func(a *Admin) (struct{}, error) { return struct{}{}, a.ThrottleReplicas(ctx, moves) })
	return err
}

func (p *Pool) ClearThrottles(ctx context.Context, spec fleet.ClusterSpec, brokers []int32, topics []string) error {
	_, err := withAdmin(p, spec, func(a *Admin) (struct{}, error) { return struct{}{}, a.ClearThrottles(ctx, brokers, topics) })
	return err
}

func (p *Pool) ThrottlesLeft(ctx context.Context, spec fleet.ClusterSpec, brokers []int32, topics []string) ([]string, error) {
	return withAdmin(p, spec, func(a *Admin) ([]string, error) { return a.ThrottlesLeft(ctx, brokers, topics) })
}

func (p *Pool) PartitionSizes(ctx context.Context, spec fleet.ClusterSpec) (map[string]map[int32]int64, error) {
	return withAdmin(p, spec, func(a *Admin) (map[string]map[int32]int64, error) { return a.PartitionSizes(ctx) })
}

func withAdmin[T any](p *Pool, spec fleet.ClusterSpec, f func(*Admin) (T, error)) (T, error) {
	a, err := p.Admin(spec)
	if err != nil {
		var zero T
		return zero, err
	}
	return f(a)
}
