package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// VolumeExpansionInput asks to grow a broker's data volume.
type VolumeExpansionInput struct {
	Spec        fleet.ClusterSpec `json:"spec"`
	Broker      int32             `json:"broker"`
	OperationID string            `json:"operationId"`
	RequestedBy string            `json:"requestedBy"`
	// GrowthBytesPerSec is the data's growth the health loop observed; the
	// new size keeps the disk under the threshold for a cool-down at it.
	GrowthBytesPerSec float64 `json:"growthBytesPerSec"`
	// CooldownUntil is the end of the cool-down the entity recorded for
	// this broker's volume (zero: none known).
	CooldownUntil time.Time `json:"cooldownUntil,omitzero"`
	// Requested: an operator asked for it, so the volume grows even below
	// the threshold (by the planned size, at least the minimum step).
	Requested bool `json:"requested,omitempty"`
}

// Outcomes of a volume expansion.
const (
	ExpansionExpanded  = "expanded"
	ExpansionNotNeeded = "not-needed"
	// ExpansionDeferred: inside the cool-down and below the escalation
	// threshold; the next tick after the cool-down expands.
	ExpansionDeferred = "deferred"
	// ExpansionEscalated: the disk passed the escalation threshold while
	// the volume could not grow: heaviest tenants throttled, human paged.
	ExpansionEscalated = "escalated"
)

// VolumeExpansionResult is what the expansion did.
type VolumeExpansionResult struct {
	Broker      int32   `json:"broker"`
	Outcome     string  `json:"outcome"`
	Reason      string  `json:"reason"`
	VolumeID    string  `json:"volumeId,omitempty"`
	FromGiB     int32   `json:"fromGiB,omitempty"`
	ToGiB       int32   `json:"toGiB,omitempty"`
	UsedPercent float64 `json:"usedPercent"`
	// CooldownUntil is when the volume may be modified again.
	CooldownUntil time.Time             `json:"cooldownUntil,omitzero"`
	Throttled     []activities.Throttle `json:"throttled,omitempty"`
}

// Escalation: the tenants throttled and how hard.
const (
	escalationTenants = 3
	escalationFactor  = 0.5
)

