package activities

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kfleet/kfleet/internal/fleet"
)

// Tenants' activities: a tenant's SCRAM users, their ACLs on its prefix and
// their quotas, its data, and counting what is left. A new password is
// made here, stored in the secret source under its handout name, and set
// as the user's SCRAM credential: only the handout's NAME leaves the
// activity (workflow inputs, results and history, logs), never the value.

// TenantAdmin is the Kafka side of tenants (*kafka.Pool).
type TenantAdmin interface {
	UpsertSCRAMUser(ctx context.Context, spec fleet.ClusterSpec, user string, password []byte) error
	DeleteSCRAMUser(ctx context.Context, spec fleet.ClusterSpec, user string) error
	GrantPrefix(ctx context.Context, spec fleet.ClusterSpec, user, prefix string) (int, error)
	RevokeUser(ctx context.Context, spec fleet.ClusterSpec, user string) (int, error)
	SetUserQuotas(ctx context.Context, spec fleet.ClusterSpec, user string, q fleet.TenantQuotas) error
	DeleteUserQuotas(ctx context.Context, spec fleet.ClusterSpec, user string) error
	DeletePrefixTopics(ctx context.Context, spec fleet.ClusterSpec, prefix string) (int, error)
	DeletePrefixGroups(ctx context.Context, spec fleet.ClusterSpec, prefix string) (int, error)
	TenantFootprint(ctx context.Context, spec fleet.ClusterSpec, prefix string, users []string) (fleet.TenantFootprint, error)
}

// SecretStore is the secret source tenants' new passwords are handed out
// through (files locally, AWS Secrets Manager in production): the three
// calls kfleet needs of it. Activities.SecretNotFound is its "no such
// secret" error.
type SecretStore interface {
	Get(ctx context.Context, name string) ([]byte, error)
	Put(ctx context.Context, name string, value []byte) error
	Delete(ctx context.Context, name string) error
}

// TenantUserInput names one of a tenant's users on a cluster, and the
// quotas its plan gives it.
type TenantUserInput struct {
	Spec   fleet.ClusterSpec  `json:"spec"`
	Tenant string             `json:"tenant"`
	User   string             `json:"user"`
	Quotas fleet.TenantQuotas `json:"quotas,omitzero"`
}

func (in TenantUserInput) check(what string, quotas bool) error {
	switch {
	case in.Spec.ID == "" || in.Tenant == "" || in.User == "":
		return badInput(fmt.Errorf("%s: a cluster, a tenant and a user are required (got %q, %q, %q)", what, in.Spec.ID, in.Tenant, in.User))
	case quotas && (in.Quotas.ProducerByteRate <= 0 || in.Quotas.ConsumerByteRate <= 0 || in.Quotas.RequestPercentage <= 0 || in.Quotas.ControllerMutationRate <= 0):
		return badInput(fmt.Errorf("%s: cluster %s tenant %s: every quota must be positive, got %+v", what, in.Spec.ID, in.Tenant, in.Quotas))
	}
	return nil
}

// TenantHandout says where a user's new password waits for its caller.
type TenantHandout struct {
	User string `json:"user"`
	// Handout is the secret's name in the secret source.
	Handout string `json:"handout"`
}

