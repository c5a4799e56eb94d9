package localfleet_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kfleet/kfleet/internal/localfleet"
)

// drain reassigns every replica on broker id to the first of onto the
// partition lacks, as kfleet's broker removal does, and waits until no
// partition lists it.
func drain(t *testing.T, adm *kadm.Client, id int32, onto ...int32) {
	t.Helper()
	req := kadm.AlterPartitionAssignmentsReq{}
	for name, topic := range metadata(t, adm).Topics {
		for _, p := range topic.Partitions.Sorted() {
			i := slices.Index(p.Replicas, id)
			if i < 0 {
				continue
			}
			target := slices.Clone(p.Replicas)
			for _, b := range onto {
				if !slices.Contains(target, b) {
					target[i] = b
					break
				}
			}
			req.Assign(name, p.Partition, target)
		}
	}
	resp, err := adm.AlterPartitionAssignments(testContext(t), req)
	require.NoError(t, err)
	require.NoError(t, resp.Error())
	require.Eventually(t, func() bool {
		for _, topic := range metadata(t, adm).Topics {
			for _, p := range topic.Partitions {
				if slices.Contains(p.Replicas, id) {
					return false
				}
			}
		}
		return true
	}, 30*time.Second, 50*time.Millisecond, "broker %d drained", id)
}

func brokerIDs(t *testing.T, cl *kgo.Client) (metadataIDs, describeClusterIDs []int32) {
	t.Helper()
	ctx := testContext(t)
	m, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	require.NoError(t, err)
	for _, b := range m.Brokers {
		metadataIDs = append(metadataIDs, b.NodeID)
	}
	dc, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
	require.NoError(t, err)
	for _, b := range dc.Brokers {
		describeClusterIDs = append(describeClusterIDs, b.NodeID)
	}
	slices.Sort(metadataIDs)
	slices.Sort(describeClusterIDs)
	return metadataIDs, describeClusterIDs
}

func decommissioned(f *localfleet.Fleet, broker int32) []localfleet.Event {
	var out []localfleet.Event
	for _, e := range f.Audit("local-a") {
		if e.Kind == localfleet.EventDecommissioned && e.Broker == broker {
			out = append(out, e)
		}
	}
	return out
}

// A broker drained, stopped and whose host is terminated leaves the
// cluster: not in Metadata or DescribeCluster, no replica of new topics,
// counted by no check. A broker whose host is terminated while it still
// holds replicas stays a dead broker until they are moved away.
func TestIntegrationDecommissionedBroker(t *testing.T) {
	cc := testCluster("local-a")
	cc.Brokers = 5
	cc.Topics = []localfleet.TopicConfig{{Name: "events", Partitions: 5, ReplicationFactor: 3}}
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{cc}})
	cl, adm := kafkaClient(t, f, "local-a")
	ctx := testContext(t)
	terminate := localfleet.Fault{Kind: localfleet.FaultTerminateInstance}

	// Removal as kfleet does it: drain, stop, terminate.
	drain(t, adm, 5, 1, 2, 3, 4)
	require.NoError(t, f.StopBroker(ctx, "local-a", 5, "remove-broker"))
	require.NoError(t, f.InjectFault(ctx, "local-a", 5, terminate, "remove-broker"))
	state, err := f.BrokerState("local-a", 5)
	require.NoError(t, err)
	assert.Equal(t, localfleet.StateDecommissioned, state)
	events := decommissioned(f, 5)
	require.Len(t, events, 1)
	assert.Equal(t, "remove-broker", events[0].Who)

	mIDs, dcIDs := brokerIDs(t, cl)
	assert.Equal(t, []int32{1, 2, 3, 4}, mIDs, "Metadata")
	assert.Equal(t, []int32{1, 2, 3, 4}, dcIDs, "DescribeCluster")
	assert.Len(t, f.Endpoints().Clusters["local-a"].Brokers, 4)
	assert.Len(t, f.Endpoints().Clusters["local-a"].Bootstrap, 4)

	created, err := adm.CreateTopic(ctx, 12, 3, nil, "after")
	require.NoError(t, err)
	require.NoError(t, created.Err)
	for _, p := range metadata(t, adm).Topics["after"].Partitions {
		assert.NotContains(t, p.Replicas, int32(5), "partition %d", p.Partition)
		assert.Len(t, p.Replicas, 3)
	}
	tooMany, err := adm.CreateTopic(ctx, 1, 5, nil, "too-many")
	assert.ErrorIs(t, err, kerr.InvalidReplicationFactor, "4 brokers are left")
	assert.ErrorIs(t, tooMany.Err, kerr.InvalidReplicationFactor)
	onto := kadm.AlterPartitionAssignmentsReq{}
	onto.Assign("after", 0, []int32{5, 1, 2})
	resp, err := adm.AlterPartitionAssignments(ctx, onto)
	require.NoError(t, err)
	assert.ErrorIs(t, resp.Error(), kerr.InvalidReplicaAssignment, "no replica goes to a decommissioned broker")

	// A roll of the remaining brokers does not count broker 5 as down.
	require.NoError(t, f.StopBroker(ctx, "local-a", 1, "roll"))
	require.NoError(t, f.StartBroker(ctx, "local-a", 1, "roll"))
	waitInSync(t, f, "local-a", 1, 1)

	// A host lost with replicas on it: the broker stays, dead, until its
	// replicas are moved away.
	require.NoError(t, f.InjectFault(ctx, "local-a", 4, terminate, "chaos"))
	state, err = f.BrokerState("local-a", 4)
	require.NoError(t, err)
	assert.Equal(t, localfleet.StateCrashed, state)
	assert.Empty(t, decommissioned(f, 4))
	drain(t, adm, 4, 1, 2, 3)
	state, err = f.BrokerState("local-a", 4)
	require.NoError(t, err)
	assert.Equal(t, localfleet.StateDecommissioned, state, "its last replica moved away")
	require.Len(t, decommissioned(f, 4), 1)
	assert.Equal(t, "client", decommissioned(f, 4)[0].Who, "who moved its last replica")

	st, err := f.Status("local-a")
	require.NoError(t, err)
	for _, b := range st.Brokers {
		if b.ID >= 4 {
			assert.Equal(t, localfleet.StateDecommissioned, b.State, "broker %d", b.ID)
		}
	}
	assert.Empty(t, f.Violations("local-a"))
}
