package kafka

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/kfleet/kfleet/internal/fleet"
)

// kraftCluster is a kfake cluster of n brokers and an Admin on it.
func kraftCluster(t *testing.T, n int) (*kfake.Cluster, *Admin) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(n))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	a, err := Dial("kraft-a", c.ListenAddrs())
	require.NoError(t, err)
	t.Cleanup(a.Close)
	return c, a
}

// advertise makes kfake's ApiVersions also list keys it has no handler for
// (DescribeQuorum, UnregisterBroker), so that franz-go sends them and the
// test's ControlKey answers them. It takes kfake's own answer once and adds
// the keys to it. It must run before the Admin under test connects.
func advertise(t *testing.T, ctx context.Context, c *kfake.Cluster, keys ...kmsg.ApiVersionsResponseApiKey) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	require.NoError(t, err)
	base, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	cl.Close()
	require.NoError(t, err)
	c.ControlKey(int16(kmsg.ApiVersions), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := *base
		resp.ApiKeys = append(slices.Clone(base.ApiKeys), keys...)
		resp.Version = req.GetVersion()
		return &resp, nil, true
	})
}

func apiKey(key kmsg.Key, maxVersion int16) kmsg.ApiVersionsResponseApiKey {
	k := kmsg.NewApiVersionsResponseApiKey()
	k.ApiKey, k.MaxVersion = int16(key), maxVersion
	return k
}

func TestDescribeQuorumAgainstKfake(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	advertise(t, ctx, c, apiKey(kmsg.DescribeQuorum, 2))

	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	replica := func(id int32, leo int64, lag time.Duration) kmsg.DescribeQuorumResponseTopicPartitionReplicaState {
		r := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
		r.ReplicaID, r.LogEndOffset = id, leo
		r.LastFetchTimestamp = now.Add(-lag).UnixMilli()
		r.LastCaughtUpTimestamp = now.Add(-lag).UnixMilli()
		return r
	}
	var asked *kmsg.DescribeQuorumRequest
	answer := func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		asked = req.(*kmsg.DescribeQuorumRequest)
		resp := asked.ResponseKind().(*kmsg.DescribeQuorumResponse)
		p := kmsg.NewDescribeQuorumResponseTopicPartition()
		p.LeaderID, p.LeaderEpoch, p.HighWatermark = 3000, 12, 5000
		unknown := replica(3002, -1, 0)
		unknown.LastFetchTimestamp, unknown.LastCaughtUpTimestamp = -1, -1
		p.CurrentVoters = append(p.CurrentVoters, replica(3000, 5000, 0), replica(3001, 4990, time.Second), unknown)
		p.Observers = append(p.Observers, replica(1, 5000, 0))
		t := kmsg.NewDescribeQuorumResponseTopic()
		t.Topic = "__cluster_metadata"
		t.Partitions = append(t.Partitions, p)
		resp.Topics = append(resp.Topics, t)
		return resp, nil, true
	}
	c.ControlKey(int16(kmsg.DescribeQuorum), answer)

	a, err := Dial("kraft-a", c.ListenAddrs())
	require.NoError(t, err)
	t.Cleanup(a.Close)
	q, err := a.DescribeQuorum(ctx)
	require.NoError(t, err)
	require.NotNil(t, asked)
	assert.Equal(t, int16(2), asked.Version, "v2 where the cluster speaks it")
	require.Len(t, asked.Topics, 1)
	assert.Equal(t, "__cluster_metadata", asked.Topics[0].Topic)
	assert.Equal(t, int32(0), asked.Topics[0].Partitions[0].Partition)

	assert.Equal(t, int32(3000), q.Leader)
	assert.Equal(t, int32(12), q.Epoch)
	assert.Equal(t, int64(5000), q.HighWatermark)
	require.Len(t, q.Voters, 3)
	assert.Equal(t, fleet.QuorumReplica{ID: 3001, LogEndOffset: 4990, LastFetch: now.Add(-time.Second), LastCaughtUp: now.Add(-time.Second)}, q.Voters[1])
	assert.Equal(t, fleet.QuorumReplica{ID: 3002, LogEndOffset: -1}, q.Voters[2], "-1 timestamps are unknown")
	assert.Equal(t, []int32{1}, []int32{q.Observers[0].ID})

	// The rules read the snapshot as it came over the wire.
	ok, reason := fleet.QuorumSafeWithout(q, 3001, fleet.QuorumFetchTimeout)
	assert.False(t, ok, reason)
	assert.Contains(t, reason, "voter 3002 is log end unknown, never caught up")
}

func TestDescribeQuorumErrorsNameTheCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	advertise(t, ctx, c, apiKey(kmsg.DescribeQuorum, 2))
	c.ControlKey(int16(kmsg.DescribeQuorum), func(req kmsg.Request) (kmsg.Response, error, bool) {
		resp := req.(*kmsg.DescribeQuorumRequest).ResponseKind().(*kmsg.DescribeQuorumResponse)
		p := kmsg.NewDescribeQuorumResponseTopicPartition()
		p.ErrorCode = kerr.UnknownTopicOrPartition.Code
		p.ErrorMessage = kmsg.StringPtr("no quorum here")
		t := kmsg.NewDescribeQuorumResponseTopic()
		t.Topic = "__cluster_metadata"
		t.Partitions = append(t.Partitions, p)
		resp.Topics = append(resp.Topics, t)
		return resp, nil, true
	})
	a, err := Dial("kraft-b", c.ListenAddrs())
	require.NoError(t, err)
	t.Cleanup(a.Close)
	_, err = a.DescribeQuorum(ctx)
	require.Error(t, err)
	assert.True(t, errors.Is(err, kerr.UnknownTopicOrPartition))
	assert.Contains(t, err.Error(), "cluster kraft-b: describe quorum of __cluster_metadata-0")
	assert.Contains(t, err.Error(), "no quorum here")
}

func TestBrokerFencingAgainstKfake(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, a := kraftCluster(t, 3)

	// kfake answers DescribeCluster v2 itself: nobody fenced.
	got, err := a.BrokerFencing(ctx)
	require.NoError(t, err)
	require.Len(t, got, 3)
	for _, b := range got {
		assert.False(t, b.Fenced)
	}

	// A broker that stopped heartbeating, as a controller reports it.
	var asked *kmsg.DescribeClusterRequest
	c.ControlKey(int16(kmsg.DescribeCluster), func(req kmsg.Request) (kmsg.Response, error, bool) {
		asked = req.(*kmsg.DescribeClusterRequest)
		resp := asked.ResponseKind().(*kmsg.DescribeClusterResponse)
		for _, id := range []int32{3, 1, 2} {
			b := kmsg.NewDescribeClusterResponseBroker()
			b.NodeID, b.Host, b.Port, b.IsFenced = id, "127.0.0.1", 9092, id == 2
			resp.Brokers = append(resp.Brokers, b)
		}
		return resp, nil, true
	})
	got, err = a.BrokerFencing(ctx)
	require.NoError(t, err)
	require.NotNil(t, asked)
	assert.True(t, asked.IncludeFencedBrokers)
	assert.Equal(t, int16(2), asked.Version)
	assert.Equal(t, []fleet.BrokerFencing{{ID: 1}, {ID: 2, Fenced: true}, {ID: 3}}, got)
	assert.Equal(t, []int32{2}, fleet.JudgeFencing(got, nil, []int32{1, 2, 3}).Unclean)
}

