package chatbackend

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/chatops"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// A chat command becomes the request of its operation kind, with its
// arguments as the kind's parameters by their names there: the kind's
// own check accepts it.
func TestActionIsTheKindsRequest(t *testing.T) {
	tests := []struct {
		text    string
		kind    string
		brokers []int32
		params  string // "": none
	}{
		{"restart local-a brokers=1,2 batch=3", workflows.OpRollingRestart, []int32{1, 2}, `{"maxBatch":3}`},
		{"upgrade local-a 3.7.1", workflows.OpRollingUpgrade, nil, `{"version":"3.7.1"}`},
		{"expand local-a 2", workflows.OpVolumeExpansion, []int32{2}, ""},
		{"cleaner-check local-a", workflows.OpCleanerHealth, nil, ""},
		{"add-brokers orders 2", workflows.OpAddBrokers, nil, `{"count":2}`},
		{"add-brokers orders 3 type=m5.xlarge volume=500 throttle=10MiB", workflows.OpAddBrokers, nil,
			`{"count":3,"instanceType":"m5.xlarge","volumeGiB":500,"throttleBytesPerSec":10485760}`},
		{"remove-broker orders 4", workflows.OpRemoveBroker, []int32{4}, ""},
		{"remove-broker orders 4 throttle=512KiB", workflows.OpRemoveBroker, []int32{4}, `{"throttleBytesPerSec":524288}`},
		{"rebalance orders", workflows.OpRebalance, nil, ""},
		{"replace-controller korders 3001", workflows.OpReplaceController, nil, `{"node":3001}`},
		{"rebalance orders throttle=1GiB", workflows.OpRebalance, nil, `{"throttleBytesPerSec":1073741824}`},
		{"tenant-create orders basic-0", workflows.OpTenantCreate, nil, `{"plan":"basic-0","limits":` + limitsJSON("basic-0") + `}`},
		{"tenant-create orders basic-1 name=acme", workflows.OpTenantCreate, nil, `{"plan":"basic-1","name":"acme","limits":` + limitsJSON("basic-1") + `}`},
		{"tenant-rotate orders wabash-58799", workflows.OpTenantRotate, nil, `{"tenant":"wabash-58799"}`},
		{"tenant-rotate orders wabash-58799 grace=1h", workflows.OpTenantRotate, nil, `{"tenant":"wabash-58799","grace":"1h"}`},
		{"tenant-change-plan orders wabash-58799 basic-2", workflows.OpTenantChangePlan, nil, `{"tenant":"wabash-58799","plan":"basic-2","limits":` + limitsJSON("basic-2") + `}`},
		{"tenant-delete orders wabash-58799", workflows.OpTenantDelete, nil, `{"tenant":"wabash-58799"}`},
		{"topic create orders wabash-1 wabash-1.a", workflows.OpTopicAdmin, nil,
			`{"action":"create","topics":[{"tenant":"wabash-1","name":"wabash-1.a","partitions":1}]}`},
		{"topic create orders wabash-1 wabash-1.a partitions=6 rf=2 retention=6h", workflows.OpTopicAdmin, nil,
			`{"action":"create","topics":[{"tenant":"wabash-1","name":"wabash-1.a","partitions":6,"replicationFactor":2,"retentionMs":21600000}]}`},
		{"topic delete orders wabash-1 wabash-1.a", workflows.OpTopicAdmin, nil, `{"action":"delete","topics":[{"tenant":"wabash-1","name":"wabash-1.a"}]}`},
		{"topic partitions orders wabash-1 wabash-1.a 12", workflows.OpTopicAdmin, nil,
			`{"action":"add-partitions","topics":[{"tenant":"wabash-1","name":"wabash-1.a","partitions":12}]}`},
		{"topic retention orders wabash-1 wabash-1.a 36h", workflows.OpTopicAdmin, nil,
			`{"action":"retention","topics":[{"tenant":"wabash-1","name":"wabash-1.a","retentionMs":129600000}]}`},
		{"group delete orders wabash-1 wabash-1.g", workflows.OpTopicAdmin, nil,
			`{"action":"delete-groups","topics":[{"tenant":"wabash-1","name":"wabash-1.g"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			cmd, err := chatops.Parse(tt.text)
			require.NoError(t, err)
			act := action(cmd, "U0ALICE")
			require.NoError(t, entity.CheckAction(act))
			req, ok, err := entity.ActionRequest(act)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, tt.kind, req.Kind)
			assert.Equal(t, "U0ALICE", req.RequestedBy)
			assert.Equal(t, tt.brokers, req.Brokers)
			if tt.params == "" {
				assert.Empty(t, req.Params)
			} else {
				assert.JSONEq(t, tt.params, string(req.Params))
			}
		})
	}
}

// Run asks for the operations that take nothing down, and refuses the
// destructive ones, which only an approval starts (nothing is asked of
// Temporal: the backend has no client here).
func TestRunRefusesDestructiveVerbs(t *testing.T) {
	for _, text := range []string{"remove-broker orders 4", "restart orders", "expand orders 1", "delete orders", "tenant-delete orders wabash-58799",
		"topic delete orders wabash-1 wabash-1.a"} {
		cmd, err := chatops.Parse(text)
		require.NoError(t, err)
		_, _, err = backend{}.Run(context.Background(), cmd, "U0ALICE")
		assert.ErrorIs(t, err, fleet.ErrRefused, text)
		assert.ErrorContains(t, err, "is not run directly", text)
	}
}

// An action whose parameters ask for another action than its verb (a
// topic-create carrying a deletion) is refused: it would pass without the
// approval the deletion needs.
func TestActionVerbMustMatchItsParameters(t *testing.T) {
	cmd, err := chatops.Parse("topic create orders wabash-1 wabash-1.a")
	require.NoError(t, err)
	act := action(cmd, "U0ALICE")
	act.Params = json.RawMessage(`{"action":"delete","topics":[{"tenant":"wabash-1","name":"wabash-1.a"}]}`)
	_, _, err = entity.ActionRequest(act)
	assert.ErrorIs(t, err, fleet.ErrRefused)
	assert.ErrorContains(t, err, "topic-create: refused: its parameters ask for a topic-delete")
}

// limitsJSON is a catalog plan's limits as the entity's client fills them in.
func limitsJSON(plan string) string {
	p, err := fleet.DefaultTenantCatalog().Plan(plan)
	if err != nil {
		panic(err)
	}
	raw, _ := json.Marshal(p)
	return string(raw)
}
