package workflows

import (
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// Phases of a rolling upgrade of a ZooKeeper-mode cluster (OPERATIONS.md):
// first every broker moves to the new binaries with
// inter.broker.protocol.version pinned to the old protocol, so old and new
// brokers keep speaking one protocol while the cluster is mixed; then a
// second roll bumps the protocol once every broker runs the new binaries.
const (
	UpgradePhaseBinaries = "binaries"
	UpgradePhaseProtocol = "protocol"
	UpgradePhaseDone     = "done"
)

// UpgradeParams are a rolling upgrade's parameters, as requested.
type UpgradeParams struct {
	// Version is the Kafka version to run, e.g. "3.7.1".
	Version string `json:"version"`
	// FromIBP is the inter.broker.protocol.version the cluster runs with
	// now, pinned during the first roll, e.g. "3.6". Empty: the protocol
	// level the entity knows (ClusterState.Protocol).
	FromIBP string `json:"fromIbp,omitempty"`
	// TargetIBP is the protocol the second roll sets; empty: the
	// major.minor of Version.
	TargetIBP string `json:"targetIbp,omitempty"`
	// MetadataVersion is a KRaft cluster's target metadata.version, e.g.
	// 4.0-IV3 (or a release, 4.0, for its latest level); empty: the
	// highest level Version supports. ZooKeeper mode has none.
	MetadataVersion string `json:"metadataVersion,omitempty"`
}

// Upgrade is an admitted upgrade with every version resolved. A KRaft
// cluster's has Version and MetadataVersion, no protocol.
type Upgrade struct {
	Version         string `json:"version"`
	FromIBP         string `json:"fromIbp"`
	TargetIBP       string `json:"targetIbp"`
	MetadataVersion string `json:"metadataVersion,omitempty"`
}

// RollingUpgradeInput asks for a rolling upgrade of a cluster.
type RollingUpgradeInput struct {
	Spec        fleet.ClusterSpec `json:"spec"`
	OperationID string            `json:"operationId"`
	RequestedBy string            `json:"requestedBy"`
	Version     string            `json:"version"`
	FromIBP     string            `json:"fromIbp"`
	// TargetIBP defaults to the major.minor of Version.
	TargetIBP string `json:"targetIbp,omitempty"`
	// MetadataVersion is a KRaft upgrade's target metadata.version
	// (UpgradeParams.MetadataVersion).
	MetadataVersion string `json:"metadataVersion,omitempty"`
}

// RollingUpgradeResult is what both rolls did.
type RollingUpgradeResult struct {
	Upgrade  Upgrade              `json:"upgrade"`
	Binaries RollingRestartResult `json:"binaries"`
	// Protocol is nil when the protocol already was the target (a patch
	// upgrade needs a single roll).
	Protocol *RollingRestartResult `json:"protocol,omitempty"`
	// Mode is fleet.ModeKRaft for a KRaft cluster's upgrade (binaries,
	// then metadata.version: rolling_upgrade_kraft.go); empty for
	// ZooKeeper mode.
	Mode fleet.ClusterMode `json:"mode,omitempty"`
	// MetadataVersion is what a KRaft upgrade did to metadata.version.
	MetadataVersion *MetadataVersionOutcome `json:"metadataVersion,omitempty"`
}

// UpgradeProgress is what the progress query of an upgrade answers. The
// running phase's roll answers its own progress query (which broker, which
// step) and takes the human decisions (decide update).
type UpgradeProgress struct {
	Upgrade Upgrade `json:"upgrade"`
	// Phase is UpgradePhaseBinaries, UpgradePhaseProtocol or
	// UpgradePhaseDone; PhaseNumber counts from 1 up to Phases.
	Phase       string `json:"phase"`
	PhaseNumber int    `json:"phaseNumber"`
	Phases      int    `json:"phases"`
	// RollWorkflowID is the running phase's rolling restart.
	RollWorkflowID string `json:"rollWorkflowId,omitempty"`
	// Step and Paused are a KRaft upgrade's own (its metadata.version
	// phase): what it does, and the approval it waits for.
	Step   string `json:"step,omitempty"`
	Paused *Pause `json:"paused,omitempty"`
}

// RollingUpgradeWorkflow upgrades a cluster. A KRaft cluster's upgrade
// rolls its binaries and then finalizes metadata.version
// (rolling_upgrade_kraft.go). A ZooKeeper-mode cluster's takes two rolling
// restarts, each a RollingRestartWorkflow child with every gate of a roll:
//
//  1. binaries: each broker starts on Version with
//     inter.broker.protocol.version pinned to FromIBP;
//  2. protocol: each broker restarts with the protocol bumped to TargetIBP
//     (skipped when FromIBP already is TargetIBP).
//
// Versions are checked before anything is touched; a bad one fails the
// workflow with a non-retryable error. A phase that fails ends the upgrade
// there: the protocol is never bumped on a cluster whose binaries were not
// all upgraded. The children's IDs derive from the upgrade's, and children
// are recorded in history, so a worker crash resumes the running phase and
// never starts a finished one again.
func RollingUpgradeWorkflow(ctx workflow.Context, in RollingUpgradeInput) (RollingUpgradeResult, error) {
	if in.Spec.Mode() == fleet.ModeKRaft && workflow.GetVersion(ctx, versionKRaftUpgrade, workflow.DefaultVersion, 1) >= 1 {
		return rollingUpgradeKRaft(ctx, in)
	}
	up, err := in.upgrade()
	if err != nil {
		return RollingUpgradeResult{}, temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("cluster %s: upgrade %s: %v", in.Spec.ID, in.OperationID, err), activities.ErrTypeBadInput, err)
	}
	res := RollingUpgradeResult{Upgrade: up}
	phases := up.phases()
	progress := UpgradeProgress{Upgrade: up, Phases: len(phases)}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (UpgradeProgress, error) { return progress, nil }); err != nil {
		return res, err
	}
	// Whoever started it, the upgrade is found by its attributes.
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		AttrClusterID.ValueSet(in.Spec.ID), AttrOperation.ValueSet(OpRollingUpgrade)); err != nil {
		return res, err
	}
	self := workflow.GetInfo(ctx).WorkflowExecution.ID
	for i, ph := range phases {
		progress.Phase, progress.PhaseNumber = ph.name, i+1
		progress.RollWorkflowID = UpgradePhaseWorkflowID(self, ph.name)
		what := ph.describe(up)
		workflow.SetCurrentDetails(ctx, fmt.Sprintf(
			"**%s** upgrade `%s` to Kafka %s, phase %d/%d: %s.\n\nBrokers, gates and decisions: roll `%s`.",
			in.Spec.ID, in.OperationID, up.Version, i+1, len(phases), what, progress.RollWorkflowID))
		workflow.GetLogger(ctx).Info("upgrade phase", "Cluster", in.Spec.ID, "Phase", ph.name, "Version", up.Version, "IBP", ph.ibp)

		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID: progress.RollWorkflowID,
			StaticSummary: fmt.Sprintf("Upgrade of **%s** to Kafka %s, phase %d/%d: %s, requested by %s",
				in.Spec.ID, up.Version, i+1, len(phases), what, in.RequestedBy),
			TypedSearchAttributes: temporal.NewSearchAttributes(
				AttrClusterID.ValueSet(in.Spec.ID),
				AttrOperation.ValueSet(OpRollingUpgrade),
			),
			// As the entity does for its children: a terminated upgrade
			// must not leave a roll half-done.
			ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
		})
		roll := RollingRestartInput{
			Spec:                       in.Spec,
			OperationID:                in.OperationID + "/" + ph.name,
			RequestedBy:                in.RequestedBy,
			Version:                    up.Version,
			InterBrokerProtocolVersion: ph.ibp,
		}
		var rr RollingRestartResult
		if err := workflow.ExecuteChildWorkflow(cctx, RollingRestartWorkflow, roll).Get(ctx, &rr); err != nil {
			workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s** upgrade `%s` to Kafka %s **stopped** in phase %d/%d (%s): %v",
				in.Spec.ID, in.OperationID, up.Version, i+1, len(phases), what, err))
			return res, fmt.Errorf("cluster %s: upgrade %s to %s: phase %d/%d (%s): %w", in.Spec.ID, in.OperationID, up.Version, i+1, len(phases), ph.name, err)
		}
		if ph.name == UpgradePhaseBinaries {
			res.Binaries = rr
		} else {
			res.Protocol = &rr
		}
	}
	progress.Phase, progress.RollWorkflowID = UpgradePhaseDone, ""
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s** upgraded to Kafka %s, inter.broker.protocol.version %s.", in.Spec.ID, up.Version, up.TargetIBP))
	return res, nil
}

