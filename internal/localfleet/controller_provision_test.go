package localfleet_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// KRaft controllers provisioned on launched hosts, with the product's own
// clients: a new KRaft cluster forms from them, KRaft brokers register
// with it, and a controller's host is replaced.

// provKafkaID is the Kafka cluster id the provisioning tests format with.
const provKafkaID = "MkU3OEVBNTcwNTJENDM2Qg"

// provVoters is the static quorum the tests configure (the addresses are
// what a real host's would be; the fleet prints its own).
const provVoters = "3000@10.0.1.5:9093,3001@10.0.2.6:9093,3002@10.0.3.7:9093"

// launchController launches a controller host for node id, with EC2's
// own API (tagged as kfleet tags a controller's host).
func (p *provisioner) launchController(ctx context.Context, cluster string, id int32, az string) cloud.Instance {
	p.t.Helper()
	out, err := ec2Client(p.f).RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0123456789abcdef0"), InstanceType: ec2types.InstanceTypeM5Large,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement:   &ec2types.Placement{AvailabilityZone: aws.String(az)},
		ClientToken: aws.String(fmt.Sprintf("%s-ctl-%d-%d", cluster, id, time.Now().UnixNano())),
		TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{
			{Key: aws.String(cloud.TagCluster), Value: aws.String(cluster)},
			{Key: aws.String(cloud.TagNodeID), Value: aws.String(strconv.Itoa(int(id)))},
			{Key: aws.String(cloud.TagRole), Value: aws.String(cloud.RoleController)},
		}}},
	})
	require.NoError(p.t, err)
	in, err := p.ec2.WaitInstanceRunning(ctx, aws.ToString(out.Instances[0].InstanceId), 10*time.Second)
	require.NoError(p.t, err)
	return in
}

// configureController runs kfleet-ConfigureController; zk is "" for a
// KRaft-only controller.
func (p *provisioner) configureController(ctx context.Context, instance, cluster string, id int32, kafkaID, zk string) (cloud.CommandResult, error) {
	params := map[string]string{cloud.ParamClusterID: cluster, cloud.ParamNodeID: strconv.Itoa(int(id)),
		cloud.ParamQuorumVoters: provVoters, cloud.ParamKafkaClusterID: kafkaID, cloud.ParamMetadataVersion: "3.9-IV0"}
	if zk != "" {
		params[cloud.ParamZooKeeperConnect] = zk
	}
	return p.ssm.RunDocument(ctx, instance, cloud.DocConfigureController, params, "provision "+cluster, func() {})
}

// controller provisions controller id on a new host and starts it.
func (p *provisioner) controller(ctx context.Context, cluster string, id int32, az, kafkaID, zk string) (cloud.Instance, string) {
	p.t.Helper()
	in := p.launchController(ctx, cluster, id, az)
	res, err := p.configureController(ctx, in.ID, cluster, id, kafkaID, zk)
	require.NoError(p.t, err)
	addr := cloud.ControllerAddress(res.Stdout)
	require.NotEmpty(p.t, addr, res.Stdout)
	res, err = p.start(ctx, in.ID)
	require.NoError(p.t, err)
	assert.Contains(p.t, res.Stdout, fmt.Sprintf("controller %d started", id))
	return in, addr
}

// kraftBroker provisions KRaft broker id on a new host with a new volume.
func (p *provisioner) kraftBroker(ctx context.Context, cluster string, id int32, az, kafkaID string) (cloud.CommandResult, error) {
	p.t.Helper()
	in := p.launch(ctx, cluster, id, az, fmt.Sprintf("%s-broker-%d-host", cluster, id))
	vol := p.newVolume(ctx, cluster, id, az, fmt.Sprintf("%s-broker-%d-data", cluster, id))
	p.attach(ctx, vol, in.ID)
	res, err := p.ssm.RunDocument(ctx, in.ID, cloud.DocConfigureBroker, map[string]string{
		cloud.ParamClusterID: cluster, cloud.ParamBrokerID: strconv.Itoa(int(id)), cloud.ParamDataVolumeID: vol,
		cloud.ParamQuorumVoters: provVoters, cloud.ParamKafkaClusterID: kafkaID,
	}, "provision "+cluster, func() {})
	if err != nil {
		return res, err
	}
	assert.Contains(p.t, res.Stdout, "process.roles=broker\nnode.id="+strconv.Itoa(int(id))+"\n")
	assert.NotContains(p.t, res.Stdout, "zookeeper.connect")
	return p.start(ctx, in.ID)
}

func provFleet(t *testing.T) *localfleet.Fleet {
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")},
		EC2: localfleet.EC2Config{Timing: provTiming, ClusterTiming: testTiming, ControllerTiming: kraftTiming}})
	return f
}

