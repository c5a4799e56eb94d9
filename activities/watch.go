package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kfleet/kfleet/internal/fleet"
)

// ErrTypeWorkerStopping is the (retryable) error type of a long wait given
// up because its worker is stopping: another worker takes the retry.
const ErrTypeWorkerStopping = "WorkerStopping"

// handedOver is the error of a cluster's long wait (what) given up because
// its worker is stopping: retryable, so another worker takes it at once.
func handedOver(cluster, what string) error {
	return temporal.NewApplicationError(fmt.Sprintf("cluster %s: %s handed over: worker stopping", cluster, what), ErrTypeWorkerStopping)
}

// WatchInput asks to be told when a cluster's broker registrations change.
type WatchInput struct {
	Spec fleet.ClusterSpec `json:"spec"`
	// Known is the set of registered broker ids the caller last saw.
	Known []int32 `json:"known"`
	// Initial answers at once with the registrations now: the caller has no
	// baseline yet.
	Initial bool `json:"initial,omitempty"`
}

// BrokerChange is the set of registered brokers once it differs from Known.
type BrokerChange struct {
	// Registered are the broker ids under /brokers/ids, ascending.
	Registered []int32 `json:"registered"`
	// ObservedAt is when the watch saw that set.
	ObservedAt time.Time `json:"observedAt"`
}

// WatchBrokers blocks on a ZooKeeper children watch of the cluster's
// /brokers/ids until the registered set differs from in.Known, then returns
// it. It heartbeats while it waits; it is meant to run for hours under a
// long start-to-close timeout, retried forever, and to be started again by
// the caller after each change. A worker that is stopping ends the wait
// with a retryable error at once rather than hold the worker's shutdown.
func (a *Activities) WatchBrokers(ctx context.Context, in WatchInput) (BrokerChange, error) {
	if err := in.Spec.Validate(); err != nil {
		return BrokerChange{}, badInput(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopping := activity.GetWorkerStopChannel(ctx)
	go func() {
		select {
		case <-stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	regs, err := a.registrations(in.Spec)
	if err != nil {
		return BrokerChange{}, err
	}
	if in.Initial {
		ids, err := regs.BrokerIDs(ctx, in.Spec)
		if err != nil {
			return BrokerChange{}, err
		}
		return BrokerChange{Registered: ids, ObservedAt: time.Now()}, nil
	}
	heartbeat := fmt.Sprintf("watching %d registered brokers", len(in.Known))
	ids, err := regs.WaitBrokersChanged(ctx, in.Spec, in.Known, a.pollInterval(), func() {
		activity.RecordHeartbeat(ctx, heartbeat)
	})
	if err != nil {
		select {
		case <-stopping:
			return BrokerChange{}, handedOver(in.Spec.ID, "broker watch")
		default:
		}
		return BrokerChange{}, err
	}
	a.Log.Info().Str("cluster", in.Spec.ID).Ints32("known", in.Known).Ints32("registered", ids).Msg("broker registrations changed")
	return BrokerChange{Registered: ids, ObservedAt: time.Now()}, nil
}
