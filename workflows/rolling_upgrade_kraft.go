package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// A KRaft cluster's upgrade (issue #15): its binaries roll (controllers
// first, quorum-gated, then brokers: the KRaft roll with the new
// version; KRaft has no inter.broker.protocol.version), then, once every
// node is checked to run them and to be registered, metadata.version is
// finalized at the target. A refusal ends it with the binaries rolled and
// metadata.version unchanged, saying why; a ghost node (registered, not
// in the spec, not running) that blocks the target is unregistered only
// once a human says yes.

// versionKRaftUpgrade: a KRaft spec's upgrade rolls the binaries and
// finalizes metadata.version. Asked only on a KRaft spec, so a ZooKeeper
// upgrade records the same commands as before it existed.
const versionKRaftUpgrade = "upgrade-kraft-metadata-version"

// UpgradePhaseMetadataVersion is a KRaft upgrade's second phase: the
// readiness check and the finalization of metadata.version.
const UpgradePhaseMetadataVersion = "metadata.version"

// Steps of a KRaft upgrade's second phase, as its progress shows them.
const (
	StepCheckReady   = "checking every node runs the new binaries and is registered"
	StepFinalize     = "finalizing metadata.version"
	StepApproveGhost = "waiting for approval to unregister a ghost node"
	StepUnregister   = "unregistering a ghost node"
)

// ErrTypeMetadataVersionRefused ends a KRaft upgrade whose binaries rolled
// but whose metadata.version was not finalized (refused by the cluster or
// a check, or a ghost's removal denied). Its details are the upgrade's
// RollingUpgradeResult.
const ErrTypeMetadataVersionRefused = "MetadataVersionRefused"

// maxFinalizeRounds bounds the finalize / approve / unregister rounds: a
// ghost unregistered makes the next one visible, but a cluster that
// keeps growing ghosts needs a person, not a loop.
const maxFinalizeRounds = 5

// MetadataVersionOutcome is what a KRaft upgrade did to metadata.version.
type MetadataVersionOutcome struct {
	// From and Target are level names, e.g. 3.9-IV0 and 4.0-IV3.
	From   string `json:"from"`
	Target string `json:"target"`
	// Finalized: the cluster is at Target (AlreadyDone: it was before).
	Finalized   bool `json:"finalized"`
	AlreadyDone bool `json:"alreadyDone,omitempty"`
	// Refusal says why it is not finalized.
	Refusal string `json:"refusal,omitempty"`
	// Ghosts are the ghost nodes found; Unregistered those removed with a
	// human's approval (ApprovedBy), Kept those a human chose to keep.
	Ghosts       []activities.Ghost `json:"ghosts,omitempty"`
	Unregistered []int32            `json:"unregistered,omitempty"`
	Kept         []int32            `json:"kept,omitempty"`
	ApprovedBy   []string           `json:"approvedBy,omitempty"`
}

// kraftUpgrade is RollingUpgradeWorkflow for a KRaft spec.
type kraftUpgrade struct {
	in       RollingUpgradeInput
	up       Upgrade
	res      RollingUpgradeResult
	progress UpgradeProgress
	human    humanGate
}

