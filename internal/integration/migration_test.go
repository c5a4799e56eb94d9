package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// The ZooKeeper-to-KRaft migration end to end (issue #15), judged by the
// fleet's audit (starts and stops of every node, violations: two brokers
// down, a partition under min ISR, metadata wiped, finalization before
// the brokers re-registered, a stuck ZooKeeper controller, a lost
// quorum), by ZooKeeper's znodes, and by a Kafka client reading back
// every record it was acknowledged.

// migrationStack runs local-a, a ZooKeeper cluster of 3 brokers over 3
// zones with an RF-3 topic, registered as running Kafka 3.9.0 at
// inter.broker.protocol.version 3.9 (the migration's release) unless
// version says another.
func migrationStack(t testing.TB, version, ibp string) *devstack.Stack {
	t.Helper()
	cfg := fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3, Racks: 3,
		Topics: []localfleet.TopicConfig{{Name: "events", Partitions: 6}}})
	cfg.EC2.Timing = localfleet.EC2Timing{Pending: 100 * time.Millisecond, Stopping: 100 * time.Millisecond, ShuttingDown: 100 * time.Millisecond}
	cfg.EC2.ControllerTiming = fastKRaft
	stack := startStackWith(t, cfg, func(o *devstack.StackOptions) { o.NotifyOut = io.Discard })
	spec := stack.Specs["local-a"]
	spec.KafkaVersion, spec.InterBrokerProtocol = version, ibp
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, entity.RegisterCluster(ctx, stack.Client, spec))
	stack.Specs["local-a"] = spec
	return stack
}

// startMigration starts local-a's migration as alice, fast, and waits for
// its preflight's verdict.
func startMigration(ctx context.Context, t testing.TB, stack *devstack.Stack) workflows.MigrationState {
	t.Helper()
	_, err := entity.StartMigration(ctx, stack.Client, workflows.MigrationInput{Cluster: "local-a", RequestedBy: "alice",
		WaitTimeout: time.Minute, PollInterval: 200 * time.Millisecond})
	require.NoError(t, err)
	return migrationWhen(ctx, t, stack, "preflight ends", func(st workflows.MigrationState) bool {
		return st.Status != workflows.MigrationPreflightStatus
	})
}

func migrationWhen(ctx context.Context, t testing.TB, stack *devstack.Stack, what string, ok func(workflows.MigrationState) bool) workflows.MigrationState {
	t.Helper()
	var last workflows.MigrationState
	require.Eventually(t, func() bool {
		st, err := entity.MigrationStatus(ctx, stack.Client, "local-a")
		if err != nil {
			return false
		}
		last = st
		return ok(st)
	}, 3*time.Minute, 100*time.Millisecond, "%s (last: %+v)", what, last)
	return last
}

// decide sends a decision to local-a's migration as bob (not alice, who
// asked for it), retrying while a killed worker cannot answer.
func decide(ctx context.Context, t testing.TB, stack *devstack.Stack, d workflows.MigrationDecision) {
	t.Helper()
	d.By = "bob"
	require.Eventually(t, func() bool {
		dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_, err := entity.DecideMigration(dctx, stack.Client, "local-a", d)
		require.NotErrorIs(t, err, fleet.ErrRefused)
		return err == nil
	}, 2*time.Minute, time.Second, "decision %+v taken", d)
}

// stepDone waits until the migration has run n steps and awaits the next
// decision (or ended), and fails on a failed step.
func stepDone(ctx context.Context, t testing.TB, stack *devstack.Stack, n int) workflows.MigrationState {
	t.Helper()
	st := migrationWhen(ctx, t, stack, fmt.Sprintf("step %d ends", n), func(st workflows.MigrationState) bool {
		return len(st.Steps) >= n && st.Status != workflows.MigrationRunning
	})
	last := st.Steps[n-1]
	require.Equal(t, workflows.StatusSucceeded, last.Status, "%s: %s", last.Params, last.Error)
	t.Logf("%s approved by %s: %s in %s (%s)", last.Params, last.ApprovedBy, last.Status, last.Ended.Sub(last.Started).Round(10*time.Millisecond), last.Outcome)
	return st
}

