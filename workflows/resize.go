package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// Growing, shrinking and evening out a cluster (OPERATIONS.md
// "Provisioning and hosts"), as the runbook goes:
//
//   - add brokers: launch their hosts and data volumes, configure and
//     start Kafka there, check they registered with the configuration
//     kfleet wrote, add them to the entity's spec, then move partitions
//     onto them;
//   - remove a broker: refuse if the brokers left would be fewer than the
//     largest replication factor; drain it; check it holds nothing; stop
//     it, terminate its host, delete its volume, take it out of the spec;
//   - rebalance: move partitions until brokers' replica and preferred
//     leader counts are within 10% of each other.
//
// Partitions move in one activity (activities.Rebalance) under a
// replication throttle, a bounded number at a time, only while the
// availability gate is open; throttles are cleared at the end, and when
// it is aborted the moves under way are cancelled too. A step that fails
// for good pauses for a human: resume or abort.

// MoveParams tune how partitions move; zero values are the defaults
// (activities.DefaultThrottleBytesPerSec, DefaultMovesPerBroker).
type MoveParams struct {
	ThrottleBytesPerSec int64 `json:"throttleBytesPerSec,omitempty"`
	MovesPerBroker      int   `json:"movesPerBroker,omitempty"`
}

func (p MoveParams) validate() error {
	switch {
	case p.ThrottleBytesPerSec < 0:
		return fmt.Errorf("throttleBytesPerSec %d: must not be negative", p.ThrottleBytesPerSec)
	case p.ThrottleBytesPerSec > 0 && p.ThrottleBytesPerSec < 1024:
		return fmt.Errorf("throttleBytesPerSec %d: under 1 KiB/s a move never ends", p.ThrottleBytesPerSec)
	case p.MovesPerBroker < 0 || p.MovesPerBroker > 100:
		return fmt.Errorf("movesPerBroker %d: want 1-100 (0: the default, %d)", p.MovesPerBroker, activities.DefaultMovesPerBroker)
	}
	return nil
}

// ResizeInput is what the entity gives a resize: the operation and the
// cluster as it is.
type ResizeInput struct {
	Spec        fleet.ClusterSpec `json:"spec"`
	OperationID string            `json:"operationId"`
	RequestedBy string            `json:"requestedBy"`
	// Brokers: the one to remove (RemoveBrokerWorkflow).
	Brokers []int32 `json:"brokers,omitempty"`
	// Add are an addition's parameters, Move how partitions move.
	Add  AddBrokersParams `json:"add,omitzero"`
	Move MoveParams       `json:"move,omitzero"`
}

// ResizeResult is what a resize did.
type ResizeResult struct {
	// Added are the brokers added; Removed the one removed.
	Added   []int32 `json:"added,omitempty"`
	Removed *int32  `json:"removed,omitempty"`
	// Hosts launched or terminated, Volumes created or deleted.
	Hosts   int                        `json:"hosts,omitempty"`
	Volumes int                        `json:"volumes,omitempty"`
	Moves   activities.RebalanceResult `json:"moves"`
}

// ResizeProgress is what the progress query answers.
type ResizeProgress struct {
	Step   string `json:"step"`
	Paused *Pause `json:"paused,omitempty"`
}

// resizing is one resize under way: its progress and its human gate.
type resizing struct {
	in       ResizeInput
	what     string
	progress ResizeProgress
	gate     *humanGate
	res      ResizeResult
}

func newResizing(ctx workflow.Context, in ResizeInput, what string) (*resizing, error) {
	z := &resizing{in: in, what: what}
	z.gate = &humanGate{cluster: in.Spec.ID, what: what}
	z.gate.changed = func(ctx workflow.Context) {
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s** %s `%s`: %s%s.", in.Spec.ID, what, in.OperationID, z.progress.Step, pausedSuffix(z.gate.paused)))
	}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (ResizeProgress, error) {
		p := z.progress
		p.Paused = z.gate.paused
		return p, nil
	}); err != nil {
		return nil, err
	}
	return z, z.gate.register(ctx)
}