// VolumeExpansionWorkflow grows a broker's data volume before it fills
// (OPERATIONS.md "Volume expansion"):
//
//  1. read the volume (EC2) and the filesystem (the broker's host) afresh;
//  2. inside the six-hour cool-down EBS allows no modification: below the
//     escalation threshold wait for the next tick; above it throttle the
//     heaviest tenants and page a human;
//  3. size the volume so the disk stays under the threshold for a whole
//     cool-down at the observed growth, at least max(10 GiB, 10%) more;
//  4. ModifyVolume, wait for optimizing or completed, grow the filesystem
//     online (no restart), verify the broker sees the new size.
//
// The entity records the returned cool-down: never a second modification
// inside it, never a shrink.
func VolumeExpansionWorkflow(ctx workflow.Context, in VolumeExpansionInput) (VolumeExpansionResult, error) {
	policy := in.Spec.Health.WithDefaults()
	res := VolumeExpansionResult{Broker: in.Broker}
	bin := activities.BrokerInput{Spec: in.Spec, Broker: in.Broker,
		Reason: fmt.Sprintf("kfleet %s %s requested by %s", OpVolumeExpansion, in.OperationID, in.RequestedBy)}
	details := func(step string) {
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s** volume expansion `%s` of broker %d: %s.", in.Spec.ID, in.OperationID, in.Broker, step))
	}

	details("reading the volume and the filesystem")
	var disk activities.DiskState
	if err := workflow.ExecuteActivity(volumeContext(ctx, time.Minute, "read volume and filesystem", in.Broker), a.DescribeDisk, bin).Get(ctx, &disk); err != nil {
		return res, err
	}
	res.VolumeID, res.FromGiB, res.UsedPercent = disk.VolumeID, disk.SizeGiB, disk.Filesystem.Percent()
	cooldown := in.CooldownUntil
	if !disk.ModificationStart.IsZero() {
		cooldown = latest(cooldown, disk.ModificationStart.Add(policy.VolumeCooldown))
	}
	if now := workflow.Now(ctx); now.Before(cooldown) {
		res.CooldownUntil = cooldown
		return inCooldown(ctx, in, policy, res, fmt.Sprintf("volume %s was modified less than %s ago (next change allowed at %s)",
			disk.VolumeID, policy.VolumeCooldown, cooldown.Format(time.RFC3339)))
	}

	plan := fleet.PlanExpansion(policy, disk.SizeGiB, disk.Filesystem, in.GrowthBytesPerSec)
	if in.Requested && !plan.Expand && disk.SizeGiB < fleet.MaxVolumeGiB {
		plan.Expand, plan.ToGiB = true, fleet.ExpansionSize(policy, disk.SizeGiB, disk.Filesystem.UsedBytes, in.GrowthBytesPerSec)
		plan.Reason = fmt.Sprintf("asked by %s (%s)", in.RequestedBy, plan.Reason)
	}
	res.Reason = plan.Reason
	if !plan.Expand {
		if disk.SizeGiB >= fleet.MaxVolumeGiB && res.UsedPercent >= policy.DiskEscalatePercent {
			return escalate(ctx, in, res, plan.Reason)
		}
		res.Outcome = ExpansionNotNeeded
		details("not needed: " + plan.Reason)
		return res, nil
	}

	details(fmt.Sprintf("ModifyVolume %s: %d GiB -> %d GiB (%s)", disk.VolumeID, disk.SizeGiB, plan.ToGiB, plan.Reason))
	ein := activities.ExpandInput{Spec: in.Spec, Broker: in.Broker, TargetGiB: plan.ToGiB, Reason: bin.Reason + ": " + plan.Reason}
	var change activities.VolumeChange
	err := workflow.ExecuteActivity(volumeContext(ctx, time.Minute, fmt.Sprintf("ModifyVolume to %d GiB", plan.ToGiB), in.Broker), a.ExpandVolume, ein).Get(ctx, &change)
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeVolumeCooldown {
		// EBS knows of a modification the entity did not record (made by
		// hand, or before kfleet ran): its cool-down holds all the same.
		res.CooldownUntil = workflow.Now(ctx).Add(policy.VolumeCooldown)
		return inCooldown(ctx, in, policy, res, "EBS refused the modification: "+activityMessage(err))
	}
	if err != nil {
		return res, err
	}
	modifiedAt := workflow.Now(ctx)
	res.ToGiB, res.CooldownUntil = max(change.ToGiB, plan.ToGiB), modifiedAt.Add(policy.VolumeCooldown)

	details(fmt.Sprintf("waiting for the modification of %s to optimize", disk.VolumeID))
	if err := workflow.ExecuteActivity(volumeContext(ctx, 6*time.Hour, "wait for optimizing", in.Broker), a.WaitVolumeModification, bin).Get(ctx, nil); err != nil {
		return res, err
	}
	details("growing the filesystem online")
	if err := workflow.ExecuteActivity(volumeContext(ctx, 5*time.Minute, "grow the filesystem", in.Broker), a.GrowFilesystem, ein).Get(ctx, nil); err != nil {
		return res, err
	}
	details("verifying the broker sees the new size")
	var after fleet.DiskUsage
	if err := workflow.ExecuteActivity(volumeContext(ctx, 10*time.Minute, "verify the new size", in.Broker), a.VerifyFilesystem, ein).Get(ctx, &after); err != nil {
		return res, err
	}
	res.Outcome, res.UsedPercent = ExpansionExpanded, after.Percent()
	details(fmt.Sprintf("expanded %d GiB -> %d GiB, now %.1f%% used; next change allowed at %s", res.FromGiB, res.ToGiB, res.UsedPercent, res.CooldownUntil.Format(time.RFC3339)))
	notifyHumans(ctx, activities.Notification{Cluster: in.Spec.ID, Broker: in.Broker, Severity: activities.SeverityInfo,
		Title: fmt.Sprintf("Broker %d: disk expanded", in.Broker), Operation: workflow.GetInfo(ctx).WorkflowExecution.ID,
		Text: fmt.Sprintf("Volume %s of %s broker %d grown %d GiB -> %d GiB online (%s); %.1f%% used now.",
			res.VolumeID, in.Spec.ID, in.Broker, res.FromGiB, res.ToGiB, plan.Reason, res.UsedPercent)})
	return res, nil
}

