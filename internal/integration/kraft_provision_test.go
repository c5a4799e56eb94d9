package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// KRaft provisioning and a controller's host replacement (issue #15),
// judged by the fleet: its EC2 audit (what was launched and terminated,
// per host), its cluster audit (controllers added, a controller's host
// replaced) and its violations (a quorum-lost moment above all).

// kraftProvisionStack is a fleet with local-a (a ZooKeeper cluster, so a
// taken id is refused) whose EC2 and provisioned clusters are quick.
func kraftProvisionStack(t *testing.T, ec2 localfleet.EC2Timing) *devstack.Stack {
	return startStackWith(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}), func(o *devstack.StackOptions) {
		provisionFleet(ec2)(o)
		o.Fleet.EC2.ControllerTiming = fastKRaft
		o.Health, o.NotifyOut = kraftPolicy, io.Discard
	})
}

func kraftOrdersPlan(id string) fleet.ClusterPlan {
	p := ordersPlan(id, 3)
	p.KafkaVersion, p.KRaft = "4.0.0", &fleet.KRaftPlan{Controllers: 3}
	p.Health = kraftPolicy
	return p
}

// kraftLaunches counts the fleet's EC2 launches and terminations for
// cluster by host: "controller 3001", "broker 2", "zookeeper 1".
func kraftLaunches(f *localfleet.Fleet, cluster string) (launched, terminated map[string]int) {
	launched, terminated = map[string]int{}, map[string]int{}
	hostOf := map[string]string{}
	for _, e := range f.EC2Audit() {
		if e.Cluster != cluster {
			continue
		}
		switch e.Kind {
		case localfleet.EventInstanceLaunched:
			host := fmt.Sprintf("broker %d", e.Broker)
			for role, tag := range map[string]string{"zookeeper": cloud.TagZooKeeperID, "controller": cloud.TagNodeID} {
				if _, rest, ok := strings.Cut(e.Detail, tag+"="); ok {
					host = role + " " + strings.Fields(strings.TrimRight(rest, "]"))[0]
				}
			}
			launched[host]++
			hostOf[e.Instance] = host
		case localfleet.EventInstanceTerminated:
			terminated[hostOf[e.Instance]]++
		}
	}
	return launched, terminated
}

