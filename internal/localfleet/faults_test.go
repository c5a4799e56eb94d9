package localfleet_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/metrics"
)

// faultCluster is a cluster whose log recovery is short: 400 segments at
// 2ms recover in 0.8s.
func faultCluster(id string) localfleet.ClusterConfig {
	cc := testCluster(id)
	cc.SegmentsPerBroker = 400
	cc.Timing.RecoveryPerSegment = 2 * time.Millisecond
	return cc
}

func startFaultFleet(t *testing.T, cc localfleet.ClusterConfig) (*localfleet.Fleet, string) {
	t.Helper()
	f, z := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{cc}})
	return f, z.Addr
}

// postFault injects a fault over the fleet's HTTP API.
func postFault(ctx context.Context, t *testing.T, f *localfleet.Fleet, cluster string, broker int32, fault, query string) (int, string) {
	t.Helper()
	url := fmt.Sprintf("%s/v1/clusters/%s/brokers/%d/faults/%s", f.Endpoints().API, cluster, broker, fault)
	if query != "" {
		url += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	require.NoError(t, err)
	req.Header.Set(localfleet.WhoHeader, "chaos")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func brokerState(t *testing.T, f *localfleet.Fleet, cluster string, broker int32) localfleet.State {
	t.Helper()
	s, err := f.BrokerState(cluster, broker)
	require.NoError(t, err)
	return s
}

// A crash is no controlled shutdown: ZooKeeper (go-zookeeper) sees the
// registration vanish only when the session expires, and Kafka clients
// (kadm) then see the broker gone and its leadership moved, the
// controller included.
func TestIntegrationCrashSeenThroughZooKeeperAndKafka(t *testing.T) {
	t.Parallel()
	f, zkAddr := startFaultFleet(t, faultCluster("local-a"))
	ctx := testContext(t)
	_, adm := kafkaClient(t, f, "local-a")

	conn, _, err := zk.Connect([]string{zkAddr}, 4*time.Second, zk.WithLogger(discardLogger{}))
	require.NoError(t, err)
	t.Cleanup(conn.Close)
	node := "/kfleet/local-a/brokers/ids/1"
	exists, _, watch, err := conn.ExistsW(node)
	require.NoError(t, err)
	require.True(t, exists)
	led := 0
	for _, tp := range metadata(t, adm).Topics["events"].Partitions {
		if tp.Leader == 1 {
			led++
		}
	}
	require.NotZero(t, led, "broker 1 leads some partitions")

	crashed := time.Now()
	require.NoError(t, f.Crash(ctx, "local-a", 1, "chaos"))
	assert.Equal(t, localfleet.StateCrashed, brokerState(t, f, "local-a", 1))
	exists, _, err = conn.Exists(node)
	require.NoError(t, err)
	assert.True(t, exists, "a crashed broker's registration outlives it until its session expires")
	for _, tp := range metadata(t, adm).Topics["events"].Partitions {
		assert.NotEqual(t, int32(1), tp.Leader, "no controlled shutdown: partitions it led have no leader yet (%d)", tp.Partition)
	}

	select {
	case ev := <-watch:
		assert.Equal(t, zk.EventNodeDeleted, ev.Type)
	case <-ctx.Done():
		t.Fatal("registration never vanished")
	}
	gone := time.Since(crashed)
	assert.Greater(t, gone, 3*time.Second, "vanished at session expiry, not at once")
	assert.Less(t, gone, 8*time.Second)

	require.Eventually(t, func() bool {
		m := metadata(t, adm)
		if slices.Contains(m.Brokers.NodeIDs(), 1) || m.Controller == 1 || m.Controller < 0 {
			return false
		}
		for _, tp := range m.Topics["events"].Partitions {
			if tp.Leader < 0 || tp.Leader == 1 {
				return false
			}
		}
		return true
	}, 5*time.Second, 50*time.Millisecond, "broker 1 gone, leaders and controller elected elsewhere")

	kinds := auditKinds(f.Audit("local-a"), 1)
	assert.Equal(t, []localfleet.EventKind{localfleet.EventCrash}, kinds)
	assert.Empty(t, f.Violations("local-a"), "one broker lost with RF 3, min ISR 2: nothing unsafe")
}

// A crash-loop on Map failed: every start through the real SSM client
// fails until kfleet-SetSysctl raises vm.max_map_count; then the broker
// recovers its logs (seen in its metrics) and runs.
func TestIntegrationCrashLoopFixedThroughSSM(t *testing.T) {
	t.Parallel()
	cc := faultCluster("local-a")
	// The crash-loop grows the broker to ~36,000 segments; recover them in
	// about 1.5s.
	cc.Timing.RecoveryPerSegment = 40 * time.Microsecond
	f, _ := startFaultFleet(t, cc)
	ctx := testContext(t)
	cl := ssmClient(f)
	b3 := f.Endpoints().Clusters["local-a"].Brokers[2]

	status, body := postFault(ctx, t, f, "local-a", 3, "crash-loop", "")
	require.Equal(t, http.StatusOK, status, body)
	assert.Equal(t, localfleet.StateCrashed, brokerState(t, f, "local-a", 3))

	for attempt := range 2 {
		inv := runCommand(ctx, t, cl, cloud.DocStartBroker, b3.InstanceID, "recovery/1", nil)
		assert.Equal(t, "Failed", string(inv.Status), "attempt %d", attempt)
		assert.Contains(t, aws.ToString(inv.StandardErrorContent), "java.io.IOException: Map failed")
		assert.Equal(t, localfleet.StateFailed, brokerState(t, f, "local-a", 3))
	}
	inv := runCommand(ctx, t, cl, cloud.DocBrokerStatus, b3.InstanceID, "diagnose", nil)
	assert.Equal(t, "failed", strings.SplitN(aws.ToString(inv.StandardOutputContent), "\n", 2)[0])
	inv = runCommand(ctx, t, cl, cloud.DocTailLog, b3.InstanceID, "diagnose", map[string][]string{cloud.ParamLines: {"200"}})
	tail := aws.ToString(inv.StandardOutputContent)
	for _, want := range []string{"java.io.IOException: Map failed", "kafka.log.AbstractIndex.resize", "kafka.log.LogSegment.truncateTo", "Fatal error during KafkaServer startup"} {
		assert.Contains(t, tail, want)
	}
	resp, err := http.Get(b3.MetricsURL)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "the exporter is down with the process")

	inv = runCommand(ctx, t, cl, cloud.DocSetSysctl, b3.InstanceID, "recovery/1",
		map[string][]string{cloud.ParamName: {localfleet.LimitMaxMapCount}, cloud.ParamValue: {"262144"}})
	require.Equal(t, "Success", string(inv.Status), aws.ToString(inv.StandardErrorContent))
	assert.Equal(t, "vm.max_map_count = 262144 (was 65530)\n", aws.ToString(inv.StandardOutputContent))
	inv = runCommand(ctx, t, cl, cloud.DocSetSysctl, b3.InstanceID, "recovery/1",
		map[string][]string{cloud.ParamName: {localfleet.LimitMaxMapCount}, cloud.ParamValue: {"262144"}})
	assert.Equal(t, "vm.max_map_count = 262144 (unchanged)\n", aws.ToString(inv.StandardOutputContent), "idempotent")

	inv = runCommand(ctx, t, cl, cloud.DocStartBroker, b3.InstanceID, "recovery/1", nil)
	require.Equal(t, "Success", string(inv.Status), aws.ToString(inv.StandardErrorContent))
	assert.Equal(t, localfleet.StateRecovering, brokerState(t, f, "local-a", 3), "recovers its logs before registering")

	var left []int
	require.Eventually(t, func() bool {
		m, err := metrics.Scrape(ctx, b3.MetricsURL)
		require.NoError(t, err)
		if m.BrokerState == metrics.BrokerRecovery {
			left = append(left, m.LogsLeftToRecover)
		}
		return m.BrokerState == metrics.BrokerRunning && m.LogsLeftToRecover == 0
	}, 10*time.Second, 50*time.Millisecond)
	require.GreaterOrEqual(t, len(left), 3, "recovery observed")
	assert.Greater(t, left[0], left[len(left)-1], "logs left to recover decrease: %v", left)
	for i := 1; i < len(left); i++ {
		assert.LessOrEqual(t, left[i], left[i-1], "never increase: %v", left)
	}
	assert.Equal(t, localfleet.StateRunning, brokerState(t, f, "local-a", 3))

	inv = runCommand(ctx, t, cl, cloud.DocTailLog, b3.InstanceID, "diagnose", map[string][]string{cloud.ParamLines: {"40"}})
	assert.Regexp(t, `Recovering segment \d+\.log \(\d+/\d+\)`, aws.ToString(inv.StandardOutputContent))

	var limits []localfleet.Event
	for _, e := range f.Audit("local-a") {
		if e.Kind == localfleet.EventLimit {
			limits = append(limits, e)
		}
	}
	require.Len(t, limits, 1, "an unchanged limit is not a change")
	assert.Equal(t, "recovery/1", limits[0].Who)
	assert.Equal(t, "vm.max_map_count 65530 -> 262144", limits[0].Detail)
	assert.Equal(t, []localfleet.EventKind{
		localfleet.EventCrash,
		localfleet.EventStart, localfleet.EventStartFailed,
		localfleet.EventStart, localfleet.EventStartFailed,
		localfleet.EventLimit,
		localfleet.EventStart, localfleet.EventRecovering, localfleet.EventStarted,
	}, auditKinds(f.Audit("local-a"), 3)[:9])
}

// Stopping a recovering broker throws its recovery away: a violation.
// fail-to-start makes the next starts fail and leaves the broker down.
func TestIntegrationRecoveringRestartAndFailToStart(t *testing.T) {
	t.Parallel()
	f, _ := startFaultFleet(t, faultCluster("local-a"))
	ctx := testContext(t)

	require.NoError(t, f.InjectFault(ctx, "local-a", 2, localfleet.Fault{Kind: localfleet.FaultSlowRecovery, Multiplier: 20}, "chaos"))
	require.NoError(t, f.Crash(ctx, "local-a", 2, "chaos"))
	require.NoError(t, f.StartBroker(ctx, "local-a", 2, "ops"))
	assert.Equal(t, localfleet.StateRecovering, brokerState(t, f, "local-a", 2))
	require.NoError(t, f.StartBroker(ctx, "local-a", 2, "ops"), "starting a recovering broker changes nothing")
	assert.Empty(t, f.Violations("local-a"))

	require.NoError(t, f.StopBroker(ctx, "local-a", 2, "impatient"))
	assert.Equal(t, localfleet.StateStopped, brokerState(t, f, "local-a", 2))
	v := f.Violations("local-a")
	require.Len(t, v, 1)
	assert.Equal(t, localfleet.ViolationRecoveringRestarted, v[0].Kind)
	assert.Contains(t, v[0].Detail, "broker 2")

	// Recovery starts over, and with the fault cleared it ends.
	require.NoError(t, f.InjectFault(ctx, "local-a", 2, localfleet.Fault{Kind: localfleet.FaultClear}, "chaos"))
	require.NoError(t, f.StartBroker(ctx, "local-a", 2, "ops"))
	assert.Equal(t, localfleet.StateRecovering, brokerState(t, f, "local-a", 2), "an interrupted recovery is not a clean shutdown")
	require.Eventually(t, func() bool { return brokerState(t, f, "local-a", 2) == localfleet.StateRunning }, 5*time.Second, 20*time.Millisecond)

	tests := []struct {
		name  string
		count string
		fails int
	}{
		{"one", "", 1},
		{"two", "count=2", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, f.StopBroker(ctx, "local-a", 2, "ops"))
			status, body := postFault(ctx, t, f, "local-a", 2, "fail-to-start", tt.count)
			require.Equal(t, http.StatusOK, status, body)
			for i := range tt.fails {
				err := f.StartBroker(ctx, "local-a", 2, "ops")
				require.ErrorIs(t, err, localfleet.ErrStartFailed, "start %d", i)
				assert.Contains(t, err.Error(), `cluster "local-a": broker 2`)
				assert.Equal(t, localfleet.StateFailed, brokerState(t, f, "local-a", 2))
			}
			require.NoError(t, f.StartBroker(ctx, "local-a", 2, "ops"))
			assert.Equal(t, localfleet.StateRunning, brokerState(t, f, "local-a", 2), "a lock failure is not an unclean stop")
		})
	}
}

