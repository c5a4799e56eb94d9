package loadprofile

import (
	"context"
	"time"

	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/workflows"
)

// takeOffline waits until half the round's records are acknowledged,
// takes the Runner's broker offline behind kfleet's back, and watches
// kfleet have it back: the entity's recovery operation for the broker
// (asked after the broker went down) to its end, and the broker running
// again as the BrokerOffline sees it. Kfleet is not told: it must sense
// the loss itself.
func (r *Runner) takeOffline(ctx context.Context, runs []*tenantRun, asked int) *OfflineReport {
	o := &OfflineReport{Broker: r.OfflineBroker}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for acked(runs) < int64(asked)/2 && !allProduced(runs) {
		select {
		case <-ctx.Done():
			o.Skipped = "the round ended first"
			return o
		case <-tick.C:
		}
	}
	o.DownAt = time.Now()
	if err := r.Offline.TakeOffline(ctx, r.Cluster, r.OfflineBroker); err != nil {
		o.Skipped = "taking it offline failed: " + err.Error()
		return o
	}
	r.logf("broker %d taken offline with %d of %d record(s) acknowledged", r.OfflineBroker, acked(runs), asked)
	wait := r.OfflineWait
	if wait <= 0 {
		wait = 2 * time.Minute
	}
	deadline := time.Now().Add(wait)
	poll := time.NewTicker(200 * time.Millisecond)
	defer poll.Stop()
	for time.Now().Before(deadline) {
		if o.BackAt.IsZero() {
			if up, err := r.Offline.Running(ctx, r.Cluster, r.OfflineBroker); err == nil && up {
				o.BackAt = time.Now()
				r.logf("broker %d running again after %.1f s", r.OfflineBroker, o.BackAt.Sub(o.DownAt).Seconds())
			}
		}
		if st, err := entity.ClusterStatus(ctx, r.Temporal, r.Cluster); err == nil {
			o.observe(st)
		}
		if !o.BackAt.IsZero() && !o.RecoveryEndedAt.IsZero() {
			break
		}
		select {
		case <-ctx.Done():
			return o
		case <-poll.C:
		}
	}
	return o
}

// observe takes the broker's recovery from the entity's status: the
// first recovery of the broker asked for after it went down.
func (o *OfflineReport) observe(st workflows.ClusterStatus) {
	ops := append(append([]workflows.Operation{}, st.Urgent...), st.History...)
	if st.Running != nil {
		ops = append(ops, *st.Running)
	}
	for _, op := range ops {
		if op.Kind != workflows.OpRecovery || op.RequestedAt.Before(o.DownAt) || !covers(op.Brokers, o.Broker) {
			continue
		}
		if o.Recovery != "" && o.Recovery != op.ID {
			continue
		}
		o.Recovery, o.Status, o.Outcome = op.ID, op.Status, op.Outcome
		o.RecoveryStartedAt, o.RecoveryEndedAt = op.StartedAt, op.FinishedAt
		return
	}
}

func covers(brokers []int32, b int32) bool {
	if len(brokers) == 0 {
		return true // every broker
	}
	for _, x := range brokers {
		if x == b {
			return true
		}
	}
	return false
}

func acked(runs []*tenantRun) int64 {
	var n int64
	for _, tr := range runs {
		n += tr.acked.Load()
	}
	return n
}

func allProduced(runs []*tenantRun) bool {
	for _, tr := range runs {
		if !tr.producerDone.Load() {
			return false
		}
	}
	return true
}
