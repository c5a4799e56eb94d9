package workflows

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

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

// UpgradeRequest asks a cluster's entity for a rolling upgrade (the
// request-upgrade update).
type UpgradeRequest struct {
	RequestedBy string `json:"requestedBy"`
	// Version is the Kafka version to run, e.g. "3.7.1".
	Version string `json:"version"`
	// FromIBP is the inter.broker.protocol.version the cluster runs with
	// now, pinned during the first roll, e.g. "3.6". Empty: the protocol
	// the cluster's last upgrade through kfleet ended on.
	FromIBP string `json:"fromIbp,omitempty"`
	// TargetIBP is the protocol the second roll sets; empty: the
	// major.minor of Version.
	TargetIBP string `json:"targetIbp,omitempty"`
}

// Upgrade is an admitted upgrade with every version resolved.
type Upgrade struct {
	Version   string `json:"version"`
	FromIBP   string `json:"fromIbp"`
	TargetIBP string `json:"targetIbp"`
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
}

// RollingUpgradeResult is what both rolls did.
type RollingUpgradeResult struct {
	Upgrade  Upgrade              `json:"upgrade"`
	Binaries RollingRestartResult `json:"binaries"`
	// Protocol is nil when the protocol already was the target (a patch
	// upgrade needs a single roll).
	Protocol *RollingRestartResult `json:"protocol,omitempty"`
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
}

// RollingUpgradeWorkflow upgrades a ZooKeeper-mode cluster in two rolling
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
	return UpgradeRequest{RequestedBy: in.RequestedBy, Version: in.Version, FromIBP: in.FromIBP, TargetIBP: in.TargetIBP}.resolve(in.FromIBP)
}

// Validate checks what a request says on its own; FromIBP may be empty
// (the entity then takes the protocol the last upgrade ended on).
func (r UpgradeRequest) Validate() error {
	if r.RequestedBy == "" {
		return errors.New("requestedBy is required: say who asks for the upgrade")
	}
	_, err := r.resolve(r.FromIBP)
	return err
}

// resolve validates the request with from as the current protocol (when
// not empty) and fills in the defaults.
func (r UpgradeRequest) resolve(from string) (Upgrade, error) {
	v, err := parseKafkaVersion(r.Version)
	if err != nil {
		return Upgrade{}, err
	}
	up := Upgrade{Version: r.Version, FromIBP: from, TargetIBP: r.TargetIBP}
	if up.TargetIBP == "" {
		up.TargetIBP = fmt.Sprintf("%d.%d", v.major, v.minor)
	}
	target, err := parseIBP(up.TargetIBP)
	if err != nil {
		return Upgrade{}, fmt.Errorf("target %w", err)
	}
	if target.major > v.major || target.major == v.major && target.minor > v.minor {
		return Upgrade{}, fmt.Errorf("target inter.broker.protocol.version %s is newer than Kafka %s speaks", up.TargetIBP, up.Version)
	}
	if from == "" {
		return up, nil
	}
	f, err := parseIBP(from)
	if err != nil {
		return Upgrade{}, fmt.Errorf("current %w", err)
	}
	if f.after(target) {
		return Upgrade{}, fmt.Errorf("inter.broker.protocol.version %s -> %s is a downgrade: a bumped protocol cannot be rolled back", from, up.TargetIBP)
	}
	return up, nil
}

// kafkaVersion is a Kafka release, e.g. 3.7.1.
type kafkaVersion struct{ major, minor, patch int }

// ibp is an inter.broker.protocol.version, e.g. 3.6 or 3.6-IV2. Without
// an IV it means the release's latest, so it sorts after every IV.
type ibp struct{ major, minor, iv int }

const latestIV = 1 << 30

var (
	kafkaVersionRE = regexp.MustCompile(`^([0-9]{1,4})\.([0-9]{1,4})\.([0-9]{1,4})$`)
	ibpRE          = regexp.MustCompile(`^([0-9]{1,4})\.([0-9]{1,4})(?:-IV([0-9]{1,4}))?$`)
)

func parseKafkaVersion(s string) (kafkaVersion, error) {
	m := kafkaVersionRE.FindStringSubmatch(s)
	if m == nil {
		return kafkaVersion{}, fmt.Errorf("version %q: want a Kafka release like 3.7.1", s)
	}
	v := kafkaVersion{atoi(m[1]), atoi(m[2]), atoi(m[3])}
	if v.major >= 4 {
		return kafkaVersion{}, fmt.Errorf("version %s: Kafka 4 has no ZooKeeper mode; migrate the cluster to KRaft first", s)
	}
	return v, nil
}

func parseIBP(s string) (ibp, error) {
	m := ibpRE.FindStringSubmatch(s)
	if m == nil {
		return ibp{}, fmt.Errorf("inter.broker.protocol.version %q: want major.minor like 3.6, or 3.6-IV2", s)
	}
	p := ibp{major: atoi(m[1]), minor: atoi(m[2]), iv: latestIV}
	if m[3] != "" {
		p.iv = atoi(m[3])
	}
	return p, nil
}

