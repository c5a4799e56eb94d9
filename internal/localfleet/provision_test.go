package localfleet_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// Provisioning against the fleet with the product's own clients
// (internal/cloud: aws-sdk-go-v2's EC2 and SSM): hosts launched,
// given a data volume, configured and started become brokers that Kafka
// clients reach and ZooKeeper lists, and a broker whose host vanished
// gets another.

// provTiming keeps EC2's states and the brokers' transitions short.
var provTiming = localfleet.EC2Timing{
	Pending: 100 * time.Millisecond, Stopping: 100 * time.Millisecond, ShuttingDown: 100 * time.Millisecond,
	VolumeCreating: 100 * time.Millisecond, Attaching: 50 * time.Millisecond, Detaching: 50 * time.Millisecond,
}

// provisioner provisions broker hosts as a provisioning workflow will.
type provisioner struct {
	t   *testing.T
	f   *localfleet.Fleet
	ec2 *cloud.EC2
	ssm *cloud.SSM
}

func newProvisioner(t *testing.T, f *localfleet.Fleet) *provisioner {
	ep := f.Endpoints().AWS
	cfg := aws.Config{Region: ep.Region, Credentials: credentials.NewStaticCredentialsProvider(ep.AccessKeyID, ep.SecretAccessKey, "")}
	return &provisioner{t: t, f: f,
		ec2: cloud.NewEC2(cfg, ep.Endpoint, cloud.WithWaitDelays(20*time.Millisecond, 200*time.Millisecond)),
		ssm: cloud.NewSSM(cfg, ep.Endpoint)}
}

// launch launches broker id's host in az and waits until it runs.
func (p *provisioner) launch(ctx context.Context, cluster string, id int32, az, token string) cloud.Instance {
	p.t.Helper()
	in, err := p.ec2.LaunchInstance(ctx, cloud.LaunchSpec{Cluster: cluster, Role: cloud.RoleBroker, BrokerID: id, AZ: az,
		InstanceType: "m5.xlarge", ImageID: "ami-0123456789abcdef0", ClientToken: token})
	require.NoError(p.t, err)
	require.Equal(p.t, localfleet.InstancePending, in.State)
	in, err = p.ec2.WaitInstanceRunning(ctx, in.ID, 10*time.Second)
	require.NoError(p.t, err)
	return in
}

// newVolume creates broker id's blank data volume in az.
func (p *provisioner) newVolume(ctx context.Context, cluster string, id int32, az, token string) string {
	p.t.Helper()
	v, err := p.ec2.CreateVolume(ctx, cloud.VolumeSpec{Cluster: cluster, BrokerID: id, AZ: az, SizeGiB: 100, ClientToken: token})
	require.NoError(p.t, err)
	_, err = p.ec2.WaitVolumeAvailable(ctx, v.ID, 10*time.Second)
	require.NoError(p.t, err)
	return v.ID
}

// attach attaches a data volume at /dev/xvdb and waits until the host has
// it.
func (p *provisioner) attach(ctx context.Context, volume, instance string) {
	p.t.Helper()
	require.NoError(p.t, p.ec2.AttachVolume(ctx, volume, instance, "/dev/xvdb"))
	_, err := p.ec2.WaitVolumeAttached(ctx, volume, instance, 10*time.Second)
	require.NoError(p.t, err)
}

func (p *provisioner) configure(ctx context.Context, instance, cluster string, id int32, volume string) (cloud.CommandResult, error) {
	return p.ssm.RunDocument(ctx, instance, cloud.DocConfigureBroker, map[string]string{
		cloud.ParamClusterID: cluster, cloud.ParamBrokerID: strconv.Itoa(int(id)), cloud.ParamDataVolumeID: volume,
		cloud.ParamZooKeeperConnect: p.f.Endpoints().ZooKeeper + cloud.ZooKeeperChroot(cluster),
	}, "provision "+cluster, func() {})
}

