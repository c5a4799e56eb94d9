package integration_test

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	commonpb "go.temporal.io/api/common/v1"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/converter"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// Host replacement end to end: a broker's instance is terminated (or
// stopped for good) behind kfleet's back, and its recovery gives it a new
// host with the same broker.id and rack. Judged by the fleet's audit — EC2
// launches, volume attachments, broker starts, the bytes the broker copied
// — not by the workflow's own account.

// replaceCatchUpRate is the fleet's catch-up rate in these tests: slow
// enough that the bytes a broker copies show in time.
const replaceCatchUpRate = 1 << 20

// startReplaceStack runs local-a, 3 brokers over 3 racks (broker.rack is
// the zone), EC2 changing states in a tenth of a second.
func startReplaceStack(t *testing.T, edit func(*devstack.StackOptions)) *devstack.Stack {
	t.Helper()
	cfg := fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3, Racks: 3})
	cfg.Clusters[0].Timing.CatchUpBytesPerSec = replaceCatchUpRate
	cfg.EC2.Timing = localfleet.EC2Timing{Pending: 100 * time.Millisecond, Stopping: 100 * time.Millisecond, ShuttingDown: 100 * time.Millisecond,
		VolumeCreating: 100 * time.Millisecond, Attaching: 50 * time.Millisecond, Detaching: 50 * time.Millisecond}
	return startStackWith(t, cfg, func(o *devstack.StackOptions) {
		o.Health, o.NotifyOut = selfHealingPolicy, io.Discard
		if edit != nil {
			edit(o)
		}
	})
}

// fleetEC2 is the product's EC2 client on the stack's fleet, for what the
// tests do behind kfleet's back.
func fleetEC2(stack *devstack.Stack) *cloud.EC2 {
	ep := stack.Fleet.Endpoints().AWS
	cfg := aws.Config{Region: ep.Region, Credentials: credentials.NewStaticCredentialsProvider(ep.AccessKeyID, ep.SecretAccessKey, "")}
	return cloud.NewEC2(cfg, ep.Endpoint, cloud.WithWaitDelays(20*time.Millisecond, 200*time.Millisecond))
}

// producer writes uncompressed records of size bytes to local-a's events
// topic with acks=all, so the bytes a broker misses are the bytes sent.
type producer struct {
	t  testing.TB
	cl *kgo.Client
}

func newProducer(t testing.TB, stack *devstack.Stack) *producer {
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Specs["local-a"].Bootstrap...), kgo.DefaultProduceTopic("events"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return &producer{t: t, cl: cl}
}

func (p *producer) produce(ctx context.Context, n, size int) int64 {
	p.t.Helper()
	var bytes int64
	for i := range n {
		r := &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte(strings.Repeat("x", size))}
		require.NoError(p.t, p.cl.ProduceSync(ctx, r).FirstErr())
		bytes += int64(size)
	}
	return bytes
}

// brokerEvents are the cluster audit's events of broker of kind, from i on.
func brokerEvents(events []localfleet.Event, broker int32, kind localfleet.EventKind) []localfleet.Event {
	var out []localfleet.Event
	for _, e := range events {
		if e.Broker == broker && e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

// recoveryResult is a finished recovery's workflow result.
func recoveryResult(ctx context.Context, t *testing.T, stack *devstack.Stack, op workflows.Operation) workflows.RecoveryResult {
	t.Helper()
	var res workflows.RecoveryResult
	require.NoError(t, stack.Client.GetWorkflow(ctx, op.WorkflowID, "").Get(ctx, &res))
	return res
}

// bytesAfter reads the number after prefix in s.
func bytesAfter(t *testing.T, s, prefix string) int64 {
	t.Helper()
	_, rest, ok := strings.Cut(s, prefix)
	require.True(t, ok, "%q in %q", prefix, s)
	n, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
	require.NoError(t, err)
	return n
}

// rackOf is broker's rack as Kafka's metadata tells clients.
func rackOf(ctx context.Context, t *testing.T, stack *devstack.Stack, broker int32) string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(stack.Specs["local-a"].Bootstrap...))
	require.NoError(t, err)
	defer cl.Close()
	m, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	require.NoError(t, err)
	for _, b := range m.Brokers {
		if b.NodeID == broker && b.Rack != nil {
			return *b.Rack
		}
	}
	return ""
}

