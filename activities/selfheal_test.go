package activities_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/metrics"
)

// ---- fakes of the consumer-side interfaces ----

type fakeMetrics struct {
	mu    sync.Mutex
	byURL map[string]metrics.BrokerMetrics
	errs  map[string]error
}

func (f *fakeMetrics) Scrape(_ context.Context, url string) (metrics.BrokerMetrics, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs[url]; err != nil {
		return metrics.BrokerMetrics{}, err
	}
	m, ok := f.byURL[url]
	if !ok {
		return metrics.BrokerMetrics{}, fmt.Errorf("scrape %s: %w", url, metrics.ErrUnreachable)
	}
	return m, nil
}

func (f *fakeMetrics) set(url string, m metrics.BrokerMetrics) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byURL[url] = m
}

type fakeEnsemble struct{ servers []fleet.ZooKeeperServer }

func (f fakeEnsemble) ServerHealth(context.Context, fleet.ClusterSpec) ([]fleet.ZooKeeperServer, error) {
	return f.servers, nil
}

type fakeInstances struct {
	mu        sync.Mutex
	instances map[string]cloud.Instance
	volume    cloud.Volume
	mods      []cloud.Modification // returned in turn by LatestModification; the last one sticks
	modifyErr error
	modified  []int32
}

func (f *fakeInstances) DescribeInstance(_ context.Context, id string) (cloud.Instance, error) {
	inst, ok := f.instances[id]
	if !ok {
		return cloud.Instance{}, fmt.Errorf("instance %s: %w", id, cloud.ErrInstanceNotFound)
	}
	return inst, nil
}

func (f *fakeInstances) DescribeVolumeOf(_ context.Context, id string) (cloud.Volume, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.volume, nil
}

func (f *fakeInstances) ModifyVolume(_ context.Context, id string, size int32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.modifyErr != nil {
		return f.modifyErr
	}
	f.modified = append(f.modified, size)
	f.volume.SizeGiB = size
	return nil
}

func (f *fakeInstances) LatestModification(_ context.Context, id string) (cloud.Modification, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.mods) == 0 {
		return cloud.Modification{}, fmt.Errorf("volume %s: %w", id, cloud.ErrNoModification)
	}
	m := f.mods[0]
	if len(f.mods) > 1 {
		f.mods = f.mods[1:]
	}
	return m, nil
}

type fakeQuotas struct {
	mu     sync.Mutex
	quotas map[string]float64
	sets   []string
}

func (f *fakeQuotas) ProducerQuota(_ context.Context, _ fleet.ClusterSpec, user string) (float64, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	q, ok := f.quotas[user]
	return q, ok, nil
}

func (f *fakeQuotas) SetProducerQuota(_ context.Context, _ fleet.ClusterSpec, user string, rate float64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.quotas[user] = rate
	f.sets = append(f.sets, user)
	return nil
}

type fakeRegistrations struct{ ids []int32 }

func (f fakeRegistrations) BrokerIDs(context.Context, fleet.ClusterSpec) ([]int32, error) {
	return f.ids, nil
}

func (fakeRegistrations) WaitBrokerRegistered(context.Context, fleet.ClusterSpec, int32, time.Duration, func()) error {
	return errors.New("not faked")
}

func (fakeRegistrations) WaitBrokersChanged(context.Context, fleet.ClusterSpec, []int32, time.Duration, func()) ([]int32, error) {
	return nil, errors.New("not faked")
}

type fakeNotifier struct {
	got []activities.Notification
	err error
}

func (f *fakeNotifier) Notify(_ context.Context, n activities.Notification) error {
	f.got = append(f.got, n)
	return f.err
}

// ---- harness ----

type unit struct {
	env   *testsuite.TestActivityEnvironment
	acts  *activities.Activities
	spec  fleet.ClusterSpec
	m     *fakeMetrics
	hosts *fakeHosts
	ec2   *fakeInstances
	quota *fakeQuotas
}

