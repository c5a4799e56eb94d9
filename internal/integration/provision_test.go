package integration_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/go-zookeeper/zk"
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

// provisionFleet is a fleet with local-a (so an id in use can be refused)
// whose EC2 changes states quickly, and whose provisioned clusters' brokers
// start as fast as fastFleet's.
func provisionFleet(ec2 localfleet.EC2Timing) func(*devstack.StackOptions) {
	return func(o *devstack.StackOptions) {
		o.Fleet.EC2 = localfleet.EC2Config{Timing: ec2,
			ClusterTiming: localfleet.Timing{ControlledShutdown: 100 * time.Millisecond, Startup: 150 * time.Millisecond, CatchUp: 300 * time.Millisecond}}
		o.Health = fleet.HealthPolicy{Interval: 2 * time.Second, RecoveryGrace: 2 * time.Second}
	}
}

var quickEC2 = localfleet.EC2Timing{Pending: 300 * time.Millisecond, Stopping: 100 * time.Millisecond, ShuttingDown: 200 * time.Millisecond,
	VolumeCreating: 200 * time.Millisecond, Attaching: 100 * time.Millisecond, Detaching: 100 * time.Millisecond}

func ordersPlan(id string, brokers int) fleet.ClusterPlan {
	return fleet.ClusterPlan{ID: id, Brokers: brokers, AvailabilityZones: []string{"us-east-1a", "us-east-1b", "us-east-1c"},
		KafkaVersion: "3.7.1", VolumeGiB: 100, Health: fleet.HealthPolicy{Interval: 2 * time.Second, RecoveryGrace: 2 * time.Second}}
}

// ec2Resources counts, from the fleet's EC2 audit, what was launched and
// created for cluster: instance launches by host ("broker 2", "zookeeper
// 1") and volume creations by broker.
type ec2Resources struct {
	launches map[string]int
	volumes  map[int32]int
}

func ec2Of(f *localfleet.Fleet, cluster string) ec2Resources {
	r := ec2Resources{launches: map[string]int{}, volumes: map[int32]int{}}
	for _, e := range f.EC2Audit() {
		if e.Cluster != cluster {
			continue
		}
		switch e.Kind {
		case localfleet.EventInstanceLaunched:
			host := fmt.Sprintf("broker %d", e.Broker)
			if strings.Contains(e.Detail, cloud.TagRole+"="+cloud.RoleZooKeeper) {
				_, rest, _ := strings.Cut(e.Detail, cloud.TagZooKeeperID+"=")
				host = "zookeeper " + strings.Fields(strings.TrimRight(rest, "]"))[0]
			}
			r.launches[host]++
		case localfleet.EventVolumeCreated:
			r.volumes[e.Broker]++
		}
	}
	return r
}

// assertOneOfEach holds the cluster to one launch per host and one volume
// per broker (the fleet's EC2 audit), and no duplicate-instance violation.
func assertOneOfEach(t *testing.T, f *localfleet.Fleet, cluster string, brokers int) {
	t.Helper()
	r := ec2Of(f, cluster)
	want := map[string]int{"zookeeper 1": 1, "zookeeper 2": 1, "zookeeper 3": 1}
	wantVols := map[int32]int{}
	for b := 1; b <= brokers; b++ {
		want[fmt.Sprintf("broker %d", b)] = 1
		wantVols[int32(b)] = 1
	}
	assert.Equal(t, want, r.launches, "one instance launched per host")
	assert.Equal(t, wantVols, r.volumes, "one data volume created per broker")
	for _, v := range f.Violations(cluster) {
		assert.NotEqual(t, localfleet.ViolationDuplicateInstance, v.Kind, v.Detail)
	}
}

