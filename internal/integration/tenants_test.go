package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/kfleet/kfleet/internal/chatops"
	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/kafka"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/logging"
	"github.com/kfleet/kfleet/internal/secrets"
	"github.com/kfleet/kfleet/workflows"
)

const tenantsCluster = "tenants-a"

// TestIntegrationTenantsAreIsolated runs the tenant lifecycle on a
// local-fleet cluster with SASL/SCRAM and ACLs enforced, and judges it by
// what Kafka clients authenticating as the tenants see: each tenant works
// in its own prefix and nowhere else, quotas are the plan's, a rotated-out
// or deleted tenant's password no longer logs in, bad input starts
// nothing, and no password is in any workflow history or chat message.
func TestIntegrationTenantsAreIsolated(t *testing.T) {
	t.Parallel() // mostly waiting
	starter := buildStarterAsync(t)
	const superPass = "tenants-superuser-secret"
	secretsAt := "file:" + t.TempDir()
	logs := &lockedBuffer{} // the whole stack's log at debug level, read below
	stack := startStackWith(t, fastFleet(localfleet.ClusterConfig{ID: tenantsCluster, Brokers: 3, Topics: []localfleet.TopicConfig{},
		SASL: localfleet.SASLConfig{Enabled: true, Superuser: "admin", SuperuserPassword: superPass}, ACLs: true}), func(o *devstack.StackOptions) {
		o.ChatopsAddr, o.NotifyOut = "127.0.0.1:0", io.Discard
		o.Secrets = secretsAt // the worker's, where it hands passwords out, and the CLI's below
		o.Log = logging.New(logs, false, zerolog.DebugLevel)
	})
	// kfleet's own pool, logging in to the SASL cluster with the
	// credentials its spec names in the stack's secret source.
	store := stack.Secrets
	pool := kafka.NewPool(kafka.WithSecrets(store))
	t.Cleanup(pool.Close)
	slack := newSlackStandIn(t, stack.Chatops)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := stack.Client
	notFound := func(err error) bool { return errors.Is(err, secrets.ErrNotFound) }
	superCl := superClient(t, stack, superPass)
	waitStatus(ctx, t, stack, tenantsCluster, 30*time.Second, "the brokers' disks are known", func(st workflows.ClusterStatus) bool {
		return workflows.TenantRoom(st).DiskBytes > 0
	})

	// A, from the CLI's client: placed on the one cluster with room.
	cluster, op, err := entity.CreateTenant(ctx, c, "", workflows.TenantCreateParams{Plan: "basic-0"}, "alice", "")
	require.NoError(t, err)
	require.Equal(t, tenantsCluster, cluster)
	resA, _, err := entity.Follow[workflows.TenantResult](ctx, c, cluster, op.ID, 200*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err)
	a := resA.Change.Tenant
	require.Regexp(t, `^[a-z-]+-[0-9]{5}$`, a)
	credsA, err := entity.FetchHandout(ctx, store, notFound, cluster, a, resA.Handout.User)
	require.NoError(t, err)
	_, err = entity.FetchHandout(ctx, store, notFound, cluster, a, resA.Handout.User)
	require.ErrorIs(t, err, entity.ErrHandoutGone, "a password is handed out once")

	// B, from chat.
	const b = "acme-00001"
	code, reply := slack.command("alice", "tenant-create "+tenantsCluster+" basic-1 name="+b)
	require.Equal(t, http.StatusOK, code, reply)
	require.Contains(t, reply, "queued tenant-create")
	st := waitStatus(ctx, t, stack, cluster, 30*time.Second, "B is created", func(st workflows.ClusterStatus) bool { return len(st.Tenants) == 2 })
	credsB, err := entity.FetchHandout(ctx, store, notFound, cluster, b, b)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return strings.Contains(slack.posted(), "bin/starter tenant credentials --cluster "+cluster+" --tenant "+b)
	},
		20*time.Second, 200*time.Millisecond, "chat says where the password waits: %s", slack.posted())

	// Bad input starts nothing.
	ran := len(st.History)
	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"unknown plan", func() error {
			_, _, err := entity.CreateTenant(ctx, c, "", workflows.TenantCreateParams{Plan: "premium-9"}, "alice", "")
			return err
		}, `unknown plan "premium-9"`},
		{"no cluster with room", func() error {
			_, _, err := entity.CreateTenant(ctx, c, "", workflows.TenantCreateParams{Plan: "basic-2"}, "alice", "")
			return err
		}, "no cluster has room"},
		{"the given one without room", func() error {
			_, _, err := entity.CreateTenant(ctx, c, cluster, workflows.TenantCreateParams{Plan: "basic-2"}, "alice", "")
			return err
		}, "needs 64 GB of disk"},
		{"a name that collides", func() error {
			_, _, err := entity.CreateTenant(ctx, c, cluster, workflows.TenantCreateParams{Plan: "basic-0", Name: a}, "alice", "")
			return err
		}, "already has a tenant or user " + a},
		{"rotate an unknown tenant", func() error {
			_, err := entity.Request(ctx, c, cluster, tenantRequest(workflows.OpTenantRotate, workflows.TenantRotateParams{Tenant: "nobody"}))
			return err
		}, "has no tenant nobody"},
		{"delete an unknown tenant", func() error {
			_, err := entity.Request(ctx, c, cluster, tenantRequest(workflows.OpTenantDelete, workflows.TenantDeleteParams{Tenant: "nobody"}))
			return err
		}, "has no tenant nobody"},
	} {
		err := tc.err()
		assert.ErrorIs(t, err, fleet.ErrRefused, tc.name)
		assert.ErrorContains(t, err, tc.want, tc.name)
	}
	st, err = entity.ClusterStatus(ctx, c, cluster)
	require.NoError(t, err)
	assert.Len(t, st.History, ran, "nothing started")
	assert.Empty(t, st.Queue)

	// Each works in its own prefix.
	clA, clB := tenantClient(t, credsA), tenantClient(t, credsB)
	admA, admB := kadm.NewClient(clA), kadm.NewClient(clB)
	mustCreate(ctx, t, admA, a+".orders", nil)
	mustCreate(ctx, t, admB, b+".events", nil)
	require.NoError(t, clA.ProduceSync(ctx, &kgo.Record{Topic: a + ".orders", Value: []byte("a1")}).FirstErr())
	require.NoError(t, clB.ProduceSync(ctx, &kgo.Record{Topic: b + ".events", Value: []byte("b1")}).FirstErr())
	consumeOne(ctx, t, credsA, a+".orders", a+".reader")
	consumeOne(ctx, t, credsB, b+".events", b+".reader")

	// A can do nothing in B's prefix: describe, write, read, create,
	// delete, nor see or touch B's group.
	mt, err := topicMetadata(ctx, clA, b+".events")
	require.NoError(t, err)
	assert.Equal(t, kerr.TopicAuthorizationFailed.Code, mt.ErrorCode, "A describes B's topic")
	assert.ErrorIs(t, clA.ProduceSync(ctx, &kgo.Record{Topic: b + ".events", Value: []byte("x")}).FirstErr(), kerr.TopicAuthorizationFailed, "A writes B's topic")
	assert.Zero(t, pollFor(ctx, t, credsA, b+".events", 2*time.Second), "A reads B's topic")
	created, err := admA.CreateTopic(ctx, 1, 3, nil, b+".stolen")
	assert.True(t, err != nil || created.Err != nil, "A creates in B's prefix")
	deleted, err := admA.DeleteTopics(ctx, b+".events")
	require.NoError(t, err)
	assert.ErrorIs(t, deleted[b+".events"].Err, kerr.TopicAuthorizationFailed, "A deletes B's topic")
	groups, err := admA.ListGroups(ctx)
	require.NoError(t, err)
	assert.Contains(t, groups.Groups(), a+".reader")
	assert.NotContains(t, groups.Groups(), b+".reader", "A lists B's group")
	dg, err := admA.DeleteGroups(ctx, b+".reader")
	if err == nil {
		err = dg[b+".reader"].Err
	}
	assert.ErrorIs(t, err, kerr.GroupAuthorizationFailed, "A deletes B's group")
	_, err = admA.FetchOffsets(ctx, b+".reader")
	assert.ErrorIs(t, err, kerr.GroupAuthorizationFailed, "A reads B's group's offsets")
	assert.ElementsMatch(t, []string{a + ".orders", b + ".events"}, topicNames(ctx, t, superCl), "nothing of B's was touched by A")

	// The same seen by a client kfleet did not write: kcat with SASL.
	kcatIsolation(ctx, t, credsA, a, b)

	// Quotas are the plans'.
	userQuotas := func(user string) map[string]float64 {
		a, err := pool.Admin(stack.Specs[cluster])
		require.NoError(t, err)
		q, err := a.UserQuotas(ctx, user)
		require.NoError(t, err)
		return q
	}
	assert.Equal(t, quotasOf("basic-0"), userQuotas(a))
	assert.Equal(t, quotasOf("basic-1"), userQuotas(b))

	// A's producer is held to its plan (basic-0: 64 KB/s per broker):
	// writing as fast as it can for 3 s, past the 11 s of quota a new
	// client may send at once, the fleet throttles it as Kafka does.
	pctx, pcancel := context.WithTimeout(ctx, 3*time.Second)
	big := make([]byte, 64<<10)
	for pctx.Err() == nil {
		clA.Produce(pctx, &kgo.Record{Topic: a + ".orders", Value: big}, func(*kgo.Record, error) {})
	}
	pcancel()
	usage, err := stack.Fleet.QuotaStats(cluster)
	require.NoError(t, err)
	quota := quotasOf("basic-0")["producer_byte_rate"]
	assert.Positive(t, usage[a].ProduceThrottled, "A's producer throttled to its plan: %+v", usage[a].QuotaUsage)
	for id, u := range usage[a].Brokers {
		assert.LessOrEqual(t, u.ProduceByteRate, 1.5*quota, "broker %d measures A within its quota", id)
	}
	t.Logf("A over its quota: %d throttled produce(s), %d ms of throttle", usage[a].ProduceThrottled, usage[a].ProduceThrottleMs)

	// A rotation from chat: a new user at once; the old password works
	// through the grace, then no longer.
	code, reply = slack.command("alice", "tenant-rotate "+cluster+" "+a+" grace=3s")
	require.Equal(t, http.StatusOK, code, reply)
	a2 := fleet.TenantUser(a, 1)
	waitStatus(ctx, t, stack, cluster, 30*time.Second, "the rotation hands out "+a2, func(st workflows.ClusterStatus) bool {
		return tenantUsers(st, a) == a+","+a2
	})
	credsA2, err := entity.FetchHandout(ctx, store, notFound, cluster, a, a2)
	require.NoError(t, err)
	assert.True(t, authenticates(ctx, t, credsA), "the old password works during the grace")
	waitStatus(ctx, t, stack, cluster, 30*time.Second, "the old user is removed after the grace", func(st workflows.ClusterStatus) bool {
		return tenantUsers(st, a) == a2
	})
	assert.False(t, authenticates(ctx, t, credsA), "a rotated-out password no longer logs in")
	clA2 := tenantClient(t, credsA2)
	require.NoError(t, clA2.ProduceSync(ctx, &kgo.Record{Topic: a + ".orders", Value: []byte("a2")}).FirstErr(), "the new user has A's rights")
	assert.Equal(t, quotasOf("basic-0"), userQuotas(a2))
	assert.Empty(t, userQuotas(a), "the old user's quotas went with it")

	// Plan changes: A moves up; B, whose topic keeps data 1 h, cannot
	// move to a plan whose minimum is 6 h, and keeps its quotas.
	followTenantOp(ctx, t, stack, cluster, tenantRequest(workflows.OpTenantChangePlan, workflows.TenantChangePlanParams{Tenant: a, Plan: "basic-1"}), "")
	assert.Equal(t, quotasOf("basic-1"), userQuotas(a2))
	mustCreate(ctx, t, admB, b+".short", map[string]*string{"retention.ms": kadm.StringPtr("3600000")})
	followTenantOp(ctx, t, stack, cluster, tenantRequest(workflows.OpTenantChangePlan, workflows.TenantChangePlanParams{Tenant: b, Plan: "basic-0"}),
		"refused, nothing touched: the tenant is over plan basic-0")
	assert.Equal(t, quotasOf("basic-1"), userQuotas(b))

	// B's deletion from chat: a second person approves; then nothing of B
	// is left and its password no longer logs in. A is untouched.
	clB.Close()
	code, reply = slack.command("alice", "tenant-delete "+cluster+" "+b)
	require.Equal(t, http.StatusOK, code, reply)
	block, approval := approvalButtons(t, reply)
	code, reply = slack.click("bob", chatops.ActionApprove, block, approval)
	require.Equal(t, http.StatusOK, code, reply)
	waitStatus(ctx, t, stack, cluster, 30*time.Second, "B is deleted", func(st workflows.ClusterStatus) bool { return len(st.Tenants) == 1 })
	assert.False(t, authenticates(ctx, t, credsB), "a deleted tenant's password no longer logs in")
	fp, err := pool.TenantFootprint(ctx, stack.Specs[cluster], fleet.TenantPrefix(b), []string{b})
	require.NoError(t, err)
	assert.True(t, fp.Empty(), "nothing of B is left: %s", fp)
	assert.Equal(t, []string{a + ".orders"}, topicNames(ctx, t, superCl))

	// The CLI: a creation followed to its end, the password fetched from
	// the secret source ($KFLEET_SECRETS), printed once and gone from
	// there; the tenants listed; an unknown tenant refused with exit 2.
	bin := <-starter
	var cliOut bytes.Buffer
	code = execStarterEnv(t, bin, []string{secrets.EnvVar + "=" + secretsAt}, &cliOut, &cliOut,
		"tenant", "create", "--address", stack.Temporal.Addr, "--plan", "basic-0", "--name", "cli-00001", "--cluster", cluster)
	out := cliOut.String()
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "tenant cli-00001 created")
	credsC := credsA
	credsC.Tenant, credsC.User, credsC.Password = "cli-00001", "cli-00001", passwordIn(t, out)
	assert.True(t, authenticates(ctx, t, credsC), "the password the CLI printed logs in")
	_, err = entity.FetchHandout(ctx, store, notFound, cluster, "cli-00001", "cli-00001")
	require.ErrorIs(t, err, entity.ErrHandoutGone, "the CLI took the handout: shown once")
	out, code = runStarter(t, bin, "tenant", "list", "--address", stack.Temporal.Addr, "--cluster", cluster)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, a+"  basic-1  users "+a2)
	out, code = runStarter(t, bin, "tenant", "rotate", "--address", stack.Temporal.Addr, "--cluster", cluster, "--tenant", "nobody")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "has no tenant nobody")

	// No password anywhere in Temporal or chat.
	passwords := []string{credsA.Password, credsA2.Password, credsB.Password, credsC.Password}
	for _, s := range passwords {
		require.Len(t, s, 43)
	}
	noSecretInHistories(ctx, t, stack, passwords)
	st, err = entity.ClusterStatus(ctx, c, cluster)
	require.NoError(t, err)
	record := map[string]string{workflows.ClusterWorkflowID(cluster): "cluster_tenants.json"}
	for _, op := range st.History {
		switch {
		case op.Kind == workflows.OpTenantChangePlan && op.Status == workflows.StatusFailed:
			record[op.WorkflowID] = "tenant_change_plan_refused.json"
		case op.Kind != workflows.OpTenantChangePlan:
			record[op.WorkflowID] = strings.ReplaceAll(op.Kind, "-", "_") + ".json"
		}
	}
	recordHistories(ctx, t, c, record)
	for _, s := range passwords {
		assert.NotContains(t, slack.posted(), s, "a password in chat")
		assert.NotContains(t, logs.String(), s, "a password in a log line")
		assert.NotContains(t, strings.Join(stack.Notifications.Messages(), "\n"), s, "a password in a notification")
	}
}

