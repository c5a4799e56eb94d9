package integration_test

import (
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/localfleet/kraft"
	"github.com/kfleet/kfleet/workflows"
)

// kraftUpgradeStack is a KRaft cluster of 3 controllers and 3 brokers on
// Kafka 3.9.0 at metadata.version 3.9-IV0 (the fleet's defaults), watched.
func kraftUpgradeStack(ctx context.Context, t *testing.T, cluster string) (*devstack.Stack, fleet.ClusterSpec) {
	cfg := localfleet.ClusterConfig{ID: cluster, Brokers: 3, KRaft: &localfleet.KRaftConfig{Controllers: 3, Version: "3.9.0", MetadataVersion: "3.9-IV0", Timing: fastKRaft}}
	stack := startStackWith(t, fastFleet(cfg), func(o *devstack.StackOptions) {
		o.Health, o.NotifyOut = kraftPolicy, io.Discard
	})
	spec := stack.Specs[cluster]
	require.Equal(t, fleet.ModeKRaft, spec.Mode())
	watching(ctx, t, stack, cluster, 3)
	return stack, spec
}

func kraftUpgradeReq(by, version, metadata string) workflows.Request {
	params, _ := json.Marshal(workflows.UpgradeParams{Version: version, MetadataVersion: metadata})
	return workflows.Request{Kind: workflows.OpRollingUpgrade, RequestedBy: by, Params: params}
}

// finalizedMetadataVersion reads metadata.version as a Kafka client sees
// it: the finalized features of a broker's ApiVersions answer.
func finalizedMetadataVersion(ctx context.Context, t *testing.T, spec fleet.ClusterSpec) string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(spec.Bootstrap...))
	require.NoError(t, err)
	defer cl.Close()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	require.NoError(t, err)
	for _, f := range resp.FinalizedFeatures {
		if f.Name == fleet.MetadataVersionFeature {
			m, ok := fleet.MetadataVersionAt(f.MaxVersionLevel)
			require.True(t, ok, "level %d", f.MaxVersionLevel)
			return m.Name
		}
	}
	t.Fatalf("ApiVersions finalizes no %s", fleet.MetadataVersionFeature)
	return ""
}

// judgeKRaftUpgrade checks the fleet's audit of an upgrade from 3.9.0 to
// 4.0.0: every controller and broker stopped and started once, each start
// on 4.0.0, controllers one at a time, before any broker, the active one
// last; metadata.version changed once, after the last broker started.
// It returns the time metadata.version was finalized.
func judgeKRaftUpgrade(t *testing.T, spec fleet.ClusterSpec, events []localfleet.Event, active int32) time.Time {
	t.Helper()
	assertKRaftRolledOnce(t, spec, events, active)
	var lastStarted, finalized time.Time
	features := 0
	for _, e := range events {
		switch e.Kind {
		case localfleet.EventStart, localfleet.EventControllerStart:
			assert.Equal(t, "4.0.0", e.Version, "node %d starts on the new release", e.Broker)
		case localfleet.EventStarted:
			lastStarted = e.Time
		case localfleet.EventKind(kraft.EventFeature):
			features++
			finalized = e.Time
			assert.Contains(t, e.Detail, "metadata.version 3.9-IV0 -> 4.0-IV3")
		}
	}
	assert.Equal(t, 1, features, "metadata.version changes once")
	assert.True(t, finalized.After(lastStarted), "metadata.version is finalized after the last broker started")
	return finalized
}