// TestIntegrationProvisionCreateAndRoll creates a 3-broker cluster from
// nothing through the product (refusing bad plans first, with nothing
// launched), judges it by the fleet — one host per broker and per
// ZooKeeper node, one volume per broker, racks = zones, registrations
// under the chroot, the safe defaults as DescribeConfigs reports them —
// then rolls it through its new entity.
func TestIntegrationProvisionCreateAndRoll(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	stack := startStackWith(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}), provisionFleet(quickEC2))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Bad plans start nothing.
	bad := []struct {
		edit func(*fleet.ClusterPlan)
		want string
	}{
		{func(p *fleet.ClusterPlan) { p.Brokers = 2 }, "fewer than the default replication factor 3"},
		{func(p *fleet.ClusterPlan) { p.AvailabilityZones[2] = "us-east-1z" }, `availability zone "us-east-1z": unknown to EC2 here`},
		{func(p *fleet.ClusterPlan) { p.InstanceType = "x9.huge" }, `instance type "x9.huge": unknown to EC2 here`},
		{func(p *fleet.ClusterPlan) { p.VolumeGiB = 10 }, "under plan standard's minimum of 100 GiB"},
		{func(p *fleet.ClusterPlan) { p.ID = "local-a" }, `cluster id "local-a" is in use`},
	}
	for _, b := range bad {
		plan := ordersPlan("orders", 3)
		b.edit(&plan)
		_, err := entity.Provision(ctx, stack.Client, plan, "alice")
		require.ErrorIs(t, err, fleet.ErrRefused, b.want)
		assert.ErrorContains(t, err, b.want)
	}
	for _, e := range stack.Fleet.EC2Audit() {
		assert.NotEqual(t, localfleet.EventInstanceLaunched, e.Kind, "a refused plan launched %s", e.Detail)
	}

	plan := ordersPlan("orders", 3)
	started := time.Now()
	adm, err := entity.Provision(ctx, stack.Client, plan, "alice")
	require.NoError(t, err)
	assert.Equal(t, workflows.ProvisionWorkflowID("orders"), adm.WorkflowID)
	again, err := entity.Provision(ctx, stack.Client, plan, "bob")
	require.NoError(t, err, "the same plan again follows the running provisioning")
	assert.Equal(t, "alice", again.RequestedBy)
	var phases []string
	res, err := entity.FollowProvision(ctx, stack.Client, "orders", 100*time.Millisecond, func(p workflows.ProvisionProgress) {
		if !slices.Contains(phases, p.Phase) {
			phases = append(phases, p.Phase)
		}
	})
	require.NoError(t, err)
	t.Logf("3-broker cluster created in %s; phases seen %q", time.Since(started).Round(time.Millisecond), phases)
	assert.Equal(t, 6, res.Hosts)
	assert.Equal(t, 3, res.Volumes)
	assert.Zero(t, res.Adopted)
	assertOneOfEach(t, stack.Fleet, "orders", 3)

	// The fleet runs it: every broker on its host, in its zone.
	st, err := stack.Fleet.Status("orders")
	require.NoError(t, err)
	require.Len(t, st.Brokers, 3)
	eps := stack.Fleet.Endpoints().Clusters["orders"]
	for _, b := range eps.Brokers {
		assert.Equal(t, plan.BrokerZone(b.ID), b.Rack, "broker %d's rack is its zone", b.ID)
	}
	for _, b := range st.Brokers {
		assert.Equal(t, localfleet.StateRunning, b.State, "broker %d", b.ID)
	}
	conn, _, err := zk.Connect([]string{stack.ZooKeeper.Addr}, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	ids, _, err := conn.Children("/kfleet/orders/brokers/ids")
	require.NoError(t, err)
	slices.Sort(ids)
	assert.Equal(t, []string{"1", "2", "3"}, ids)

	// Registered: its entity knows what was launched.
	es, err := entity.ClusterStatus(ctx, stack.Client, "orders")
	require.NoError(t, err)
	assert.Equal(t, stack.ZooKeeper.Addr+"/kfleet/orders", es.Spec.ZooKeeper)
	require.Len(t, es.Spec.Brokers, 3)
	for _, b := range es.Spec.Brokers {
		assert.NotEmpty(t, b.InstanceID)
		assert.NotEmpty(t, b.MetricsURL)
		assert.Equal(t, plan.BrokerZone(b.ID), b.Rack)
	}
	require.NotNil(t, es.Protocol)
	assert.Equal(t, "3.7.1", es.Protocol.KafkaVersion)

	// What any Kafka client sees of the brokers' configuration.
	cl, err := kgo.NewClient(kgo.SeedBrokers(es.Spec.Bootstrap...))
	require.NoError(t, err)
	defer cl.Close()
	rcs, err := kadm.NewClient(cl).DescribeBrokerConfigs(ctx, 1, 2, 3)
	require.NoError(t, err)
	for _, rc := range rcs {
		got := map[string]string{}
		for _, c := range rc.Configs {
			if c.Value != nil {
				got[c.Key] = *c.Value
			}
		}
		var id int32
		_, _ = fmt.Sscan(rc.Name, &id)
		assert.Empty(t, fleet.ConfigMismatches(fleet.BrokerConfig(id, plan.BrokerZone(id), es.Spec.ZooKeeper), got), "broker %d", id)
	}

	// Roll it.
	watching(ctx, t, stack, "orders", 3)
	before := len(stack.Fleet.Audit("orders"))
	op, err := entity.Request(ctx, stack.Client, "orders", restartReq("integration-test"))
	require.NoError(t, err)
	roll, err := entity.FollowOperation(ctx, stack.Client, "orders", op.ID, 200*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err)
	require.Len(t, roll.Brokers, 3)
	stops, starts := stopsAndStarts(stack.Fleet.Audit("orders")[before:])
	assert.Equal(t, map[int32]int{1: 1, 2: 1, 3: 1}, stops)
	assert.Equal(t, map[int32]int{1: 1, 2: 1, 3: 1}, starts)
	noViolations(t, stack, "orders")

	recordHistories(ctx, t, stack.Client, map[string]string{workflows.ProvisionWorkflowID("orders"): "provision_3_brokers.json"})
}

