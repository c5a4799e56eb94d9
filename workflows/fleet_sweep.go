package workflows

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
)

// FleetSweepInput configures a sweep; zero values are the defaults.
type FleetSweepInput struct {
	RequestedBy string `json:"requestedBy"`
	// Parallel bounds the clusters checked at once (default 8): a sweep
	// of hundreds of clusters must not storm the worker.
	Parallel int `json:"parallel,omitempty"`
}

// FleetSweepResult is what each cluster's health check found.
type FleetSweepResult struct {
	Clusters []SweptCluster `json:"clusters"`
}

// SweptCluster is one cluster's health check in a sweep.
type SweptCluster struct {
	Cluster string `json:"cluster"`
	Summary string `json:"summary,omitempty"`
	Error   string `json:"error,omitempty"`
}

// FleetSweepWorkflow asks every registered cluster's entity for a health
// tick now — disk use and forecast, log cleaner, heap, ZooKeeper — so each
// finding becomes the right operation through that cluster's own queue.
// It is what the fleet-wide schedule starts; a cluster whose check fails
// is reported and does not stop the sweep.
func FleetSweepWorkflow(ctx workflow.Context, in FleetSweepInput) (FleetSweepResult, error) {
	if in.Parallel <= 0 {
		in.Parallel = 8
	}
	if in.RequestedBy == "" {
		in.RequestedBy = "fleet-sweep"
	}
	var res FleetSweepResult
	var clusters []string
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		Summary:             "list the registered clusters",
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 5, NonRetryableErrorTypes: []string{activities.ErrTypeBadInput}},
	})
	if err := workflow.ExecuteActivity(actx, a.ListClusters).Get(ctx, &clusters); err != nil {
		return res, err
	}
	slices.Sort(clusters)
	res.Clusters = make([]SweptCluster, len(clusters))
	done := 0
	running := 0
	for i, c := range clusters {
		if err := workflow.Await(ctx, func() bool { return running < in.Parallel }); err != nil {
			return res, err
		}
		running++
		workflow.Go(ctx, func(ctx workflow.Context) {
			defer func() { running--; done++ }()
			act := activities.Action{Verb: activities.VerbHealthCheck, Cluster: c, RequestedBy: in.RequestedBy}
			res.Clusters[i] = SweptCluster{Cluster: c}
			var sub activities.Submitted
			if err := workflow.ExecuteActivity(submitContext(ctx), a.SubmitAction, act).Get(ctx, &sub); err != nil {
				res.Clusters[i].Error = activityMessage(err)
				return
			}
			res.Clusters[i].Summary = sub.Text
		})
		workflow.SetCurrentDetails(ctx, fmt.Sprintf("fleet sweep: %d/%d clusters asked", i+1, len(clusters)))
	}
	if err := workflow.Await(ctx, func() bool { return done == len(clusters) }); err != nil {
		return res, err
	}
	var failed []string
	for _, c := range res.Clusters {
		if c.Error != "" {
			failed = append(failed, c.Cluster)
		}
	}
	summary := fmt.Sprintf("fleet sweep: %d clusters checked", len(clusters))
	if len(failed) > 0 {
		summary += fmt.Sprintf("; **failed**: %s", strings.Join(failed, ", "))
	}
	workflow.SetCurrentDetails(ctx, summary)
	return res, nil
}
