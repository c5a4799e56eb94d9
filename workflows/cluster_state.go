package workflows

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/kfleet/kfleet/internal/fleet"
	"go.temporal.io/sdk/workflow"
)

// The cluster entity's state: what it carries across continue-as-new, and
// what it decides with.

// ClusterInput starts (or continues) a cluster's entity workflow.
type ClusterInput struct {
	Spec fleet.ClusterSpec `json:"spec"`
	// State is carried over continue-as-new; nil on first start.
	State *ClusterState `json:"state,omitempty"`
	// EventBudget is the history length past which the entity continues
	// as new (default 5,000, well before Temporal's 10,240-event warning);
	// tests make it small.
	EventBudget int `json:"eventBudget,omitempty"`
}

// ClusterState is the entity's operational state.
type ClusterState struct {
	Running *Operation  `json:"running,omitempty"`
	Queue   []Operation `json:"queue,omitempty"`
	// History keeps the most recent finished operations, newest last.
	History []Operation `json:"history,omitempty"`
	// Seq numbers operations within a run of the entity.
	Seq int `json:"seq"`
	// Paused is set while no queued operation may start.
	Paused *PauseState `json:"paused,omitempty"`
	// Touching are the brokers the running operation has taken down
	// (BrokerTouch signals): their registration vanishing is no loss.
	Touching []BrokerTouch `json:"touching,omitempty"`
	// Released are touches let go of (entity version 4), kept until a
	// sensing answer observed after their release: an answer observed
	// while a broker was still touched may reach the entity after the
	// release (a workflow task lost with its worker delays it), and the
	// broker's absence it reports is still kfleet's own doing.
	Released []BrokerTouch `json:"released,omitempty"`
	// Losses are brokers lost without kfleet touching them, newest last
	// (bounded; open ones are kept).
	Losses []BrokerLoss `json:"losses,omitempty"`
	// Watch is what the broker watch last saw; nil until its first answer.
	Watch *WatchState `json:"watch,omitempty"`
	// Urgent are the urgent operations running beside Running (recoveries,
	// volume expansions; see urgent_lane.go).
	Urgent []Operation `json:"urgent,omitempty"`
	// Health is what the health loop knows (health_loop.go).
	Health *HealthState `json:"health,omitempty"`
	// Protocol is the Kafka version and inter.broker.protocol.version the
	// brokers run, as far as kfleet knows (op_upgrade.go).
	Protocol *ProtocolLevel `json:"protocol,omitempty"`
	// Tenants are the cluster's tenants (tenant_state.go).
	Tenants []TenantState `json:"tenants,omitempty"`
}

// Operation is one risky operation admitted by the entity.
type Operation struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	WorkflowID  string    `json:"workflowId"`
	RequestedBy string    `json:"requestedBy"`
	RequestedAt time.Time `json:"requestedAt"`
	// ApprovedBy is who approved a request made in chat.
	ApprovedBy string `json:"approvedBy,omitempty"`
	// Brokers restricts the operation; empty means every broker.
	Brokers []int32 `json:"brokers,omitempty"`
	// Params are the kind's own parameters as admitted (op_*.go).
	Params     json.RawMessage `json:"params,omitempty"`
	Status     string          `json:"status"`
	Error      string          `json:"error,omitempty"`
	StartedAt  time.Time       `json:"startedAt,omitzero"`
	FinishedAt time.Time       `json:"finishedAt,omitzero"`
	// Existing is set in an update's answer when the request joined an
	// operation already queued or running instead of adding one.
	Existing bool `json:"existing,omitempty"`
	// CancelledBy is who cancelled the operation (the cancel update), and
	// why; set on the running one as soon as its cancellation is asked.
	CancelledBy  string `json:"cancelledBy,omitempty"`
	CancelReason string `json:"cancelReason,omitempty"`
	// Reason is why it was asked for (a health finding, a broker loss,
	// an operator's words).
	Reason string `json:"reason,omitempty"`
	// Outcome summarises what a finished operation did.
	Outcome string `json:"outcome,omitempty"`

	legacyParams
}

