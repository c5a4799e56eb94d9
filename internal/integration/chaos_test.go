package integration_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// What the chaos test runs, as it counts them.
const (
	chaosSerial    = "serial roll"
	chaosBatched   = "batched roll"
	chaosUpgrade   = "upgrade"
	chaosRecovery  = "recovery"
	chaosExpansion = "expansion"
)

var chaosLabels = []string{chaosSerial, chaosBatched, chaosUpgrade, chaosRecovery, chaosExpansion}

// chaosOpTimeout bounds one operation, kills included: each kill that
// lands in an activity costs its heartbeat timeout (10 s) before another
// worker retries it.
const chaosOpTimeout = 5 * time.Minute

// chaosKills is how many worker kills a chaos test makes:
// KFLEET_CHAOS_KILLS, else def.
func chaosKills(t *testing.T, def int) int {
	kills := def
	if v, err := strconv.Atoi(os.Getenv("KFLEET_CHAOS_KILLS")); err == nil && v > 0 {
		kills = v
	}
	t.Logf("KFLEET_CHAOS_KILLS=%d", kills)
	return kills
}

// TestIntegrationCrashSafetyChaos is chaos that means it. The default
// fleet's two clusters (local-a, 3 brokers; local-b, 6 brokers over 3
// racks) keep running operations, each cluster one after another in a
// cycle — a serial roll, a batched roll with a volume expansion beside it,
// an upgrade (the first ones bump the protocol: two rolls), a recovery
// from a Map-failed crash loop provoked on a broker — on three worker
// processes (KFLEET_CHAOS_WORKERS) polling the same task queues, while one
// of them, at random, is killed with SIGKILL at a random moment and a new
// one started in its place, until the asked number of kills is made
// (KFLEET_CHAOS_KILLS: 6 here, 40 in `make chaos`; KFLEET_CHAOS_SEED
// replays the victims and the delays) and every kind has completed at
// least once. The entities' small event budget makes them continue as new
// every few seconds meanwhile.
//
// Then it judges from outside: every operation succeeded, and the fleet's
// audit shows each one's work done exactly once — each broker stopped and
// started once per roll (the upgrade's starts on its version), the lost
// broker started once after its limit was raised, the filesystem grown
// once — with every stop, start, limit and filesystem change named by an
// operation the test asked for (or provoked), one SSM command per step,
// no violation, and no operation nobody asked for. On failure the worker
// logs, entity histories and audits are kept (keepEvidence).
func TestIntegrationCrashSafetyChaos(t *testing.T) {
	kills := chaosKills(t, 6)
	rng, seed := chaosRand(t)
	began := time.Now()
	stack := startStackWith(t, fastFleet(
		localfleet.ClusterConfig{ID: "local-a", Brokers: 3},
		localfleet.ClusterConfig{ID: "local-b", Brokers: 6, Racks: 3},
	), func(o *devstack.StackOptions) {
		o.EventBudget = 80
		o.Health = fleet.HealthPolicy{Interval: 500 * time.Millisecond, RecoveryGrace: time.Second}
		for i := range o.Fleet.Clusters {
			c := &o.Fleet.Clusters[i]
			// A crash loop's log recovery: 36,042 segments the first
			// time, 0.4 s; each later one of the same broker ~1.7 times
			// more segments.
			c.Timing.RecoveryPerSegment = 10 * time.Microsecond
			c.Volume = localfleet.VolumeConfig{Modifying: 300 * time.Millisecond, Optimizing: time.Second}
		}
	})
	n := 3
	if v, err := strconv.Atoi(os.Getenv("KFLEET_CHAOS_WORKERS")); err == nil && v > 0 {
		n = v
	}
	workers := startWorkerProcesses(t, stack, n)
	keepEvidence(t, stack, workers, "local-a", "local-b")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()

	ch := &chaos{ctx: ctx, t: t, stack: stack, done: map[string]int{}}
	clusters := []*chaosCluster{
		ch.cluster("local-a", 0),
		// Starts with an upgrade, then a recovery: every kind runs early.
		ch.cluster("local-b", 2),
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(clusters))
	for _, c := range clusters {
		wg.Add(2)
		go func() { defer wg.Done(); c.seen.follow(ctx, stack, c.id) }()
		go func() { defer wg.Done(); errs <- c.run() }()
	}
	defer func() { cancel(); wg.Wait() }()

	// The killer: a random worker at a random moment, once the fleet has
	// moved since the last kill (so kills spread over the operations
	// rather than pile up on one step), until the kills asked are made.
	auditLen := func() (events int) {
		for _, c := range clusters {
			events += len(stack.Fleet.Audit(c.id))
		}
		return events
	}
	killed, seen := 0, auditLen()
	for killed < kills && !ch.failed.Load() {
		for moved := time.Now().Add(20 * time.Second); auditLen() == seen && time.Now().Before(moved) && !ch.failed.Load(); {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		if ch.failed.Load() {
			break
		}
		victim := rng.IntN(len(workers.w))
		workers.killAndRestart(victim)
		killed++
		seen = auditLen()
		t.Logf("kill %d: worker %d of %d, during %s", killed, victim, len(workers.w), ch.running())
	}
	ch.killsDone.Store(true)
	for range clusters {
		assert.NoError(t, <-errs, "every operation completes despite the kills (worker logs in %s)", workers.logs)
	}
	cancel()
	wg.Wait()

	var continued []string
	for _, c := range clusters {
		runs, _, _ := entityRuns(context.Background(), t, stack, c.id)
		continued = append(continued, fmt.Sprintf("%s %d", c.id, runs))
	}
	t.Logf("chaos: %d worker kills made (%d asked) among %d workers with KFLEET_CHAOS_SEED=%d in %s; operations completed: %s; entities continued as new: %s",
		killed, kills, n, seed, time.Since(began).Round(time.Second), ch.summary(), strings.Join(continued, ", "))
	assert.Equal(t, kills, killed, "every kill asked for was made")
	for _, label := range chaosLabels {
		assert.Positive(t, ch.done[label], "a %s completed", label)
	}
	for _, c := range clusters {
		c.judge()
	}
}

// chaos is one chaos run: what it asked for and how each ended.
type chaos struct {
	ctx       context.Context
	t         *testing.T
	stack     *devstack.Stack
	killsDone atomic.Bool
	failed    atomic.Bool

	mu       sync.Mutex
	ops      []chaosOp      // ended, in order
	done     map[string]int // succeeded, by label
	inFlight map[string]string
}

// chaosOp is an operation the chaos test asked for (or provoked) and what
// the fleet must show of it.
type chaosOp struct {
	cluster, label string
	op             workflows.Operation // as the entity recorded its end
	// rolls: each broker of the cluster stopped and started this many
	// times (a roll 1; an upgrade 1 or 2); broker: a recovery's or an
	// expansion's; version: an upgrade's.
	rolls   int
	broker  int32
	version string
}

func (ch *chaos) cluster(id string, offset int) *chaosCluster {
	c := &chaosCluster{chaos: ch, id: id, offset: offset, seen: newOpWatch()}
	spec := ch.stack.Specs[id]
	for _, b := range spec.Brokers {
		c.brokers = append(c.brokers, b.ID)
	}
	c.steps = []func() error{c.serialRoll, c.batchedRollAndExpansion, c.upgrade, c.recovery}
	return c
}

// running says what each cluster is doing, for the kill log.
func (ch *chaos) running() string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var parts []string
	for _, id := range slices.Sorted(maps.Keys(ch.inFlight)) {
		parts = append(parts, id+": "+ch.inFlight[id])
	}
	return strings.Join(parts, "; ")
}

