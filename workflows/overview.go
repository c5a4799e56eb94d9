package workflows

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/internal/fleet"
)

// The fleet overview's read model. A cluster's entity keeps a small
// summary of itself in its memo; Temporal's visibility hands every
// entity's memo back in one listing, so the overview page shows two
// thousand clusters without querying any of them (a query is a billed
// action, a listing is not). The summary carries states and counts, never
// partition lists, and is upserted only when it differs from the last one
// (disk and heap in whole percent), so a steady cluster adds nothing to
// its history.

// Memo keys.
const (
	// MemoOverview holds a cluster entity's ClusterOverview.
	MemoOverview = "overview"
	// MemoPausedSince holds when a workflow began waiting for a human (a
	// time), beside the Paused search attribute; absent while it does not.
	MemoPausedSince = "pausedSince"
)

// overviewMemoChange versions the entity's overview memo and a paused
// workflow's MemoPausedSince: runs recorded before them replay without
// the upserts.
const (
	overviewMemoChange    = "overview-memo"
	pausedSinceMemoChange = "paused-since-memo"
)

// overviewFindings is how many of the newest findings the memo carries.
const overviewFindings = 3

// ClusterOverview is what the fleet overview shows of one cluster.
type ClusterOverview struct {
	Cluster string            `json:"cluster"`
	Mode    fleet.ClusterMode `json:"mode"`
	// Version is the Kafka release the brokers run, as far as kfleet knows.
	Version string `json:"version,omitempty"`
	// Controllers counts a KRaft cluster's controllers.
	Controllers int              `json:"controllers,omitempty"`
	Brokers     []BrokerOverview `json:"brokers"`
	// SensedAt is when sensing last reported health; SenseError says why
	// it could not, while it cannot.
	SensedAt   time.Time `json:"sensedAt,omitzero"`
	SenseError string    `json:"senseError,omitempty"`
	// Operations are the running ones (maintenance and urgent lanes);
	// Queued counts those waiting.
	Operations []OperationOverview `json:"operations,omitempty"`
	Queued     int                 `json:"queued,omitempty"`
	// Paused is set while the entity starts no queued operation.
	Paused *PauseState `json:"paused,omitempty"`
	// Findings are the newest few; Found counts every one.
	Findings []Finding `json:"findings,omitempty"`
	Found    int       `json:"found,omitempty"`
	// Tenants counts the cluster's tenants, Plans them by plan.
	Tenants int            `json:"tenants,omitempty"`
	Plans   map[string]int `json:"plans,omitempty"`
}

// BrokerOverview is one broker's state and gauges, in whole percent.
type BrokerOverview struct {
	ID    int32  `json:"id"`
	State string `json:"state"` // Broker* below
	// DiskPct and HeapPct are the data disk's and old generation's use;
	// -1 when not known.
	DiskPct int `json:"diskPct"`
	HeapPct int `json:"heapPct"`
	// CleanerDead counts the log cleaner's dead threads.
	CleanerDead int `json:"cleanerDead,omitempty"`
}

// Broker states as the overview shows them.
const (
	BrokerUp = "up"
	// BrokerRestarting: an operation of kfleet has it down.
	BrokerRestarting = "restarting"
	// BrokerMissing: not registered, and not yet judged lost (its grace).
	BrokerMissing = "missing"
	// BrokerLost: lost without kfleet touching it; recovery not yet queued.
	BrokerLost = "lost"
	// BrokerRecovering: lost, and its recovery is queued or running.
	BrokerRecovering = "recovering"
	// BrokerUnreadable: registered, but its metrics cannot be read.
	BrokerUnreadable = "unreadable"
)

