package integration_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// BenchmarkClustersPerWorker puts KFLEET_BENCH_CLUSTERS (default 2,000)
// clusters of 3 brokers on one worker process at production settings (a
// health tick a minute, 5 min sensing heartbeats) and reports: the time to
// bring the stack up with every entity registered, the time until the
// worker senses every cluster, its RSS and CPU per idle cluster, and a
// serial roll of the first and the last cluster — from the request to the
// roll's first gate check and to its end — against the same roll on a
// one-cluster fleet (the target: at most 1.2 times as long).
func BenchmarkClustersPerWorker(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("KFLEET_BENCH_CLUSTERS")); err == nil && v > 0 {
		n = v
	}
	bin := filepath.Join(b.TempDir(), "worker")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/kfleet/kfleet/worker").CombinedOutput()
	require.NoError(b, err, "go build worker: %s", out)

	one := startScaleStack(b, bin, 1)
	base := one.roll(b, "scale-0000")
	one.close()
	b.Logf("one-cluster fleet: roll %.1f s, first gate after %.2f s", base.total.Seconds(), base.firstGate.Seconds())

	many := startScaleStack(b, bin, n)
	b.Logf("%d clusters: stack up with every entity registered in %s; every cluster sensed %s after the start",
		n, many.up.Round(time.Second), many.sensedAfter.Round(time.Second))
	b.ReportMetric(many.up.Seconds(), "stack-up-s")
	b.ReportMetric(many.sensedAfter.Seconds(), "all-sensed-s")

	// Idle: the worker's resident memory and CPU over two health ticks.
	cpu0, at0 := processCPU(b, many.pid), time.Now()
	time.Sleep(2 * fleet.DefaultHealthInterval)
	cpu := (processCPU(b, many.pid) - cpu0) / time.Since(at0).Seconds()
	rss := processRSS(b, many.pid)
	b.Logf("idle worker: RSS %.0f MiB (%.1f KiB per cluster), CPU %.1f%% of a core (%.4f%% per cluster)",
		float64(rss)/(1<<20), float64(rss)/1024/float64(n), cpu*100, cpu*100/float64(n))
	b.ReportMetric(float64(rss)/1024/float64(n), "rss-KiB/cluster")
	b.ReportMetric(cpu*100/float64(n), "cpu-%core/cluster")

	for _, id := range []string{scaleCluster(0), scaleCluster(n - 1)} {
		r := many.roll(b, id)
		b.Logf("%s of %d: roll %.1f s (%.2f of the one-cluster roll), first gate after %.2f s",
			id, n, r.total.Seconds(), r.total.Seconds()/base.total.Seconds(), r.firstGate.Seconds())
		b.ReportMetric(r.total.Seconds()/base.total.Seconds(), "roll-ratio-"+id)
		b.ReportMetric(r.firstGate.Seconds(), "first-gate-s-"+id)
	}
	many.close()
}

func scaleCluster(i int) string { return fmt.Sprintf("scale-%04d", i) }

type scaleStack struct {
	stack *devstack.Stack
	pid   int
	// up is how long the stack took to start with every entity
	// registered; sensedAfter until the worker sensed every cluster.
	up, sensedAfter time.Duration
}

// startScaleStack starts n clusters on one worker process and waits until
// it senses every cluster.
func startScaleStack(b *testing.B, bin string, n int) *scaleStack {
	cfg := localfleet.Config{}
	for i := range n {
		cfg.Clusters = append(cfg.Clusters, localfleet.ClusterConfig{ID: scaleCluster(i), Brokers: 3})
	}
	began := time.Now()
	stack := startStackWith(b, cfg, func(o *devstack.StackOptions) {
		o.Health = fleet.HealthPolicy{SensingHeartbeat: fleet.DefaultSensingHeartbeat}
		o.SweepEvery = -1
		o.WorkerBinary = bin // measured alone, not beside the fleet
	})
	s := &scaleStack{stack: stack, pid: stack.WorkerProcess.PID(), up: time.Since(began)}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	pending := make([]string, 0, n)
	for i := range n {
		pending = append(pending, scaleCluster(i))
	}
	for len(pending) > 0 {
		pending = notYetSensed(ctx, b, stack, pending)
		if len(pending) > 0 {
			time.Sleep(2 * time.Second)
		}
	}
	s.sensedAfter = time.Since(began)
	return s
}

// notYetSensed returns the clusters whose entity has no health report yet
// from its sensing (asked 32 at a time).
func notYetSensed(ctx context.Context, b *testing.B, stack *devstack.Stack, ids []string) []string {
	var mu sync.Mutex
	var left []string
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for _, id := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			st, err := entity.ClusterStatus(ctx, stack.Client, id)
			if err != nil {
				failed.Add(1)
			}
			if err != nil || st.Watch == nil || st.Health == nil || st.Health.Verdict == "" {
				mu.Lock()
				left = append(left, id)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.NoError(b, ctx.Err(), "%d clusters still not sensed (%d status queries failed)", len(left), failed.Load())
	return left
}

type rollTiming struct{ total, firstGate time.Duration }

// roll restarts cluster's brokers one at a time and times it.
func (s *scaleStack) roll(b *testing.B, cluster string) rollTiming {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	began := time.Now()
	op, err := entity.Request(ctx, s.stack.Client, cluster, restartReq("bench"))
	require.NoError(b, err)
	_, err = entity.FollowOperation(ctx, s.stack.Client, cluster, op.ID, 100*time.Millisecond, func(entity.Progress) {})
	require.NoError(b, err)
	r := rollTiming{total: time.Since(began)}
	it := s.stack.Client.GetWorkflowHistory(ctx, op.WorkflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	gates := map[int64]bool{}
	for it.HasNext() && r.firstGate == 0 {
		ev, err := it.Next()
		require.NoError(b, err)
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "CheckRestartGates" {
			gates[ev.GetEventId()] = true
		}
		if a := ev.GetActivityTaskStartedEventAttributes(); a != nil && gates[a.GetScheduledEventId()] {
			r.firstGate = ev.GetEventTime().AsTime().Sub(began)
		}
	}
	require.NotZero(b, r.firstGate, "the roll checked its gates")
	require.Empty(b, s.stack.Fleet.Violations(cluster))
	return r
}

func (s *scaleStack) close() { s.stack.Close() }

// processRSS is a process's resident memory in bytes.
func processRSS(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(b, err)
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			require.NoError(b, err)
			return kib << 10
		}
	}
	b.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// processCPU is a process's user and system CPU time so far, in seconds.
func processCPU(b *testing.B, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(b, err)
	// Fields after the command's closing parenthesis: utime and stime are
	// the 12th and 13th, in clock ticks (100 a second on Linux).
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, err := strconv.ParseFloat(fields[11], 64)
	require.NoError(b, err)
	stime, err := strconv.ParseFloat(fields[12], 64)
	require.NoError(b, err)
	return (utime + stime) / 100
}
