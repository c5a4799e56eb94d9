// Package overviewtest serves fleets as Temporal's visibility lists them,
// for the overview's tests and benchmarks: rows made by hand, or a
// synthetic fleet of any size.
package overviewtest

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	workflowpb "go.temporal.io/api/workflow/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/converter"

	"github.com/kfleet/kfleet/workflows"
)

// Visibility answers the overview's two listings (the entities, the paused
// workflows) from fixed rows, PageSize rows a page (0: all at once).
type Visibility struct {
	Entities, Paused []*workflowpb.WorkflowExecutionInfo
	PageSize         int

	mu  sync.Mutex
	err error
}

// Fail makes every listing fail with err (nil: answer again).
func (v *Visibility) Fail(err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.err = err
}

// ListWorkflow implements overview.Lister.
func (v *Visibility) ListWorkflow(_ context.Context, req *workflowservice.ListWorkflowExecutionsRequest) (*workflowservice.ListWorkflowExecutionsResponse, error) {
	v.mu.Lock()
	err := v.err
	v.mu.Unlock()
	if err != nil {
		return nil, err
	}
	rows := v.Entities
	if strings.Contains(req.GetQuery(), "Paused = true") {
		rows = v.Paused
	}
	start := 0
	if tok := req.GetNextPageToken(); len(tok) > 0 {
		if _, err := fmt.Sscan(string(tok), &start); err != nil {
			return nil, fmt.Errorf("bad page token %q", tok)
		}
	}
	size := v.PageSize
	if size <= 0 {
		size = len(rows)
	}
	end := min(len(rows), start+size)
	resp := &workflowservice.ListWorkflowExecutionsResponse{Executions: rows[start:end]}
	if end < len(rows) {
		resp.NextPageToken = []byte(fmt.Sprint(end))
	}
	return resp, nil
}

// payload encodes v as the SDK does; kfleet's own types always encode.
func payload(v any) *commonpb.Payload {
	p, err := converter.GetDefaultDataConverter().ToPayload(v)
	if err != nil {
		panic(fmt.Sprintf("overviewtest: encode %T: %v", v, err))
	}
	return p
}

// Entity is a cluster entity's row; o nil: it has no summary yet.
func Entity(cluster string, o *workflows.ClusterOverview) *workflowpb.WorkflowExecutionInfo {
	info := &workflowpb.WorkflowExecutionInfo{
		Execution:        &commonpb.WorkflowExecution{WorkflowId: workflows.ClusterWorkflowID(cluster)},
		SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{workflows.AttrClusterID.GetName(): payload(cluster)}},
	}
	if o != nil {
		info.Memo = &commonpb.Memo{Fields: map[string]*commonpb.Payload{workflows.MemoOverview: payload(o)}}
	}
	return info
}

// Waiting is the row of a workflow waiting for a human since then (zero:
// its memo does not say).
func Waiting(cluster, workflowID, operation string, since time.Time) *workflowpb.WorkflowExecutionInfo {
	info := &workflowpb.WorkflowExecutionInfo{
		Execution: &commonpb.WorkflowExecution{WorkflowId: workflowID},
		SearchAttributes: &commonpb.SearchAttributes{IndexedFields: map[string]*commonpb.Payload{
			workflows.AttrClusterID.GetName(): payload(cluster), workflows.AttrOperation.GetName(): payload(operation),
			workflows.AttrPaused.GetName(): payload(true)}},
	}
	if !since.IsZero() {
		info.Memo = &commonpb.Memo{Fields: map[string]*commonpb.Payload{workflows.MemoPausedSince: payload(since)}}
	}
	return info
}

// ClusterName is the i-th synthetic cluster's id.
func ClusterName(i int) string { return fmt.Sprintf("fleet-%04d", i) }

// Cluster is the summary of the i-th cluster of a synthetic fleet, as of
// now: one in fifty has lost a broker and recovers it (critical), one in
// twenty has a disk past 80% (warning), one in ten has tenants; six
// brokers each.
func Cluster(i int, now time.Time) workflows.ClusterOverview {
	id := ClusterName(i)
	o := workflows.ClusterOverview{Cluster: id, Mode: "zookeeper", Version: "3.9.0", SensedAt: now}
	for b := range int32(6) {
		o.Brokers = append(o.Brokers, workflows.BrokerOverview{ID: b + 1, State: workflows.BrokerUp, DiskPct: 30 + i%40, HeapPct: 40})
	}
	switch {
	case i%50 == 7:
		o.Brokers[2].State = workflows.BrokerRecovering
		o.Operations = []workflows.OperationOverview{{ID: fmt.Sprintf("r-%d", i), Kind: workflows.OpRecovery,
			WorkflowID: fmt.Sprintf("cluster/%s/recovery/r-%d", id, i), StartedAt: now.Add(-time.Minute), Brokers: []int32{3}}}
		o.Findings = []workflows.Finding{{Kind: "broker-lost", Broker: 3, Reason: "broker 3 left ZooKeeper without kfleet touching it", At: now.Add(-time.Minute)}}
	case i%20 == 3:
		o.Brokers[4].DiskPct = 86
	}
	if i%10 == 1 {
		o.Tenants, o.Plans = 12, map[string]int{"basic-0": 9, "premium-2": 3}
	}
	return o
}

// Counts are how many of a synthetic fleet of n are critical and warning.
func Counts(n int) (critical, warning int) {
	for i := range n {
		switch {
		case i%50 == 7:
			critical++
		case i%20 == 3:
			warning++
		}
	}
	return critical, warning
}

// Fleet is a synthetic fleet of n clusters, a thousand rows a page.
func Fleet(n int, now time.Time) *Visibility {
	v := &Visibility{PageSize: 1000}
	for i := range n {
		o := Cluster(i, now)
		v.Entities = append(v.Entities, Entity(o.Cluster, &o))
	}
	return v
}