func tenantRequest(kind string, params any) workflows.Request {
	raw, _ := json.Marshal(params)
	return workflows.Request{Kind: kind, RequestedBy: "alice", Params: raw}
}

// followTenantOp asks for a tenant operation and follows it; wantErr ""
// means it succeeds, else its failure says wantErr.
func followTenantOp(ctx context.Context, t *testing.T, stack *devstack.Stack, cluster string, req workflows.Request, wantErr string) {
	t.Helper()
	op, err := entity.Request(ctx, stack.Client, cluster, req)
	require.NoError(t, err)
	_, _, err = entity.Follow[workflows.TenantResult](ctx, stack.Client, cluster, op.ID, 200*time.Millisecond, func(entity.Progress) {})
	if wantErr == "" {
		require.NoError(t, err)
	} else {
		require.ErrorContains(t, err, wantErr)
	}
}

func tenantUsers(st workflows.ClusterStatus, tenant string) string {
	for _, t := range st.Tenants {
		if t.Name == tenant {
			return strings.Join(t.UserNames(), ",")
		}
	}
	return ""
}

func quotasOf(plan string) map[string]float64 {
	p, err := fleet.DefaultTenantCatalog().Plan(plan)
	if err != nil {
		panic(err)
	}
	q := p.Quotas()
	return map[string]float64{kafka.KeyProducerByteRate: q.ProducerByteRate, kafka.KeyConsumerByteRate: q.ConsumerByteRate,
		kafka.KeyRequestPercentage: q.RequestPercentage, kafka.KeyControllerMutationRate: q.ControllerMutationRate}
}

