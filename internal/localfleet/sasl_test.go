package localfleet_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kfleet/kfleet/internal/localfleet"
)

const (
	testSuperuser = "admin"
	testSuperPass = "admin-secret"
)

func saslCluster(id string, acls bool) localfleet.ClusterConfig {
	cfg := testCluster(id)
	cfg.SASL = localfleet.SASLConfig{Enabled: true, Superuser: testSuperuser, SuperuserPassword: testSuperPass}
	cfg.ACLs = acls
	return cfg
}

func scramAs(user, pass string) kgo.Opt {
	return kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism())
}

// topicMetadata asks for one topic and returns its answer: a request error
// when the connection is refused, else the topic's error code.
func topicMetadata(ctx context.Context, cl *kgo.Client, topic string) (kmsg.MetadataResponseTopic, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return kmsg.MetadataResponseTopic{}, err
	}
	if len(resp.Topics) != 1 {
		return kmsg.MetadataResponseTopic{}, errors.New("no topic in metadata")
	}
	return resp.Topics[0], nil
}

func TestIntegrationSASLAndACLs(t *testing.T) {
	ctx := testContext(t)
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{saslCluster("local-a", true)}})
	ep := f.Endpoints().Clusters["local-a"]
	require.NotNil(t, ep.SASL)
	assert.Equal(t, localfleet.SCRAMSHA512, ep.SASL.Mechanism)
	assert.True(t, ep.ACLs)

	// No credentials: refused.
	anon, _ := kafkaClient(t, f, "local-a")
	_, err := topicMetadata(ctx, anon, "app.orders")
	require.Error(t, err, "a client without credentials is refused")

	// The superuser creates an RF 3 topic, produces and consumes.
	super, superAdm := kafkaClient(t, f, "local-a", scramAs(testSuperuser, testSuperPass))
	created, err := superAdm.CreateTopic(ctx, 3, 3, nil, "app.orders")
	require.NoError(t, err)
	require.NoError(t, created.Err)
	assert.EqualValues(t, 3, created.ReplicationFactor)
	m := metadata(t, superAdm)
	require.Contains(t, m.Topics, "app.orders")
	for _, p := range m.Topics["app.orders"].Partitions {
		assert.Len(t, p.Replicas, 3, "partition %d replicas", p.Partition)
		assert.Len(t, p.ISR, 3, "partition %d isr", p.Partition)
	}
	require.NoError(t, super.ProduceSync(ctx, &kgo.Record{Topic: "app.orders", Partition: 0, Value: []byte("v1")}).FirstErr())
	consumer, _ := kafkaClient(t, f, "local-a", scramAs(testSuperuser, testSuperPass),
		kgo.ConsumeTopics("app.orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fetches := consumer.PollRecords(ctx, 1)
	require.NoError(t, fetches.Err())
	require.Equal(t, 1, fetches.NumRecords())
	assert.Equal(t, "v1", string(fetches.Records()[0].Value))

	// A SCRAM user created by the superuser authenticates, and is denied
	// the topic until granted.
	altered, err := superAdm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "alice", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "alice-secret"}})
	require.NoError(t, err)
	for _, a := range altered {
		require.NoError(t, a.Err)
	}
	wrong, _ := kafkaClient(t, f, "local-a", scramAs("alice", "not-her-password"))
	_, err = topicMetadata(ctx, wrong, "app.orders")
	require.Error(t, err, "a wrong password is refused")

	alice, _ := kafkaClient(t, f, "local-a", scramAs("alice", "alice-secret"), kgo.DisableIdempotentWrite())
	mt, err := topicMetadata(ctx, alice, "app.orders")
	require.NoError(t, err, "alice authenticates")
	assert.Equal(t, kerr.TopicAuthorizationFailed.Code, mt.ErrorCode, "alice may not describe the topic yet")
	err = alice.ProduceSync(ctx, &kgo.Record{Topic: "app.orders", Value: []byte("denied")}).FirstErr()
	require.ErrorIs(t, err, kerr.TopicAuthorizationFailed)

	acls, err := superAdm.CreateACLs(ctx, kadm.NewACLs().Topics("app.").ResourcePatternType(kadm.ACLPatternPrefixed).
		Allow("User:alice").Operations(kadm.OpAll))
	require.NoError(t, err)
	require.NotEmpty(t, acls)
	for _, a := range acls {
		require.NoError(t, a.Err)
	}
	mt, err = topicMetadata(ctx, alice, "app.orders")
	require.NoError(t, err)
	assert.Zero(t, mt.ErrorCode, "alice may describe the topic now")
	alice2, _ := kafkaClient(t, f, "local-a", scramAs("alice", "alice-secret"), kgo.DisableIdempotentWrite())
	require.NoError(t, alice2.ProduceSync(ctx, &kgo.Record{Topic: "app.orders", Value: []byte("allowed")}).FirstErr())

	// The superuser's model view is unaffected by what alice may see.
	m = metadata(t, superAdm)
	assert.Len(t, m.Topics["app.orders"].Partitions, 3)

	// Client quotas are stored.
	user := "alice"
	_, err = superAdm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &user}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1 << 20}},
	}})
	require.NoError(t, err)
	quotas, err := superAdm.DescribeClientQuotas(ctx, false, []kadm.DescribeClientQuotaComponent{{Type: "user", MatchName: &user}})
	require.NoError(t, err)
	require.Len(t, quotas, 1)
	assert.Equal(t, kadm.ClientQuotaValues{{Key: "producer_byte_rate", Value: 1 << 20}}, quotas[0].Values)
}