func (p *provisioner) start(ctx context.Context, instance string) (cloud.CommandResult, error) {
	return p.ssm.RunDocument(ctx, instance, cloud.DocStartBroker, nil, "provision", func() {})
}

// broker provisions broker id of cluster on a new host with a new volume.
func (p *provisioner) broker(ctx context.Context, cluster string, id int32, az string) (cloud.Instance, string) {
	p.t.Helper()
	in := p.launch(ctx, cluster, id, az, fmt.Sprintf("%s-broker-%d-host", cluster, id))
	vol := p.newVolume(ctx, cluster, id, az, fmt.Sprintf("%s-broker-%d-data", cluster, id))
	p.attach(ctx, vol, in.ID)
	res, err := p.configure(ctx, in.ID, cluster, id, vol)
	require.NoError(p.t, err)
	for _, line := range []string{
		"broker.id=" + strconv.Itoa(int(id)), "broker.rack=" + az,
		"zookeeper.connect=" + p.f.Endpoints().ZooKeeper + "/kfleet/" + cluster,
		"log.dirs=/var/lib/kafka/data", "default.replication.factor=3", "min.insync.replicas=2", "num.partitions=8",
		"unclean.leader.election.enable=false", "auto.create.topics.enable=false",
	} {
		assert.Contains(p.t, res.Stdout, line+"\n")
	}
	res, err = p.start(ctx, in.ID)
	require.NoError(p.t, err)
	assert.Contains(p.t, res.Stdout, fmt.Sprintf("broker %d started", id))
	return in, vol
}

