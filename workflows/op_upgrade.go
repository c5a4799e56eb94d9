package workflows

import (
	"errors"
	"fmt"
	"time"

	"github.com/kfleet/kfleet/internal/fleet"
)

// OpRollingUpgrade rolls a ZooKeeper-mode cluster to new binaries with the
// protocol pinned, then bumps the protocol (rolling_upgrade.go).
const OpRollingUpgrade = "rolling-upgrade"

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
}

var upgradeKind = &kind[UpgradeParams, RollingUpgradeInput, RollingUpgradeResult]{
	name:         OpRollingUpgrade,
	slug:         "upgrade",
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
		_, err := p.resolve(p.FromIBP)
		return err
	},
	joins: func(a admission, _ Request, p *UpgradeParams) (Operation, bool, error) {
		if op, ok := a.st.covering(OpRollingUpgrade, nil); ok { // an upgrade covers every broker
			cur, err := paramsOf(op, legacyUpgrade)
			if err != nil {
				return Operation{}, false, err
			}
			if p.Version == cur.Version && (p.FromIBP == "" || p.FromIBP == cur.FromIBP) && (p.TargetIBP == "" || p.TargetIBP == cur.TargetIBP) {
				return op, true, nil
			}
			return Operation{}, false, fmt.Errorf("upgrade %s to %s (inter.broker.protocol.version %s -> %s) is already %s: wait for it to finish",
				op.ID, cur.Version, cur.FromIBP, cur.TargetIBP, op.Status)
		}
		return Operation{}, false, admitUpgradeFrom(a.st.Protocol, p)
	},
	input: func(spec fleet.ClusterSpec, op Operation, p UpgradeParams) RollingUpgradeInput {
		return RollingUpgradeInput{Spec: spec, OperationID: op.ID, RequestedBy: op.RequestedBy,
			Version: p.Version, FromIBP: p.FromIBP, TargetIBP: p.TargetIBP}
	},
	title: func(spec fleet.ClusterSpec, _ Operation, p UpgradeParams) string {
		return fmt.Sprintf("Upgrade of **%s** (%d brokers) to Kafka %s, inter.broker.protocol.version %s -> %s",
			spec.ID, len(spec.Brokers), p.Version, p.FromIBP, p.TargetIBP)
	},
	report: func(res RollingUpgradeResult, err error) Report {
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
		return fmt.Sprintf("to Kafka %s (protocol %s -> %s)", p.Version, p.FromIBP, p.TargetIBP)
	},
	// Each phase's roll takes the decisions while it runs.
	deciders: func(op Operation) []string {
		return []string{UpgradePhaseWorkflowID(op.WorkflowID, UpgradePhaseBinaries), UpgradePhaseWorkflowID(op.WorkflowID, UpgradePhaseProtocol)}
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
