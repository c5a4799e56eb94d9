package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"
)

// HealthCheckRequest asks for a health tick now (the fleet sweep).
type HealthCheckRequest struct {
	RequestedBy string `json:"requestedBy"`
}

// HealthCheckResult is the tick's outcome: the findings it recorded.
type HealthCheckResult struct {
	At       time.Time `json:"at"`
	Error    string    `json:"error,omitempty"`
	Findings []Finding `json:"findings,omitempty"`
}

// registerRequests sets the entity's request update (every operation kind
// through one door, kinds.go), the per-kind updates clients used before it
// (histories recorded with them replay), and the health check.
func (e *entity) registerRequests(ctx workflow.Context) error {
	validate := func(ctx workflow.Context, req Request) error {
		if e.deleted {
			return fmt.Errorf("cluster %s is deleted", e.spec.ID)
		}
		k, err := KindNamed(req.Kind)
		if err != nil {
			return err
		}
		_, _, err = k.admit(e.admission(ctx), req)
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRequest, e.request,
		workflow.UpdateHandlerOptions{Validator: validate}); err != nil {
		return err
	}
	for _, l := range legacyRequests {
		if err := workflow.SetUpdateHandlerWithOptions(ctx, l.update,
			func(ctx workflow.Context, req legacyRequest) (Operation, error) {
				return e.request(ctx, req.request(l.kind))
			},
			workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, req legacyRequest) error { return validate(ctx, req.request(l.kind)) }},
		); err != nil {
			return err
		}
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateHealthCheck,
		func(ctx workflow.Context, req HealthCheckRequest) (HealthCheckResult, error) {
			target := e.health.askTick()
			st := &e.st
			before := st.health().Found
			workflow.GetLogger(ctx).Info("health check asked", "Cluster", e.spec.ID, "By", req.RequestedBy)
			if err := workflow.Await(ctx, func() bool { return e.health.ticks >= target || e.health.stopped }); err != nil {
				return HealthCheckResult{}, err
			}
			hs := st.health()
			return HealthCheckResult{At: hs.LastTick, Error: hs.Error, Findings: hs.since(before)}, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, req HealthCheckRequest) error {
			if e.health == nil {
				return fmt.Errorf("cluster %s's entity predates health checks; it accepts them after its next continue-as-new", e.spec.ID)
			}
			if req.RequestedBy == "" {
				return errors.New("requestedBy is required: say who asks for the health check")
			}
			return nil
		}},
	)
}

// legacyRequest is the union of the per-kind requests of the updates
// before UpdateRequest (request-restart, request-upgrade,
// request-expansion, request-cleaner-check).
type legacyRequest struct {
	RequestedBy string  `json:"requestedBy"`
	Brokers     []int32 `json:"brokers,omitempty"`
	Broker      *int32  `json:"broker,omitempty"`
	Reason      string  `json:"reason,omitempty"`
	MaxBatch    int     `json:"maxBatch,omitempty"`
	Version     string  `json:"version,omitempty"`
	FromIBP     string  `json:"fromIbp,omitempty"`
	TargetIBP   string  `json:"targetIbp,omitempty"`
}

var legacyRequests = []struct{ update, kind string }{
	{"request-restart", OpRollingRestart},
	{"request-upgrade", OpRollingUpgrade},
	{"request-expansion", OpVolumeExpansion},
	{"request-cleaner-check", OpCleanerHealth},
}

func (l legacyRequest) request(kind string) Request {
	req := Request{Kind: kind, RequestedBy: l.RequestedBy, Brokers: l.Brokers, Reason: l.Reason}
	if l.Broker != nil {
		req.Brokers = []int32{*l.Broker}
	}
	switch kind {
	case OpRollingRestart:
		req.Params = mustJSON(RestartParams{MaxBatch: l.MaxBatch})
	case OpRollingUpgrade:
		req.Params = mustJSON(UpgradeParams{Version: l.Version, FromIBP: l.FromIBP, TargetIBP: l.TargetIBP})
	}
	return req
}

// healthOf is a broker's health state, nil when none is known.
func (st *ClusterState) healthOf(broker int32) *BrokerHealthState {
	if st.Health == nil {
		return nil
	}
	i := slices.IndexFunc(st.Health.Brokers, func(b BrokerHealthState) bool { return b.Broker == broker })
	if i < 0 {
		return nil
	}
	return &st.Health.Brokers[i]
}