// Three hosts provisioned for a cluster the fleet does not run become its
// brokers: registered in ZooKeeper under its chroot, reached by franz-go,
// with the managed cluster's min.insync.replicas.
func TestIntegrationProvisionedBrokersFormANewCluster(t *testing.T) {
	t.Parallel()
	f, z := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")},
		EC2: localfleet.EC2Config{Timing: provTiming, ClusterTiming: testTiming}})
	ctx := testContext(t)
	p := newProvisioner(t, f)
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}

	// Refusals first: Kafka does not start on an unconfigured host, and a
	// ZooKeeper node is no broker host.
	bare := p.launch(ctx, "fresh", 9, "us-east-1a", "fresh-bare")
	_, err := p.start(ctx, bare.ID)
	require.ErrorIs(t, err, cloud.ErrCommandFailed)
	assert.ErrorContains(t, err, "run kfleet-ConfigureBroker first")
	zkNode, err := p.ec2.LaunchInstance(ctx, cloud.LaunchSpec{Cluster: "fresh", Role: cloud.RoleZooKeeper, AZ: "us-east-1a",
		InstanceType: "t3.medium", ImageID: "ami-0123456789abcdef0", ClientToken: "fresh-zk-1"})
	require.NoError(t, err)
	_, err = p.ec2.WaitInstanceRunning(ctx, zkNode.ID, 10*time.Second)
	require.NoError(t, err)
	zkVol := p.newVolume(ctx, "fresh", 0, "us-east-1a", "fresh-zk-1-data")
	p.attach(ctx, zkVol, zkNode.ID)
	_, err = p.configure(ctx, zkNode.ID, "fresh", 1, zkVol)
	assert.ErrorContains(t, err, "ZooKeeper node")
	_, err = p.ec2.TerminateInstance(ctx, bare.ID)
	require.NoError(t, err)
	_, err = f.Status("fresh")
	require.ErrorIs(t, err, localfleet.ErrUnknownCluster, "nothing started: no cluster yet")

	hosts := map[int32]string{}
	for i, az := range zones {
		in, _ := p.broker(ctx, "fresh", int32(i+1), az)
		hosts[int32(i+1)] = in.ID
	}
	st, err := f.Status("fresh")
	require.NoError(t, err)
	require.Len(t, st.Brokers, 3)
	for _, b := range st.Brokers {
		assert.Equal(t, localfleet.StateRunning, b.State)
		assert.Equal(t, hosts[b.ID], b.InstanceID)
	}

	// Configuring again changes nothing.
	vols, err := p.ec2.FindVolumes(ctx, cloud.VolumeFilter{Cluster: "fresh", BrokerID: aws.Int32(2), Role: cloud.RoleKafkaData})
	require.NoError(t, err)
	require.Len(t, vols, 1)
	res, err := p.configure(ctx, hosts[2], "fresh", 2, vols[0].ID)
	require.NoError(t, err)
	assert.Contains(t, res.Stdout, "server.properties unchanged")
	_, err = p.configure(ctx, hosts[2], "fresh", 5, vols[0].ID)
	assert.ErrorContains(t, err, "holds cluster \"fresh\" broker 2", "broker 2's volume is not broker 5's")

	conn := watchZK(t, z.Addr)
	ids, _, err := conn.Children("/kfleet/fresh/brokers/ids")
	require.NoError(t, err)
	slices.Sort(ids)
	assert.Equal(t, []string{"1", "2", "3"}, ids)
	data, _, err := conn.Get("/kfleet/fresh/brokers/ids/2")
	require.NoError(t, err)
	assert.Contains(t, string(data), f.Endpoints().Clusters["fresh"].Brokers[1].Address[len("127.0.0.1:"):])

	cl, adm := kafkaClient(t, f, "fresh", kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("orders"))
	created, err := adm.CreateTopic(ctx, 8, 3, nil, "orders")
	require.NoError(t, err)
	require.NoError(t, created.Err)
	for i := range 20 {
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte("order")}).FirstErr())
	}
	m := metadata(t, adm)
	assert.ElementsMatch(t, []int32{1, 2, 3}, m.Brokers.NodeIDs())
	for _, pd := range m.Topics["orders"].Partitions {
		assert.Len(t, pd.Replicas, 3)
	}

	var kinds []localfleet.EventKind
	for _, e := range f.Audit("fresh") {
		if e.Broker == 1 {
			kinds = append(kinds, e.Kind)
		}
	}
	assert.Equal(t, []localfleet.EventKind{
		localfleet.EventInstanceLaunched, localfleet.EventVolumeCreated, localfleet.EventVolumeAttached,
		localfleet.EventBrokerConfigured, localfleet.EventBrokerAdded, localfleet.EventStart, localfleet.EventStarted,
		localfleet.EventInSync,
	}, kinds, "broker 1's life, from its launch")
	assert.True(t, slices.ContainsFunc(f.Audit("fresh"), func(e localfleet.Event) bool { return e.Kind == localfleet.EventClusterCreated }))
	assert.Empty(t, f.Violations("fresh"))
}

