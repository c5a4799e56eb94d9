package activities_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/kafka"
)

// fakeControllers answers reads through a KRaft cluster's controllers.
type fakeControllers struct {
	quorums []fleet.Quorum // answered in turn, the last one for ever
	err     error
	ctls    []kafka.NodeEndpoint
	brokers []kafka.NodeEndpoint
	calls   int
}

func (f *fakeControllers) QuorumFromControllers(context.Context, fleet.ClusterSpec) (fleet.Quorum, error) {
	f.calls++
	if f.err != nil && f.calls == 1 {
		return fleet.Quorum{}, f.err
	}
	i := f.calls - 1
	if f.err != nil {
		i-- // the first call failed
	}
	return f.quorums[min(i, len(f.quorums)-1)], nil
}

func (f *fakeControllers) BrokersFromControllers(context.Context, fleet.ClusterSpec) ([]kafka.NodeEndpoint, error) {
	return f.brokers, nil
}

func (f *fakeControllers) ControllersFromControllers(context.Context, fleet.ClusterSpec) (string, []kafka.NodeEndpoint, error) {
	return "AAAAAAAAAAAAAAAAAAAAAA", f.ctls, nil
}

// controllerUnit is the activities over unit-a as a KRaft cluster whose
// controllers 3000-3002 run on i-c0..i-c2 (in us-east-1a..c).
func controllerUnit(t *testing.T) (*unit, *fakeEC2, *fakeControllers) {
	t.Helper()
	u := newUnit(t)
	u.spec.ZooKeeper = ""
	u.spec.KRaft = &fleet.KRaftSpec{QuorumBootstrap: []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"}}
	ec2 := newFakeEC2()
	for i, id := range []int32{3000, 3001, 3002} {
		inst := "i-c" + strconv.Itoa(i)
		az := "us-east-1" + string(rune('a'+i))
		u.spec.KRaft.Controllers = append(u.spec.KRaft.Controllers, fleet.ControllerSpec{ID: id, InstanceID: inst, Rack: az})
		ec2.instances[inst] = &cloud.Instance{ID: inst, State: "running", AZ: az, PrivateIP: "10.0.0." + strconv.Itoa(i), ImageID: "ami-0123456789abcdef0",
			InstanceType: "t3.medium", Cluster: "unit-a", Role: cloud.RoleController, BrokerID: -1,
			Tags: map[string]string{cloud.TagCluster: "unit-a", cloud.TagRole: cloud.RoleController, cloud.TagNodeID: strconv.Itoa(int(id))}}
	}
	ctl := &fakeControllers{ctls: []kafka.NodeEndpoint{{ID: 3000, Address: "127.0.0.1:1"}, {ID: 3001, Address: "127.0.0.1:2"}, {ID: 3002, Address: "127.0.0.1:3"}}}
	u.acts.Lifecycle, u.acts.Controllers = ec2, ctl
	return u, ec2, ctl
}

func (u *unit) controllerInput(node int32) activities.ControllerInput {
	return activities.ControllerInput{Spec: u.spec, Controller: node, Reason: "kfleet replace-controller op-1"}
}

func TestPlanControllerReplacement(t *testing.T) {
	u, ec2, _ := controllerUnit(t)
	var p activities.ControllerReplacementPlan
	require.NoError(t, u.exec(t, u.acts.PlanControllerReplacement, u.controllerInput(3001), &p))
	assert.Equal(t, "i-c1", p.Old)
	assert.True(t, p.Reachable())
	assert.Empty(t, p.Existing)
	assert.Equal(t, "us-east-1b", p.Launch.AZ)
	assert.Equal(t, "t3.medium", p.Launch.InstanceType)
	assert.Equal(t, "127.0.0.1:2", p.OldAddress)
	assert.Equal(t, "AAAAAAAAAAAAAAAAAAAAAA", p.KafkaClusterID)

	// Gone, with a new host launched by an earlier run: that one is the
	// replacement, and the template comes from a sibling.
	ec2.instances["i-c1"].State, ec2.instances["i-c1"].ImageID = "terminated", ""
	ec2.instances["i-later"] = &cloud.Instance{ID: "i-later", State: "running", AZ: "us-east-1b", Cluster: "unit-a", Role: cloud.RoleController,
		Tags: map[string]string{cloud.TagCluster: "unit-a", cloud.TagRole: cloud.RoleController, cloud.TagNodeID: "3001"}}
	require.NoError(t, u.exec(t, u.acts.PlanControllerReplacement, u.controllerInput(3001), &p))
	assert.False(t, p.Reachable())
	assert.Equal(t, "i-later", p.Existing)
	assert.Equal(t, "us-east-1b", p.Launch.AZ)

	// A ZooKeeper cluster has none to replace.
	zk := u.controllerInput(3001)
	zk.Spec.KRaft, zk.Spec.ZooKeeper = nil, "127.0.0.1:2181/kfleet/unit-a"
	requireErrorType(t, u.exec(t, u.acts.PlanControllerReplacement, zk, nil), activities.ErrTypeBadInput, true)
}

func TestLaunchControllerReplacementLaunchesOnce(t *testing.T) {
	u, ec2, _ := controllerUnit(t)
	in := activities.ControllerLaunchInput{ControllerInput: u.controllerInput(3001), Plan: activities.ControllerReplacementPlan{Old: "i-c1",
		Launch: activities.LaunchTemplate{AZ: "us-east-1b", ImageID: "ami-0123456789abcdef0", InstanceType: "t3.medium"}}}
	var first, again activities.Host
	require.NoError(t, u.exec(t, u.acts.LaunchControllerReplacement, in, &first))
	assert.Equal(t, activities.Host{InstanceID: "i-new1", AZ: "us-east-1b"}, first)
	launched := ec2.instances["i-new1"]
	assert.Equal(t, cloud.RoleController, launched.Role)
	assert.Equal(t, "3001", launched.Tags[cloud.TagNodeID])
	assert.Equal(t, "i-c1", launched.Tags[activities.TagReplaces])
	require.NoError(t, u.exec(t, u.acts.LaunchControllerReplacement, in, &again), "a retry")
	assert.Equal(t, "i-new1", again.InstanceID)
	assert.True(t, again.Adopted, "found by its tags")
	assert.Equal(t, []string{"launch i-new1 in us-east-1b"}, ec2.calls, "one launch, the old host left running")

	// Two live new hosts: a human decides.
	ec2.instances["i-new9"] = &cloud.Instance{ID: "i-new9", State: "running", Cluster: "unit-a", Role: cloud.RoleController,
		Tags: map[string]string{cloud.TagNodeID: "3001"}}
	requireErrorType(t, u.exec(t, u.acts.LaunchControllerReplacement, in, nil), activities.ErrTypeBadInput, true)
}

func TestConfigureReplacementControllerVoters(t *testing.T) {
	u, ec2, _ := controllerUnit(t)
	ec2.instances["i-new1"] = &cloud.Instance{ID: "i-new1", State: "running", PrivateIP: "10.0.9.9"}
	u.hosts.stdout[cloud.DocConfigureController] = "server.properties written\ncontrollerAddress=127.0.0.1:4444\n"
	u.spec.KRaft.MetadataVersion = "4.0-IV3"
	var addr string
	require.NoError(t, u.exec(t, u.acts.ConfigureReplacementController, activities.ControllerConfigInput{ControllerInput: u.controllerInput(3001),
		New: "i-new1", Rack: "us-east-1b", KafkaClusterID: "AAAAAAAAAAAAAAAAAAAAAA"}, &addr))
	assert.Equal(t, "127.0.0.1:4444", addr)
	require.NotEmpty(t, u.hosts.runs)
	last := u.hosts.runs[len(u.hosts.runs)-1]
	assert.Equal(t, "i-new1", last.instance)
	assert.Equal(t, cloud.DocConfigureController, last.document)
	sent := last.params
	assert.Equal(t, "3000@10.0.0.0:9093,3001@10.0.9.9:9093,3002@10.0.0.2:9093", sent[cloud.ParamQuorumVoters], "the new host for the node, the others' own")
	assert.Equal(t, "3001", sent[cloud.ParamNodeID])
	assert.Equal(t, "AAAAAAAAAAAAAAAAAAAAAA", sent[cloud.ParamKafkaClusterID])
	assert.Equal(t, "4.0-IV3", sent[cloud.ParamMetadataVersion])
}

func TestRetireControllerHost(t *testing.T) {
	u, ec2, _ := controllerUnit(t)
	in := activities.RetireControllerInput{ControllerInput: u.controllerInput(3001), Old: "i-c1", New: "i-new1"}
	var state string
	require.NoError(t, u.exec(t, u.acts.RetireControllerHost, in, &state))
	assert.Equal(t, "shutting-down", state)
	require.NoError(t, u.exec(t, u.acts.RetireControllerHost, in, &state), "a retry")
	assert.Equal(t, "shutting-down", state)
	assert.Equal(t, []string{"terminate i-c1"}, ec2.calls, "terminated once")
	in.Old = "i-new1"
	requireErrorType(t, u.exec(t, u.acts.RetireControllerHost, in, nil), activities.ErrTypeBadInput, true)
}

func TestWaitQuorumFormed(t *testing.T) {
	at := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	voter := func(id int32, caughtUp time.Time) fleet.QuorumReplica {
		return fleet.QuorumReplica{ID: id, LogEndOffset: 10, LastFetch: caughtUp, LastCaughtUp: caughtUp}
	}
	noLeader := fleet.Quorum{Leader: -1, Epoch: 0}
	twoVoters := fleet.Quorum{Leader: 3000, Epoch: 1, Voters: []fleet.QuorumReplica{voter(3000, at), voter(3001, at)}}
	lagging := fleet.Quorum{Leader: 3000, Epoch: 1, Voters: []fleet.QuorumReplica{voter(3000, at), voter(3001, at), voter(3002, at.Add(-time.Minute))}}
	formed := fleet.Quorum{Leader: 3001, Epoch: 2, Voters: []fleet.QuorumReplica{voter(3000, at), voter(3001, at), voter(3002, at.Add(-time.Second))}}
	u, _, ctl := controllerUnit(t)
	ctl.err = errors.New("dial tcp 127.0.0.1:1: connection refused")
	ctl.quorums = []fleet.Quorum{noLeader, twoVoters, lagging, formed}
	var got activities.QuorumFormed
	require.NoError(t, u.exec(t, u.acts.WaitQuorumFormed, activities.QuorumFormedInput{Cluster: "unit-a", QuorumBootstrap: []string{"127.0.0.1:1"},
		Voters: []int32{3002, 3000, 3001}}, &got))
	assert.Equal(t, activities.QuorumFormed{Leader: 3001, Epoch: 2, Voters: 3, CaughtUp: 3, Checks: 5}, got,
		"a failed read, no leader, two voters and a lagging one are waited out")
}