func newUnit(t *testing.T) *unit {
	t.Helper()
	spec := fleet.ClusterSpec{ID: "unit-a", Bootstrap: []string{"127.0.0.1:9092"}, ZooKeeper: "127.0.0.1:2181/kfleet/unit-a"}
	for i := int32(1); i <= 3; i++ {
		spec.Brokers = append(spec.Brokers, fleet.BrokerSpec{ID: i, InstanceID: fmt.Sprintf("i-%d", i), MetricsURL: fmt.Sprintf("http://b%d/metrics", i)})
	}
	u := &unit{
		spec:  spec,
		m:     &fakeMetrics{byURL: map[string]metrics.BrokerMetrics{}, errs: map[string]error{}},
		hosts: &fakeHosts{stdout: map[string]string{}, errs: map[string]error{}},
		ec2: &fakeInstances{
			instances: map[string]cloud.Instance{"i-1": {ID: "i-1", State: "running"}, "i-2": {ID: "i-2", State: "terminated"}},
			volume:    cloud.Volume{ID: "vol-1", SizeGiB: 100, InstanceID: "i-1"},
		},
		quota: &fakeQuotas{quotas: map[string]float64{}},
	}
	u.acts = &activities.Activities{
		ZooKeeper:    fakeRegistrations{ids: []int32{1, 3}},
		Hosts:        u.hosts,
		Metrics:      u.m,
		Instances:    u.ec2,
		Quotas:       u.quota,
		Ensemble:     fakeEnsemble{servers: []fleet.ZooKeeperServer{{Address: "127.0.0.1:2181", OK: true, Mode: "standalone"}}},
		Log:          zerolog.New(zerolog.NewTestWriter(t)),
		PollInterval: 5 * time.Millisecond,
	}
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	u.env = s.NewTestActivityEnvironment()
	u.env.RegisterActivity(u.acts)
	return u
}

func (u *unit) exec(t *testing.T, activity any, in any, out any) error {
	t.Helper()
	v, err := u.env.ExecuteActivity(activity, in)
	if err != nil {
		return err
	}
	if out != nil {
		require.NoError(t, v.Get(out))
	}
	return nil
}

// appErrorType is the application error type of err and whether it is
// non-retryable ("" when err is not an application error).
func appErrorType(err error) (string, bool) {
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) {
		return "", false
	}
	return appErr.Type(), appErr.NonRetryable()
}

func requireBadInput(t *testing.T, err error, contains string) {
	t.Helper()
	require.Error(t, err)
	typ, nonRetryable := appErrorType(err)
	assert.Equal(t, activities.ErrTypeBadInput, typ, err.Error())
	assert.True(t, nonRetryable)
	assert.Contains(t, err.Error(), contains)
}

func healthyMetrics() metrics.BrokerMetrics {
	return metrics.BrokerMetrics{
		BrokerState: metrics.BrokerRunning, TimeSinceLastCleanMs: 15000,
		HeapUsed: 3 << 30, HeapMax: 6 << 30, OldGenUsed: 2 << 30, OldGenMax: 5 << 30,
		FilesystemSize: 100 << 30, FilesystemAvail: 30 << 30,
	}
}

// ---- tests ----

