package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// HealthState is what the entity's health loop knows: the last tick, each
// broker's recent samples and volume cool-down, and recent findings with
// the operation that acted on each.
type HealthState struct {
	LastTick  time.Time               `json:"lastTick,omitzero"`
	Error     string                  `json:"error,omitempty"`
	ZooKeeper []fleet.ZooKeeperServer `json:"zookeeper,omitempty"`
	Brokers   []BrokerHealthState     `json:"brokers,omitempty"`
	// Findings are the most recent, newest last (bounded); Found counts
	// every finding ever recorded (carried over continue-as-new).
	Findings []Finding `json:"findings,omitempty"`
	Found    int       `json:"found"`
	// Verdict is the last verdict sensing reported (fleet.Verdict): it
	// reports again when a tick's differs. ReportBy asks it for a report
	// by then even if not, to reconsider concerns held back.
	Verdict  string    `json:"verdict,omitempty"`
	ReportBy time.Time `json:"reportBy,omitzero"`
}

// record appends a finding.
func (hs *HealthState) record(f Finding) {
	hs.Findings = appendBoundedN(hs.Findings, f, findingsKept)
	hs.Found++
}

// since returns the findings recorded after the found-th, as far as they
// are still kept.
func (hs *HealthState) since(found int) []Finding {
	n := min(hs.Found-found, len(hs.Findings))
	if n <= 0 {
		return nil
	}
	return slices.Clone(hs.Findings[len(hs.Findings)-n:])
}

// BrokerHealthState is one broker's health history.
type BrokerHealthState struct {
	Broker int32              `json:"broker"`
	Last   fleet.BrokerHealth `json:"last"`
	// Trend holds the last samples of entities recorded before version 4,
	// whose health loop judged them itself; from version 4 sensing keeps
	// them where it runs.
	fleet.Trend
	// GrowthBytesPerSec is the data's growth over the recent ticks.
	GrowthBytesPerSec float64 `json:"growthBytesPerSec"`
	// Cooldown is the data volume's, after kfleet modified it.
	Cooldown *VolumeCooldown `json:"cooldown,omitempty"`
	// Escalated is when the disk was last escalated (once per cool-down).
	Escalated time.Time `json:"escalated,omitzero"`
}

// VolumeCooldown is EBS's window after a modification: no other one fits.
type VolumeCooldown struct {
	VolumeID string    `json:"volumeId"`
	SizeGiB  int32     `json:"sizeGiB"`
	Until    time.Time `json:"until"`
}

