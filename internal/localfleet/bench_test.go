package localfleet_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/devstack/tier"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// BenchmarkFleetStart reports how long the default fleet (local-a, local-b)
// takes to start against a running ZooKeeper, and the memory it holds.
func BenchmarkFleetStart(b *testing.B) {
	z := benchZooKeeper(b)
	var heap, rss float64
	for b.Loop() {
		before := memory()
		f, err := localfleet.Start(context.Background(), localfleet.DefaultConfig(), localfleet.Options{
			ZooKeeper: z.Addr, DataDir: b.TempDir(), Logger: zerolog.Nop(),
		})
		if err != nil {
			b.Fatal(err)
		}
		after := memory()
		heap, rss = float64(after.heap-before.heap)/(1<<20), float64(after.rss-before.rss)/(1<<20)
		b.StopTimer()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(heap, "heap-MiB")
	b.ReportMetric(rss, "rss-MiB")
}

// BenchmarkFleetDensity starts many 3-broker clusters in one fleet (one
// process) and reports the memory each costs and how many fit in 1 GiB.
// KFLEET_BENCH_CLUSTERS sets how many (default 100).
func BenchmarkFleetDensity(b *testing.B) {
	n := 100
	if v, err := strconv.Atoi(os.Getenv("KFLEET_BENCH_CLUSTERS")); err == nil && v > 0 {
		n = v
	}
	z := benchZooKeeper(b)
	cfg := localfleet.Config{}
	for i := range n {
		cfg.Clusters = append(cfg.Clusters, localfleet.ClusterConfig{
			ID: fmt.Sprintf("c%03d", i), Brokers: 3,
			Topics: []localfleet.TopicConfig{{Name: "events", Partitions: 8, ReplicationFactor: 3}},
		})
	}
	for b.Loop() {
		before := memory()
		start := time.Now()
		f, err := localfleet.Start(context.Background(), cfg, localfleet.Options{ZooKeeper: z.Addr, Logger: zerolog.Nop()})
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		after := memory()
		perHeap := float64(after.heap-before.heap) / float64(n)
		perRSS := float64(after.rss-before.rss) / float64(n)
		b.ReportMetric(float64(n), "clusters")
		b.ReportMetric(took.Seconds()*1000/float64(n), "start-ms/cluster")
		b.ReportMetric(perHeap/(1<<20), "heap-MiB/cluster")
		b.ReportMetric(perRSS/(1<<20), "rss-MiB/cluster")
		b.ReportMetric((1<<30)/perRSS, "clusters/GiB")
		b.Logf("%d clusters: process RSS %d MiB (was %d MiB), live heap %d MiB (was %d MiB), started in %s",
			n, after.rss>>20, before.rss>>20, after.heap>>20, before.heap>>20, took.Round(time.Millisecond))
		b.StopTimer()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

func benchZooKeeper(b *testing.B) *devstack.ZooKeeper {
	b.Helper()
	tier.Integration(b, tier.ZooKeeper)
	z, err := devstack.StartZooKeeper(context.Background(), b.TempDir(), 0, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = z.Stop() })
	return z
}

type mem struct{ heap, rss uint64 }

// memory is the live heap after a GC and the process's resident set.
func memory() mem {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := mem{heap: ms.HeapInuse + ms.StackInuse}
	if statm, err := os.ReadFile("/proc/self/statm"); err == nil {
		if f := strings.Fields(string(statm)); len(f) > 1 {
			pages, _ := strconv.ParseUint(f[1], 10, 64)
			m.rss = pages * uint64(os.Getpagesize())
		}
	}
	return m
}