// upgradePhase is one roll of an upgrade.
type upgradePhase struct {
	name string
	ibp  string // the inter.broker.protocol.version brokers start with
}

func (u Upgrade) phases() []upgradePhase {
	ph := []upgradePhase{{UpgradePhaseBinaries, u.FromIBP}}
	if mustIBP(u.FromIBP) != mustIBP(u.TargetIBP) {
		ph = append(ph, upgradePhase{UpgradePhaseProtocol, u.TargetIBP})
	}
	return ph
}

func (p upgradePhase) describe(u Upgrade) string {
	if p.name == UpgradePhaseBinaries {
		return fmt.Sprintf("new binaries, inter.broker.protocol.version pinned to %s", p.ibp)
	}
	return fmt.Sprintf("inter.broker.protocol.version %s -> %s", u.FromIBP, p.ibp)
}

// upgrade validates the input and resolves the target protocol.
func (in RollingUpgradeInput) upgrade() (Upgrade, error) {
	if err := in.Spec.Validate(); err != nil {
		return Upgrade{}, err
	}
	if in.FromIBP == "" {
		return Upgrade{}, errors.New("fromIbp is required: the inter.broker.protocol.version to pin while the binaries roll")
	}
	if in.MetadataVersion != "" {
		return Upgrade{}, errors.New("metadata.version is a KRaft feature: a ZooKeeper cluster has none (migrate it to KRaft first)")
	}
	return UpgradeParams{Version: in.Version, FromIBP: in.FromIBP, TargetIBP: in.TargetIBP}.resolve(in.FromIBP)
}