func TestCheckHealth(t *testing.T) {
	u := newUnit(t)
	m := healthyMetrics()
	m.CleanerDeadThreads, m.UncleanablePartitions, m.TimeSinceLastCleanMs = 1, 2, 3_600_000
	m.ProduceByteRates = map[string]float64{"a-1": 10, "b-1": 30, "c-1": 30, "d-1": 5, "idle-1": 0}
	u.m.set("http://b1/metrics", m)
	u.m.errs["http://b2/metrics"] = fmt.Errorf("scrape: %w: HTTP 503", metrics.ErrUnreachable)
	u.spec.Brokers[2].MetricsURL = ""

	var rep fleet.HealthReport
	require.NoError(t, u.exec(t, u.acts.CheckHealth, activities.HealthInput{Spec: u.spec}, &rep))
	assert.Equal(t, "unit-a", rep.Cluster)
	assert.WithinDuration(t, time.Now(), rep.At, 10*time.Second)
	require.Len(t, rep.Brokers, 3)
	assert.Equal(t, fleet.BrokerHealth{
		Broker:  1,
		State:   "RUNNING",
		Disk:    fleet.DiskUsage{SizeBytes: 100 << 30, UsedBytes: 70 << 30},
		Cleaner: fleet.CleanerHealth{DeadThreads: 1, SinceLastRun: time.Hour, Uncleanable: 2},
		Heap:    fleet.HeapUsage{Used: 2 << 30, Max: 5 << 30},
		TopProducers: []fleet.ClientRate{
			{User: "b-1", BytesPerSec: 30}, {User: "c-1", BytesPerSec: 30}, {User: "a-1", BytesPerSec: 10},
		},
	}, rep.Brokers[0])
	assert.Equal(t, int32(2), rep.Brokers[1].Broker)
	assert.Contains(t, rep.Brokers[1].Error, "503")
	assert.Empty(t, rep.Brokers[1].State)
	assert.Equal(t, fleet.BrokerHealth{Broker: 3, Error: "no metrics endpoint"}, rep.Brokers[2])
	assert.Equal(t, []fleet.ZooKeeperServer{{Address: "127.0.0.1:2181", OK: true, Mode: "standalone"}}, rep.ZooKeeper)

	bad := u.spec
	bad.ID = "Not A Cluster"
	requireBadInput(t, u.exec(t, u.acts.CheckHealth, activities.HealthInput{Spec: bad}, nil), "cluster id")
}

const hostLimitsOut = "vm.max_map_count=65530\nfs.file-max=9223372036854775807\nnofile=100000\nsegments=36045\nmaps=0\nopen_files=0\n"

func TestDiagnoseBroker(t *testing.T) {
	u := newUnit(t)
	u.hosts.stdout[cloud.DocBrokerStatus] = "crashed\n[2024-05-01 10:00:00,000] INFO secret-ish journal line\n"
	u.hosts.stdout[cloud.DocHostLimits] = hostLimitsOut
	var tail []string
	for i := range 150 {
		tail = append(tail, fmt.Sprintf("[2024-05-01 10:00:%02d,000] INFO line %d with tenant data (kafka.log.Log)", i%60, i))
	}
	tail = append(tail,
		"[2024-05-01 10:01:00,000] ERROR Error while loading log dir /var/lib/kafka/data (kafka.log.LogManager)",
		"java.io.IOException: Map failed",
		"\tat kafka.log.AbstractIndex.<init>(AbstractIndex.scala:126)")
	u.hosts.stdout[cloud.DocTailLog] = strings.Join(tail, "\n") + "\n"

	var d activities.Diagnosis
	require.NoError(t, u.exec(t, u.acts.DiagnoseBroker, activities.BrokerInput{Spec: u.spec, Broker: 1, Reason: "test"}, &d))
	assert.Equal(t, activities.Diagnosis{
		InstanceState: "running", Process: "crashed",
		MaxMapCount: 65530, Nofile: 100000, Segments: 36045,
		Cause: fleet.CauseMapFailed, Evidence: []string{"java.io.IOException: Map failed"},
	}, d)
	assert.Equal(t, []string{cloud.DocBrokerStatus, cloud.DocHostLimits, cloud.DocTailLog}, u.hosts.documents())
	assert.Equal(t, "200", u.hosts.runs[2].params[cloud.ParamLines])

	// A terminated or unknown instance: no document runs there.
	u.hosts.runs = nil
	var gone activities.Diagnosis
	require.NoError(t, u.exec(t, u.acts.DiagnoseBroker, activities.BrokerInput{Spec: u.spec, Broker: 2}, &gone))
	assert.Equal(t, activities.Diagnosis{InstanceState: "terminated", InstanceGone: true, Cause: fleet.CauseUnknown}, gone)
	var unknown activities.Diagnosis
	require.NoError(t, u.exec(t, u.acts.DiagnoseBroker, activities.BrokerInput{Spec: u.spec, Broker: 3}, &unknown))
	assert.Equal(t, activities.Diagnosis{InstanceState: activities.InstanceNotFound, InstanceGone: true, Cause: fleet.CauseUnknown}, unknown)
	assert.Empty(t, u.hosts.documents())

	// Output of kfleet-HostLimits kfleet cannot read is not retried.
	u.hosts.stdout[cloud.DocHostLimits] = "hello\n"
	requireBadInput(t, u.exec(t, u.acts.DiagnoseBroker, activities.BrokerInput{Spec: u.spec, Broker: 1}, nil), "missing")

	requireBadInput(t, u.exec(t, u.acts.DiagnoseBroker, activities.BrokerInput{Spec: u.spec, Broker: 9}, nil), "broker 9 is not in the cluster spec")
}

