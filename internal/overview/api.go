// Package overview serves the fleet overview: one page listing every
// cluster with its brokers' states, disk, log cleaner and heap, the
// operations running and those waiting for a human, recent findings, and
// tenants by plan; it updates itself.
//
// It reads Temporal's visibility, never the clusters: each cluster's entity
// keeps its summary in its memo (workflows.ClusterOverview), and a workflow
// waiting for a human carries the Paused search attribute and the time it
// began waiting in its memo. One listing of the entities (a page per
// thousand) is the whole fleet, and a listing is not a billed action. Only
// the steps of running operations are queries; they are asked while
// somebody is looking, at most every few seconds, and only for what runs.
//
// The page is read-only: whatever it suggests doing is a chat command,
// which the ChatOps server authorizes.
package overview

import (
	"time"

	"github.com/kfleet/kfleet/workflows"
)

// Paths the server serves.
const (
	PathPage     = "/"
	PathSnapshot = "/api/overview"
	PathMetrics  = "/metrics"
	PathHealthz  = "/healthz"
)

// Snapshot is the whole fleet as the page shows it.
type Snapshot struct {
	// Generated is when the listing behind it was read.
	Generated time.Time `json:"generated"`
	// RefreshMillis is how often the page asks again.
	RefreshMillis int64 `json:"refreshMillis"`
	// Error is why the last listing failed; the snapshot is the one before.
	Error    string    `json:"error,omitempty"`
	Counts   Counts    `json:"counts"`
	Clusters []Cluster `json:"clusters"`
	// Waiting are the workflows waiting for a human, longest first.
	Waiting []Waiting `json:"waiting"`
	// Findings are the fleet's newest findings, newest first.
	Findings []FleetFinding `json:"findings"`
}

// Counts sum the fleet up for the page's header.
type Counts struct {
	Clusters    int `json:"clusters"`
	Critical    int `json:"critical"`
	Warning     int `json:"warning"`
	Unknown     int `json:"unknown"`
	Brokers     int `json:"brokers"`
	BrokersDown int `json:"brokersDown"`
	Operations  int `json:"operations"`
	Waiting     int `json:"waiting"`
	Tenants     int `json:"tenants"`
}

// Cluster is one row: the entity's own summary and the overview's verdict.
type Cluster struct {
	workflows.ClusterOverview
	// Health is Critical, Warning, OK or Unknown; Concerns say why.
	Health   string   `json:"health"`
	Concerns []string `json:"concerns,omitempty"`
	// EntityURL is the entity's page in the Temporal UI ("" without one).
	EntityURL string `json:"entityUrl,omitempty"`
	// Progress is each running operation's progress, by operation id, as
	// its kind reads it (while somebody looks at the page).
	Progress map[string][]string `json:"progress,omitempty"`
	// URLs are each running operation's page in the Temporal UI, by id.
	URLs map[string]string `json:"urls,omitempty"`
}

// Health verdicts, most urgent first.
const (
	Critical = "critical"
	Warning  = "warning"
	Unknown  = "unknown"
	OK       = "ok"
)

// Waiting is a workflow waiting for a human's decision, or a paused
// cluster's entity.
type Waiting struct {
	Cluster    string `json:"cluster"`
	Operation  string `json:"operation"`
	WorkflowID string `json:"workflowId"`
	// Since is when it began waiting (zero: not known, a workflow paused
	// before kfleet kept the time).
	Since time.Time `json:"since,omitzero"`
	URL   string    `json:"url,omitempty"`
	// Chat is how to answer it, through the ChatOps server.
	Chat string `json:"chat"`
}

// FleetFinding is a finding and the cluster it was found on.
type FleetFinding struct {
	Cluster string `json:"cluster"`
	workflows.Finding
}