// TestIntegrationProvisionSurvivesWorkerKills creates a cluster while its
// only worker is killed with SIGKILL at random moments (a new one started
// each time): no host or volume is made twice (the fleet's EC2 audit and
// its duplicate-instance violation), each host got one configure and one
// start command, and the cluster ends registered and healthy.
func TestIntegrationProvisionSurvivesWorkerKills(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	rng, _ := chaosRand(t)
	// States last long enough for kills to land inside launches and
	// waits.
	slow := localfleet.EC2Timing{Pending: 1500 * time.Millisecond, Stopping: 200 * time.Millisecond, ShuttingDown: 300 * time.Millisecond,
		VolumeCreating: time.Second, Attaching: 500 * time.Millisecond, Detaching: 200 * time.Millisecond}
	stack := startStackWith(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}), provisionFleet(slow))
	workers := startWorkerProcesses(t, stack, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	plan := ordersPlan("crashy", 3)
	_, err := entity.Provision(ctx, stack.Client, plan, "chaos")
	require.NoError(t, err)
	done := make(chan error, 1)
	moved := make(chan string, 100)
	var res workflows.ProvisionResult
	go func() {
		var err error
		res, err = entity.FollowProvision(ctx, stack.Client, "crashy", 100*time.Millisecond, func(p workflows.ProvisionProgress) {
			moved <- strings.Join(workflows.ProvisionLines(p), "; ")
		})
		done <- err
	}()
	// A kill once the provisioning moved since the last one, at a random
	// moment after: kills land in every phase, not all in the first.
	const maxKills = 5
	kills, ready := 0, false
	// The next kill's moment is drawn once and kept until it comes: progress
	// arriving meanwhile must not put it off (it arrives every poll).
	nextKill := time.After(time.Duration(200+rng.IntN(800)) * time.Millisecond)
	for end := false; !end; {
		select {
		case err := <-done:
			require.NoError(t, err, "worker logs in %s", workers.logs)
			end = true
		case line := <-moved:
			t.Logf("progress: %s", line)
			ready = true
		case <-nextKill:
			nextKill = time.After(time.Duration(200+rng.IntN(800)) * time.Millisecond)
			if ready && kills < maxKills {
				workers.killAndRestart(0)
				kills++
				ready = false
				t.Logf("kill %d", kills)
			}
		}
	}
	t.Logf("%d kills; created with %d hosts, %d volumes, %d adopted", kills, res.Hosts, res.Volumes, res.Adopted)
	require.Positive(t, kills, "the provisioning ended before any kill")
	assertOneOfEach(t, stack.Fleet, "crashy", 3)
	for b, docs := range stack.Fleet.CommandCounts("crashy") {
		assert.Equal(t, 1, docs[cloud.DocConfigureBroker], "broker %d: configure commands", b)
		assert.Equal(t, 1, docs[cloud.DocStartBroker], "broker %d: start commands", b)
	}
	st, err := stack.Fleet.Status("crashy")
	require.NoError(t, err)
	require.Len(t, st.Brokers, 3)
	for _, b := range st.Brokers {
		assert.Equal(t, localfleet.StateRunning, b.State, "broker %d", b.ID)
	}
	watching(ctx, t, stack, "crashy", 3)
	es, err := entity.ClusterStatus(ctx, stack.Client, "crashy")
	require.NoError(t, err)
	assert.Empty(t, es.Losses, "no broker lost")
	noViolations(t, stack, "crashy")
}

