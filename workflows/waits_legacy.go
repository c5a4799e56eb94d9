package workflows

import (
	"fmt"
	"strings"
	"time"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"go.temporal.io/sdk/workflow"
)

// The waits of rolls and recoveries as histories recorded before they
// became heartbeating activities (change ids roll-gate-wait-activity,
// recovery-grace-wait-activity, recovery-come-back-wait-activity) run
// them: a check or an observation and a durable timer per poll. Keep them
// unchanged while such a roll or recovery may still be running; the
// replay test (testdata/v2) holds them to it.

// pollGates is waitForGates for histories recorded before versionGateWait:
// a check and a durable timer per poll. Keep it unchanged while such a
// roll may still be running.
func (r *roll) pollGates(ctx workflow.Context) (rep activities.GateReport, skip bool, err error) {
	deadline := workflow.Now(ctx).Add(r.in.GateTimeout)
	samples := map[int32]fleet.RecoverySample{} // per recovering broker
	for {
		gin := activities.GateInput{Spec: r.in.Spec, Remaining: r.progress.Remaining, MaxBatch: r.in.MaxBatch}
		if rep, err = r.checkGates(ctx, gin); err != nil || len(rep.Blockers) == 0 {
			return rep, false, err
		}
		r.showBlockers(rep, nil)
		permanent := permanentBlocker(rep.Blockers)
		if r.recoveryProgressed(ctx, rep, samples) {
			// Recovery is moving: waiting is the right thing, however
			// long it takes. Only a stalled recovery needs a human.
			deadline = workflow.Now(ctx).Add(r.in.GateTimeout)
		}
		reasons := strings.Join(r.progress.Blockers, "; ")
		if permanent || !workflow.Now(ctx).Before(deadline) {
			why := fmt.Sprintf("broker %d: gates still shut after %s: %s", rep.Next, r.in.GateTimeout, reasons)
			if permanent {
				why = fmt.Sprintf("broker %d: a gate no wait can open: %s", rep.Next, reasons)
			}
			d, err := r.ask(ctx, rep.Next, StepWaitGates, why, true)
			if err != nil {
				return rep, false, err
			}
			if d.Action == DecisionSkip {
				return rep, true, nil
			}
			deadline = workflow.Now(ctx).Add(r.in.GateTimeout)
			continue // resume: re-check now
		}
		r.setDetails(ctx)
		if err := workflow.Sleep(ctx, r.in.GatePollInterval); err != nil {
			return rep, false, err
		}
	}
}

// recoveryProgressed (pollGates) compares the recovering brokers' logs
// left with the last check's samples, adds each one's rate and ETA to the
// progress blockers, and reports whether any of them advanced.
func (r *roll) recoveryProgressed(ctx workflow.Context, rep activities.GateReport, samples map[int32]fleet.RecoverySample) bool {
	now := workflow.Now(ctx)
	progressed := false
	for _, rec := range rep.Recovering {
		perMin, eta, ok := samples[rec.Broker].RateTo(now, rec.LogsLeft)
		samples[rec.Broker] = fleet.RecoverySample{At: now, Left: rec.LogsLeft}
		if !ok {
			continue
		}
		progressed = true
		r.progress.Blockers = append(r.progress.Blockers,
			fleet.GateRecovering+": "+fleet.RecoveryPace{Broker: rec.Broker, Left: rec.LogsLeft, PerMin: perMin, ETA: eta}.String())
	}
	return progressed
}

// pollGrace is grace for histories recorded before versionGraceWait: an
// observation and a durable timer per poll. Keep it unchanged while such a
// recovery may still be running.
func (r *recovery) pollGrace(ctx workflow.Context) (bool, error) {
	deadline := workflow.Now(ctx).Add(r.in.Grace)
	for {
		var obs activities.BrokerObservation
		if err := workflow.ExecuteActivity(r.actx(ctx, time.Minute, "observe the broker"), a.ObserveBroker, r.brokerInput()).Get(ctx, &obs); err != nil {
			return false, err
		}
		if obs.Registered {
			r.res.CameBack = true
			return true, nil
		}
		if fleet.ProcessUp(obs.Process) || !workflow.Now(ctx).Before(deadline) {
			return false, nil
		}
		if err := workflow.Sleep(ctx, min(r.in.PollInterval, deadline.Sub(workflow.Now(ctx)))); err != nil {
			return false, err
		}
	}
}

// pollRegistered is waitRegistered for histories recorded before
// versionComeBackWait: an observation and a durable timer per poll. Keep
// it unchanged while such a recovery may still be running.
func (r *recovery) pollRegistered(ctx workflow.Context, began time.Time) (bool, error) {
	var last fleet.RecoverySample // the last progress of log recovery
	lastProgress := began
	for {
		var obs activities.BrokerObservation
		if err := workflow.ExecuteActivity(r.actx(ctx, time.Minute, "observe the broker"), a.ObserveBroker, r.brokerInput()).Get(ctx, &obs); err != nil {
			return false, err
		}
		now := workflow.Now(ctx)
		switch {
		case obs.Registered:
			r.res.Register = now.Sub(began) - r.res.LogRecovery
			r.progress.LogsLeft, r.progress.Rate, r.progress.ETA = 0, "", ""
			return true, nil
		case obs.Recovering:
			if r.progress.Step != StepRecovering {
				r.step(ctx, StepRecovering)
			}
			// The pace is measured from the last progress, so a stall
			// shows as time since it, not as a slower rate.
			var perMin float64
			var eta time.Duration
			var paced, progressed bool
			if last, perMin, eta, paced, progressed = fleet.Advance(last, now, obs.LogsLeft); progressed {
				lastProgress = now
			}
			if paced {
				r.progress.Rate, r.progress.ETA = fmt.Sprintf("%.0f logs/min", perMin), eta.String()
			}
			r.progress.LogsLeft = obs.LogsLeft
			r.res.LogRecovery = now.Sub(began)
			r.setDetails(ctx)
		case !fleet.ProcessUp(obs.Process) && obs.Process != "":
			workflow.GetLogger(ctx).Warn("broker went down again", "Cluster", r.in.Spec.ID, "Broker", r.in.Broker, "Process", obs.Process)
			return false, nil
		}
		if now.Sub(lastProgress) >= r.in.StallTimeout {
			why := fmt.Sprintf("broker %d has not come back for %s (process %s, %d logs left to recover); it is never restarted while it recovers",
				r.in.Broker, now.Sub(lastProgress).Round(time.Second), obs.Process, obs.LogsLeft)
			if err := r.ask(ctx, r.progress.Step, why); err != nil {
				return false, err
			}
			lastProgress = workflow.Now(ctx)
		}
		if err := workflow.Sleep(ctx, r.in.PollInterval); err != nil {
			return false, err
		}
	}
}