// legacyParams are the kind-specific fields operations carried before
// Params: states and histories recorded then still decode, and each kind
// reads its parameters from them when Params is empty (kind.legacy).
type legacyParams struct {
	MaxBatch          int       `json:"maxBatch,omitempty"`
	Upgrade           *Upgrade  `json:"upgrade,omitempty"`
	LostAt            time.Time `json:"lostAt,omitzero"`
	Requested         bool      `json:"requested,omitempty"`
	GrowthBytesPerSec float64   `json:"growthBytesPerSec,omitempty"`
	CooldownUntil     time.Time `json:"cooldownUntil,omitzero"`
}

// Operation statuses.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// ClusterStatus is what the status query answers.
type ClusterStatus struct {
	Spec fleet.ClusterSpec `json:"spec"`
	ClusterState
}

// newOperation numbers a new queued operation of kind. Its id ends the
// entity's run id's tail, the random part (the head is a timestamp), so ids
// stay unique across re-registrations; the kind's slug names it in the
// workflow id.
func (st *ClusterState) newOperation(ctx workflow.Context, cluster, kind, requestedBy string) Operation {
	st.Seq++
	runID := workflow.GetInfo(ctx).WorkflowExecution.RunID
	id := fmt.Sprintf("%s-%d", runID[max(0, len(runID)-8):], st.Seq)
	return Operation{
		ID:          id,
		Kind:        kind,
		WorkflowID:  OperationWorkflowID(cluster, kindSlug(kind), id),
		RequestedBy: requestedBy,
		RequestedAt: workflow.Now(ctx),
		Status:      StatusQueued,
	}
}

// covering returns the queued or running operation of kind whose brokers
// include brokers (no brokers: every broker), which a new request joins.
func (st ClusterState) covering(kind string, brokers []int32) (Operation, bool) {
	covers := func(op Operation) bool {
		if op.Kind != kind {
			return false
		}
		if len(op.Brokers) == 0 {
			return true
		}
		return len(brokers) > 0 && !slices.ContainsFunc(brokers, func(b int32) bool { return !slices.Contains(op.Brokers, b) })
	}
	if st.Running != nil && covers(*st.Running) {
		return *st.Running, true
	}
	for _, op := range st.Queue {
		if covers(op) {
			return op, true
		}
	}
	return Operation{}, false
}

// Operation finds an operation by id among running, queued and recent ones.
func (st ClusterState) Operation(id string) (Operation, bool) {
	if st.Running != nil && st.Running.ID == id {
		return *st.Running, true
	}
	for _, ops := range [][]Operation{st.Urgent, st.Queue, st.History} {
		for _, op := range ops {
			if op.ID == id {
				return op, true
			}
		}
	}
	return Operation{}, false
}

// runningByWorkflow finds the running or urgent operation whose workflow
// is workflowID.
func (st ClusterState) runningByWorkflow(workflowID string) (Operation, bool) {
	if st.Running != nil && st.Running.WorkflowID == workflowID {
		return *st.Running, true
	}
	for _, op := range st.Urgent {
		if op.WorkflowID == workflowID {
			return op, true
		}
	}
	return Operation{}, false
}

// protocolFromHistory is the protocol level the last upgrade in the
// history left, for states carried over from runs that did not keep it.
func (st ClusterState) protocolFromHistory() *ProtocolLevel {
	for i := len(st.History) - 1; i >= 0; i-- {
		op := st.History[i]
		if op.Kind != OpRollingUpgrade {
			continue
		}
		p, err := paramsOf(op, legacyUpgrade)
		if err != nil || p.Version == "" {
			return nil
		}
		if op.Status != StatusSucceeded {
			return &ProtocolLevel{Uncertain: fmt.Sprintf("the last upgrade (%s to %s) %s, so brokers may run either protocol", op.ID, p.Version, op.Status), By: op.ID, Since: op.FinishedAt}
		}
		return &ProtocolLevel{KafkaVersion: p.Version, InterBrokerProtocol: p.TargetIBP, By: op.ID, Since: op.FinishedAt}
	}
	return nil
}

// protocolFromSpec is the protocol level with the spec's say: the spec
// seeds it, and corrects a level that came from a spec; a level an
// upgrade through kfleet set wins over a spec written before it.
func protocolFromSpec(spec fleet.ClusterSpec, level *ProtocolLevel) *ProtocolLevel {
	if spec.InterBrokerProtocol == "" && spec.KafkaVersion == "" {
		return level
	}
	if level != nil && level.By != "" {
		return level
	}
	return &ProtocolLevel{KafkaVersion: spec.KafkaVersion, InterBrokerProtocol: spec.InterBrokerProtocol}
}
