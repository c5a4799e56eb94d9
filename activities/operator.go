package activities

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/kfleet/kfleet/internal/fleet"
)

// Action is an operator's request on a cluster, as a chat command, an
// approval or a schedule carries it. It holds no secret: it is recorded in
// workflow history.
type Action struct {
	Verb    string `json:"verb"`
	Cluster string `json:"cluster"`
	// Brokers restricts a restart, or names the broker of an expansion.
	Brokers  []int32 `json:"brokers,omitempty"`
	MaxBatch int     `json:"maxBatch,omitempty"`
	// Version is an upgrade's target Kafka version.
	Version string `json:"version,omitempty"`
	// OperationID is the paused operation an abort answers ("" : the one
	// waiting).
	OperationID string `json:"operationId,omitempty"`
	RequestedBy string `json:"requestedBy"`
	Reason      string `json:"reason,omitempty"`
}

// Verbs of an Action.
const (
	VerbRestart      = "restart"
	VerbUpgrade      = "upgrade"
	VerbExpand       = "expand"
	VerbCleanerCheck = "cleaner-check"
	VerbAbort        = "abort"
	// VerbHealthCheck runs a cluster's health tick now (the fleet sweep).
	VerbHealthCheck = "health-check"
)

var versionPattern = regexp.MustCompile(`^\d+\.\d+\.\d+$`)

// Validate rejects an action no cluster could run, before anything starts.
func (a Action) Validate() error {
	var errs []error
	if !fleet.ValidClusterID(a.Cluster) {
		errs = append(errs, fmt.Errorf("cluster %q: want 1-63 characters of a-z, 0-9 and '-'", a.Cluster))
	}
	if a.RequestedBy == "" {
		errs = append(errs, errors.New("requestedBy is required"))
	}
	for _, b := range a.Brokers {
		if b < 0 {
			errs = append(errs, fmt.Errorf("broker %d: must not be negative", b))
		}
	}
	switch a.Verb {
	case VerbRestart:
		if a.MaxBatch < 0 {
			errs = append(errs, fmt.Errorf("maxBatch %d: must not be negative", a.MaxBatch))
		}
	case VerbUpgrade:
		if !versionPattern.MatchString(a.Version) {
			errs = append(errs, fmt.Errorf("version %q: want a Kafka version like 3.7.1", a.Version))
		}
	case VerbExpand:
		if len(a.Brokers) != 1 {
			errs = append(errs, fmt.Errorf("expand takes exactly one broker, got %v", a.Brokers))
		}
	case VerbCleanerCheck, VerbAbort, VerbHealthCheck:
	default:
		errs = append(errs, fmt.Errorf("unknown verb %q", a.Verb))
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

// Operator submits actions to cluster entities and lists them. internal/app
// implements it with a Temporal client.
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
	if errors.Is(err, ErrRefused) {
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

// ErrRefused marks an action the cluster's entity refused: nothing was
// started. Operator implementations wrap it.
var ErrRefused = errors.New("refused")
