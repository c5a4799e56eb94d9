package integration_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// How the chaos test (chaos_test.go) judges what it ran: the fleet's
// audit held to the operations it asked for, and every operation the
// entities showed.

// auditedOperation is the operation id an audited change names: kfleet's
// SSM commands carry "kfleet <kind> <id>[/<phase>][:] ..." as their
// comment, which the fleet records as who asked ("" for anyone else).
func auditedOperation(who string) string {
	f := strings.Fields(who)
	if len(f) < 3 || f[0] != "kfleet" {
		return ""
	}
	id, _, _ := strings.Cut(strings.TrimSuffix(f[2], ":"), "/")
	return id
}

// judge holds the cluster's audit to the operations the test recorded.
func (c *chaosCluster) judge() {
	t := c.t
	t.Helper()
	var ops []chaosOp
	for _, o := range c.ops {
		if o.cluster == c.id {
			ops = append(ops, o)
		}
	}
	byID := map[string]chaosOp{}
	for _, o := range ops {
		byID[o.op.ID] = o
	}
	// Every change to a broker or its host names one of them.
	changes := map[string][]localfleet.Event{}
	volumes := map[int32]int{}
	for _, e := range c.stack.Fleet.Audit(c.id) {
		switch e.Kind {
		case localfleet.EventStop, localfleet.EventStart, localfleet.EventStartFailed, localfleet.EventLimit, localfleet.EventFilesystemGrown:
			id := auditedOperation(e.Who)
			if _, ok := byID[id]; !ok {
				t.Errorf("%s: %s of broker %d at %s by %q: no operation the test asked for", c.id, e.Kind, e.Broker, e.Time.Format("15:04:05.000"), e.Who)
				continue
			}
			changes[id] = append(changes[id], e)
		case localfleet.EventVolumeModified:
			volumes[e.Broker]++
		}
	}
	// Each operation's own changes, and what the hosts must have been sent.
	want := map[int32]map[string]int{}
	for _, b := range c.brokers {
		want[b] = map[string]int{}
	}
	for _, o := range ops {
		got := map[localfleet.EventKind]map[int32]int{}
		for _, e := range changes[o.op.ID] {
			if got[e.Kind] == nil {
				got[e.Kind] = map[int32]int{}
			}
			got[e.Kind][e.Broker]++
			if o.label == chaosUpgrade && e.Kind == localfleet.EventStart {
				assert.Equal(t, o.version, e.Version, "%s: %s %s: broker %d started on the new version", c.id, o.label, o.op.ID, e.Broker)
			}
		}
		what := fmt.Sprintf("%s: %s %s", c.id, o.label, o.op.ID)
		switch o.label {
		case chaosSerial, chaosBatched, chaosUpgrade:
			each := map[int32]int{}
			for _, b := range c.brokers {
				each[b] = o.rolls
				want[b][cloud.DocStopBroker] += o.rolls
				want[b][cloud.DocStartBroker] += o.rolls
			}
			assert.Equal(t, each, got[localfleet.EventStop], "%s: each broker stopped once per roll (%d)", what, o.rolls)
			assert.Equal(t, each, got[localfleet.EventStart], "%s: each broker started once per roll (%d)", what, o.rolls)
			delete(got, localfleet.EventStop)
			delete(got, localfleet.EventStart)
		case chaosRecovery:
			want[o.broker][cloud.DocStartBroker]++
			want[o.broker][cloud.DocSetSysctl]++
			assert.Equal(t, map[int32]int{o.broker: 1}, got[localfleet.EventStart], "%s: the lost broker started exactly once", what)
			assert.Equal(t, map[int32]int{o.broker: 1}, got[localfleet.EventLimit], "%s: its limit raised once, before", what)
			assert.Contains(t, o.op.Outcome, "cause map-failed, 1 start(s), vm.max_map_count", what)
			delete(got, localfleet.EventStart)
			delete(got, localfleet.EventLimit)
		case chaosExpansion:
			want[o.broker][cloud.DocGrowFilesystem]++
			assert.Equal(t, map[int32]int{o.broker: 1}, got[localfleet.EventFilesystemGrown], "%s: the filesystem grown once", what)
			assert.Equal(t, 1, volumes[o.broker], "%s: the volume modified once", what)
			assert.True(t, strings.HasPrefix(o.op.Outcome, "expanded 100 -> "), "%s: %s", what, o.op.Outcome)
			delete(got, localfleet.EventFilesystemGrown)
		}
		assert.Empty(t, got, "%s: nothing else changed", what)
	}
	// One SSM command per step, whatever the kills.
	counts := c.stack.Fleet.CommandCounts(c.id)
	for _, b := range c.brokers {
		for _, doc := range []string{cloud.DocStopBroker, cloud.DocStartBroker, cloud.DocSetSysctl, cloud.DocGrowFilesystem} {
			assert.Equal(t, want[b][doc], counts[b][doc], "%s: broker %d: %s commands", c.id, b, doc)
		}
	}
	assert.Empty(t, c.stack.Fleet.Violations(c.id), "%s: never two brokers sharing a partition down, never under min ISR, no recovering broker restarted", c.id)
	for _, op := range c.seen.unclaimed() {
		t.Errorf("%s: %s %s (%s, requested by %s: %s) was asked for by no one in the test", c.id, op.Kind, op.ID, op.Status, op.RequestedBy, op.Reason)
	}
}

