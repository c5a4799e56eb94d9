package workflows

import (
	"errors"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"
)

// kfleet's own metrics, emitted from workflow code through
// workflow.GetMetricsHandler: the SDK drops them while a workflow replays,
// so each is counted once however often its history is replayed. The
// worker's handler adds the SDK's tags (namespace, task_queue,
// workflow_type) to these.
const (
	// MetricOperations counts the operations a cluster entity finished,
	// by TagCluster, TagKind and TagOutcome (a StatusSucceeded,
	// StatusFailed or StatusCancelled).
	MetricOperations = "kfleet_operations_total"
	// MetricGateWait is how long a roll's next broker (or batch) waited
	// for its gates to open, by TagCluster.
	MetricGateWait = "kfleet_gate_wait_seconds"
	// MetricRecoveries counts finished recoveries by TagCluster, TagCause
	// (an internal/fleet CrashCause, or CauseUndiagnosed) and TagOutcome (one of the
	// Recovery* outcomes).
	MetricRecoveries = "kfleet_recoveries_total"
	// MetricBrokerLosses counts brokers lost without kfleet touching them,
	// by TagCluster.
	MetricBrokerLosses = "kfleet_broker_losses_total"
)

// Tag (label) keys of kfleet's metrics.
const (
	TagCluster = "cluster"
	TagKind    = "kind"
	TagOutcome = "outcome"
	TagCause   = "cause"
)

// Outcomes of a recovery (TagOutcome of MetricRecoveries).
const (
	// RecoveryRecovered: kfleet started the broker and it is back.
	RecoveryRecovered = "recovered"
	// RecoveryHostReplaced: the broker's instance was gone and kfleet
	// gave it a new host.
	RecoveryHostReplaced = "host-replaced"
	// RecoveryCameBack: the broker came back by itself; kfleet only
	// watched.
	RecoveryCameBack = "came-back"
	// RecoveryAborted: a human aborted it while it waited for a decision.
	RecoveryAborted = "aborted"
	RecoveryFailed  = StatusFailed
	// RecoveryCancelled: the recovery was cancelled (a human, or its
	// entity).
	RecoveryCancelled = StatusCancelled
	// CauseUndiagnosed is the cause of a broker that came back within its
	// grace, before any diagnosis.
	CauseUndiagnosed = "undiagnosed"
)

// MetricHelp describes kfleet's metrics by name, for the exposition's HELP
// lines.
func MetricHelp() map[string]string {
	return map[string]string{
		MetricOperations:   "Operations a cluster entity finished, by kind and outcome (succeeded, failed, cancelled).",
		MetricGateWait:     "Time a rolling restart's next broker or batch waited for its safety gates to open.",
		MetricRecoveries:   "Recoveries of brokers lost without a controlled shutdown, by crash cause and outcome (recovered, came-back, aborted, failed, cancelled).",
		MetricBrokerLosses: "Brokers whose ZooKeeper registration vanished while kfleet was not touching them.",
	}
}

// countOperation counts an operation the entity finished with status.
func countOperation(ctx workflow.Context, cluster, kind, status string) {
	workflow.GetMetricsHandler(ctx).
		WithTags(map[string]string{TagCluster: cluster, TagKind: kind, TagOutcome: status}).
		Counter(MetricOperations).Inc(1)
}

// recordGateWait records how long a roll's step waited for its gates.
func recordGateWait(ctx workflow.Context, cluster string, waited time.Duration) {
	workflow.GetMetricsHandler(ctx).
		WithTags(map[string]string{TagCluster: cluster}).
		Timer(MetricGateWait).Record(waited)
}

// countRecovery counts a finished recovery: err is how RecoveryWorkflow
// ended.
func countRecovery(ctx workflow.Context, cluster string, res RecoveryResult, err error) {
	cause := string(res.Cause)
	if cause == "" {
		cause = CauseUndiagnosed
	}
	outcome := RecoveryRecovered
	var appErr *temporal.ApplicationError
	switch {
	case temporal.IsCanceledError(err):
		outcome = RecoveryCancelled
	case errors.As(err, &appErr) && appErr.Type() == ErrTypeAbortedByHuman:
		outcome = RecoveryAborted
	case err != nil:
		outcome = RecoveryFailed
	case res.CameBack:
		outcome = RecoveryCameBack
	case res.Replaced != nil:
		outcome = RecoveryHostReplaced
	}
	workflow.GetMetricsHandler(ctx).
		WithTags(map[string]string{TagCluster: cluster, TagCause: cause, TagOutcome: outcome}).
		Counter(MetricRecoveries).Inc(1)
}

// countBrokerLoss counts a broker loss the watch recorded.
func countBrokerLoss(ctx workflow.Context, cluster string) {
	workflow.GetMetricsHandler(ctx).
		WithTags(map[string]string{TagCluster: cluster}).
		Counter(MetricBrokerLosses).Inc(1)
}
