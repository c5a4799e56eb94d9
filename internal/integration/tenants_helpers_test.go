package integration_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/kafka"
)

// What the tenant test needs around the stack: a secret source (a folder
// of 0600 files, the shape of the local one), an admin that logs in to a
// SASL cluster as its superuser, and clients that authenticate as tenants.

// errNoSecret is the test secret source's "no such secret".
var errNoSecret = errors.New("no such secret")

// dirSecrets keeps each secret in a file of its own.
type dirSecrets struct{ dir string }

func (d dirSecrets) path(name string) string { return filepath.Join(d.dir, url.PathEscape(name)) }

func (d dirSecrets) Get(_ context.Context, name string) ([]byte, error) {
	b, err := os.ReadFile(d.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("secret %s: %w", name, errNoSecret)
	}
	return b, err
}

func (d dirSecrets) Put(_ context.Context, name string, value []byte) error {
	return os.WriteFile(d.path(name), value, 0o600)
}

func (d dirSecrets) Delete(_ context.Context, name string) error {
	err := os.Remove(d.path(name))
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("secret %s: %w", name, errNoSecret)
	}
	return err
}

// saslTenantAdmin is activities.TenantAdmin over admins that log in as the
// cluster's superuser.
// TODO(secured): once kafka.Pool dials SASL/TLS from the cluster spec's
// Security section (the "secured" work), the worker's own pool reaches
// this cluster and the test drops this override (StackOptions.Tenants.Admin).
type saslTenantAdmin struct {
	user, pass string
	mu         sync.Mutex
	admins     map[string]*kafka.Admin
}

func (s *saslTenantAdmin) admin(spec fleet.ClusterSpec) (*kafka.Admin, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.admins[spec.ID]; ok {
		return a, nil
	}
	a, err := kafka.Dial(spec.ID, spec.Bootstrap, kgo.SASL(scram.Auth{User: s.user, Pass: s.pass}.AsSha512Mechanism()))
	if err != nil {
		return nil, err
	}
	if s.admins == nil {
		s.admins = map[string]*kafka.Admin{}
	}
	s.admins[spec.ID] = a
	return a, nil
}

func (s *saslTenantAdmin) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.admins {
		a.Close()
	}
}

func do[T any](s *saslTenantAdmin, spec fleet.ClusterSpec, f func(*kafka.Admin) (T, error)) (T, error) {
	a, err := s.admin(spec)
	if err != nil {
		var zero T
		return zero, err
	}
	return f(a)
}

func (s *saslTenantAdmin) UpsertSCRAMUser(ctx context.Context, spec fleet.ClusterSpec, user string, password []byte) error {
	_, err := do(s, spec, func(a *kafka.Admin) (int, error) { return 0, a.UpsertSCRAMUser(ctx, user, password) })
	return err
}

func (s *saslTenantAdmin) DeleteSCRAMUser(ctx context.Context, spec fleet.ClusterSpec, user string) error {
	_, err := do(s, spec, func(a *kafka.Admin) (int, error) { return 0, a.DeleteSCRAMUser(ctx, user) })
	return err
}

func (s *saslTenantAdmin) GrantPrefix(ctx context.Context, spec fleet.ClusterSpec, user, prefix string) (int, error) {
	return do(s, spec, func(a *kafka.Admin) (int, error) { return a.GrantPrefix(ctx, user, prefix) })
}

func (s *saslTenantAdmin) RevokeUser(ctx context.Context, spec fleet.ClusterSpec, user string) (int, error) {
	return do(s, spec, func(a *kafka.Admin) (int, error) { return a.RevokeUser(ctx, user) })
}

func (s *saslTenantAdmin) SetUserQuotas(ctx context.Context, spec fleet.ClusterSpec, user string, q fleet.TenantQuotas) error {
	_, err := do(s, spec, func(a *kafka.Admin) (int, error) { return 0, a.SetUserQuotas(ctx, user, q) })
	return err
}

func (s *saslTenantAdmin) DeleteUserQuotas(ctx context.Context, spec fleet.ClusterSpec, user string) error {
	_, err := do(s, spec, func(a *kafka.Admin) (int, error) { return 0, a.DeleteUserQuotas(ctx, user) })
	return err
}

func (s *saslTenantAdmin) DeletePrefixTopics(ctx context.Context, spec fleet.ClusterSpec, prefix string) (int, error) {
	return do(s, spec, func(a *kafka.Admin) (int, error) { return a.DeletePrefixTopics(ctx, prefix) })
}

func (s *saslTenantAdmin) DeletePrefixGroups(ctx context.Context, spec fleet.ClusterSpec, prefix string) (int, error) {
	return do(s, spec, func(a *kafka.Admin) (int, error) { return a.DeletePrefixGroups(ctx, prefix) })
}

func (s *saslTenantAdmin) TenantFootprint(ctx context.Context, spec fleet.ClusterSpec, prefix string, users []string) (fleet.TenantFootprint, error) {
	return do(s, spec, func(a *kafka.Admin) (fleet.TenantFootprint, error) { return a.TenantFootprint(ctx, prefix, users) })
}

// tenantClient is a client that authenticates as a tenant's user, closed
// when the test ends.
func tenantClient(t *testing.T, creds fleet.TenantCredentials, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	require.Equal(t, fleet.TenantSASLMechanism, creds.Mechanism)
	base := []kgo.Opt{kgo.SeedBrokers(creds.Bootstrap...), kgo.SASL(scram.Auth{User: creds.User, Pass: creds.Password}.AsSha512Mechanism()),
		kgo.DisableIdempotentWrite(), kgo.RetryTimeout(3 * time.Second), kgo.RequestRetries(1)}
	cl, err := kgo.NewClient(append(base, opts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// authenticates reports whether creds log in: a metadata request on a
// fresh connection answers.
func authenticates(ctx context.Context, t *testing.T, creds fleet.TenantCredentials) bool {
	t.Helper()
	cl := tenantClient(t, creds)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	return err == nil
}

// topicMetadata asks for one topic and returns its answer.
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

// topicNames lists the cluster's topics, asking a broker (kadm may answer
// from its client's metadata cache and show a deleted topic alive).
func topicNames(ctx context.Context, t *testing.T, cl *kgo.Client) []string {
	t.Helper()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	require.NoError(t, err)
	var names []string
	for _, tp := range resp.Topics {
		if tp.Topic != nil && !strings.HasPrefix(*tp.Topic, "__") {
			names = append(names, *tp.Topic)
		}
	}
	slices.Sort(names)
	return names
}
