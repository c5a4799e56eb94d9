package workflows

import (
	"encoding/json"
	"fmt"

	"github.com/kfleet/kfleet/internal/fleet"
)

// Operation kinds that change a cluster's brokers or move its
// partitions (resize.go, add_brokers.go).
const (
	OpAddBrokers   = "add-brokers"
	OpRemoveBroker = "remove-broker"
	OpRebalance    = "rebalance"
)

// RemoveBrokerParams are a removal's parameters: how partitions move off
// the broker (Request.Brokers names it).
type RemoveBrokerParams struct {
	MoveParams
}

func resizeInput(spec fleet.ClusterSpec, op Operation) ResizeInput {
	return ResizeInput{Spec: spec, OperationID: op.ID, RequestedBy: op.RequestedBy, Brokers: op.Brokers}
}

func resizeReport(what func(ResizeResult) string) func(ResizeResult, error) Report {
	return func(r ResizeResult, err error) Report {
		if err != nil && r.Moves.Moved == 0 && len(r.Added) == 0 {
			return Report{}
		}
		return Report{Outcome: what(r)}
	}
}

func movedPhrase(m ResizeResult) string {
	out := fmt.Sprintf("%d partition(s) moved (%d replica copies, %s)", m.Moves.Moved, m.Moves.Copies, fleet.Bytes(m.Moves.Bytes))
	if m.Moves.After.MaxReplicas > 0 {
		out += "; " + m.Moves.After.String()
	}
	return out
}

// stepProgress reads the progress of an operation whose workflow answers
// its step and its pause (ResizeProgress, DeleteProgress).
func stepProgress(op Operation, query func(string) json.RawMessage) []string {
	var p ResizeProgress
	if !decodeProgress(query(op.WorkflowID), &p) || p.Step == "" {
		return nil
	}
	lines := []string{p.Step}
	if p.Paused != nil {
		lines = append(lines, fmt.Sprintf("PAUSED at %q: %s [decide: resume|abort]", p.Paused.Step, p.Paused.Reason))
	}
	return lines
}

func describeMoves(p MoveParams) string {
	if p.ThrottleBytesPerSec == 0 && p.MovesPerBroker == 0 {
		return ""
	}
	var out string
	if p.ThrottleBytesPerSec > 0 {
		out = fmt.Sprintf("throttle %s/s", fleet.Bytes(p.ThrottleBytesPerSec))
	}
	if p.MovesPerBroker > 0 {
		if out != "" {
			out += ", "
		}
		out += fmt.Sprintf("%d moves per broker", p.MovesPerBroker)
	}
	return out
}

// ownWorkflowDecides: the operation's own workflow takes its decisions.
func ownWorkflowDecides(op Operation) []string { return []string{op.WorkflowID} }

var addBrokersKind = &kind[AddBrokersParams, ResizeInput, ResizeResult]{
	name:         OpAddBrokers,
	slug:         "add-brokers",
	verb:         "add-brokers",
	summary:      "add brokers like the cluster's own (params count, instanceType, volumeGiB), then move partitions onto them under a replication throttle until replicas and leaders are within 10%",
	lane:         LaneMaintenance,
	impact:       fleet.ImpactMembership,
	decisions:    []string{DecisionResume, DecisionAbort},
	workflowName: "AddBrokersWorkflow",
	workflow:     AddBrokersWorkflow,
	validate: func(req Request, p AddBrokersParams) error {
		if len(req.Brokers) > 0 {
			return fmt.Errorf("an addition picks the new brokers' ids itself, not %v: say how many with count", req.Brokers)
		}
		return p.validate()
	},
	check: func(a admission, _ Request, p *AddBrokersParams) error {
		if p.KafkaVersion == "" && a.st.Protocol != nil {
			p.KafkaVersion = a.st.Protocol.KafkaVersion
		}
		return nil
	},
	input: func(spec fleet.ClusterSpec, op Operation, p AddBrokersParams) ResizeInput {
		in := resizeInput(spec, op)
		in.Add, in.Move = p, p.MoveParams
		return in
	},
	title: func(spec fleet.ClusterSpec, _ Operation, p AddBrokersParams) string {
		return fmt.Sprintf("Addition of %d broker(s) to **%s**", p.Count, spec.ID)
	},
	report: resizeReport(func(r ResizeResult) string {
		return fmt.Sprintf("brokers %v added; %s", r.Added, movedPhrase(r))
	}),
	describe: func(p AddBrokersParams) string {
		out := fmt.Sprintf("%d broker(s)", p.Count)
		if p.InstanceType != "" {
			out += " of " + p.InstanceType
		}
		if m := describeMoves(p.MoveParams); m != "" {
			out += ", " + m
		}
		return out
	},
	deciders: ownWorkflowDecides,
	progress: stepProgress,
}

