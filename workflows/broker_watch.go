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

// WatchState is what the entity's broker watch last saw.
type WatchState struct {
	// Registered are the broker ids under /brokers/ids, ascending.
	Registered []int32 `json:"registered"`
	// ObservedAt is when the watch saw that set.
	ObservedAt time.Time `json:"observedAt"`
	// Missing are brokers of the spec that are not registered.
	Missing []int32 `json:"missing,omitempty"`
	// Changes counts the changes seen since the watch started (carried
	// over continue-as-new); Last is the most recent one.
	Changes int                 `json:"changes"`
	Last    *RegistrationChange `json:"last,omitempty"`
	// Error is the watch's last failure, cleared by its next answer.
	Error string `json:"error,omitempty"`
}

// RegistrationChange is one change of the registered set.
type RegistrationChange struct {
	At      time.Time `json:"at"`
	Added   []int32   `json:"added,omitempty"`
	Removed []int32   `json:"removed,omitempty"`
}

// BrokerLoss is a broker whose registration vanished while no operation of
// kfleet was touching it: an unclean shutdown for recovery to act on. It is
// recorded once per loss; the broker registering again closes it.
type BrokerLoss struct {
	Broker int32     `json:"broker"`
	At     time.Time `json:"at"`
	// Operation is the operation running when the broker was lost, if any
	// (it was touching other brokers, not this one).
	Operation   string    `json:"operation,omitempty"`
	Recovered   bool      `json:"recovered"`
	RecoveredAt time.Time `json:"recoveredAt,omitzero"`
	// Recovery is the id of the recovery queued for the loss once its
	// grace passed; empty while it may still come back by itself.
	Recovery string `json:"recovery,omitempty"`
}

const (
	// lossesKept bounds the losses the entity keeps: the oldest recovered
	// ones go first, an open loss is never dropped.
	lossesKept = 50
	// watchRetryDelay paces restarts of a watch that failed for good (bad
	// input such as an invalid spec: only a new spec can fix it).
	watchRetryDelay = time.Minute
)

// brokerWatch is the entity's watch over its brokers' registrations. It
// runs in its own coroutine beside the operation loop:
//
//   - it applies BrokerTouch signals from operations: the brokers kfleet is
//     taking down itself;
//   - it keeps one Sense activity (entity version 4; WatchBrokers before)
//     blocked on a ZooKeeper watch and ticking the health loop where it
//     runs, and starts the next one, from what it reported, after each
//     answer: a new registered set, or a health verdict for the health
//     loop (healthLoop.sensed);
//   - a broker gone from ZooKeeper that no operation is touching is a
//     loss, recorded once; its registering again closes the loss.
//
// Touches and watch answers are ordered by the entity's history: a roll
// awaits the delivery of its touch before it stops a broker, so the touch
// is always applied before the watch's answer that the broker left.
type brokerWatch struct {
	spec    *fleet.ClusterSpec
	st      *ClusterState
	touches workflow.ReceiveChannel
	// enabled runs the watch (entities recorded before it existed only
	// apply touches until they continue as new).
	enabled bool
	// stopped is set before continue-as-new: start nothing more.
	stopped bool
	// restart is set when the running watch (or the wait before retrying
	// it) is cancelled to start again at once: a new ZooKeeper address.
	restart bool
	// cancel cancels whichever of watching and backoff is pending.
	cancel   workflow.CancelFunc
	watching workflow.Future
	backoff  workflow.Future
	// changed refreshes the entity's current details.
	changed func(workflow.Context)
	// sense runs the Sense activity (entity version 4): registrations and
	// health ticks in one long-lived activity that reports on change;
	// sensed takes its health reports. reportNow asks the next run for a
	// tick at once (a health check); reportBy for a report by then even
	// if nothing changed.
	sense     bool
	sensed    func(workflow.Context, activities.SenseReport)
	reportNow bool
}

func newBrokerWatch(ctx workflow.Context, spec *fleet.ClusterSpec, st *ClusterState, enabled bool, changed func(workflow.Context)) *brokerWatch {
	return &brokerWatch{
		spec:    spec,
		st:      st,
		touches: workflow.GetSignalChannel(ctx, SignalBrokerTouch),
		enabled: enabled,
		cancel:  func() {},
		changed: changed,
	}
}

