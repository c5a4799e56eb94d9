package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/workflows"
)

// RequestExpansion asks the cluster's entity to grow a broker's data volume
// now; refused (ErrRefused) inside the volume's cool-down.
func RequestExpansion(ctx context.Context, c client.Client, cluster string, req workflows.ExpansionRequest) (workflows.Operation, error) {
	return requestOperation(ctx, c, cluster, workflows.UpdateRequestExpansion, req)
}

// RequestCleanerCheck asks the cluster's entity to check the log cleaner
// now and restart, gated, the brokers whose cleaner is unhealthy.
func RequestCleanerCheck(ctx context.Context, c client.Client, cluster string, req workflows.CleanerCheckRequest) (workflows.Operation, error) {
	return requestOperation(ctx, c, cluster, workflows.UpdateRequestCleanerCheck, req)
}

// HealthCheck runs a health tick of the cluster now and returns what it
// found.
func HealthCheck(ctx context.Context, c client.Client, cluster string, req workflows.HealthCheckRequest) (workflows.HealthCheckResult, error) {
	var res workflows.HealthCheckResult
	return res, control(ctx, c, cluster, workflows.UpdateHealthCheck, req, &res)
}

// Submit runs an operator's action through the cluster's entity (or, for
// an abort, the operation waiting for a human) and says what happened.
func Submit(ctx context.Context, c client.Client, act activities.Action) (activities.Submitted, error) {
	if err := act.Validate(); err != nil {
		return activities.Submitted{}, fmt.Errorf("%w: %w", ErrRefused, err)
	}
	admitted := func(op workflows.Operation, err error) (activities.Submitted, error) {
		if err != nil {
			return activities.Submitted{}, err
		}
		verb := "queued"
		if op.Existing {
			verb = "joined"
		}
		return activities.Submitted{OperationID: op.ID, Kind: op.Kind, Existing: op.Existing,
			Text: fmt.Sprintf("%s %s %s on %s (asked by %s)", verb, op.Kind, op.ID, act.Cluster, act.RequestedBy)}, nil
	}
	switch act.Verb {
	case activities.VerbRestart:
		return admitted(RequestRestart(ctx, c, act.Cluster, workflows.RestartRequest{RequestedBy: act.RequestedBy, Brokers: act.Brokers, MaxBatch: act.MaxBatch}))
	case activities.VerbUpgrade:
		return admitted(RequestUpgrade(ctx, c, act.Cluster, workflows.UpgradeRequest{RequestedBy: act.RequestedBy, Version: act.Version}))
	case activities.VerbExpand:
		return admitted(RequestExpansion(ctx, c, act.Cluster, workflows.ExpansionRequest{Broker: act.Brokers[0], RequestedBy: act.RequestedBy, Reason: act.Reason}))
	case activities.VerbCleanerCheck:
		return admitted(RequestCleanerCheck(ctx, c, act.Cluster, workflows.CleanerCheckRequest{Brokers: act.Brokers, RequestedBy: act.RequestedBy}))
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
	return activities.Submitted{}, fmt.Errorf("%w: unknown verb %q", ErrRefused, act.Verb)
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

// Submit implements activities.Operator; refusals wrap activities.ErrRefused.
func (o Operator) Submit(ctx context.Context, act activities.Action) (activities.Submitted, error) {
	s, err := Submit(ctx, o.Client, act)
	if errors.Is(err, ErrRefused) || errors.Is(err, ErrUnknownCluster) || errors.Is(err, ErrNothingRunning) {
		err = fmt.Errorf("%w: %w", activities.ErrRefused, err)
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
