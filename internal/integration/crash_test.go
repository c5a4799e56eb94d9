package integration_test

import (
	"cmp"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// chaosRand is the randomness of a chaos test: seeded from
// KFLEET_CHAOS_SEED when set, so a failure replays; the seed is logged and
// returned.
func chaosRand(t *testing.T) (*rand.Rand, uint64) {
	seed := uint64(time.Now().UnixNano())
	if v, err := strconv.ParseUint(os.Getenv("KFLEET_CHAOS_SEED"), 10, 64); err == nil {
		seed = v
	}
	t.Logf("KFLEET_CHAOS_SEED=%d", seed)
	return rand.New(rand.NewPCG(seed, seed)), seed
}

// workerProcesses are the stack's workers as processes of their own, so a
// test can kill any of them with SIGKILL and start another in its place.
type workerProcesses struct {
	t         *testing.T
	stack     *devstack.Stack
	bin, logs string
	w         []*devstack.WorkerProcess
}

// startWorkerProcesses builds the worker binary and runs n of it, polling
// the same task queues, in place of the stack's in-process worker (which
// only served registration).
func startWorkerProcesses(t *testing.T, stack *devstack.Stack, n int) *workerProcesses {
	t.Helper()
	stack.StopWorker()
	p := &workerProcesses{t: t, stack: stack, bin: filepath.Join(t.TempDir(), "worker"), logs: t.TempDir()}
	out, err := exec.Command("go", "build", "-o", p.bin, "github.com/kfleet/kfleet/worker").CombinedOutput()
	require.NoError(t, err, "go build worker: %s", out)
	for i := range n {
		w, err := stack.StartWorkerProcess(p.bin, p.dir(i))
		require.NoError(t, err)
		p.w = append(p.w, w)
	}
	t.Cleanup(func() {
		for _, w := range p.w {
			_ = w.Kill()
		}
	})
	return p
}

func (p *workerProcesses) dir(i int) string { return filepath.Join(p.logs, strconv.Itoa(i)) }

// killAndRestart kills worker i with SIGKILL and starts a new one.
func (p *workerProcesses) killAndRestart(i int) {
	p.t.Helper()
	require.NoError(p.t, p.w[i].Kill())
	var err error
	p.w[i], err = p.stack.StartWorkerProcess(p.bin, p.dir(i))
	require.NoError(p.t, err)
}

// TestIntegrationCrashSafetyRestartTemporal restarts the Temporal server in
// the middle of a roll: the roll resumes from its persisted history and
// completes, each broker restarted exactly once.
func TestIntegrationCrashSafetyRestartTemporal(t *testing.T) {
	cc := localfleet.ClusterConfig{ID: "local-a", Brokers: 3}
	cfg := fastFleet(cc)
	// Slow enough that the restart lands mid-roll.
	cfg.Clusters[0].Timing.CatchUp = 2 * time.Second
	stack := startStack(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	op, err := entity.Request(ctx, stack.Client, "local-a", restartReq("chaos"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		stops, _ := stopsAndStarts(stack.Fleet.Audit("local-a"))
		return len(stops) >= 1
	}, time.Minute, 50*time.Millisecond, "the roll has begun")
	require.NoError(t, stack.Temporal.Restart(ctx))
	stops, _ := stopsAndStarts(stack.Fleet.Audit("local-a"))
	t.Logf("Temporal restarted with brokers stopped so far %v", stops)

	res, err := entity.FollowOperation(ctx, stack.Client, "local-a", op.ID, 200*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err)
	require.Len(t, res.Brokers, 3)
	stops, starts := stopsAndStarts(stack.Fleet.Audit("local-a"))
	assert.Equal(t, map[int32]int{1: 1, 2: 1, 3: 1}, stops, "each broker stopped exactly once")
	assert.Equal(t, map[int32]int{1: 1, 2: 1, 3: 1}, starts, "each broker started exactly once")
	assert.Empty(t, stack.Fleet.Violations("local-a"))
}

// TestIntegrationCrashSafetyKillWorkerDuringRecovery kills the worker
// process at random moments of a recovery from a Map-failed crash loop —
// diagnosis, raising vm.max_map_count, the start, the wait through log
// recovery — and shows from the fleet's audit that the broker is still
// started exactly once, after its limit was raised, with nothing unsafe.
func TestIntegrationCrashSafetyKillWorkerDuringRecovery(t *testing.T) {
	t.Parallel() // waiting for heartbeats and retries: beside the other long tests
	rng, _ := chaosRand(t)
	stack := startStackWith(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}), func(o *devstack.StackOptions) {
		o.Health = fleet.HealthPolicy{Interval: time.Second, RecoveryGrace: time.Second}
		// 33,000 segments at 100µs: 3.3 s of log recovery to be killed in.
		o.Fleet.Clusters[0].Timing.RecoveryPerSegment = 100 * time.Microsecond
	})
	workers := startWorkerProcesses(t, stack, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)

	require.NoError(t, stack.Fleet.InjectFault(ctx, "local-a", 2, localfleet.Fault{Kind: localfleet.FaultCrashLoop, Segments: 33000}, "chaos"))
	recovery := func() (workflows.Operation, bool) {
		st, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
		if err != nil {
			return workflows.Operation{}, false
		}
		for _, op := range append(st.Urgent, st.History...) {
			if op.Kind == workflows.OpRecovery {
				return op, true
			}
		}
		return workflows.Operation{}, false
	}
	require.Eventually(t, func() bool { _, ok := recovery(); return ok }, time.Minute, 100*time.Millisecond, "a recovery starts")
	for kill := 1; kill <= 3; kill++ {
		time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
		if op, _ := recovery(); op.Status != workflows.StatusRunning {
			break
		}
		workers.killAndRestart(0)
		t.Logf("kill %d during the recovery", kill)
	}
	op := finished(ctx, t, stack, "local-a", workflows.OpRecovery, 3*time.Minute)
	require.Equal(t, workflows.StatusSucceeded, op.Status, "%s (worker logs in %s)", op.Error, workers.logs)
	assert.Contains(t, op.Outcome, "vm.max_map_count 65530 -> 262144")

	_, starts := stopsAndStarts(stack.Fleet.Audit("local-a"))
	assert.Equal(t, map[int32]int{2: 1}, starts, "the lost broker started exactly once")
	for _, e := range stack.Fleet.Audit("local-a") {
		assert.NotEqual(t, localfleet.EventStartFailed, e.Kind, "never started before its limit was raised: %s", e.Detail)
	}
	limit, err := stack.Fleet.Limit("local-a", 2, localfleet.LimitMaxMapCount)
	require.NoError(t, err)
	assert.Equal(t, int64(262144), limit)
	noViolations(t, stack, "local-a")
}