// Finding is something a health tick (or the broker watch) found, and the
// operation that acts on it.
type Finding struct {
	Kind   string    `json:"kind"` // Finding* below
	Broker int32     `json:"broker"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	// Operation is the id of the operation started for it ("" when none
	// was needed, e.g. a ZooKeeper server down is reported only); Outcome
	// its result once it ended.
	Operation string `json:"operation,omitempty"`
	Outcome   string `json:"outcome,omitempty"`
}

// Finding kinds.
const (
	FindingDisk      = "disk"
	FindingCleaner   = "cleaner"
	FindingHeap      = "heap"
	FindingZooKeeper = "zookeeper"
	FindingLoss      = "broker-lost"
)

const (
	// findingsKept bounds the findings kept in the entity's state.
	findingsKept = 30
	// reactAfterTicks: a finding acted on is not acted on again for this
	// many ticks after its operation ended (a restart that did not fix a
	// cleaner must not become a restart loop; a human is told instead).
	reactAfterTicks = 30
	// requestedByHealth is who the health loop's operations are requested by.
	requestedByHealth = "kfleet-health"
)

// healthLoop is the entity's periodic health tick, on durable timers, in
// its own coroutine. Each tick scrapes every broker and the ZooKeeper
// ensemble (CheckHealth), keeps the samples, and turns each finding into
// the right operation through the entity's queue:
//
//   - a disk at the expansion threshold, or forecast to reach it within a
//     cool-down: a volume expansion (inside a cool-down only once it passes
//     the escalation threshold, to escalate);
//   - a dead or stuck log cleaner: a cleaner-health operation (check again,
//     gated restart of those brokers);
//   - old-gen heap climbing tick after tick: a rolling restart of that
//     broker, before it falls over;
//   - a ZooKeeper server down: reported (status, notification).
type healthLoop struct {
	e       *entity
	stopped bool
	// ticks counts the ticks done; want is the tick a health-check
	// update waits for (asked now, not at the next interval); inTick is
	// set while one runs (its scrape may predate the ask).
	ticks, want int
	inTick      bool
}

// askTick asks for a tick now and returns the tick number to wait for: the
// next one to start.
func (h *healthLoop) askTick() int {
	if h.e.version >= 4 {
		// Sensing ticks: have it tick now and report.
		h.e.watch.askReport()
		return h.ticks + 1
	}
	target := h.ticks + 1
	if h.inTick {
		target++
	}
	h.want = max(h.want, target)
	return target
}

func (h *healthLoop) run(ctx workflow.Context) {
	if h.e.version >= 4 {
		return // sensing ticks where it runs and reports to sensed
	}
	for !h.stopped && ctx.Err() == nil {
		if h.e.spec.Health.Disabled {
			// Disabled means no periodic tick; one asked for still runs.
			if err := workflow.Await(ctx, func() bool { return h.stopped || !h.e.spec.Health.Disabled || h.want > h.ticks }); err != nil {
				return
			}
			if h.want <= h.ticks {
				continue
			}
		}
		h.inTick = true
		h.tick(ctx)
		h.inTick = false
		h.ticks++
		if h.e.spec.Health.Disabled {
			continue
		}
		interval := h.e.spec.Health.WithDefaults().Interval
		if _, err := workflow.AwaitWithTimeout(ctx, interval, func() bool { return h.stopped || h.want > h.ticks }); err != nil {
			return
		}
	}
}

// stop ends the loop at its next wake-up (continue-as-new).
func (h *healthLoop) stop() { h.stopped = true }

func (h *healthLoop) tick(ctx workflow.Context) {
	hs := h.e.st.health()
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		// Thousands of entities tick every minute: on the sensing
		// worker, beside the watches, not in the operations' slots.
		TaskQueue:           sensingQueue(ctx),
		StartToCloseTimeout: time.Minute,
		HeartbeatTimeout:    15 * time.Second,
		Summary:             "health tick: scrape brokers and ZooKeeper",
		// The next tick is the retry.
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 2, NonRetryableErrorTypes: []string{activities.ErrTypeBadInput}},
	})
	var rep fleet.HealthReport
	if err := workflow.ExecuteActivity(actx, a.CheckHealth, activities.HealthInput{Spec: h.e.spec}).Get(ctx, &rep); err != nil {
		hs.Error = activityMessage(err)
		workflow.GetLogger(ctx).Warn("health tick failed", "Cluster", h.e.spec.ID, "Error", err)
		h.e.changed(ctx)
		return
	}
	if h.stopped {
		return
	}
	hs.Error, hs.LastTick, hs.ZooKeeper = "", rep.At, rep.ZooKeeper
	h.zooKeeper(ctx, rep.ZooKeeper)
	policy := h.e.spec.Health.WithDefaults()
	for _, b := range rep.Brokers {
		if _, ok := h.e.spec.Broker(b.Broker); !ok {
			continue
		}
		bs := hs.broker(b.Broker)
		bs.Last = b
		bs.Add(rep.At, b)
		bs.GrowthBytesPerSec = bs.Growth()
		for _, c := range fleet.AssessBroker(policy, b, bs.Trend) {
			h.decide(ctx, policy, bs, c, rep.At)
		}
	}
	h.e.changed(ctx)
}

// sensed applies a health report of sensing (entity version 4): the
// gauges for the UI, the ZooKeeper ensemble, and a decision on each
// concern. While concerns remain it asks sensing to report again once the
// ones held back may be acted on anew.
func (h *healthLoop) sensed(ctx workflow.Context, rep activities.SenseReport) {
	hs := h.e.st.health()
	hr := rep.Health
	hs.Error, hs.LastTick, hs.ZooKeeper, hs.Verdict = "", hr.At, hr.ZooKeeper, rep.Verdict
	h.zooKeeper(ctx, hr.ZooKeeper)
	policy := h.e.spec.Health.WithDefaults()
	for _, b := range hr.Brokers {
		if _, ok := h.e.spec.Broker(b.Broker); ok {
			bs := hs.broker(b.Broker)
			bs.Last, bs.GrowthBytesPerSec = b, b.GrowthBytesPerSec
		}
	}
	for _, c := range rep.Concerns {
		if _, ok := h.e.spec.Broker(c.Broker); ok {
			h.decide(ctx, policy, hs.broker(c.Broker), c, hr.At)
		}
	}
	hs.ReportBy = time.Time{}
	if len(rep.Concerns) > 0 {
		hs.ReportBy = hr.At.Add(time.Duration(reactAfterTicks) * policy.Interval)
	}
	h.ticks++
	h.e.changed(ctx)
}

// decide turns a concern into the operation that acts on it:
//
//   - a disk to expand: a volume expansion; inside the volume's cool-down
//     only one at the escalation threshold, once per cool-down, to escalate;
//   - a dead or stuck log cleaner: a cleaner-health operation;
//   - old-gen heap climbing: a rolling restart of that broker.
func (h *healthLoop) decide(ctx workflow.Context, policy fleet.HealthPolicy, bs *BrokerHealthState, c fleet.Concern, now time.Time) {
	switch c.Kind {
	case fleet.ConcernDisk:
		h.disk(ctx, policy, bs, c, now)
	case fleet.ConcernCleaner:
		h.act(ctx, FindingCleaner, c.Broker, c.Reason, now, func() Operation { return cleanerOperation(c.Broker) })
	case fleet.ConcernHeap:
		h.act(ctx, FindingHeap, c.Broker, c.Reason, now, func() Operation { return restartOperation(c.Broker) })
	}
}

// disk decides on a broker's data volume.
func (h *healthLoop) disk(ctx workflow.Context, policy fleet.HealthPolicy, bs *BrokerHealthState, c fleet.Concern, now time.Time) {
	if cd := bs.Cooldown; cd != nil && now.Before(cd.Until) {
		// No modification fits: act only to escalate, once per cool-down.
		if !c.Escalate || bs.Escalated.After(cd.Until.Add(-policy.VolumeCooldown)) {
			return
		}
		why := fmt.Sprintf("disk %.1f%% used during the volume's cool-down (until %s)", bs.Last.Disk.Percent(), cd.Until.Format(time.RFC3339))
		h.act(ctx, FindingDisk, bs.Broker, why, now, func() Operation {
			return expansionOperation(bs.Broker, c.GrowthBytesPerSec, cd.Until)
		})
		return
	}
	if !c.Expand {
		return
	}
	h.act(ctx, FindingDisk, bs.Broker, c.Reason, now, func() Operation {
		return expansionOperation(bs.Broker, c.GrowthBytesPerSec, time.Time{})
	})
}

// act records a finding and queues the operation for it, unless one for
// the same finding is queued or running, or ended too recently.
func (h *healthLoop) act(ctx workflow.Context, kind string, broker int32, reason string, now time.Time, newOp func() Operation) {
	hs := h.e.st.Health
	if i := lastIndexFunc(hs.Findings, func(f Finding) bool { return f.Kind == kind && f.Broker == broker && f.Operation != "" }); i >= 0 {
		if op, ok := h.e.st.Operation(hs.Findings[i].Operation); ok {
			if op.Status == StatusQueued || op.Status == StatusRunning {
				return
			}
			// A disk decides afresh each time (its cool-down is recorded);
			// a restart that did not help must not become a restart loop.
			reactAfter := time.Duration(reactAfterTicks) * h.e.spec.Health.WithDefaults().Interval
			if kind != FindingDisk && now.Sub(op.FinishedAt) < reactAfter {
				return
			}
		}
	}
	op := newOp()
	op.RequestedBy, op.Reason = requestedByHealth, reason
	op = h.e.enqueue(ctx, op)
	hs.record(Finding{Kind: kind, Broker: broker, Reason: reason, At: now, Operation: op.ID})
	workflow.GetLogger(ctx).Warn("health finding", "Cluster", h.e.spec.ID, "Broker", broker, "Kind", kind, "Reason", reason, "Operation", op.ID, "OperationKind", op.Kind)
}

// zooKeeper reports ensemble members that stopped answering, and a leader
// whose followers fell out of sync, once each time that changes.
func (h *healthLoop) zooKeeper(ctx workflow.Context, servers []fleet.ZooKeeperServer) {
	var down []string
	for _, s := range servers {
		switch {
		case !s.OK:
			down = append(down, fmt.Sprintf("%s not answering (%s)", s.Address, s.Error))
		case s.Warning != "":
			down = append(down, fmt.Sprintf("%s degraded (%s)", s.Address, s.Warning))
		}
	}
	if len(down) == 0 {
		return
	}
	hs := h.e.st.Health
	reason := "ZooKeeper ensemble: " + strings.Join(down, ", ")
	if i := lastIndexFunc(hs.Findings, func(f Finding) bool { return f.Kind == FindingZooKeeper }); i >= 0 && hs.Findings[i].Reason == reason {
		return
	}
	hs.record(Finding{Kind: FindingZooKeeper, Broker: -1, Reason: reason, At: workflow.Now(ctx)})
	workflow.GetLogger(ctx).Error("zookeeper ensemble unhealthy", "Cluster", h.e.spec.ID, "Down", down)
	notifyHumans(ctx, activities.Notification{Cluster: h.e.spec.ID, Severity: activities.SeverityPage, Title: "ZooKeeper ensemble unhealthy", Text: reason})
}

// finished records an operation's outcome on its finding and what the
// entity must remember from it (a volume's cool-down).
func (hs *HealthState) finished(op Operation, res Report) {
	for i := range hs.Findings {
		if hs.Findings[i].Operation == op.ID {
			hs.Findings[i].Outcome = op.Status
			if res.Outcome != "" {
				hs.Findings[i].Outcome += ": " + res.Outcome
			}
		}
	}
	if res.Volume == nil || len(op.Brokers) != 1 {
		return
	}
	bs := hs.broker(op.Brokers[0])
	if !res.Volume.CooldownUntil.IsZero() {
		bs.Cooldown = &VolumeCooldown{VolumeID: res.Volume.VolumeID, SizeGiB: max(res.Volume.ToGiB, res.Volume.FromGiB), Until: res.Volume.CooldownUntil}
	}
	if res.Volume.Outcome == ExpansionEscalated {
		bs.Escalated = op.FinishedAt
	}
	if res.Volume.Outcome == ExpansionExpanded {
		bs.Disk = nil // a new size: the growth is measured afresh
	}
}

// health is the entity's health state, created on first use.
func (st *ClusterState) health() *HealthState {
	if st.Health == nil {
		st.Health = &HealthState{}
	}
	return st.Health
}

func (hs *HealthState) broker(id int32) *BrokerHealthState {
	i := slices.IndexFunc(hs.Brokers, func(b BrokerHealthState) bool { return b.Broker == id })
	if i < 0 {
		hs.Brokers = append(hs.Brokers, BrokerHealthState{Broker: id})
		slices.SortFunc(hs.Brokers, func(x, y BrokerHealthState) int { return int(x.Broker - y.Broker) })
		i = slices.IndexFunc(hs.Brokers, func(b BrokerHealthState) bool { return b.Broker == id })
	}
	return &hs.Brokers[i]
}

func lastIndexFunc[T any](xs []T, match func(T) bool) int {
	for i := len(xs) - 1; i >= 0; i-- {
		if match(xs[i]) {
			return i
		}
	}
	return -1
}

func appendBoundedN[T any](xs []T, x T, n int) []T {
	xs = append(xs, x)
	if len(xs) > n {
		xs = slices.Clone(xs[len(xs)-n:])
	}
	return xs
}

// healthDetails is the health loop's lines in the entity's current details.
func (st ClusterState) healthDetails() string {
	hs := st.Health
	if hs == nil {
		return ""
	}
	var b strings.Builder
	switch {
	case hs.Error != "":
		b.WriteString(fmt.Sprintf("\n\nHealth: **last tick failed**: %s", hs.Error))
	case hs.LastTick.IsZero():
		b.WriteString("\n\nHealth: first tick pending.")
	case hs.Verdict != "":
		b.WriteString(fmt.Sprintf("\n\nHealth: %s (reported %s; sensing reports changes):", hs.Verdict, hs.LastTick.Format(time.RFC3339)))
	default:
		b.WriteString(fmt.Sprintf("\n\nHealth (as of %s):", hs.LastTick.Format(time.RFC3339)))
		for _, bs := range hs.Brokers {
			if bs.Last.Error != "" {
				b.WriteString(fmt.Sprintf("\n- broker %d: metrics unavailable (%s)", bs.Broker, bs.Last.Error))
				continue
			}
			b.WriteString(fmt.Sprintf("\n- broker %d: disk %.1f%% (+%s/s), heap %s/%s, cleaner dead %d, last run %s ago",
				bs.Broker, bs.Last.Disk.Percent(), fleet.Bytes(int64(bs.GrowthBytesPerSec)), fleet.Bytes(bs.Last.Heap.Used), fleet.Bytes(bs.Last.Heap.Max),
				bs.Last.Cleaner.DeadThreads, bs.Last.Cleaner.SinceLastRun.Round(time.Second)))
			if cd := bs.Cooldown; cd != nil && cd.Until.After(hs.LastTick) {
				b.WriteString(fmt.Sprintf("; volume %s cool-down until %s", cd.VolumeID, cd.Until.Format(time.RFC3339)))
			}
		}
	}
	for _, f := range hs.Findings[max(0, len(hs.Findings)-5):] {
		b.WriteString(fmt.Sprintf("\n- finding %s", f.Kind))
		if f.Broker >= 0 {
			b.WriteString(fmt.Sprintf(" on broker %d", f.Broker))
		}
		b.WriteString(fmt.Sprintf(" at %s: %s", f.At.Format(time.RFC3339), f.Reason))
		if f.Operation != "" {
			b.WriteString(fmt.Sprintf(" → `%s` %s", f.Operation, f.Outcome))
		}
	}
	return b.String()
}