// TestIntegrationDeleteCluster deletes a provisioned cluster: refused
// without a second person, refused (touching nothing) while a topic
// remains, then forced by its approver: hosts terminated, volumes deleted,
// the chroot gone, the entity ended.
func TestIntegrationDeleteCluster(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	stack := startStackWith(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}), provisionFleet(quickEC2))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	_, err := entity.Provision(ctx, stack.Client, ordersPlan("doomed", 3), "alice")
	require.NoError(t, err)
	_, err = entity.FollowProvision(ctx, stack.Client, "doomed", 100*time.Millisecond, func(workflows.ProvisionProgress) {})
	require.NoError(t, err)
	watching(ctx, t, stack, "doomed", 3)
	es, err := entity.ClusterStatus(ctx, stack.Client, "doomed")
	require.NoError(t, err)
	cl, err := kgo.NewClient(kgo.SeedBrokers(es.Spec.Bootstrap...))
	require.NoError(t, err)
	defer cl.Close()
	_, err = kadm.NewClient(cl).CreateTopic(ctx, 3, 3, nil, "orders")
	require.NoError(t, err)

	_, err = entity.Request(ctx, stack.Client, "doomed", workflows.Request{Kind: workflows.OpDeleteCluster, RequestedBy: "alice"})
	require.ErrorIs(t, err, fleet.ErrRefused)
	assert.ErrorContains(t, err, "needs a second person's approval")

	approveDelete := func(force bool) workflows.Operation {
		t.Helper()
		id, err := entity.Propose(ctx, stack.Client, deleteAction("doomed"), []string{"bob"}, fmt.Sprintf("del-%t", force))
		require.NoError(t, err)
		_, err = entity.Approve(ctx, stack.Client, id, workflows.ApprovalDecision{By: "alice", Approve: true})
		require.ErrorIs(t, err, fleet.ErrRefused, "the requester cannot approve")
		ans, err := entity.Approve(ctx, stack.Client, id, workflows.ApprovalDecision{By: "bob", Approve: true, Force: force})
		require.NoError(t, err)
		require.Equal(t, workflows.ApprovalApproved, ans.Status, ans.Error)
		_, op, _ := entity.Follow[workflows.DeleteClusterResult](ctx, stack.Client, "doomed", ans.Submitted.OperationID, 200*time.Millisecond, func(entity.Progress) {})
		return op
	}
	refused := approveDelete(false)
	assert.Equal(t, workflows.StatusFailed, refused.Status)
	assert.Contains(t, refused.Error, "deletion refused, nothing touched: 1 topic(s) and 0 tenant(s) remain (topic orders)")
	for _, e := range stack.Fleet.EC2Audit() {
		assert.NotEqual(t, localfleet.EventInstanceTerminated, e.Kind, "a refused deletion terminated %s", e.Detail)
	}

	forcedAt := time.Now()
	deleted := approveDelete(true)
	require.Equal(t, workflows.StatusSucceeded, deleted.Status, deleted.Error)
	assert.Equal(t, "bob", deleted.ApprovedBy)
	t.Logf("%s", deleted.Outcome)

	// The fleet's account: every host terminated, every volume deleted.
	hosts, vols := 0, 0
	for _, e := range stack.Fleet.EC2Audit() {
		if e.Cluster != "doomed" {
			continue
		}
		switch e.Kind {
		case localfleet.EventInstanceTerminated:
			hosts++
		case localfleet.EventVolumeDeleted:
			vols++
		}
	}
	assert.Equal(t, 6, hosts, "3 brokers' and 3 ZooKeeper nodes' hosts terminated")
	assert.Equal(t, 3, vols, "3 data volumes deleted")
	conn, _, err := zk.Connect([]string{stack.ZooKeeper.Addr}, 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	require.Eventually(t, func() bool {
		ok, _, err := conn.Exists("/kfleet/doomed")
		return err == nil && !ok
	}, 10*time.Second, 100*time.Millisecond, "the chroot is gone")
	require.Eventually(t, func() bool {
		ok, err := entity.Registered(ctx, stack.Client, "doomed")
		return err == nil && !ok
	}, 20*time.Second, 200*time.Millisecond, "the entity ended")
	_, err = entity.Request(ctx, stack.Client, "doomed", restartReq("late"))
	assert.Error(t, err, "a deleted cluster takes no request")
	final, err := entity.ClusterStatus(ctx, stack.Client, "doomed")
	require.NoError(t, err, "a closed entity still answers its status")
	assert.Empty(t, final.Losses, "brokers the deletion took down are no losses")
	for _, op := range final.History {
		assert.NotEqual(t, workflows.OpRecovery, op.Kind, "nothing recovered a deleted broker")
	}
	recordHistories(ctx, t, stack.Client, map[string]string{
		deleted.WorkflowID:                    "delete_cluster_forced.json",
		workflows.ClusterWorkflowID("doomed"): "cluster_deleted.json",
	})

	// The id is free again: the same plan creates a new cluster — new
	// hosts and volumes (never the terminated ones EC2 remembers for the
	// first run's tokens), and none of the old one's data.
	again, err := entity.Provision(ctx, stack.Client, ordersPlan("doomed", 3), "carol")
	require.NoError(t, err)
	res, err := entity.FollowProvision(ctx, stack.Client, "doomed", 100*time.Millisecond, func(workflows.ProvisionProgress) {})
	require.NoError(t, err, "%s", again.WorkflowID)
	assert.Equal(t, 6, res.Hosts)
	assert.Zero(t, res.Adopted, "nothing of the deleted cluster is adopted")
	es, err = entity.ClusterStatus(ctx, stack.Client, "doomed")
	require.NoError(t, err)
	cl2, err := kgo.NewClient(kgo.SeedBrokers(es.Spec.Bootstrap...))
	require.NoError(t, err)
	defer cl2.Close()
	topics, err := kadm.NewClient(cl2).ListTopics(ctx)
	require.NoError(t, err)
	assert.False(t, topics.Has("orders"), "the new cluster holds none of the old one's topics")

	// A forced deletion takes every broker down with a topic in place:
	// the fleet calls that unsafe, rightly, and only from then on.
	for _, v := range stack.Fleet.Violations("doomed") {
		assert.True(t, v.Time.After(forcedAt), "violation before the forced deletion: %s", v.Detail)
		assert.Contains(t, []localfleet.ViolationKind{localfleet.ViolationTwoBrokersDown, localfleet.ViolationUnderMinISR}, v.Kind, v.Detail)
	}
}

