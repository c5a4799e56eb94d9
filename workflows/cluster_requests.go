package workflows

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"
)

// ExpansionRequest asks the entity to grow a broker's data volume now.
type ExpansionRequest struct {
	Broker      int32  `json:"broker"`
	RequestedBy string `json:"requestedBy"`
	Reason      string `json:"reason,omitempty"`
}

// CleanerCheckRequest asks the entity to check the log cleaner now (and
// restart, gated, the brokers whose cleaner is unhealthy).
type CleanerCheckRequest struct {
	Brokers     []int32 `json:"brokers,omitempty"`
	RequestedBy string  `json:"requestedBy"`
}

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

// registerRequests sets the entity's updates for expansions, cleaner
// checks and health checks. Entities recorded before the health loop
// existed refuse them until their next continue-as-new.
func (e *entity) registerRequests(ctx workflow.Context) error {
	spec, st := &e.spec, &e.st
	needsLoop := func(what string) error {
		if e.health == nil {
			return fmt.Errorf("cluster %s's entity predates %s; it accepts them after its next continue-as-new", spec.ID, what)
		}
		return nil
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRequestExpansion,
		func(ctx workflow.Context, req ExpansionRequest) (Operation, error) {
			broker := []int32{req.Broker}
			if op, ok := st.covering(OpVolumeExpansion, broker); ok {
				op.Existing = true
				return op, nil
			}
			op := Operation{Kind: OpVolumeExpansion, Brokers: broker, RequestedBy: req.RequestedBy, Reason: req.Reason, Requested: true}
			if bs := st.healthOf(req.Broker); bs != nil {
				op.GrowthBytesPerSec = bs.GrowthBytesPerSec
			}
			return e.enqueue(ctx, op), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, req ExpansionRequest) error {
			if err := needsLoop("requested expansions"); err != nil {
				return err
			}
			switch _, ok := spec.Broker(req.Broker); {
			case req.RequestedBy == "":
				return errors.New("requestedBy is required: say who asks for the expansion")
			case !ok:
				return fmt.Errorf("broker %d is not in cluster %s (brokers %v)", req.Broker, spec.ID, spec.BrokerIDs())
			}
			if bs := st.healthOf(req.Broker); bs != nil && bs.Cooldown != nil && workflow.Now(ctx).Before(bs.Cooldown.Until) {
				return fmt.Errorf("broker %d's volume %s was modified less than %s ago: EBS allows the next change at %s",
					req.Broker, bs.Cooldown.VolumeID, spec.Health.WithDefaults().VolumeCooldown, bs.Cooldown.Until.Format(time.RFC3339))
			}
			return nil
		}},
	); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateRequestCleanerCheck,
		func(ctx workflow.Context, req CleanerCheckRequest) (Operation, error) {
			if op, ok := st.covering(OpCleanerHealth, req.Brokers); ok {
				op.Existing = true
				return op, nil
			}
			return e.enqueue(ctx, Operation{Kind: OpCleanerHealth, Brokers: req.Brokers, RequestedBy: req.RequestedBy}), nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, req CleanerCheckRequest) error {
			if err := needsLoop("cleaner checks"); err != nil {
				return err
			}
			if req.RequestedBy == "" {
				return errors.New("requestedBy is required: say who asks for the cleaner check")
			}
			for _, b := range req.Brokers {
				if _, ok := spec.Broker(b); !ok {
					return fmt.Errorf("broker %d is not in cluster %s (brokers %v)", b, spec.ID, spec.BrokerIDs())
				}
			}
			return nil
		}},
	); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateHealthCheck,
		func(ctx workflow.Context, req HealthCheckRequest) (HealthCheckResult, error) {
			target := e.health.askTick()
			before := st.health().Found
			workflow.GetLogger(ctx).Info("health check asked", "Cluster", spec.ID, "By", req.RequestedBy)
			if err := workflow.Await(ctx, func() bool { return e.health.ticks >= target || e.health.stopped }); err != nil {
				return HealthCheckResult{}, err
			}
			hs := st.health()
			return HealthCheckResult{At: hs.LastTick, Error: hs.Error, Findings: hs.since(before)}, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(_ workflow.Context, req HealthCheckRequest) error {
			if err := needsLoop("health checks"); err != nil {
				return err
			}
			if req.RequestedBy == "" {
				return errors.New("requestedBy is required: say who asks for the health check")
			}
			return nil
		}},
	)
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
