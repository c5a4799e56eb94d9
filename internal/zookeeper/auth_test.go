package zookeeper_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/devstack/tier"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/secrets"
	"github.com/kfleet/kfleet/internal/zookeeper"
)

// TestIntegrationPoolDigestAuth: a cluster's chroot readable only by one
// digest identity, on a real ZooKeeper. The pool reads it with the
// credentials the spec's secret holds, and nothing without them or with a
// wrong password; a rotated password is picked up; the chroot's removal
// authenticates too.
func TestIntegrationPoolDigestAuth(t *testing.T) {
	tier.Integration(t, tier.ZooKeeper)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	z, err := devstack.StartZooKeeper(ctx, t.TempDir(), 0, zerolog.New(zerolog.NewTestWriter(t)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = z.Stop() })

	const (
		user, pass, rotated, wrongPass = "kfleet", "zk-pass-91c3", "zk-pass-rotated-5d", "zk-wrong-0e27"
		secret                         = "kfleet/sec-a/zookeeper"
	)
	admin, _, err := zk.Connect([]string{z.Addr}, 4*time.Second, zk.WithLogInfo(false))
	require.NoError(t, err)
	defer admin.Close()
	require.NoError(t, admin.AddAuth("digest", []byte(user+":"+pass)))
	_, err = admin.Create("/kfleet", nil, 0, zk.WorldACL(zk.PermAll))
	require.NoError(t, err)
	acl := zk.DigestACL(zk.PermAll, user, pass)
	for _, p := range []string{"/kfleet/sec-a", "/kfleet/sec-a/brokers", "/kfleet/sec-a/brokers/ids", "/kfleet/sec-a/brokers/ids/1"} {
		_, err := admin.Create(p, nil, 0, acl)
		require.NoError(t, err, p)
	}
	_, err = admin.Create("/kfleet/sec-a/controller", []byte(`{"brokerid":1}`), 0, acl)
	require.NoError(t, err)

	store, err := secrets.NewFileStore(filepath.Join(t.TempDir(), "secrets"))
	require.NoError(t, err)
	require.NoError(t, store.Put(ctx, secret, secrets.Credentials{Username: user, Password: pass}.Encode()))
	spec := fleet.ClusterSpec{ID: "sec-a", ZooKeeper: z.Addr + "/kfleet/sec-a",
		Security: fleet.Security{ZooKeeperDigestSecret: secret}}

	pool := zookeeper.NewPool(zookeeper.WithSecrets(store))
	t.Cleanup(pool.Close)
	ids, err := pool.BrokerIDs(ctx, spec)
	require.NoError(t, err)
	assert.Equal(t, []int32{1}, ids)
	c, err := pool.Client(ctx, spec)
	require.NoError(t, err)
	controller, err := c.Controller(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 1, controller)

	// Without auth, and with a wrong password: no access, and no
	// password in the error.
	plain := spec
	plain.Security = fleet.Security{}
	_, err = zookeeper.NewPool().BrokerIDs(ctx, plain)
	require.ErrorIs(t, err, zk.ErrNoAuth)
	wrong, err := secrets.NewFileStore(filepath.Join(t.TempDir(), "wrong"))
	require.NoError(t, err)
	require.NoError(t, wrong.Put(ctx, secret, secrets.Credentials{Username: user, Password: wrongPass}.Encode()))
	wrongPool := zookeeper.NewPool(zookeeper.WithSecrets(wrong))
	t.Cleanup(wrongPool.Close)
	_, err = wrongPool.BrokerIDs(ctx, spec)
	require.ErrorIs(t, err, zk.ErrNoAuth)
	assert.Contains(t, err.Error(), "cluster sec-a")
	assert.NotContains(t, err.Error(), wrongPass)
	_, err = zookeeper.NewPool().BrokerIDs(ctx, spec)
	require.ErrorContains(t, err, secrets.EnvVar, "a spec that names a secret needs a source")

	// The password is rotated (the ACLs, then the secret): the pool's next
	// call authenticates with the new one.
	newACL := zk.DigestACL(zk.PermAll, user, rotated)
	for _, p := range []string{"/kfleet/sec-a", "/kfleet/sec-a/brokers", "/kfleet/sec-a/brokers/ids", "/kfleet/sec-a/brokers/ids/1", "/kfleet/sec-a/controller"} {
		_, err := admin.SetACL(p, newACL, -1)
		require.NoError(t, err, p)
	}
	_, err = pool.BrokerIDs(ctx, spec)
	require.ErrorIs(t, err, zk.ErrNoAuth, "the old password no longer reads it")
	require.NoError(t, store.Put(ctx, secret, secrets.Credentials{Username: user, Password: rotated}.Encode()))
	ids, err = pool.BrokerIDs(ctx, spec)
	require.NoError(t, err)
	assert.Equal(t, []int32{1}, ids)

	// Deleting the cluster's chroot: refused without auth, done with it.
	_, err = zookeeper.RemoveChroot(ctx, "sec-a", spec.ZooKeeper)
	require.ErrorIs(t, err, zk.ErrNoAuth)
	n, err := pool.RemoveChroot(ctx, spec)
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	ok, _, err := admin.Exists("/kfleet/sec-a")
	require.NoError(t, err)
	assert.False(t, ok)
}
