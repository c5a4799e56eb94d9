package activities

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/kafka"
)

// A KRaft upgrade's checks around metadata.version (issue #15): before it
// finalizes, every node must run the new binaries and be registered
// (WaitUpgradeReady); a ghost blocking the finalization is described for
// the human asked to approve its removal (DescribeGhost) and unregistered
// only after a yes, and only while it still is a ghost (UnregisterGhost).

// BrokerUnregisterer removes a node's registration from a KRaft cluster
// (UnregisterBroker; *kafka.Pool). The worker's KRaft client is asked
// for it: a client without it cannot remove ghosts.
type BrokerUnregisterer interface {
	UnregisterBroker(ctx context.Context, spec fleet.ClusterSpec, node int32) error
}

// ReadyInput asks whether a KRaft cluster is ready for metadata.version
// Target after its binaries rolled.
type ReadyInput struct {
	Spec   fleet.ClusterSpec `json:"spec"`
	Target string            `json:"target"`
	// Timeout bounds the wait (default 5 min); PollInterval paces it
	// (default: the spec's fencing poll).
	Timeout      time.Duration `json:"timeout,omitempty"`
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

// ReadyVerdict is whether every node reports the new binaries and is
// registered: counts and the first reasons, not the nodes' states.
type ReadyVerdict struct {
	Ready bool `json:"ready"`
	// Reason says what is missing (when not ready) or what was checked.
	Reason      string `json:"reason"`
	Brokers     int    `json:"brokers"`     // spec brokers registered, unfenced, supporting the target
	Controllers int    `json:"controllers"` // spec controllers voting and caught up
	Polls       int    `json:"polls"`
}

// WaitUpgradeReady polls until every broker of the spec is registered,
// unfenced and reports (ApiVersions) binaries that support the target
// metadata.version, and every controller of the spec is a caught-up voter
// of a quorum with a leader; the controllers' own support is then checked
// by the active controller, which validates the update (validate-only)
// unless a ghost already blocks it (the finalization asks about that).
// Not ready by the timeout is a verdict, not an error: the workflow says
// why and finalizes nothing.
func (a *Activities) WaitUpgradeReady(ctx context.Context, in ReadyInput) (ReadyVerdict, error) {
	if err := a.kraftSpec(in.Spec); err != nil {
		return ReadyVerdict{}, err
	}
	if a.Fencing == nil {
		return ReadyVerdict{}, badInput(fmt.Errorf("cluster %s: this worker has no fencing client", in.Spec.ID))
	}
	target, err := fleet.ParseMetadataVersion(in.Target)
	if err != nil {
		return ReadyVerdict{}, badInput(fmt.Errorf("cluster %s: %w", in.Spec.ID, err))
	}
	timeout, poll := in.Timeout, in.PollInterval
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	if poll <= 0 {
		poll = in.Spec.Health.WithDefaults().FencingPoll
	}
	deadline := time.Now().Add(timeout)
	var v ReadyVerdict
	failures := 0
	for polls := 1; ; polls++ {
		v, err = a.upgradeReady(ctx, in.Spec, target)
		v.Polls = polls
		activity.RecordHeartbeat(ctx, v)
		switch {
		case err != nil:
			// A read that met a node still starting: tried again, a few
			// times in a row at most.
			if failures++; failures >= maxFencingFailures {
				return v, err
			}
		case v.Ready:
			return v, nil
		default:
			failures = 0
		}
		if time.Now().After(deadline) {
			if err != nil {
				return v, err
			}
			v.Reason = fmt.Sprintf("not ready after %s: %s", timeout, v.Reason)
			return v, nil
		}
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// upgradeReady is one look at the cluster for WaitUpgradeReady.
func (a *Activities) upgradeReady(ctx context.Context, spec fleet.ClusterSpec, target fleet.MetadataVersion) (ReadyVerdict, error) {
	var v ReadyVerdict
	fencing, err := a.Fencing.BrokerFencing(ctx, spec)
	if err != nil {
		return v, err
	}
	current, nodes, err := a.KRaft.MetadataVersionSupport(ctx, spec)
	if err != nil {
		return v, err
	}
	var missing []string
	for _, id := range spec.BrokerIDs() {
		f := slices.IndexFunc(fencing, func(b fleet.BrokerFencing) bool { return b.ID == id })
		n := slices.IndexFunc(nodes, func(s fleet.NodeSupport) bool { return s.ID == id })
		switch {
		case f < 0:
			missing = append(missing, fmt.Sprintf("broker %d is not registered", id))
		case fencing[f].Fenced:
			missing = append(missing, fmt.Sprintf("broker %d is fenced", id))
		case n < 0 || !nodes[n].Known:
			missing = append(missing, fmt.Sprintf("broker %d did not report its supported metadata.version", id))
		case nodes[n].MaxLevel < target.Level:
			missing = append(missing, fmt.Sprintf("broker %d supports up to level %d, not %s: it does not run the new binaries", id, nodes[n].MaxLevel, target))
		default:
			v.Brokers++
		}
	}
	q, err := a.KRaft.DescribeQuorum(ctx, spec)
	if err != nil {
		return v, err
	}
	leader, ok := q.LeaderReplica()
	for _, id := range spec.ControllerIDs() {
		i := slices.IndexFunc(q.Voters, func(r fleet.QuorumReplica) bool { return r.ID == id })
		switch {
		case !ok:
			missing = append(missing, fmt.Sprintf("the quorum has no leader (epoch %d)", q.Epoch))
		case i < 0:
			missing = append(missing, fmt.Sprintf("controller %d is not a voter", id))
		case !fleet.CaughtUp(q.Voters[i], leader, fleet.QuorumFetchTimeout):
			missing = append(missing, fmt.Sprintf("controller %d is not caught up", id))
		default:
			v.Controllers++
		}
		if !ok {
			break
		}
	}
	if len(missing) > 0 {
		v.Reason = strings.Join(missing, "; ")
		return v, nil
	}
	// The controllers cannot be asked through the brokers' listeners: the
	// active one validates the level against every controller's support.
	// A refusal naming a ghost is left to the finalization (which asks a
	// human); any other means a node is not ready.
	verdict := fleet.CheckFinalize(current, target, nodes)
	if !verdict.Done {
		err := a.KRaft.UpdateMetadataVersion(ctx, spec, target.Level, true)
		var refused *kafka.FeatureRefusedError
		switch {
		case errors.As(err, &refused) && !namesAny(refused.Message, verdict.Ghosts):
			v.Reason = "the active controller would refuse it: " + refused.Error()
			return v, nil
		case errors.As(err, &refused):
		case err != nil:
			return v, err
		}
	}
	v.Ready = true
	v.Reason = fmt.Sprintf("%d broker(s) registered and unfenced on binaries supporting %s; %d controller(s) caught-up voters", v.Brokers, target, v.Controllers)
	return v, nil
}

// namesAny reports whether a controller's message names one of the
// brokers ids ("broker 7 ").
func namesAny(msg string, ids []int32) bool {
	return slices.ContainsFunc(ids, func(id int32) bool { return strings.Contains(msg, fmt.Sprintf("broker %d ", id)) })
}

// GhostInput names a ghost (a registered node outside the spec) of a
// KRaft cluster; Target is the metadata.version it blocks.
type GhostInput struct {
	Spec   fleet.ClusterSpec `json:"spec"`
	Node   int32             `json:"node"`
	Target string            `json:"target,omitempty"`
}

// Ghost is what kfleet knows of a ghost node, for the human asked to
// approve its removal.
type Ghost struct {
	Node       int32 `json:"node"`
	Registered bool  `json:"registered"`
	Fenced     bool  `json:"fenced"`
	InSpec     bool  `json:"inSpec"`
	// LastVersion is the Kafka release it last registered with, as the
	// active controller names it ("" when it does not).
	LastVersion string `json:"lastVersion,omitempty"`
	// Why is the active controller's refusal of the target naming it
	// (validate-only), or why kfleet calls it a ghost.
	Why string `json:"why"`
}

// kafkaRelease finds "Kafka 3.9.0" in a controller's message.
var kafkaRelease = regexp.MustCompile(`Kafka (\d+\.\d+\.\d+)`)

// DescribeGhost reads a ghost's registration and fencing and asks the
// active controller (validate-only, nothing changes) why it refuses the
// target, for the words that name the node: its last release and the
// levels it supports.
func (a *Activities) DescribeGhost(ctx context.Context, in GhostInput) (Ghost, error) {
	if err := a.kraftSpec(in.Spec); err != nil {
		return Ghost{}, err
	}
	g := Ghost{Node: in.Node, InSpec: in.Spec.InSpec(in.Node)}
	if err := a.ghostState(ctx, in.Spec, &g); err != nil {
		return g, err
	}
	g.Why = fmt.Sprintf("node %d is registered but is not in the spec of cluster %s", in.Node, in.Spec.ID)
	if !g.Registered {
		g.Why = fmt.Sprintf("node %d is not registered (any more)", in.Node)
		return g, nil
	}
	target, err := fleet.ParseMetadataVersion(in.Target)
	if err != nil {
		return g, badInput(fmt.Errorf("cluster %s: %w", in.Spec.ID, err))
	}
	err = a.KRaft.UpdateMetadataVersion(ctx, in.Spec, target.Level, true)
	var refused *kafka.FeatureRefusedError
	switch {
	case errors.As(err, &refused) && namesAny(refused.Message, []int32{in.Node}):
		g.Why = refused.Message
		if m := kafkaRelease.FindStringSubmatch(refused.Message); m != nil {
			g.LastVersion = m[1]
		}
	case errors.As(err, &refused):
		g.Why += "; the controller names another node first: " + refused.Message
	case err != nil:
		return g, err
	}
	return g, nil
}

// ghostState fills g's registration and fencing from the controllers'
// view (DescribeCluster with fenced brokers).
func (a *Activities) ghostState(ctx context.Context, spec fleet.ClusterSpec, g *Ghost) error {
	if a.Fencing == nil {
		return badInput(fmt.Errorf("cluster %s: this worker has no fencing client", spec.ID))
	}
	brokers, err := a.Fencing.BrokerFencing(ctx, spec)
	if err != nil {
		return fmt.Errorf("cluster %s node %d: %w", spec.ID, g.Node, err)
	}
	if i := slices.IndexFunc(brokers, func(b fleet.BrokerFencing) bool { return b.ID == g.Node }); i >= 0 {
		g.Registered, g.Fenced = true, brokers[i].Fenced
	}
	return nil
}

// UnregisterGhost removes a ghost's registration, after a human approved
// it. It checks before it acts, on a fresh read: a node no longer
// registered is done (a retry after the removal landed); a node that is
// in the spec, or not fenced (it heartbeats: something runs behind it),
// is refused as bad input — kfleet never unregisters a live node.
func (a *Activities) UnregisterGhost(ctx context.Context, in GhostInput) (Ghost, error) {
	if err := a.kraftSpec(in.Spec); err != nil {
		return Ghost{}, err
	}
	u, ok := a.KRaft.(BrokerUnregisterer)
	if !ok {
		return Ghost{}, badInput(fmt.Errorf("cluster %s: this worker's KRaft client cannot unregister brokers", in.Spec.ID))
	}
	g := Ghost{Node: in.Node, InSpec: in.Spec.InSpec(in.Node)}
	if err := a.ghostState(ctx, in.Spec, &g); err != nil {
		return g, err
	}
	switch {
	case !g.Registered:
		g.Why = "already unregistered"
		return g, nil
	case g.InSpec:
		return g, badInput(fmt.Errorf("cluster %s node %d: %w: it is in the spec, not a ghost: kfleet unregisters only nodes outside the spec", in.Spec.ID, in.Node, fleet.ErrRefused))
	case !g.Fenced:
		return g, badInput(fmt.Errorf("cluster %s node %d: %w: it is registered and not fenced, so something still runs as it: kfleet never unregisters a live node", in.Spec.ID, in.Node, fleet.ErrRefused))
	}
	if err := u.UnregisterBroker(ctx, in.Spec, in.Node); err != nil {
		return g, fmt.Errorf("cluster %s node %d: unregister: %w", in.Spec.ID, in.Node, err)
	}
	g.Registered, g.Why = false, "unregistered"
	a.Log.Info().Str("cluster", in.Spec.ID).Int32("node", in.Node).Msg("ghost unregistered")
	return g, nil
}
