package workflows_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// watchStep is one change of the simulated cluster's broker registrations:
// the registered set from `after` past the previous step (the first: past
// the entity's first sensing).
type watchStep struct {
	after      time.Duration
	registered []int32
}

// senseSim stands in for the Sense activity in the test suite, and answers
// as the real one does: registrations at once for a baseline, then at the
// first registration change or health tick whose verdict differs from the
// entity's (or that is due). Ticks run every spec.Health.Interval from
// each call's start; each builds healthyReport changed by edit (tick
// numbers count from 0) and is judged with the real fleet.Judge over
// trends kept across calls, as the sensing worker keeps them.
//
// A mocked activity cannot wait on the workflow clock for a condition, so
// each tick that does not report ends the attempt with a retryable error
// and the next attempt, after the retry's backoff (at most the interval),
// waits for the next tick: the entity sees one activity, as in production,
// except that its "day" (the run's deadline) lasts 9 attempts.
type senseSim struct {
	env    *testsuite.TestWorkflowEnvironment
	steps  []watchStep
	edit   func(tick int, rep *fleet.HealthReport)
	inputs *[]activities.SenseInput
	// onTick, when set, is called at every simulated tick.
	onTick func()
	// answerDelay delays each registration answer past the change it
	// reports (ObservedAt stays the change's time): an answer that
	// reaches the entity late, as after a workflow task lost with a
	// killed worker.
	answerDelay time.Duration

	mu sync.Mutex
	// start is the first call's; the steps are timed from it.
	start time.Time
	// current is the activity ID of the call the entity waits for; a call
	// it cancelled (and restarted) answers nothing.
	current   string
	callStart time.Time
	nextTick  time.Time
	wake      time.Time
	ticks     int
	trends    map[int32]*fleet.Trend
	last      *activities.SenseReport
}

var errNoChangeYet = errors.New("simulated sensing: nothing to report yet")

// stubSensing registers the simulation on env. Each call's input is
// appended to inputs when not nil.
func stubSensing(env *testsuite.TestWorkflowEnvironment, inputs *[]activities.SenseInput, steps ...watchStep) *senseSim {
	sim := &senseSim{env: env, steps: steps, inputs: inputs, trends: map[int32]*fleet.Trend{}}
	env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, args converter.EncodedValues) {
		if info.ActivityType.Name != "Sense" {
			return
		}
		var in activities.SenseInput
		if err := args.Get(&in); err != nil {
			panic(err)
		}
		sim.begin(info, in)
	})
	env.OnActivity(acts.Sense, mock.Anything, mock.Anything).AfterFn(sim.untilWake).Return(sim.answer).Maybe()
	return sim
}

// registered is the simulated set at t.
func (sim *senseSim) registered(t time.Time) []int32 {
	set, at := testSpec().BrokerIDs(), sim.start
	for _, st := range sim.steps {
		if at = at.Add(st.after); at.After(t) {
			break
		}
		set = st.registered
	}
	return set
}

// changeAt is when the registered set first differs from known since a
// call started at from: the last step at or before from if the set then
// differs already, else the first later step whose set differs (zero:
// none).
func (sim *senseSim) changeAt(known []int32, from time.Time) time.Time {
	at, last := sim.start, sim.start
	differs := !slices.Equal(testSpec().BrokerIDs(), known)
	for _, st := range sim.steps {
		at = at.Add(st.after)
		if at.After(from) {
			if differs {
				return last
			}
			if !slices.Equal(st.registered, known) {
				return at
			}
			continue
		}
		last, differs = at, !slices.Equal(st.registered, known)
	}
	if differs {
		return last
	}
	return time.Time{}
}