// step runs a step, asking a human when it fails: resume runs it again.
func (z *resizing) step(ctx workflow.Context, name string, run func(ctx workflow.Context) error) error {
	z.progress.Step = name
	z.gate.changed(ctx)
	for {
		err := run(ctx)
		if err == nil {
			return nil
		}
		if _, err := z.gate.ask(ctx, Pause{Broker: -1, Step: name, Reason: activityMessage(err)}); err != nil {
			return err
		}
	}
}

// parallel runs one step per broker together; the failed ones, after a
// human resumed, run again (the others are done).
func (z *resizing) parallel(ctx workflow.Context, name string, brokers []int32, run func(ctx workflow.Context, b int32) error) error {
	done := map[int32]bool{}
	return z.step(ctx, name, func(ctx workflow.Context) error {
		var failed []string
		wg := workflow.NewWaitGroup(ctx)
		for _, b := range brokers {
			if done[b] {
				continue
			}
			wg.Add(1)
			workflow.Go(ctx, func(ctx workflow.Context) {
				defer wg.Done()
				if err := run(ctx, b); err != nil {
					failed = append(failed, fmt.Sprintf("broker %d: %s", b, activityMessage(err)))
					return
				}
				done[b] = true
			})
		}
		wg.Wait(ctx)
		if len(failed) == 0 {
			return ctx.Err()
		}
		slices.Sort(failed) // they end in any order; the pause reads the same
		return fmt.Errorf("%s", strings.Join(failed, "; "))
	})
}

// moveContext is the options of the partition moves: hours to run, a
// heartbeat every poll (recorded at most once per 48 s), retried after a
// crash (the retry plans from where the cluster is), a human after that.
func moveContext(ctx workflow.Context, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 7 * 24 * time.Hour,
		HeartbeatTimeout:    time.Minute,
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, MaximumInterval: time.Minute, MaximumAttempts: 10,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput, activities.ErrTypeGateHeld}},
	})
}

// rebalance moves partitions onto spec's brokers and off leaving. If it
// ends without finishing (aborted, cancelled), the moves under way are
// cancelled and every throttle cleared.
func (z *resizing) rebalance(ctx workflow.Context, spec fleet.ClusterSpec, leaving []int32) error {
	throttle := z.in.Move.ThrottleBytesPerSec
	if throttle == 0 {
		throttle = activities.DefaultThrottleBytesPerSec
	}
	name := fmt.Sprintf("moving partitions (throttle %s/s per broker)", fleet.Bytes(throttle))
	if len(leaving) > 0 {
		name = fmt.Sprintf("draining broker(s) %v (throttle %s/s per broker)", leaving, fleet.Bytes(throttle))
	}
	err := z.step(ctx, name, func(ctx workflow.Context) error {
		return workflow.ExecuteActivity(moveContext(ctx, name), a.Rebalance, activities.RebalanceInput{Spec: spec, Leaving: leaving,
			ThrottleBytesPerSec: z.in.Move.ThrottleBytesPerSec, MovesPerBroker: z.in.Move.MovesPerBroker}).Get(ctx, &z.res.Moves)
	})
	if err != nil {
		dctx, _ := workflow.NewDisconnectedContext(ctx)
		var cancelled int
		if endErr := workflow.ExecuteActivity(provisionContext(dctx, 5*time.Minute, "cancel the moves under way, clear the throttles"), a.EndRebalance,
			activities.EndRebalanceInput{Spec: spec, Cancel: true}).Get(dctx, &cancelled); endErr != nil {
			workflow.GetLogger(ctx).Error("could not end the rebalance: throttles may be left", "Cluster", spec.ID, "Error", endErr)
		}
		return err
	}
	return nil
}

// RebalanceWorkflow evens out a cluster's replicas and preferred leaders.
func RebalanceWorkflow(ctx workflow.Context, in ResizeInput) (ResizeResult, error) {
	z, err := newResizing(ctx, in, "rebalance")
	if err != nil {
		return ResizeResult{}, err
	}
	if err := z.rebalance(ctx, in.Spec, nil); err != nil {
		return z.res, err
	}
	z.progress.Step = "done: " + z.res.Moves.After.String()
	z.gate.changed(ctx)
	return z.res, nil
}

