package workflows

import (
	"fmt"

	"github.com/kfleet/kfleet/internal/fleet"
)

// replaceControllerKind registers the host replacement of a KRaft
// controller (replace_controller.go). It changes a member's host, so a
// migration holds it (fleet.ImpactMembership), and it takes a controller
// down: asked from chat, a second person approves it.
var replaceControllerKind = &kind[ReplaceControllerParams, ReplaceControllerInput, ReplaceControllerResult]{
	name:         OpReplaceController,
	slug:         "replace-controller",
	verb:         "replace-controller",
	summary:      "replace a KRaft controller's host (params node): refused unless the quorum keeps a caught-up majority without it; stop it, launch a host in its zone, configure the same node id, wait until caught up, terminate the old host",
	lane:         LaneMaintenance,
	impact:       fleet.ImpactMembership,
	destructive:  true,
	decisions:    []string{DecisionResume, DecisionAbort},
	workflowName: "ReplaceControllerWorkflow",
	workflow:     ReplaceControllerWorkflow,
	validate: func(req Request, p ReplaceControllerParams) error {
		if len(req.Brokers) > 0 {
			return fmt.Errorf("a controller replacement names a controller's node id (node), not brokers %v", req.Brokers)
		}
		if p.Node < 0 {
			return fmt.Errorf("node %d: controller node ids are not negative", p.Node)
		}
		return nil
	},
	check: func(a admission, _ Request, p *ReplaceControllerParams) error {
		if a.spec.Mode() != fleet.ModeKRaft {
			return fmt.Errorf("cluster %s is a %s cluster: it has no controllers of its own to replace", a.spec.ID, a.spec.Mode())
		}
		if _, ok := a.spec.Controller(p.Node); !ok {
			return fmt.Errorf("controller %d is not in cluster %s (controllers %v)", p.Node, a.spec.ID, a.spec.ControllerIDs())
		}
		return nil
	},
	// A replacement of the same controller joins; another controller's
	// waits its turn in the lane.
	joins: func(a admission, req Request, p *ReplaceControllerParams) (Operation, bool, error) {
		same := func(op Operation) bool {
			q, err := paramsOf[ReplaceControllerParams](op, nil)
			return op.Kind == OpReplaceController && err == nil && q.Node == p.Node
		}
		if a.st.Running != nil && same(*a.st.Running) {
			return *a.st.Running, true, nil
		}
		for _, op := range a.st.Queue {
			if same(op) {
				return op, true, nil
			}
		}
		return Operation{}, false, nil
	},
	input: func(spec fleet.ClusterSpec, op Operation, p ReplaceControllerParams) ReplaceControllerInput {
		return ReplaceControllerInput{Spec: spec, OperationID: op.ID, RequestedBy: op.RequestedBy, Node: p.Node}
	},
	title: func(spec fleet.ClusterSpec, _ Operation, p ReplaceControllerParams) string {
		return fmt.Sprintf("Host replacement of controller %d of **%s**", p.Node, spec.ID)
	},
	report: func(r ReplaceControllerResult, err error) Report {
		if err != nil || r.New == "" {
			return Report{}
		}
		return Report{Outcome: fmt.Sprintf("controller %d moved from %s to %s (%s), caught up with leader %d at epoch %d; old host terminated",
			r.Node, r.Old, r.New, r.Address, r.Leader, r.Epoch)}
	},
	describe: func(p ReplaceControllerParams) string { return fmt.Sprintf("controller %d", p.Node) },
	deciders: ownWorkflowDecides,
	progress: stepProgress,
}
