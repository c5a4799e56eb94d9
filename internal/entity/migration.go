package entity

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// What a ZooKeeper-to-KRaft migration reads and changes in a cluster's
// entity (activities.MigrationEntity).

// MigrationView reads the entity's spec, the release it knows its brokers
// run, and an operation that would change the release or metadata.version.
func MigrationView(ctx context.Context, c client.Client, cluster string) (activities.MigrationView, error) {
	st, err := ClusterStatus(ctx, c, cluster)
	if err != nil {
		if errors.Is(err, fleet.ErrUnknownCluster) {
			return activities.MigrationView{}, fmt.Errorf("%w: %w", fleet.ErrRefused, err)
		}
		return activities.MigrationView{}, err
	}
	v := activities.MigrationView{Spec: st.Spec}
	if p := st.Protocol; p != nil {
		v.KafkaVersion, v.InterBrokerProtocol, v.Uncertain = p.KafkaVersion, p.InterBrokerProtocol, p.Uncertain
	}
	ops := st.Queue
	if st.Running != nil {
		ops = append([]workflows.Operation{*st.Running}, ops...)
	}
	for _, op := range ops {
		k, err := workflows.KindNamed(op.Kind)
		if err != nil {
			continue
		}
		switch k.Impact() {
		case fleet.ImpactBinaryUpgrade, fleet.ImpactProtocolChange, fleet.ImpactMetadataVersion:
			v.MetadataVersionChange = fmt.Sprintf("%s %s is %s", op.Kind, op.ID, op.Status)
		}
	}
	return v, nil
}

// SetMigrationSpec moves the entity's spec to kraft's migration stage
// from stage from; see activities.MigrationEntity. The spec is read and
// written in two calls, as SetBrokerHost's.
func SetMigrationSpec(ctx context.Context, c client.Client, cluster string, from fleet.MigrationStage, kraft *fleet.KRaftSpec) (fleet.ClusterSpec, error) {
	st, err := ClusterStatus(ctx, c, cluster)
	if err != nil {
		return fleet.ClusterSpec{}, err
	}
	spec := st.Spec
	to := fleet.StageOf(kraft)
	switch at := spec.MigrationStage(); at {
	case to:
		return spec, nil
	case from:
	default:
		return spec, fmt.Errorf("cluster %s is at %s, not %s: %w", cluster, at, from, fleet.ErrRefused)
	}
	spec.KRaft = kraft
	if to.Mode == fleet.ModeKRaft {
		spec.ZooKeeper = "" // finalized: the cluster no longer uses it
	}
	return setSpec(ctx, c, cluster, spec)
}

// Operation says where operation opID of the cluster is.
func Operation(ctx context.Context, c client.Client, cluster, opID string) (activities.OperationState, error) {
	st, err := ClusterStatus(ctx, c, cluster)
	if err != nil {
		return activities.OperationState{}, err
	}
	op, ok := st.Operation(opID)
	if !ok {
		return activities.OperationState{}, fmt.Errorf("cluster %s: operation %s is not known to the cluster entity: %w", cluster, opID, fleet.ErrRefused)
	}
	ended := op.Status == workflows.StatusSucceeded || op.Status == workflows.StatusFailed || op.Status == workflows.StatusCancelled
	return activities.OperationState{Status: op.Status, Ended: ended, Outcome: op.Outcome, Error: op.Error}, nil
}

// MigrationView implements activities.MigrationEntity.
func (o Operator) MigrationView(ctx context.Context, cluster string) (activities.MigrationView, error) {
	return MigrationView(ctx, o.Client, cluster)
}

// SetMigrationSpec implements activities.MigrationEntity.
func (o Operator) SetMigrationSpec(ctx context.Context, cluster string, from fleet.MigrationStage, kraft *fleet.KRaftSpec) (fleet.ClusterSpec, error) {
	return SetMigrationSpec(ctx, o.Client, cluster, from, kraft)
}

// Operation implements activities.MigrationEntity.
func (o Operator) Operation(ctx context.Context, cluster, opID string) (activities.OperationState, error) {
	return Operation(ctx, o.Client, cluster, opID)
}

// StartMigration starts the cluster's migration to KRaft (its preflight
// runs at once) and returns its workflow ID; a migration of the cluster
// already running is returned as it is. The cluster must be registered.
func StartMigration(ctx context.Context, c client.Client, in workflows.MigrationInput) (string, error) {
	if _, err := ClusterStatus(ctx, c, in.Cluster); err != nil {
		return "", err
	}
	wid := workflows.MigrationWorkflowID(in.Cluster)
	_, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
		ID:                       wid,
		TaskQueue:                workflows.QueueFromEnv(),
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		StaticSummary:            fmt.Sprintf("Migration of **%s** from ZooKeeper to KRaft, asked by %s", in.Cluster, in.RequestedBy),
		TypedSearchAttributes: temporal.NewSearchAttributes(
			workflows.AttrClusterID.ValueSet(in.Cluster),
			workflows.AttrOperation.ValueSet(workflows.OpMigrationPhase),
		),
	}, workflows.MigrationWorkflow, in)
	if err != nil {
		return "", fmt.Errorf("cluster %s: start its migration: %w", in.Cluster, err)
	}
	return wid, nil
}

// MigrationStatus queries the cluster's migration; a finished one
// answers with its result.
func MigrationStatus(ctx context.Context, c client.Client, cluster string) (workflows.MigrationState, error) {
	var st workflows.MigrationState
	wid := workflows.MigrationWorkflowID(cluster)
	v, err := c.QueryWorkflow(ctx, wid, "", workflows.QueryMigration)
	if err != nil {
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return st, fmt.Errorf("cluster %s: %w: no migration was started (starter migrate start)", cluster, fleet.ErrRefused)
		}
		return st, fmt.Errorf("cluster %s: migration: %w", cluster, err)
	}
	return st, v.Get(&st)
}

// DecideMigration sends a human's decision to the cluster's migration and
// returns its state once the decision is taken up. A decision that does
// not fit (a stale phase, the requester approving) is fleet.ErrRefused.
func DecideMigration(ctx context.Context, c client.Client, cluster string, d workflows.MigrationDecision) (workflows.MigrationState, error) {
	var st workflows.MigrationState
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID:   workflows.MigrationWorkflowID(cluster),
		UpdateName:   workflows.UpdateMigrationDecide,
		Args:         []any{d},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err == nil {
		err = h.Get(ctx, &st)
	}
	var appErr *temporal.ApplicationError
	switch {
	case err == nil:
		return st, nil
	case errors.As(err, &appErr):
		return st, fmt.Errorf("cluster %s: migration: %w: %s", cluster, fleet.ErrRefused, appErr.Message())
	default:
		return st, fmt.Errorf("cluster %s: migration: %w", cluster, err)
	}
}
