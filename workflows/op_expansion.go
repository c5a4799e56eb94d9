package workflows

import (
	"errors"
	"fmt"
	"time"

	"github.com/kfleet/kfleet/internal/fleet"
)

// OpVolumeExpansion grows a broker's data volume (or escalates while it
// cannot).
const OpVolumeExpansion = "volume-expansion"

// ExpansionParams are a volume expansion's parameters; its broker is the
// operation's one broker.
type ExpansionParams struct {
	// Requested marks an expansion an operator asked for: it grows the
	// volume even below the threshold.
	Requested bool `json:"requested,omitempty"`
	// GrowthBytesPerSec is the data's growth the health loop observed;
	// CooldownUntil the volume's cool-down the entity recorded.
	GrowthBytesPerSec float64   `json:"growthBytesPerSec,omitempty"`
	CooldownUntil     time.Time `json:"cooldownUntil,omitzero"`
}

var expansionKind = &kind[ExpansionParams, VolumeExpansionInput, VolumeExpansionResult]{
	name:         OpVolumeExpansion,
	slug:         OpVolumeExpansion,
	verb:         "expand",
	summary:      "grow a broker's data volume now (ModifyVolume, then the filesystem, online); refused inside EBS's 6-hour cool-down",
	lane:         LaneUrgent,
	impact:       fleet.ImpactAdmin,
	destructive:  true,
	workflowName: "VolumeExpansionWorkflow",
	workflow:     VolumeExpansionWorkflow,
	validate: func(req Request, p ExpansionParams) error {
		if len(req.Brokers) != 1 {
			return fmt.Errorf("an expansion concerns exactly one broker, got %v", req.Brokers)
		}
		if p != (ExpansionParams{}) {
			return errors.New("an expansion takes no parameters: kfleet sizes it from the disk's growth")
		}
		return nil
	},
	check: func(a admission, req Request, p *ExpansionParams) error {
		if err := needsHealthLoop[ExpansionParams]("requested expansions")(a, req, p); err != nil {
			return err
		}
		broker := req.Brokers[0]
		p.Requested = true
		if bs := a.st.healthOf(broker); bs != nil {
			p.GrowthBytesPerSec = bs.GrowthBytesPerSec
			if bs.Cooldown != nil && a.now.Before(bs.Cooldown.Until) {
				return fmt.Errorf("broker %d's volume %s was modified less than %s ago: EBS allows the next change at %s",
					broker, bs.Cooldown.VolumeID, a.spec.Health.WithDefaults().VolumeCooldown, bs.Cooldown.Until.Format(time.RFC3339))
			}
		}
		return nil
	},
	input: func(spec fleet.ClusterSpec, op Operation, p ExpansionParams) VolumeExpansionInput {
		return VolumeExpansionInput{Spec: spec, Broker: op.Brokers[0], OperationID: op.ID, RequestedBy: op.RequestedBy,
			GrowthBytesPerSec: p.GrowthBytesPerSec, CooldownUntil: p.CooldownUntil, Requested: p.Requested}
	},
	title: func(spec fleet.ClusterSpec, op Operation, _ ExpansionParams) string {
		return fmt.Sprintf("Volume expansion of **%s** broker %d", spec.ID, op.Brokers[0])
	},
	report: func(r VolumeExpansionResult, _ error) Report {
		rep := Report{Volume: &r}
		switch r.Outcome {
		case ExpansionExpanded:
			rep.Outcome = fmt.Sprintf("expanded %d -> %d GiB", r.FromGiB, r.ToGiB)
		case "":
			rep.Volume = nil
		default:
			rep.Outcome = r.Outcome + ": " + r.Reason
		}
		return rep
	},
	legacy: func(op Operation) ExpansionParams {
		return ExpansionParams{Requested: op.Requested, GrowthBytesPerSec: op.GrowthBytesPerSec, CooldownUntil: op.CooldownUntil}
	},
	describe: func(p ExpansionParams) string {
		if p.Requested {
			return "asked by an operator"
		}
		return ""
	},
}

// expansionOperation is an expansion kfleet itself asks for (a disk
// finding); cooldownUntil is set when only an escalation may help.
func expansionOperation(broker int32, growth float64, cooldownUntil time.Time) Operation {
	return Operation{Kind: OpVolumeExpansion, Brokers: []int32{broker},
		Params: mustJSON(ExpansionParams{GrowthBytesPerSec: growth, CooldownUntil: cooldownUntil})}
}