func TestSetHostLimit(t *testing.T) {
	u := newUnit(t)
	u.hosts.stdout[cloud.DocHostLimits] = hostLimitsOut
	in := func(name string, v int64) activities.LimitInput {
		return activities.LimitInput{Spec: u.spec, Broker: 1, Name: name, Value: v, Reason: "test"}
	}
	requireBadInput(t, u.exec(t, u.acts.SetHostLimit, in("fs.file-max", 1<<20), nil), "fs.file-max")
	requireBadInput(t, u.exec(t, u.acts.SetHostLimit, in(fleet.LimitMaxMapCount, 0), nil), "positive")
	assert.Empty(t, u.hosts.documents(), "bad input touches nothing")

	requireBadInput(t, u.exec(t, u.acts.SetHostLimit, in(fleet.LimitMaxMapCount, 65000), nil), "refusing to lower")
	require.NoError(t, u.exec(t, u.acts.SetHostLimit, in(fleet.LimitNofile, 100000), nil))
	assert.Equal(t, []string{cloud.DocHostLimits, cloud.DocHostLimits}, u.hosts.documents(), "the value in force: nothing set")

	require.NoError(t, u.exec(t, u.acts.SetHostLimit, in(fleet.LimitMaxMapCount, 262144), nil))
	last := u.hosts.runs[len(u.hosts.runs)-1]
	assert.Equal(t, run{"i-1", cloud.DocSetSysctl, map[string]string{cloud.ParamName: "vm.max_map_count", cloud.ParamValue: "262144"}}, last)

	u.hosts.errs[cloud.DocSetSysctl] = fmt.Errorf("sysctl: %w", cloud.ErrCommandFailed)
	err := u.exec(t, u.acts.SetHostLimit, in(fleet.LimitNofile, 200000), nil)
	require.ErrorContains(t, err, "cluster unit-a broker 1")
	_, nonRetryable := appErrorType(err)
	assert.False(t, nonRetryable)
}

func TestObserveBroker(t *testing.T) {
	u := newUnit(t)
	u.hosts.stdout[cloud.DocBrokerStatus] = "recovering\nlog lines\n"
	m := healthyMetrics()
	m.BrokerState, m.LogsLeftToRecover = metrics.BrokerRecovery, 7
	u.m.set("http://b2/metrics", m)
	observe := func(b int32) activities.BrokerObservation {
		t.Helper()
		var obs activities.BrokerObservation
		require.NoError(t, u.exec(t, u.acts.ObserveBroker, activities.BrokerInput{Spec: u.spec, Broker: b}, &obs))
		return obs
	}
	assert.Equal(t, activities.BrokerObservation{Process: "recovering", Recovering: true, LogsLeft: 7}, observe(2))

	u.hosts.stdout[cloud.DocBrokerStatus] = "running\n"
	u.m.set("http://b1/metrics", healthyMetrics())
	assert.Equal(t, activities.BrokerObservation{Registered: true, Process: "running"}, observe(1))

	u.hosts.stdout[cloud.DocBrokerStatus] = "crashed\n"
	obs := observe(3)
	assert.True(t, obs.Registered)
	assert.Equal(t, "crashed", obs.Process)
	assert.Contains(t, obs.MetricsError, "unreachable", "a scrape error is an observation, not a failure")
}