// OperationOverview is a running operation as the overview lists it.
type OperationOverview struct {
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	WorkflowID  string    `json:"workflowId"`
	StartedAt   time.Time `json:"startedAt,omitzero"`
	Brokers     []int32   `json:"brokers,omitempty"`
	RequestedBy string    `json:"requestedBy,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	Cancelling  bool      `json:"cancelling,omitempty"`
}

// overviewOf summarises an entity's spec and state.
func overviewOf(spec fleet.ClusterSpec, st ClusterState) ClusterOverview {
	o := ClusterOverview{
		Cluster:     spec.ID,
		Mode:        spec.Mode(),
		Controllers: len(spec.ControllerIDs()),
		Queued:      len(st.Queue),
		Paused:      st.Paused,
	}
	if p := st.Protocol; p != nil {
		o.Version = p.KafkaVersion
	}
	if h := st.Health; h != nil {
		o.SensedAt, o.SenseError, o.Found = h.LastTick, h.Error, h.Found
		o.Findings = slices.Clone(h.Findings[max(0, len(h.Findings)-overviewFindings):])
	}
	for _, b := range spec.Brokers {
		o.Brokers = append(o.Brokers, brokerOverview(b.ID, st))
	}
	running := slices.Clone(st.Urgent)
	if st.Running != nil {
		running = append([]Operation{*st.Running}, running...)
	}
	for _, op := range running {
		o.Operations = append(o.Operations, OperationOverview{
			ID: op.ID, Kind: op.Kind, WorkflowID: op.WorkflowID, StartedAt: op.StartedAt, Brokers: op.Brokers,
			RequestedBy: op.RequestedBy, Reason: op.Reason, Cancelling: op.CancelledBy != "",
		})
	}
	for _, t := range st.Tenants {
		if o.Plans == nil {
			o.Plans = map[string]int{}
		}
		o.Tenants++
		o.Plans[t.Plan.Name]++
	}
	return o
}

// brokerOverview judges one broker from what the entity knows: its own
// operations first (a broker kfleet took down is not lost), then losses,
// the watch, and the health report.
func brokerOverview(id int32, st ClusterState) BrokerOverview {
	b := BrokerOverview{ID: id, State: BrokerUp, DiskPct: -1, HeapPct: -1}
	var last *fleet.BrokerHealth
	if h := st.Health; h != nil {
		if i := slices.IndexFunc(h.Brokers, func(s BrokerHealthState) bool { return s.Broker == id }); i >= 0 {
			last = &h.Brokers[i].Last
		}
	}
	if last != nil && last.Error == "" {
		if last.Disk.SizeBytes > 0 {
			b.DiskPct = int(math.Round(last.Disk.Percent()))
		}
		if last.Heap.Max > 0 {
			b.HeapPct = int(math.Round(float64(last.Heap.Used) * 100 / float64(last.Heap.Max)))
		}
		b.CleanerDead = last.Cleaner.DeadThreads
	}
	openLoss := slices.IndexFunc(st.Losses, func(l BrokerLoss) bool { return l.Broker == id && !l.Recovered })
	switch {
	case slices.ContainsFunc(st.Touching, func(t BrokerTouch) bool { return t.Broker == id }):
		b.State = BrokerRestarting
	case openLoss >= 0 && st.Losses[openLoss].Recovery != "":
		b.State = BrokerRecovering
	case openLoss >= 0:
		b.State = BrokerLost
	case st.Watch != nil && slices.Contains(st.Watch.Missing, id):
		b.State = BrokerMissing
	case last != nil && last.Error != "":
		b.State = BrokerUnreadable
	}
	return b
}

// overviewMemo keeps an entity's memo in step with its state.
type overviewMemo struct {
	enabled bool
	last    []byte
}

// newOverviewMemo versions the memo: histories recorded before it replay
// without its upserts.
func newOverviewMemo(ctx workflow.Context) *overviewMemo {
	return &overviewMemo{enabled: workflow.GetVersion(ctx, overviewMemoChange, workflow.DefaultVersion, 1) >= 1}
}

// publish upserts the overview when it differs from the last upserted.
func (m *overviewMemo) publish(ctx workflow.Context, spec fleet.ClusterSpec, st ClusterState) {
	if m == nil || !m.enabled {
		return
	}
	o := overviewOf(spec, st)
	b, err := json.Marshal(o)
	if err != nil || bytes.Equal(b, m.last) {
		return
	}
	if err := workflow.UpsertMemo(ctx, map[string]any{MemoOverview: o}); err != nil {
		workflow.GetLogger(ctx).Warn("cannot upsert the overview memo", "Cluster", spec.ID, "Error", err)
		return
	}
	m.last = b
}

// setPausedSince keeps MemoPausedSince beside the Paused search attribute:
// visibility then tells how long a workflow has waited for a human without
// asking it (the overview's metrics alert on an hour).
func setPausedSince(ctx workflow.Context, paused bool) {
	if workflow.GetVersion(ctx, pausedSinceMemoChange, workflow.DefaultVersion, 1) < 1 {
		return
	}
	var since any // nil removes the key
	if paused {
		since = workflow.Now(ctx).UTC()
	}
	if err := workflow.UpsertMemo(ctx, map[string]any{MemoPausedSince: since}); err != nil {
		workflow.GetLogger(ctx).Warn("cannot set the pausedSince memo", "Error", err)
	}
}
