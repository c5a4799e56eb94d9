package activities

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/kfleet/kfleet/internal/fleet"
)

// SenseInput starts one run of a cluster's sensing.
type SenseInput struct {
	Spec fleet.ClusterSpec `json:"spec"`
	// Known is the set of registered broker ids the entity last saw.
	Known []int32 `json:"known"`
	// Initial answers at once with the registrations now: the entity has
	// no baseline yet.
	Initial bool `json:"initial,omitempty"`
	// Verdict is the health verdict the entity knows (fleet.Verdict); ""
	// when it knows none: the first tick runs at once and reports.
	Verdict string `json:"verdict,omitempty"`
	// ReportBy asks for a report at the first tick at or after it even if
	// the verdict stays the same: the entity holds a concern back for a
	// while (an operation for it just ended) and wants to reconsider it.
	ReportBy time.Time `json:"reportBy,omitzero"`
	// ReportNow runs a tick at once and reports it (a health check asked
	// for), even with the health loop disabled.
	ReportNow bool `json:"reportNow,omitempty"`
}

// Why a sensing run ended.
const (
	SenseRegistrations = "registrations" // the registered set differs from Known
	SenseVerdict       = "verdict"       // a tick's verdict differs from the entity's
	SenseDue           = "due"           // ReportBy, ReportNow, or the run's own deadline
)

// SenseReport is what a sensing run tells the entity when it ends.
type SenseReport struct {
	Why string `json:"why"`
	// Registered are the broker ids under /brokers/ids (a KRaft cluster:
	// the unfenced brokers), ascending, when Why is SenseRegistrations.
	Registered []int32   `json:"registered,omitempty"`
	ObservedAt time.Time `json:"observedAt"`
	// Health is the last tick's observation, with what it gives concern
	// about and its verdict; nil when no tick ran.
	Health   *fleet.HealthReport `json:"health,omitempty"`
	Concerns []fleet.Concern     `json:"concerns,omitempty"`
	Verdict  string              `json:"verdict,omitempty"`
	// Ticks counts the run's ticks.
	Ticks int `json:"ticks"`
}

// SenseProgress is a sensing run's heartbeat: small, as the heartbeats of
// thousands of idle clusters are most of what they cost.
type SenseProgress struct {
	Ticks    int       `json:"ticks"`
	LastTick time.Time `json:"lastTick,omitzero"`
	Verdict  string    `json:"verdict,omitempty"`
}

