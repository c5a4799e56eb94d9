package workflows

import (
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// DeleteClusterInput asks to delete a cluster.
type DeleteClusterInput struct {
	Spec        fleet.ClusterSpec `json:"spec"`
	OperationID string            `json:"operationId"`
	RequestedBy string            `json:"requestedBy"`
	ApprovedBy  string            `json:"approvedBy"`
	Force       bool              `json:"force,omitempty"`
}

// DeleteClusterResult is what the deletion removed.
type DeleteClusterResult struct {
	Hosts   int `json:"hosts"`
	Volumes int `json:"volumes"`
	Znodes  int `json:"znodes"`
	// Residents is what lived there when a forced deletion began (not
	// read when forced: zero).
	Residents activities.Residents `json:"residents"`
}

// DeleteProgress is what the progress query answers.
type DeleteProgress struct {
	Step   string `json:"step"`
	Paused *Pause `json:"paused,omitempty"`
}

// ErrTypeDeleteRefused is the error of a deletion refused before it
// touched anything: topics or tenants remain and nobody forced it.
const ErrTypeDeleteRefused = "DeleteRefused"

// DeleteClusterWorkflow deletes a cluster its entity asked for, approved
// by a second person (op_delete.go):
//
//  1. unless forced, read what lives there: topics other than internal
//     ones, or tenants (SCRAM users), refuse, touching nothing;
//  2. tell the entity it takes every broker down (their registrations
//     vanishing are no losses to recover);
//  3. terminate the brokers' hosts, remove the cluster's ZooKeeper chroot
//     (while its ensemble still serves), terminate the ensemble's hosts,
//     delete the data volumes — each found by kfleet's tags;
//  4. the entity records the end and ends too.
//
// A step that fails for good pauses for a human: resume or abort.
func DeleteClusterWorkflow(ctx workflow.Context, in DeleteClusterInput) (DeleteClusterResult, error) {
	var res DeleteClusterResult
	spec := in.Spec
	progress := DeleteProgress{}
	gate := &humanGate{cluster: spec.ID, what: "deletion"}
	gate.changed = func(ctx workflow.Context) {
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("**%s** deletion `%s`: %s%s.", spec.ID, in.OperationID, progress.Step, pausedSuffix(gate.paused)))
	}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (DeleteProgress, error) {
		p := progress
		p.Paused = gate.paused
		return p, nil
	}); err != nil {
		return res, err
	}
	if err := gate.register(ctx); err != nil {
		return res, err
	}
	step := func(name string, run func(ctx workflow.Context) error) error {
		progress.Step = name
		gate.changed(ctx)
		for {
			err := run(ctx)
			if err == nil {
				return nil
			}
			if _, err := gate.ask(ctx, Pause{Broker: -1, Step: name, Reason: activityMessage(err)}); err != nil {
				return err
			}
		}
	}
	opts := func(timeout time.Duration, summary string) workflow.Context {
		return provisionContext(ctx, timeout, summary)
	}

	if !in.Force {
		if err := step("reading what lives in the cluster", func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(opts(2*time.Minute, "list topics and tenants"), a.ClusterResidents, spec).Get(ctx, &res.Residents)
		}); err != nil {
			return res, err
		}
		if r := res.Residents; !r.Empty() {
			return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf(
				"cluster %s: deletion refused, nothing touched: %d topic(s) and %d tenant(s) remain (%s); its approver may force it",
				spec.ID, r.Topics, r.Users, strings.Join(r.Some, ", ")), ErrTypeDeleteRefused, nil)
		}
	}
	progress.Step = "telling the entity every broker goes"
	gate.changed(ctx)
	for _, id := range spec.BrokerIDs() {
		notifyEntity(ctx, id, true)
	}
	terminate := func(role string, n *int) func(ctx workflow.Context) error {
		return func(ctx workflow.Context) error {
			var r activities.Removed
			err := workflow.ExecuteActivity(opts(30*time.Minute, "terminate the "+role+" hosts"), a.TerminateHosts,
				activities.RemoveInput{Cluster: spec.ID, Role: role}).Get(ctx, &r)
			*n += r.Removed
			return err
		}
	}
	type deleteStep struct {
		name string
		run  func(ctx workflow.Context) error
	}
	steps := []deleteStep{
		{"terminating the brokers' hosts", terminate(cloud.RoleBroker, &res.Hosts)},
		{"removing the ZooKeeper chroot", func(ctx workflow.Context) error {
			return workflow.ExecuteActivity(opts(5*time.Minute, "remove the chroot"), a.RemoveChroot, spec).Get(ctx, &res.Znodes)
		}},
		{"terminating the ZooKeeper hosts", terminate(cloud.RoleZooKeeper, &res.Hosts)},
		{"deleting the data volumes", func(ctx workflow.Context) error {
			var r activities.Removed
			err := workflow.ExecuteActivity(opts(30*time.Minute, "delete the data volumes"), a.DeleteDataVolumes,
				activities.RemoveInput{Cluster: spec.ID}).Get(ctx, &r)
			res.Volumes += r.Removed
			return err
		}},
	}
	// A KRaft cluster has no chroot and no ensemble: its controllers'
	// hosts go after its brokers'. Only a KRaft cluster's deletion asks
	// for the version, so a ZooKeeper cluster's records what it did.
	if spec.Mode() == fleet.ModeKRaft && workflow.GetVersion(ctx, "delete-kraft-controllers", workflow.DefaultVersion, 1) >= 1 {
		steps = []deleteStep{steps[0], {"terminating the controllers' hosts", terminate(cloud.RoleController, &res.Hosts)}, steps[3]}
	}
	for _, s := range steps {
		if err := step(s.name, s.run); err != nil {
			return res, err
		}
	}
	progress.Step = fmt.Sprintf("deleted: %d host(s), %d volume(s), %d znode(s)", res.Hosts, res.Volumes, res.Znodes)
	gate.changed(ctx)
	notifyHumans(ctx, activities.Notification{Cluster: spec.ID, Severity: activities.SeverityInfo, Title: "Cluster " + spec.ID + " deleted",
		Operation: workflow.GetInfo(ctx).WorkflowExecution.ID,
		Text:      fmt.Sprintf("Requested by %s, approved by %s%s: %s.", in.RequestedBy, in.ApprovedBy, forcedSuffix(in.Force), progress.Step)})
	return res, nil
}

func pausedSuffix(p *Pause) string {
	if p == nil {
		return ""
	}
	return fmt.Sprintf(" — **PAUSED**: %s (decide: resume|abort)", p.Reason)
}

func forcedSuffix(forced bool) string {
	if forced {
		return " (forced)"
	}
	return ""
}