// CreateTenantUser makes a password for the user, stores it in the secret
// source under its handout name and sets it as the user's SCRAM-SHA-512
// credential (creating the user). A retry makes a new password and
// stores and sets it again, so the handout and the credential agree.
func (a *Activities) CreateTenantUser(ctx context.Context, in TenantUserInput) (TenantHandout, error) {
	if err := in.check("create tenant user", false); err != nil {
		return TenantHandout{}, err
	}
	if a.Secrets == nil || a.Tenants == nil {
		return TenantHandout{}, badInput(fmt.Errorf("cluster %s tenant %s: this worker has no secret source or tenant admin configured", in.Spec.ID, in.Tenant))
	}
	password, err := newPassword()
	if err != nil {
		return TenantHandout{}, err
	}
	creds := fleet.TenantCredentials{Cluster: in.Spec.ID, Tenant: in.Tenant, User: in.User, Password: password,
		Mechanism: fleet.TenantSASLMechanism, Prefix: fleet.TenantPrefix(in.Tenant), Bootstrap: in.Spec.Bootstrap}
	doc, err := json.Marshal(creds)
	if err != nil {
		return TenantHandout{}, err
	}
	name := fleet.HandoutName(in.Spec.ID, in.Tenant, in.User)
	// Stored before it is set: a credential no one can be handed is lost.
	if err := a.Secrets.Put(ctx, name, doc); err != nil {
		return TenantHandout{}, fmt.Errorf("cluster %s tenant %s: store handout %s: %w", in.Spec.ID, in.Tenant, name, err)
	}
	if err := a.Tenants.UpsertSCRAMUser(ctx, in.Spec, in.User, []byte(password)); err != nil {
		return TenantHandout{}, fmt.Errorf("tenant %s: %w", in.Tenant, err)
	}
	a.Log.Info().Str("cluster", in.Spec.ID).Str("tenant", in.Tenant).Str("user", in.User).Str("handout", name).Msg("tenant user's credential set; its password waits under its handout name")
	return TenantHandout{User: in.User, Handout: name}, nil
}