// mustIBP parses a protocol already validated.
func mustIBP(s string) ibp {
	p, _ := parseIBP(s)
	return p
}

func (p ibp) after(o ibp) bool {
	if p.major != o.major {
		return p.major > o.major
	}
	if p.minor != o.minor {
		return p.minor > o.minor
	}
	return p.iv > o.iv
}

// atoi converts digits the patterns above matched (at most 4).
func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// The cluster entity's side of upgrades.

// setUpgradeHandler registers the request-upgrade update on the cluster
// entity: it admits an upgrade into st's queue, or answers with the upgrade
// to the same version already queued or running. spec and st are the
// entity's own.
func setUpgradeHandler(ctx workflow.Context, spec *fleet.ClusterSpec, st *ClusterState) error {
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateRequestUpgrade,
		func(ctx workflow.Context, req UpgradeRequest) (Operation, error) {
			up, existing, err := st.admitUpgrade(req)
			if err != nil {
				return Operation{}, err
			}
			if existing != nil {
				existing.Existing = true
				return *existing, nil
			}
			op := st.newOperation(ctx, spec.ID, OpRollingUpgrade, "upgrade", req.RequestedBy)
			op.Upgrade = &up
			st.Queue = append(st.Queue, op)
			return op, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, req UpgradeRequest) error {
			_, _, err := st.admitUpgrade(req)
			return err
		}},
	)
}

// admitUpgrade decides on an upgrade request without changing anything: the
// resolved upgrade to queue, or the same upgrade already queued or running,
// or why it is refused.
func (st ClusterState) admitUpgrade(req UpgradeRequest) (Upgrade, *Operation, error) {
	if err := req.Validate(); err != nil {
		return Upgrade{}, nil, err
	}
	if op, ok := st.covering(OpRollingUpgrade, nil); ok && op.Upgrade != nil { // an upgrade covers every broker
		cur := *op.Upgrade
		if req.Version == cur.Version && (req.FromIBP == "" || req.FromIBP == cur.FromIBP) && (req.TargetIBP == "" || req.TargetIBP == cur.TargetIBP) {
			return cur, &op, nil
		}
		return Upgrade{}, nil, fmt.Errorf("upgrade %s to %s (inter.broker.protocol.version %s -> %s) is already %s: wait for it to finish",
			op.ID, cur.Version, cur.FromIBP, cur.TargetIBP, op.Status)
	}
	from := req.FromIBP
	if from == "" {
		last, ok := st.lastUpgrade()
		switch {
		case !ok:
			return Upgrade{}, nil, errors.New("fromIbp is required: kfleet has no record of this cluster's inter.broker.protocol.version (no recent upgrade)")
		case last.Status != StatusSucceeded:
			return Upgrade{}, nil, fmt.Errorf("fromIbp is required: the last upgrade (%s to %s) %s, so brokers may run with either protocol", last.ID, last.Upgrade.Version, last.Status)
		}
		from = last.Upgrade.TargetIBP
	}
	up, err := req.resolve(from)
	return up, nil, err
}

// lastUpgrade is the most recent finished upgrade in the entity's history.
func (st ClusterState) lastUpgrade() (Operation, bool) {
	for i := len(st.History) - 1; i >= 0; i-- {
		if op := st.History[i]; op.Kind == OpRollingUpgrade && op.Upgrade != nil {
			return op, true
		}
	}
	return Operation{}, false
}

// runUpgrade runs an upgrade the entity admitted as its child and waits.
func runUpgrade(ctx workflow.Context, spec fleet.ClusterSpec, op Operation) error {
	if op.Upgrade == nil {
		return temporal.NewNonRetryableApplicationError(
			fmt.Sprintf("cluster %s: upgrade %s has no versions", spec.ID, op.ID), activities.ErrTypeBadInput, nil)
	}
	up := *op.Upgrade
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID: op.WorkflowID,
		StaticSummary: fmt.Sprintf("Upgrade of **%s** (%d brokers) to Kafka %s, inter.broker.protocol.version %s -> %s, requested by %s",
			spec.ID, len(spec.Brokers), up.Version, up.FromIBP, up.TargetIBP, op.RequestedBy),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			AttrClusterID.ValueSet(spec.ID),
			AttrOperation.ValueSet(op.Kind),
		),
		ParentClosePolicy: enumspb.PARENT_CLOSE_POLICY_ABANDON,
	})
	in := RollingUpgradeInput{
		Spec: spec, OperationID: op.ID, RequestedBy: op.RequestedBy,
		Version: up.Version, FromIBP: up.FromIBP, TargetIBP: up.TargetIBP,
	}
	return workflow.ExecuteChildWorkflow(cctx, RollingUpgradeWorkflow, in).Get(ctx, nil)
}