// A broker's host terminated behind kfleet's back: the broker dies for
// good and its data volume survives, detached. A replacement host with the
// same broker id takes the volume over and keeps the data (only what was
// written meanwhile is copied); one with a blank volume copies everything
// again, and takes longer by the bytes it copies. A second live host for
// one broker is a duplicate-instance violation.
func TestIntegrationHostReplacement(t *testing.T) {
	t.Parallel()
	cc := faultCluster("local-a")
	cc.Racks = 3
	cc.Timing.CatchUpBytesPerSec = 1 << 20 // 1 MiB/s: a full catch-up of a few hundred KiB shows
	f, z := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{cc}, EC2: localfleet.EC2Config{Timing: provTiming}})
	ctx := testContext(t)
	p := newProvisioner(t, f)
	// Uncompressed, so that the bytes a broker misses are the bytes sent.
	cl, _ := kafkaClient(t, f, "local-a", kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("events"),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	produce := func(n, size int) int64 {
		var bytes int64
		for i := range n {
			v := []byte(strings.Repeat("x", size))
			require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: v}).FirstErr())
			bytes += int64(size)
		}
		return bytes
	}
	produce(20, 1000)
	conn := watchZK(t, z.Addr)
	brokers := f.Endpoints().Clusters["local-a"].Brokers
	old2 := brokers[1].InstanceID
	vol2, err := f.Volume("local-a", 2)
	require.NoError(t, err)

	// Terminated behind kfleet's back, with EC2's own API.
	raw := ec2Client(f)
	_, err = raw.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{old2}})
	require.NoError(t, err)
	assert.Equal(t, localfleet.StateCrashed, brokerState(t, f, "local-a", 2), "its process died with the host")
	_, err = p.ec2.WaitInstanceTerminated(ctx, old2, 10*time.Second)
	require.NoError(t, err)
	v, err := p.ec2.WaitVolumeAvailable(ctx, vol2.VolumeID, 10*time.Second)
	require.NoError(t, err, "the data volume outlives its host")
	assert.Equal(t, int32(2), v.BrokerID)
	_, err = p.ssm.RunDocument(ctx, old2, cloud.DocBrokerStatus, nil, "", func() {})
	assert.ErrorContains(t, err, "InvalidInstanceId", "no SSM on a terminated host")
	awaitGone(t, conn, "/kfleet/local-a/brokers/ids/2")
	// The controller handles the failure once its own watch fires: until
	// broker 2 left every ISR, what is written still counts as its.
	adm := kadm.NewClient(cl)
	require.Eventually(t, func() bool {
		md, err := adm.Metadata(ctx)
		if err != nil {
			return false
		}
		for _, td := range md.Topics {
			for _, part := range td.Partitions {
				if slices.Contains(part.ISR, 2) {
					return false
				}
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "broker 2 left every ISR")
	written := produce(30, 1000) // broker 2 misses these

	// A replacement with broker 2's own volume keeps its data.
	new2 := p.launch(ctx, "local-a", 2, "us-east-1b", "replace-local-a-2-try-1")
	p.attach(ctx, vol2.VolumeID, new2.ID)
	_, err = p.configure(ctx, new2.ID, "local-a", 2, vol2.VolumeID)
	require.NoError(t, err)
	_, err = p.start(ctx, new2.ID)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return brokerState(t, f, "local-a", 2) == localfleet.StateRunning }, 10*time.Second, 20*time.Millisecond)
	waitInSync(t, f, "local-a", 2, 1)
	replaced := lastEvent(f.Audit("local-a"), 2, localfleet.EventHostReplaced)
	assert.Contains(t, replaced.Detail, fmt.Sprintf("broker 2 moves from instance %s to instance %s", old2, new2.ID))
	assert.Contains(t, replaced.Detail, "keeps its data")
	assert.GreaterOrEqual(t, bytesIn(t, replaced.Detail, "keeps its data: "), written, "what was written while it was away")
	assert.Less(t, bytesIn(t, replaced.Detail, "keeps its data: "), 2*written+20000, "not everything")
	assert.Equal(t, localfleet.StateRunning, brokerState(t, f, "local-a", 2))
	st, err := f.Volume("local-a", 2)
	require.NoError(t, err)
	assert.Equal(t, new2.ID, st.InstanceID)
	assert.Equal(t, vol2.VolumeID, st.VolumeID)
	exists, _, err := conn.Exists("/kfleet/local-a/brokers/ids/2")
	require.NoError(t, err)
	assert.True(t, exists)

	// Another host launched for broker 2 while it runs: a duplicate.
	dup, err := p.ec2.LaunchInstance(ctx, cloud.LaunchSpec{Cluster: "local-a", Role: cloud.RoleBroker, BrokerID: 2, AZ: "us-east-1b",
		InstanceType: "m5.xlarge", ImageID: "ami-0123456789abcdef0", ClientToken: "replace-local-a-2-try-2"})
	require.NoError(t, err)
	violations := f.Violations("local-a")
	require.Len(t, violations, 1)
	assert.Equal(t, localfleet.ViolationDuplicateInstance, violations[0].Kind)
	assert.Contains(t, violations[0].Detail, new2.ID)
	assert.Contains(t, violations[0].Detail, dup.ID)
	_, err = p.ec2.TerminateInstance(ctx, dup.ID)
	require.NoError(t, err)

	// Broker 3's host and volume are both lost: a blank volume copies
	// every replica broker 3 holds, at 1 MiB/s.
	old3 := brokers[2].InstanceID
	vol3, err := f.Volume("local-a", 3)
	require.NoError(t, err)
	require.NoError(t, f.InjectFault(ctx, "local-a", 3, localfleet.Fault{Kind: localfleet.FaultTerminateInstance}, "chaos"))
	_, err = p.ec2.WaitVolumeAvailable(ctx, vol3.VolumeID, 10*time.Second)
	require.NoError(t, err)
	require.NoError(t, p.ec2.DeleteVolume(ctx, vol3.VolumeID))
	require.NoError(t, p.ec2.WaitVolumeDeleted(ctx, vol3.VolumeID, 10*time.Second))
	awaitGone(t, conn, "/kfleet/local-a/brokers/ids/3")
	total := produce(5, 1000) + written + 20*1000

	new3, blank := p.broker(ctx, "local-a", 3, "us-east-1c")
	replaced = lastEvent(f.Audit("local-a"), 3, localfleet.EventHostReplaced)
	assert.Contains(t, replaced.Detail, fmt.Sprintf("broker 3 moves from instance %s to instance %s", old3, new3.ID))
	full := bytesIn(t, replaced.Detail, "full catch-up of ")
	assert.GreaterOrEqual(t, full, total, "every replica of broker 3 (RF 3 on 3 brokers: all of them)")
	waitInSync(t, f, "local-a", 3, 1)
	started, inSync := lastEvent(f.Audit("local-a"), 3, localfleet.EventStarted), lastEvent(f.Audit("local-a"), 3, localfleet.EventInSync)
	assert.GreaterOrEqual(t, inSync.Time.Sub(started.Time), cc.Timing.CatchUp+time.Duration(full)*time.Second/(1<<20),
		"the catch-up takes the bytes it copies")
	st, err = f.Volume("local-a", 3)
	require.NoError(t, err)
	assert.Equal(t, blank, st.VolumeID)

	// Everything the fleet saw, with who asked.
	var launched []localfleet.Event
	for _, e := range f.EC2Audit() {
		if e.Kind == localfleet.EventInstanceLaunched && e.Cluster == "local-a" {
			launched = append(launched, e)
		}
	}
	require.Len(t, launched, 3)
	assert.Equal(t, "client-token:replace-local-a-2-try-1", launched[0].Who)
	i := slices.IndexFunc(f.Audit("local-a"), func(e localfleet.Event) bool {
		return e.Kind == localfleet.EventInstanceTerminated && e.Instance == old2
	})
	require.GreaterOrEqual(t, i, 0)
	terminated := f.Audit("local-a")[i]
	assert.Equal(t, int32(2), terminated.Broker)
	assert.Contains(t, terminated.Detail, vol2.VolumeID+" detached")
	assert.Len(t, f.Violations("local-a"), 1, "the duplicate only: one broker down at a time")
}

func lastEvent(events []localfleet.Event, broker int32, kind localfleet.EventKind) localfleet.Event {
	for i := len(events) - 1; i >= 0; i-- {
		if events[i].Broker == broker && events[i].Kind == kind {
			return events[i]
		}
	}
	return localfleet.Event{}
}

// bytesIn reads the number after prefix in s.
func bytesIn(t *testing.T, s, prefix string) int64 {
	t.Helper()
	_, rest, ok := strings.Cut(s, prefix)
	require.True(t, ok, "%q in %q", prefix, s)
	n, err := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
	require.NoError(t, err)
	return n
}

// awaitGone waits until node does not exist.
func awaitGone(t *testing.T, conn *zk.Conn, node string) {
	t.Helper()
	require.Eventually(t, func() bool {
		exists, _, err := conn.Exists(node)
		return err == nil && !exists
	}, 10*time.Second, 50*time.Millisecond, "%s gone", node)
}