// Three controller hosts form a new KRaft cluster: no leader until two of
// them run, then KRaft brokers register with it and clients produce.
func TestIntegrationProvisionedKRaftCluster(t *testing.T) {
	t.Parallel()
	f := provFleet(t)
	ctx := testContext(t)
	p := newProvisioner(t, f)
	zones := []string{"us-east-1a", "us-east-1b", "us-east-1c"}

	// Refusals: a broker's host is no controller's, a node outside the
	// voters, a ZooKeeper connect for a cluster the fleet does not run.
	bhost := p.launch(ctx, "kr", 9, "us-east-1a", "kr-broker-9")
	_, err := p.configureController(ctx, bhost.ID, "kr", 3000, provKafkaID, "")
	assert.ErrorContains(t, err, "no controller host")
	odd := p.launchController(ctx, "kr", 3007, "us-east-1a")
	_, err = p.configureController(ctx, odd.ID, "kr", 3007, provKafkaID, "")
	assert.ErrorContains(t, err, "not one of controller.quorum.voters")

	// The first controller alone: a cluster, but no quorum yet.
	in0 := p.launchController(ctx, "kr", 3000, zones[0])
	res, err := p.configureController(ctx, in0.ID, "kr", 3000, provKafkaID, "")
	require.NoError(t, err)
	for _, line := range []string{"process.roles=controller", "node.id=3000", "controller.quorum.voters=" + provVoters,
		"listeners=CONTROLLER://:9093", "controller.listener.names=CONTROLLER"} {
		assert.Contains(t, res.Stdout, line+"\n")
	}
	assert.NotContains(t, res.Stdout, "zookeeper")
	assert.Contains(t, res.Stdout, "formatted /var/lib/kafka/metadata for cluster "+provKafkaID)
	addr0 := cloud.ControllerAddress(res.Stdout)
	require.True(t, strings.HasPrefix(addr0, "127.0.0.1:"), res.Stdout)
	res, err = p.configureController(ctx, in0.ID, "kr", 3000, provKafkaID, "")
	require.NoError(t, err)
	assert.Contains(t, res.Stdout, "server.properties unchanged")
	assert.Equal(t, addr0, cloud.ControllerAddress(res.Stdout), "the host keeps its address")
	_, err = p.configureController(ctx, in0.ID, "kr", 3000, "AAAAAAAAAAAAAAAAAAAAAA", "")
	assert.ErrorContains(t, err, "INCONSISTENT_CLUSTER_ID")
	res, err = p.ssm.RunDocument(ctx, in0.ID, cloud.DocBrokerStatus, nil, "", func() {})
	require.NoError(t, err)
	assert.Equal(t, "stopped\nprocess.roles=controller\nnode.id=3000\nversion=3.9.0\nmetadata.mode=kraft\n", res.Stdout)
	_, err = p.start(ctx, in0.ID)
	require.NoError(t, err)
	time.Sleep(3 * kraftTiming.Election)
	q, err := f.Quorum("kr")
	require.NoError(t, err)
	assert.Equal(t, int32(-1), q.Leader, "one voter of three is no majority")
	// A KRaft broker cannot register without an active controller.
	_, err = p.kraftBroker(ctx, "kr", 1, zones[0], provKafkaID)
	require.Error(t, err)

	// The second voter makes a majority.
	_, addr1 := p.controller(ctx, "kr", 3001, zones[1], provKafkaID, "")
	require.Eventually(t, func() bool {
		q, err := f.Quorum("kr")
		require.NoError(t, err)
		return q.Leader >= 3000
	}, 5*time.Second, 20*time.Millisecond, "a leader once two voters run")
	p.controller(ctx, "kr", 3002, zones[2], provKafkaID, "")
	q, err = f.Quorum("kr")
	require.NoError(t, err)
	assert.Equal(t, addr1, q.Voters[1].Address)
	id, err := f.ClusterID("kr")
	require.NoError(t, err)
	assert.Equal(t, provKafkaID, id)

	// Brokers: one with another cluster id is refused, the rest join.
	_, err = p.kraftBroker(ctx, "kr", 7, zones[0], "BBBBBBBBBBBBBBBBBBBBBB")
	assert.ErrorContains(t, err, "INCONSISTENT_CLUSTER_ID")
	for i, az := range zones {
		res, err := p.kraftBroker(ctx, "kr", int32(i+2), az, provKafkaID)
		require.NoError(t, err)
		assert.Contains(t, res.Stdout, "registered with the KRaft controllers")
	}
	waitFenced(t, f, "kr", map[int32]bool{2: false, 3: false, 4: false})
	st, err := f.Status("kr")
	require.NoError(t, err)
	require.NotNil(t, st.Migration)
	assert.Equal(t, localfleet.MigrationNone, st.Migration.State)
	assert.Equal(t, []int32{1, 2, 3, 4}, st.Migration.Brokers[cloud.MetadataModeKRaft], "broker 1 failed to start: no controller then")
	assert.Equal(t, localfleet.StateFailed, st.Brokers[0].State)
	assert.False(t, st.Migration.ZooKeeperInUse)
	assert.Empty(t, f.Endpoints().Clusters["kr"].ZooKeeper)

	cl, adm := kafkaClient(t, f, "kr", kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("orders"))
	created, err := adm.CreateTopic(ctx, 4, 3, nil, "orders")
	require.NoError(t, err)
	require.NoError(t, created.Err)
	for i := range 10 {
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Key: []byte(strconv.Itoa(i)), Value: []byte("v")}).FirstErr())
	}
	assert.Empty(t, f.Violations("kr"))
}