var removeBrokerKind = &kind[RemoveBrokerParams, ResizeInput, ResizeResult]{
	name:         OpRemoveBroker,
	slug:         "remove-broker",
	verb:         "remove-broker",
	summary:      "drain one broker by reassignment under a replication throttle, then stop it, terminate its host, delete its volume and take it out of the spec; refused if fewer brokers than the largest replication factor would remain",
	lane:         LaneMaintenance,
	impact:       fleet.ImpactMembership,
	destructive:  true,
	decisions:    []string{DecisionResume, DecisionAbort},
	workflowName: "RemoveBrokerWorkflow",
	workflow:     RemoveBrokerWorkflow,
	validate: func(req Request, p RemoveBrokerParams) error {
		if len(req.Brokers) != 1 {
			return fmt.Errorf("a removal takes exactly one broker (--brokers N), not %v", req.Brokers)
		}
		return p.validate()
	},
	check: func(a admission, req Request, _ *RemoveBrokerParams) error {
		b := req.Brokers[0]
		if _, ok := a.spec.Broker(b); !ok {
			return fmt.Errorf("broker %d is not in cluster %s (brokers %v)", b, a.spec.ID, a.spec.BrokerIDs())
		}
		if left := len(a.spec.Brokers) - 1; left < fleet.DefaultReplicationFactor {
			return fmt.Errorf("removing broker %d would leave %d broker(s) in cluster %s, fewer than the default replication factor %d (and its internal topics')",
				b, left, a.spec.ID, fleet.DefaultReplicationFactor)
		}
		return nil
	},
	input: func(spec fleet.ClusterSpec, op Operation, p RemoveBrokerParams) ResizeInput {
		in := resizeInput(spec, op)
		in.Move = p.MoveParams
		return in
	},
	title: func(spec fleet.ClusterSpec, op Operation, _ RemoveBrokerParams) string {
		return fmt.Sprintf("Removal of broker %v from **%s**", op.Brokers, spec.ID)
	},
	report: resizeReport(func(r ResizeResult) string {
		if r.Removed == nil {
			return "drained: " + movedPhrase(r)
		}
		return fmt.Sprintf("broker %d removed (host terminated, volume deleted); %s", *r.Removed, movedPhrase(r))
	}),
	describe: func(p RemoveBrokerParams) string { return describeMoves(p.MoveParams) },
	deciders: ownWorkflowDecides,
	progress: stepProgress,
}

var rebalanceKind = &kind[MoveParams, ResizeInput, ResizeResult]{
	name:         OpRebalance,
	slug:         "rebalance",
	verb:         "rebalance",
	summary:      "move partitions under a replication throttle until brokers' replica and preferred-leader counts are within 10% of each other",
	lane:         LaneMaintenance,
	impact:       fleet.ImpactAdmin,
	schedulable:  true,
	decisions:    []string{DecisionResume, DecisionAbort},
	workflowName: "RebalanceWorkflow",
	workflow:     RebalanceWorkflow,
	validate: func(req Request, p MoveParams) error {
		if len(req.Brokers) > 0 {
			return fmt.Errorf("a rebalance concerns the whole cluster, not broker(s) %v", req.Brokers)
		}
		return p.validate()
	},
	input: func(spec fleet.ClusterSpec, op Operation, p MoveParams) ResizeInput {
		in := resizeInput(spec, op)
		in.Move = p
		return in
	},
	title: func(spec fleet.ClusterSpec, _ Operation, _ MoveParams) string {
		return fmt.Sprintf("Rebalance of **%s**", spec.ID)
	},
	report:   resizeReport(movedPhrase),
	describe: describeMoves,
	deciders: ownWorkflowDecides,
	progress: stepProgress,
}
