package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// Host replacement of a KRaft controller (issue #15), an operation of the
// cluster's entity: `replace-controller <cluster> <node id>`.
//
//  1. plan: the old host's state, a new host an earlier attempt or run
//     launched (found by its tags), what to launch where, the Kafka
//     cluster id and the controller's address;
//  2. gate: without the controller, the quorum's caught-up voters must
//     still be a majority (fleet.JudgeQuorumWithout) — whether it runs or
//     is down already, the question is the others' — at two reads a
//     fetch timeout apart. Refused, nothing is touched;
//  3. stop its Kafka through its host if the host runs;
//  4. launch the new host in its zone, tagged as the controller;
//  5. configure the same node id with the same voters and cluster id
//     (a blank metadata log), and start it;
//  6. wait until it is a voter caught up with the leader;
//  7. terminate the old host; 8. the entity's spec names the new host and
//     its address.
//
// A step that fails for good pauses for a human (resume, abort).

// OpReplaceController is the operation kind.
const OpReplaceController = "replace-controller"

// ErrTypeReplaceControllerRefused ends a replacement refused by its gate
// with nothing touched.
const ErrTypeReplaceControllerRefused = "ReplaceControllerRefused"

// ReplaceControllerParams are a replacement's parameters.
type ReplaceControllerParams struct {
	// Node is the controller's node id.
	Node int32 `json:"node"`
}

// ReplaceControllerInput is the workflow's input.
type ReplaceControllerInput struct {
	Spec        fleet.ClusterSpec `json:"spec"`
	OperationID string            `json:"operationId"`
	RequestedBy string            `json:"requestedBy"`
	Node        int32             `json:"node"`
}

// ReplaceControllerResult is what the replacement did.
type ReplaceControllerResult struct {
	Node     int32  `json:"node"`
	Old      string `json:"old"`
	OldState string `json:"oldState,omitempty"`
	New      string `json:"new,omitempty"`
	Address  string `json:"address,omitempty"`
	// Stopped: the old controller ran and was stopped through its host.
	Stopped bool `json:"stopped,omitempty"`
	// Adopted: the new host was launched by an earlier attempt or run.
	Adopted bool `json:"adopted,omitempty"`
	// Gate is the quorum gate's verdict before anything was touched.
	Gate   fleet.QuorumVerdict `json:"gate"`
	Leader int32               `json:"leader"`
	Epoch  int32               `json:"epoch"`
	Took   time.Duration       `json:"took"`
}

// replacingController is one replacement's state.
type replacingController struct {
	in       ReplaceControllerInput
	progress ResizeProgress
	gate     *humanGate
}

// ReplaceControllerWorkflow replaces a KRaft controller's host.
func ReplaceControllerWorkflow(ctx workflow.Context, in ReplaceControllerInput) (ReplaceControllerResult, error) {
	start := workflow.Now(ctx)
	res := ReplaceControllerResult{Node: in.Node}
	r := &replacingController{in: in}
	r.gate = &humanGate{cluster: in.Spec.ID, what: "controller replacement", changed: func(ctx workflow.Context) {
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s** controller %d host replacement `%s`: %s%s.", in.Spec.ID, in.Node, in.OperationID,
			r.progress.Step, pausedSuffix(r.gate.paused)))
	}}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (ResizeProgress, error) {
		p := r.progress
		p.Paused = r.gate.paused
		return p, nil
	}); err != nil {
		return res, err
	}
	if err := r.gate.register(ctx); err != nil {
		return res, err
	}
	err := r.run(ctx, &res)
	res.Took = workflow.Now(ctx).Sub(start)
	return res, err
}

// step runs one step until it succeeds, asking a human after each failure
// (resume runs it again; abort ends the replacement).
func (r *replacingController) step(ctx workflow.Context, name string, run func(ctx workflow.Context) error) error {
	r.progress.Step = name
	r.gate.changed(ctx)
	for {
		err := run(ctx)
		if err == nil {
			return nil
		}
		if _, err := r.gate.ask(ctx, Pause{Broker: r.in.Node, Controller: true, Step: name, Reason: activityMessage(err)}); err != nil {
			return err
		}
	}
}

