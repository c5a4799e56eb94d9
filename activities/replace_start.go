package activities

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/kfleet/kfleet/internal/cloud"
)

// A stopped host is started before it is replaced: a stop is often a
// human's or a maintenance event's, and the instance keeps its volume, its
// address and its host limits.

// InstanceStartInput asks StartStoppedInstance to bring a stopped host back.
type InstanceStartInput struct {
	BrokerInput
	// Timeout is how long the instance may take to run once started.
	Timeout time.Duration `json:"timeout"`
	// PollInterval paces the describes; 0: the worker's poll interval.
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

// InstanceStart is what became of a stopped host kfleet started.
type InstanceStart struct {
	// Back: the instance runs again; Kafka does not start with it.
	Back  bool   `json:"back"`
	State string `json:"state"`
	// Why it did not come back (no capacity, a timeout, terminated).
	Why string `json:"why,omitempty"`
}

// instanceStartProgress is StartStoppedInstance's heartbeat: what a retry
// resumes from.
type instanceStartProgress struct {
	State string `json:"state"`
	// Started is when StartInstances was first accepted; Pending that the
	// instance was seen pending since (one stopped again after it did not
	// come back).
	Started time.Time `json:"started,omitzero"`
	Pending bool      `json:"pending,omitempty"`
	// Fencing: it did not run in time and was stopped again, so that it
	// can never run beside its replacement.
	Fencing bool `json:"fencing,omitempty"`
}

// StartStoppedInstance starts the broker's stopped instance and waits until
// it runs (Back), or until it is clear it will not: EC2 has no capacity
// for it (InsufficientInstanceCapacity), it stopped again, it was
// terminated meanwhile, or it did not run within the timeout — then it is
// stopped again, so that it can never come up beside a replacement. An
// instance that runs already is Back; one stopping is waited for first.
func (a *Activities) StartStoppedInstance(ctx context.Context, in InstanceStartInput) (InstanceStart, error) {
	host, err := in.host()
	if err != nil {
		return InstanceStart{}, err
	}
	if a.Lifecycle == nil {
		return InstanceStart{}, badInput(errors.New("this worker has no EC2 client to start instances with"))
	}
	if in.Timeout <= 0 {
		return InstanceStart{}, badInput(fmt.Errorf("cluster %s broker %d: start timeout %s: want a positive duration", in.Spec.ID, in.Broker, in.Timeout))
	}
	id := host.InstanceID
	log := a.Log.With().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Str("instance", id).Logger()
	p, _ := resume[instanceStartProgress](ctx)
	var res InstanceStart
	err = a.poll(ctx, in.PollInterval, time.Time{}, func() (bool, error) {
		inst, err := a.Lifecycle.DescribeInstance(ctx, id)
		switch {
		case errors.Is(err, cloud.ErrInstanceNotFound):
			res = InstanceStart{State: InstanceNotFound, Why: "EC2 no longer knows it"}
			return true, nil
		case err != nil:
			return false, fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
		}
		p.State = inst.State
		timedOut := !p.Started.IsZero() && time.Since(p.Started) >= in.Timeout
		switch inst.State {
		case "running":
			if p.Fencing {
				// Stopped again at the timeout, yet running: EC2 took the
				// start after all. It is back.
				log.Info().Msg("the instance runs after all")
			}
			res = InstanceStart{Back: true, State: inst.State}
			return true, nil
		case "shutting-down", "terminated":
			res = InstanceStart{State: inst.State, Why: "it was terminated"}
			return true, nil
		case "stopped":
			switch {
			case p.Fencing || timedOut:
				res = InstanceStart{State: inst.State, Why: fmt.Sprintf("it did not run within %s of its start", in.Timeout)}
				return true, nil
			case p.Pending:
				res = InstanceStart{State: inst.State, Why: "it stopped again after its start (EC2 could not place it)"}
				return true, nil
			}
			change, err := a.Lifecycle.StartInstance(ctx, id)
			switch {
			case errors.Is(err, cloud.ErrCapacity):
				res = InstanceStart{State: inst.State, Why: "EC2 has no capacity to start it in " + cmp.Or(inst.AZ, "its zone") + " (" + err.Error() + ")"}
				return true, nil
			case errors.Is(err, cloud.ErrIncorrectState):
				return false, nil // it moved meanwhile: look again
			case err != nil:
				return false, fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
			}
			if p.Started.IsZero() {
				p.Started = time.Now()
			}
			log.Info().Str("from", change.Previous).Str("to", change.Current).Msg("started the broker's stopped instance")
			activity.RecordHeartbeat(ctx, p) // the start must outlive a crash that follows
		case "pending":
			p.Pending = true
			if p.Started.IsZero() {
				p.Started = time.Now() // started by someone else: it runs the same clock
			}
			if timedOut && !p.Fencing {
				if _, err := a.Lifecycle.StopInstance(ctx, id); err != nil {
					return false, fmt.Errorf("cluster %s broker %d: instance %s pending for %s: stop it before a replacement runs: %w",
						in.Spec.ID, in.Broker, id, in.Timeout, err)
				}
				p.Fencing = true
				log.Warn().Dur("timeout", in.Timeout).Msg("the instance did not run in time: stopped again so it never runs beside a replacement")
				activity.RecordHeartbeat(ctx, p)
			}
		}
		return false, nil // stopping, pending: wait
	}, func() any { return p })
	if err != nil {
		return InstanceStart{}, waitFailed(err, "cluster %s broker %d: start instance %s", in.Spec.ID, in.Broker, id)
	}
	log.Info().Bool("back", res.Back).Str("state", res.State).Str("why", res.Why).Msg("stopped instance")
	return res, nil
}