// TestIntegrationKRaftUpgrade (issue #15): a KRaft cluster of 3
// controllers and 3 brokers on 3.9.0 at metadata.version 3.9-IV0 upgraded
// to 4.0.0 through the CLI. Bad targets are refused before anything is
// touched (one the release does not support on its face, a downgrade by
// the workflow before its roll). The upgrade is judged by the fleet's
// audit (judgeKRaftUpgrade, no violation: the quorum never lost its
// caught-up majority) and by a Kafka client's ApiVersions: 4.0-IV3.
func TestIntegrationKRaftUpgrade(t *testing.T) {
	t.Parallel()
	const cluster = "local-ku"
	bin := buildStarterAsync(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stack, spec := kraftUpgradeStack(ctx, t, cluster)
	starter, addr := <-bin, stack.Temporal.Addr
	upgrade := func(args ...string) (string, int) {
		return runStarter(t, starter, append([]string{"upgrade", "--address", addr, "--cluster", cluster}, args...)...)
	}

	// Refused at input: nothing is rolled, nothing is finalized.
	auditBefore := len(stack.Fleet.Audit(cluster))
	out, code := upgrade("--version", "4.0.0", "--metadata-version", "4.1-IV0")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "metadata.version 4.1-IV0 needs Kafka 4.1 or later: Kafka 4.0.0 supports up to 4.0-IV3")
	out, code = upgrade("--version", "4.0.0", "--metadata-version", "3.8-IV0")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "refused before anything was rolled: metadata.version 3.8-IV0 (level 20) is below the cluster's 3.9-IV0")
	for _, e := range stack.Fleet.Audit(cluster)[auditBefore:] {
		assert.NotContains(t, []localfleet.EventKind{localfleet.EventStop, localfleet.EventControllerStop, localfleet.EventKind(kraft.EventFeature)}, e.Kind,
			"a refused upgrade touches nothing: %+v", e)
	}
	st, err := entity.ClusterStatus(ctx, stack.Client, cluster)
	require.NoError(t, err)
	require.NotEmpty(t, st.History)
	assert.Contains(t, st.History[len(st.History)-1].Outcome, "refused before anything was rolled")

	q, err := stack.Fleet.Quorum(cluster)
	require.NoError(t, err)
	active := q.Leader
	auditBefore = len(stack.Fleet.Audit(cluster))
	began := time.Now()
	out, code = upgrade("--version", "4.0.0")
	require.Equal(t, 0, code, out)
	took := time.Since(began)
	assert.Contains(t, out, "metadata.version: 3.9-IV0 -> 4.0-IV3")

	finalized := judgeKRaftUpgrade(t, spec, stack.Fleet.Audit(cluster)[auditBefore:], active)
	noViolations(t, stack, cluster)
	assert.Equal(t, "4.0-IV3", finalizedMetadataVersion(ctx, t, spec), "a Kafka client reads the finalized level")
	q, err = stack.Fleet.Quorum(cluster)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, q.CaughtUp, q.Majority)
	st, err = entity.ClusterStatus(ctx, stack.Client, cluster)
	require.NoError(t, err)
	last := st.History[len(st.History)-1]
	assert.Equal(t, workflows.StatusSucceeded, last.Status, last.Error)
	assert.Equal(t, "Kafka 4.0.0, metadata.version 4.0-IV3 (was 3.9-IV0)", last.Outcome)
	recordHistories(ctx, t, stack.Client, map[string]string{last.WorkflowID: "rolling_upgrade_kraft.json"})
	t.Logf("upgrade of 3 controllers and 3 brokers to 4.0.0 took %s (CLI to CLI); metadata.version finalized %s before the CLI returned",
		took.Round(time.Millisecond), time.Since(finalized).Round(time.Millisecond))
}

// TestIntegrationKRaftUpgradeGhost (issue #15): the same upgrade with a
// ghost registered (broker 7, decommissioned on 3.9.0 without
// UnregisterBroker). The binaries roll; the finalization is refused with
// the ghost named, and the upgrade waits for a human (its progress, and
// metadata.version still 3.9-IV0 meanwhile); a human approves through the
// CLI; the fleet's audit shows the ghost unregistered, then
// metadata.version finalized at 4.0-IV3.
func TestIntegrationKRaftUpgradeGhost(t *testing.T) {
	t.Parallel()
	const cluster, ghost = "local-kg", int32(7)
	bin := buildStarterAsync(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stack, spec := kraftUpgradeStack(ctx, t, cluster)
	require.NoError(t, stack.Fleet.AddGhost(cluster, ghost, "3.9.0", "integration-test"))
	starter, addr := <-bin, stack.Temporal.Addr

	q, err := stack.Fleet.Quorum(cluster)
	require.NoError(t, err)
	active := q.Leader
	auditBefore := len(stack.Fleet.Audit(cluster))
	op, err := entity.Request(ctx, stack.Client, cluster, kraftUpgradeReq("integration-test", "4.0.0", ""))
	require.NoError(t, err)

	var paused *workflows.Pause
	require.Eventually(t, func() bool {
		v, err := stack.Client.QueryWorkflow(ctx, op.WorkflowID, "", workflows.QueryProgress)
		var p workflows.UpgradeProgress
		if err != nil || v.Get(&p) != nil {
			return false
		}
		paused = p.Paused
		return paused != nil
	}, 2*time.Minute, 200*time.Millisecond, "the upgrade waits for a human")
	assert.Equal(t, ghost, paused.Broker)
	assert.Equal(t, workflows.StepApproveGhost, paused.Step)
	for _, want := range []string{"ghost broker 7", "last known Kafka 3.9.0", "not in the spec", "does not support metadata.version 4.0-IV3"} {
		assert.Contains(t, paused.Reason, want)
	}
	time.Sleep(time.Second) // it keeps waiting: nothing changes without a yes
	qs, err := stack.Fleet.Quorum(cluster)
	require.NoError(t, err)
	assert.Equal(t, "3.9-IV0", qs.MetadataVersion, "nothing finalized before the approval")
	assert.Equal(t, "3.9-IV0", finalizedMetadataVersion(ctx, t, spec))

	// What an operator sees: the pause, its reason, what it takes.
	out, code := runStarter(t, starter, "status", "--address", addr, "--cluster", cluster)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "PAUSED at broker 7 (waiting for approval to unregister a ghost node)")
	assert.Contains(t, out, "[decide: resume|skip|abort]")

	out, code = runStarter(t, starter, "approve", "--address", addr, "--cluster", cluster, "--by", "alice", "--reason", "broker 7 was decommissioned in 2025")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "broker 7")

	res, _, err := entity.Follow[workflows.RollingUpgradeResult](ctx, stack.Client, cluster, op.ID, 200*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err)
	require.NotNil(t, res.MetadataVersion)
	assert.True(t, res.MetadataVersion.Finalized)
	assert.Equal(t, []int32{ghost}, res.MetadataVersion.Unregistered)
	assert.Equal(t, []string{"alice"}, res.MetadataVersion.ApprovedBy)

	events := stack.Fleet.Audit(cluster)[auditBefore:]
	finalized := judgeKRaftUpgrade(t, spec, events, active)
	var unregistered []localfleet.Event
	for _, e := range events {
		if e.Kind == localfleet.EventKind(kraft.EventUnregistered) {
			unregistered = append(unregistered, e)
		}
	}
	require.Len(t, unregistered, 1, "the fleet saw one unregistration")
	assert.Equal(t, ghost, unregistered[0].Broker)
	assert.True(t, unregistered[0].Time.Before(finalized), "the ghost is unregistered before metadata.version moves")
	noViolations(t, stack, cluster)
	assert.Equal(t, "4.0-IV3", finalizedMetadataVersion(ctx, t, spec))
	st, err := entity.ClusterStatus(ctx, stack.Client, cluster)
	require.NoError(t, err)
	last := st.History[len(st.History)-1]
	assert.Equal(t, workflows.StatusSucceeded, last.Status, last.Error)
	assert.True(t, strings.HasPrefix(last.Outcome, "Kafka 4.0.0, metadata.version 4.0-IV3"), last.Outcome)
	recordHistories(ctx, t, stack.Client, map[string]string{op.WorkflowID: "rolling_upgrade_kraft_ghost.json"})
}