func (r *replacingController) run(ctx workflow.Context, res *ReplaceControllerResult) error {
	in := r.in
	who := fmt.Sprintf("kfleet %s %s requested by %s", OpReplaceController, in.OperationID, in.RequestedBy)
	ctl := activities.ControllerInput{Spec: in.Spec, Controller: in.Node, Reason: who}
	opts := func(timeout time.Duration, summary string) workflow.Context {
		return provisionContext(ctx, timeout, summary)
	}

	var plan activities.ControllerReplacementPlan
	if err := r.step(ctx, "planning the replacement", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(opts(2*time.Minute, "plan the controller's host replacement"), a.PlanControllerReplacement, ctl).Get(ctx, &plan)
	}); err != nil {
		return err
	}
	res.Old, res.OldState = plan.Old, plan.OldState

	// The gate is read twice, a fetch timeout (and a fetch) apart: a voter
	// that stopped just before the first read still looks caught up in
	// it (its last caught-up time is within a fetch timeout of the
	// leader's), and only the second sees it behind.
	for i := range 2 {
		if i > 0 {
			if !res.Gate.Safe {
				break
			}
			if err := workflow.Sleep(ctx, fleet.QuorumFetchTimeout+time.Second); err != nil {
				return err
			}
		}
		if err := r.step(ctx, "checking the quorum without it", func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(opts(time.Minute, fmt.Sprintf("quorum gate without controller %d", in.Node)), a.CheckQuorumGate,
				activities.QuorumInput{Spec: in.Spec, Node: in.Node}).Get(ctx, &res.Gate)
		}); err != nil {
			return err
		}
	}
	if !res.Gate.Safe {
		if plan.Existing == "" {
			return temporal.NewNonRetryableApplicationError(fmt.Sprintf("cluster %s: replacement of controller %d refused, nothing touched: %s",
				in.Spec.ID, in.Node, res.Gate.Reason), ErrTypeReplaceControllerRefused, nil)
		}
		// An earlier run launched the new host already: a human decides
		// whether to go on.
		if _, err := r.gate.ask(ctx, Pause{Broker: in.Node, Controller: true, Step: "quorum gate", Reason: res.Gate.Reason}); err != nil {
			return err
		}
	}

	if plan.Reachable() && plan.Existing == "" {
		if err := r.step(ctx, "stopping it through its host", func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(opts(10*time.Minute, fmt.Sprintf("stop controller %d", in.Node)), a.StopController, ctl).Get(ctx, nil)
		}); err != nil {
			return err
		}
		res.Stopped = true
	}

	var host activities.Host
	attempt := 0
	if err := r.step(ctx, "launching its new host in "+plan.Launch.AZ, func(ctx workflow.Context) error {
		err := workflow.ExecuteActivity(opts(20*time.Minute, fmt.Sprintf("launch controller %d's new host", in.Node)), a.LaunchControllerReplacement,
			activities.ControllerLaunchInput{ControllerInput: ctl, Plan: plan, Attempt: attempt}).Get(ctx, &host)
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeReplacementGone {
			attempt++ // terminated behind its back: a resume launches another
		}
		return err
	}); err != nil {
		return err
	}
	res.New, res.Adopted = host.InstanceID, host.Adopted

	node := activities.ControllerNodeInput{Cluster: in.Spec.ID, InstanceID: host.InstanceID, NodeID: in.Node, Reason: who}
	if err := r.step(ctx, "configuring node "+fmt.Sprint(in.Node)+" on "+host.InstanceID+" and starting it", func(ctx workflow.Context) error {
		if res.Address == "" {
			if err := workflow.ExecuteActivity(opts(10*time.Minute, fmt.Sprintf("configure controller %d on its new host", in.Node)), a.ConfigureReplacementController,
				activities.ControllerConfigInput{ControllerInput: ctl, New: host.InstanceID, Rack: plan.Rack, KafkaClusterID: plan.KafkaClusterID}).Get(ctx, &res.Address); err != nil {
				return err
			}
		}
		return workflow.ExecuteActivity(opts(10*time.Minute, fmt.Sprintf("start controller %d on its new host", in.Node)), a.StartControllerHost, node).Get(ctx, nil)
	}); err != nil {
		return err
	}

	newSpec := withControllerHost(in.Spec, in.Node, host.InstanceID, plan.OldAddress, res.Address)
	if err := r.step(ctx, "waiting until it is caught up", func(ctx workflow.Context) error {
		var c activities.ControllerCaughtUp
		err := workflow.ExecuteActivity(opts(15*time.Minute, fmt.Sprintf("wait until controller %d is caught up", in.Node)), a.WaitControllerCaughtUp,
			activities.CaughtUpInput{ControllerInput: activities.ControllerInput{Spec: newSpec, Controller: in.Node, Reason: who}}).Get(ctx, &c)
		res.Leader, res.Epoch = c.Leader, c.Epoch
		return err
	}); err != nil {
		return err
	}

	if err := r.step(ctx, "terminating its old host "+plan.Old, func(ctx workflow.Context) error {
		var state string
		return workflow.ExecuteActivity(opts(5*time.Minute, "terminate the old host "+plan.Old), a.RetireControllerHost,
			activities.RetireControllerInput{ControllerInput: ctl, Old: plan.Old, New: host.InstanceID}).Get(ctx, &state)
	}); err != nil {
		return err
	}
	if err := r.step(ctx, "telling the entity its new host", func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(opts(time.Minute, "tell the entity controller's new host "+host.InstanceID), a.SetControllerHost,
			activities.SetControllerHostInput{Cluster: in.Spec.ID, Controller: in.Node, From: plan.Old, To: host.InstanceID,
				OldAddress: plan.OldAddress, Address: res.Address}).Get(ctx, nil)
	}); err != nil {
		return err
	}
	r.progress.Step = fmt.Sprintf("replaced: controller %d on %s (was %s), caught up with leader %d", in.Node, host.InstanceID, plan.Old, res.Leader)
	r.gate.changed(ctx)
	return nil
}

// withControllerHost is spec with controller node on instance, and its
// address in place of oldAddress in the quorum's bootstrap list.
func withControllerHost(spec fleet.ClusterSpec, node int32, instance, oldAddress, address string) fleet.ClusterSpec {
	if spec.KRaft == nil {
		return spec
	}
	k := *spec.KRaft
	k.Controllers, k.QuorumBootstrap = slices.Clone(k.Controllers), slices.Clone(k.QuorumBootstrap)
	for i := range k.Controllers {
		if k.Controllers[i].ID == node {
			k.Controllers[i].InstanceID = instance
		}
	}
	if address != "" && !slices.Contains(k.QuorumBootstrap, address) {
		if j := slices.Index(k.QuorumBootstrap, oldAddress); oldAddress != "" && j >= 0 {
			k.QuorumBootstrap[j] = address
		} else {
			k.QuorumBootstrap = append(k.QuorumBootstrap, address)
		}
	}
	spec.KRaft = &k
	return spec
}