// run is the watch's coroutine; it returns when ctx is cancelled.
func (w *brokerWatch) run(ctx workflow.Context) {
	if w.sense {
		// Touches stay in the channel's buffer until drained (version 4):
		// a selector waiting on the channel would take a touch delivered
		// in the workflow task that continues as new after drainTouches
		// looked, and the next run would start without it.
		workflow.Go(ctx, func(ctx workflow.Context) {
			for workflow.Await(ctx, func() bool { return w.touches.Len() > 0 }) == nil {
				w.drainTouches(ctx)
				w.changed(ctx)
			}
		})
	}
	// Once stopped (continue-as-new), it ends as soon as its last watch
	// is cancelled: the next run applies the touches that follow.
	for ctx.Err() == nil && !(w.stopped && w.watching == nil && w.backoff == nil) {
		if w.enabled && !w.stopped && w.watching == nil && w.backoff == nil {
			w.watching = w.start(ctx)
		}
		if w.sense && w.watching == nil && w.backoff == nil {
			return // stopped
		}
		sel := workflow.NewSelector(ctx)
		if !w.sense {
			sel.AddReceive(w.touches, func(c workflow.ReceiveChannel, _ bool) {
				var t BrokerTouch
				c.Receive(ctx, &t)
				w.touch(ctx, t)
				w.changed(ctx)
			})
		}
		if w.watching != nil {
			sel.AddFuture(w.watching, func(f workflow.Future) {
				w.watching = nil
				// Touches delivered in the same workflow task come first.
				w.drainTouches(ctx)
				var ch activities.BrokerChange
				var rep activities.SenseReport
				var err error
				if w.sense {
					err = f.Get(ctx, &rep)
					ch = activities.BrokerChange{Registered: rep.Registered, ObservedAt: rep.ObservedAt}
				} else {
					err = f.Get(ctx, &ch)
				}
				switch {
				case err == nil && w.sense:
					if rep.Why == activities.SenseRegistrations {
						w.observe(ctx, ch)
					}
					if rep.Health != nil {
						w.sensed(ctx, rep)
					}
				case err == nil:
					w.observe(ctx, ch)
				case w.restart:
					w.restart = false
				case ctx.Err() == nil && !w.stopped:
					w.failed(ctx, err)
					tctx, cancel := workflow.WithCancel(ctx)
					w.cancel, w.backoff = cancel, workflow.NewTimer(tctx, watchRetryDelay)
				}
				w.changed(ctx)
			})
		}
		if w.backoff != nil {
			sel.AddFuture(w.backoff, func(workflow.Future) { w.backoff, w.restart = nil, false })
		}
		sel.Select(ctx)
	}
}

// start runs one WatchBrokers activity from the last set seen, or from
// entity version 4 one Sense activity.
func (w *brokerWatch) start(ctx workflow.Context) workflow.Future {
	actx, cancel := workflow.WithCancel(ctx)
	w.cancel = cancel
	retry := &temporal.RetryPolicy{
		InitialInterval:        time.Second,
		BackoffCoefficient:     2,
		MaximumInterval:        time.Minute,
		NonRetryableErrorTypes: []string{activities.ErrTypeBadInput},
	}
	initial := !w.st.Watch.observed()
	var known []int32
	if !initial {
		known = w.st.Watch.Registered
	}
	if w.sense {
		return w.startSensing(actx, retry, known, initial)
	}
	actx = workflow.WithActivityOptions(actx, workflow.ActivityOptions{
		// A slot of the sensing worker, never one an operation needs.
		TaskQueue: sensingQueue(ctx),
		// Hours of waiting are its job; a dead worker is noticed by the
		// missing heartbeat, in seconds.
		StartToCloseTimeout: 24 * time.Hour,
		HeartbeatTimeout:    15 * time.Second,
		Summary:             "watch broker registrations in ZooKeeper",
		RetryPolicy:         retry,
	})
	in := activities.WatchInput{Spec: *w.spec, Initial: initial, Known: known}
	return workflow.ExecuteActivity(actx, a.WatchBrokers, in)
}

// startSensing runs one Sense activity: it blocks on the registrations and
// ticks the health loop where it runs, and answers only when the entity
// must hear of something. Its heartbeats, sized by the spec's
// SensingHeartbeat, are what an idle cluster costs; a worker that dies
// leaves the cluster unsensed for at most that long.
func (w *brokerWatch) startSensing(ctx workflow.Context, retry *temporal.RetryPolicy, known []int32, initial bool) workflow.Future {
	policy := w.spec.Health.WithDefaults()
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           sensingQueue(ctx),
		StartToCloseTimeout: 24 * time.Hour,
		HeartbeatTimeout:    policy.SensingHeartbeat,
		Summary:             "sense: broker registrations and health ticks, reported on change",
		RetryPolicy:         retry,
	})
	in := activities.SenseInput{Spec: *w.spec, Initial: initial, Known: known, ReportNow: w.reportNow}
	if hs := w.st.Health; hs != nil {
		in.Verdict, in.ReportBy = hs.Verdict, hs.ReportBy
	}
	w.reportNow = false
	return workflow.ExecuteActivity(ctx, a.Sense, in)
}