// TestIntegrationKRaftUpgradeGhostKept (issue #15): the ghost's removal
// declined (starter skip): the upgrade ends with the binaries rolled and
// metadata.version unchanged and says so, in its operation's status and
// outcome; the fleet's audit shows every node on 4.0.0, no unregistration
// and no feature change, and the ghost still registered.
func TestIntegrationKRaftUpgradeGhostKept(t *testing.T) {
	t.Parallel()
	const cluster, ghost = "local-kk", int32(7)
	bin := buildStarterAsync(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stack, spec := kraftUpgradeStack(ctx, t, cluster)
	require.NoError(t, stack.Fleet.AddGhost(cluster, ghost, "3.9.0", "integration-test"))
	starter, addr := <-bin, stack.Temporal.Addr
	auditBefore := len(stack.Fleet.Audit(cluster))
	op, err := entity.Request(ctx, stack.Client, cluster, kraftUpgradeReq("integration-test", "4.0.0", "4.0-IV3"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		v, err := stack.Client.QueryWorkflow(ctx, op.WorkflowID, "", workflows.QueryProgress)
		var p workflows.UpgradeProgress
		return err == nil && v.Get(&p) == nil && p.Paused != nil
	}, 2*time.Minute, 200*time.Millisecond, "the upgrade waits for a human")

	out, code := runStarter(t, starter, "skip", "--address", addr, "--cluster", cluster, "--by", "carol", "--reason", "broker 7 comes back next week")
	require.Equal(t, 0, code, out)

	st := waitStatus(ctx, t, stack, cluster, time.Minute, "the upgrade ended", func(st workflows.ClusterStatus) bool {
		return st.Running == nil && len(st.History) > 0
	})
	last := st.History[len(st.History)-1]
	assert.Equal(t, workflows.StatusFailed, last.Status)
	assert.Contains(t, last.Error, "binaries rolled to Kafka 4.0.0, metadata.version NOT finalized (unchanged at 3.9-IV0, target 4.0-IV3)")
	assert.Contains(t, last.Error, "carol declined to unregister ghost broker 7")
	assert.Contains(t, last.Outcome, "binaries rolled to Kafka 4.0.0; metadata.version unchanged at 3.9-IV0")

	events := stack.Fleet.Audit(cluster)[auditBefore:]
	starts := 0
	for _, e := range events {
		switch e.Kind {
		case localfleet.EventStart, localfleet.EventControllerStart:
			starts++
			assert.Equal(t, "4.0.0", e.Version)
		case localfleet.EventKind(kraft.EventUnregistered), localfleet.EventKind(kraft.EventFeature):
			t.Errorf("nothing is unregistered or finalized without a yes: %+v", e)
		}
	}
	assert.Equal(t, 6, starts, "every controller and broker restarted on the new release")
	noViolations(t, stack, cluster)
	assert.Equal(t, "3.9-IV0", finalizedMetadataVersion(ctx, t, spec))
	q, err := stack.Fleet.Quorum(cluster)
	require.NoError(t, err)
	assert.Equal(t, "3.9-IV0", q.MetadataVersion)
}