func rollingUpgradeKRaft(ctx workflow.Context, in RollingUpgradeInput) (RollingUpgradeResult, error) {
	u := &kraftUpgrade{in: in}
	u.res.Mode = fleet.ModeKRaft
	up, err := in.kraftUpgrade()
	if err != nil {
		return u.end(ctx, activities.ErrTypeBadInput, fmt.Sprintf("cluster %s: upgrade %s refused before anything was rolled: %v", in.Spec.ID, in.OperationID, err))
	}
	u.up, u.res.Upgrade = up, up
	u.progress = UpgradeProgress{Upgrade: up, Phases: 2}
	u.human = humanGate{cluster: in.Spec.ID, what: "upgrade", skips: true, changed: u.setDetails, page: u.page}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (UpgradeProgress, error) {
		p := u.progress
		p.Paused = u.human.paused
		return p, nil
	}); err != nil {
		return u.res, err
	}
	if err := u.human.register(ctx); err != nil {
		return u.res, err
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx,
		AttrClusterID.ValueSet(in.Spec.ID), AttrOperation.ValueSet(OpRollingUpgrade)); err != nil {
		return u.res, err
	}
	target, _ := fleet.ParseMetadataVersion(up.MetadataVersion)

	// Nothing is touched before the target is known not to be a
	// downgrade: the cluster's level is read first.
	var current int16
	qctx := quorumCheckContext(ctx, "read the finalized metadata.version")
	if err := workflow.ExecuteActivity(qctx, a.CurrentMetadataVersion, activities.QuorumInput{Spec: in.Spec}).Get(ctx, &current); err != nil {
		return u.res, fmt.Errorf("cluster %s: upgrade %s: %w", in.Spec.ID, in.OperationID, err)
	}
	from := levelName(current)
	u.res.MetadataVersion = &MetadataVersionOutcome{From: from, Target: up.MetadataVersion}
	if target.Level < current {
		u.res.MetadataVersion = nil
		return u.end(ctx, activities.ErrTypeBadInput, fmt.Sprintf(
			"cluster %s: upgrade %s refused before anything was rolled: metadata.version %s is below the cluster's %s: downgrading metadata.version is refused",
			in.Spec.ID, in.OperationID, target, from))
	}

	if err := u.rollBinaries(ctx); err != nil {
		return u.end(ctx, ErrTypeMetadataVersionRefused, fmt.Sprintf(
			"cluster %s: upgrade %s to Kafka %s: the roll of the binaries stopped (nodes may run the old release or %s; metadata.version unchanged at %s): %s",
			in.Spec.ID, in.OperationID, up.Version, up.Version, from, activityMessage(err)))
	}
	u.progress.Phase, u.progress.PhaseNumber, u.progress.RollWorkflowID = UpgradePhaseMetadataVersion, 2, ""
	if why := u.finalize(ctx); why != "" {
		u.res.MetadataVersion.Refusal = why
		u.progress.Phase = UpgradePhaseDone
		return u.end(ctx, ErrTypeMetadataVersionRefused, fmt.Sprintf(
			"cluster %s: upgrade %s: binaries rolled to Kafka %s, metadata.version NOT finalized (unchanged at %s, target %s): %s",
			in.Spec.ID, in.OperationID, up.Version, from, up.MetadataVersion, why))
	}
	u.progress.Phase, u.progress.Step = UpgradePhaseDone, ""
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s** upgraded to Kafka %s, metadata.version %s (was %s).", in.Spec.ID, up.Version, up.MetadataVersion, from))
	return u.res, nil
}

// end ends the upgrade with a non-retryable error of errType carrying the
// result as its details, so the entity reports what was done (the
// binaries rolled, metadata.version left as it was) and why.
func (u *kraftUpgrade) end(ctx workflow.Context, errType, msg string) (RollingUpgradeResult, error) {
	workflow.SetCurrentDetails(ctx, "**"+u.in.Spec.ID+"** "+msg)
	workflow.GetLogger(ctx).Warn("KRaft upgrade ended", "Cluster", u.in.Spec.ID, "Reason", msg)
	return u.res, temporal.NewNonRetryableApplicationError(msg, errType, nil, u.res)
}

// rollBinaries runs the KRaft roll (controllers first, then brokers) with
// the new version as the upgrade's first phase.
func (u *kraftUpgrade) rollBinaries(ctx workflow.Context) error {
	// The roll's ID derives from the operation's, as the entity names the
	// upgrade (not from the run's own, which a replay renames).
	self := OperationWorkflowID(u.in.Spec.ID, upgradeSlug, u.in.OperationID)
	u.progress.Phase, u.progress.PhaseNumber = UpgradePhaseBinaries, 1
	u.progress.RollWorkflowID = UpgradePhaseWorkflowID(self, UpgradePhaseBinaries)
	u.setDetails(ctx)
	what := fmt.Sprintf("new binaries (Kafka %s), controllers first", u.up.Version)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: u.progress.RollWorkflowID,
		StaticSummary: fmt.Sprintf("Upgrade of **%s** to Kafka %s, phase 1/2: %s, requested by %s",
			u.in.Spec.ID, u.up.Version, what, u.in.RequestedBy),
		TypedSearchAttributes: temporal.NewSearchAttributes(AttrClusterID.ValueSet(u.in.Spec.ID), AttrOperation.ValueSet(OpRollingUpgrade)),
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
	})
	roll := RollingRestartInput{
		Spec:        u.in.Spec,
		OperationID: u.in.OperationID + "/" + UpgradePhaseBinaries,
		RequestedBy: u.in.RequestedBy,
		Version:     u.up.Version,
	}
	return workflow.ExecuteChildWorkflow(cctx, RollingRestartWorkflow, roll).Get(ctx, &u.res.Binaries)
}