// resolve validates the upgrade with from as the current protocol (when
// not empty) and fills in the defaults.
func (r UpgradeParams) resolve(from string) (Upgrade, error) {
	v, err := fleet.ParseKafkaVersion(r.Version)
	if err != nil {
		return Upgrade{}, err
	}
	if err := v.ZooKeeperMode(); err != nil {
		return Upgrade{}, err
	}
	target := v.Protocol()
	if r.TargetIBP != "" {
		if target, err = fleet.ParseProtocolVersion(r.TargetIBP); err != nil {
			return Upgrade{}, fmt.Errorf("target %w", err)
		}
		if !v.Speaks(target) {
			return Upgrade{}, fmt.Errorf("target inter.broker.protocol.version %s is newer than Kafka %s speaks", target, v)
		}
	}
	up := Upgrade{Version: v.String(), FromIBP: from, TargetIBP: target.String()}
	if from == "" {
		return up, nil
	}
	f, err := fleet.ParseProtocolVersion(from)
	if err != nil {
		return Upgrade{}, fmt.Errorf("current %w", err)
	}
	if f.After(target) {
		return Upgrade{}, fmt.Errorf("inter.broker.protocol.version %s -> %s is a downgrade: a bumped protocol cannot be rolled back", from, up.TargetIBP)
	}
	up.FromIBP = f.String()
	return up, nil
}

// mustIBP parses a protocol already validated.
func mustIBP(s string) fleet.ProtocolVersion {
	p, _ := fleet.ParseProtocolVersion(s)
	return p
}