// TestIntegrationKRaftProvisionAndReplaceController creates a KRaft cluster
// of 3 controllers and 3 brokers through kfleet (a bad KRaft plan refused
// first, with nothing launched), produces and consumes through it with a
// real client, then replaces a controller's host under a produce load:
// one new instance, the old one terminated, the new controller caught up,
// never a quorum-lost moment, nothing acknowledged lost.
func TestIntegrationKRaftProvisionAndReplaceController(t *testing.T) {
	t.Parallel()
	starter := buildStarterAsync(t) // the refusal below is asked through the CLI
	stack := kraftProvisionStack(t, quickEC2)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const cluster = "korders"

	for _, b := range []struct {
		edit func(*fleet.ClusterPlan)
		want string
	}{
		{func(p *fleet.ClusterPlan) { p.KRaft.Controllers = 4 }, "kraft.controllers 4: want 3 or 5"},
		{func(p *fleet.ClusterPlan) { p.KafkaVersion = "3.7.1" }, "a new KRaft cluster runs 3.9 or later"},
		{func(p *fleet.ClusterPlan) { p.KRaft.MetadataVersion = "4.1-IV0" }, "Kafka 4.0.0 does not support it"},
	} {
		plan := kraftOrdersPlan(cluster)
		b.edit(&plan)
		_, err := entity.Provision(ctx, stack.Client, plan, "alice")
		require.ErrorIs(t, err, fleet.ErrRefused, b.want)
		assert.ErrorContains(t, err, b.want)
	}
	launched, _ := kraftLaunches(stack.Fleet, cluster)
	require.Empty(t, launched, "a refused plan launches nothing")

	plan := kraftOrdersPlan(cluster)
	began := time.Now()
	_, err := entity.Provision(ctx, stack.Client, plan, "alice")
	require.NoError(t, err)
	var phases []string
	res, err := entity.FollowProvision(ctx, stack.Client, cluster, 100*time.Millisecond, func(p workflows.ProvisionProgress) {
		if !slices.Contains(phases, p.Phase) {
			phases = append(phases, p.Phase)
		}
	})
	require.NoError(t, err)
	t.Logf("KRaft cluster of 3 controllers and 3 brokers created in %s; phases %q", time.Since(began).Round(time.Millisecond), phases)
	assert.Equal(t, 6, res.Hosts)
	assert.Equal(t, 3, res.Volumes)
	require.Len(t, res.QuorumBootstrap, 3)

	// The fleet's account: one launch per host, no ensemble.
	launched, _ = kraftLaunches(stack.Fleet, cluster)
	assert.Equal(t, map[string]int{"controller 3000": 1, "controller 3001": 1, "controller 3002": 1, "broker 1": 1, "broker 2": 1, "broker 3": 1}, launched)
	q, err := stack.Fleet.Quorum(cluster)
	require.NoError(t, err)
	require.Len(t, q.Voters, 3)
	assert.GreaterOrEqual(t, q.Leader, int32(3000))
	assert.Equal(t, 3, q.CaughtUp, "every voter caught up")
	assert.Equal(t, "4.0-IV3", q.MetadataVersion)
	for _, v := range q.Voters {
		assert.Equal(t, plan.ControllerZone(v.ID), zoneOf(t, stack, v.InstanceID), "controller %d's host is in its zone", v.ID)
	}

	// The entity's spec is a KRaft one.
	es, err := entity.ClusterStatus(ctx, stack.Client, cluster)
	require.NoError(t, err)
	spec := es.Spec
	require.Equal(t, fleet.ModeKRaft, spec.Mode())
	assert.Empty(t, spec.ZooKeeper)
	assert.Equal(t, []int32{3000, 3001, 3002}, spec.ControllerIDs())
	assert.Equal(t, res.QuorumBootstrap, spec.KRaft.QuorumBootstrap)
	assert.Equal(t, "4.0-IV3", spec.KRaft.MetadataVersion)
	for _, c := range spec.KRaft.Controllers {
		i := slices.IndexFunc(q.Voters, func(v localfleet.VoterStatus) bool { return v.ID == c.ID })
		require.GreaterOrEqual(t, i, 0)
		assert.Equal(t, q.Voters[i].InstanceID, c.InstanceID, "controller %d's host in the spec is the fleet's", c.ID)
	}
	watching(ctx, t, stack, cluster, 3)

	// A real client produces and consumes through it.
	cl, err := kgo.NewClient(kgo.SeedBrokers(spec.Bootstrap...), kgo.DefaultProduceTopic("events"), kgo.RequiredAcks(kgo.AllISRAcks()))
	require.NoError(t, err)
	defer cl.Close()
	_, err = kadm.NewClient(cl).CreateTopic(ctx, 6, 3, nil, "events")
	require.NoError(t, err)
	for i := range 200 {
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Key: []byte("pre-" + strconv.Itoa(i)), Value: []byte("x")}).FirstErr())
	}
	assert.Equal(t, int64(200), readKeys(ctx, t, spec.Bootstrap, "events", "pre-", 200), "what was produced is consumed")

	// Replace a follower controller's host under load.
	node := int32(3000)
	for _, v := range q.Voters {
		if v.ID != q.Leader {
			node = v.ID
			break
		}
	}
	old, _ := spec.Controller(node)
	l := startKRaftLoad(t, spec.Bootstrap)
	time.Sleep(500 * time.Millisecond)
	auditBefore := len(stack.Fleet.Audit(cluster))
	raw, _ := json.Marshal(workflows.ReplaceControllerParams{Node: node})
	began = time.Now()
	op, err := entity.Request(ctx, stack.Client, cluster, workflows.Request{Kind: workflows.OpReplaceController, RequestedBy: "integration-test", Params: raw})
	require.NoError(t, err)
	rep, done, err := entity.Follow[workflows.ReplaceControllerResult](ctx, stack.Client, cluster, op.ID, 200*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err)
	require.Equal(t, workflows.StatusSucceeded, done.Status, done.Error)
	took := time.Since(began)
	time.Sleep(500 * time.Millisecond)
	l.halt()
	t.Logf("controller %d replaced in %s: %s (gate: %s); load: %d acknowledged, %d failed", node, took.Round(time.Millisecond),
		done.Outcome, rep.Gate.Reason, l.acked.Load(), l.failed.Load())

	// The fleet's account: one new instance, the old one terminated.
	host := "controller " + strconv.Itoa(int(node))
	require.Eventually(t, func() bool {
		_, terminated := kraftLaunches(stack.Fleet, cluster)
		return terminated[host] == 1
	}, 10*time.Second, 100*time.Millisecond, "its old instance is terminated (shutting down takes a while)")
	launched, terminated := kraftLaunches(stack.Fleet, cluster)
	assert.Equal(t, 2, launched[host], "one new instance for %s", host)
	assert.Equal(t, old.InstanceID, rep.Old)
	assert.NotEqual(t, rep.Old, rep.New)
	assert.True(t, rep.Stopped, "a reachable controller is stopped first")
	replaced := 0
	for _, e := range stack.Fleet.Audit(cluster)[auditBefore:] {
		if e.Kind == localfleet.EventControllerHostReplaced {
			replaced++
			assert.Equal(t, node, e.Broker)
			assert.Equal(t, rep.New, e.Instance)
		}
	}
	assert.Equal(t, 1, replaced, "the fleet saw the controller move host once")
	noViolations(t, stack, cluster) // no quorum-lost moment above all
	q, err = stack.Fleet.Quorum(cluster)
	require.NoError(t, err)
	assert.Equal(t, 3, q.CaughtUp, "every voter caught up after the replacement")
	i := slices.IndexFunc(q.Voters, func(v localfleet.VoterStatus) bool { return v.ID == node })
	require.GreaterOrEqual(t, i, 0)
	assert.Equal(t, rep.New, q.Voters[i].InstanceID)
	assert.Equal(t, plan.ControllerZone(node), zoneOf(t, stack, rep.New), "the new host is in the controller's zone")

	// The entity's spec names the new host and its address.
	es, err = entity.ClusterStatus(ctx, stack.Client, cluster)
	require.NoError(t, err)
	c, ok := es.Spec.Controller(node)
	require.True(t, ok)
	assert.Equal(t, rep.New, c.InstanceID)
	assert.Contains(t, es.Spec.KRaft.QuorumBootstrap, rep.Address)
	assert.Len(t, es.Spec.KRaft.QuorumBootstrap, 3)

	// Nothing acknowledged was lost, and the brokers never noticed.
	assert.Positive(t, l.acked.Load())
	assert.Zero(t, l.failed.Load(), "a controller's host replacement fails no produce")
	assert.Equal(t, l.acked.Load(), readKeys(ctx, t, spec.Bootstrap, "events", "load-", l.acked.Load()))

	// With another follower stopped, the quorum cannot spare the leader:
	// its replacement is refused before anything is touched. It is asked
	// for at once: the first gate read may still see the stopped voter
	// caught up (within a fetch timeout of the leader), the second not.
	other := int32(3000)
	for _, id := range spec.ControllerIDs() {
		if id != node && id != q.Leader {
			other = id
		}
	}
	require.NoError(t, stack.Fleet.StopController(ctx, cluster, other, "integration-test"))
	require.Eventually(t, func() bool {
		q, err := stack.Fleet.Quorum(cluster)
		return err == nil && q.CaughtUp == 2
	}, 20*time.Second, 100*time.Millisecond, "controller %d falls behind once stopped", other)
	out, code := runStarter(t, <-starter, "replace-controller", "--address", stack.Temporal.Addr, "--cluster", cluster,
		"--node", strconv.Itoa(int(q.Leader)), "--requested-by", "cli-test", "--wait")
	assert.Equal(t, 1, code, "a refused replacement is a failed operation: %s", out)
	assert.Contains(t, out, "refused, nothing touched")
	t.Logf("starter replace-controller --node %d: exit %d: %s", q.Leader, code, strings.TrimSpace(out))
	launched2, terminated2 := kraftLaunches(stack.Fleet, cluster)
	assert.Equal(t, launched, launched2, "a refused replacement launches nothing")
	assert.Equal(t, terminated, terminated2, "a refused replacement terminates nothing")
	noViolations(t, stack, cluster) // the refusal took nothing down: the quorum kept its majority

	// Deleting it (forced: a topic remains) terminates every host it has
	// — its controllers' too, the replaced one's new host among them —
	// and deletes its volumes; no ZooKeeper is asked.
	// The stopped follower's host is then lost behind kfleet's back: its
	// replacement stops nothing (the host is gone), and the gate asks
	// about the others, who are caught up.
	otherSpec, _ := spec.Controller(other)
	_, err = fleetEC2(stack).TerminateInstance(ctx, otherSpec.InstanceID)
	require.NoError(t, err)
	raw, _ = json.Marshal(workflows.ReplaceControllerParams{Node: other})
	op, err = entity.Request(ctx, stack.Client, cluster, workflows.Request{Kind: workflows.OpReplaceController, RequestedBy: "integration-test", Params: raw})
	require.NoError(t, err)
	lost, lostOp, err := entity.Follow[workflows.ReplaceControllerResult](ctx, stack.Client, cluster, op.ID, 200*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err)
	require.Equal(t, workflows.StatusSucceeded, lostOp.Status, lostOp.Error)
	assert.False(t, lost.Stopped, "a lost host is not stopped")
	assert.Contains(t, []string{"shutting-down", "terminated", activities.InstanceNotFound}, lost.OldState)
	t.Logf("lost controller %d replaced: %s", other, lostOp.Outcome)
	q, err = stack.Fleet.Quorum(cluster)
	require.NoError(t, err)
	assert.Equal(t, 3, q.CaughtUp, "every voter caught up after the lost one's replacement")
	noViolations(t, stack, cluster)
	id, err := entity.Propose(ctx, stack.Client, deleteAction(cluster), []string{"bob"}, "kdel")
	require.NoError(t, err)
	ans, err := entity.Approve(ctx, stack.Client, id, workflows.ApprovalDecision{By: "bob", Approve: true, Force: true})
	require.NoError(t, err)
	require.Equal(t, workflows.ApprovalApproved, ans.Status, ans.Error)
	_, deleted, _ := entity.Follow[workflows.DeleteClusterResult](ctx, stack.Client, cluster, ans.Submitted.OperationID, 200*time.Millisecond, func(entity.Progress) {})
	require.Equal(t, workflows.StatusSucceeded, deleted.Status, deleted.Error)
	t.Logf("deleted: %s", deleted.Outcome)
	live, err := fleetEC2(stack).FindInstances(ctx, cloud.InstanceFilter{Cluster: cluster, States: []string{"pending", "running", "stopping", "stopped"}})
	require.NoError(t, err)
	assert.Empty(t, live, "no host of the cluster is left")
	vols, err := fleetEC2(stack).FindVolumes(ctx, cloud.VolumeFilter{Cluster: cluster, Role: cloud.RoleKafkaData, States: []string{"creating", "available", "in-use"}})
	require.NoError(t, err)
	assert.Empty(t, vols, "no data volume of the cluster is left")
	_, terminated = kraftLaunches(stack.Fleet, cluster)
	want := map[string]int{"controller 3000": 1, "controller 3001": 1, "controller 3002": 1, "broker 1": 1, "broker 2": 1, "broker 3": 1}
	want[host] = 2                                   // the replaced host and its replacement
	want["controller "+strconv.Itoa(int(other))] = 2 // the lost host and its replacement
	assert.Equal(t, want, terminated, "every host terminated once")

	recordHistories(ctx, t, stack.Client, map[string]string{
		workflows.ProvisionWorkflowID(cluster): "provision_kraft.json",
		done.WorkflowID:                        "replace_controller.json",
		deleted.WorkflowID:                     "delete_cluster_kraft.json",
	})
}