func TestExpandVolume(t *testing.T) {
	u := newUnit(t)
	expand := func(target int32) (activities.VolumeChange, error) {
		var c activities.VolumeChange
		err := u.exec(t, u.acts.ExpandVolume, activities.ExpandInput{Spec: u.spec, Broker: 1, TargetGiB: target, Reason: "test"}, &c)
		return c, err
	}
	_, err := expand(fleet.MaxVolumeGiB + 1)
	requireBadInput(t, err, "target size")
	_, err = expand(0)
	requireBadInput(t, err, "target size")

	c, err := expand(150)
	require.NoError(t, err)
	assert.Equal(t, activities.VolumeChange{VolumeID: "vol-1", FromGiB: 100, ToGiB: 150}, c)

	// The retry after EBS accepted it modifies nothing.
	u.ec2.mods = []cloud.Modification{{State: cloud.ModificationModifying, OriginalSizeGiB: 100, TargetSizeGiB: 150}}
	c, err = expand(150)
	require.NoError(t, err)
	assert.Equal(t, activities.VolumeChange{VolumeID: "vol-1", FromGiB: 100, ToGiB: 150, AlreadyModified: true}, c)
	c, err = expand(120)
	require.NoError(t, err)
	assert.True(t, c.AlreadyModified)
	assert.Equal(t, []int32{150}, u.ec2.modified)

	u.ec2.modifyErr = fmt.Errorf("volume vol-1: %w", cloud.ErrModificationRateExceeded)
	_, err = expand(200)
	require.Error(t, err)
	typ, nonRetryable := appErrorType(err)
	assert.Equal(t, activities.ErrTypeVolumeCooldown, typ)
	assert.True(t, nonRetryable)
	assert.Contains(t, err.Error(), "cluster unit-a broker 1")

	u.ec2.modifyErr = fmt.Errorf("volume vol-1: %w", cloud.ErrModificationInProgress)
	_, err = expand(200)
	require.Error(t, err)
	_, nonRetryable = appErrorType(err)
	assert.False(t, nonRetryable, "a modification in progress passes with time")
}

func TestWaitVolumeModification(t *testing.T) {
	u := newUnit(t)
	in := activities.BrokerInput{Spec: u.spec, Broker: 1}
	var state string
	require.NoError(t, u.exec(t, u.acts.WaitVolumeModification, in, &state))
	assert.Empty(t, state, "never modified: nothing to wait for")

	u.ec2.mods = []cloud.Modification{
		{State: cloud.ModificationModifying, Progress: 10, TargetSizeGiB: 150},
		{State: cloud.ModificationModifying, Progress: 40, TargetSizeGiB: 150},
		{State: cloud.ModificationOptimizing, Progress: 60, TargetSizeGiB: 150},
	}
	require.NoError(t, u.exec(t, u.acts.WaitVolumeModification, in, &state))
	assert.Equal(t, "optimizing", state)

	u.ec2.mods = []cloud.Modification{{State: cloud.ModificationFailed, TargetSizeGiB: 150}}
	err := u.exec(t, u.acts.WaitVolumeModification, in, &state)
	require.Error(t, err)
	typ, nonRetryable := appErrorType(err)
	assert.Equal(t, activities.ErrTypeVolumeModificationFailed, typ)
	assert.True(t, nonRetryable)
}

func TestDescribeDiskAndVerifyFilesystem(t *testing.T) {
	u := newUnit(t)
	start := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	u.ec2.mods = []cloud.Modification{{State: cloud.ModificationCompleted, Progress: 100, Start: start, OriginalSizeGiB: 90, TargetSizeGiB: 100}}
	u.m.set("http://b1/metrics", healthyMetrics())
	var d activities.DiskState
	require.NoError(t, u.exec(t, u.acts.DescribeDisk, activities.BrokerInput{Spec: u.spec, Broker: 1}, &d))
	assert.Equal(t, activities.DiskState{VolumeID: "vol-1", SizeGiB: 100, Modification: "completed", ModificationStart: start,
		Filesystem: fleet.DiskUsage{SizeBytes: 100 << 30, UsedBytes: 70 << 30}}, d)

	// The filesystem grows to the target (minus overhead) while it waits.
	in := activities.ExpandInput{Spec: u.spec, Broker: 1, TargetGiB: 150}
	go func() {
		time.Sleep(50 * time.Millisecond)
		m := healthyMetrics()
		m.FilesystemSize, m.FilesystemAvail = 146<<30, 76<<30
		u.m.set("http://b1/metrics", m)
	}()
	var got fleet.DiskUsage
	require.NoError(t, u.exec(t, u.acts.VerifyFilesystem, in, &got))
	assert.Equal(t, fleet.DiskUsage{SizeBytes: 146 << 30, UsedBytes: 70 << 30}, got)

	u.spec.Brokers[0].MetricsURL = ""
	requireBadInput(t, u.exec(t, u.acts.VerifyFilesystem, activities.ExpandInput{Spec: u.spec, Broker: 1, TargetGiB: 150}, nil), "no metrics endpoint")
}

