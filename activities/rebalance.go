package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/kafka"
)

// Moving partitions (OPERATIONS.md "Provisioning and hosts"): onto brokers
// just added, off a broker about to leave, or to even out a cluster. One
// activity runs the whole move, heartbeating its counts: the plan (which
// partition goes where) lives only here, never in workflow history, since
// at 50,000 partitions it would outgrow it. It is safe to run again after
// a crash: it plans from what the cluster looks like, counting the
// reassignments under way at their targets, so what moved stays moved
// and nothing moves twice.

// Reassigner moves partitions and throttles the copies (*kafka.Pool).
type Reassigner interface {
	Replication(ctx context.Context, spec fleet.ClusterSpec) (controller int32, partitions []fleet.Partition, err error)
	ElectPreferredLeaders(ctx context.Context, spec fleet.ClusterSpec, partitions []fleet.Partition) error
	Reassignments(ctx context.Context, spec fleet.ClusterSpec) ([]kafka.Reassigning, error)
	Reassign(ctx context.Context, spec fleet.ClusterSpec, moves []fleet.Move) error
	CancelReassignments(ctx context.Context, spec fleet.ClusterSpec, parts []kafka.Reassigning) error
	SetThrottleRate(ctx context.Context, spec fleet.ClusterSpec, brokers []int32, bytesPerSec int64) error
	ThrottleReplicas(ctx context.Context, spec fleet.ClusterSpec, moves []fleet.Move) error
	ClearThrottles(ctx context.Context, spec fleet.ClusterSpec, brokers []int32, topics []string) error
	ThrottlesLeft(ctx context.Context, spec fleet.ClusterSpec, brokers []int32, topics []string) ([]string, error)
	PartitionSizes(ctx context.Context, spec fleet.ClusterSpec) (map[string]map[int32]int64, error)
}

// Defaults of a rebalance (Cruise Control's concurrency limits).
const (
	DefaultMovesPerBroker = 5
	DefaultMovesInFlight  = 1250
	// DefaultThrottleBytesPerSec is each broker's replication throttle
	// while partitions move: 50 MiB/s leaves a broker's network and disks
	// to its clients.
	DefaultThrottleBytesPerSec = 50 << 20
	// DefaultGateHold is how long the availability gate may hold new
	// moves before a human is asked.
	DefaultGateHold = 30 * time.Minute
)

// ErrTypeGateHeld: the availability gate held new moves for longer than
// the rebalance's hold; the moves under way went on.
const ErrTypeGateHeld = "GateHeld"

