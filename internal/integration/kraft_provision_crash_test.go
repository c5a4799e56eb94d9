package integration_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// Crash safety of KRaft provisioning and of a controller's host
// replacement: the only worker killed with SIGKILL at random moments, the
// outcome judged by the fleet (kraft_provision_test.go has the stack and
// the counting helpers).

// TestIntegrationKRaftProvisionSurvivesWorkerKills creates a KRaft cluster
// while its only worker is killed with SIGKILL at random moments: no host
// is launched twice (the fleet's EC2 audit, no duplicate-instance
// violation), each controller configured and started by one command, and
// the cluster ends registered with a healthy quorum.
func TestIntegrationKRaftProvisionSurvivesWorkerKills(t *testing.T) {
	t.Parallel()
	rng, _ := chaosRand(t)
	slow := localfleet.EC2Timing{Pending: 1500 * time.Millisecond, Stopping: 200 * time.Millisecond, ShuttingDown: 300 * time.Millisecond,
		VolumeCreating: time.Second, Attaching: 500 * time.Millisecond, Detaching: 200 * time.Millisecond}
	stack := kraftProvisionStack(t, slow)
	workers := startWorkerProcesses(t, stack, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const cluster = "kcrashy"
	_, err := entity.Provision(ctx, stack.Client, kraftOrdersPlan(cluster), "chaos")
	require.NoError(t, err)
	done := make(chan error, 1)
	moved := make(chan string, 100)
	go func() {
		_, err := entity.FollowProvision(ctx, stack.Client, cluster, 100*time.Millisecond, func(p workflows.ProvisionProgress) {
			moved <- strings.Join(workflows.ProvisionLines(p), "; ")
		})
		done <- err
	}()
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
	require.Positive(t, kills, "the provisioning ended before any kill")
	launched, _ := kraftLaunches(stack.Fleet, cluster)
	assert.Equal(t, map[string]int{"controller 3000": 1, "controller 3001": 1, "controller 3002": 1, "broker 1": 1, "broker 2": 1, "broker 3": 1}, launched,
		"one instance per host through %d kills", kills)
	counts := stack.Fleet.CommandCounts(cluster) // brokers' hosts
	require.Len(t, counts, 3)
	for b, docs := range counts {
		assert.Equal(t, 1, docs[cloud.DocConfigureBroker], "broker %d: configure commands", b)
		assert.Equal(t, 1, docs[cloud.DocStartBroker], "broker %d: start commands", b)
	}
	// The fleet's CommandCounts knows brokers' hosts only: the
	// controllers' commands are read from SSM (ListCommands) per host.
	q0, err := stack.Fleet.Quorum(cluster)
	require.NoError(t, err)
	require.Len(t, q0.Voters, 3)
	for _, v := range q0.Voters {
		docs := commandsOn(ctx, t, stack, v.InstanceID)
		assert.Equal(t, map[string]int{cloud.DocConfigureController: 1, cloud.DocStartBroker: 1}, docs, "controller %d: one configure, one start", v.ID)
	}
	for _, v := range stack.Fleet.Violations(cluster) {
		assert.NotEqual(t, localfleet.ViolationDuplicateInstance, v.Kind, v.Detail)
	}
	q, err := stack.Fleet.Quorum(cluster)
	require.NoError(t, err)
	assert.Equal(t, 3, q.CaughtUp)
	watching(ctx, t, stack, cluster, 3)
	noViolations(t, stack, cluster)
	t.Logf("created through %d worker kills", kills)
}

// TestIntegrationKRaftControllerReplacementSurvivesWorkerKills replaces a
// controller's host while the only worker is killed with SIGKILL at
// random moments: one new instance for the controller (the fleet's EC2
// audit, no duplicate-instance violation), the old one terminated, the
// controller's host replaced once in the fleet's account, and never a
// quorum-lost moment.
func TestIntegrationKRaftControllerReplacementSurvivesWorkerKills(t *testing.T) {
	t.Parallel()
	rng, _ := chaosRand(t)
	slow := localfleet.EC2Timing{Pending: 1500 * time.Millisecond, Stopping: 200 * time.Millisecond, ShuttingDown: 500 * time.Millisecond,
		VolumeCreating: 200 * time.Millisecond, Attaching: 100 * time.Millisecond, Detaching: 100 * time.Millisecond}
	stack := kraftProvisionStack(t, slow)
	workers := startWorkerProcesses(t, stack, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const cluster = "kswap"
	_, err := entity.Provision(ctx, stack.Client, kraftOrdersPlan(cluster), "chaos")
	require.NoError(t, err)
	_, err = entity.FollowProvision(ctx, stack.Client, cluster, 100*time.Millisecond, func(workflows.ProvisionProgress) {})
	require.NoError(t, err, "worker logs in %s", workers.logs)
	watching(ctx, t, stack, cluster, 3)
	q, err := stack.Fleet.Quorum(cluster)
	require.NoError(t, err)
	node := q.Leader // the active controller: the quorum elects another leader while it moves
	auditBefore := len(stack.Fleet.Audit(cluster))

	raw, _ := json.Marshal(workflows.ReplaceControllerParams{Node: node})
	op, err := entity.Request(ctx, stack.Client, cluster, workflows.Request{Kind: workflows.OpReplaceController, RequestedBy: "chaos", Params: raw})
	require.NoError(t, err)
	type answer struct {
		res workflows.ReplaceControllerResult
		op  workflows.Operation
		err error
	}
	done := make(chan answer, 1)
	steps := make(chan string, 100)
	go func() {
		last := ""
		res, o, err := entity.Follow[workflows.ReplaceControllerResult](ctx, stack.Client, cluster, op.ID, 100*time.Millisecond, func(p entity.Progress) {
			if line := strings.Join(p.Lines, "; "); line != last {
				last = line
				steps <- line
			}
		})
		done <- answer{res, o, err}
	}()
	const maxKills = 4
	kills, ready := 0, false
	var a answer
	for end := false; !end; {
		select {
		case a = <-done:
			end = true
		case line := <-steps:
			t.Logf("progress: %s", line)
			ready = true
		case <-time.After(time.Duration(100+rng.IntN(600)) * time.Millisecond):
			if ready && kills < maxKills {
				workers.killAndRestart(0)
				kills++
				ready = false
				t.Logf("kill %d", kills)
			}
		}
	}
	require.Equal(t, workflows.StatusSucceeded, a.op.Status, "%s (worker logs in %s)", a.op.Error, workers.logs)
	t.Logf("controller %d (the active one) replaced through %d kills: %s", node, kills, a.op.Outcome)
	require.Positive(t, kills, "the replacement ended before any kill")

	host := "controller " + strconv.Itoa(int(node))
	require.Eventually(t, func() bool {
		_, terminated := kraftLaunches(stack.Fleet, cluster)
		return terminated[host] == 1
	}, 10*time.Second, 100*time.Millisecond, "its old instance is terminated (shutting down takes a while)")
	launched, _ := kraftLaunches(stack.Fleet, cluster)
	assert.Equal(t, 2, launched[host], "one new instance for %s through %d kills", host, kills)
	replaced := 0
	for _, e := range stack.Fleet.Audit(cluster)[auditBefore:] {
		if e.Kind == localfleet.EventControllerHostReplaced {
			replaced++
		}
	}
	assert.Equal(t, 1, replaced, "the controller moved host once")
	noViolations(t, stack, cluster)
	q, err = stack.Fleet.Quorum(cluster)
	require.NoError(t, err)
	assert.Equal(t, 3, q.CaughtUp, "every voter caught up after the replacement")
	es, err := entity.ClusterStatus(ctx, stack.Client, cluster)
	require.NoError(t, err)
	c, _ := es.Spec.Controller(node)
	i := slices.IndexFunc(q.Voters, func(v localfleet.VoterStatus) bool { return v.ID == node })
	require.GreaterOrEqual(t, i, 0)
	assert.Equal(t, q.Voters[i].InstanceID, c.InstanceID, "the spec names the host the controller runs on")
}

// commandsOn counts the SSM commands sent to an instance, by document
// (ListCommands against the fleet's SSM).
func commandsOn(ctx context.Context, t *testing.T, stack *devstack.Stack, instanceID string) map[string]int {
	t.Helper()
	ep := stack.Fleet.Endpoints().AWS
	cfg := aws.Config{Region: ep.Region, Credentials: credentials.NewStaticCredentialsProvider(ep.AccessKeyID, ep.SecretAccessKey, "")}
	cl := ssm.NewFromConfig(cfg, func(o *ssm.Options) { o.BaseEndpoint = aws.String(ep.Endpoint) })
	out := map[string]int{}
	for pages := ssm.NewListCommandsPaginator(cl, &ssm.ListCommandsInput{InstanceId: aws.String(instanceID)}); pages.HasMorePages(); {
		page, err := pages.NextPage(ctx)
		require.NoError(t, err)
		for _, c := range page.Commands {
			out[aws.ToString(c.DocumentName)]++
		}
	}
	return out
}