func (sim *senseSim) begin(info *activity.Info, in activities.SenseInput) {
	sim.mu.Lock()
	defer sim.mu.Unlock()
	now := sim.env.Now()
	if sim.start.IsZero() {
		sim.start = now
	}
	if info.Attempt > 1 && info.ActivityID != sim.current {
		return // a retry of a call the entity no longer waits for
	}
	if info.Attempt == 1 {
		if sim.inputs != nil {
			*sim.inputs = append(*sim.inputs, in)
		}
		sim.current, sim.callStart = info.ActivityID, now
		sim.nextTick = time.Time{}
		if in.ReportNow || in.Verdict == "" && !in.Spec.Health.Disabled {
			sim.nextTick = now
		} else if !in.Spec.Health.Disabled {
			sim.nextTick = now.Add(in.Spec.Health.WithDefaults().Interval)
		}
	}
	sim.wake = sim.nextTick
	if in.Initial {
		sim.wake = now
	} else if ch := sim.changeAt(in.Known, sim.callStart); !ch.IsZero() {
		if ch = ch.Add(sim.answerDelay); ch.Before(now) {
			ch = now
		}
		if sim.wake.IsZero() || ch.Before(sim.wake) {
			sim.wake = ch
		}
	}
	if sim.wake.IsZero() {
		sim.wake = now.Add(10000 * time.Hour) // nothing will ever happen
	}
}

func (sim *senseSim) untilWake() time.Duration {
	sim.mu.Lock()
	defer sim.mu.Unlock()
	return max(sim.wake.Sub(sim.env.Now()), 0)
}

func (sim *senseSim) answer(ctx context.Context, in activities.SenseInput) (activities.SenseReport, error) {
	sim.mu.Lock()
	defer sim.mu.Unlock()
	if activity.GetInfo(ctx).ActivityID != sim.current {
		return activities.SenseReport{}, errors.New("simulated sensing: superseded by a newer call")
	}
	now := sim.env.Now()
	if ch := sim.changeAt(in.Known, sim.callStart); in.Initial || !ch.IsZero() && !now.Before(ch.Add(sim.answerDelay)) {
		observed := now
		if !in.Initial {
			observed = ch
		}
		rep := activities.SenseReport{Why: activities.SenseRegistrations, Registered: sim.registered(observed), ObservedAt: observed}
		if sim.last != nil && !in.Initial {
			rep.Health, rep.Concerns, rep.Verdict = sim.last.Health, sim.last.Concerns, sim.last.Verdict
		}
		return rep, nil
	}
	// The test environment retries an activity at most 10 times: the
	// simulated run's "day" ends at its 9th attempt, with a due report.
	dayOver := activity.GetInfo(ctx).Attempt >= 9
	if sim.nextTick.IsZero() || now.Before(sim.nextTick) {
		if dayOver {
			return sim.due(), nil
		}
		return activities.SenseReport{}, errNoChangeYet
	}
	if sim.onTick != nil {
		sim.onTick()
	}
	spec := in.Spec
	rep := healthyReport(spec, now)
	if sim.edit != nil {
		sim.edit(sim.ticks, &rep)
	}
	sim.ticks++
	concerns, verdict := fleet.Judge(spec, rep, sim.trends)
	sim.last = &activities.SenseReport{Health: &rep, Concerns: concerns, Verdict: verdict, ObservedAt: now}
	sim.nextTick = time.Time{}
	if !spec.Health.Disabled {
		sim.nextTick = now.Add(spec.Health.WithDefaults().Interval)
	}
	why := ""
	switch {
	case verdict != in.Verdict:
		why = activities.SenseVerdict
	case in.ReportNow, !in.ReportBy.IsZero() && !now.Before(in.ReportBy), dayOver:
		why = activities.SenseDue
	default:
		return activities.SenseReport{}, errNoChangeYet
	}
	out := *sim.last
	out.Why = why
	return out, nil
}

// due is the report of a run whose day is over: its last tick, if any.
func (sim *senseSim) due() activities.SenseReport {
	rep := activities.SenseReport{Why: activities.SenseDue, ObservedAt: sim.env.Now()}
	if sim.last != nil {
		rep.Health, rep.Concerns, rep.Verdict = sim.last.Health, sim.last.Concerns, sim.last.Verdict
	}
	return rep
}