func (ch *chaos) summary() string {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	var parts []string
	for _, l := range chaosLabels {
		parts = append(parts, fmt.Sprintf("%s %d", l, ch.done[l]))
	}
	return strings.Join(parts, ", ")
}

// covered: every kind has completed at least once.
func (ch *chaos) covered() bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return !slices.ContainsFunc(chaosLabels, func(l string) bool { return ch.done[l] == 0 })
}

func (ch *chaos) ended(o chaosOp) {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	ch.ops = append(ch.ops, o)
	if o.op.Status == workflows.StatusSucceeded {
		ch.done[o.label]++
	}
}

// chaosCluster runs one cluster's cycle of operations.
type chaosCluster struct {
	*chaos
	id      string
	brokers []int32
	seen    *opWatch
	steps   []func() error
	offset  int
	// upgrades made; recoveries and expansions provoked (the next
	// broker in turn).
	upgrades, recoveries, expansions int
}

// run cycles through the steps until the kills are made and every kind
// has completed once; an operation that does not succeed ends it, and the
// other clusters' runs after their current step.
func (c *chaosCluster) run() error {
	for i := c.offset; !c.failed.Load() && !(c.killsDone.Load() && c.covered()); i++ {
		if err := c.steps[i%len(c.steps)](); err != nil {
			c.failed.Store(true)
			return fmt.Errorf("%s: %w", c.id, err)
		}
	}
	return nil
}

func (c *chaosCluster) doing(what string) {
	c.chaos.mu.Lock()
	defer c.chaos.mu.Unlock()
	if c.inFlight == nil {
		c.inFlight = map[string]string{}
	}
	c.inFlight[c.id] = what
}

