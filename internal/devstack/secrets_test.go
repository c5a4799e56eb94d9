package devstack

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/secrets"
)

// A SASL cluster's superuser password is made once and kept: the fleet's
// data folder keeps its SCRAM users, so a restarted stack (a second
// `make run`) must log in with the same password. A password the
// configuration gives, and clusters without SASL, are left as they are.
func TestAdminPasswordsAreKeptAcrossStarts(t *testing.T) {
	ctx := context.Background()
	keep, err := secrets.NewFileStore(t.TempDir())
	require.NoError(t, err)
	cfg := localfleet.Config{Clusters: []localfleet.ClusterConfig{
		SecuredCluster(),
		{ID: "plain", Brokers: 3},
		{ID: "given", Brokers: 3, SASL: localfleet.SASLConfig{Enabled: true, Superuser: "admin", SuperuserPassword: "from-the-config"}},
	}}

	first, err := withAdminPasswords(ctx, cfg, keep)
	require.NoError(t, err)
	made := first.Clusters[0].SASL.SuperuserPassword
	assert.Len(t, made, 26)
	assert.Empty(t, cfg.Clusters[0].SASL.SuperuserPassword, "the caller's configuration keeps no password")
	assert.Empty(t, first.Clusters[1].SASL.SuperuserPassword)
	assert.Equal(t, "from-the-config", first.Clusters[2].SASL.SuperuserPassword)

	again, err := withAdminPasswords(ctx, cfg, keep)
	require.NoError(t, err)
	assert.Equal(t, made, again.Clusters[0].SASL.SuperuserPassword, "a restart logs in with the kept password")

	other, err := secrets.NewFileStore(t.TempDir())
	require.NoError(t, err)
	fresh, err := withAdminPasswords(ctx, cfg, other)
	require.NoError(t, err)
	assert.NotEqual(t, made, fresh.Clusters[0].SASL.SuperuserPassword, "a new state folder, a new password")
}