// finalize checks every node, then finalizes metadata.version, asking a
// human about each ghost that blocks it. It returns why metadata.version
// was not finalized, "" once it is.
func (u *kraftUpgrade) finalize(ctx workflow.Context) string {
	mv := u.res.MetadataVersion
	u.progress.Step = StepCheckReady
	u.setDetails(ctx)
	var ready activities.ReadyVerdict
	rin := activities.ReadyInput{Spec: u.in.Spec, Target: u.up.MetadataVersion, Timeout: 5 * time.Minute}
	// A few attempts: a cluster that cannot be read ends the upgrade
	// with the reason rather than retrying without end.
	rctx := waitContext(ctx, 2*rin.Timeout+time.Minute, "check every node runs the new binaries and is registered", 5)
	if err := workflow.ExecuteActivity(rctx, a.WaitUpgradeReady, rin).Get(ctx, &ready); err != nil {
		return "the readiness check failed: " + activityMessage(err)
	}
	if !ready.Ready {
		return "not every node runs the new binaries and is registered: " + ready.Reason
	}
	fin := activities.FinalizeInput{Spec: u.in.Spec, Target: u.up.MetadataVersion}
	for round := 0; round < maxFinalizeRounds; round++ {
		u.progress.Step = StepFinalize
		u.setDetails(ctx)
		var fr activities.FinalizeResult
		if err := workflow.ExecuteActivity(quorumCheckContext(ctx, "finalize metadata.version "+u.up.MetadataVersion), a.FinalizeMetadataVersion, fin).Get(ctx, &fr); err != nil {
			return "the finalization failed: " + activityMessage(err)
		}
		if len(fr.Refusals) == 0 {
			mv.Finalized, mv.AlreadyDone = true, fr.AlreadyDone
			return ""
		}
		refusal := strings.Join(fr.Refusals, "; ")
		if len(fr.Ghosts) == 0 || len(fr.Ghosts) < len(fr.Refusals) {
			// Something other than a ghost blocks it (a node of the spec
			// on old binaries, a controller): no human can say yes to that.
			return "refused: " + refusal
		}
		for _, id := range fr.Ghosts {
			if why := u.settleGhost(ctx, id, refusal); why != "" {
				return why
			}
		}
	}
	return fmt.Sprintf("still refused after %d rounds of unregistering ghosts", maxFinalizeRounds)
}

// settleGhost describes ghost id, asks a human whether to unregister it
// and, on a yes, unregisters it (the activity checks again that it still
// is a ghost). It returns why the upgrade must stop, "" to go on.
func (u *kraftUpgrade) settleGhost(ctx workflow.Context, id int32, refusal string) string {
	mv := u.res.MetadataVersion
	gin := activities.GhostInput{Spec: u.in.Spec, Node: id, Target: u.up.MetadataVersion}
	var g activities.Ghost
	if err := workflow.ExecuteActivity(quorumCheckContext(ctx, fmt.Sprintf("describe ghost node %d", id)), a.DescribeGhost, gin).Get(ctx, &g); err != nil {
		return fmt.Sprintf("ghost node %d could not be read: %s", id, activityMessage(err))
	}
	mv.Ghosts = append(slices.DeleteFunc(mv.Ghosts, func(o activities.Ghost) bool { return o.Node == id }), g)
	switch {
	case !g.Registered:
		return "" // gone meanwhile: the next round tries again
	case !g.Fenced:
		return fmt.Sprintf("refused: node %d is registered outside the spec but not fenced (something runs as it): it is not a ghost kfleet may remove; %s", id, refusal)
	}
	last := g.LastVersion
	if last == "" {
		last = "unknown"
	}
	u.progress.Step = StepApproveGhost
	d, err := u.human.ask(ctx, Pause{Broker: id, Step: StepApproveGhost, CanSkip: true, Reason: fmt.Sprintf(
		"ghost broker %d (registered, fenced, not in the spec; last known Kafka %s) blocks metadata.version %s: %s. "+
			"Approve (resume) unregisters it and finalizes; skip or abort keeps it, and the upgrade ends with the binaries rolled and metadata.version unchanged",
		id, last, u.up.MetadataVersion, g.Why)})
	var appErr *temporal.ApplicationError
	switch {
	case errors.As(err, &appErr) && appErr.Type() == ErrTypeAbortedByHuman:
		mv.Kept = append(mv.Kept, id)
		return fmt.Sprintf("a human declined to unregister ghost broker %d: %s", id, appErr.Message())
	case err != nil:
		return fmt.Sprintf("waiting for approval to unregister ghost broker %d: %v", id, err)
	case d.Action == DecisionSkip:
		mv.Kept = append(mv.Kept, id)
		return fmt.Sprintf("%s declined to unregister ghost broker %d (%s), which blocks it: %s", d.By, id, d.Reason, g.Why)
	}
	mv.ApprovedBy = append(mv.ApprovedBy, d.By)
	u.progress.Step = StepUnregister
	u.setDetails(ctx)
	if err := workflow.ExecuteActivity(quorumCheckContext(ctx, fmt.Sprintf("unregister ghost node %d (approved by %s)", id, d.By)), a.UnregisterGhost, gin).Get(ctx, &g); err != nil {
		return fmt.Sprintf("ghost broker %d was not unregistered: %s", id, activityMessage(err))
	}
	mv.Unregistered = append(mv.Unregistered, id)
	workflow.GetLogger(ctx).Info("ghost unregistered", "Cluster", u.in.Spec.ID, "Node", id, "ApprovedBy", d.By)
	return ""
}

