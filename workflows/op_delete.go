package workflows

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kfleet/kfleet/internal/fleet"
)

// OpDeleteCluster deletes a cluster: its hosts, data volumes and ZooKeeper
// chroot, and then its entity ends.
const OpDeleteCluster = "delete-cluster"

// DeleteParams are a deletion's parameters.
type DeleteParams struct {
	// Force deletes even while topics (internal ones aside) or tenants
	// remain; only an approver may set it (chat's approval, or the CLI's
	// approve --force), and it skips reading the cluster, which may be
	// unreachable by then.
	Force bool `json:"force,omitempty"`
}

var deleteKind = &kind[DeleteParams, DeleteClusterInput, DeleteClusterResult]{
	name:         OpDeleteCluster,
	slug:         "delete",
	verb:         "delete",
	summary:      "delete the cluster: terminate its hosts, delete its data volumes and ZooKeeper chroot, end its entity; a second person approves, and it is refused while topics or tenants remain unless the approver forces it",
	lane:         LaneMaintenance,
	impact:       fleet.ImpactDelete,
	destructive:  true,
	decisions:    []string{DecisionResume, DecisionAbort},
	workflowName: "DeleteClusterWorkflow",
	workflow:     DeleteClusterWorkflow,
	validate: func(req Request, _ DeleteParams) error {
		if len(req.Brokers) > 0 {
			return fmt.Errorf("a deletion concerns the whole cluster, not broker(s) %v", req.Brokers)
		}
		return nil
	},
	check: func(a admission, req Request, _ *DeleteParams) error {
		switch {
		case req.ApprovedBy == "":
			return errors.New("deleting a cluster needs a second person's approval: ask with `starter delete` or chat's delete")
		case req.ApprovedBy == req.RequestedBy:
			return fmt.Errorf("%s asked for the deletion: a second, different person must approve it", req.RequestedBy)
		case len(a.st.Urgent) > 0:
			var ids []string
			for _, op := range a.st.Urgent {
				ids = append(ids, op.Kind+" "+op.ID)
			}
			return fmt.Errorf("cluster %s has urgent operations running (%s): let them end (or abort them) first", a.spec.ID, strings.Join(ids, ", "))
		}
		return nil
	},
	input: func(spec fleet.ClusterSpec, op Operation, p DeleteParams) DeleteClusterInput {
		return DeleteClusterInput{Spec: spec, OperationID: op.ID, RequestedBy: op.RequestedBy, ApprovedBy: op.ApprovedBy, Force: p.Force}
	},
	title: func(spec fleet.ClusterSpec, _ Operation, p DeleteParams) string {
		if p.Force {
			return fmt.Sprintf("Forced deletion of **%s**", spec.ID)
		}
		return fmt.Sprintf("Deletion of **%s**", spec.ID)
	},
	report: func(r DeleteClusterResult, err error) Report {
		if err != nil {
			return Report{}
		}
		return Report{Deleted: true, Outcome: fmt.Sprintf("deleted: %d host(s) terminated, %d data volume(s) deleted, chroot removed (%d znodes)",
			r.Hosts, r.Volumes, r.Znodes)}
	},
	describe: func(p DeleteParams) string {
		if p.Force {
			return "forced by its approver"
		}
		return ""
	},
	deciders: ownWorkflowDecides,
	progress: stepProgress,
}