// kill-cleaner shows in the broker's metrics, parsed by internal/metrics.
func TestIntegrationKillCleanerSeenInMetrics(t *testing.T) {
	t.Parallel()
	f, _ := startFaultFleet(t, faultCluster("local-a"))
	ctx := testContext(t)
	url := f.Endpoints().Clusters["local-a"].Brokers[0].MetricsURL

	m, err := metrics.Scrape(ctx, url)
	require.NoError(t, err)
	assert.Equal(t, metrics.BrokerRunning, m.BrokerState)
	assert.Zero(t, m.CleanerDeadThreads)
	assert.Zero(t, m.LogsLeftToRecover)
	assert.Positive(t, m.HeapUsed)
	assert.Greater(t, m.HeapMax, m.HeapUsed)
	assert.Positive(t, m.FilesystemSize)
	assert.Positive(t, m.FilesystemAvail)

	status, body := postFault(ctx, t, f, "local-a", 1, "kill-cleaner", "")
	require.Equal(t, http.StatusOK, status, body)
	first, err := metrics.Scrape(ctx, url)
	require.NoError(t, err)
	time.Sleep(200 * time.Millisecond)
	second, err := metrics.Scrape(ctx, url)
	require.NoError(t, err)
	assert.Equal(t, 1, second.CleanerDeadThreads)
	assert.GreaterOrEqual(t, second.TimeSinceLastCleanMs-first.TimeSinceLastCleanMs, int64(200), "time since the last clean grows")

	// A restart brings the cleaner back.
	require.NoError(t, f.StopBroker(ctx, "local-a", 1, "ops"))
	_, err = metrics.Scrape(ctx, url)
	require.ErrorIs(t, err, metrics.ErrUnreachable, "a stopped broker's exporter is down")
	resp, err := http.Get(url + "/node")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the host's node exporter still answers")
	require.NoError(t, f.StartBroker(ctx, "local-a", 1, "ops"))
	m, err = metrics.Scrape(ctx, url)
	require.NoError(t, err)
	assert.Zero(t, m.CleanerDeadThreads)

	// heap-leak: old-gen use climbs.
	require.NoError(t, f.InjectFault(ctx, "local-a", 1, localfleet.Fault{Kind: localfleet.FaultHeapLeak, PerMinute: 60 << 20}, "chaos"))
	before, err := metrics.Scrape(ctx, url)
	require.NoError(t, err)
	time.Sleep(100 * time.Millisecond)
	after, err := metrics.Scrape(ctx, url)
	require.NoError(t, err)
	assert.Greater(t, after.HeapUsed, before.HeapUsed)
}