// request asks the entity for an operation the test then waits for.
func (c *chaosCluster) request(label string, req workflows.Request) (workflows.Operation, error) {
	op, err := entity.Request(c.ctx, c.stack.Client, c.id, req)
	if err != nil {
		return op, fmt.Errorf("%s: %w", label, err)
	}
	c.seen.claim(op.ID)
	if op.Existing {
		return op, fmt.Errorf("%s: joined %s %s, but nothing else of the kind was queued or running", label, op.Kind, op.ID)
	}
	return op, nil
}

// await waits for op to end and records it; one that did not succeed is
// an error.
func (c *chaosCluster) await(o chaosOp, id string) error {
	began := time.Now()
	end, err := c.seen.waitEnd(c.ctx, id, chaosOpTimeout)
	o.cluster, o.op = c.id, end
	if err != nil {
		lines := entity.OperationProgress(c.ctx, c.stack.Client, end)
		return fmt.Errorf("%s %s did not end within %s (last seen %s; progress %q): %w", o.label, id, chaosOpTimeout, end.Status, lines, err)
	}
	c.ended(o)
	c.t.Logf("%s: %s %s %s after %s: %s", c.id, o.label, id, end.Status, time.Since(began).Round(100*time.Millisecond), end.Outcome)
	if end.Status != workflows.StatusSucceeded {
		return fmt.Errorf("%s %s %s: %s", o.label, id, end.Status, end.Error)
	}
	return nil
}

func (c *chaosCluster) serialRoll() error {
	c.doing(chaosSerial)
	op, err := c.request(chaosSerial, restartReq("chaos"))
	if err != nil {
		return err
	}
	return c.await(chaosOp{label: chaosSerial, rolls: 1}, op.ID)
}

// batchedRollAndExpansion rolls the cluster in batches of brokers that
// share no partition (local-b: one rack at a time) while the next broker
// not expanded yet has its volume grown beside it, in the urgent lane
// (each volume once: EBS allows one modification in 6 hours).
func (c *chaosCluster) batchedRollAndExpansion() error {
	var expansion *workflows.Operation
	var broker int32
	if c.expansions < len(c.brokers) {
		broker = c.brokers[c.expansions]
		c.expansions++
		c.doing(fmt.Sprintf("%s of broker %d, %s", chaosExpansion, broker, chaosBatched))
		op, err := c.request(chaosExpansion, expandReq("chaos", broker))
		if err != nil {
			return err
		}
		expansion = &op
	} else {
		c.doing(chaosBatched)
	}
	op, err := c.request(chaosBatched, batchedRestartReq("chaos", 3))
	if err != nil {
		return err
	}
	err = c.await(chaosOp{label: chaosBatched, rolls: 1}, op.ID)
	if expansion != nil {
		err = errors.Join(err, c.await(chaosOp{label: chaosExpansion, broker: broker}, expansion.ID))
	}
	return err
}

// recovery crashes the next broker in turn with a Map-failed crash loop
// behind kfleet's back (the cluster is quiet: nothing else of the test
// runs on it) and waits for the recovery kfleet starts.
func (c *chaosCluster) recovery() error {
	broker := c.brokers[(c.recoveries+1)%len(c.brokers)]
	c.recoveries++
	c.doing(fmt.Sprintf("%s of broker %d", chaosRecovery, broker))
	injected := time.Now()
	if err := c.stack.Fleet.InjectFault(c.ctx, c.id, broker, localfleet.Fault{Kind: localfleet.FaultCrashLoop}, "chaos"); err != nil {
		return fmt.Errorf("crash-loop broker %d: %w", broker, err)
	}
	op, err := c.seen.waitNew(c.ctx, workflows.OpRecovery, broker, injected, 2*time.Minute)
	if err != nil {
		return fmt.Errorf("broker %d crash-looping: %w", broker, err)
	}
	return c.await(chaosOp{label: chaosRecovery, broker: broker}, op.ID)
}

// upgrade goes to the next version: 3.7.1 from protocol 3.6, then 3.8.0
// and 3.9.0 (each bumps the protocol: two rolls), then 3.9.x patches (one
// roll).
func (c *chaosCluster) upgrade() error {
	n := c.upgrades
	c.upgrades++
	version, from, rolls := "3.9."+strconv.Itoa(n-2), "", 1
	switch n {
	case 0:
		version, from, rolls = "3.7.1", "3.6", 2
	case 1:
		version, rolls = "3.8.0", 2
	case 2:
		version, rolls = "3.9.0", 2
	}
	c.doing(chaosUpgrade + " to " + version)
	op, err := c.request(chaosUpgrade, upgradeReq("chaos", version, from))
	if err != nil {
		return err
	}
	return c.await(chaosOp{label: chaosUpgrade, rolls: rolls, version: version}, op.ID)
}