func deleteAction(cluster string) activities.Action {
	return activities.Action{Verb: "delete", Cluster: cluster, RequestedBy: "alice"}
}

// TestIntegrationProvisionUndo: a host terminated behind kfleet's back
// while it boots fails its step for good; the provisioning pauses for a
// human, with the reason, having touched nothing more; undo terminates
// every host the plan launched and deletes every volume it made, and
// nothing is registered.
func TestIntegrationProvisionUndo(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	slowBoot := quickEC2
	slowBoot.Pending = time.Second
	stack := startStackWith(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}), provisionFleet(slowBoot))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ep := stack.Fleet.Endpoints().AWS
	ec2 := cloud.NewEC2(aws.Config{Region: ep.Region, Credentials: credentials.NewStaticCredentialsProvider(ep.AccessKeyID, ep.SecretAccessKey, "")}, ep.Endpoint)

	_, err := entity.Provision(ctx, stack.Client, ordersPlan("flaky", 3), "alice")
	require.NoError(t, err)
	var victim string
	require.Eventually(t, func() bool {
		for _, e := range stack.Fleet.EC2Audit() {
			if e.Cluster == "flaky" && e.Kind == localfleet.EventInstanceLaunched && e.Broker == 2 {
				victim = e.Instance
				return true
			}
		}
		return false
	}, 30*time.Second, 10*time.Millisecond, "broker 2's host is launched")
	_, err = ec2.TerminateInstance(ctx, victim)
	require.NoError(t, err)

	var paused workflows.ProvisionProgress
	require.Eventually(t, func() bool {
		ps, err := entity.Provisioning(ctx, stack.Client, "flaky")
		paused = ps.Progress
		return err == nil && ps.Progress.Paused != nil
	}, time.Minute, 100*time.Millisecond, "the provisioning waits for a human")
	assert.Equal(t, workflows.PhaseHosts, paused.Paused.Step)
	assert.Contains(t, paused.Paused.Reason, "broker 2 host and volume")
	assert.Contains(t, paused.Paused.Reason, victim)
	st, err := entity.Status(ctx, stack.Client, "flaky")
	require.NoError(t, err, "status of a cluster being created")
	require.NotNil(t, st.Provisioning)

	_, err = entity.Decide(ctx, stack.Client, "flaky", "", workflows.Decision{Action: workflows.DecisionUndo, By: "bob"})
	require.NoError(t, err)
	_, err = entity.FollowProvision(ctx, stack.Client, "flaky", 100*time.Millisecond, func(workflows.ProvisionProgress) {})
	require.ErrorContains(t, err, "provisioning undone by bob")

	launched, terminated, created, deleted := map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, e := range stack.Fleet.EC2Audit() {
		if e.Cluster != "flaky" {
			continue
		}
		switch e.Kind {
		case localfleet.EventInstanceLaunched:
			launched[e.Instance] = true
		case localfleet.EventInstanceTerminated:
			terminated[e.Instance] = true
		case localfleet.EventVolumeCreated:
			created[e.Volume] = true
		case localfleet.EventVolumeDeleted:
			deleted[e.Volume] = true
		}
	}
	assert.Len(t, launched, 6, "every host launched once")
	assert.Equal(t, launched, terminated, "every host launched is terminated")
	assert.Len(t, created, 3)
	assert.Equal(t, created, deleted, "every volume created is deleted")
	ok, err := entity.Registered(ctx, stack.Client, "flaky")
	require.NoError(t, err)
	assert.False(t, ok, "nothing registered")
}