// uncleanable: the cleaner gives up on partitions of __consumer_offsets
// while its thread lives on; the count shows in the metrics and the cause
// in the log until the process restarts.
func TestIntegrationUncleanableSeenInMetricsAndLog(t *testing.T) {
	t.Parallel()
	f, _ := startFaultFleet(t, faultCluster("local-a"))
	ctx := testContext(t)
	url := f.Endpoints().Clusters["local-a"].Brokers[0].MetricsURL

	m, err := metrics.Scrape(ctx, url)
	require.NoError(t, err)
	assert.Zero(t, m.UncleanablePartitions)
	assert.Positive(t, m.OldGenUsed)
	assert.Equal(t, m.HeapUsed, m.OldGenUsed, "the heap model is the old generation's")
	assert.Equal(t, int64(6<<30), m.OldGenMax)

	status, body := postFault(ctx, t, f, "local-a", 1, "uncleanable", "count=2")
	require.Equal(t, http.StatusOK, status, body)
	require.NoError(t, f.InjectFault(ctx, "local-a", 1, localfleet.Fault{Kind: localfleet.FaultUncleanable}, "chaos"))
	m, err = metrics.Scrape(ctx, url)
	require.NoError(t, err)
	assert.Equal(t, 3, m.UncleanablePartitions)
	assert.Zero(t, m.CleanerDeadThreads, "the cleaner thread lives on")

	lines, err := f.BrokerLog("local-a", 1, 100)
	require.NoError(t, err)
	log := strings.Join(lines, "\n")
	for p := range 3 {
		assert.Contains(t, log, fmt.Sprintf("ERROR [kafka-log-cleaner-thread-0]: Unexpected exception thrown when cleaning log "+
			"Log(dir=/var/lib/kafka/data/__consumer_offsets-%d, topic=__consumer_offsets, partition=%d). "+
			"Marking its partition (__consumer_offsets-%d) as uncleanable (kafka.log.LogCleaner)", p, p, p))
	}
	var details []string
	for _, e := range f.Audit("local-a") {
		if e.Kind == localfleet.EventFault {
			details = append(details, e.Detail)
		}
	}
	assert.Equal(t, []string{
		"uncleanable: __consumer_offsets-0, __consumer_offsets-1 (2 in all)",
		"uncleanable: __consumer_offsets-2 (3 in all)",
	}, details)

	// Only a running broker's cleaner cleans; a new process tries every
	// partition again.
	require.NoError(t, f.StopBroker(ctx, "local-a", 1, "ops"))
	err = f.InjectFault(ctx, "local-a", 1, localfleet.Fault{Kind: localfleet.FaultUncleanable}, "chaos")
	require.ErrorIs(t, err, localfleet.ErrBadFault)
	assert.ErrorContains(t, err, "broker is stopped")
	require.NoError(t, f.StartBroker(ctx, "local-a", 1, "ops"))
	m, err = metrics.Scrape(ctx, url)
	require.NoError(t, err)
	assert.Zero(t, m.UncleanablePartitions)
}