// lost waits until the entity recorded broker's loss: its registration is
// gone, so it is out of every ISR and misses what is written from now on.
func lost(ctx context.Context, t *testing.T, stack *devstack.Stack, broker int32) {
	t.Helper()
	waitStatus(ctx, t, stack, "local-a", zkSessionTimeout+10*time.Second, "the loss is recorded", func(st workflows.ClusterStatus) bool {
		return slices.ContainsFunc(st.OpenLosses(), func(l workflows.BrokerLoss) bool { return l.Broker == broker })
	})
}

// noPage fails the test on a notification of severity page.
func noPage(t *testing.T, stack *devstack.Stack) {
	t.Helper()
	for _, m := range stack.Notifications.Messages() {
		assert.NotContains(t, m, "[PAGE]", "nobody is paged")
	}
}

// hostOf is broker's host as the entity's spec names it.
func hostOf(ctx context.Context, t *testing.T, stack *devstack.Stack, broker int32) string {
	t.Helper()
	st, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
	require.NoError(t, err)
	b, ok := st.Spec.Broker(broker)
	require.True(t, ok)
	return b.InstanceID
}

// TestIntegrationRecoveryReplacesATerminatedHost: broker 2's instance is
// terminated behind kfleet's back. Its recovery launches one new host in
// its zone with the same broker.id and rack, moves its own data volume over
// (attached once), configures and starts the broker once — it keeps its
// data, copying only what was written meanwhile —, and the entity's spec
// names the new host. No page, no violation.
func TestIntegrationRecoveryReplacesATerminatedHost(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	stack := startReplaceStack(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)
	p := newProducer(t, stack)
	before := p.produce(ctx, 40, 10_000)
	old := stack.Specs["local-a"].Brokers[1].InstanceID
	vol, err := stack.Fleet.Volume("local-a", 2)
	require.NoError(t, err)
	rack := rackOf(ctx, t, stack, 2)
	auditFrom := len(stack.Fleet.Audit("local-a"))

	// The entity is paused while broker 2 is away, so that everything
	// written meanwhile is written before its recovery can move the host
	// (on a loaded machine the producer raced the recovery).
	_, err = entity.Pause(ctx, stack.Client, "local-a", workflows.PauseRequest{By: "test", Reason: "write while broker 2 is away"})
	require.NoError(t, err)
	terminated := time.Now()
	_, err = fleetEC2(stack).TerminateInstance(ctx, old)
	require.NoError(t, err)
	lost(ctx, t, stack, 2)
	meanwhile := p.produce(ctx, 20, 10_000) // broker 2 misses these
	_, err = entity.Resume(ctx, stack.Client, "local-a", workflows.ResumeRequest{By: "test"})
	require.NoError(t, err)

	op := finished(ctx, t, stack, "local-a", workflows.OpRecovery, 2*time.Minute)
	require.Equal(t, workflows.StatusSucceeded, op.Status, op.Error)
	res := recoveryResult(ctx, t, stack, op)
	require.NotNil(t, res.Replaced, op.Outcome)
	t.Logf("outcome: %s", op.Outcome)

	audit := stack.Fleet.Audit("local-a")[auditFrom:]
	launched := brokerEvents(audit, 2, localfleet.EventInstanceLaunched)
	require.Len(t, launched, 1, "one new host")
	assert.Contains(t, launched[0].Detail, "launched in "+rack, "in its zone")
	assert.Equal(t, op.WorkflowID, launched[0].Who, "asked by the recovery (kfleet:requested-by)")
	newHost := launched[0].Instance
	assert.Equal(t, newHost, res.Replaced.New)
	attached := brokerEvents(audit, 2, localfleet.EventVolumeAttached)
	require.Len(t, attached, 1, "its volume attached once")
	assert.Equal(t, vol.VolumeID, attached[0].Volume, "its own volume")
	assert.Empty(t, brokerEvents(audit, 2, localfleet.EventVolumeCreated), "no new volume")
	assert.Empty(t, brokerEvents(audit, 2, localfleet.EventVolumeDetached), "detached by its termination, not by kfleet")
	stops, starts := stopsAndStarts(audit)
	assert.Empty(t, stops)
	assert.Equal(t, map[int32]int{2: 1}, starts, "started once")
	replaced := brokerEvents(audit, 2, localfleet.EventHostReplaced)
	require.Len(t, replaced, 1)
	assert.Contains(t, replaced[0].Detail, fmt.Sprintf("broker 2 moves from instance %s to instance %s", old, newHost))
	kept := bytesAfter(t, replaced[0].Detail, "keeps its data: ")
	assert.GreaterOrEqual(t, kept, meanwhile, "what was written meanwhile")
	assert.Less(t, kept, before, "far less than everything it holds: it kept its data")
	inSync := brokerEvents(audit, 2, localfleet.EventInSync)
	require.NotEmpty(t, inSync)
	t.Logf("terminated to broker 2 in the ISR: %s; %d bytes copied with its own volume (%d written before, %d meanwhile); kfleet measured %d",
		inSync[len(inSync)-1].Time.Sub(terminated).Round(time.Millisecond), kept, before, meanwhile, res.Replaced.CatchUpBytes)

	st, err := stack.Fleet.Volume("local-a", 2)
	require.NoError(t, err)
	assert.Equal(t, newHost, st.InstanceID)
	assert.Equal(t, vol.VolumeID, st.VolumeID)
	assert.Equal(t, rack, rackOf(ctx, t, stack, 2), "the same rack")
	assert.Equal(t, newHost, hostOf(ctx, t, stack, 2), "the entity's spec names the new host")
	assert.Equal(t, localfleet.InstanceTerminated, res.Replaced.Retired, "the old host was gone already")
	noViolations(t, stack, "local-a")
	noPage(t, stack)

	// The entity's sensing runs on the new spec: its latest Sense activity
	// was scheduled with the new host.
	require.Eventually(t, func() bool { return sensedHost(ctx, t, stack, 2) == newHost }, 20*time.Second, 200*time.Millisecond,
		"sensing restarted on the new spec")
	recordHistories(ctx, t, stack.Client, map[string]string{op.WorkflowID: "recovery_replace_host.json",
		workflows.ClusterWorkflowID("local-a"): "cluster_host_replaced.json"})
}

