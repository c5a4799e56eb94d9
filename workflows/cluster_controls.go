package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/internal/fleet"
)

// PauseRequest asks the entity to start no queued operation until resumed.
// An operation already running goes on; new requests are still queued.
type PauseRequest struct {
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
}

// PauseState says who paused the entity, why and since when.
type PauseState struct {
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since"`
}

// ResumeRequest lifts a pause: queued operations start again, in order.
type ResumeRequest struct {
	By string `json:"by"`
}

// CancelRequest cancels an operation: a queued one is removed from the
// queue, the running one is asked to stop (its workflow is cancelled).
type CancelRequest struct {
	OperationID string `json:"operationId"`
	By          string `json:"by"`
	Reason      string `json:"reason,omitempty"`
}

// controls are the entity's pause, resume and cancel updates.
type controls struct {
	e    *entity
	spec *fleet.ClusterSpec
	st   *ClusterState
	// cancelRunning cancels the running operation's child workflow, and
	// cancelUrgent a running urgent one by operation id, in runs recorded
	// before entity version 3 (which cancel operations by workflow ID).
	cancelRunning workflow.CancelFunc
	cancelUrgent  map[string]workflow.CancelFunc
	changed       func(workflow.Context)
}

func (c *controls) register(ctx workflow.Context) error {
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdatePause, c.pause,
		workflow.UpdateHandlerOptions{Validator: c.validatePause}); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, UpdateResume, c.resume,
		workflow.UpdateHandlerOptions{Validator: c.validateResume}); err != nil {
		return err
	}
	return workflow.SetUpdateHandlerWithOptions(ctx, UpdateCancel, c.cancel,
		workflow.UpdateHandlerOptions{Validator: c.validateCancel})
}

func (c *controls) validatePause(_ workflow.Context, req PauseRequest) error {
	if req.By == "" {
		return errors.New("by is required: say who pauses the cluster")
	}
	if p := c.st.Paused; p != nil {
		return fmt.Errorf("cluster %s is already paused (by %s since %s%s)", c.spec.ID, p.By, p.Since.Format(time.RFC3339), because(p.Reason))
	}
	return nil
}

func (c *controls) pause(ctx workflow.Context, req PauseRequest) (PauseState, error) {
	p := PauseState{By: req.By, Reason: req.Reason, Since: workflow.Now(ctx)}
	c.st.Paused = &p
	setPaused(ctx, true)
	workflow.GetLogger(ctx).Info("cluster paused", "Cluster", c.spec.ID, "By", req.By, "Reason", req.Reason, "Queued", len(c.st.Queue))
	c.changed(ctx)
	return p, nil
}

func (c *controls) validateResume(_ workflow.Context, req ResumeRequest) error {
	if req.By == "" {
		return errors.New("by is required: say who resumes the cluster")
	}
	if c.st.Paused == nil {
		return fmt.Errorf("cluster %s is not paused: there is nothing to resume", c.spec.ID)
	}
	return nil
}

func (c *controls) resume(ctx workflow.Context, req ResumeRequest) (PauseState, error) {
	p := *c.st.Paused
	c.st.Paused = nil
	setPaused(ctx, false)
	workflow.GetLogger(ctx).Info("cluster resumed", "Cluster", c.spec.ID, "By", req.By, "PausedBy", p.By, "Queued", len(c.st.Queue))
	c.changed(ctx)
	return p, nil
}

