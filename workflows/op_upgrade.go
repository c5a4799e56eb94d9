package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// OpRollingUpgrade rolls a ZooKeeper-mode cluster to new binaries with the
// protocol pinned, then bumps the protocol (rolling_upgrade.go).
const OpRollingUpgrade = "rolling-upgrade"

// upgradeSlug names upgrades in their workflow IDs
// (cluster/<id>/upgrade/<op>).
const upgradeSlug = "upgrade"

// ProtocolLevel is what the entity knows of the Kafka version and the
// inter.broker.protocol.version its cluster's brokers run: from the spec
// at registration, then from each upgrade kfleet ran.
type ProtocolLevel struct {
	KafkaVersion        string `json:"kafkaVersion,omitempty"`
	InterBrokerProtocol string `json:"interBrokerProtocol,omitempty"`
	// Uncertain says why the level is not known (an upgrade stopped
	// half-way: brokers may run either protocol); the next upgrade must
	// then say its fromIbp.
	Uncertain string    `json:"uncertain,omitempty"`
	Since     time.Time `json:"since,omitzero"`
	// By is the upgrade that set it ("" : the spec).
	By string `json:"by,omitempty"`
	// MetadataVersion is a KRaft cluster's finalized metadata.version as
	// its last upgrade left it.
	MetadataVersion string `json:"metadataVersion,omitempty"`
}

var upgradeKind = &kind[UpgradeParams, RollingUpgradeInput, RollingUpgradeResult]{
	name:         OpRollingUpgrade,
	slug:         upgradeSlug,
	verb:         "upgrade",
	summary:      "rolling upgrade to a Kafka version: binaries with inter.broker.protocol.version pinned, then a roll that bumps it",
	lane:         LaneMaintenance,
	impact:       fleet.ImpactBinaryUpgrade,
	destructive:  true,
	decisions:    []string{DecisionResume, DecisionSkip, DecisionAbort},
	workflowName: "RollingUpgradeWorkflow",
	workflow:     RollingUpgradeWorkflow,
	others:       []any{RollingRestartWorkflow},
	validate: func(req Request, p UpgradeParams) error {
		if len(req.Brokers) > 0 {
			return errors.New("an upgrade concerns every broker: it takes no broker list")
		}
		if p.Version == "" {
			return errors.New("version is required: the Kafka version to run, e.g. 3.7.1")
		}
		// On its face a request is checked for the mode its parameters
		// say (a protocol: ZooKeeper; a metadata.version: KRaft); the
		// entity checks it again against its spec's mode (joins).
		switch {
		case p.MetadataVersion != "" && (p.FromIBP != "" || p.TargetIBP != ""):
			return errors.New("give either inter.broker.protocol.version (ZooKeeper mode) or metadata.version (KRaft), not both")
		case p.MetadataVersion != "":
			_, err := p.resolveKRaft()
			return err
		case p.FromIBP != "" || p.TargetIBP != "":
			_, err := p.resolve(p.FromIBP)
			return err
		}
		_, err := fleet.ParseKafkaVersion(p.Version)
		return err
	},
	joins: func(a admission, _ Request, p *UpgradeParams) (Operation, bool, error) {
		if op, ok := a.st.covering(OpRollingUpgrade, nil); ok { // an upgrade covers every broker
			cur, err := paramsOf(op, legacyUpgrade)
			if err != nil {
				return Operation{}, false, err
			}
			if p.Version == cur.Version && (p.FromIBP == "" || p.FromIBP == cur.FromIBP) && (p.TargetIBP == "" || p.TargetIBP == cur.TargetIBP) &&
				(p.MetadataVersion == "" || p.MetadataVersion == cur.MetadataVersion) {
				return op, true, nil
			}
			return Operation{}, false, fmt.Errorf("upgrade %s to %s (inter.broker.protocol.version %s -> %s) is already %s: wait for it to finish",
				op.ID, cur.Version, cur.FromIBP, cur.TargetIBP, op.Status)
		}
		if a.spec.Mode() == fleet.ModeKRaft {
			return Operation{}, false, admitKRaftUpgrade(p)
		}
		if p.MetadataVersion != "" {
			return Operation{}, false, fmt.Errorf("metadata.version is a KRaft feature: %s is a %s cluster", a.spec.ID, a.spec.Mode())
		}
		return Operation{}, false, admitUpgradeFrom(a.st.Protocol, p)
	},
	input: func(spec fleet.ClusterSpec, op Operation, p UpgradeParams) RollingUpgradeInput {
		return RollingUpgradeInput{Spec: spec, OperationID: op.ID, RequestedBy: op.RequestedBy,
			Version: p.Version, FromIBP: p.FromIBP, TargetIBP: p.TargetIBP, MetadataVersion: p.MetadataVersion}
	},
	title: func(spec fleet.ClusterSpec, _ Operation, p UpgradeParams) string {
		if p.MetadataVersion != "" {
			return fmt.Sprintf("Upgrade of **%s** (%d controllers, %d brokers) to Kafka %s, then metadata.version %s",
				spec.ID, len(spec.ControllerIDs()), len(spec.Brokers), p.Version, p.MetadataVersion)
		}
		return fmt.Sprintf("Upgrade of **%s** (%d brokers) to Kafka %s, inter.broker.protocol.version %s -> %s",
			spec.ID, len(spec.Brokers), p.Version, p.FromIBP, p.TargetIBP)
	},
	report: func(res RollingUpgradeResult, err error) Report {
		if k, ok := kraftUpgradeReport(res, err); ok {
			return k
		}
		up := res.Upgrade
		if err != nil {
			why := "an upgrade failed before it reported its versions: brokers may run either release and protocol"
			if up.Version != "" {
				why = fmt.Sprintf("the upgrade to %s stopped: brokers may run the old release or %s, with protocol %s or %s",
					up.Version, up.Version, up.FromIBP, up.TargetIBP)
			}
			return Report{Protocol: &ProtocolLevel{Uncertain: why}}
		}
		return Report{Outcome: fmt.Sprintf("Kafka %s, inter.broker.protocol.version %s", up.Version, up.TargetIBP),
			Protocol: &ProtocolLevel{KafkaVersion: up.Version, InterBrokerProtocol: up.TargetIBP}}
	},
	legacy: legacyUpgrade,
	describe: func(p UpgradeParams) string {
		if p.MetadataVersion != "" {
			return fmt.Sprintf("to Kafka %s (metadata.version %s)", p.Version, p.MetadataVersion)
		}
		return fmt.Sprintf("to Kafka %s (protocol %s -> %s)", p.Version, p.FromIBP, p.TargetIBP)
	},
	// Each phase's roll takes the decisions while it runs; a KRaft
	// upgrade itself takes the approval of a ghost's removal.
	deciders: func(op Operation) []string {
		return []string{UpgradePhaseWorkflowID(op.WorkflowID, UpgradePhaseBinaries), UpgradePhaseWorkflowID(op.WorkflowID, UpgradePhaseProtocol), op.WorkflowID}
	},
	progress: upgradeLines,
}

