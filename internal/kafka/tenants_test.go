package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kfleet/kfleet/internal/fleet"
)

// A cluster with SASL/SCRAM and ACLs on, as kfleet's admin (a superuser)
// sees it, and a client authenticating as a tenant's user.
func saslCluster(t *testing.T) (*Admin, func(user, pass string) *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(), kfake.Superuser("SCRAM-SHA-512", "admin", "admin-secret"))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	a, err := Dial("tenants", c.ListenAddrs(), kgo.SASL(scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha512Mechanism()))
	require.NoError(t, err)
	t.Cleanup(a.Close)
	return a, func(user, pass string) *kgo.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()),
			kgo.RequestRetries(0), kgo.RetryTimeout(2*time.Second))
		require.NoError(t, err)
		t.Cleanup(cl.Close)
		return cl
	}
}

func TestTenantAdmin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, as := saslCluster(t)
	basic0, _ := fleet.DefaultTenantCatalog().Plan("basic-0")

	for _, u := range []string{"wabash-58799", "yampa-00001"} {
		require.NoError(t, a.UpsertSCRAMUser(ctx, u, []byte(u+"-pw")))
		n, err := a.GrantPrefix(ctx, u, fleet.TenantPrefix(u))
		require.NoError(t, err)
		assert.Equal(t, 10, n, "5 topic, 3 group and 2 transactional-id operations")
		require.NoError(t, a.SetUserQuotas(ctx, u, basic0.Quotas()))
	}
	// Granting again keeps one set.
	_, err := a.GrantPrefix(ctx, "wabash-58799", "wabash-58799.")
	require.NoError(t, err)

	q, err := a.UserQuotas(ctx, "wabash-58799")
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{KeyProducerByteRate: 64 * 1024, KeyConsumerByteRate: 256 * 1024,
		KeyRequestPercentage: basic0.RequestPercentage, KeyControllerMutationRate: basic0.ControllerMutationRate}, q)

	// Tenant A creates and writes in its own prefix, and is refused in B's.
	adm := kadm.NewClient(as("wabash-58799", "wabash-58799-pw"))
	_, err = adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": ptr("86400000")}, "wabash-58799.orders")
	require.NoError(t, err)
	_, err = adm.CreateTopic(ctx, 1, 1, nil, "yampa-00001.stolen")
	assert.ErrorIs(t, err, kerr.TopicAuthorizationFailed)

	f, err := a.TenantFootprint(ctx, "wabash-58799.", []string{"wabash-58799"})
	require.NoError(t, err)
	assert.Equal(t, fleet.TenantFootprint{Topics: 1, Partitions: 3, ACLs: 10, Users: 1, Quotas: 1, MinRetentionMs: 86400000, MaxRetentionMs: 86400000}, f)
	assert.NoError(t, basic0.Admits(f, 1))

	// Removal: cut off, then the data; nothing of A is left, B is untouched.
	n, err := a.RevokeUser(ctx, "wabash-58799")
	require.NoError(t, err)
	assert.Equal(t, 10, n)
	require.NoError(t, a.DeleteSCRAMUser(ctx, "wabash-58799"))
	require.NoError(t, a.DeleteSCRAMUser(ctx, "wabash-58799"), "gone already is done")
	require.NoError(t, a.DeleteUserQuotas(ctx, "wabash-58799"))
	deleted, err := a.DeletePrefixTopics(ctx, "wabash-58799.")
	require.NoError(t, err)
	assert.Equal(t, 1, deleted)
	_, err = a.DeletePrefixGroups(ctx, "wabash-58799.")
	require.NoError(t, err)
	f, err = a.TenantFootprint(ctx, "wabash-58799.", []string{"wabash-58799"})
	require.NoError(t, err)
	assert.True(t, f.Empty(), "%s", f)

	f, err = a.TenantFootprint(ctx, "yampa-00001.", []string{"yampa-00001"})
	require.NoError(t, err)
	assert.Equal(t, fleet.TenantFootprint{ACLs: 10, Users: 1, Quotas: 1}, f)

	_, err = a.GrantPrefix(ctx, "x", "x")
	assert.Error(t, err, "a prefix ends in '.'")
	_, err = a.DeletePrefixTopics(ctx, "")
	assert.Error(t, err, "never every topic")
}

func ptr(s string) *string { return &s }
