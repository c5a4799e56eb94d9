package entity_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/entity"
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