// askReport has sensing run a health tick at once and report it: the
// running Sense is cancelled and the next one starts with ReportNow.
func (w *brokerWatch) askReport() {
	w.reportNow = true
	if w.watching != nil {
		w.restart = true
		w.cancel()
	}
}

// stop cancels the running watch and starts no other (continue-as-new).
func (w *brokerWatch) stop() {
	w.stopped = true
	w.cancel()
}

// respec starts the watch again at once on the entity's new spec when the
// cluster's ZooKeeper moved; the running one watches the old address.
func (w *brokerWatch) respec(old fleet.ClusterSpec) {
	// A broker added or removed is missing, or no longer, by the new
	// spec's count (status and the UI show it); only the display changes.
	if ws := w.st.Watch; ws != nil {
		ws.Missing = minus(w.spec.BrokerIDs(), ws.Registered)
	}
	// Sensing (version 4) scrapes the spec's brokers by the spec's policy:
	// any new spec starts it again.
	if old.ZooKeeper == w.spec.ZooKeeper && !w.sense {
		return
	}
	if w.watching != nil || w.backoff != nil {
		w.restart = true
		w.cancel()
	}
}

// observed reports whether the watch has answered at least once.
func (ws *WatchState) observed() bool { return ws != nil && !ws.ObservedAt.IsZero() }

func (w *brokerWatch) drainTouches(ctx workflow.Context) {
	var t BrokerTouch
	for w.touches.ReceiveAsync(&t) {
		w.touch(ctx, t)
		t = BrokerTouch{}
	}
}

// touch applies an operation's touch: the broker is being taken down by
// kfleet (Touching) or no longer.
func (w *brokerWatch) touch(ctx workflow.Context, t BrokerTouch) {
	log := workflow.GetLogger(ctx)
	w.let(func(x BrokerTouch) bool { return x.Broker == t.Broker && x.By == t.By }, workflow.Now(ctx))
	if !t.Touching {
		log.Info("operation is done with broker", "Cluster", w.spec.ID, "Broker", t.Broker, "By", t.By)
		return
	}
	t.Since = workflow.Now(ctx)
	w.st.Touching = append(w.st.Touching, t)
	log.Info("operation is taking broker down", "Cluster", w.spec.ID, "Broker", t.Broker, "By", t.By)
}

// release lets go of every broker an operation (or a workflow it started:
// IDs below its own) touched, when it ends however it ends.
func (w *brokerWatch) release(op Operation) {
	w.let(func(t BrokerTouch) bool {
		return t.By == op.WorkflowID || strings.HasPrefix(t.By, op.WorkflowID+"/")
	}, op.FinishedAt)
}

// let removes the touches that match from Touching; from version 4 they
// are kept in Released as of at, until an answer observed after it.
func (w *brokerWatch) let(match func(BrokerTouch) bool, at time.Time) {
	if w.sense {
		for _, t := range w.st.Touching {
			if match(t) {
				t.ReleasedAt = at
				w.st.Released = append(w.st.Released, t)
			}
		}
	}
	w.st.Touching = slices.DeleteFunc(w.st.Touching, match)
}

// touched finds a touch of broker in force when an answer observed at saw
// it gone: one still held, or (version 4) one released after at.
func (w *brokerWatch) touched(broker int32, at time.Time) (BrokerTouch, bool) {
	if i := slices.IndexFunc(w.st.Touching, func(t BrokerTouch) bool { return t.Broker == broker }); i >= 0 {
		return w.st.Touching[i], true
	}
	if i := slices.IndexFunc(w.st.Released, func(t BrokerTouch) bool { return t.Broker == broker && !at.After(t.ReleasedAt) }); i >= 0 {
		return w.st.Released[i], true
	}
	return BrokerTouch{}, false
}

// forgetReleased drops the touches released before an answer observed at:
// every later answer was observed after them too.
func (w *brokerWatch) forgetReleased(at time.Time) {
	w.st.Released = slices.DeleteFunc(w.st.Released, func(t BrokerTouch) bool { return at.After(t.ReleasedAt) })
}

func (w *brokerWatch) failed(ctx workflow.Context, err error) {
	if w.st.Watch == nil {
		w.st.Watch = &WatchState{}
	}
	w.st.Watch.Error = err.Error()
	workflow.GetLogger(ctx).Error("broker watch failed; retrying", "Cluster", w.spec.ID, "Error", err, "RetryIn", watchRetryDelay)
}

