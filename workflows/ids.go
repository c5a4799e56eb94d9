// Package workflows holds kfleet's Temporal workflows: deterministic
// orchestration only. Every side effect is an activity (package activities);
// every safety rule comes from internal/fleet.
package workflows

import (
	"fmt"
	"os"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// TaskQueue is the default task queue of kfleet's workflows and of the
// activities operations run; KFLEET_TASK_QUEUE names another (QueueFromEnv)
// for every process of a deployment, workers and clients alike.
const TaskQueue = "kfleet"

// SensingTaskQueue is the default task queue of long-lived sensing (each
// entity's Sense activity): its workflow task queue with SensingSuffix.
// Its own queue gives it its own worker and slot pool: a fleet of
// thousands of clusters holds one sensing activity each, and none of them
// may hold a slot an operation needs.
const SensingTaskQueue = TaskQueue + SensingSuffix

// SensingSuffix makes a workflow task queue's sensing queue.
const SensingSuffix = "-sensing"

// QueueFromEnv is the deployment's task queue: KFLEET_TASK_QUEUE, or
// TaskQueue. Workers poll it (and its sensing queue); clients start
// entities, approvals and schedules on it. Not for workflow code: an
// entity schedules sensing on its own task queue's sensing queue.
func QueueFromEnv() string {
	if q := os.Getenv("KFLEET_TASK_QUEUE"); q != "" {
		return q
	}
	return TaskQueue
}

// sensingQueue is the sensing queue of the workflow's own task queue.
func sensingQueue(ctx workflow.Context) string {
	return workflow.GetInfo(ctx).TaskQueueName + SensingSuffix
}

// Update, query and workflow names clients use.
const (
	UpdateSetSpec = "set-spec"
	// UpdateRequest admits an operation of any kind (Request, kinds.go).
	UpdateRequest = "request"
	QueryStatus   = "status"
	QueryProgress = "progress"
	UpdateDecide  = "decide"
	// UpdateApprove and QueryApproval are an approval's (approval.go).
	UpdateApprove = "approve"
	QueryApproval = "approval"
	// UpdateHealthCheck runs a health tick now (cluster_requests.go).
	UpdateHealthCheck = "health-check"
)

// The cluster entity's controls (updates) and the signal a roll sends it
// around each broker it takes down.
const (
	UpdatePause  = "pause"
	UpdateResume = "resume"
	UpdateCancel = "cancel"
	// SignalBrokerTouch carries a BrokerTouch from a roll to its entity.
	SignalBrokerTouch = "broker-touch"
	// SignalOperationEnded carries an OperationEnd from an operation's
	// workflow to its entity.
	SignalOperationEnded = "operation-ended"
)

// Search attributes kfleet registers on the Temporal namespace.
var (
	AttrClusterID = temporal.NewSearchAttributeKeyKeyword("ClusterID")
	AttrOperation = temporal.NewSearchAttributeKeyKeyword("Operation")
	AttrBrokerID  = temporal.NewSearchAttributeKeyInt64("BrokerID")
	// AttrTenant names the tenant a tenant operation concerns.
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

// IsClusterWorkflowID reports whether id is a cluster entity's workflow ID
// (and not one of an operation below it).
func IsClusterWorkflowID(id string) bool {
	cluster, ok := strings.CutPrefix(id, ClusterWorkflowID(""))
	return ok && cluster != "" && !strings.Contains(cluster, "/")
}

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

// Schedules (internal/schedules): a cluster's maintenance window is
// schedule/<cluster>/<verb>; it starts cluster/<cluster>/scheduled/<verb>-
// <time> (the server appends the time), a ScheduledActionWorkflow. The
// fleet sweep is schedule/fleet-sweep and starts fleet/sweep-<time>.
const (
	SchedulePrefix = "schedule/"
	// FleetSweepScheduleID is the fleet-wide sweep's schedule.
	FleetSweepScheduleID = SchedulePrefix + "fleet-sweep"
	// FleetSweepWorkflowIDPrefix is the prefix of the sweeps it starts.
	FleetSweepWorkflowIDPrefix = "fleet/sweep"
	// OpFleetSweep is the Operation search attribute of a sweep.
	OpFleetSweep = "fleet-sweep"
	// OpApproval is the Operation search attribute of an approval.
	OpApproval = "approval"
)

// ClusterScheduleID is the ID of a cluster's maintenance window for verb.
func ClusterScheduleID(cluster, verb string) string { return SchedulePrefix + cluster + "/" + verb }

// ScheduledWorkflowID is the prefix of the workflow IDs a cluster's window
// starts (the server appends the scheduled time).
func ScheduledWorkflowID(cluster, verb string) string {
	return ClusterWorkflowID(cluster) + "/scheduled/" + verb
}

// ScheduledOperation is the Operation search attribute of the workflows a
// cluster's window starts, e.g. scheduled-restart.
func ScheduledOperation(verb string) string { return "scheduled-" + verb }

// setPaused upserts AttrPaused. Versioned: histories recorded before it
// existed replay without the upsert command.
func setPaused(ctx workflow.Context, paused bool) {
	if workflow.GetVersion(ctx, "paused-attribute", workflow.DefaultVersion, 1) < 1 {
		return
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, AttrPaused.ValueSet(paused)); err != nil {
		workflow.GetLogger(ctx).Warn("cannot set the Paused search attribute", "Error", err)
	}
	setPausedSince(ctx, paused) // overview.go
}