func (c *controls) validateCancel(_ workflow.Context, req CancelRequest) error {
	switch {
	case req.By == "":
		return errors.New("by is required: say who cancels the operation")
	case req.OperationID == "":
		return errors.New("operationId is required: say which operation to cancel")
	}
	if r := c.st.Running; r != nil && r.ID == req.OperationID {
		if r.CancelledBy != "" {
			return fmt.Errorf("%s %s is already being cancelled (by %s)", r.Kind, r.ID, r.CancelledBy)
		}
		// Cancelling mid-broker could leave that broker down: refuse until
		// the operation lets go of it (a roll paused for a human is
		// answered with decide abort instead).
		for _, t := range c.st.Touching {
			if t.By == r.WorkflowID || strings.HasPrefix(t.By, r.WorkflowID+"/") {
				return fmt.Errorf("%s %s has broker %d down (since %s): cancel once it is back, or abort a paused roll with `starter decide --cluster %s abort`",
					r.Kind, r.ID, t.Broker, t.Since.Format(time.RFC3339), c.spec.ID)
			}
		}
		return nil
	}
	if i := slices.IndexFunc(c.st.Urgent, func(op Operation) bool { return op.ID == req.OperationID }); i >= 0 {
		// Urgent operations never take a broker down: cancelling one
		// leaves nothing half-done.
		if u := c.st.Urgent[i]; u.CancelledBy != "" {
			return fmt.Errorf("%s %s is already being cancelled (by %s)", u.Kind, u.ID, u.CancelledBy)
		}
		return nil
	}
	if slices.ContainsFunc(c.st.Queue, func(op Operation) bool { return op.ID == req.OperationID }) {
		return nil
	}
	if op, ok := c.st.Operation(req.OperationID); ok {
		return fmt.Errorf("%s %s already finished (%s): there is nothing to cancel", op.Kind, op.ID, op.Status)
	}
	return fmt.Errorf("unknown operation %q on cluster %s (%s)", req.OperationID, c.spec.ID, c.st.cancellable())
}

func (c *controls) cancel(ctx workflow.Context, req CancelRequest) (Operation, error) {
	log := workflow.GetLogger(ctx)
	if r := c.st.Running; r != nil && r.ID == req.OperationID {
		r.CancelledBy, r.CancelReason = req.By, req.Reason
		log.Warn("cancelling the running operation", "Cluster", c.spec.ID, "Operation", r.ID, "Kind", r.Kind, "By", req.By, "Reason", req.Reason)
		if c.cancelRunning != nil {
			c.cancelRunning()
		} else {
			c.cancelWorkflow(ctx, *r)
		}
		c.changed(ctx)
		return *r, nil
	}
	if i := slices.IndexFunc(c.st.Urgent, func(op Operation) bool { return op.ID == req.OperationID }); i >= 0 {
		u := &c.st.Urgent[i]
		u.CancelledBy, u.CancelReason = req.By, req.Reason
		log.Warn("cancelling an urgent operation", "Cluster", c.spec.ID, "Operation", u.ID, "Kind", u.Kind, "By", req.By, "Reason", req.Reason)
		if cancel, ok := c.cancelUrgent[u.ID]; ok {
			cancel()
		} else {
			c.cancelWorkflow(ctx, *u)
		}
		c.changed(ctx)
		return *u, nil
	}
	i := slices.IndexFunc(c.st.Queue, func(op Operation) bool { return op.ID == req.OperationID })
	op := c.st.Queue[i]
	c.st.Queue = slices.Delete(c.st.Queue, i, i+1)
	op.Status, op.FinishedAt = StatusCancelled, workflow.Now(ctx)
	op.CancelledBy, op.CancelReason = req.By, req.Reason
	c.st.record(op)
	log.Info("queued operation cancelled", "Cluster", c.spec.ID, "Operation", op.ID, "Kind", op.Kind, "By", req.By, "Reason", req.Reason)
	c.changed(ctx)
	return op, nil
}

// cancelWorkflow asks op's workflow to stop, by its ID: it may have been
// started by an earlier run of the entity. It ends the usual way and
// reports its end; one that is already closed without having reported
// (terminated by hand) is recorded as cancelled here, so the entity is
// never stuck on an operation that no longer runs.
func (c *controls) cancelWorkflow(ctx workflow.Context, op Operation) {
	f := workflow.RequestCancelExternalWorkflow(ctx, op.WorkflowID, "")
	workflow.Go(ctx, func(gctx workflow.Context) {
		if err := f.Get(gctx, nil); err != nil && gctx.Err() == nil {
			workflow.GetLogger(gctx).Warn("operation's workflow could not be cancelled; recording it as ended", "Cluster", c.spec.ID,
				"Operation", op.ID, "Workflow", op.WorkflowID, "Error", err)
			c.e.ended(gctx, op.ID, Report{}, fmt.Errorf("its workflow %s could not be cancelled (%v): it had ended without reporting", op.WorkflowID, err))
		}
	})
}