// Sense is a cluster's long-lived sensing, on the sensing task queue: it
// blocks on a ZooKeeper watch of /brokers/ids (a KRaft cluster: polls its
// brokers' fencing every HealthPolicy.FencingPoll, registered meaning
// unfenced) and runs the health tick
// (scrape every broker and ZooKeeper server, judge the trends) every
// spec.Health.Interval, and it returns only when the entity must hear of
// something — the registered set differs from in.Known (at once: crash
// detection stays within the ZooKeeper session timeout), a tick's verdict
// differs from in.Verdict, or a report is due. A healthy idle cluster's
// sensing costs its heartbeats (HealthPolicy.SensingBeat) and one run a day
// (its start-to-close deadline), not an activity and a timer a minute.
// Trends are kept on this worker between runs (Sensors); a run retried on
// another worker starts them afresh.
func (a *Activities) Sense(ctx context.Context, in SenseInput) (SenseReport, error) {
	if err := in.Spec.Validate(); err != nil {
		return SenseReport{}, badInput(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopping := activity.GetWorkerStopChannel(ctx)
	handOver := func(err error) error {
		select {
		case <-stopping:
			return handedOver(in.Spec.ID, "sensing")
		default:
			return err
		}
	}
	regs, err := a.registrations(in.Spec)
	if err != nil {
		return SenseReport{}, err
	}
	if in.Initial {
		ids, err := regs.BrokerIDs(ctx, in.Spec)
		if err != nil {
			return SenseReport{}, err
		}
		return SenseReport{Why: SenseRegistrations, Registered: ids, ObservedAt: time.Now()}, nil
	}

	registered := make(chan watchResult, 1)
	go func() {
		// The watch needs no tick: the loop below heartbeats. A KRaft
		// cluster's is a poll of its fencing (registrations.go).
		ids, err := regs.WaitBrokersChanged(ctx, in.Spec, in.Known, 24*time.Hour, func() {})
		registered <- watchResult{ids, err}
	}()

	s := a.newSensor(ctx, in)
	policy := in.Spec.Health.WithDefaults()
	beat := time.NewTicker(policy.SensingBeat())
	defer beat.Stop()
	tick := time.NewTimer(policy.Interval)
	defer tick.Stop()
	switch {
	case in.ReportNow, in.Verdict == "" && !in.Spec.Health.Disabled:
		tick.Reset(0) // asked for, or the entity knows no health yet
	case in.Spec.Health.Disabled:
		tick.Stop()
	}
	// The run ends a little before its start-to-close deadline, with a
	// report, rather than time out and be retried.
	var due <-chan time.Time
	if dl := activity.GetInfo(ctx).Deadline; !dl.IsZero() {
		t := time.NewTimer(max(time.Until(dl)-policy.Interval-time.Minute, time.Until(dl)/2))
		defer t.Stop()
		due = t.C
	}
	for {
		select {
		case r := <-registered:
			if r.err != nil {
				return SenseReport{}, handOver(r.err)
			}
			a.Log.Info().Str("cluster", in.Spec.ID).Ints32("known", in.Known).Ints32("registered", r.ids).Msg("broker registrations changed")
			rep := s.report(SenseRegistrations)
			rep.Registered = r.ids
			return rep, nil
		case <-tick.C:
			report, err := s.tick(ctx)
			if err != nil {
				return SenseReport{}, handOver(err)
			}
			if report != "" {
				return s.report(report), nil
			}
			if !in.Spec.Health.Disabled {
				tick.Reset(policy.Interval)
			}
		case <-beat.C:
			activity.RecordHeartbeat(ctx, s.progress())
		case <-due:
			return s.report(SenseDue), nil
		case <-stopping:
			// Hand the cluster over now, not after a heartbeat timeout.
			return SenseReport{}, handOver(nil)
		case <-ctx.Done():
			return SenseReport{}, handOver(fmt.Errorf("cluster %s: sensing: %w", in.Spec.ID, ctx.Err()))
		}
	}
}

type watchResult struct {
	ids []int32
	err error
}

// sensor is one sensing run's judgement: the trends, the last tick, and
// when a tick must be reported.
type sensor struct {
	a      *Activities
	in     SenseInput
	owner  string
	trends map[int32]*fleet.Trend
	ticks  int
	last   *fleet.HealthReport
	// concerns and verdict are the last tick's.
	concerns []fleet.Concern
	verdict  string
}

func (a *Activities) newSensor(ctx context.Context, in SenseInput) *sensor {
	info := activity.GetInfo(ctx)
	s := &sensor{a: a, in: in, owner: info.WorkflowExecution.ID + "/" + info.ActivityID, verdict: in.Verdict}
	// Samples older than a trend's window say nothing about the rate now.
	window := time.Duration(fleet.TrendSamples+1) * in.Spec.Health.WithDefaults().Interval
	s.trends = a.Sensors.take(in.Spec.ID, s.owner, time.Now().Add(-window))
	return s
}

// tick observes the cluster once, judges it, and says why the run must
// report it ("" to go on).
func (s *sensor) tick(ctx context.Context) (string, error) {
	rep, err := s.a.observeHealth(ctx, s.in.Spec, nil)
	if err != nil {
		return "", err
	}
	s.ticks++
	s.last = &rep
	s.concerns, s.verdict = fleet.Judge(s.in.Spec, rep, s.trends)
	s.a.Sensors.keep(s.in.Spec.ID, s.owner, s.trends)
	switch {
	case s.verdict != s.in.Verdict:
		return SenseVerdict, nil
	case s.in.ReportNow, !s.in.ReportBy.IsZero() && !rep.At.Before(s.in.ReportBy):
		return SenseDue, nil
	}
	return "", nil
}

func (s *sensor) report(why string) SenseReport {
	rep := SenseReport{Why: why, ObservedAt: time.Now(), Ticks: s.ticks}
	if s.last != nil {
		// The growth the concerns were judged with, for the entity's view.
		for i, b := range s.last.Brokers {
			if t := s.trends[b.Broker]; t != nil {
				s.last.Brokers[i].GrowthBytesPerSec = t.Growth()
			}
		}
		rep.Health, rep.Concerns, rep.Verdict = s.last, s.concerns, s.verdict
	}
	return rep
}

func (s *sensor) progress() SenseProgress {
	p := SenseProgress{Ticks: s.ticks, Verdict: s.verdict}
	if s.last != nil {
		p.LastTick = s.last.At
	}
	return p
}

// Sensors keeps each cluster's trends on this worker between sensing runs,
// so a run that reported (or was restarted by its entity) goes on judging
// a climbing heap or a disk's growth where the last one stopped. Only the
// newest run of a cluster writes: one cancelled by its entity runs on
// until its next heartbeat and must not interleave its samples. A nil
// *Sensors keeps nothing.
type Sensors struct {
	mu       sync.Mutex
	clusters map[string]sensorMemory
}

type sensorMemory struct {
	owner  string
	trends map[int32]fleet.Trend
}

// NewSensors returns an empty memory of trends.
func NewSensors() *Sensors { return &Sensors{clusters: map[string]sensorMemory{}} }

// take makes owner the cluster's writer and returns a copy of its trends,
// without the samples taken before cutoff.
func (s *Sensors) take(cluster, owner string, cutoff time.Time) map[int32]*fleet.Trend {
	out := map[int32]*fleet.Trend{}
	if s == nil {
		return out
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.clusters[cluster]
	for id, t := range m.trends {
		c := fleet.Trend{Disk: slices.Clone(t.Disk), Heap: slices.Clone(t.Heap)}
		c.Since(cutoff)
		out[id] = &c
	}
	s.clusters[cluster] = sensorMemory{owner: owner, trends: m.trends}
	return out
}

// keep stores owner's trends, unless a newer run took the cluster over.
func (s *Sensors) keep(cluster, owner string, trends map[int32]*fleet.Trend) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clusters[cluster].owner != owner {
		return
	}
	kept := make(map[int32]fleet.Trend, len(trends))
	for id, t := range trends {
		kept[id] = fleet.Trend{Disk: slices.Clone(t.Disk), Heap: slices.Clone(t.Heap)}
	}
	s.clusters[cluster] = sensorMemory{owner: owner, trends: kept}
}
