package activities

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kfleet/kfleet/internal/fleet"
)

// The long waits of rolls and recoveries. Each is one activity that polls
// inside and returns only on a verdict, so a workflow's history does not
// grow with the length of a wait (a log recovery of 40,000 segments takes
// hours). They only observe, so a retry is always safe; what a retry needs
// to resume (a deadline, recovery's last progress) travels in the
// heartbeat details, which also show the wait's live progress in the
// Temporal UI. The rules are internal/fleet's (waits.go).

// GateWaitInput asks WaitRestartGates to wait for the gates of a roll's
// next batch.
type GateWaitInput struct {
	Gates GateInput `json:"gates"`
	// Timeout is how long the gates may stay shut while no log recovery
	// advances (the roll's GateTimeout).
	Timeout time.Duration `json:"timeout"`
	// PollInterval paces the re-checks; 0: the worker's poll interval.
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

// GateWait is WaitRestartGates' verdict.
type GateWait struct {
	// Report is the last check's, on a fresh snapshot: no blockers when
	// the gates opened, a permanent one when no wait can open them.
	Report GateReport `json:"report"`
	// TimedOut: the gates stayed shut, with no log recovery advancing,
	// for the whole timeout.
	TimedOut bool `json:"timedOut,omitempty"`
	// Paces are the pace of each batch broker still recovering its logs,
	// at its recovery's last progress.
	Paces []fleet.RecoveryPace `json:"paces,omitempty"`
	// Checks counts the checks of the wait, retries included.
	Checks int `json:"checks"`
}

// GateWaitProgress is WaitRestartGates' heartbeat: what a retry resumes
// from (the deadline, recovery's last progress) and what an operator sees
// of the wait while it lasts.
type GateWaitProgress struct {
	// Wait holds the deadline and each recovering broker's last progress
	// and pace.
	Wait   fleet.GateWait `json:"wait"`
	Checks int            `json:"checks"`
	Next   int32          `json:"next"`
	// Blockers counts the last check's blockers; First is the first one.
	Blockers int    `json:"blockers"`
	First    string `json:"first,omitempty"`
}

// WaitRestartGates checks the gates of a roll's next batch
// (CheckRestartGates) until every gate is open, and returns the report of
// that check. It returns at once when a blocker is permanent, and when the
// gates stayed shut for the timeout; the deadline moves on while a batch
// broker's log recovery advances, since a recovery that progresses is
// waited out however long it takes.
func (a *Activities) WaitRestartGates(ctx context.Context, in GateWaitInput) (GateWait, error) {
	if in.Timeout <= 0 {
		return GateWait{}, badInput(fmt.Errorf("cluster %s: gate timeout %s: want a positive duration", in.Gates.Spec.ID, in.Timeout))
	}
	p, ok := resume[GateWaitProgress](ctx)
	if !ok {
		p = GateWaitProgress{Wait: fleet.NewGateWait(time.Now(), in.Timeout)}
	}
	var res GateWait
	err := a.poll(ctx, in.PollInterval, time.Time{}, func() (bool, error) {
		rep, err := a.CheckRestartGates(ctx, in.Gates)
		if err != nil {
			return false, err
		}
		// After the check: a snapshot of a large cluster takes seconds.
		now := time.Now()
		left := make(map[int32]int, len(rep.Recovering))
		for _, r := range rep.Recovering {
			left[r.Broker] = r.LogsLeft
		}
		p.Wait.Observe(now, in.Timeout, left)
		p.Checks++
		p.Next, p.Blockers, p.First = rep.Next, len(rep.Blockers), ""
		if len(rep.Blockers) > 0 {
			p.First = rep.Blockers[0].String()
		}
		res = GateWait{Report: rep, Paces: p.Wait.Paces, Checks: p.Checks}
		if len(rep.Blockers) == 0 || permanent(rep.Blockers) {
			return true, nil
		}
		res.TimedOut = p.Wait.Expired(now)
		return res.TimedOut, nil
	}, func() any { return p })
	if err != nil {
		return GateWait{}, waitFailed(err, "cluster %s: wait for restart gates (remaining %v)", in.Gates.Spec.ID, in.Gates.Remaining)
	}
	a.Log.Info().Str("cluster", in.Gates.Spec.ID).Int32("next", res.Report.Next).Int("checks", res.Checks).
		Int("blockers", len(res.Report.Blockers)).Bool("timedOut", res.TimedOut).Msg("gate wait over")
	return res, nil
}

func permanent(blockers []fleet.Blocker) bool {
	for _, b := range blockers {
		if b.Permanent {
			return true
		}
	}
	return false
}

// GraceInput asks WaitBrokerGrace to watch a lost broker until Until.
type GraceInput struct {
	BrokerInput
	// Until is the end of the grace (absolute, so a retry keeps it).
	Until time.Time `json:"until"`
	// PollInterval paces the observations; 0: the worker's poll interval.
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

// WaitBrokerGrace observes a lost broker, never touching it, until it is
// registered again, its process is up (its service manager restarted it)
// or the grace is over, and returns the last observation. It observes at
// least once, so a retry after the grace still answers.
func (a *Activities) WaitBrokerGrace(ctx context.Context, in GraceInput) (BrokerObservation, error) {
	host, err := in.host()
	if err != nil {
		return BrokerObservation{}, err
	}
	if in.Until.IsZero() {
		return BrokerObservation{}, badInput(fmt.Errorf("cluster %s broker %d: a grace needs its end", in.Spec.ID, in.Broker))
	}
	var obs BrokerObservation
	beat := func() { activity.RecordHeartbeat(ctx, obs) }
	err = a.poll(ctx, in.PollInterval, in.Until, func() (bool, error) {
		var err error
		if obs, err = a.observe(ctx, in.BrokerInput, host, beat); err != nil {
			return false, err
		}
		return obs.Registered || fleet.ProcessUp(obs.Process) || !time.Now().Before(in.Until), nil
	}, func() any { return obs })
	if err != nil {
		return BrokerObservation{}, waitFailed(err, "cluster %s broker %d: grace", in.Spec.ID, in.Broker)
	}
	return obs, nil
}

// ComeBackInput asks WaitBrokerBack to watch a started broker come back.
type ComeBackInput struct {
	BrokerInput
	// Since is when the operation began waiting for the broker; the log
	// recovery time is measured from it.
	Since time.Time `json:"since"`
	// StallTimeout ends the wait when the broker made no progress (log
	// recovery advancing) for this long.
	StallTimeout time.Duration `json:"stallTimeout"`
	// Recovering: the operation already knows the broker recovers its
	// logs (a wait returned ComeBackRecovering); not reported again.
	Recovering bool `json:"recovering,omitempty"`
	// Last is recovery's last progress as the operation knows it, so the
	// pace carries across waits.
	Last fleet.RecoverySample `json:"last,omitzero"`
	// PollInterval paces the observations; 0: the worker's poll interval.
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

// BrokerBack is WaitBrokerBack's verdict and what the operation shows.
type BrokerBack struct {
	Verdict fleet.ComeBackVerdict `json:"verdict"`
	// Observation is the last one.
	Observation BrokerObservation `json:"observation"`
	// Last is recovery's last progress, for the next wait's input.
	Last fleet.RecoverySample `json:"last,omitzero"`
	// Pace is the last pace measured (zero until recovery advanced).
	Pace fleet.RecoveryPace `json:"pace,omitzero"`
	// LogRecovery runs from Since to the last observation that saw the
	// broker recovering; 0 when none did.
	LogRecovery time.Duration `json:"logRecovery,omitempty"`
	// StalledFor is the time since the last progress (stalled verdict).
	StalledFor time.Duration `json:"stalledFor,omitempty"`
}

// BrokerBackProgress is WaitBrokerBack's heartbeat: the rules' state (what
// a retry resumes from) and the last observation.
type BrokerBackProgress struct {
	Wait        fleet.ComeBack    `json:"wait"`
	Observation BrokerObservation `json:"observation"`
}

// WaitBrokerBack watches a started broker, never touching it, until it is
// registered, its process went down again, it began recovering its logs
// (once: the operation shows it), or it made no progress for the stall
// timeout. It is never restarted while it recovers: a stall is for a human
// to judge.
func (a *Activities) WaitBrokerBack(ctx context.Context, in ComeBackInput) (BrokerBack, error) {
	host, err := in.host()
	if err != nil {
		return BrokerBack{}, err
	}
	if in.StallTimeout <= 0 {
		return BrokerBack{}, badInput(fmt.Errorf("cluster %s broker %d: stall timeout %s: want a positive duration", in.Spec.ID, in.Broker, in.StallTimeout))
	}
	p, ok := resume[BrokerBackProgress](ctx)
	if !ok {
		p.Wait = fleet.ComeBack{Broker: in.Broker, LastProgress: time.Now(), Last: in.Last, ReportedRecovering: in.Recovering}
	}
	beat := func() { activity.RecordHeartbeat(ctx, p) }
	var verdict fleet.ComeBackVerdict
	err = a.poll(ctx, in.PollInterval, time.Time{}, func() (bool, error) {
		obs, err := a.observe(ctx, in.BrokerInput, host, beat)
		if err != nil {
			return false, err
		}
		p.Observation = obs
		verdict = p.Wait.Observe(time.Now(), obs.sighting(), in.StallTimeout)
		return verdict != fleet.ComeBackWaiting, nil
	}, func() any { return p })
	if err != nil {
		return BrokerBack{}, waitFailed(err, "cluster %s broker %d: wait for it to come back", in.Spec.ID, in.Broker)
	}
	res := BrokerBack{Verdict: verdict, Observation: p.Observation, Last: p.Wait.Last, Pace: p.Wait.Pace}
	if !p.Wait.LastRecovering.IsZero() {
		res.LogRecovery = max(0, p.Wait.LastRecovering.Sub(in.Since))
	}
	if verdict == fleet.ComeBackStalled {
		res.StalledFor = time.Since(p.Wait.LastProgress)
	}
	a.Log.Info().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Str("verdict", string(verdict)).
		Str("process", p.Observation.Process).Int("logsLeft", p.Observation.LogsLeft).Msg("broker wait over")
	return res, nil
}

// poll calls check at once and then every interval (the worker's poll
// interval when 0; never past until, when set) until it is done or fails.
// It heartbeats details() after each check, and in between when the
// interval is longer than half the heartbeat timeout. Calling more often
// costs nothing: the SDK records at most one heartbeat per 0.8 x the
// heartbeat timeout and keeps only the latest details.
func (a *Activities) poll(ctx context.Context, interval time.Duration, until time.Time, check func() (bool, error), details func() any) error {
	if interval <= 0 {
		interval = a.pollInterval()
	}
	beat := interval
	if hb := activity.GetInfo(ctx).HeartbeatTimeout; hb > 0 {
		beat = min(beat, hb/2)
	}
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		activity.RecordHeartbeat(ctx, details())
		next := time.Now().Add(interval)
		if !until.IsZero() && until.Before(next) {
			next = until
		}
		for wait := time.Until(next); wait > 0; wait = time.Until(next) {
			t := time.NewTimer(min(wait, beat))
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			if time.Now().Before(next) {
				activity.RecordHeartbeat(ctx, details())
			}
		}
	}
}

// resume returns the heartbeat details a previous attempt recorded; false
// when there are none, or they are not a T (start afresh).
func resume[T any](ctx context.Context) (T, bool) {
	var v T
	if !activity.HasHeartbeatDetails(ctx) {
		return v, false
	}
	if err := activity.GetHeartbeatDetails(ctx, &v); err != nil {
		var zero T
		return zero, false
	}
	return v, true
}

// waitFailed names the cluster and broker of a failed wait. An application
// error (bad input, which no retry fixes) stays as it is: Temporal reads
// the non-retryable types of a retry policy off the outermost error only.
func waitFailed(err error, format string, args ...any) error {
	if _, ok := err.(*temporal.ApplicationError); ok {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
