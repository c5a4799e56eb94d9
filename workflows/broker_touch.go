package workflows

import (
	"time"

	"go.temporal.io/sdk/workflow"
)

// BrokerTouch tells the cluster entity that an operation is about to take a
// broker down (Touching) or is done with it: the broker's registration
// vanishing meanwhile is kfleet's own doing, not a loss.
type BrokerTouch struct {
	Broker   int32 `json:"broker"`
	Touching bool  `json:"touching"`
	// By is the workflow ID of the operation that touches the broker.
	By string `json:"by"`
	// Since is when the operation started touching it (entity side).
	Since time.Time `json:"since,omitzero"`
	// ReleasedAt is when the entity let go of it (ClusterState.Released).
	ReleasedAt time.Time `json:"releasedAt,omitzero"`
}

// notifyEntity tells the cluster entity that this operation is about to
// take broker down (touching) or is done with it (!touching: the broker is
// registered again and back in the ISR). Call it right before stopping a
// broker and after it caught up.
//
// The entity is the root of the chain of workflows this one belongs to (a
// roll the entity started, or a phase of an upgrade the entity started); a
// workflow with no parent was not started by an entity and notifies no one.
// The signal goes to the entity's current run (no run ID), so it reaches it
// across continue-as-new, and it is awaited: once notifyEntity returns, the
// entity has the touch in its history before anything this workflow does
// next, so a registration that vanishes afterwards is known to be ours. It
// is sent even when ctx is being cancelled, so a cancelled roll still lets
// go of its broker. A failure to deliver (the entity is gone) is logged and
// does not stop the operation: the entity also lets go of every broker an
// operation touched when the operation ends.
func notifyEntity(ctx workflow.Context, broker int32, touching bool) {
	info := workflow.GetInfo(ctx)
	if info.ParentWorkflowExecution == nil {
		return
	}
	entity := info.RootWorkflowExecution
	if entity == nil {
		entity = info.ParentWorkflowExecution
	}
	touch := BrokerTouch{Broker: broker, Touching: touching, By: info.WorkflowExecution.ID}
	if err := signalEntity(ctx, entity.ID, SignalBrokerTouch, touch); err != nil {
		workflow.GetLogger(ctx).Warn("could not tell the cluster entity about a broker", "Entity", entity.ID, "Broker", broker, "Touching", touching, "Error", err)
	}
}

// signalEntity signals the cluster entity entityID and waits until the
// signal is in its history: to its current run (no run ID), so it reaches
// it across continue-as-new, and even when ctx is being cancelled, so a
// cancelled operation still tells its entity what it let go of.
func signalEntity(ctx workflow.Context, entityID, name string, arg any) error {
	sctx, _ := workflow.NewDisconnectedContext(ctx)
	return workflow.SignalExternalWorkflow(sctx, entityID, "", name, arg).Get(sctx, nil)
}