// Bad requests are refused with clear errors, over HTTP and SSM.
func TestIntegrationFaultAndSysctlErrors(t *testing.T) {
	t.Parallel()
	f, _ := startFaultFleet(t, faultCluster("local-a"))
	ctx := testContext(t)
	http400 := []struct {
		fault, query string
	}{
		{"meteor", ""},
		{"slow-recovery", "multiplier=0.5"},
		{"fail-to-start", "count=-1"},
		{"uncleanable", "count=-1"},
		{"uncleanable", "count=51"}, // __consumer_offsets has 50 partitions
	}
	for _, tt := range http400 {
		t.Run(tt.fault+"?"+tt.query, func(t *testing.T) {
			status, body := postFault(ctx, t, f, "local-a", 1, tt.fault, tt.query)
			assert.Equal(t, http.StatusBadRequest, status, body)
		})
	}
	status, body := postFault(ctx, t, f, "local-a", 1, "meteor", "")
	assert.Equal(t, http.StatusBadRequest, status)
	for _, kind := range []localfleet.FaultKind{localfleet.FaultUncleanable, localfleet.FaultExpireSession, localfleet.FaultStopInstance,
		localfleet.FaultTerminateInstance, localfleet.FaultStartInstance} {
		assert.Contains(t, body, string(kind), "the error lists every fault")
	}
	status, _ = postFault(ctx, t, f, "local-a", 9, "crash", "")
	assert.Equal(t, http.StatusNotFound, status)

	cl := ssmClient(f)
	instance := f.Endpoints().Clusters["local-a"].Brokers[0].InstanceID
	ssm400 := []map[string][]string{
		{cloud.ParamName: {"kernel.panic"}, cloud.ParamValue: {"1"}},
		{cloud.ParamName: {localfleet.LimitMaxMapCount}, cloud.ParamValue: {"lots"}},
		{cloud.ParamName: {localfleet.LimitNofile}, cloud.ParamValue: {"0"}},
	}
	for _, params := range ssm400 {
		_, err := cl.SendCommand(ctx, &ssm.SendCommandInput{
			DocumentName: aws.String(cloud.DocSetSysctl), InstanceIds: []string{instance}, Parameters: params,
		})
		assertAPIError(t, err, "InvalidParameters")
	}
	_, err := f.SetLimit(ctx, "local-a", 1, "vm.swappiness", 1, "me")
	assert.True(t, errors.Is(err, localfleet.ErrBadFault), "%v", err)
}

func auditKinds(events []localfleet.Event, broker int32) []localfleet.EventKind {
	var out []localfleet.EventKind
	for _, e := range events {
		if e.Broker == broker {
			out = append(out, e.Kind)
		}
	}
	return out
}