func TestUnregisterBrokerAgainstKfake(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	advertise(t, ctx, c, apiKey(kmsg.UnregisterBroker, 0))
	registered := map[int32]bool{4: true}
	c.ControlKey(int16(kmsg.UnregisterBroker), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		r := req.(*kmsg.UnregisterBrokerRequest)
		resp := r.ResponseKind().(*kmsg.UnregisterBrokerResponse)
		switch {
		case r.BrokerID == 9:
			resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			resp.ErrorMessage = kmsg.StringPtr("not allowed")
		case !registered[r.BrokerID]:
			resp.ErrorCode = kerr.BrokerIDNotRegistered.Code
			resp.ErrorMessage = kmsg.StringPtr("Broker ID 4 not registered")
		default:
			delete(registered, r.BrokerID)
		}
		return resp, nil, true
	})
	a, err := Dial("kraft-c", c.ListenAddrs())
	require.NoError(t, err)
	t.Cleanup(a.Close)

	require.NoError(t, a.UnregisterBroker(ctx, 4))
	assert.False(t, registered[4])
	require.NoError(t, a.UnregisterBroker(ctx, 4), "already unregistered is done")
	err = a.UnregisterBroker(ctx, 9)
	require.Error(t, err)
	assert.True(t, errors.Is(err, kerr.ClusterAuthorizationFailed))
	assert.Contains(t, err.Error(), "cluster kraft-c: unregister node 9")
	assert.Contains(t, err.Error(), "not allowed")
}

func TestMetadataVersionAgainstKfake(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, a := kraftCluster(t, 2)

	current, nodes, err := a.MetadataVersionSupport(ctx)
	require.NoError(t, err)
	require.Len(t, nodes, 2)
	require.True(t, nodes[0].Known, "kfake reports its supported metadata.version")
	assert.Positive(t, current, "kfake finalizes metadata.version")
	maxLevel := nodes[0].MaxLevel
	assert.GreaterOrEqual(t, maxLevel, current)

	// kfake's own UpdateFeatures: a downgrade is refused with the
	// broker's reason, a level past the supported max too.
	err = a.UpdateMetadataVersion(ctx, current-1, false)
	var refused *FeatureRefusedError
	require.ErrorAs(t, err, &refused)
	assert.True(t, errors.Is(err, fleet.ErrRefused))
	assert.True(t, errors.Is(err, kerr.InvalidUpdateVersion))
	assert.Equal(t, "downgrade not allowed", refused.Message)
	assert.Contains(t, err.Error(), "cluster kraft-a: metadata.version")

	err = a.UpdateMetadataVersion(ctx, maxLevel+1, false)
	require.ErrorAs(t, err, &refused)
	assert.True(t, errors.Is(err, kerr.FeatureUpdateFailed))
	assert.Equal(t, "level above supported max", refused.Message)

	// kfake finalizes at its supported max (33 for franz-go's Stable
	// table), so the success path it can show is an update to the level in
	// force, validate-only and for real.
	require.NoError(t, a.UpdateMetadataVersion(ctx, current, true))
	require.NoError(t, a.UpdateMetadataVersion(ctx, current, false))
	again, _, err := a.MetadataVersionSupport(ctx)
	require.NoError(t, err)
	assert.Equal(t, current, again)

	// INVALID_UPDATE_VERSION from a controller that knows a ghost: the
	// message naming the node reaches the caller.
	c.ControlKey(int16(kmsg.UpdateFeatures), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.UpdateFeaturesRequest)
		resp := r.ResponseKind().(*kmsg.UpdateFeaturesResponse)
		resp.ErrorCode = kerr.InvalidUpdateVersion.Code
		resp.ErrorMessage = kmsg.StringPtr("Invalid update version 21 for feature metadata.version. Broker 4 only supports versions 7-14")
		return resp, nil, true
	})
	err = a.UpdateMetadataVersion(ctx, 21, false)
	require.ErrorAs(t, err, &refused)
	assert.Equal(t, int16(21), refused.Level)
	assert.Contains(t, err.Error(), "Broker 4 only supports versions 7-14")
}

