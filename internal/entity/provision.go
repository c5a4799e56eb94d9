package entity

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// Creating a cluster: its provisioning workflow (cluster/<id>/provision),
// which registers the cluster's entity at its end.

// Provision starts the provisioning of a cluster from plan, or finds the
// one running for the same plan, and returns once the plan was checked:
// a plan refused on its face, by the account (zones, instance types) or
// because its id is in use wraps fleet.ErrRefused — nothing was launched.
func Provision(ctx context.Context, c client.Client, plan fleet.ClusterPlan, requestedBy string) (workflows.ProvisionAdmission, error) {
	var adm workflows.ProvisionAdmission
	if err := plan.Validate(); err != nil {
		return adm, err
	}
	if requestedBy == "" {
		return adm, fmt.Errorf("cluster %s: %w: say who asks for it", plan.ID, fleet.ErrRefused)
	}
	plan = plan.WithDefaults()
	start := c.NewWithStartWorkflowOperation(client.StartWorkflowOptions{
		ID:                       workflows.ProvisionWorkflowID(plan.ID),
		TaskQueue:                workflows.QueueFromEnv(),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary: fmt.Sprintf("Provisioning of **%s**: %d brokers (%s) over %s, Kafka %s, requested by %s", plan.ID, plan.Brokers,
			plan.InstanceType, strings.Join(plan.AvailabilityZones, ", "), plan.KafkaVersion, requestedBy),
		TypedSearchAttributes: temporal.NewSearchAttributes(workflows.AttrClusterID.ValueSet(plan.ID),
			workflows.AttrOperation.ValueSet(workflows.OpProvision)),
	}, workflows.ProvisionClusterWorkflow, workflows.ProvisionInput{Plan: plan, RequestedBy: requestedBy})
	h, err := c.UpdateWithStartWorkflow(ctx, client.UpdateWithStartWorkflowOptions{
		StartWorkflowOperation: start,
		UpdateOptions: client.UpdateWorkflowOptions{
			UpdateName:   workflows.UpdateProvisionCheck,
			Args:         []any{plan},
			WaitForStage: client.WorkflowUpdateStageCompleted,
		},
	})
	if err != nil {
		return adm, fmt.Errorf("cluster %s: start its provisioning: %w", plan.ID, err)
	}
	if err := h.Get(ctx, &adm); err != nil {
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			return adm, fmt.Errorf("cluster %s: %w: %s", plan.ID, fleet.ErrRefused, appErr.Message())
		}
		return adm, fmt.Errorf("cluster %s: provisioning check: %w", plan.ID, err)
	}
	switch {
	case adm.Plan != plan.Fingerprint():
		return adm, fmt.Errorf("cluster %s: %w: a provisioning of another plan (%s, asked by %s) is running; undo or abort it first",
			plan.ID, fleet.ErrRefused, adm.Plan, adm.RequestedBy)
	case len(adm.Refusals) > 0:
		return adm, fmt.Errorf("cluster %s: %w, nothing was launched: %s", plan.ID, fleet.ErrRefused, strings.Join(adm.Refusals, "; "))
	}
	return adm, nil
}

// ProvisionStatus is a cluster's provisioning as a client sees it.
type ProvisionStatus struct {
	WorkflowID string                      `json:"workflowId"`
	Status     string                      `json:"status"` // Running, Completed, Failed, Terminated ...
	Progress   workflows.ProvisionProgress `json:"progress"`
	Error      string                      `json:"error,omitempty"`
}

// Running reports whether the provisioning still runs.
func (s ProvisionStatus) Running() bool { return s.Status == "Running" }

