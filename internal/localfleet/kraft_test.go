package localfleet_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/go-zookeeper/zk"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// kraftTiming is fast KRaft timing: fencing after 500ms of silence, an
// election 300ms after a crashed leader's last fetch.
var kraftTiming = localfleet.KRaftTiming{
	Heartbeat:    100 * time.Millisecond,
	Session:      500 * time.Millisecond,
	FetchTimeout: 200 * time.Millisecond,
	Election:     100 * time.Millisecond,
}

// startKRaft starts a fleet with one 3-controller, 3-broker KRaft cluster
// and waits until its brokers are unfenced.
func startKRaft(t *testing.T, k localfleet.KRaftConfig) *localfleet.Fleet {
	t.Helper()
	cc := testCluster("local-k")
	k.Controllers = 3
	k.Timing = kraftTiming
	cc.KRaft = &k
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{cc}})
	waitFenced(t, f, "local-k", map[int32]bool{1: false, 2: false, 3: false})
	return f
}

// waitFenced waits until the brokers' fenced states are as want.
func waitFenced(t *testing.T, f *localfleet.Fleet, cluster string, want map[int32]bool) {
	t.Helper()
	require.Eventually(t, func() bool {
		st, err := f.Status(cluster)
		require.NoError(t, err)
		for _, b := range st.Brokers {
			if w, ok := want[b.ID]; ok && b.Fenced != w {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond, "fenced states %v", want)
}

// brokerRequest sends req straight to the broker at seed index i (no
// routing by kgo).
func brokerRequest[R kmsg.Response](t *testing.T, cl *kgo.Client, req kmsg.Request) R {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	require.NoError(t, err)
	return resp.(R)
}

func describeQuorum(t *testing.T, cl *kgo.Client) kmsg.DescribeQuorumResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	req.Topics = append(req.Topics, rt)
	resp := brokerRequest[*kmsg.DescribeQuorumResponse](t, cl, req)
	require.Equal(t, int16(0), resp.ErrorCode)
	require.Len(t, resp.Topics, 1)
	require.Len(t, resp.Topics[0].Partitions, 1)
	return resp.Topics[0].Partitions[0]
}

func describeCluster(t *testing.T, cl *kgo.Client, fenced bool, endpointType int8) *kmsg.DescribeClusterResponse {
	t.Helper()
	req := kmsg.NewPtrDescribeClusterRequest()
	req.IncludeFencedBrokers, req.EndpointType = fenced, endpointType
	resp := brokerRequest[*kmsg.DescribeClusterResponse](t, cl, req)
	require.Equal(t, int16(0), resp.ErrorCode)
	return resp
}

// client is a kgo client whose only seed is addr.
func client(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

func kraftEvents(f *localfleet.Fleet, cluster string, kind localfleet.EventKind) []localfleet.Event {
	var out []localfleet.Event
	for _, ev := range f.Audit(cluster) {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

func TestIntegrationKRaftQuorumShape(t *testing.T) {
	f := startKRaft(t, localfleet.KRaftConfig{})
	ep := f.Endpoints().Clusters["local-k"]
	cl := client(t, ep.Bootstrap[0])

	p := describeQuorum(t, cl)
	assert.Equal(t, int32(3000), p.LeaderID)
	assert.Equal(t, int32(1), p.LeaderEpoch)
	require.Len(t, p.CurrentVoters, 3)
	for _, v := range p.CurrentVoters {
		assert.Positive(t, v.LogEndOffset, "voter %d", v.ReplicaID)
		assert.Positive(t, v.LastCaughtUpTimestamp, "voter %d", v.ReplicaID)
		assert.LessOrEqual(t, p.HighWatermark, p.CurrentVoters[0].LogEndOffset)
	}
	assert.Positive(t, p.HighWatermark)
	observers := []int32{}
	for _, o := range p.Observers {
		observers = append(observers, o.ReplicaID)
	}
	assert.ElementsMatch(t, []int32{1, 2, 3}, observers, "the brokers observe the metadata log")

	// DescribeCluster: the brokers, unfenced; endpoint type 2: the
	// controllers with the active one.
	dc := describeCluster(t, cl, true, 1)
	require.Len(t, dc.Brokers, 3)
	for _, b := range dc.Brokers {
		assert.False(t, b.IsFenced, "broker %d", b.NodeID)
	}
	kafkaID, err := f.ClusterID("local-k")
	require.NoError(t, err)
	assert.Len(t, kafkaID, 22, "a Kafka cluster id: a UUID in URL-safe base64")
	assert.Equal(t, kafkaID, dc.ClusterID)
	ctl := describeCluster(t, cl, false, 2)
	assert.Equal(t, int32(3000), ctl.ControllerID)
	assert.Len(t, ctl.Brokers, 3)

	// ApiVersions: metadata.version finalized at 3.9-IV0 (level 21); a
	// 3.9 broker supports up to 21.
	av := brokerRequest[*kmsg.ApiVersionsResponse](t, cl, kmsg.NewPtrApiVersionsRequest())
	i := slices.IndexFunc(av.FinalizedFeatures, func(ff kmsg.ApiVersionsResponseFinalizedFeature) bool { return ff.Name == "metadata.version" })
	require.GreaterOrEqual(t, i, 0, "finalized features %v", av.FinalizedFeatures)
	assert.Equal(t, int16(21), av.FinalizedFeatures[i].MaxVersionLevel)
	i = slices.IndexFunc(av.SupportedFeatures, func(sf kmsg.ApiVersionsResponseSupportedFeature) bool { return sf.Name == "metadata.version" })
	require.GreaterOrEqual(t, i, 0)
	assert.Equal(t, int16(21), av.SupportedFeatures[i].MaxVersion)

	// The controllers answer too: the leader describes the quorum, a
	// follower says it is not the leader.
	q, err := f.Quorum("local-k")
	require.NoError(t, err)
	require.Len(t, q.Voters, 3)
	leader := client(t, q.Voters[0].Address)
	assert.Equal(t, int32(3000), describeQuorum(t, leader).LeaderID)
	cav := brokerRequest[*kmsg.ApiVersionsResponse](t, leader, kmsg.NewPtrApiVersionsRequest())
	keys := map[int16]int16{}
	for _, k := range cav.ApiKeys {
		keys[k.ApiKey] = k.MaxVersion
	}
	assert.Equal(t, map[int16]int16{18: 4, 55: 2, 57: 2, 60: 2, 64: 0}, keys, "a controller serves the controller-facing APIs only")
	require.Len(t, cav.FinalizedFeatures, 1)
	assert.Equal(t, int16(21), cav.FinalizedFeatures[0].MaxVersionLevel)
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic, rt.Partitions = "__cluster_metadata", []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	req.Topics = append(req.Topics, rt)
	fr := brokerRequest[*kmsg.DescribeQuorumResponse](t, client(t, q.Voters[1].Address), req)
	assert.Equal(t, kerr.NotLeaderForPartition.Code, fr.Topics[0].Partitions[0].ErrorCode)
	require.Len(t, fr.Nodes, 3, "v2 lists the voters' endpoints")

	st, err := f.Status("local-k")
	require.NoError(t, err)
	require.NotNil(t, st.ActiveController)
	assert.Equal(t, int32(3000), *st.ActiveController)
	assert.Len(t, kraftEvents(f, "local-k", "kraft-registered"), 3)
	assert.Len(t, kraftEvents(f, "local-k", "kraft-unfenced"), 3)
	assert.Empty(t, f.Violations("local-k"))
}

func TestIntegrationKRaftFencing(t *testing.T) {
	f := startKRaft(t, localfleet.KRaftConfig{})
	ctx := testContext(t)
	cl := client(t, f.Endpoints().Clusters["local-k"].Bootstrap[0])

	// A crash: fenced after the session timeout, without WantShutdown.
	crashed := time.Now()
	require.NoError(t, f.Crash(ctx, "local-k", 2, "test"))
	st, _ := f.Status("local-k")
	assert.False(t, st.Brokers[1].Fenced, "not fenced before the session timeout")
	waitFenced(t, f, "local-k", map[int32]bool{2: true})
	// The session runs from the last heartbeat, up to one interval
	// before the crash.
	assert.GreaterOrEqual(t, time.Since(crashed), kraftTiming.Session-kraftTiming.Heartbeat)
	fenced := kraftEvents(f, "local-k", "kraft-fenced")
	require.Len(t, fenced, 1)
	assert.Equal(t, int32(2), fenced[0].Broker)
	assert.Contains(t, fenced[0].Detail, "unclean: no WantShutdown")
	ids := func(fencedToo bool) map[int32]bool {
		out := map[int32]bool{}
		for _, b := range describeCluster(t, cl, fencedToo, 1).Brokers {
			out[b.NodeID] = b.IsFenced
		}
		return out
	}
	assert.Equal(t, map[int32]bool{1: false, 2: true, 3: false}, ids(true))
	assert.Equal(t, map[int32]bool{1: false, 3: false}, ids(false))

	// Back: registered again, unfenced once caught up.
	require.NoError(t, f.StartBroker(ctx, "local-k", 2, "test"))
	waitFenced(t, f, "local-k", map[int32]bool{2: false})

	// A controlled stop: WantShutdown, then fenced cleanly.
	require.NoError(t, f.StopBroker(ctx, "local-k", 3, "test"))
	want := kraftEvents(f, "local-k", "kraft-want-shutdown")
	require.Len(t, want, 1)
	assert.Equal(t, int32(3), want[0].Broker)
	fenced = kraftEvents(f, "local-k", "kraft-fenced")
	require.Len(t, fenced, 2)
	assert.Equal(t, int32(3), fenced[1].Broker)
	assert.Contains(t, fenced[1].Detail, "clean: after WantShutdown")
	st, _ = f.Status("local-k")
	assert.True(t, st.Brokers[2].Fenced)
	require.NoError(t, f.StartBroker(ctx, "local-k", 3, "test"))
	waitFenced(t, f, "local-k", map[int32]bool{3: false})
}

// updateMV asks for metadata.version level; kgo sends v2, where the
// error is the response's own.
func updateMV(t *testing.T, cl *kgo.Client, level int16) (int16, string) {
	t.Helper()
	req := kmsg.NewPtrUpdateFeaturesRequest()
	u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
	u.Feature, u.MaxVersionLevel, u.UpgradeType = "metadata.version", level, 1
	req.FeatureUpdates = append(req.FeatureUpdates, u)
	resp := brokerRequest[*kmsg.UpdateFeaturesResponse](t, cl, req)
	require.Equal(t, int16(2), resp.Version)
	return resp.ErrorCode, aws.ToString(resp.ErrorMessage)
}

func TestIntegrationKRaftFeaturesGhost(t *testing.T) {
	// A 3.9 cluster still at metadata.version 3.8-IV0; broker 3 goes back
	// to 3.8.1 binaries and is then lost for good: a registered ghost.
	f := startKRaft(t, localfleet.KRaftConfig{MetadataVersion: "3.8-IV0"})
	ctx := testContext(t)
	ep := f.Endpoints().Clusters["local-k"]
	ssm := ssmClient(f)
	instance := ep.Brokers[2].InstanceID
	inv := runCommand(ctx, t, ssm, cloud.DocStopBroker, instance, "downgrade/3", map[string][]string{cloud.ParamGracePeriodSeconds: {"30"}})
	require.Equal(t, "Success", string(inv.Status))
	inv = runCommand(ctx, t, ssm, cloud.DocStartBroker, instance, "downgrade/3", map[string][]string{cloud.ParamVersion: {"3.8.1"}})
	require.Equal(t, "Success", string(inv.Status), aws.ToString(inv.StandardErrorContent))
	waitFenced(t, f, "local-k", map[int32]bool{3: false})
	require.NoError(t, f.InjectFault(ctx, "local-k", 3, localfleet.Fault{Kind: localfleet.FaultTerminateInstance}, "test"))
	waitFenced(t, f, "local-k", map[int32]bool{3: true})

	cl := client(t, ep.Bootstrap[0])
	code, msg := updateMV(t, cl, 21)
	assert.Equal(t, kerr.InvalidUpdateVersion.Code, code)
	assert.Contains(t, msg, "broker 3 (registered but not running, Kafka 3.8.1)")

	// A level above every 3.9 node's is refused naming a live broker.
	code, msg = updateMV(t, cl, 25)
	assert.Equal(t, kerr.InvalidUpdateVersion.Code, code)
	assert.Contains(t, msg, "does not support metadata.version 4.0-IV3")

	// UnregisterBroker removes the ghost; the upgrade then succeeds.
	unreg := kmsg.NewPtrUnregisterBrokerRequest()
	unreg.BrokerID = 3
	ur := brokerRequest[*kmsg.UnregisterBrokerResponse](t, cl, unreg)
	assert.Equal(t, int16(0), ur.ErrorCode)
	ur = brokerRequest[*kmsg.UnregisterBrokerResponse](t, cl, unreg)
	assert.Equal(t, kerr.BrokerIDNotRegistered.Code, ur.ErrorCode)

	code, msg = updateMV(t, cl, 21)
	assert.Equal(t, int16(0), code, msg)
	q, err := f.Quorum("local-k")
	require.NoError(t, err)
	assert.Equal(t, "3.9-IV0", q.MetadataVersion)
	av := brokerRequest[*kmsg.ApiVersionsResponse](t, cl, kmsg.NewPtrApiVersionsRequest())
	i := slices.IndexFunc(av.FinalizedFeatures, func(ff kmsg.ApiVersionsResponseFinalizedFeature) bool { return ff.Name == "metadata.version" })
	require.GreaterOrEqual(t, i, 0)
	assert.Equal(t, int16(21), av.FinalizedFeatures[i].MaxVersionLevel)
	assert.Positive(t, av.FinalizedFeaturesEpoch)

	// metadata.version with another feature: refused as a whole.
	mixed := kmsg.NewPtrUpdateFeaturesRequest()
	for _, name := range []string{"metadata.version", "transaction.version"} {
		u := kmsg.NewUpdateFeaturesRequestFeatureUpdate()
		u.Feature, u.MaxVersionLevel, u.UpgradeType = name, 21, 1
		mixed.FeatureUpdates = append(mixed.FeatureUpdates, u)
	}
	mr := brokerRequest[*kmsg.UpdateFeaturesResponse](t, cl, mixed)
	assert.Equal(t, kerr.InvalidUpdateVersion.Code, mr.ErrorCode)
	assert.Contains(t, aws.ToString(mr.ErrorMessage), "metadata.version only on its own")

	// A running broker unregistered registers again at its next heartbeat.
	registered := len(kraftEvents(f, "local-k", "kraft-registered"))
	unreg.BrokerID = 1
	ur = brokerRequest[*kmsg.UnregisterBrokerResponse](t, cl, unreg)
	assert.Equal(t, int16(0), ur.ErrorCode)
	require.Eventually(t, func() bool { return len(kraftEvents(f, "local-k", "kraft-registered")) == registered+1 }, 5*time.Second, 20*time.Millisecond)
	waitFenced(t, f, "local-k", map[int32]bool{1: false})

	// A downgrade needs its flag.
	code, msg = updateMV(t, cl, 20)
	assert.Equal(t, kerr.InvalidUpdateVersion.Code, code)
	assert.Contains(t, msg, "downgrades are not allowed")
	assert.Len(t, kraftEvents(f, "local-k", "kraft-unregistered"), 2)
	assert.Len(t, kraftEvents(f, "local-k", "kraft-feature"), 1)
}

func TestIntegrationKRaftControllerFaults(t *testing.T) {
	f := startKRaft(t, localfleet.KRaftConfig{})
	ctx := testContext(t)
	cl := client(t, f.Endpoints().Clusters["local-k"].Bootstrap[0])

	// The leader crashes: a new leader at a new epoch.
	require.NoError(t, f.CrashController(ctx, "local-k", 3000, "test"))
	require.Eventually(t, func() bool {
		p := describeQuorum(t, cl)
		return p.LeaderID != 3000 && p.LeaderID >= 0 && p.LeaderEpoch == 2
	}, 5*time.Second, 20*time.Millisecond)
	assert.Empty(t, f.Violations("local-k"), "one controller of three down keeps a majority")

	// A second controller stopped while one is down: quorum lost.
	q, err := f.Quorum("local-k")
	require.NoError(t, err)
	require.NoError(t, f.StopController(ctx, "local-k", q.Leader, "test"))
	v := f.Violations("local-k")
	require.Len(t, v, 1)
	assert.Equal(t, localfleet.ViolationQuorumLost, v[0].Kind)
	time.Sleep(500 * time.Millisecond)
	q, err = f.Quorum("local-k")
	require.NoError(t, err)
	assert.Equal(t, int32(-1), q.Leader, "no leader without a majority")

	// Both back: a leader again.
	require.NoError(t, f.StartController(ctx, "local-k", 3000, "test"))
	require.NoError(t, f.StartController(ctx, "local-k", 3001, "test"))
	require.Eventually(t, func() bool {
		q, err := f.Quorum("local-k")
		require.NoError(t, err)
		return q.Leader >= 0 && q.CaughtUp == 3
	}, 5*time.Second, 20*time.Millisecond)
}

func TestIntegrationKRaftLagAndPartition(t *testing.T) {
	f := startKRaft(t, localfleet.KRaftConfig{})
	cl := client(t, f.Endpoints().Clusters["local-k"].Bootstrap[0])

	require.NoError(t, f.InjectQuorumFault("local-k", localfleet.QuorumFaultLagVoter, 3002, "test"))
	time.Sleep(3 * kraftTiming.FetchTimeout)
	p := describeQuorum(t, cl)
	var lagged, leader kmsg.DescribeQuorumResponseTopicPartitionReplicaState
	for _, v := range p.CurrentVoters {
		switch v.ReplicaID {
		case 3002:
			lagged = v
		case p.LeaderID:
			leader = v
		}
	}
	assert.Less(t, lagged.LogEndOffset, leader.LogEndOffset)
	assert.Greater(t, leader.LastCaughtUpTimestamp-lagged.LastCaughtUpTimestamp, kraftTiming.FetchTimeout.Milliseconds())
	q, err := f.Quorum("local-k")
	require.NoError(t, err)
	assert.Equal(t, 2, q.CaughtUp)

	// Stopping the other follower now leaves one caught-up voter.
	require.NoError(t, f.StopController(testContext(t), "local-k", 3001, "test"))
	require.Len(t, f.Violations("local-k"), 1)
	require.NoError(t, f.StartController(testContext(t), "local-k", 3001, "test"))
	require.NoError(t, f.InjectQuorumFault("local-k", localfleet.QuorumFaultHeal, -1, "test"))

	// The leader is cut off: the rest elect a new one; it resigns.
	require.NoError(t, f.InjectQuorumFault("local-k", localfleet.QuorumFaultPartitionLeader, -1, "test"))
	require.Eventually(t, func() bool {
		p := describeQuorum(t, cl)
		return p.LeaderID != 3000 && p.LeaderID >= 0 && p.LeaderEpoch == 2
	}, 5*time.Second, 20*time.Millisecond)
	assert.NotEmpty(t, kraftEvents(f, "local-k", "kraft-resigned"))
	require.NoError(t, f.InjectQuorumFault("local-k", localfleet.QuorumFaultHeal, -1, "test"))
	require.Eventually(t, func() bool {
		q, err := f.Quorum("local-k")
		require.NoError(t, err)
		return q.CaughtUp == 3
	}, 5*time.Second, 20*time.Millisecond)
}

func TestIntegrationKRaftHTTPAndZooKeeper(t *testing.T) {
	cc := testCluster("local-k")
	cc.KRaft = &localfleet.KRaftConfig{Controllers: 3, Timing: kraftTiming}
	f, z := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{cc, testCluster("local-z")}})
	base := f.Endpoints().API
	call := func(method, path string, out any) int {
		t.Helper()
		req, err := http.NewRequestWithContext(testContext(t), method, base+path, nil)
		require.NoError(t, err)
		req.Header.Set(localfleet.WhoHeader, "operator")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		if out != nil {
			if q, ok := out.(*localfleet.QuorumStatus); ok {
				*q = localfleet.QuorumStatus{} // omitted fields must not keep old values
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
		}
		return resp.StatusCode
	}

	// A KRaft cluster registers nothing in ZooKeeper; the ZooKeeper
	// cluster beside it does as before.
	ep := f.Endpoints()
	assert.Empty(t, ep.Clusters["local-k"].ZooKeeper)
	assert.Len(t, ep.Clusters["local-k"].Controllers, 3)
	conn, _, err := zk.Connect([]string{z.Addr}, 4*time.Second, zk.WithLogger(discardLogger{}))
	require.NoError(t, err)
	defer conn.Close()
	exists, _, err := conn.Exists("/kfleet/local-k")
	require.NoError(t, err)
	assert.False(t, exists, "no chroot for the KRaft cluster")
	ids, _, err := conn.Children("/kfleet/local-z/brokers/ids")
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"1", "2", "3"}, ids)

	var q localfleet.QuorumStatus
	require.Equal(t, http.StatusOK, call("GET", "/v1/clusters/local-k/quorum", &q))
	assert.Equal(t, int32(3000), q.Leader)
	assert.Equal(t, "3.9-IV0", q.MetadataVersion)
	require.Len(t, q.Voters, 3)

	require.Equal(t, http.StatusOK, call("POST", "/v1/clusters/local-k/controllers/3001/faults/lag-voter", &q))
	assert.True(t, q.Voters[1].Lagged)
	require.Equal(t, http.StatusOK, call("POST", "/v1/clusters/local-k/quorum/faults/heal", &q))
	assert.False(t, q.Voters[1].Lagged)
	require.Equal(t, http.StatusOK, call("POST", "/v1/clusters/local-k/controllers/3002/stop", &q))
	assert.Equal(t, localfleet.StateStopped, q.Voters[2].State)
	require.Equal(t, http.StatusOK, call("POST", "/v1/clusters/local-k/controllers/3002/start", &q))
	assert.Equal(t, localfleet.StateRunning, q.Voters[2].State)
	require.Equal(t, http.StatusOK, call("POST", "/v1/clusters/local-k/controllers/3002/faults/crash", &q))
	assert.Equal(t, localfleet.StateCrashed, q.Voters[2].State)
	require.Equal(t, http.StatusOK, call("POST", "/v1/clusters/local-k/quorum/faults/partition-leader", &q))
	assert.True(t, q.Voters[0].Partitioned)

	var apiErr struct{ Error string }
	assert.Equal(t, http.StatusNotFound, call("POST", "/v1/clusters/local-k/controllers/7/stop", &apiErr))
	assert.Equal(t, http.StatusBadRequest, call("POST", "/v1/clusters/local-k/controllers/3000/faults/lag-voter", &apiErr), "the leader cannot lag")
	assert.Equal(t, http.StatusBadRequest, call("POST", "/v1/clusters/local-k/quorum/faults/melt", &apiErr))
	assert.Equal(t, http.StatusBadRequest, call("GET", "/v1/clusters/local-z/quorum", &apiErr))
	assert.Contains(t, apiErr.Error, "not a KRaft cluster")

	audit := f.Audit("local-k")
	var who []string
	for _, ev := range audit {
		if ev.Broker == 3002 {
			who = append(who, string(ev.Kind)+"/"+ev.Who)
		}
	}
	assert.Equal(t, []string{"controller-stop/operator", "controller-stopped/operator", "controller-start/operator",
		"controller-started/operator", "controller-crash/operator"}, who)
	assert.Empty(t, f.Violations("local-k"))
}

func TestIntegrationKRaftStartWithoutQuorum(t *testing.T) {
	f := startKRaft(t, localfleet.KRaftConfig{})
	ctx := testContext(t)
	require.NoError(t, f.StopBroker(ctx, "local-k", 3, "test"))
	require.NoError(t, f.CrashController(ctx, "local-k", 3001, "test"))
	require.NoError(t, f.CrashController(ctx, "local-k", 3002, "test"))
	require.Len(t, f.Violations("local-k"), 1, "the second crash lost the quorum")

	// The leader hears from no majority: it resigns after the fetch
	// timeout (check-quorum), and no election can win.
	require.Eventually(t, func() bool {
		q, err := f.Quorum("local-k")
		require.NoError(t, err)
		return q.Leader == -1
	}, 5*time.Second, 20*time.Millisecond)
	began := time.Now()
	err := f.StartBroker(ctx, "local-k", 3, "test")
	require.ErrorContains(t, err, "no active controller")
	assert.GreaterOrEqual(t, time.Since(began), kraftTiming.Session)
	st, _ := f.Status("local-k")
	assert.Equal(t, localfleet.StateFailed, st.Brokers[2].State)
	assert.NotEmpty(t, kraftEvents(f, "local-k", "kraft-no-quorum"), "elections without a majority")

	require.NoError(t, f.StartController(ctx, "local-k", 3001, "test"))
	require.Eventually(t, func() bool {
		q, err := f.Quorum("local-k")
		require.NoError(t, err)
		return q.Leader >= 0
	}, 5*time.Second, 20*time.Millisecond)
	require.NoError(t, f.StartBroker(ctx, "local-k", 3, "test"))
	waitFenced(t, f, "local-k", map[int32]bool{3: false})
}