// zoneOf is an instance's zone, as the fleet's EC2 describes it.
func zoneOf(t *testing.T, stack *devstack.Stack, instanceID string) string {
	t.Helper()
	inst, err := fleetEC2(stack).DescribeInstance(context.Background(), instanceID)
	require.NoError(t, err)
	return inst.AZ
}

// readKeys counts the distinct keys with prefix read from topic from the
// start, until want are read or ctx ends.
func readKeys(ctx context.Context, t *testing.T, bootstrap []string, topic, prefix string, want int64) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	require.NoError(t, err)
	defer cl.Close()
	seen := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for int64(len(seen)) < want && ctx.Err() == nil && time.Now().Before(deadline) {
		fctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		fs := cl.PollFetches(fctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if strings.HasPrefix(string(r.Key), prefix) {
				seen[string(r.Key)] = true
			}
		})
	}
	return int64(len(seen))
}

// kraftLoad produces unique records to events with acks=all until
// halted, counting those acknowledged and those that failed.
type kraftLoad struct {
	acked, failed atomic.Int64
	stop          context.CancelFunc
	wg            sync.WaitGroup
}

func startKRaftLoad(t *testing.T, bootstrap []string) *kraftLoad {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap...), kgo.DefaultProduceTopic("events"), kgo.RequiredAcks(kgo.AllISRAcks()))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	l := &kraftLoad{stop: cancel}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("load-" + strconv.Itoa(i)), Value: []byte("y")}).FirstErr(); err != nil {
				if ctx.Err() == nil {
					l.failed.Add(1)
				}
				continue
			}
			l.acked.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	t.Cleanup(func() { l.halt(); cl.Close() })
	return l
}

func (l *kraftLoad) halt() { l.stop(); l.wg.Wait() }