// TestIntegrationCrashSafetyKillWorkerDuringHostReplacement terminates
// broker 2's host and deletes its volume, then kills the worker process
// (SIGKILL) as the recovery launches the new host, as it creates the blank
// volume, and once more at random: the fleet's audit still shows one new
// host and one new volume for the broker — never two live instances (the
// fleet's duplicate-instance violation) —, the broker started once on it,
// and the entity's spec naming it.
func TestIntegrationCrashSafetyKillWorkerDuringHostReplacement(t *testing.T) {
	t.Parallel() // waiting for heartbeats and retries: beside the other long tests
	rng, _ := chaosRand(t)
	stack := startReplaceStack(t, func(o *devstack.StackOptions) {
		// Slow EC2 transitions: the kills land while a step waits on one.
		o.Fleet.EC2.Timing = localfleet.EC2Timing{Pending: 2 * time.Second, Stopping: 500 * time.Millisecond, ShuttingDown: 500 * time.Millisecond,
			VolumeCreating: 1500 * time.Millisecond, Attaching: time.Second, Detaching: time.Second}
	})
	workers := startWorkerProcesses(t, stack, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)
	newProducer(t, stack).produce(ctx, 50, 10_000)
	old := stack.Specs["local-a"].Brokers[1].InstanceID
	vol, err := stack.Fleet.Volume("local-a", 2)
	require.NoError(t, err)
	auditFrom := len(stack.Fleet.Audit("local-a"))
	ec2 := fleetEC2(stack)
	_, err = ec2.TerminateInstance(ctx, old)
	require.NoError(t, err)
	_, err = ec2.WaitVolumeAvailable(ctx, vol.VolumeID, 10*time.Second)
	require.NoError(t, err)
	require.NoError(t, ec2.DeleteVolume(ctx, vol.VolumeID))

	// Kill as each step that makes a resource waits for it, then once more.
	seen := func(kind localfleet.EventKind) bool {
		return len(brokerEvents(stack.Fleet.Audit("local-a")[auditFrom:], 2, kind)) > 0
	}
	for _, moment := range []localfleet.EventKind{localfleet.EventInstanceLaunched, localfleet.EventVolumeCreated, ""} {
		if moment != "" {
			require.Eventually(t, func() bool { return seen(moment) }, 2*time.Minute, 20*time.Millisecond, "the recovery reaches %s", moment)
		}
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		workers.killAndRestart(0)
		t.Logf("worker killed after %s", cmp.Or(string(moment), "a random moment"))
	}
	op := finished(ctx, t, stack, "local-a", workflows.OpRecovery, 4*time.Minute)
	require.Equal(t, workflows.StatusSucceeded, op.Status, "%s (worker logs in %s)", op.Error, workers.logs)

	audit := stack.Fleet.Audit("local-a")[auditFrom:]
	launched := brokerEvents(audit, 2, localfleet.EventInstanceLaunched)
	require.Len(t, launched, 1, "one new host, whatever the kills")
	require.Len(t, brokerEvents(audit, 2, localfleet.EventVolumeCreated), 1, "one new volume")
	_, starts := stopsAndStarts(audit)
	assert.Equal(t, map[int32]int{2: 1}, starts, "started once")
	live, err := ec2.FindInstances(ctx, cloud.InstanceFilter{Cluster: "local-a", Role: cloud.RoleBroker, BrokerID: aws.Int32(2), States: []string{"pending", "running"}})
	require.NoError(t, err)
	require.Len(t, live, 1)
	assert.Equal(t, launched[0].Instance, live[0].ID)
	vols, err := ec2.FindVolumes(ctx, cloud.VolumeFilter{Cluster: "local-a", Role: cloud.RoleKafkaData, BrokerID: aws.Int32(2)})
	require.NoError(t, err)
	assert.Len(t, vols, 1, "one data volume for the broker")
	assert.Equal(t, launched[0].Instance, hostOf(ctx, t, stack, 2))
	noViolations(t, stack, "local-a")
	// How the retries found what the killed attempts made.
	logs, err := os.ReadFile(filepath.Join(workers.dir(0), "worker.log"))
	require.NoError(t, err)
	for _, found := range []string{"replacement host found by its tags", "blank data volume found by its tags", "(or found by its token)"} {
		t.Logf("worker log: %q %d time(s)", found, strings.Count(string(logs), found))
	}
	assert.Contains(t, string(logs), "replacement host found by its tags", "the launch retried after the kill found the host it launched")
}
