package overview

import (
	"cmp"
	"context"
	"fmt"
	"net/url"
	"slices"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/kfleet/kfleet/workflows"
)

// Lister reads Temporal's visibility (client.Client is one).
type Lister interface {
	ListWorkflow(ctx context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error)
}

// The visibility queries behind a snapshot.
const (
	queryEntities = "WorkflowType = 'ClusterWorkflow' AND ExecutionStatus = 'Running'"
	queryWaiting  = "ExecutionStatus = 'Running' AND Paused = true"
	// listPageSize: two thousand clusters are two pages.
	listPageSize = 1000
	// fleetFindings is how many of the fleet's newest findings it shows.
	fleetFindings = 20
)

// reader builds snapshots from visibility.
type reader struct {
	list      Lister
	namespace string
	// ui is the Temporal UI's base URL ("" : no links).
	ui string
}

// read lists the entities and the waiting workflows and judges each
// cluster; progress is left to the caller.
func (r reader) read(ctx context.Context, now time.Time) (Snapshot, error) {
	entities, err := r.listAll(ctx, queryEntities)
	if err != nil {
		return Snapshot{}, fmt.Errorf("list the clusters' entities: %w", err)
	}
	paused, err := r.listAll(ctx, queryWaiting)
	if err != nil {
		return Snapshot{}, fmt.Errorf("list the workflows waiting for a human: %w", err)
	}
	snap := Snapshot{Generated: now, Clusters: make([]Cluster, 0, len(entities))}
	byID := make(map[string]int, len(entities))
	known := make([]bool, len(entities))
	for i, e := range entities {
		c := Cluster{EntityURL: r.link(e.GetExecution().GetWorkflowId())}
		decodeMemo(e.GetMemo(), workflows.MemoOverview, &c.ClusterOverview)
		if known[i] = c.Cluster != ""; !known[i] {
			// An entity without a summary yet: named from its attribute.
			c.ClusterOverview = workflows.ClusterOverview{}
			decodeAttr(e.GetSearchAttributes(), workflows.AttrClusterID.GetName(), &c.Cluster)
			c.Cluster = cmp.Or(c.Cluster, e.GetExecution().GetWorkflowId())
		}
		byID[c.Cluster] = len(snap.Clusters)
		snap.Clusters = append(snap.Clusters, c)
	}
	for _, p := range paused {
		w := Waiting{WorkflowID: p.GetExecution().GetWorkflowId(), URL: r.link(p.GetExecution().GetWorkflowId())}
		decodeAttr(p.GetSearchAttributes(), workflows.AttrClusterID.GetName(), &w.Cluster)
		decodeAttr(p.GetSearchAttributes(), workflows.AttrOperation.GetName(), &w.Operation)
		var since *time.Time
		decodeMemo(p.GetMemo(), workflows.MemoPausedSince, &since)
		if since != nil {
			w.Since = *since
		}
		opID := ""
		if workflows.IsClusterWorkflowID(w.WorkflowID) {
			w.Operation = pausedCluster
		} else if i, ok := byID[w.Cluster]; ok {
			if op, ok := operationOf(&snap.Clusters[i], w.WorkflowID); ok {
				w.Operation, opID = cmp.Or(w.Operation, op.Kind), op.ID
			}
		}
		w.Operation = cmp.Or(w.Operation, "operation")
		w.Chat = chatHint(w.Cluster, w.Operation, opID)
		snap.Waiting = append(snap.Waiting, w)
	}
	slices.SortFunc(snap.Waiting, func(a, b Waiting) int { return a.Since.Compare(b.Since) })
	for i := range snap.Clusters {
		c := &snap.Clusters[i]
		if known[i] {
			judge(c, snap.Waiting, now)
		} else {
			c.Health, c.Concerns = Unknown, []string{noOverviewYet}
		}
		if len(c.Operations) > 0 {
			c.URLs = make(map[string]string, len(c.Operations))
			for _, op := range c.Operations {
				c.URLs[op.ID] = r.link(op.WorkflowID)
			}
		}
		for _, f := range c.Findings {
			snap.Findings = append(snap.Findings, FleetFinding{Cluster: c.Cluster, Finding: f})
		}
		snap.Counts.add(c)
	}
	slices.SortFunc(snap.Findings, func(a, b FleetFinding) int { return b.At.Compare(a.At) })
	snap.Findings = snap.Findings[:min(len(snap.Findings), fleetFindings)]
	snap.Counts.Waiting = len(snap.Waiting)
	return snap, nil
}

// add counts one cluster in.
func (n *Counts) add(c *Cluster) {
	n.Clusters++
	switch c.Health {
	case Critical:
		n.Critical++
	case Warning:
		n.Warning++
	case Unknown:
		n.Unknown++
	}
	n.Brokers += len(c.Brokers)
	for _, b := range c.Brokers {
		if b.State != workflows.BrokerUp {
			n.BrokersDown++
		}
	}
	n.Operations += len(c.Operations)
	n.Tenants += c.Tenants
}

// listAll reads every page of a visibility query.
func (r reader) listAll(ctx context.Context, query string) ([]*workflowpb.WorkflowExecutionInfo, error) {
	var all []*workflowpb.WorkflowExecutionInfo
	var token []byte
	for {
		resp, err := r.list.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{
			Namespace: r.namespace, PageSize: listPageSize, NextPageToken: token, Query: query,
		})
		if err != nil {
			return nil, err
		}
		all = append(all, resp.GetExecutions()...)
		if token = resp.GetNextPageToken(); len(token) == 0 {
			return all, nil
		}
	}
}

// link is a workflow's page in the Temporal UI.
func (r reader) link(workflowID string) string {
	if r.ui == "" {
		return ""
	}
	return fmt.Sprintf("%s/namespaces/%s/workflows/%s", r.ui, url.PathEscape(r.namespace), url.PathEscape(workflowID))
}

// decodeMemo decodes one memo field; a missing or undecodable one leaves
// v as it was (a newer worker's summary the page does not know yet shows
// what it can).
func decodeMemo(m *commonpb.Memo, key string, v any) {
	if p := m.GetFields()[key]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, v)
	}
}

// decodeAttr decodes one search attribute.
func decodeAttr(sa *commonpb.SearchAttributes, key string, v any) {
	if p := sa.GetIndexedFields()[key]; p != nil {
		_ = converter.GetDefaultDataConverter().FromPayload(p, v)
	}
}