// sensedHost is broker's host in the spec of the entity's latest Sense
// activity, as its history recorded it.
func sensedHost(ctx context.Context, t *testing.T, stack *devstack.Stack, broker int32) string {
	t.Helper()
	var last *commonpb.Payloads
	it := stack.Client.GetWorkflowHistory(ctx, workflows.ClusterWorkflowID("local-a"), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if a := ev.GetActivityTaskScheduledEventAttributes(); a != nil && a.GetActivityType().GetName() == "Sense" {
			last = a.GetInput()
		}
	}
	if last == nil {
		return ""
	}
	var in activities.SenseInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(last, &in))
	b, _ := in.Spec.Broker(broker)
	return b.InstanceID
}

// TestIntegrationRecoveryReplacesALostVolume: broker 2's host is
// terminated and its data volume deleted. Its recovery launches a new host,
// creates one blank gp3 volume in its zone and starts the broker, which
// copies every replica it holds; while it does, status shows the bytes to
// copy and the time it will take. No page, no violation.
func TestIntegrationRecoveryReplacesALostVolume(t *testing.T) {
	t.Parallel()           // mostly waiting: beside the other long tests
	const rate = 256 << 10 // 4 MB take 16 s to copy: long enough to watch
	stack := startReplaceStack(t, func(o *devstack.StackOptions) { o.Fleet.Clusters[0].Timing.CatchUpBytesPerSec = rate })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)
	p := newProducer(t, stack)
	written := p.produce(ctx, 400, 10_000)
	old := stack.Specs["local-a"].Brokers[1].InstanceID
	vol, err := stack.Fleet.Volume("local-a", 2)
	require.NoError(t, err)
	rack := rackOf(ctx, t, stack, 2)
	auditFrom := len(stack.Fleet.Audit("local-a"))

	ec2 := fleetEC2(stack)
	terminated := time.Now()
	_, err = ec2.TerminateInstance(ctx, old)
	require.NoError(t, err)
	_, err = ec2.WaitVolumeAvailable(ctx, vol.VolumeID, 10*time.Second)
	require.NoError(t, err)
	require.NoError(t, ec2.DeleteVolume(ctx, vol.VolumeID))

	// While it catches up, status tells what is left and when it is done.
	var shown string
	require.Eventually(t, func() bool {
		rep, err := entity.Status(ctx, stack.Client, "local-a")
		if err != nil {
			return false
		}
		for _, lines := range rep.Progress {
			for _, l := range lines {
				if strings.Contains(l, "catching up") && strings.Contains(l, "ETA") {
					shown = l
					return true
				}
			}
		}
		return false
	}, 90*time.Second, 200*time.Millisecond, "status shows the catch-up with its ETA")
	t.Logf("status during the catch-up: %s", shown)

	op := finished(ctx, t, stack, "local-a", workflows.OpRecovery, 2*time.Minute)
	require.Equal(t, workflows.StatusSucceeded, op.Status, op.Error)
	res := recoveryResult(ctx, t, stack, op)
	require.NotNil(t, res.Replaced, op.Outcome)
	t.Logf("outcome: %s", op.Outcome)
	assert.False(t, res.Replaced.VolumeMoved)

	audit := stack.Fleet.Audit("local-a")[auditFrom:]
	require.Len(t, brokerEvents(audit, 2, localfleet.EventInstanceLaunched), 1, "one new host")
	created := brokerEvents(audit, 2, localfleet.EventVolumeCreated)
	require.Len(t, created, 1, "one blank volume")
	assert.Contains(t, created[0].Detail, rack, "in its zone")
	assert.Equal(t, res.Replaced.Volume, created[0].Volume)
	attached := brokerEvents(audit, 2, localfleet.EventVolumeAttached)
	require.Len(t, attached, 1)
	assert.Equal(t, created[0].Volume, attached[0].Volume)
	_, starts := stopsAndStarts(audit)
	assert.Equal(t, map[int32]int{2: 1}, starts, "started once")
	replaced := brokerEvents(audit, 2, localfleet.EventHostReplaced)
	require.Len(t, replaced, 1)
	full := bytesAfter(t, replaced[0].Detail, "full catch-up of ")
	assert.GreaterOrEqual(t, full, written, "every replica it holds (RF 3 on 3 brokers: all of them)")
	started, inSync := brokerEvents(audit, 2, localfleet.EventStarted), brokerEvents(audit, 2, localfleet.EventInSync)
	require.NotEmpty(t, started)
	require.NotEmpty(t, inSync)
	catchUp := inSync[len(inSync)-1].Time.Sub(started[len(started)-1].Time)
	assert.GreaterOrEqual(t, catchUp, time.Duration(full)*time.Second/rate, "the catch-up takes the bytes it copies")
	assert.Positive(t, res.Replaced.CatchUpBytes, "kfleet measured what there was to copy")
	assert.LessOrEqual(t, res.Replaced.CatchUpBytes, full)
	t.Logf("terminated to broker 2 in the ISR: %s; full catch-up of %d bytes in %s (kfleet measured %d bytes left, ETA %s)",
		inSync[len(inSync)-1].Time.Sub(terminated).Round(time.Millisecond), full, catchUp.Round(time.Millisecond),
		res.Replaced.CatchUpBytes, res.Replaced.CatchUpETA)
	assert.Equal(t, rack, rackOf(ctx, t, stack, 2), "the same rack")
	assert.Equal(t, res.Replaced.New, hostOf(ctx, t, stack, 2))
	noViolations(t, stack, "local-a")
	noPage(t, stack)
	recordHistories(ctx, t, stack.Client, map[string]string{op.WorkflowID: "recovery_replace_lost_volume.json"})
}

