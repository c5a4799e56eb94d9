package integration_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/workflowservice/v1"

	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// TestIntegrationRollingUpgrade upgrades a 3-broker cluster through its
// entity and judges it by the fleet: every broker ends on the new version
// and the new inter.broker.protocol.version, each was stopped exactly twice
// (binaries with the protocol pinned, then the protocol bump), every pinned
// start came before any bumped one, and never were two brokers down. Bad
// versions from the CLI exit 2 and touch nothing; a patch upgrade through
// the CLI takes the protocol the last upgrade ended on and rolls once.
func TestIntegrationRollingUpgrade(t *testing.T) {
	t.Parallel()
	bin := buildStarterAsync(t) // while the stack starts
	stack := startStack(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	starter, addr := <-bin, stack.Temporal.Addr

	// Refused before anything is touched.
	auditBefore := len(stack.Fleet.Audit("local-a"))
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"--version", "3.7"}, "want major.minor.patch, like 3.7.1"},
		{[]string{"--version", "3.7.1", "--from-ibp", "3.8"}, "is a downgrade"},
		// Valid on its face, but the entity knows no current protocol.
		{[]string{"--version", "3.7.1"}, "fromIbp is required"},
	} {
		out, code := runStarter(t, starter, append([]string{"upgrade", "--address", addr, "--cluster", "local-a"}, bad.args...)...)
		assert.Equal(t, 2, code, out)
		assert.Contains(t, out, bad.want)
	}
	st, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	assert.Nil(t, st.Running)
	assert.Empty(t, st.Queue)
	assert.Empty(t, st.History)
	require.Len(t, stack.Fleet.Audit("local-a"), auditBefore, "no broker was touched")

	// The upgrade: 3.7.1 with the protocol pinned to 3.6, then bumped to 3.7.
	op, err := entity.Request(ctx, stack.Client, "local-a", upgradeReq("integration-test", "3.7.1", "3.6"))
	require.NoError(t, err)
	dup, err := entity.Request(ctx, stack.Client, "local-a", upgradeReq("someone-else", "3.7.1", ""))
	require.NoError(t, err)
	assert.True(t, dup.Existing, "the same upgrade is joined")
	assert.Equal(t, op.ID, dup.ID)
	phases := map[string]bool{}
	res, _, err := entity.Follow[workflows.RollingUpgradeResult](ctx, stack.Client, "local-a", op.ID, 100*time.Millisecond, func(p entity.Progress) {
		for _, line := range p.Lines {
			for _, phase := range []string{workflows.UpgradePhaseBinaries, workflows.UpgradePhaseProtocol} {
				phases[phase] = phases[phase] || strings.Contains(line, "("+phase+")")
			}
		}
	})
	require.NoError(t, err)
	assert.True(t, phases[workflows.UpgradePhaseBinaries] && phases[workflows.UpgradePhaseProtocol], "progress showed both phases: %v", phases)
	assert.Equal(t, workflows.Upgrade{Version: "3.7.1", FromIBP: "3.6", TargetIBP: "3.7"}, res.Upgrade)
	assert.Len(t, res.Binaries.Brokers, 3)
	require.NotNil(t, res.Protocol)
	assert.Len(t, res.Protocol.Brokers, 3)

	// The fleet's account.
	assertBrokersOn(t, stack.Fleet, "3.7.1", "3.7")
	events := stack.Fleet.Audit("local-a")[auditBefore:]
	stops := auditSerial(t, events).stops
	bumped := false
	for _, e := range events {
		if e.Kind != localfleet.EventStart {
			continue
		}
		assert.Equal(t, "3.7.1", e.Version, "broker %d started on the new binaries", e.Broker)
		switch e.Detail {
		case "inter.broker.protocol.version=3.6":
			assert.False(t, bumped, "broker %d started with the old protocol after a bump", e.Broker)
		case "inter.broker.protocol.version=3.7":
			bumped = true
		default:
			t.Errorf("broker %d started with %q", e.Broker, e.Detail)
		}
	}
	for _, b := range []int32{1, 2, 3} {
		assert.Equal(t, 2, stops[b], "broker %d is stopped once per roll", b)
	}
	assert.Empty(t, stack.Fleet.Violations("local-a"), "no two brokers down, no partition under min ISR")

	// What an operator finds in the Temporal UI: the upgrade and its rolls.
	query := `ClusterID = "local-a" AND Operation = "rolling-upgrade"`
	want := []string{op.WorkflowID,
		workflows.UpgradePhaseWorkflowID(op.WorkflowID, workflows.UpgradePhaseBinaries),
		workflows.UpgradePhaseWorkflowID(op.WorkflowID, workflows.UpgradePhaseProtocol)}
	var found []string
	require.Eventually(t, func() bool {
		resp, err := stack.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Query: query})
		if err != nil {
			return false
		}
		found = found[:0]
		for _, e := range resp.Executions {
			found = append(found, e.Execution.WorkflowId)
		}
		return len(found) == len(want)
	}, 20*time.Second, 200*time.Millisecond, "the upgrade and its rolls are found by their search attributes")
	assert.ElementsMatch(t, want, found)

	// A patch upgrade through the CLI: the protocol is already 3.7, one roll.
	auditBefore = len(stack.Fleet.Audit("local-a"))
	out, code := runStarter(t, starter, "upgrade", "--address", addr, "--cluster", "local-a", "--version", "3.7.2", "--requested-by", "cli-test")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "inter.broker.protocol.version stays 3.7")
	assert.Contains(t, out, "phase 1/1 (binaries)")
	assert.Contains(t, out, "no second roll")
	assertBrokersOn(t, stack.Fleet, "3.7.2", "3.7")
	stops = auditSerial(t, stack.Fleet.Audit("local-a")[auditBefore:]).stops
	for _, b := range []int32{1, 2, 3} {
		assert.Equal(t, 1, stops[b], "broker %d", b)
	}
	assert.Empty(t, stack.Fleet.Violations("local-a"))
}

// assertBrokersOn checks the fleet's broker status: every broker running
// the version with the inter.broker.protocol.version.
func assertBrokersOn(t *testing.T, f *localfleet.Fleet, version, ibp string) {
	t.Helper()
	st, err := f.Status("local-a")
	require.NoError(t, err)
	require.Len(t, st.Brokers, 3)
	for _, b := range st.Brokers {
		assert.Equal(t, localfleet.StateRunning, b.State, "broker %d", b.ID)
		assert.Equal(t, version, b.Version, "broker %d", b.ID)
		assert.Equal(t, ibp, b.InterBrokerProtocolVersion, "broker %d", b.ID)
	}
}
