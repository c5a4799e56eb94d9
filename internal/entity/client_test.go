package entity_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// crowdedEntity answers the first slow calls as the SDK does when an
// update was not admitted within its 60 s call, then admits it.
type crowdedEntity struct {
	client.Client
	slow int
	ids  []string
}

func (c *crowdedEntity) UpdateWorkflow(_ context.Context, o client.UpdateWorkflowOptions) (client.WorkflowUpdateHandle, error) {
	c.ids = append(c.ids, o.UpdateID)
	if len(c.ids) <= c.slow {
		return nil, &client.WorkflowUpdateServiceTimeoutOrCanceledError{}
	}
	return admitted{}, nil
}

type admitted struct{ client.WorkflowUpdateHandle }

func (admitted) Get(context.Context, any) error { return nil }

// A request the entity is too crowded to admit within one call is asked
// again under the same update id (Temporal runs it once), until admitted;
// a cancelled caller stops asking.
func TestControlAsksAgainUnderTheSameUpdateID(t *testing.T) {
	c := &crowdedEntity{slow: 2}
	_, err := entity.Pause(context.Background(), c, "local-a", workflows.PauseRequest{By: "alice"})
	require.NoError(t, err)
	require.Len(t, c.ids, 3)
	assert.NotEmpty(t, c.ids[0])
	assert.Equal(t, c.ids[0], c.ids[1])
	assert.Equal(t, c.ids[0], c.ids[2])

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c = &crowdedEntity{slow: 100}
	_, err = entity.Pause(ctx, c, "local-a", workflows.PauseRequest{By: "alice"})
	var slow *client.WorkflowUpdateServiceTimeoutOrCanceledError
	assert.True(t, errors.As(err, &slow), "%v", err)
	assert.Len(t, c.ids, 1)
}

// pollerless answers queries as Temporal does while no worker polls the
// entity's task queue, a number of times, then as the entity would.
type pollerless struct {
	client.Client
	refusals int
	err      error // what it refuses with
	calls    int
}

func (p *pollerless) QueryWorkflow(context.Context, string, string, string, ...any) (converter.EncodedValue, error) {
	p.calls++
	if p.calls <= p.refusals {
		return nil, p.err
	}
	v, err := converter.GetDefaultDataConverter().ToPayloads(workflows.ClusterStatus{Spec: fleet.ClusterSpec{ID: "local-a"}})
	return encodedStatus{v}, err
}

type encodedStatus struct{ p *commonpb.Payloads }

func (e encodedStatus) HasValue() bool { return true }
func (e encodedStatus) Get(v any) error {
	return converter.GetDefaultDataConverter().FromPayloads(e.p, v)
}

// A status query refused for want of a recent poller (a worker
// restarting) is asked again until a worker answers; any other refusal
// is returned at once.
func TestStatusWaitsForAWorkerToPoll(t *testing.T) {
	noPoller := serviceerror.NewFailedPrecondition("no poller seen for task queue recently, worker may be down")
	p := &pollerless{refusals: 2, err: noPoller}
	st, err := entity.ClusterStatus(context.Background(), p, "local-a")
	require.NoError(t, err)
	assert.Equal(t, "local-a", st.Spec.ID)
	assert.Equal(t, 3, p.calls)

	p = &pollerless{refusals: 2, err: serviceerror.NewFailedPrecondition("workflow is not running")}
	_, err = entity.ClusterStatus(context.Background(), p, "local-a")
	require.Error(t, err)
	assert.Equal(t, 1, p.calls, "another refusal is not asked again")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p = &pollerless{refusals: 100, err: noPoller}
	_, err = entity.ClusterStatus(ctx, p, "local-a")
	require.Error(t, err)
	assert.Equal(t, 1, p.calls, "a cancelled caller stops asking")
}
