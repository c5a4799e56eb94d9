package workflows_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/workflows"
)

// The table of kinds is what every surface learns from: names, verbs and
// workflow IDs must not collide, and each kind's lane and decisions say
// what the README says of it.
func TestKindsAreRegisteredOnceAndConsistently(t *testing.T) {
	names, verbs := map[string]bool{}, map[string]bool{}
	for _, k := range workflows.Kinds() {
		require.NotEmpty(t, k.Name())
		assert.False(t, names[k.Name()], "kind %s registered twice", k.Name())
		names[k.Name()] = true
		if k.Verb() != "" {
			assert.False(t, verbs[k.Verb()], "verb %s of two kinds", k.Verb())
			verbs[k.Verb()] = true
		}
		// A kind asked for by several verbs (one per action) has no verb of
		// its own; each action verb names a request of its action.
		for _, av := range k.ActionVerbs() {
			assert.Empty(t, k.Verb(), "kind %s: a verb of its own and action verbs", k.Name())
			assert.False(t, verbs[av.Verb], "verb %s of two kinds or actions", av.Verb)
			verbs[av.Verb] = true
			assert.NotEmpty(t, av.Summary, av.Verb)
			found, err := workflows.KindOfVerb(av.Verb)
			require.NoError(t, err)
			assert.Equal(t, k.Name(), found.Name())
		}
		assert.NotEmpty(t, k.Summary(), k.Name())
		found, err := workflows.KindNamed(k.Name())
		require.NoError(t, err)
		assert.Equal(t, k.Name(), found.Name())
		op := workflows.Operation{ID: "op-1", Kind: k.Name(), WorkflowID: "cluster/test-a/x/op-1"}
		assert.Equal(t, len(k.Decisions()) > 0, len(k.DecisionWorkflows(op)) > 0,
			"kind %s: a kind that takes decisions names the workflows that take them, and only then", k.Name())
	}
	lanes := map[string]workflows.Lane{}
	for _, k := range workflows.Kinds() {
		lanes[k.Name()] = k.Lane()
	}
	assert.Equal(t, map[string]workflows.Lane{
		workflows.OpRollingRestart:    workflows.LaneMaintenance,
		workflows.OpRollingUpgrade:    workflows.LaneMaintenance,
		workflows.OpCleanerHealth:     workflows.LaneMaintenance,
		workflows.OpRecovery:          workflows.LaneUrgent,
		workflows.OpVolumeExpansion:   workflows.LaneUrgent,
		workflows.OpDeleteCluster:     workflows.LaneMaintenance,
		workflows.OpAddBrokers:        workflows.LaneMaintenance,
		workflows.OpRemoveBroker:      workflows.LaneMaintenance,
		workflows.OpRebalance:         workflows.LaneMaintenance,
		workflows.OpTenantCreate:      workflows.LaneMaintenance,
		workflows.OpTenantRotate:      workflows.LaneMaintenance,
		workflows.OpTenantChangePlan:  workflows.LaneMaintenance,
		workflows.OpTenantDelete:      workflows.LaneMaintenance,
		workflows.OpTenantRetire:      workflows.LaneMaintenance,
		workflows.OpTopicAdmin:        workflows.LaneMaintenance,
		workflows.OpReplaceController: workflows.LaneMaintenance,
		workflows.OpMigrationPhase:    workflows.LaneMaintenance,
	}, lanes)

	_, err := workflows.KindNamed("reboot-everything")
	assert.ErrorContains(t, err, `unknown operation kind "reboot-everything"`)
	_, err = workflows.KindOfVerb("recovery")
	assert.Error(t, err, "a kind only kfleet starts has no verb")
}

func TestCheckRefusesOnItsFace(t *testing.T) {
	cases := []struct {
		name string
		req  workflows.Request
		want string
	}{
		{"restart", restartReq("alice"), ""},
		{"no requester", restartReq(""), "requestedBy is required"},
		{"negative broker", restartReq("alice", -1), "broker -1"},
		{"unknown parameter", workflows.Request{Kind: workflows.OpCleanerHealth, RequestedBy: "a", Params: []byte(`{"maxBatch":2}`)}, `unknown field "maxBatch"`},
		{"malformed parameters", workflows.Request{Kind: workflows.OpRollingRestart, RequestedBy: "a", Params: []byte(`{"maxBatch":`)}, "rolling-restart parameters"},
		{"bad version", upgradeReq("alice", "3.7", "3.6"), "want major.minor.patch"},
		{"kafka 4 in ZooKeeper mode", upgradeReq("alice", "4.0.0", "3.9"), "no ZooKeeper mode"},
		{"upgrade of some brokers", func() workflows.Request { r := upgradeReq("a", "3.7.1", "3.6"); r.Brokers = []int32{1}; return r }(), "takes no broker list"},
		{"expansion of two brokers", workflows.Request{Kind: workflows.OpVolumeExpansion, RequestedBy: "a", Brokers: []int32{1, 2}}, "exactly one broker"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			k, err := workflows.KindNamed(c.req.Kind)
			require.NoError(t, err)
			err = k.Check(c.req)
			if c.want == "" {
				assert.NoError(t, err)
				return
			}
			assert.ErrorContains(t, err, c.want)
		})
	}
}