// znodes reads local-a's migration znodes from the real ZooKeeper.
func znodes(t *testing.T, stack *devstack.Stack) (migration, controllerByKRaft bool, brokers []string) {
	t.Helper()
	conn := zkConn(t, stack)
	root := cloud.ZooKeeperChroot("local-a")
	migration, _, err := conn.Exists(root + "/migration")
	require.NoError(t, err)
	data, _, err := conn.Get(root + "/controller")
	if err == nil {
		controllerByKRaft = strings.Contains(string(data), "kraftControllerEpoch")
	}
	brokers, _, err = conn.Children(root + "/brokers/ids")
	if err == zk.ErrNoNode {
		err = nil
	}
	require.NoError(t, err)
	return migration, controllerByKRaft, brokers
}

// zkConn is a session on the stack's ZooKeeper, closed with the test.
func zkConn(t *testing.T, stack *devstack.Stack) *zk.Conn {
	t.Helper()
	conn, _, err := zk.Connect([]string{stack.ZooKeeper.Addr}, 5*time.Second, zk.WithLogInfo(false))
	require.NoError(t, err)
	t.Cleanup(conn.Close)
	return conn
}

// controllerHosts are local-a's live controller instances, as EC2 lists
// them.
func controllerHosts(ctx context.Context, t *testing.T, stack *devstack.Stack) []string {
	t.Helper()
	live, err := fleetEC2(stack).FindInstances(ctx, cloud.InstanceFilter{Cluster: "local-a", Role: cloud.RoleController,
		States: []string{"pending", "running", "stopping", "stopped"}})
	require.NoError(t, err)
	var ids []string
	for _, in := range live {
		ids = append(ids, in.ID)
	}
	return ids
}

