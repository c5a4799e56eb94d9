package activities_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// watchedRegistrations answers the registration watch when the test pushes
// a new set.
type watchedRegistrations struct {
	fakeRegistrations
	changes chan []int32
}

func (w watchedRegistrations) WaitBrokersChanged(ctx context.Context, _ fleet.ClusterSpec, _ []int32, _ time.Duration, _ func()) ([]int32, error) {
	select {
	case ids := <-w.changes:
		return ids, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// newSenseUnit is a healthy 3-broker cluster ticking every 100 ms.
func newSenseUnit(t *testing.T) (*unit, chan []int32) {
	u := newUnit(t)
	changes := make(chan []int32, 1)
	u.acts.ZooKeeper = watchedRegistrations{fakeRegistrations: fakeRegistrations{ids: []int32{1, 2, 3}}, changes: changes}
	u.acts.Sensors = activities.NewSensors()
	for _, b := range u.spec.Brokers {
		u.m.set(b.MetricsURL, healthyMetrics())
	}
	u.spec.Health.Interval = 100 * time.Millisecond
	return u, changes
}

func (u *unit) sense(t *testing.T, in activities.SenseInput) activities.SenseReport {
	t.Helper()
	if in.Spec.ID == "" {
		in.Spec = u.spec
	}
	var rep activities.SenseReport
	require.NoError(t, u.exec(t, u.acts.Sense, in, &rep))
	return rep
}

func TestSenseAnswersABaselineAtOnce(t *testing.T) {
	u, _ := newSenseUnit(t)
	rep := u.sense(t, activities.SenseInput{Initial: true})
	assert.Equal(t, activities.SenseRegistrations, rep.Why)
	assert.Equal(t, []int32{1, 2, 3}, rep.Registered)
	assert.Nil(t, rep.Health, "no tick for a baseline")
}

func TestSenseReportsARegistrationChangeWithoutWaitingForATick(t *testing.T) {
	u, changes := newSenseUnit(t)
	u.spec.Health.Interval = time.Hour
	changes <- []int32{1, 3}
	rep := u.sense(t, activities.SenseInput{Known: []int32{1, 2, 3}, Verdict: fleet.VerdictHealthy})
	assert.Equal(t, activities.SenseRegistrations, rep.Why)
	assert.Equal(t, []int32{1, 3}, rep.Registered)
	assert.Zero(t, rep.Ticks)
}

func TestSenseStaysQuietWhileTheVerdictHolds(t *testing.T) {
	u, _ := newSenseUnit(t)
	// Healthy as the entity knows it: ticks go by without a report until
	// broker 2's log cleaner dies.
	go func() {
		time.Sleep(550 * time.Millisecond)
		m := healthyMetrics()
		m.CleanerDeadThreads = 1
		u.m.set("http://b2/metrics", m)
	}()
	rep := u.sense(t, activities.SenseInput{Known: []int32{1, 2, 3}, Verdict: fleet.VerdictHealthy})
	assert.Equal(t, activities.SenseVerdict, rep.Why)
	assert.GreaterOrEqual(t, rep.Ticks, 4, "the healthy ticks before were not reported")
	assert.Equal(t, "cleaner:2", rep.Verdict)
	require.Len(t, rep.Concerns, 1)
	assert.Equal(t, fleet.ConcernCleaner, rep.Concerns[0].Kind)
	require.NotNil(t, rep.Health)
	assert.Equal(t, 1, rep.Health.Brokers[1].Cleaner.DeadThreads)

	// The entity now knows it: the next run reports the cleaner's recovery.
	u.m.set("http://b2/metrics", healthyMetrics())
	rep = u.sense(t, activities.SenseInput{Known: []int32{1, 2, 3}, Verdict: rep.Verdict})
	assert.Equal(t, fleet.VerdictHealthy, rep.Verdict)
	assert.Equal(t, 1, rep.Ticks)
}

func TestSenseReportsWhenAsked(t *testing.T) {
	tests := []struct {
		name string
		in   activities.SenseInput
		why  string
	}{
		{"no verdict known yet: the first tick", activities.SenseInput{}, activities.SenseVerdict},
		{"a report due by now", activities.SenseInput{Verdict: fleet.VerdictHealthy, ReportBy: time.Now()}, activities.SenseDue},
		{"a health check", activities.SenseInput{Verdict: fleet.VerdictHealthy, ReportNow: true}, activities.SenseDue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, _ := newSenseUnit(t)
			tt.in.Known = []int32{1, 2, 3}
			rep := u.sense(t, tt.in)
			assert.Equal(t, tt.why, rep.Why)
			assert.Equal(t, 1, rep.Ticks)
			assert.Equal(t, fleet.VerdictHealthy, rep.Verdict)
			require.NotNil(t, rep.Health)
			assert.Len(t, rep.Health.Brokers, 3)
		})
	}
}

func TestSenseWithTheHealthLoopDisabledTicksOnlyWhenAsked(t *testing.T) {
	u, changes := newSenseUnit(t)
	u.spec.Health.Disabled = true
	rep := u.sense(t, activities.SenseInput{Known: []int32{1, 2, 3}, Verdict: fleet.VerdictHealthy, ReportNow: true})
	assert.Equal(t, activities.SenseDue, rep.Why)
	assert.Equal(t, 1, rep.Ticks)

	go func() { time.Sleep(200 * time.Millisecond); changes <- []int32{1, 2} }()
	rep = u.sense(t, activities.SenseInput{Known: []int32{1, 2, 3}})
	assert.Equal(t, activities.SenseRegistrations, rep.Why)
	assert.Zero(t, rep.Ticks, "no periodic tick")
}

// A climbing heap is judged over ticks of several runs on one worker: a
// run that reported hands its trends to the next.
func TestSenseCarriesTrendsFromRunToRun(t *testing.T) {
	for _, keep := range []bool{true, false} {
		u, _ := newSenseUnit(t)
		if !keep {
			u.acts.Sensors = nil
		}
		var used int64 = 2 << 30
		climb := func() {
			m := healthyMetrics()
			m.OldGenUsed, used = used, used+(256<<20)
			u.m.set("http://b1/metrics", m)
		}
		climb()
		first := u.sense(t, activities.SenseInput{Known: []int32{1, 2, 3}})
		require.Equal(t, fleet.VerdictHealthy, first.Verdict)
		// Each scrape from here on sees more old gen in use.
		stop := make(chan struct{})
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
					climb()
				}
			}
		}()
		rep := u.sense(t, activities.SenseInput{Known: []int32{1, 2, 3}, Verdict: first.Verdict})
		close(stop)
		assert.Equal(t, "heap:1", rep.Verdict)
		want := fleet.DefaultHeapClimbTicks // + the first run's sample
		if !keep {
			want++ // from scratch
		}
		assert.Equal(t, want, rep.Ticks, "sensors kept: %v", keep)
	}
}

func TestSenseRefusesABadSpec(t *testing.T) {
	u, _ := newSenseUnit(t)
	bad := u.spec
	bad.Brokers = nil
	_, err := u.env.ExecuteActivity(u.acts.Sense, activities.SenseInput{Spec: bad})
	requireBadInput(t, err, "broker")
}

func TestSenseHandsOverWhenItsWorkerStops(t *testing.T) {
	u, _ := newSenseUnit(t)
	u.spec.Health.Interval = time.Hour
	// A long deadline: the run would end with a due report at half of it.
	u.env.SetTestTimeout(time.Minute)
	stop := make(chan struct{})
	u.env.SetWorkerStopChannel(stop)
	go func() { time.Sleep(100 * time.Millisecond); close(stop) }()
	_, err := u.env.ExecuteActivity(u.acts.Sense, activities.SenseInput{Spec: u.spec, Known: []int32{1, 2, 3}, Verdict: fleet.VerdictHealthy})
	require.Error(t, err)
	typ, nonRetryable := appErrorType(err)
	assert.Equal(t, activities.ErrTypeWorkerStopping, typ, err.Error())
	assert.False(t, nonRetryable, "another worker takes the retry")
}