// A controller's host replaced: the new host takes the node id over only
// once the old one's controller is down, comes back with an empty
// metadata log and lags until it has copied the leader's.
func TestIntegrationControllerHostReplacement(t *testing.T) {
	t.Parallel()
	f := provFleet(t)
	ctx := testContext(t)
	p := newProvisioner(t, f)
	hosts := map[int32]string{}
	for i, az := range []string{"us-east-1a", "us-east-1b", "us-east-1c"} {
		in, _ := p.controller(ctx, "kr", int32(3000+i), az, provKafkaID, "")
		hosts[int32(3000+i)] = in.ID
	}
	require.Eventually(t, func() bool {
		q, err := f.Quorum("kr")
		require.NoError(t, err)
		return q.Leader >= 3000 && q.CaughtUp == 3
	}, 5*time.Second, 20*time.Millisecond)
	time.Sleep(1200 * time.Millisecond) // some metadata log to copy (a no-op record every 500ms)
	q, err := f.Quorum("kr")
	require.NoError(t, err)
	victim := int32(3002)
	if q.Leader == victim {
		victim = 3001
	}

	// The new host while the old one's controller still runs: refused.
	repl := p.launchController(ctx, "kr", victim, "us-east-1c")
	_, err = p.configureController(ctx, repl.ID, "kr", victim, provKafkaID, "")
	require.NoError(t, err)
	_, err = p.start(ctx, repl.ID)
	assert.ErrorContains(t, err, "already registered by another host")

	// The old host terminated: its controller crashes.
	_, err = p.ec2.TerminateInstance(ctx, hosts[victim])
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		q, err := f.Quorum("kr")
		require.NoError(t, err)
		return q.Voters[victim-3000].State == localfleet.StateCrashed
	}, 5*time.Second, 20*time.Millisecond)

	res, err := p.start(ctx, repl.ID)
	require.NoError(t, err)
	assert.Contains(t, res.Stdout, fmt.Sprintf("controller %d started", victim))
	q, err = f.Quorum("kr")
	require.NoError(t, err)
	v := q.Voters[victim-3000]
	assert.Equal(t, repl.ID, v.InstanceID)
	assert.Less(t, v.LogEndOffset, q.HighWatermark, "an empty log, copying the leader's")
	assert.Equal(t, 2, q.CaughtUp, "the new host's controller lags")
	require.Eventually(t, func() bool {
		q, err := f.Quorum("kr")
		require.NoError(t, err)
		return q.CaughtUp == 3
	}, 5*time.Second, 20*time.Millisecond, "caught up after the copy")
	assert.True(t, slicesContainsKind(f.Audit("kr"), localfleet.EventControllerHostReplaced))
	assert.Empty(t, f.Violations("kr"))
}

func slicesContainsKind(evs []localfleet.Event, kind localfleet.EventKind) bool {
	for _, e := range evs {
		if e.Kind == kind {
			return true
		}
	}
	return false
}

// A configured KRaft cluster's controller host replaced by a launched
// one: configured with the cluster's Kafka cluster id and quorum, it
// takes node 3001 over once the old host is gone, copies the metadata
// log and the brokers stay unfenced throughout.
func TestIntegrationConfiguredControllerHostReplacement(t *testing.T) {
	t.Parallel()
	f := startKRaft(t, localfleet.KRaftConfig{})
	ctx := testContext(t)
	p := newProvisioner(t, f)
	kafkaID, err := f.ClusterID("local-k")
	require.NoError(t, err)
	old := f.Endpoints().Clusters["local-k"].Controllers[1]
	require.Equal(t, int32(3001), old.ID)

	_, err = p.ec2.TerminateInstance(ctx, old.InstanceID)
	require.NoError(t, err)
	repl := p.launchController(ctx, "local-k", 3001, "us-east-1b")
	res, err := p.configureController(ctx, repl.ID, "local-k", 3001, kafkaID, "")
	require.NoError(t, err)
	addr := cloud.ControllerAddress(res.Stdout)
	res, err = p.start(ctx, repl.ID)
	require.NoError(t, err)
	assert.Contains(t, res.Stdout, "controller 3001 started")
	require.Eventually(t, func() bool {
		q, err := f.Quorum("local-k")
		require.NoError(t, err)
		return q.CaughtUp == 3 && q.Voters[1].InstanceID == repl.ID && q.Voters[1].Address == addr
	}, 5*time.Second, 20*time.Millisecond)
	assert.Equal(t, addr, f.Endpoints().Clusters["local-k"].Controllers[1].Address)
	waitFenced(t, f, "local-k", map[int32]bool{1: false, 2: false, 3: false})
	assert.Empty(t, f.Violations("local-k"))
}