// TestIntegrationMigrationRefusedAtPreflight: a cluster still on Kafka
// 3.8 is refused with the reason, and so is one whose ZooKeeper holds a
// /migration znode from an earlier attempt; nothing is launched, stopped
// or started, and the entity's spec is unchanged.
func TestIntegrationMigrationRefusedAtPreflight(t *testing.T) {
	t.Parallel()
	stack := migrationStack(t, "3.8.1", "3.8")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	before := len(stack.Fleet.Audit("local-a"))

	st := startMigration(ctx, t, stack)
	require.Equal(t, workflows.MigrationRefused, st.Status)
	reasons := blockerReasons(st.Blockers)
	assert.Contains(t, reasons, "every broker must run Kafka 3.9.x before migrating (upgrade first): broker 1 runs 3.8.1")
	assert.Contains(t, reasons, "inter.broker.protocol.version must be 3.9")
	t.Logf("refused: %s", reasons)

	// The same cluster on 3.9 with a leftover /migration znode.
	spec := stack.Specs["local-a"]
	spec.KafkaVersion, spec.InterBrokerProtocol = "3.9.0", "3.9"
	require.NoError(t, entity.RegisterCluster(ctx, stack.Client, spec))
	conn := zkConn(t, stack)
	_, err := conn.Create(cloud.ZooKeeperChroot("local-a")+"/migration", []byte(`{"version":0,"kraft_metadata_offset":42}`), 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	st = startMigration(ctx, t, stack)
	require.Equal(t, workflows.MigrationRefused, st.Status)
	assert.Contains(t, blockerReasons(st.Blockers), "/migration exists in ZooKeeper from an earlier attempt")

	assert.Len(t, stack.Fleet.Audit("local-a"), before, "the fleet saw nothing happen")
	assert.Empty(t, controllerHosts(ctx, t, stack), "no controller launched")
	cs, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	assert.Equal(t, fleet.ModeZooKeeper, cs.Spec.Mode())
	noViolations(t, stack, "local-a")
}

// noRecoveries: sensing never took a broker the migration restarted, or
// moved from ZooKeeper to fencing, for a lost one.
func noRecoveries(t *testing.T, cs workflows.ClusterStatus) {
	t.Helper()
	for _, op := range append(cs.Urgent, cs.History...) {
		assert.NotEqual(t, workflows.OpRecovery, op.Kind, "no recovery: %s of %v (%s)", op.ID, op.Brokers, op.Outcome)
	}
}

func blockerReasons(bs []fleet.Blocker) string {
	var out []string
	for _, b := range bs {
		out = append(out, b.Reason)
	}
	return strings.Join(out, "; ")
}

// TestIntegrationMigrationUnderLoadSurvivesWorkerKills migrates local-a
// through all four phases while a producer writes with acks=all, killing
// the worker (SIGKILL) at random moments of every phase: each phase runs
// once (every broker restarted exactly twice, every controller started
// exactly twice), no record acknowledged is lost, and the cluster ends in
// KRaft with ZooKeeper no longer used by it.
func TestIntegrationMigrationUnderLoadSurvivesWorkerKills(t *testing.T) {
	t.Parallel()
	rng, _ := chaosRand(t)
	stack := migrationStack(t, "3.9.0", "3.9")
	workers := startWorkerProcesses(t, stack, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)
	load := startLoad(t, stack, 100)

	st := startMigration(ctx, t, stack)
	require.Equal(t, workflows.MigrationAwaiting, st.Status, "preflight passed: %v", st.Blockers)
	kills := 0
	for phase := fleet.PhaseControllers; phase <= fleet.PhaseFinalize; phase++ {
		decide(ctx, t, stack, workflows.MigrationDecision{Action: workflows.MigrationApprove, Phase: phase})
		// Kill the worker at a random moment of the phase, then again
		// while it still runs.
		for range 2 {
			time.Sleep(time.Duration(200+rng.IntN(2500)) * time.Millisecond)
			cur, err := entity.MigrationStatus(ctx, stack.Client, "local-a")
			if err != nil || cur.Status != workflows.MigrationRunning {
				break
			}
			workers.killAndRestart(0)
			kills++
			t.Logf("kill %d during phase %s", kills, phase)
		}
		st = stepDone(ctx, t, stack, int(phase))
	}
	require.Equal(t, workflows.MigrationFinalized, st.Status)
	load.halt()
	t.Logf("%d worker kills; %d records acknowledged, %d sends failed", kills, load.acked.Load(), load.failed.Load())

	// The cluster is KRaft, and ZooKeeper is no longer used by it.
	cs, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	assert.Equal(t, fleet.ModeKRaft, cs.Spec.Mode())
	assert.Empty(t, cs.Spec.ZooKeeper)
	mig, err := stack.Fleet.Migration("local-a")
	require.NoError(t, err)
	assert.Equal(t, localfleet.MigrationReleased, mig.State)
	assert.False(t, mig.ZooKeeperInUse, "no session, no dependency: %+v", mig)
	assert.Equal(t, []int32{1, 2, 3}, mig.Brokers[cloud.MetadataModeKRaft])
	assert.Positive(t, mig.RecordsCopied, "the takeover copied the metadata")
	_, _, zkBrokers := znodes(t, stack)
	assert.Empty(t, zkBrokers, "no broker registered in ZooKeeper")
	lastWrite := mig.LastZooKeeperWrite
	time.Sleep(time.Second)
	mig, err = stack.Fleet.Migration("local-a")
	require.NoError(t, err)
	assert.Equal(t, lastWrite, mig.LastZooKeeperWrite, "nothing writes to ZooKeeper any more")

	// Each phase ran once: brokers restarted in phases 2 and 3, the
	// controllers started in phase 1 and restarted in phase 4.
	_, starts := stopsAndStarts(stack.Fleet.Audit("local-a"))
	assert.Equal(t, map[int32]int{1: 2, 2: 2, 3: 2}, starts, "every broker restarted exactly twice")
	ctlStarts := map[int32]int{}
	for _, e := range stack.Fleet.Audit("local-a") {
		if e.Kind == localfleet.EventControllerStart {
			ctlStarts[e.Broker]++
		}
	}
	assert.Equal(t, map[int32]int{3000: 2, 3001: 2, 3002: 2}, ctlStarts, "every controller started in phase 1 and restarted in phase 4, once each")
	assert.Len(t, controllerHosts(ctx, t, stack), 3, "three controller hosts, none launched twice")
	noViolations(t, stack, "local-a")
	noRecoveries(t, cs)

	// No record acknowledged is lost: the 0 seeded plus every one acked.
	acked := load.acked.Load()
	require.Positive(t, acked)
	assert.Equal(t, acked, readAll(ctx, t, stack, "events", acked), "every acknowledged record is read back")
}

// TestIntegrationMigrationRollsBackFromDualWrite takes local-a to
// dual-write under load, then rolls it back: the controllers stopped and
// terminated, /controller and /migration deleted, the brokers back in
// plain ZooKeeper mode with one of them the controller, no partition ever
// left without a leader, no record lost.
func TestIntegrationMigrationRollsBackFromDualWrite(t *testing.T) {
	t.Parallel()
	stack := migrationStack(t, "3.9.0", "3.9")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)
	load := startLoad(t, stack, 100)

	st := startMigration(ctx, t, stack)
	require.Equal(t, workflows.MigrationAwaiting, st.Status, "preflight passed: %v", st.Blockers)
	decide(ctx, t, stack, workflows.MigrationDecision{Action: workflows.MigrationApprove, Phase: fleet.PhaseControllers})
	stepDone(ctx, t, stack, 1)
	decide(ctx, t, stack, workflows.MigrationDecision{Action: workflows.MigrationApprove, Phase: fleet.PhaseDualWrite})
	st = stepDone(ctx, t, stack, 2)
	require.Equal(t, fleet.MigrationStage{Mode: fleet.ModeMigrating, Phase: fleet.PhaseDualWrite}, st.Stage)
	migration, byKRaft, _ := znodes(t, stack)
	require.True(t, migration && byKRaft, "dual-write: /migration written, /controller held by the KRaft leader")
	mig, err := stack.Fleet.Migration("local-a")
	require.NoError(t, err)
	require.Equal(t, localfleet.MigrationDualWrite, mig.State)
	assert.Contains(t, st.Rollback, "delete /controller and /migration")

	decide(ctx, t, stack, workflows.MigrationDecision{Action: workflows.MigrationRollback, Reason: "rollback drill"})
	st = stepDone(ctx, t, stack, 3)
	require.Equal(t, workflows.MigrationRolledBack, st.Status)
	load.halt()

	migration, byKRaft, zkBrokers := znodes(t, stack)
	assert.False(t, migration, "/migration deleted")
	assert.False(t, byKRaft, "a broker holds /controller")
	assert.ElementsMatch(t, []string{"1", "2", "3"}, zkBrokers)
	mig, err = stack.Fleet.Migration("local-a")
	require.NoError(t, err)
	assert.Equal(t, []int32{1, 2, 3}, mig.Brokers[cloud.MetadataModeZooKeeper], "every broker back in plain ZooKeeper mode")
	assert.Empty(t, controllerHosts(ctx, t, stack), "the controllers' hosts are terminated")
	cs, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	assert.Equal(t, fleet.ModeZooKeeper, cs.Spec.Mode())
	assert.Nil(t, cs.Spec.KRaft)
	// Phase 2's roll and the rollback's: two restarts per broker.
	_, starts := stopsAndStarts(stack.Fleet.Audit("local-a"))
	assert.Equal(t, map[int32]int{1: 2, 2: 2, 3: 2}, starts)
	noViolations(t, stack, "local-a")
	noRecoveries(t, cs)
	acked := load.acked.Load()
	require.Positive(t, acked)
	assert.Equal(t, acked, readAll(ctx, t, stack, "events", acked), "every acknowledged record is read back")

	// The migration and its steps, for the replay tests.
	histories := map[string]string{workflows.MigrationWorkflowID("local-a"): "migration_rolled_back.json"}
	for _, op := range cs.History {
		var p workflows.MigrationParams
		if op.Kind != workflows.OpMigrationPhase || json.Unmarshal(op.Params, &p) != nil {
			continue
		}
		name := fmt.Sprintf("migration_phase%d.json", p.Phase)
		if p.Rollback {
			name = fmt.Sprintf("migration_rollback%d.json", p.Phase)
		}
		histories[op.WorkflowID] = name
	}
	recordHistories(ctx, t, stack.Client, histories)
}