// RemoveBrokerWorkflow drains a broker and removes it from its cluster.
func RemoveBrokerWorkflow(ctx workflow.Context, in ResizeInput) (ResizeResult, error) {
	z, err := newResizing(ctx, in, "broker removal")
	if err != nil {
		return ResizeResult{}, err
	}
	spec := in.Spec
	if len(in.Brokers) != 1 {
		return z.res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("cluster %s: a removal takes one broker, not %v", spec.ID, in.Brokers), ErrTypeBadRequest, nil)
	}
	b := in.Brokers[0]
	bin := activities.BrokerInput{Spec: spec, Broker: b, Reason: in.OperationID + ": remove the broker, requested by " + in.RequestedBy,
		GracePeriodSeconds: fleet.GracePeriodSeconds(0)}
	var check activities.RemovalCheck
	z.progress.Step = "checking the brokers left can hold every partition"
	z.gate.changed(ctx)
	// A refusal ends the removal here, nothing changed.
	if err := workflow.ExecuteActivity(provisionContext(ctx, 2*time.Minute, fmt.Sprintf("check broker %d can leave", b)), a.CheckBrokerRemoval, bin).Get(ctx, &check); err != nil {
		return z.res, err
	}
	if err := z.rebalance(ctx, spec, []int32{b}); err != nil {
		return z.res, err
	}
	if err := z.step(ctx, fmt.Sprintf("checking broker %d holds no replica", b), func(ctx workflow.Context) error {
		if err := workflow.ExecuteActivity(provisionContext(ctx, 2*time.Minute, fmt.Sprintf("check broker %d is empty", b)), a.CheckBrokerRemoval, bin).Get(ctx, &check); err != nil {
			return err
		}
		if check.Replicas > 0 {
			return fmt.Errorf("broker %d still holds %d replica(s): resume drains it again", b, check.Replicas)
		}
		return nil
	}); err != nil {
		return z.res, err
	}
	notifyEntity(ctx, b, true)
	for _, s := range []struct {
		name string
		run  func(ctx workflow.Context) error
	}{
		{fmt.Sprintf("stopping broker %d", b), func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(brokerActivityContext(ctx, 10*time.Minute, fmt.Sprintf("stop broker %d", b)), a.StopBroker, bin).Get(ctx, nil)
		}},
		{fmt.Sprintf("terminating broker %d's host", b), func(ctx workflow.Context) error {
			var r activities.Removed
			err := workflow.ExecuteActivity(provisionContext(ctx, 30*time.Minute, fmt.Sprintf("terminate broker %d's host", b)), a.TerminateHosts,
				activities.RemoveInput{Cluster: spec.ID, Role: cloud.RoleBroker, Broker: &b}).Get(ctx, &r)
			z.res.Hosts += r.Removed
			return err
		}},
		{fmt.Sprintf("deleting broker %d's data volume", b), func(ctx workflow.Context) error {
			var r activities.Removed
			err := workflow.ExecuteActivity(provisionContext(ctx, 30*time.Minute, fmt.Sprintf("delete broker %d's data volume", b)), a.DeleteDataVolumes,
				activities.RemoveInput{Cluster: spec.ID, Broker: &b}).Get(ctx, &r)
			z.res.Volumes += r.Removed
			return err
		}},
		{fmt.Sprintf("taking broker %d out of the cluster's spec", b), func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(provisionContext(ctx, time.Minute, fmt.Sprintf("take broker %d out of the spec", b)), a.LeaveSpec,
				activities.LeaveInput{Cluster: spec.ID, Broker: b, Address: check.Address}).Get(ctx, nil)
		}},
	} {
		if err := z.step(ctx, s.name, s.run); err != nil {
			return z.res, err
		}
	}
	z.res.Removed = &b
	z.progress.Step = fmt.Sprintf("broker %d removed: %d partition(s) moved off it", b, z.res.Moves.Moved)
	z.gate.changed(ctx)
	return z.res, nil
}
