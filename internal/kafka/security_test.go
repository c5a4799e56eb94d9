package kafka_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/devstack/tier"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/kafka"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/secrets"
)

const (
	rightPassword = "right-password-4f9c2"
	wrongPassword = "wrong-password-77ab1"
)

// TestIntegrationPoolAuthenticatesWithSCRAM dials a local-fleet cluster
// that requires SASL/SCRAM and enforces ACLs, as its admin principal, with
// the credentials read from a secret source by the name in the spec.
func TestIntegrationPoolAuthenticatesWithSCRAM(t *testing.T) {
	tier.Integration(t, tier.ZooKeeper)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	z, err := devstack.StartZooKeeper(ctx, t.TempDir(), 0, zerolog.Nop())
	require.NoError(t, err)
	t.Cleanup(func() { _ = z.Stop() })
	f, err := localfleet.Start(ctx, localfleet.Config{Clusters: []localfleet.ClusterConfig{{
		ID: "local-s", Brokers: 3, ACLs: true,
		SASL: localfleet.SASLConfig{Enabled: true, Mechanism: localfleet.SCRAMSHA256, Superuser: "kfleet-admin", SuperuserPassword: rightPassword},
	}}}, localfleet.Options{ZooKeeper: z.Addr, DataDir: t.TempDir(), Logger: zerolog.Nop()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })

	store, err := secrets.NewFileStore(filepath.Join(t.TempDir(), "secrets"))
	require.NoError(t, err)
	const name = "kfleet/local-s/admin"
	require.NoError(t, store.Put(ctx, name, secrets.Credentials{Username: "kfleet-admin", Password: rightPassword}.Encode()))
	spec := fleet.ClusterSpec{ID: "local-s", Bootstrap: f.Endpoints().Clusters["local-s"].Bootstrap,
		Security: fleet.Security{SASL: fleet.SASL{Mechanism: fleet.SCRAMSHA256, CredentialsSecret: name}}}

	// The right password: the admin principal sees the whole cluster.
	pool := kafka.NewPool(kafka.WithSecrets(store))
	t.Cleanup(pool.Close)
	controller, partitions, err := pool.Replication(ctx, spec)
	require.NoError(t, err)
	assert.Positive(t, controller)
	assert.Len(t, partitions, 8, "the seeded topic's partitions")

	// A wrong one: refused, promptly, with an error that says so and
	// holds neither password.
	wrong, err := secrets.NewFileStore(filepath.Join(t.TempDir(), "wrong"))
	require.NoError(t, err)
	require.NoError(t, wrong.Put(ctx, name, secrets.Credentials{Username: "kfleet-admin", Password: wrongPassword}.Encode()))
	wrongPool := kafka.NewPool(kafka.WithSecrets(wrong))
	t.Cleanup(wrongPool.Close)
	began := time.Now()
	_, _, err = wrongPool.Replication(ctx, spec)
	require.Error(t, err)
	t.Logf("refused in %s: %v", time.Since(began).Round(time.Millisecond), err)
	assert.Less(t, time.Since(began), 10*time.Second, "an authentication failure is not retried until the retry timeout")
	assert.Contains(t, err.Error(), "cluster local-s")
	assert.Contains(t, err.Error(), "SASL_AUTHENTICATION_FAILED")
	assert.NotContains(t, err.Error(), wrongPassword)
	assert.NotContains(t, err.Error(), rightPassword)

	// The password is put right in the source: the same pooled client
	// authenticates with it on its next connection.
	require.NoError(t, wrong.Put(ctx, name, secrets.Credentials{Username: "kfleet-admin", Password: rightPassword}.Encode()))
	require.Eventually(t, func() bool {
		_, _, err := wrongPool.Replication(ctx, spec)
		return err == nil
	}, 20*time.Second, 200*time.Millisecond, "a changed secret is picked up without a new pool")

	// No credentials at all: a plaintext client is refused; a missing
	// secret and a missing source say which.
	plain := spec
	plain.Security = fleet.Security{}
	_, _, err = kafka.NewPool().Replication(ctx, plain)
	require.Error(t, err, "SASL is required")
	_, _, err = kafka.NewPool().Replication(ctx, spec)
	require.ErrorContains(t, err, secrets.EnvVar)
	empty, err := secrets.NewFileStore(filepath.Join(t.TempDir(), "empty"))
	require.NoError(t, err)
	_, _, err = kafka.NewPool(kafka.WithSecrets(empty)).Replication(ctx, spec)
	require.ErrorIs(t, err, secrets.ErrNotFound)
	assert.Contains(t, err.Error(), name)
}