// observe records a new registered set and what it means.
func (w *brokerWatch) observe(ctx workflow.Context, ch activities.BrokerChange) {
	log := workflow.GetLogger(ctx)
	at := ch.ObservedAt
	if at.IsZero() {
		at = workflow.Now(ctx)
	}
	defer w.forgetReleased(at)
	prev := w.st.Watch
	if prev.observed() && slices.Equal(prev.Registered, ch.Registered) {
		prev.ObservedAt, prev.Error = at, "" // nothing changed
		return
	}
	next := &WatchState{Registered: ch.Registered, ObservedAt: at}
	for _, b := range w.spec.BrokerIDs() {
		if !slices.Contains(ch.Registered, b) {
			next.Missing = append(next.Missing, b)
		}
	}
	w.st.Watch = next
	if !prev.observed() {
		// The first answer is the baseline: a broker missing already was
		// not seen leaving and is not recorded as a loss.
		log.Info("broker watch started", "Cluster", w.spec.ID, "Registered", ch.Registered, "Missing", next.Missing)
		if len(next.Missing) > 0 {
			log.Warn("brokers of the spec are not registered", "Cluster", w.spec.ID, "Missing", next.Missing)
		}
		return
	}
	change := RegistrationChange{At: at, Added: minus(ch.Registered, prev.Registered), Removed: minus(prev.Registered, ch.Registered)}
	next.Changes, next.Last = prev.Changes+1, &change
	log.Info("broker registrations changed", "Cluster", w.spec.ID, "Added", change.Added, "Removed", change.Removed, "Registered", ch.Registered)
	for _, b := range change.Removed {
		w.lost(ctx, b, at)
	}
	for _, b := range change.Added {
		w.returned(ctx, b, at)
	}
}

// lost records a broker's registration vanishing, unless kfleet took it
// down itself.
func (w *brokerWatch) lost(ctx workflow.Context, broker int32, at time.Time) {
	log := workflow.GetLogger(ctx)
	if _, ok := w.spec.Broker(broker); !ok {
		log.Info("a broker that is not in the spec left", "Cluster", w.spec.ID, "Broker", broker)
		return
	}
	if t, ok := w.touched(broker, at); ok {
		log.Info("broker left: kfleet's own restart", "Cluster", w.spec.ID, "Broker", broker, "By", t.By)
		return
	}
	if slices.ContainsFunc(w.st.Losses, func(l BrokerLoss) bool { return l.Broker == broker && !l.Recovered }) {
		return // recorded already
	}
	loss := BrokerLoss{Broker: broker, At: at}
	if w.st.Running != nil {
		loss.Operation = w.st.Running.ID
	}
	w.st.Losses = append(w.st.Losses, loss)
	for len(w.st.Losses) > lossesKept {
		i := slices.IndexFunc(w.st.Losses, func(l BrokerLoss) bool { return l.Recovered })
		if i < 0 {
			break
		}
		w.st.Losses = slices.Delete(w.st.Losses, i, i+1)
	}
	log.Warn("broker lost: its registration vanished and kfleet was not touching it", "Cluster", w.spec.ID, "Broker", broker, "At", at, "Operation", loss.Operation)
	countBrokerLoss(ctx, w.spec.ID)
}

// returned closes the open loss of a broker that registered again.
func (w *brokerWatch) returned(ctx workflow.Context, broker int32, at time.Time) {
	for i := range w.st.Losses {
		if l := &w.st.Losses[i]; l.Broker == broker && !l.Recovered {
			l.Recovered, l.RecoveredAt = true, at
			workflow.GetLogger(ctx).Info("lost broker registered again", "Cluster", w.spec.ID, "Broker", broker, "LostFor", at.Sub(l.At))
		}
	}
}

// OpenLosses are the losses not recovered yet.
func (st ClusterState) OpenLosses() []BrokerLoss {
	var open []BrokerLoss
	for _, l := range st.Losses {
		if !l.Recovered {
			open = append(open, l)
		}
	}
	return open
}

// watchDetails is the watch's line in the entity's current details.
func (st ClusterState) watchDetails() string {
	w := st.Watch
	switch {
	case w == nil:
		return "Broker watch: starting."
	case w.Error != "":
		return fmt.Sprintf("Broker watch: **failing**: %s", w.Error)
	case len(w.Missing) > 0:
		return fmt.Sprintf("Broker watch: registered %v, **missing %v** (as of %s).", w.Registered, w.Missing, w.ObservedAt.Format(time.RFC3339))
	}
	return fmt.Sprintf("Broker watch: all %d registered (as of %s).", len(w.Registered), w.ObservedAt.Format(time.RFC3339))
}

// minus returns the ids of xs that are not in ys, in the order of xs.
func minus(xs, ys []int32) []int32 {
	var out []int32
	for _, x := range xs {
		if !slices.Contains(ys, x) {
			out = append(out, x)
		}
	}
	return out
}