// RebalanceInput asks for partitions to move: onto the spec's brokers,
// off the Leaving ones, until counts are within the tolerance.
type RebalanceInput struct {
	Spec fleet.ClusterSpec `json:"spec"`
	// Leaving are brokers of the spec to drain of every replica.
	Leaving             []int32       `json:"leaving,omitempty"`
	ThrottleBytesPerSec int64         `json:"throttleBytesPerSec,omitempty"`
	MovesPerBroker      int           `json:"movesPerBroker,omitempty"`
	MovesInFlight       int           `json:"movesInFlight,omitempty"`
	Tolerance           float64       `json:"tolerance,omitempty"`
	GateHold            time.Duration `json:"gateHold,omitempty"`
	// PollInterval paces the watch of the moves; 0: the worker's.
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

func (in RebalanceInput) goal() fleet.BalanceGoal {
	g := fleet.BalanceGoal{Racks: map[int32]string{}, Tolerance: in.Tolerance}
	for _, b := range in.Spec.Brokers {
		if !slices.Contains(in.Leaving, b.ID) {
			g.Brokers = append(g.Brokers, b.ID)
		}
		if b.Rack != "" {
			g.Racks[b.ID] = b.Rack
		}
	}
	slices.Sort(g.Brokers)
	return g
}

// RebalanceResult is what a rebalance did, in counts.
type RebalanceResult struct {
	// Moved partitions, Copies of replicas made, and the Bytes they
	// copied (sizes when each move was submitted).
	Moved  int   `json:"moved"`
	Copies int   `json:"copies"`
	Bytes  int64 `json:"bytes"`
	// Before and After are the spreads over the goal's brokers.
	Before fleet.Spread `json:"before"`
	After  fleet.Spread `json:"after"`
	// Elected counts the preferred-leader elections run at the end.
	Elected int `json:"elected"`
	// Held counts the polls on which the availability gate held new moves.
	Held                int     `json:"held,omitempty"`
	Seconds             float64 `json:"seconds"`
	ThrottleBytesPerSec int64   `json:"throttleBytesPerSec"`
}

// rebalanceProgress is the heartbeat: counts only, so a retry carries
// them on.
type rebalanceProgress struct {
	RebalanceResult
	InFlight int       `json:"inFlight"`
	Left     int       `json:"left"`
	HeldBy   string    `json:"heldBy,omitempty"`
	Started  time.Time `json:"started"`
}

// Rebalance moves partitions until the goal is met, then clears the
// throttles and elects preferred leaders. It returns once every broker of
// the goal holds its share and the leaving ones hold nothing.
func (a *Activities) Rebalance(ctx context.Context, in RebalanceInput) (RebalanceResult, error) {
	if a.Reassigner == nil {
		return RebalanceResult{}, badInput(errors.New("this worker has no Kafka admin to move partitions with"))
	}
	for _, b := range in.Leaving {
		if _, ok := in.Spec.Broker(b); !ok {
			return RebalanceResult{}, badInput(fmt.Errorf("cluster %s: broker %d to drain is not in the cluster", in.Spec.ID, b))
		}
	}
	r := &rebalance{a: a, in: in, goal: in.goal(), log: a.Log.With().Str("cluster", in.Spec.ID).Logger()}
	r.in.ThrottleBytesPerSec = cmp.Or(in.ThrottleBytesPerSec, DefaultThrottleBytesPerSec)
	r.in.MovesPerBroker = cmp.Or(in.MovesPerBroker, DefaultMovesPerBroker)
	r.in.MovesInFlight = cmp.Or(in.MovesInFlight, DefaultMovesInFlight)
	r.in.GateHold = cmp.Or(in.GateHold, DefaultGateHold)
	r.in.PollInterval = cmp.Or(in.PollInterval, a.pollInterval())
	if activity.HasHeartbeatDetails(ctx) {
		_ = activity.GetHeartbeatDetails(ctx, &r.p) // an earlier attempt's counts
	}
	if r.p.Started.IsZero() {
		r.p.Started = time.Now()
	}
	r.p.ThrottleBytesPerSec = r.in.ThrottleBytesPerSec
	return r.run(ctx)
}

type rebalance struct {
	a    *Activities
	in   RebalanceInput
	goal fleet.BalanceGoal
	log  zerolog.Logger
	p    rebalanceProgress
	// flying are the moves under way by partition; sizes the partitions'
	// sizes when planned.
	flying map[string]fleet.Move
	sizes  map[string]map[int32]int64
}

func key(topic string, partition int32) string { return fmt.Sprintf("%s/%d", topic, partition) }

// run plans from the cluster as it is and moves until the plan is done;
// a plan done that does not meet the goal (the cluster changed meanwhile:
// a topic created on a leaving broker) is planned again, a few times.
func (r *rebalance) run(ctx context.Context) (RebalanceResult, error) {
	spec := r.in.Spec
	if err := r.a.Reassigner.SetThrottleRate(ctx, spec, spec.BrokerIDs(), r.in.ThrottleBytesPerSec); err != nil {
		return r.p.RebalanceResult, err
	}
	var topics []string
	for planned := 0; ; {
		parts, ongoing, err := r.read(ctx)
		if err != nil {
			return r.p.RebalanceResult, err
		}
		topics = topicsOf(parts)
		if r.p.Before == (fleet.Spread{}) { // not an earlier attempt's
			r.p.Before = fleet.SpreadOf(placedAt(parts, ongoing), r.goal)
		}
		if len(ongoing) > 0 {
			// Moves under way (an earlier attempt's, or someone's): let
			// them land before planning, so no partition gets a second
			// move while one is under way.
			r.log.Info().Int("underWay", len(ongoing)).Msg("rebalance: waiting for the moves under way before planning")
			r.track(ctx, ongoing)
			if err := r.move(ctx, nil); err != nil {
				return r.p.RebalanceResult, err
			}
			continue
		}
		moves, err := fleet.PlanRebalance(parts, r.goal)
		if err != nil {
			return r.p.RebalanceResult, badInput(fmt.Errorf("cluster %s: %w", spec.ID, err))
		}
		if len(moves) == 0 {
			break
		}
		if planned == 3 {
			return r.p.RebalanceResult, fmt.Errorf("cluster %s: %d partition(s) still to move after %d plans: the cluster keeps changing under the rebalance", spec.ID, len(moves), planned)
		}
		planned++
		r.log.Info().Int("moves", len(moves)).Str("before", fleet.SpreadOf(parts, r.goal).String()).Msg("rebalance planned")
		if r.sizes, err = r.a.Reassigner.PartitionSizes(ctx, spec); err != nil {
			return r.p.RebalanceResult, err
		}
		r.track(ctx, nil)
		if err := r.move(ctx, moves); err != nil {
			return r.p.RebalanceResult, err
		}
	}
	if err := r.a.Reassigner.ClearThrottles(ctx, spec, spec.BrokerIDs(), topics); err != nil {
		return r.p.RebalanceResult, err
	}
	_, parts, err := r.a.Reassigner.Replication(ctx, spec)
	if err != nil {
		return r.p.RebalanceResult, err
	}
	var notPreferred []fleet.Partition
	for _, p := range parts {
		if len(p.Replicas) > 0 && p.Leader != p.Replicas[0] && slices.Contains(p.ISR, p.Replicas[0]) {
			notPreferred = append(notPreferred, p)
		}
	}
	if err := r.a.Reassigner.ElectPreferredLeaders(ctx, spec, notPreferred); err != nil {
		return r.p.RebalanceResult, err
	}
	r.p.Elected = len(notPreferred)
	r.p.After = fleet.SpreadOf(parts, r.goal)
	r.p.Seconds = time.Since(r.p.Started).Seconds()
	r.log.Info().Int("moved", r.p.Moved).Int("copies", r.p.Copies).Int64("bytes", r.p.Bytes).Str("after", r.p.After.String()).
		Int("elected", r.p.Elected).Float64("seconds", r.p.Seconds).Msg("rebalance done; throttles cleared")
	return r.p.RebalanceResult, nil
}

// track starts tracking moves: those under way (their replicas before the
// move are the target less what is being added, plus what is being
// removed), and those to come.
func (r *rebalance) track(ctx context.Context, ongoing []kafka.Reassigning) {
	r.flying = map[string]fleet.Move{}
	for _, o := range ongoing {
		before := slices.DeleteFunc(slices.Clone(o.Target), func(b int32) bool { return slices.Contains(o.Adding, b) })
		r.flying[key(o.Topic, o.Partition)] = fleet.Move{Topic: o.Topic, Partition: o.Partition, From: union(before, o.Removing), To: o.Target}
	}
	if r.sizes == nil {
		var err error
		if r.sizes, err = r.a.Reassigner.PartitionSizes(ctx, r.in.Spec); err != nil {
			r.log.Warn().Err(err).Msg("rebalance: partition sizes unknown: bytes moved not counted")
		}
	}
}

// read returns the partitions and the reassignments under way.
func (r *rebalance) read(ctx context.Context) ([]fleet.Partition, []kafka.Reassigning, error) {
	_, parts, err := r.a.Reassigner.Replication(ctx, r.in.Spec)
	if err != nil {
		return nil, nil, err
	}
	ongoing, err := r.a.Reassigner.Reassignments(ctx, r.in.Spec)
	return parts, ongoing, err
}

// placedAt is parts with each partition under reassignment at its target.
func placedAt(parts []fleet.Partition, ongoing []kafka.Reassigning) []fleet.Partition {
	target := map[string][]int32{}
	for _, o := range ongoing {
		target[key(o.Topic, o.Partition)] = o.Target
	}
	out := slices.Clone(parts)
	for i, p := range out {
		if t, ok := target[key(p.Topic, p.Partition)]; ok {
			out[i].Replicas = slices.Clone(t)
		}
	}
	return out
}

// topicsOf are parts' topics, once each: parts come sorted by topic
// (Reassigner.Replication sorts them).
func topicsOf(parts []fleet.Partition) []string {
	var out []string
	for _, p := range parts {
		if n := len(out); n == 0 || out[n-1] != p.Topic {
			out = append(out, p.Topic)
		}
	}
	return out
}

func union(a, b []int32) []int32 {
	out := slices.Clone(a)
	for _, id := range b {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// move submits moves as the limits and the availability gate allow and
// waits until every one (and every move under way) is done.
func (r *rebalance) move(ctx context.Context, queue []fleet.Move) error {
	spec := r.in.Spec
	var heldSince time.Time
	for {
		ongoing, err := r.a.Reassigner.Reassignments(ctx, spec)
		if err != nil {
			return err
		}
		if err := r.landed(ctx, ongoing); err != nil {
			return err
		}
		r.p.InFlight, r.p.Left = len(r.flying), len(queue)
		if len(queue) == 0 && len(r.flying) == 0 {
			return nil
		}
		if len(queue) > 0 {
			blockers, err := r.gate(ctx)
			if err != nil {
				return err
			}
			switch {
			case len(blockers) > 0:
				r.p.Held++
				r.p.HeldBy = blockers[0].String()
				if heldSince.IsZero() {
					heldSince = time.Now()
					r.log.Warn().Str("blocker", r.p.HeldBy).Msg("rebalance: availability gate holds new moves")
				}
				if time.Since(heldSince) > r.in.GateHold {
					return temporal.NewNonRetryableApplicationError(fmt.Sprintf("cluster %s: the availability gate held new moves for %s: %s (%d moved, %d under way, %d left)",
						spec.ID, r.in.GateHold, r.p.HeldBy, r.p.Moved, len(r.flying), len(queue)), ErrTypeGateHeld, nil)
				}
			default:
				heldSince, r.p.HeldBy = time.Time{}, ""
				if queue, err = r.submit(ctx, queue); err != nil {
					return err
				}
			}
		}
		activity.RecordHeartbeat(ctx, r.p)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(r.in.PollInterval):
		}
	}
}

// landed counts the moves that are no longer under way as done, and takes
// their replicas off the throttle lists.
func (r *rebalance) landed(ctx context.Context, ongoing []kafka.Reassigning) error {
	still := map[string]bool{}
	for _, o := range ongoing {
		still[key(o.Topic, o.Partition)] = true
	}
	changed := map[string]bool{}
	for k, m := range r.flying {
		if still[k] {
			continue
		}
		delete(r.flying, k)
		changed[m.Topic] = true
		r.p.Moved++
		r.p.Copies += len(m.Adding())
		r.p.Bytes += r.sizes[m.Topic][m.Partition] * int64(len(m.Adding()))
	}
	return r.throttle(ctx, changed)
}

// throttle sets the throttled replica lists of topics to the moves under
// way (cleared for a topic with none).
func (r *rebalance) throttle(ctx context.Context, topics map[string]bool) error {
	if len(topics) == 0 {
		return nil
	}
	var moves []fleet.Move
	for _, m := range r.flying {
		if topics[m.Topic] {
			moves = append(moves, m)
		}
	}
	slices.SortFunc(moves, func(x, y fleet.Move) int {
		return strings.Compare(key(x.Topic, x.Partition), key(y.Topic, y.Partition))
	})
	var idle []string
	for t := range topics {
		if !slices.ContainsFunc(moves, func(m fleet.Move) bool { return m.Topic == t }) {
			idle = append(idle, t)
		}
	}
	if err := r.a.Reassigner.ThrottleReplicas(ctx, r.in.Spec, moves); err != nil {
		return err
	}
	return r.a.Reassigner.ClearThrottles(ctx, r.in.Spec, nil, idle)
}

// gate is the availability gate for new moves: every broker of the spec
// registered, no partition offline or under min.insync.replicas.
func (r *rebalance) gate(ctx context.Context) ([]fleet.Blocker, error) {
	snap, err := r.a.snapshot(ctx, r.in.Spec)
	if err != nil {
		return nil, err
	}
	return fleet.HealthBlockers(r.in.Spec, snap), nil
}

// submit starts the next moves the limits allow (per broker, counting a
// move against every broker it adds to or removes from, and in all),
// throttling their replicas first, and returns the moves left.
func (r *rebalance) submit(ctx context.Context, queue []fleet.Move) ([]fleet.Move, error) {
	busy := map[int32]int{}
	for _, m := range r.flying {
		for _, b := range append(m.Adding(), m.Removing()...) {
			busy[b]++
		}
	}
	var next, left []fleet.Move
	for _, m := range queue {
		brokers := append(m.Adding(), m.Removing()...)
		fits := len(r.flying)+len(next) < r.in.MovesInFlight && !slices.ContainsFunc(brokers, func(b int32) bool { return busy[b] >= r.in.MovesPerBroker })
		if !fits {
			left = append(left, m)
			continue
		}
		for _, b := range brokers {
			busy[b]++
		}
		next = append(next, m)
	}
	if len(next) == 0 {
		return left, nil
	}
	topics := map[string]bool{}
	for _, m := range next {
		r.flying[key(m.Topic, m.Partition)] = m
		topics[m.Topic] = true
	}
	if err := r.throttle(ctx, topics); err != nil {
		return queue, err
	}
	if err := r.a.Reassigner.Reassign(ctx, r.in.Spec, next); err != nil {
		return queue, err
	}
	return left, nil
}

// EndRebalanceInput ends a rebalance that will not finish (aborted, or
// failed for good).
type EndRebalanceInput struct {
	Spec fleet.ClusterSpec `json:"spec"`
	// Cancel cancels the reassignments under way (each partition back to
	// its replicas before the move); otherwise they finish unthrottled.
	Cancel bool `json:"cancel,omitempty"`
}

// EndRebalance clears every replication throttle and, when asked, cancels
// the moves under way; it returns how many it cancelled. Nothing to do is
// done.
func (a *Activities) EndRebalance(ctx context.Context, in EndRebalanceInput) (int, error) {
	if a.Reassigner == nil {
		return 0, badInput(errors.New("this worker has no Kafka admin to move partitions with"))
	}
	var cancelled int
	if in.Cancel {
		ongoing, err := a.Reassigner.Reassignments(ctx, in.Spec)
		if err != nil {
			return 0, err
		}
		if err := a.Reassigner.CancelReassignments(ctx, in.Spec, ongoing); err != nil {
			return 0, err
		}
		cancelled = len(ongoing)
	}
	_, parts, err := a.Reassigner.Replication(ctx, in.Spec)
	if err != nil {
		return cancelled, err
	}
	if err := a.Reassigner.ClearThrottles(ctx, in.Spec, in.Spec.BrokerIDs(), topicsOf(parts)); err != nil {
		return cancelled, err
	}
	a.Log.Info().Str("cluster", in.Spec.ID).Int("cancelled", cancelled).Msg("rebalance ended; throttles cleared")
	return cancelled, nil
}
