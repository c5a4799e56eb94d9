package fleet

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func gauges(broker int32, sizeGiB, usedGiB int64) BrokerHealth {
	return BrokerHealth{Broker: broker, State: "RUNNING",
		Disk:    DiskUsage{SizeBytes: sizeGiB << 30, UsedBytes: usedGiB << 30},
		Cleaner: CleanerHealth{SinceLastRun: 15 * time.Second},
		Heap:    HeapUsage{Used: 2 << 30, Max: 6 << 30}}
}

func TestAssessBroker(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		b     BrokerHealth
		trend Trend
		want  []string // kind[+expand][+escalate]
	}{
		{"healthy", gauges(1, 100, 40), Trend{}, nil},
		{"down: nothing to judge", BrokerHealth{Broker: 1, Error: "connection refused"}, Trend{}, nil},
		{"disk at the expansion threshold", gauges(1, 100, 82), Trend{}, []string{"disk+expand"}},
		{"disk past escalation", gauges(1, 100, 93), Trend{}, []string{"disk+expand+escalate"}},
		{"a maximal volume cannot grow, but escalates", gauges(1, MaxVolumeGiB, MaxVolumeGiB*95/100), Trend{}, []string{"disk+escalate"}},
		{"disk forecast to fill within the cool-down", gauges(1, 100, 60), Trend{Disk: []DiskSample{
			{At: at, UsedBytes: 50 << 30, SizeBytes: 100 << 30}, {At: at.Add(time.Hour), UsedBytes: 60 << 30, SizeBytes: 100 << 30}}}, []string{"disk+expand"}},
		{"dead cleaner", func() BrokerHealth { b := gauges(1, 100, 40); b.Cleaner.DeadThreads = 1; return b }(), Trend{}, []string{"cleaner"}},
		{"climbing heap", gauges(1, 100, 40), Trend{Heap: []HeapSample{
			{At: at, Used: 3 << 30, Max: 6 << 30}, {At: at.Add(time.Minute), Used: 3<<30 + 300<<20, Max: 6 << 30},
			{At: at.Add(2 * time.Minute), Used: 3<<30 + 600<<20, Max: 6 << 30}, {At: at.Add(3 * time.Minute), Used: 3<<30 + 900<<20, Max: 6 << 30}}}, []string{"heap"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, c := range AssessBroker(HealthPolicy{}, tt.b, tt.trend) {
				k := c.Kind
				if c.Expand {
					k += "+expand"
				}
				if c.Escalate {
					k += "+escalate"
				}
				assert.NotEmpty(t, c.Reason)
				got = append(got, k)
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestVerdictKeepsWhatMattersAndNotTheNumbers(t *testing.T) {
	rep := HealthReport{Brokers: []BrokerHealth{gauges(1, 100, 40), {Broker: 2, Error: "dial tcp: connection refused"}},
		ZooKeeper: []ZooKeeperServer{{Address: "zk1:2181", OK: true}, {Address: "zk2:2181", Error: "ruok: timeout"}, {Address: "zk3:2181", OK: true, Warning: "1 of 2 in sync"}}}
	concerns := []Concern{{Kind: ConcernDisk, Broker: 1, Expand: true, Reason: "disk 81.2% used"}}
	v := Verdict(rep, concerns)
	assert.Equal(t, "disk:1+expand,unreadable:2,zookeeper-degraded:zk3:2181,zookeeper-down:zk2:2181", v)

	rep.Brokers[1].Error = "i/o timeout"
	concerns[0].Reason = "disk 81.9% used"
	assert.Equal(t, v, Verdict(rep, concerns), "another error text or percentage is the same verdict")
	assert.Equal(t, VerdictHealthy, Verdict(HealthReport{Brokers: []BrokerHealth{gauges(1, 100, 40)}}, nil))
}

func TestTrendGrowthIgnoresAGrownFilesystem(t *testing.T) {
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var tr Trend
	tr.Add(at, gauges(1, 100, 50))
	tr.Add(at.Add(time.Minute), gauges(1, 100, 51))
	tr.Add(at.Add(2*time.Minute), gauges(1, 110, 51)) // expanded
	assert.Zero(t, tr.Growth(), "one sample at the new size: no rate yet")
	tr.Add(at.Add(3*time.Minute), gauges(1, 110, 52))
	assert.InDelta(t, float64(1<<30)/60, tr.Growth(), 1)

	for i := range 2 * TrendSamples {
		tr.Add(at.Add(time.Duration(4+i)*time.Minute), gauges(1, 110, 52))
	}
	assert.Len(t, tr.Disk, TrendSamples)
	tr.Since(at.Add(time.Duration(4+2*TrendSamples-3) * time.Minute))
	assert.Len(t, tr.Disk, 3)
	assert.Len(t, tr.Heap, 3)
	tr.Add(at, BrokerHealth{Broker: 1, Error: "down"})
	assert.Len(t, tr.Disk, 3, "a broker that did not answer adds no sample")
}

func TestJudgeKeepsTheTrendsOfTheSpecsBrokers(t *testing.T) {
	spec := ClusterSpec{ID: "a", Brokers: []BrokerSpec{{ID: 1}, {ID: 2}}}
	trends := map[int32]*Trend{}
	rep := HealthReport{At: time.Now(), Brokers: []BrokerHealth{gauges(1, 100, 40), gauges(2, 100, 85), gauges(9, 100, 99)}}
	concerns, verdict := Judge(spec, rep, trends)
	require.Len(t, concerns, 1)
	assert.Equal(t, int32(2), concerns[0].Broker)
	assert.Equal(t, "disk:2+expand", verdict, "broker 9 is not in the spec")
	assert.Len(t, trends, 2)
	assert.Len(t, trends[1].Disk, 1)
}