// TestIntegrationRecoveryStartsAStoppedInstanceAgain: broker 2's instance
// is stopped behind kfleet's back. Its recovery starts the instance and
// then Kafka there, once: no new host, no volume moved.
func TestIntegrationRecoveryStartsAStoppedInstanceAgain(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	stack := startReplaceStack(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	watching(ctx, t, stack, "local-a", 3)
	auditFrom := len(stack.Fleet.Audit("local-a"))
	require.NoError(t, stack.Fleet.InjectFault(ctx, "local-a", 2, localfleet.Fault{Kind: localfleet.FaultStopInstance}, "test"))

	op := finished(ctx, t, stack, "local-a", workflows.OpRecovery, time.Minute)
	require.Equal(t, workflows.StatusSucceeded, op.Status, op.Error)
	res := recoveryResult(ctx, t, stack, op)
	assert.True(t, res.InstanceStarted, op.Outcome)
	assert.Nil(t, res.Replaced)
	audit := stack.Fleet.Audit("local-a")[auditFrom:]
	assert.Len(t, brokerEvents(audit, 2, localfleet.EventInstanceStarted), 1, "its instance started once")
	assert.Empty(t, brokerEvents(audit, 2, localfleet.EventInstanceLaunched), "no new host")
	assert.Empty(t, brokerEvents(audit, 2, localfleet.EventVolumeAttached), "its volume never moved")
	_, starts := stopsAndStarts(audit)
	assert.Equal(t, map[int32]int{2: 1}, starts)
	assert.Equal(t, stack.Specs["local-a"].Brokers[1].InstanceID, hostOf(ctx, t, stack, 2))
	noViolations(t, stack, "local-a")
	noPage(t, stack)
}
