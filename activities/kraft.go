package activities

import (
	"context"
	"errors"
	"fmt"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/kafka"
)

// KRaftAdmin is a KRaft cluster's quorum and features through the Kafka
// protocol (*kafka.Pool).
type KRaftAdmin interface {
	DescribeQuorum(ctx context.Context, spec fleet.ClusterSpec) (fleet.Quorum, error)
	// MetadataVersionSupport returns the finalized metadata.version and
	// each registered broker's support, InSpec set from spec.
	MetadataVersionSupport(ctx context.Context, spec fleet.ClusterSpec) (current int16, nodes []fleet.NodeSupport, err error)
	// UpdateMetadataVersion returns a *kafka.FeatureRefusedError when the
	// cluster refuses the level.
	UpdateMetadataVersion(ctx context.Context, spec fleet.ClusterSpec, level int16, validateOnly bool) error
}

// QuorumInput names a cluster, and for a gate the node to restart.
type QuorumInput struct {
	Spec fleet.ClusterSpec `json:"spec"`
	Node int32             `json:"node,omitempty"`
}

// kraftSpec refuses, as bad input, a spec that is invalid or has no quorum
// yet: a ZooKeeper cluster, or a migration before its controllers exist.
func (a *Activities) kraftSpec(spec fleet.ClusterSpec) error {
	if err := spec.Validate(); err != nil {
		return badInput(err)
	}
	if a.KRaft == nil {
		return badInput(fmt.Errorf("cluster %s: this worker has no KRaft client", spec.ID))
	}
	mode := spec.Mode()
	if mode == fleet.ModeZooKeeper || mode == fleet.ModeMigrating && spec.KRaft.Phase < fleet.PhaseControllers {
		return badInput(fmt.Errorf("cluster %s: %w: a %s cluster has no KRaft quorum yet", spec.ID, fleet.ErrRefused, mode))
	}
	return nil
}

// DescribeQuorum returns the cluster's metadata quorum as its leader sees
// it now.
func (a *Activities) DescribeQuorum(ctx context.Context, in QuorumInput) (fleet.Quorum, error) {
	if err := a.kraftSpec(in.Spec); err != nil {
		return fleet.Quorum{}, err
	}
	return a.KRaft.DescribeQuorum(ctx, in.Spec)
}

// CheckQuorumGate reads the quorum afresh and returns the gate's verdict on
// restarting in.Node: counts and a reason, not the quorum itself, so
// workflow history stays small however often a roll re-checks it.
func (a *Activities) CheckQuorumGate(ctx context.Context, in QuorumInput) (fleet.QuorumVerdict, error) {
	if err := a.kraftSpec(in.Spec); err != nil {
		return fleet.QuorumVerdict{}, err
	}
	q, err := a.KRaft.DescribeQuorum(ctx, in.Spec)
	if err != nil {
		return fleet.QuorumVerdict{}, err
	}
	v := fleet.JudgeQuorumWithout(q, in.Node, fleet.QuorumFetchTimeout)
	a.Log.Info().Str("cluster", in.Spec.ID).Int32("node", in.Node).Bool("safe", v.Safe).
		Int("caughtUp", v.CaughtUp).Int("voters", v.Voters).Msg("quorum gate checked")
	return v, nil
}

// FinalizeInput asks for metadata.version to be finalized at Target (a
// name like 3.9-IV0, or a release like 3.9).
type FinalizeInput struct {
	Spec   fleet.ClusterSpec `json:"spec"`
	Target string            `json:"target"`
}

// FinalizeResult is what FinalizeMetadataVersion did. Refusals (with the
// ghosts among them) mean it changed nothing: the workflow reports them, or
// asks a human to approve unregistering the ghosts, and tries again.
type FinalizeResult struct {
	From int16 `json:"from"`
	To   int16 `json:"to"`
	// AlreadyDone: the cluster was at the target; nothing was sent.
	AlreadyDone bool     `json:"alreadyDone,omitempty"`
	Refusals    []string `json:"refusals,omitempty"`
	Ghosts      []int32  `json:"ghosts,omitempty"`
}

// FinalizeMetadataVersion moves metadata.version up to the target once
// every registered node supports it. It checks before it acts: at the
// target already is done (a retry after the update landed is harmless); a
// node that does not support the target, a ghost, or a downgrade is a
// refusal returned in the result, without sending anything; a refusal from
// the controllers (e.g. a controller on old binaries, which brokers cannot
// be asked about) comes back the same way, with the controller's message.
func (a *Activities) FinalizeMetadataVersion(ctx context.Context, in FinalizeInput) (FinalizeResult, error) {
	if err := a.kraftSpec(in.Spec); err != nil {
		return FinalizeResult{}, err
	}
	target, err := fleet.ParseMetadataVersion(in.Target)
	if err != nil {
		return FinalizeResult{}, badInput(fmt.Errorf("cluster %s: %w", in.Spec.ID, err))
	}
	if in.Spec.Mode() == fleet.ModeMigrating {
		_, reason := fleet.AllowedInPhase(fleet.ImpactMetadataVersion, in.Spec.KRaft.Phase)
		return FinalizeResult{To: target.Level}, badInput(fmt.Errorf("cluster %s: %w: %s", in.Spec.ID, fleet.ErrRefused, reason))
	}
	current, nodes, err := a.KRaft.MetadataVersionSupport(ctx, in.Spec)
	if err != nil {
		return FinalizeResult{}, err
	}
	v := fleet.CheckFinalize(current, target, nodes)
	res := FinalizeResult{From: current, To: target.Level, AlreadyDone: v.Done, Refusals: v.Refusals, Ghosts: v.Ghosts}
	if !v.OK() {
		a.Log.Info().Str("cluster", in.Spec.ID).Int16("from", current).Int16("to", target.Level).Bool("done", v.Done).
			Strs("refusals", v.Refusals).Msg("metadata.version not updated")
		return res, nil
	}
	err = a.KRaft.UpdateMetadataVersion(ctx, in.Spec, target.Level, false)
	var refused *kafka.FeatureRefusedError
	if errors.As(err, &refused) {
		res.Refusals = append(res.Refusals, refused.Error())
		a.Log.Info().Str("cluster", in.Spec.ID).Int16("to", target.Level).Str("message", refused.Message).Msg("metadata.version refused by the cluster")
		return res, nil
	}
	if err != nil {
		return FinalizeResult{}, err
	}
	a.Log.Info().Str("cluster", in.Spec.ID).Int16("from", current).Int16("to", target.Level).Msg("metadata.version finalized")
	return res, nil
}

// CurrentMetadataVersion returns the cluster's finalized metadata.version
// level, as its brokers report it: an upgrade refuses a target below it
// before anything is rolled.
func (a *Activities) CurrentMetadataVersion(ctx context.Context, in QuorumInput) (int16, error) {
	if err := a.kraftSpec(in.Spec); err != nil {
		return 0, err
	}
	current, _, err := a.KRaft.MetadataVersionSupport(ctx, in.Spec)
	if err != nil {
		return 0, fmt.Errorf("cluster %s: metadata.version: %w", in.Spec.ID, err)
	}
	if current == 0 {
		return 0, fmt.Errorf("cluster %s: metadata.version: no broker reported the finalized level", in.Spec.ID)
	}
	return current, nil
}