func TestIntegrationCreateTopicsReplicationFactor(t *testing.T) {
	ctx := testContext(t)
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")}})
	cl, adm := kafkaClient(t, f, "local-a")

	_, err := adm.CreateTopic(ctx, 1, 4, nil, "too-many")
	require.ErrorIs(t, err, kerr.InvalidReplicationFactor)

	for rf, name := range map[int16]string{1: "rf1", 2: "rf2", 3: "rf3", -1: "rf-default"} {
		resp, err := adm.CreateTopic(ctx, 4, rf, nil, name)
		require.NoError(t, err)
		require.NoError(t, resp.Err, name)
		want := int(rf)
		if rf == -1 {
			want = 3
		}
		assert.EqualValues(t, want, resp.ReplicationFactor, name)
	}

	// A manual assignment names broker ids.
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "manual", -1, -1
	for i, replicas := range [][]int32{{2, 3}, {3, 1}} {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = int32(i), replicas
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	req.Topics = append(req.Topics, rt)
	cresp, err := req.RequestWith(ctx, cl)
	require.NoError(t, err)
	require.Len(t, cresp.Topics, 1)
	require.Zero(t, cresp.Topics[0].ErrorCode)

	m := metadata(t, adm)
	for name, want := range map[string]int{"rf1": 1, "rf2": 2, "rf3": 3, "rf-default": 3} {
		require.Contains(t, m.Topics, name)
		require.Len(t, m.Topics[name].Partitions, 4)
		for _, p := range m.Topics[name].Partitions {
			assert.Len(t, p.Replicas, want, "%s-%d replicas", name, p.Partition)
			assert.Len(t, p.ISR, want, "%s-%d isr", name, p.Partition)
		}
	}
	assert.Equal(t, []int32{2, 3}, m.Topics["manual"].Partitions[0].Replicas)
	assert.Equal(t, []int32{3, 1}, m.Topics["manual"].Partitions[1].Replicas)

	// New partitions keep the topic's replication factor.
	_, err = adm.CreatePartitions(ctx, 2, "rf2")
	require.NoError(t, err)
	m = metadata(t, adm)
	require.Len(t, m.Topics["rf2"].Partitions, 6)
	for _, p := range m.Topics["rf2"].Partitions {
		assert.Len(t, p.Replicas, 2, "rf2-%d replicas", p.Partition)
	}

	// Broker configs are described by broker id.
	configs, err := adm.DescribeBrokerConfigs(ctx, 2)
	require.NoError(t, err)
	require.Len(t, configs, 1)
	require.NoError(t, configs[0].Err)
	assert.Equal(t, "2", configs[0].Name)
}

func TestLoadConfigSASL(t *testing.T) {
	dir := t.TempDir()
	write := func(yaml string) string {
		p := filepath.Join(dir, "fleet.yaml")
		require.NoError(t, os.WriteFile(p, []byte(yaml), 0o600))
		return p
	}
	cfg, err := localfleet.LoadConfig(write(`
clusters:
  - id: secure
    acls: true
    sasl: {enabled: true, superuser: admin, superuserPassword: s3cret}
`))
	require.NoError(t, err)
	assert.Equal(t, localfleet.SASLConfig{Enabled: true, Mechanism: localfleet.SCRAMSHA512, Superuser: "admin", SuperuserPassword: "s3cret"}, cfg.Clusters[0].SASL)
	assert.True(t, cfg.Clusters[0].ACLs)

	_, err = localfleet.LoadConfig(write(`
clusters:
  - id: open
    acls: true
`))
	require.ErrorContains(t, err, "acls needs sasl.enabled")
	_, err = localfleet.LoadConfig(write(`
clusters:
  - id: bad
    sasl: {enabled: true, mechanism: PLAIN, superuser: admin}
`))
	require.ErrorContains(t, err, "sasl.mechanism")
	require.ErrorContains(t, err, "superuserPassword")
}