// opWatch follows a cluster's entity and keeps every operation it has
// shown, as last seen: the test waits on them, and tells the ones it asked
// for from any other.
type opWatch struct {
	mu      sync.Mutex
	ops     map[string]workflows.Operation
	claimed map[string]bool
}

func newOpWatch() *opWatch {
	return &opWatch{ops: map[string]workflows.Operation{}, claimed: map[string]bool{}}
}

// follow polls the entity's status until ctx ends (a query waits for a
// worker: while one restarts, FollowStatus waits).
func (w *opWatch) follow(ctx context.Context, stack *devstack.Stack, cluster string) {
	for {
		st, err := entity.FollowStatus(ctx, stack.Client, cluster, 200*time.Millisecond)
		if err != nil {
			return
		}
		w.mu.Lock()
		if st.Running != nil {
			w.ops[st.Running.ID] = *st.Running
		}
		for _, ops := range [][]workflows.Operation{st.Urgent, st.Queue, st.History} {
			for _, op := range ops {
				w.ops[op.ID] = op
			}
		}
		w.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (w *opWatch) claim(id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.claimed[id] = true
}

// waitEnd waits until operation id has ended and returns it as recorded.
func (w *opWatch) waitEnd(ctx context.Context, id string, within time.Duration) (workflows.Operation, error) {
	var op workflows.Operation
	err := w.wait(ctx, within, func() bool {
		op = w.ops[id]
		switch op.Status {
		case workflows.StatusSucceeded, workflows.StatusFailed, workflows.StatusCancelled:
			return true
		}
		return false
	})
	return op, err
}

// waitNew waits for an operation of kind on broker, requested since, that
// no one claimed yet (one kfleet started itself), and claims it.
func (w *opWatch) waitNew(ctx context.Context, kind string, broker int32, since time.Time, within time.Duration) (workflows.Operation, error) {
	var found workflows.Operation
	err := w.wait(ctx, within, func() bool {
		for id, op := range w.ops {
			if !w.claimed[id] && op.Kind == kind && slices.Equal(op.Brokers, []int32{broker}) && !op.RequestedAt.Before(since) {
				w.claimed[id], found = true, op
				return true
			}
		}
		return false
	})
	return found, err
}

func (w *opWatch) wait(ctx context.Context, within time.Duration, ok func() bool) error {
	deadline := time.After(within)
	for {
		w.mu.Lock()
		done := ok()
		w.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return errors.New("timed out")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// unclaimed lists the operations the entity showed that the test neither
// asked for nor provoked.
func (w *opWatch) unclaimed() []workflows.Operation {
	w.mu.Lock()
	defer w.mu.Unlock()
	var ops []workflows.Operation
	for id, op := range w.ops {
		if !w.claimed[id] {
			ops = append(ops, op)
		}
	}
	return ops
}

// keepEvidence keeps, when the test fails, what explains it and would go
// with the test's temporary folders: the worker processes' logs, every run
// of each cluster entity's history and each cluster's audit and
// violations, in KFLEET_CHAOS_EVIDENCE (default: a new folder in the
// system's temporary folder); it logs where.
func keepEvidence(t *testing.T, stack *devstack.Stack, workers *workerProcesses, clusters ...string) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		dir := os.Getenv("KFLEET_CHAOS_EVIDENCE")
		var err error
		if dir == "" {
			dir, err = os.MkdirTemp("", "kfleet-chaos-")
		} else {
			err = os.MkdirAll(dir, 0o755)
		}
		if err == nil {
			err = os.CopyFS(filepath.Join(dir, "workers"), os.DirFS(workers.logs))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, id := range clusters {
			if err != nil {
				break
			}
			_, _, runs := entityRuns(ctx, t, stack, id)
			for i, run := range append(runs, "") {
				file := filepath.Join(dir, fmt.Sprintf("%s-entity-run-%02d.json", id, i+1))
				err = errors.Join(err, writeHistory(ctx, stack.Client, workflows.ClusterWorkflowID(id), run, file))
			}
			for name, v := range map[string]any{"audit": stack.Fleet.Audit(id), "violations": stack.Fleet.Violations(id)} {
				data, _ := json.MarshalIndent(v, "", "  ")
				err = errors.Join(err, os.WriteFile(filepath.Join(dir, id+"-"+name+".json"), data, 0o644))
			}
		}
		t.Logf("evidence kept in %s (worker logs, entity histories, audits): %v", dir, err)
	})
}
