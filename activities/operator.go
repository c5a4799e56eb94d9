package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kfleet/kfleet/internal/fleet"
)

// Action is an operator's request on a cluster, as a chat command, an
// approval or a schedule carries it. It holds no secret: it is recorded in
// workflow history. Its verb is an operation kind's (workflows.Kinds), or
// VerbAbort or VerbHealthCheck.
type Action struct {
	Verb    string `json:"verb"`
	Cluster string `json:"cluster"`
	// Brokers restricts an operation, or names the broker of an expansion.
	Brokers []int32 `json:"brokers,omitempty"`
	// Params are the operation kind's own parameters, e.g. {"maxBatch":3}
	// for a restart or {"version":"3.7.1"} for an upgrade.
	Params json.RawMessage `json:"params,omitempty"`
	// OperationID is the paused operation an abort answers ("" : the one
	// waiting).
	OperationID string `json:"operationId,omitempty"`
	RequestedBy string `json:"requestedBy"`
	// ApprovedBy is the second person who approved it (chat).
	ApprovedBy string `json:"approvedBy,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// Verbs of an Action that are not operation kinds.
const (
	// VerbAbort answers the operation waiting for a human with abort.
	VerbAbort = "abort"
	// VerbHealthCheck runs a cluster's health tick now (the fleet sweep).
	VerbHealthCheck = "health-check"
)

// Validate rejects an action no cluster could run, before anything
// starts. The verb and its parameters are the operation kind's to check
// (internal/entity does, before submitting).
func (a Action) Validate() error {
	var errs []error
	if !fleet.ValidClusterID(a.Cluster) {
		errs = append(errs, fmt.Errorf("cluster %q: want 1-63 characters of a-z, 0-9 and '-'", a.Cluster))
	}
	if a.Verb == "" {
		errs = append(errs, errors.New("verb is required"))
	}
	if a.RequestedBy == "" {
		errs = append(errs, errors.New("requestedBy is required"))
	}
	for _, b := range a.Brokers {
		if b < 0 {
			errs = append(errs, fmt.Errorf("broker %d: must not be negative", b))
		}
	}
	if len(a.Params) > 0 && !json.Valid(a.Params) {
		errs = append(errs, fmt.Errorf("params %q: not JSON", a.Params))
	}
	return errors.Join(errs...)
}

// Submitted is what the cluster's entity answered an action.
type Submitted struct {
	// OperationID is the operation admitted (or joined); "" for an abort
	// or a health check.
	OperationID string `json:"operationId,omitempty"`
	Kind        string `json:"kind,omitempty"`
	// Existing is true when the action joined an operation already queued
	// or running.
	Existing bool `json:"existing,omitempty"`
	// Text says what happened, for humans.
	Text string `json:"text"`
}

// Operator submits actions to cluster entities and lists them; a refusal
// wraps fleet.ErrRefused. internal/entity implements it with a Temporal
// client.
type Operator interface {
	Submit(ctx context.Context, a Action) (Submitted, error)
	Clusters(ctx context.Context) ([]string, error)
}

// SubmitAction submits an approved or scheduled action to its cluster's
// entity. An action the entity refuses (unknown cluster, a broker not in
// it, a volume in its cool-down) is bad input: retrying cannot help. A
// retry after the entity admitted it joins the same operation.
func (a *Activities) SubmitAction(ctx context.Context, act Action) (Submitted, error) {
	if err := act.Validate(); err != nil {
		return Submitted{}, badInput(err)
	}
	if a.Operator == nil {
		return Submitted{}, badInput(errors.New("this worker has no Temporal client to submit actions with"))
	}
	s, err := a.Operator.Submit(ctx, act)
	if errors.Is(err, fleet.ErrRefused) {
		return s, badInput(err)
	}
	if err != nil {
		return s, fmt.Errorf("cluster %s: %s: %w", act.Cluster, act.Verb, err)
	}
	a.Log.Info().Str("cluster", act.Cluster).Str("verb", act.Verb).Str("by", act.RequestedBy).Str("operation", s.OperationID).Msg("action submitted")
	return s, nil
}

// ListClusters names every cluster whose entity runs.
func (a *Activities) ListClusters(ctx context.Context) ([]string, error) {
	if a.Operator == nil {
		return nil, badInput(errors.New("this worker has no Temporal client to list clusters with"))
	}
	return a.Operator.Clusters(ctx)
}