// newPassword is 256 random bits, URL-safe base64 (43 characters).
func newPassword() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("new password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// TenantGrant is what GrantTenantUser set: the user's ACLs on the prefix.
type TenantGrant struct {
	ACLs int `json:"acls"`
}

// GrantTenantUser gives the user the tenant's ACLs, PREFIXED on its prefix
// only, and the plan's quotas.
func (a *Activities) GrantTenantUser(ctx context.Context, in TenantUserInput) (TenantGrant, error) {
	if err := in.check("grant tenant user", true); err != nil {
		return TenantGrant{}, err
	}
	n, err := a.Tenants.GrantPrefix(ctx, in.Spec, in.User, fleet.TenantPrefix(in.Tenant))
	if err != nil {
		return TenantGrant{}, fmt.Errorf("tenant %s: %w", in.Tenant, err)
	}
	if err := a.Tenants.SetUserQuotas(ctx, in.Spec, in.User, in.Quotas); err != nil {
		return TenantGrant{}, fmt.Errorf("tenant %s: %w", in.Tenant, err)
	}
	return TenantGrant{ACLs: n}, nil
}

// SetTenantQuotas sets the user's quotas to its (new) plan's.
func (a *Activities) SetTenantQuotas(ctx context.Context, in TenantUserInput) error {
	if err := in.check("set tenant quotas", true); err != nil {
		return err
	}
	if err := a.Tenants.SetUserQuotas(ctx, in.Spec, in.User, in.Quotas); err != nil {
		return fmt.Errorf("tenant %s: %w", in.Tenant, err)
	}
	return nil
}

// TenantUserRemoved counts what RemoveTenantUser removed.
type TenantUserRemoved struct {
	ACLs int `json:"acls"`
	// Handout is set when a password no one fetched was deleted.
	Handout bool `json:"handout,omitempty"`
}

// RemoveTenantUser cuts a user off and removes it: its ACLs first (its
// connections lose their rights at once), its SCRAM credential (no new
// connection authenticates), its quotas, and a handout no one fetched.
// What is gone already is done.
func (a *Activities) RemoveTenantUser(ctx context.Context, in TenantUserInput) (TenantUserRemoved, error) {
	if err := in.check("remove tenant user", false); err != nil {
		return TenantUserRemoved{}, err
	}
	var out TenantUserRemoved
	var err error
	if out.ACLs, err = a.Tenants.RevokeUser(ctx, in.Spec, in.User); err != nil {
		return out, fmt.Errorf("tenant %s: %w", in.Tenant, err)
	}
	if err := a.Tenants.DeleteSCRAMUser(ctx, in.Spec, in.User); err != nil {
		return out, fmt.Errorf("tenant %s: %w", in.Tenant, err)
	}
	if err := a.Tenants.DeleteUserQuotas(ctx, in.Spec, in.User); err != nil {
		return out, fmt.Errorf("tenant %s: %w", in.Tenant, err)
	}
	if a.Secrets != nil {
		name := fleet.HandoutName(in.Spec.ID, in.Tenant, in.User)
		switch err := a.Secrets.Delete(ctx, name); {
		case err == nil:
			out.Handout = true
		case !a.secretNotFound(err):
			return out, fmt.Errorf("cluster %s tenant %s: delete handout %s: %w", in.Spec.ID, in.Tenant, name, err)
		}
	}
	a.Log.Info().Str("cluster", in.Spec.ID).Str("tenant", in.Tenant).Str("user", in.User).Int("acls", out.ACLs).Msg("tenant user removed")
	return out, nil
}

func (a *Activities) secretNotFound(err error) bool {
	return a.SecretNotFound != nil && errors.Is(err, a.SecretNotFound)
}

// TenantDataInput names a tenant's prefix on a cluster.
type TenantDataInput struct {
	Spec   fleet.ClusterSpec `json:"spec"`
	Tenant string            `json:"tenant"`
	// Users are the tenant's users, for a footprint.
	Users []string `json:"users,omitempty"`
}

// TenantDataDeleted counts what DeleteTenantData deleted.
type TenantDataDeleted struct {
	Topics int `json:"topics"`
	Groups int `json:"groups"`
}

// DeleteTenantData deletes the tenant's topics (in batches, honouring the
// controller's mutation throttle) and consumer groups.
func (a *Activities) DeleteTenantData(ctx context.Context, in TenantDataInput) (TenantDataDeleted, error) {
	if in.Spec.ID == "" || fleet.ValidateTenantName(in.Tenant) != nil {
		return TenantDataDeleted{}, badInput(fmt.Errorf("delete tenant data: a cluster and a valid tenant are required (got %q, %q)", in.Spec.ID, in.Tenant))
	}
	defer keepAlive(ctx, in.Tenant)()
	var out TenantDataDeleted
	var err error
	prefix := fleet.TenantPrefix(in.Tenant)
	if out.Topics, err = a.Tenants.DeletePrefixTopics(ctx, in.Spec, prefix); err != nil {
		return out, fmt.Errorf("tenant %s: %w", in.Tenant, err)
	}
	if out.Groups, err = a.Tenants.DeletePrefixGroups(ctx, in.Spec, prefix); err != nil {
		return out, fmt.Errorf("tenant %s: %w", in.Tenant, err)
	}
	a.Log.Info().Str("cluster", in.Spec.ID).Str("tenant", in.Tenant).Int("topics", out.Topics).Int("groups", out.Groups).Msg("tenant data deleted")
	return out, nil
}

// TenantFootprint counts what the tenant's prefix and users hold.
func (a *Activities) TenantFootprint(ctx context.Context, in TenantDataInput) (fleet.TenantFootprint, error) {
	if in.Spec.ID == "" || fleet.ValidateTenantName(in.Tenant) != nil {
		return fleet.TenantFootprint{}, badInput(fmt.Errorf("tenant footprint: a cluster and a valid tenant are required (got %q, %q)", in.Spec.ID, in.Tenant))
	}
	if a.Tenants == nil {
		return fleet.TenantFootprint{}, badInput(fmt.Errorf("cluster %s tenant %s: this worker has no tenant admin configured", in.Spec.ID, in.Tenant))
	}
	f, err := a.Tenants.TenantFootprint(ctx, in.Spec, fleet.TenantPrefix(in.Tenant), in.Users)
	if err != nil {
		return f, fmt.Errorf("tenant %s: %w", in.Tenant, err)
	}
	return f, nil
}