func superClient(t *testing.T, stack *devstack.Stack, pass string) *kgo.Client {
	return tenantClient(t, fleet.TenantCredentials{User: "admin", Password: pass, Mechanism: fleet.TenantSASLMechanism,
		Bootstrap: stack.Specs[tenantsCluster].Bootstrap})
}

func mustCreate(ctx context.Context, t *testing.T, adm *kadm.Client, topic string, configs map[string]*string) {
	t.Helper()
	r, err := adm.CreateTopic(ctx, 3, 3, configs, topic)
	require.NoError(t, err, topic)
	require.NoError(t, r.Err, topic)
}

// consumeOne reads one record of topic in group as creds' user, and
// commits it (the group then exists).
func consumeOne(ctx context.Context, t *testing.T, creds fleet.TenantCredentials, topic, group string) {
	t.Helper()
	cl := tenantClient(t, creds, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit())
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	f := cl.PollRecords(pctx, 1)
	require.NoError(t, f.Err(), "%s reads %s", creds.User, topic)
	require.Equal(t, 1, f.NumRecords())
	require.NoError(t, cl.CommitUncommittedOffsets(ctx))
	cl.LeaveGroup()
	cl.Close()
}

// pollFor counts the records creds' user reads of topic within d.
func pollFor(ctx context.Context, t *testing.T, creds fleet.TenantCredentials, topic string, d time.Duration) int {
	cl := tenantClient(t, creds, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	n := 0
	for pctx.Err() == nil {
		n += cl.PollFetches(pctx).NumRecords()
	}
	return n
}

// noSecretInHistories reads every workflow history of the stack and
// fails on any secret in it.
func noSecretInHistories(ctx context.Context, t *testing.T, stack *devstack.Stack, secrets []string) {
	t.Helper()
	var token []byte
	n := 0
	for {
		resp, err := stack.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{NextPageToken: token})
		require.NoError(t, err)
		for _, e := range resp.GetExecutions() {
			it := stack.Client.GetWorkflowHistory(ctx, e.GetExecution().GetWorkflowId(), e.GetExecution().GetRunId(), false, 0)
			for it.HasNext() {
				ev, err := it.Next()
				require.NoError(t, err)
				text := prototext.Format(ev)
				for _, s := range secrets {
					require.False(t, strings.Contains(text, s), "a password in the history of %s", e.GetExecution().GetWorkflowId())
				}
			}
			n++
		}
		if token = resp.GetNextPageToken(); len(token) == 0 {
			break
		}
	}
	require.Greater(t, n, 5, "histories read")
}