func (u *kraftUpgrade) setDetails(ctx workflow.Context) {
	p := u.progress
	s := fmt.Sprintf("**%s** upgrade `%s` to Kafka %s, metadata.version %s, phase %d/%d (%s)",
		u.in.Spec.ID, u.in.OperationID, u.up.Version, u.up.MetadataVersion, p.PhaseNumber, p.Phases, p.Phase)
	if p.RollWorkflowID != "" {
		s += fmt.Sprintf(".\n\nNodes, gates and decisions: roll `%s`.", p.RollWorkflowID)
	}
	if p.Step != "" {
		s += ": " + p.Step
	}
	if g := u.human.paused; g != nil {
		s += fmt.Sprintf(".\n\n**Paused** at %s: %s", g.node(), g.Reason)
	}
	workflow.SetCurrentDetails(ctx, s)
}

// page tells the humans on call that the upgrade waits for them.
func (u *kraftUpgrade) page(ctx workflow.Context, p Pause) {
	notifyHumans(ctx, activities.Notification{Cluster: u.in.Spec.ID, Broker: p.Broker, Severity: activities.SeverityPage,
		Title: fmt.Sprintf("Upgrade of %s waits for approval to unregister ghost broker %d", u.in.Spec.ID, p.Broker),
		Text: fmt.Sprintf("%s. `starter approve --cluster %s` (unregister it) or `starter skip --cluster %s` (keep it).",
			p.Reason, u.in.Spec.ID, u.in.Spec.ID),
		Operation: workflow.GetInfo(ctx).WorkflowExecution.ID})
}

// kraftUpgrade validates a KRaft upgrade's input and resolves its target
// metadata.version.
func (in RollingUpgradeInput) kraftUpgrade() (Upgrade, error) {
	if err := in.Spec.Validate(); err != nil {
		return Upgrade{}, err
	}
	if in.FromIBP != "" || in.TargetIBP != "" {
		return Upgrade{}, errors.New("a KRaft cluster has no inter.broker.protocol.version to pin or bump: give metadataVersion instead")
	}
	return UpgradeParams{Version: in.Version, MetadataVersion: in.MetadataVersion}.resolveKRaft()
}

// resolveKRaft validates a KRaft upgrade's version and target
// metadata.version (default: the highest level the new release
// supports, from fleet.MetadataVersions).
func (r UpgradeParams) resolveKRaft() (Upgrade, error) {
	v, err := fleet.ParseKafkaVersion(r.Version)
	if err != nil {
		return Upgrade{}, err
	}
	table := fleet.MetadataVersions()
	supported := slices.DeleteFunc(table, func(m fleet.MetadataVersion) bool { return m.Release.After(v) })
	if len(supported) == 0 {
		return Upgrade{}, fmt.Errorf("version %s: Kafka %s predates KRaft's production metadata.version levels (3.3-IV3 and later)", v, v)
	}
	target := supported[len(supported)-1]
	if r.MetadataVersion != "" {
		if target, err = fleet.ParseMetadataVersion(r.MetadataVersion); err != nil {
			return Upgrade{}, fmt.Errorf("target %w", err)
		}
		if target.Release.After(v) {
			return Upgrade{}, fmt.Errorf("metadata.version %s needs Kafka %d.%d or later: Kafka %s supports up to %s",
				target.Name, target.Release.Major, target.Release.Minor, v, supported[len(supported)-1].Name)
		}
	}
	return Upgrade{Version: v.String(), MetadataVersion: target.Name}, nil
}

// levelName names a metadata.version level: 3.9-IV0, or "level N".
func levelName(level int16) string {
	if m, ok := fleet.MetadataVersionAt(level); ok {
		return m.Name
	}
	return fmt.Sprintf("level %d", level)
}