// UpdateFeatures v0 and v1 answer per feature, not at the top level.
func TestUpdateMetadataVersionV1Results(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(int16(kmsg.UpdateFeatures), 1)
	a, err := Dial("kraft-d", c.ListenAddrs(), kgo.MaxVersions(vs))
	require.NoError(t, err)
	t.Cleanup(a.Close)
	var version int16 = -1
	c.ControlKey(int16(kmsg.UpdateFeatures), func(req kmsg.Request) (kmsg.Response, error, bool) {
		r := req.(*kmsg.UpdateFeaturesRequest)
		version = r.Version
		resp := r.ResponseKind().(*kmsg.UpdateFeaturesResponse)
		res := kmsg.NewUpdateFeaturesResponseResult()
		res.Feature = r.FeatureUpdates[0].Feature
		res.ErrorCode = kerr.InvalidUpdateVersion.Code
		res.ErrorMessage = kmsg.StringPtr("Controller 3002 only supports versions 7-19")
		resp.Results = append(resp.Results, res)
		return resp, nil, true
	})
	err = a.UpdateMetadataVersion(ctx, 21, false)
	assert.Equal(t, int16(1), version)
	var refused *FeatureRefusedError
	require.ErrorAs(t, err, &refused)
	assert.Equal(t, "Controller 3002 only supports versions 7-19", refused.Message)
	assert.Equal(t, "cluster kraft-d: metadata.version 21 refused: INVALID_UPDATE_VERSION: Controller 3002 only supports versions 7-19", err.Error())
}

// A fenced ghost (registered, not in the spec, not answering) comes back
// unknown and outside the spec, and CheckFinalize calls it out.
func TestMetadataVersionSupportFindsAGhost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(2))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	c.ControlKey(int16(kmsg.DescribeCluster), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := req.(*kmsg.DescribeClusterRequest).ResponseKind().(*kmsg.DescribeClusterResponse)
		for _, id := range []int32{0, 1, 4} {
			b := kmsg.NewDescribeClusterResponseBroker()
			b.NodeID, b.Host, b.Port, b.IsFenced = id, "127.0.0.1", 9092, id == 4
			resp.Brokers = append(resp.Brokers, b)
		}
		return resp, nil, true
	})
	p := NewPool()
	t.Cleanup(p.Close)
	spec := fleet.ClusterSpec{ID: "kraft-e", Bootstrap: c.ListenAddrs(),
		Brokers: []fleet.BrokerSpec{{ID: 0, InstanceID: "i-0"}, {ID: 1, InstanceID: "i-1"}}}
	current, nodes, err := p.MetadataVersionSupport(ctx, spec)
	require.NoError(t, err)
	require.Len(t, nodes, 3)
	assert.True(t, nodes[0].Known && nodes[0].InSpec && nodes[1].Known && nodes[1].InSpec)
	assert.Equal(t, fleet.NodeSupport{ID: 4}, nodes[2], "the ghost: unknown, not in the spec")

	target := fleet.MetadataVersion{Name: "next", Level: current + 1}
	v := fleet.CheckFinalize(current, target, nodes)
	assert.Equal(t, []int32{4}, v.Ghosts)
	assert.Contains(t, v.Err().Error(), "broker 4 did not report what it supports and is a ghost")
}

// A cluster that speaks DescribeCluster below v2 (Kafka before 4.0) cannot
// say who is fenced: an error, never "nobody is fenced".
func TestBrokerFencingNeedsV2(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	vs := kversion.Stable()
	vs.SetMaxKeyVersion(int16(kmsg.DescribeCluster), 1)
	a, err := Dial("kraft-f", c.ListenAddrs(), kgo.MaxVersions(vs))
	require.NoError(t, err)
	t.Cleanup(a.Close)
	_, err = a.BrokerFencing(ctx)
	require.Error(t, err)
	assert.Equal(t, "cluster kraft-f: describe cluster: answered v1, fencing needs v2 (Kafka 4.0 or later)", err.Error())
}
