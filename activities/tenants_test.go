package activities_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

var errNoSecret = errors.New("no such secret")

// memSecrets is an in-memory secret source.
type memSecrets struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memSecrets) Get(_ context.Context, name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[name]
	if !ok {
		return nil, errNoSecret
	}
	return v, nil
}

func (s *memSecrets) Put(_ context.Context, name string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[name] = v
	return nil
}

func (s *memSecrets) Delete(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[name]; !ok {
		return errNoSecret
	}
	delete(s.m, name)
	return nil
}

// fakeTenantAdmin records SCRAM passwords and calls.
type fakeTenantAdmin struct {
	activities.TenantAdmin // calls not faked panic
	scram                  map[string]string
	calls                  []string
}

func (f *fakeTenantAdmin) UpsertSCRAMUser(_ context.Context, _ fleet.ClusterSpec, user string, pw []byte) error {
	f.scram[user] = string(pw)
	f.calls = append(f.calls, "upsert "+user)
	return nil
}

func (f *fakeTenantAdmin) DeleteSCRAMUser(_ context.Context, _ fleet.ClusterSpec, user string) error {
	delete(f.scram, user)
	f.calls = append(f.calls, "scram-delete "+user)
	return nil
}

func (f *fakeTenantAdmin) RevokeUser(_ context.Context, _ fleet.ClusterSpec, user string) (int, error) {
	f.calls = append(f.calls, "revoke "+user)
	return 10, nil
}

func (f *fakeTenantAdmin) DeleteUserQuotas(_ context.Context, _ fleet.ClusterSpec, user string) error {
	f.calls = append(f.calls, "quotas-delete "+user)
	return nil
}

// A new password goes to the secret source and to SCRAM, and only the
// handout's name comes back; a retry makes them agree again; removing the
// user removes a handout no one fetched.
func TestTenantUserPasswordIsHandedOutByName(t *testing.T) {
	store := &memSecrets{m: map[string][]byte{}}
	kafka := &fakeTenantAdmin{scram: map[string]string{}}
	acts := &activities.Activities{Tenants: kafka, Secrets: store, SecretNotFound: errNoSecret, Log: zerolog.Nop()}
	ctx := context.Background()
	in := activities.TenantUserInput{Spec: fleet.ClusterSpec{ID: "orders", Bootstrap: []string{"b1:9092"}}, Tenant: "wabash-58799", User: "wabash-58799"}

	h, err := acts.CreateTenantUser(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, activities.TenantHandout{User: "wabash-58799", Handout: "kfleet/tenants/orders/wabash-58799/wabash-58799"}, h)
	raw, err := json.Marshal(h)
	require.NoError(t, err)
	var creds fleet.TenantCredentials
	require.NoError(t, json.Unmarshal(store.m[h.Handout], &creds))
	assert.Len(t, creds.Password, 43)
	assert.Equal(t, kafka.scram["wabash-58799"], creds.Password)
	assert.NotContains(t, string(raw), creds.Password)
	assert.Equal(t, "wabash-58799.", creds.Prefix)
	assert.Equal(t, []string{"b1:9092"}, creds.Bootstrap)

	first := creds.Password
	_, err = acts.CreateTenantUser(ctx, in) // a retry
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(store.m[h.Handout], &creds))
	assert.NotEqual(t, first, creds.Password)
	assert.Equal(t, kafka.scram["wabash-58799"], creds.Password, "the handout and the credential agree")

	rm, err := acts.RemoveTenantUser(ctx, in)
	require.NoError(t, err)
	assert.True(t, rm.Handout)
	assert.Empty(t, store.m)
	assert.Empty(t, kafka.scram)
	rm, err = acts.RemoveTenantUser(ctx, in)
	require.NoError(t, err, "gone already is done")
	assert.False(t, rm.Handout)
	assert.True(t, strings.HasPrefix(kafka.calls[2], "revoke"), "ACLs go first: %v", kafka.calls)

	none := &activities.Activities{Tenants: kafka, Log: zerolog.Nop()}
	_, err = none.CreateTenantUser(ctx, in)
	assert.ErrorContains(t, err, "no secret source")
	_, err = acts.CreateTenantUser(ctx, activities.TenantUserInput{Spec: in.Spec, Tenant: "wabash-58799"})
	assert.ErrorContains(t, err, "a cluster, a tenant and a user are required")
}
