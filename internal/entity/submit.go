package entity

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// HealthCheck runs a health tick of the cluster now and returns what it
// found.
func HealthCheck(ctx context.Context, c client.Client, cluster string, req workflows.HealthCheckRequest) (workflows.HealthCheckResult, error) {
	var res workflows.HealthCheckResult
	return res, control(ctx, c, cluster, workflows.UpdateHealthCheck, req, &res)
}

// ActionRequest is the operation request an action asks for; ok is false
// for the verbs that are no operation (abort, health-check). An unknown
// verb is refused.
func ActionRequest(act activities.Action) (req workflows.Request, ok bool, err error) {
	switch act.Verb {
	case activities.VerbAbort, activities.VerbHealthCheck:
		return workflows.Request{}, false, nil
	}
	k, err := workflows.KindOfVerb(act.Verb)
	if err != nil {
		return workflows.Request{}, false, fmt.Errorf("%w: %w", fleet.ErrRefused, err)
	}
	req = workflows.Request{Kind: k.Name(), RequestedBy: act.RequestedBy, ApprovedBy: act.ApprovedBy, Reason: act.Reason,
		Brokers: act.Brokers, Params: act.Params}
	if req, err = resolvePlan(req); err != nil { // tenants.go
		return req, true, fmt.Errorf("%s: %w", act.Verb, err)
	}
	if err := k.Check(req); err != nil {
		return req, true, fmt.Errorf("%s: %w: %w", act.Verb, fleet.ErrRefused, err)
	}
	// A kind with several verbs: the parameters must ask for what the
	// verb says (a topic-create carrying a deletion would pass without
	// the approval a topic-delete needs).
	v, err := k.VerbOf(req)
	if err != nil {
		return req, true, fmt.Errorf("%s: %w: %w", act.Verb, fleet.ErrRefused, err)
	}
	if v != act.Verb {
		return req, true, fmt.Errorf("%s: %w: its parameters ask for a %s", act.Verb, fleet.ErrRefused, v)
	}
	return req, true, nil
}

// CheckAction refuses an action that is invalid on its face, before an
// approval or a schedule is made of it.
func CheckAction(act activities.Action) error {
	if err := act.Validate(); err != nil {
		return fmt.Errorf("%w: %w", fleet.ErrRefused, err)
	}
	_, _, err := ActionRequest(act)
	return err
}

// Submit runs an operator's action through the cluster's entity (or, for
// an abort, the operation waiting for a human) and says what happened.
func Submit(ctx context.Context, c client.Client, act activities.Action) (activities.Submitted, error) {
	if err := CheckAction(act); err != nil {
		return activities.Submitted{}, err
	}
	switch act.Verb {
	case activities.VerbAbort:
		p, err := Decide(ctx, c, act.Cluster, act.OperationID, workflows.Decision{Action: workflows.DecisionAbort, By: act.RequestedBy, Reason: act.Reason})
		if err != nil {
			return activities.Submitted{}, err
		}
		return activities.Submitted{Text: fmt.Sprintf("aborted the operation paused at broker %d (%s) on %s", p.Broker, p.Step, act.Cluster)}, nil
	case activities.VerbHealthCheck:
		res, err := HealthCheck(ctx, c, act.Cluster, workflows.HealthCheckRequest{RequestedBy: act.RequestedBy})
		if err != nil {
			return activities.Submitted{}, err
		}
		return activities.Submitted{Text: describeHealthCheck(act.Cluster, res)}, nil
	}
	req, _, _ := ActionRequest(act)
	op, err := Request(ctx, c, act.Cluster, req)
	if err != nil {
		return activities.Submitted{}, err
	}
	verb := "queued"
	if op.Existing {
		verb = "joined"
	}
	by := "asked by " + act.RequestedBy
	if op.ApprovedBy != "" && !op.Existing {
		by += ", approved by " + op.ApprovedBy
	}
	return activities.Submitted{OperationID: op.ID, Kind: op.Kind, Existing: op.Existing,
		Text: fmt.Sprintf("%s %s %s on %s (%s)", verb, op.Kind, op.ID, act.Cluster, by)}, nil
}

func describeHealthCheck(cluster string, res workflows.HealthCheckResult) string {
	if res.Error != "" {
		return fmt.Sprintf("%s: health check failed: %s", cluster, res.Error)
	}
	if len(res.Findings) == 0 {
		return fmt.Sprintf("%s: healthy", cluster)
	}
	parts := make([]string, len(res.Findings))
	for i, f := range res.Findings {
		parts[i] = fmt.Sprintf("%s on broker %d (%s)", f.Kind, f.Broker, f.Reason)
		if f.Operation != "" {
			parts[i] += " -> " + f.Operation
		}
	}
	return fmt.Sprintf("%s: %d finding(s): %s", cluster, len(res.Findings), strings.Join(parts, "; "))
}

// Operator is activities.Operator over a Temporal client: what approvals,
// schedules and sweeps use to reach cluster entities.
type Operator struct{ Client client.Client }

// Submit implements activities.Operator; refusals wrap fleet.ErrRefused.
func (o Operator) Submit(ctx context.Context, act activities.Action) (activities.Submitted, error) {
	s, err := Submit(ctx, o.Client, act)
	if errors.Is(err, fleet.ErrUnknownCluster) {
		err = fmt.Errorf("%w: %w", fleet.ErrRefused, err)
	}
	return s, err
}

// Clusters implements activities.Operator.
func (o Operator) Clusters(ctx context.Context) ([]string, error) {
	cs, err := ListClusters(ctx, o.Client)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(cs))
	for i, cl := range cs {
		ids[i] = cl.ID
	}
	return ids, nil
}

// Register implements activities.Registry: it registers the cluster (its
// entity starts, or takes the spec).
func (o Operator) Register(ctx context.Context, spec fleet.ClusterSpec) error {
	if err := RegisterCluster(ctx, o.Client, spec); err != nil {
		if errors.Is(err, fleet.ErrRefused) {
			return err
		}
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			return fmt.Errorf("%w: %w", fleet.ErrRefused, err)
		}
		return err
	}
	return nil
}

// Registered implements activities.Registry: whether the cluster's entity
// runs (asked of the server, not of the eventually consistent visibility).
func (o Operator) Registered(ctx context.Context, cluster string) (bool, error) {
	return Registered(ctx, o.Client, cluster)
}
