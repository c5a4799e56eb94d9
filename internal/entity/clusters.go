package entity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/workflows"
)

// ClusterSummary is one registered cluster, as Temporal's visibility
// lists its entity.
type ClusterSummary struct {
	ID        string    `json:"id"`
	StartedAt time.Time `json:"startedAt"`
	RunID     string    `json:"runId"`
}

// clustersQuery lists every running cluster entity.
const clustersQuery = "WorkflowType = 'ClusterWorkflow' AND ExecutionStatus = 'Running'"

// ListClusters lists the registered clusters (running entity workflows),
// sorted by id.
func ListClusters(ctx context.Context, c client.Client) ([]ClusterSummary, error) {
	var out []ClusterSummary
	var token []byte
	for {
		resp, err := c.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: clustersQuery, NextPageToken: token})
		if err != nil {
			return nil, fmt.Errorf("list clusters: %w", err)
		}
		for _, e := range resp.GetExecutions() {
			id, ok := strings.CutPrefix(e.GetExecution().GetWorkflowId(), workflows.ClusterWorkflowID(""))
			if !ok || strings.Contains(id, "/") {
				continue
			}
			out = append(out, ClusterSummary{ID: id, StartedAt: e.GetStartTime().AsTime(), RunID: e.GetExecution().GetRunId()})
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	slices.SortFunc(out, func(a, b ClusterSummary) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Registered reports whether the cluster's entity workflow runs.
func Registered(ctx context.Context, c client.Client, cluster string) (bool, error) {
	d, err := c.DescribeWorkflowExecution(ctx, workflows.ClusterWorkflowID(cluster), "")
	var nf *serviceerror.NotFound
	switch {
	case errors.As(err, &nf):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("cluster %s: describe its entity: %w", cluster, err)
	}
	return d.GetWorkflowExecutionInfo().GetStatus() == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING, nil
}