func TestThrottleHeaviestProducers(t *testing.T) {
	u := newUnit(t)
	m := healthyMetrics()
	m.ProduceByteRates = map[string]float64{"heavy-1": 100 << 20, "mid-1": 40 << 20, "small-1": 1 << 20, "tiny-1": 1}
	u.m.set("http://b1/metrics", m)
	u.quota.quotas["mid-1"] = 10 << 20 // already tighter than half its rate
	in := activities.ThrottleInput{Spec: u.spec, Broker: 1, Max: 3, Factor: 0.5, Reason: "test"}
	var got []activities.Throttle
	require.NoError(t, u.exec(t, u.acts.ThrottleHeaviestProducers, in, &got))
	assert.Equal(t, []activities.Throttle{
		{User: "heavy-1", ObservedRate: 100 << 20, QuotaBytesPerSec: 50 << 20},
		{User: "mid-1", ObservedRate: 40 << 20, QuotaBytesPerSec: 10 << 20, Unchanged: true},
		{User: "small-1", ObservedRate: 1 << 20, QuotaBytesPerSec: activities.MinProducerQuota},
	}, got)
	assert.Equal(t, []string{"heavy-1", "small-1"}, u.quota.sets)
	assert.InDelta(t, 10<<20, u.quota.quotas["mid-1"], 0, "never loosened")

	// Again: every quota is in force now.
	u.quota.sets = nil
	require.NoError(t, u.exec(t, u.acts.ThrottleHeaviestProducers, in, &got))
	assert.Empty(t, u.quota.sets)
	assert.True(t, slices.ContainsFunc(got, func(th activities.Throttle) bool { return th.User == "heavy-1" && th.Unchanged }))

	for _, bad := range []activities.ThrottleInput{
		{Spec: u.spec, Broker: 1, Max: 0, Factor: 0.5},
		{Spec: u.spec, Broker: 1, Max: 1, Factor: 1},
		{Spec: u.spec, Broker: 1, Max: 1, Factor: 0},
	} {
		requireBadInput(t, u.exec(t, u.acts.ThrottleHeaviestProducers, bad, nil), "")
	}
}

func TestNotify(t *testing.T) {
	u := newUnit(t)
	n := activities.Notification{Cluster: "unit-a", Broker: 2, Severity: activities.SeverityPage, Title: "disk full"}
	require.NoError(t, u.exec(t, u.acts.Notify, n, nil), "no notifier: logged only")

	fake := &fakeNotifier{}
	u.acts.Notifier = fake
	require.NoError(t, u.exec(t, u.acts.Notify, n, nil))
	assert.Equal(t, []activities.Notification{n}, fake.got)

	fake.err = errors.New("webhook answered 500")
	err := u.exec(t, u.acts.Notify, n, nil)
	require.ErrorContains(t, err, "500")
	_, nonRetryable := appErrorType(err)
	assert.False(t, nonRetryable)

	requireBadInput(t, u.exec(t, u.acts.Notify, activities.Notification{Cluster: "unit-a", Severity: "panic", Title: "x"}, nil), "unknown severity")
	requireBadInput(t, u.exec(t, u.acts.Notify, activities.Notification{Cluster: "unit-a"}, nil), "title")
}
