package activities

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kfleet/kfleet/internal/fleet"
)

// Fencing lists a KRaft cluster's registered brokers with whether each is
// fenced (DescribeCluster v2 with IncludeFencedBrokers; *kafka.Pool).
type Fencing interface {
	BrokerFencing(ctx context.Context, spec fleet.ClusterSpec) ([]fleet.BrokerFencing, error)
}

// registrationPoll paces the wait for one broker's registration.
const registrationPoll = 200 * time.Millisecond

// maxFencingFailures is how many polls in a row may fail before a wait on
// fencing gives up: a request that meets the broker which just crashed
// fails once, and must not cost the sensing a retry's backoff.
const maxFencingFailures = 3

// registrations is where the cluster's broker registrations are read: a
// KRaft cluster's from its brokers' fencing, and a migrating one's too
// from dual-write on (every broker registered with the controllers, and
// phase 3 takes them out of ZooKeeper); every other one's (ZooKeeper, a
// migration before dual-write) from ZooKeeper, as before KRaft existed.
func (a *Activities) registrations(spec fleet.ClusterSpec) (Registrations, error) {
	if !spec.RegistersWithKRaft() {
		return a.ZooKeeper, nil
	}
	if a.Fencing == nil {
		return nil, badInput(fmt.Errorf("cluster %s: a KRaft cluster's registrations need a fencing client, and this worker has none", spec.ID))
	}
	return fencingRegistrations{fencing: a.Fencing, poll: spec.Health.WithDefaults().FencingPoll}, nil
}

// fencingRegistrations is a KRaft cluster's registrations as Registrations
// gives ZooKeeper's: a broker is registered when it is listed and not
// fenced (fleet.Unfenced). KRaft has no watch, so the waits poll every
// poll (about the heartbeat interval): a crashed broker is fenced one
// session timeout after its last heartbeat and seen at most one poll
// later.
type fencingRegistrations struct {
	fencing Fencing
	poll    time.Duration
}

func (r fencingRegistrations) BrokerIDs(ctx context.Context, spec fleet.ClusterSpec) ([]int32, error) {
	brokers, err := r.fencing.BrokerFencing(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: registrations from fencing: %w", spec.ID, err)
	}
	return fleet.Unfenced(brokers), nil
}

// WaitBrokerRegistered returns once broker is registered and unfenced;
// tick is called every interval while it waits.
func (r fencingRegistrations) WaitBrokerRegistered(ctx context.Context, spec fleet.ClusterSpec, broker int32, interval time.Duration, tick func()) error {
	// A broker kfleet has just started is waited for at a faster pace
	// than sensing's: a roll would otherwise lose up to a fencing poll
	// (2 s) a broker. The polls are DescribeCluster requests to the
	// cluster, which no Temporal bill counts.
	r.poll = min(r.poll, registrationPoll)
	_, err := r.wait(ctx, spec, interval, tick, func(ids []int32) bool { return slices.Contains(ids, broker) })
	if err != nil {
		return fmt.Errorf("cluster %s broker %d: wait for registration: %w", spec.ID, broker, err)
	}
	return nil
}

// WaitBrokersChanged returns the unfenced brokers once they differ from
// known; tick is called every interval while it waits.
func (r fencingRegistrations) WaitBrokersChanged(ctx context.Context, spec fleet.ClusterSpec, known []int32, interval time.Duration, tick func()) ([]int32, error) {
	want := slices.Sorted(slices.Values(known))
	return r.wait(ctx, spec, interval, tick, func(ids []int32) bool { return !slices.Equal(ids, want) })
}

// wait polls the unfenced brokers until done holds for them, and returns
// them. A poll that fails is tried again at the next one; only
// maxFencingFailures in a row end the wait.
func (r fencingRegistrations) wait(ctx context.Context, spec fleet.ClusterSpec, interval time.Duration, tick func(), done func([]int32) bool) ([]int32, error) {
	poll := time.NewTicker(r.poll)
	defer poll.Stop()
	beat := time.NewTicker(interval)
	defer beat.Stop()
	failures := 0
	for {
		ids, err := r.BrokerIDs(ctx, spec)
		switch {
		case err == nil && done(ids):
			return ids, nil
		case err == nil:
			failures = 0
		case ctx.Err() != nil:
			return nil, fmt.Errorf("cluster %s: %w", spec.ID, ctx.Err())
		default:
			if failures++; failures >= maxFencingFailures {
				return nil, fmt.Errorf("%w (%d polls in a row failed)", err, failures)
			}
		}
	wait:
		for {
			select {
			case <-poll.C:
				break wait
			case <-beat.C:
				tick()
			case <-ctx.Done():
				return nil, fmt.Errorf("cluster %s: watch fencing: %w", spec.ID, ctx.Err())
			}
		}
	}
}