// inCooldown handles a volume that may not be modified now: escalate past
// the escalation threshold, otherwise defer to a later tick.
func inCooldown(ctx workflow.Context, in VolumeExpansionInput, policy fleet.HealthPolicy, res VolumeExpansionResult, why string) (VolumeExpansionResult, error) {
	if res.UsedPercent >= policy.DiskEscalatePercent {
		return escalate(ctx, in, res, fmt.Sprintf("disk %.1f%% used (escalation at %g%%) and %s", res.UsedPercent, policy.DiskEscalatePercent, why))
	}
	res.Outcome, res.Reason = ExpansionDeferred, why
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s** volume expansion `%s` of broker %d: deferred: %s.", in.Spec.ID, in.OperationID, in.Broker, why))
	return res, nil
}

// escalate throttles the heaviest producers to the broker and pages.
func escalate(ctx workflow.Context, in VolumeExpansionInput, res VolumeExpansionResult, why string) (VolumeExpansionResult, error) {
	res.Outcome, res.Reason = ExpansionEscalated, why
	tin := activities.ThrottleInput{Spec: in.Spec, Broker: in.Broker, Max: escalationTenants, Factor: escalationFactor,
		Reason: fmt.Sprintf("kfleet %s %s: %s", OpVolumeExpansion, in.OperationID, why)}
	throttled := "no tenant could be throttled"
	err := workflow.ExecuteActivity(volumeContext(ctx, time.Minute, "throttle the heaviest producers", in.Broker), a.ThrottleHeaviestProducers, tin).Get(ctx, &res.Throttled)
	switch {
	case err != nil:
		throttled = "throttling failed: " + activityMessage(err)
	case len(res.Throttled) > 0:
		var parts []string
		for _, t := range res.Throttled {
			parts = append(parts, fmt.Sprintf("%s %s/s -> %s/s", t.User, fleet.Bytes(int64(t.ObservedRate)), fleet.Bytes(int64(t.QuotaBytesPerSec))))
		}
		throttled = "throttled " + strings.Join(parts, ", ")
	}
	workflow.GetLogger(ctx).Error("disk escalation", "Cluster", in.Spec.ID, "Broker", in.Broker, "Reason", why, "Throttled", throttled)
	workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s** volume expansion `%s` of broker %d: **escalated**: %s; %s.", in.Spec.ID, in.OperationID, in.Broker, why, throttled))
	notifyHumans(ctx, activities.Notification{Cluster: in.Spec.ID, Broker: in.Broker, Severity: activities.SeverityPage,
		Title: fmt.Sprintf("Broker %d: disk filling during its cool-down", in.Broker), Operation: workflow.GetInfo(ctx).WorkflowExecution.ID,
		Text: fmt.Sprintf("%s; %s. Consider shortening retention of the heaviest tenants' topics.", why, throttled)})
	return res, nil
}

func volumeContext(ctx workflow.Context, timeout time.Duration, summary string, broker int32) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    min(timeout, 30*time.Second),
		Summary:             fmt.Sprintf("broker %d: %s", broker, summary),
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			MaximumInterval:        time.Minute,
			MaximumAttempts:        10,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput, activities.ErrTypeVolumeCooldown},
		},
	})
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
