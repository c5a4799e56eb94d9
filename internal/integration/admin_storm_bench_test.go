package integration_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// BenchmarkAdminStorm is the seeds' admin storm, 500 topics of 2
// partitions from 50 tenants asked for at once, two ways: through kfleet's
// admin lane (a request of 10 topics per tenant, no mutation quota, so the
// lane's own pace is measured), straight at a cluster from 500 concurrent
// clients, and straight from 40 clients at a time (the most the fleet's
// controller model survives). It reports topics created per second each
// way, and the admin requests' time in the broker (mean and max, from
// arrival to answer or to the broker's death) during each.
func BenchmarkAdminStorm(b *testing.B) {
	const (
		lane, straight, paced = "lane-a", "storm-b", "storm-c"
		// pacedClients stays at the controller model's crash threshold.
		pacedClients = 40
		superPass    = "bench-superuser-secret"
		tenants      = 50
		perTenant    = 10
	)
	for b.Loop() {
		stack := startStackWith(b, fastFleet(
			secured(localfleet.ClusterConfig{ID: lane, Brokers: 10}, superPass),
			localfleet.ClusterConfig{ID: straight, Brokers: 3, Topics: []localfleet.TopicConfig{}},
			localfleet.ClusterConfig{ID: paced, Brokers: 3, Topics: []localfleet.TopicConfig{}},
		), func(o *devstack.StackOptions) {
			o.NotifyOut = io.Discard
			o.Secrets = "file:" + b.TempDir()
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		names := stormTenants(ctx, b, stack, lane, tenants)
		storm := runLaneStorm(ctx, b, stack, lane, names, perTenant, perTenant, 0)
		adm := superAdmin(b, stack, lane, superPass)
		listed, err := adm.ListTopics(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var topics []string
		for name := range listed {
			if strings.HasPrefix(name, "storm-") {
				topics = append(topics, name)
			}
		}
		laneStats, err := stack.Fleet.AdminStats(lane)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("lane: %d topics created by %d requests in %d batches, answered in %s, all ended in %s; broker: %+v",
			len(topics), storm.requests, len(storm.batches), storm.answered.Round(time.Millisecond), storm.took.Round(time.Millisecond), laneStats)

		b.ReportMetric(float64(len(topics))/storm.took.Seconds(), "lane-topics/s")
		b.ReportMetric(float64(laneStats.MeanLatency.Microseconds())/1000, "lane-admin-mean-ms")
		b.ReportMetric(float64(laneStats.MaxLatency.Microseconds())/1000, "lane-admin-max-ms")
		b.ReportMetric(float64(laneStats.PeakInFlight), "lane-peak-inflight")
		for _, run := range []struct {
			name, cluster string
			clients       int
		}{{"straight", straight, len(topics)}, {"paced", paced, pacedClients}} {
			created, took, wait := straightStorm(ctx, stack, run.cluster, topics, run.clients)
			st, err := stack.Fleet.AdminStats(run.cluster)
			if err != nil {
				b.Fatal(err)
			}
			b.Logf("%s (%d clients at once): %d of %d topics created in %s, clients' mean wait %s; broker: %+v",
				run.name, run.clients, created, len(topics), took.Round(time.Millisecond), wait.Round(time.Millisecond), st)
			b.ReportMetric(float64(created)/took.Seconds(), run.name+"-topics/s")
			b.ReportMetric(float64(st.MeanLatency.Microseconds())/1000, run.name+"-admin-mean-ms")
			b.ReportMetric(float64(st.MaxLatency.Microseconds())/1000, run.name+"-admin-max-ms")
			b.ReportMetric(float64(st.PeakInFlight), run.name+"-peak-inflight")
			b.ReportMetric(float64(st.StormCrashes), run.name+"-controller-crashes")
		}
		for _, v := range stack.Fleet.Violations(lane) {
			b.Fatalf("lane: violation %s: %s", v.Kind, v.Detail)
		}
		cancel()
		stack.Close()
	}
}
