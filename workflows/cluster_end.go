package workflows

import (
	"go.temporal.io/sdk/workflow"
)

// end closes the entity of a cluster that was deleted: sensing stops,
// urgent operations still running (they concern brokers that are gone) are
// cancelled, queued operations are recorded as cancelled by the deletion,
// and the workflow completes once every update has answered. Its last
// status stays readable (a query of the closed workflow), and the
// cluster's id is free for a new cluster.
func (e *entity) end(ctx workflow.Context) error {
	e.stop()
	for _, op := range e.st.Urgent {
		if cancel, ok := e.ctl.cancelUrgent[op.ID]; ok {
			cancel()
		}
	}
	now := workflow.Now(ctx)
	for _, op := range e.st.Queue {
		op.Status, op.FinishedAt, op.CancelledBy, op.CancelReason = StatusCancelled, now, "kfleet", "the cluster was deleted"
		e.st.record(op)
	}
	e.st.Queue = nil
	e.changed(ctx)
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	workflow.GetLogger(ctx).Info("cluster deleted: its entity ends", "Cluster", e.spec.ID)
	return nil
}