// cancellable lists what could be cancelled, for an error message.
func (st ClusterState) cancellable() string {
	var ids []string
	if st.Running != nil {
		ids = append(ids, st.Running.ID+" (running)")
	}
	for _, op := range st.Urgent {
		ids = append(ids, op.ID+" (running)")
	}
	for _, op := range st.Queue {
		ids = append(ids, op.ID+" (queued)")
	}
	if len(ids) == 0 {
		return "nothing is running or queued"
	}
	return "cancellable: " + strings.Join(ids, ", ")
}

// record appends a finished operation to the bounded history.
func (st *ClusterState) record(op Operation) {
	st.History = append(st.History, op)
	if len(st.History) > historyKept {
		st.History = st.History[len(st.History)-historyKept:]
	}
}

// nextMaintenance is the index in the queue of the maintenance operation
// that may start now, or -1: not while paused, and not while a recovery is
// queued or running (recovery pre-empts maintenance).
func (st ClusterState) nextMaintenance() int {
	if st.Paused != nil || st.recovering() || st.Running != nil {
		return -1
	}
	return slices.IndexFunc(st.Queue, func(op Operation) bool { return laneOf(op.Kind) == LaneMaintenance })
}

// setDetails shows the entity's state in the Temporal UI.
func setDetails(ctx workflow.Context, spec fleet.ClusterSpec, st ClusterState) {
	var b strings.Builder
	b.WriteString(fmt.Sprintf("**%s** entity: ", spec.ID))
	if r := st.Running; r != nil {
		b.WriteString(fmt.Sprintf("running %s `%s` (requested by %s, since %s)", r.Kind, r.ID, r.RequestedBy, r.StartedAt.Format(time.RFC3339)))
		if r.CancelledBy != "" {
			b.WriteString(fmt.Sprintf(", **cancelling** (by %s)", r.CancelledBy))
		}
		for _, t := range st.Touching {
			b.WriteString(fmt.Sprintf("; broker %d is down for it", t.Broker))
		}
		b.WriteString(".")
	} else {
		b.WriteString("idle.")
	}
	for _, u := range st.Urgent {
		b.WriteString(fmt.Sprintf(" Urgent: %s `%s` on broker(s) %v since %s", u.Kind, u.ID, u.Brokers, u.StartedAt.Format(time.RFC3339)))
		if u.Reason != "" {
			b.WriteString(" (" + u.Reason + ")")
		}
		b.WriteString(".")
	}
	if len(st.Queue) > 0 {
		ids := make([]string, len(st.Queue))
		for i, op := range st.Queue {
			ids[i] = fmt.Sprintf("%s `%s`", op.Kind, op.ID)
		}
		b.WriteString(fmt.Sprintf(" Queued: %s.", strings.Join(ids, ", ")))
	}
	if p := st.Paused; p != nil {
		b.WriteString(fmt.Sprintf("\n\n**PAUSED** by %s since %s%s: no queued operation starts. Resume with `starter resume --cluster %s`.",
			p.By, p.Since.Format(time.RFC3339), because(p.Reason), spec.ID))
	}
	b.WriteString("\n\n" + st.watchDetails())
	for _, l := range st.OpenLosses() {
		b.WriteString(fmt.Sprintf("\n- **broker %d lost** at %s: its registration vanished and kfleet was not touching it", l.Broker, l.At.Format(time.RFC3339)))
		if l.Recovery != "" {
			b.WriteString(fmt.Sprintf("; recovery `%s`", l.Recovery))
		}
	}
	b.WriteString(st.healthDetails())
	b.WriteString(st.tenantDetails())
	workflow.SetCurrentDetails(ctx, b.String())
}

func because(reason string) string {
	if reason == "" {
		return ""
	}
	return ": " + reason
}