// admitUpgradeFrom fills in an upgrade request's fromIbp from the protocol
// level the entity knows, and resolves it.
func admitUpgradeFrom(level *ProtocolLevel, p *UpgradeParams) error {
	if p.FromIBP == "" {
		switch {
		case level == nil || level.InterBrokerProtocol == "" && level.Uncertain == "":
			return errors.New("fromIbp is required: kfleet does not know this cluster's inter.broker.protocol.version (give it in the cluster's spec, or here)")
		case level.Uncertain != "":
			return fmt.Errorf("fromIbp is required: %s", level.Uncertain)
		}
		p.FromIBP = level.InterBrokerProtocol
	}
	up, err := p.resolve(p.FromIBP)
	if err != nil {
		return err
	}
	*p = UpgradeParams(up)
	return nil
}

func legacyUpgrade(op Operation) UpgradeParams {
	if op.Upgrade == nil {
		return UpgradeParams{}
	}
	return UpgradeParams(*op.Upgrade)
}

// admitKRaftUpgrade resolves a KRaft cluster's upgrade request: no
// protocol, the target metadata.version filled in.
func admitKRaftUpgrade(p *UpgradeParams) error {
	if p.FromIBP != "" || p.TargetIBP != "" {
		return errors.New("a KRaft cluster has no inter.broker.protocol.version to pin or bump: give metadataVersion instead")
	}
	up, err := p.resolveKRaft()
	if err != nil {
		return err
	}
	*p = UpgradeParams(up)
	return nil
}

// kraftUpgradeReport reads a KRaft upgrade's end: its result, or, when it
// failed, the result its error carries (rolling_upgrade_kraft.go's end).
// ok is false for a ZooKeeper upgrade's.
func kraftUpgradeReport(res RollingUpgradeResult, err error) (Report, bool) {
	var appErr *temporal.ApplicationError
	if err != nil && errors.As(err, &appErr) && appErr.HasDetails() {
		var carried RollingUpgradeResult
		if appErr.Details(&carried) == nil && carried.Mode == fleet.ModeKRaft {
			res = carried
		}
	}
	if res.Mode != fleet.ModeKRaft {
		return Report{}, false
	}
	up, mv := res.Upgrade, res.MetadataVersion
	switch {
	case err == nil && mv != nil:
		return Report{Outcome: fmt.Sprintf("Kafka %s, metadata.version %s (was %s)", up.Version, mv.Target, mv.From),
			Protocol: &ProtocolLevel{KafkaVersion: up.Version, MetadataVersion: mv.Target}}, true
	case len(res.Binaries.Brokers) == 0 && len(res.Binaries.Controllers) == 0 && appErr != nil && appErr.Type() == activities.ErrTypeBadInput:
		return Report{Outcome: "refused before anything was rolled: " + appErr.Message()}, true
	case mv != nil && mv.Refusal != "":
		return Report{Outcome: fmt.Sprintf("binaries rolled to Kafka %s; metadata.version unchanged at %s (target %s): %s", up.Version, mv.From, mv.Target, mv.Refusal),
			Protocol: &ProtocolLevel{KafkaVersion: up.Version, MetadataVersion: mv.From}}, true
	}
	return Report{Protocol: &ProtocolLevel{Uncertain: fmt.Sprintf("the KRaft upgrade to %s stopped during its roll: nodes may run the old release or %s", up.Version, up.Version)}}, true
}