// Provisioning reads the cluster's latest provisioning (running or not);
// fleet.ErrUnknownCluster when there was none.
func Provisioning(ctx context.Context, c client.Client, cluster string) (ProvisionStatus, error) {
	id := workflows.ProvisionWorkflowID(cluster)
	st := ProvisionStatus{WorkflowID: id}
	d, err := c.DescribeWorkflowExecution(ctx, id, "")
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return st, fmt.Errorf("cluster %s: %w: no entity and no provisioning", cluster, fleet.ErrUnknownCluster)
	}
	if err != nil {
		return st, fmt.Errorf("cluster %s: describe its provisioning: %w", cluster, err)
	}
	status := d.GetWorkflowExecutionInfo().GetStatus()
	st.Status = strings.TrimPrefix(status.String(), "WORKFLOW_EXECUTION_STATUS_")
	st.Status = strings.ToUpper(st.Status[:1]) + strings.ToLower(st.Status[1:])
	if v, err := c.QueryWorkflow(ctx, id, "", workflows.QueryProgress); err == nil {
		_ = v.Get(&st.Progress)
	}
	if status != enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING && status != enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED {
		var res workflows.ProvisionResult
		if err := c.GetWorkflow(ctx, id, "").Get(ctx, &res); err != nil {
			st.Error = activityError(err)
		}
	}
	return st, nil
}

// activityError is a workflow's failure without the SDK's wrapping.
func activityError(err error) string {
	var appErr *temporal.ApplicationError
	if errors.As(err, &appErr) {
		return appErr.Message()
	}
	return err.Error()
}

// FollowProvision polls the cluster's provisioning until it ends, calling
// onChange with each progress that differs from the last, and returns its
// result; a provisioning that failed, was refused, undone or aborted is
// an error (its own words).
func FollowProvision(ctx context.Context, c client.Client, cluster string, every time.Duration, onChange func(workflows.ProvisionProgress)) (workflows.ProvisionResult, error) {
	id := workflows.ProvisionWorkflowID(cluster)
	var last []string
	done := make(chan struct{})
	var res workflows.ProvisionResult
	var runErr error
	go func() {
		defer close(done)
		runErr = c.GetWorkflow(ctx, id, "").Get(ctx, &res)
	}()
	report := func() {
		qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		v, err := c.QueryWorkflow(qctx, id, "", workflows.QueryProgress)
		if err != nil {
			return // a worker restarting: the next poll asks again
		}
		var p workflows.ProvisionProgress
		if v.Get(&p) != nil {
			return
		}
		if lines := workflows.ProvisionLines(p); strings.Join(lines, "\n") != strings.Join(last, "\n") {
			last = lines
			onChange(p)
		}
	}
	for {
		select {
		case <-done:
			report()
			if runErr != nil {
				return res, fmt.Errorf("cluster %s: %s", cluster, activityError(runErr))
			}
			return res, nil
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(every):
			report()
		}
	}
}

// DecideProvision answers the cluster's provisioning paused for a human:
// resume, undo or abort. Nothing waiting is fleet.ErrRefused.
func DecideProvision(ctx context.Context, c client.Client, cluster string, d workflows.Decision) (workflows.Pause, error) {
	var p workflows.Pause
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflows.ProvisionWorkflowID(cluster),
		UpdateName:   workflows.UpdateDecide,
		Args:         []any{d},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return p, fmt.Errorf("cluster %s: %w: no entity and no provisioning running", cluster, fleet.ErrUnknownCluster)
	case err != nil:
		return p, fmt.Errorf("cluster %s: provisioning: %w", cluster, err)
	}
	if err := h.Get(ctx, &p); err != nil {
		return p, fmt.Errorf("cluster %s: provisioning: %w: %w", cluster, fleet.ErrRefused, err)
	}
	return p, nil
}

// renderProvisioning writes a cluster's provisioning for `status`.
func renderProvisioning(w io.Writer, ps ProvisionStatus) {
	p := ps.Progress
	fmt.Fprintf(w, "cluster %s: being created (%s, %s): %d brokers, plan %s\n", p.Cluster, ps.WorkflowID, ps.Status, p.Brokers, p.Plan)
	for _, line := range workflows.ProvisionLines(p) {
		fmt.Fprintf(w, "  %s\n", line)
	}
	if ps.Error != "" {
		fmt.Fprintf(w, "  ended: %s\n", ps.Error)
	}
}
