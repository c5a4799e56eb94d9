// Package workflows holds kfleet's Temporal workflows: deterministic
// orchestration only. Every side effect is an activity (package activities);
// every safety rule comes from internal/fleet.
package workflows

import (
	"fmt"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// TaskQueue is the one task queue kfleet's worker polls.
const TaskQueue = "kfleet"

// Operation kinds, as recorded in the cluster entity and the Operation
// search attribute.
const (
	OpRollingRestart = "rolling-restart"
	OpRollingUpgrade = "rolling-upgrade"
	// OpRecovery brings back a broker lost without a controlled shutdown.
	OpRecovery = "recovery"
	// OpVolumeExpansion grows a broker's data volume (or escalates while
	// it cannot).
	OpVolumeExpansion = "volume-expansion"
	// OpCleanerHealth checks the log cleaner and restarts, gated, the
	// brokers whose cleaner is dead or stuck.
	OpCleanerHealth = "cleaner-health"
)

// urgent reports whether operations of kind start beside the running
// maintenance operation: they never take a broker down (a recovery starts
// a broker that is down; an expansion grows a disk online), and waiting
// behind a roll that itself waits for the cluster to be healthy would
// deadlock.
func urgent(kind string) bool { return kind == OpRecovery || kind == OpVolumeExpansion }

// Update, query and workflow names clients use.
const (
	UpdateSetSpec        = "set-spec"
	UpdateRequestRestart = "request-restart"
	UpdateRequestUpgrade = "request-upgrade"
	QueryStatus          = "status"
	QueryProgress        = "progress"
	UpdateDecide         = "decide"
	// UpdateApprove and QueryApproval are an approval's (approval.go).
	UpdateApprove = "approve"
	QueryApproval = "approval"
	// Requests to the entity beyond restarts and upgrades
	// (cluster_requests.go).
	UpdateRequestExpansion    = "request-expansion"
	UpdateRequestCleanerCheck = "request-cleaner-check"
	UpdateHealthCheck         = "health-check"
)

// The cluster entity's controls (updates) and the signal a roll sends it
// around each broker it takes down.
const (
	UpdatePause  = "pause"
	UpdateResume = "resume"
	UpdateCancel = "cancel"
	// SignalBrokerTouch carries a BrokerTouch from a roll to its entity.
	SignalBrokerTouch = "broker-touch"
)

// Search attributes kfleet registers on the Temporal namespace.
var (
	AttrClusterID = temporal.NewSearchAttributeKeyKeyword("ClusterID")
	AttrOperation = temporal.NewSearchAttributeKeyKeyword("Operation")
	AttrBrokerID  = temporal.NewSearchAttributeKeyInt64("BrokerID")
	// AttrTenant is for tenant operations (later workflows).
	AttrTenant = temporal.NewSearchAttributeKeyKeyword("Tenant")
	// AttrPaused is true while an operation waits for a human (a roll or
	// recovery asking resume/skip/abort) or a cluster's entity is paused.
	AttrPaused = temporal.NewSearchAttributeKeyBool("Paused")
)

// SearchAttributeFlags lists the attributes as the temporal CLI registers
// them: --search-attribute NAME=TYPE.
func SearchAttributeFlags() []string {
	return []string{
		AttrClusterID.GetName() + "=Keyword",
		AttrOperation.GetName() + "=Keyword",
		AttrBrokerID.GetName() + "=Int",
		AttrTenant.GetName() + "=Keyword",
		AttrPaused.GetName() + "=Bool",
	}
}

// ClusterWorkflowID is the ID of a cluster's entity workflow.
func ClusterWorkflowID(cluster string) string { return "cluster/" + cluster }

// OperationWorkflowID is the ID of the child workflow running one operation.
func OperationWorkflowID(cluster, kind, opID string) string {
	return fmt.Sprintf("cluster/%s/%s/%s", cluster, kind, opID)
}

// ApprovalWorkflowID is the ID of the approval of a chat request; id is
// unique per request (the chat server derives it).
func ApprovalWorkflowID(cluster, id string) string {
	return fmt.Sprintf("cluster/%s/approval/%s", cluster, id)
}

// UpgradePhaseWorkflowID is the ID of the rolling restart running one phase
// of an upgrade: the upgrade's own ID and the phase, e.g.
// cluster/local-a/upgrade/<id>/binaries.
func UpgradePhaseWorkflowID(upgradeWorkflowID, phase string) string {
	return upgradeWorkflowID + "/" + phase
}

// CleanerRestartWorkflowID is the ID of the rolling restart a cleaner-health
// operation runs for the brokers whose cleaner it found unhealthy.
func CleanerRestartWorkflowID(cleanerWorkflowID string) string { return cleanerWorkflowID + "/restart" }

// setPaused upserts AttrPaused. Versioned: histories recorded before it
// existed replay without the upsert command.
func setPaused(ctx workflow.Context, paused bool) {
	if workflow.GetVersion(ctx, "paused-attribute", workflow.DefaultVersion, 1) < 1 {
		return
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, AttrPaused.ValueSet(paused)); err != nil {
		workflow.GetLogger(ctx).Warn("cannot set the Paused search attribute", "Error", err)
	}
}
