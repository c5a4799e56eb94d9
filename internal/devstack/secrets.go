package devstack

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/secrets"
)

// The stack's secrets: the superuser passwords of its SASL clusters live
// in the local fleet's configuration (kfake must know them) and in the
// stack's secret source, under AdminSecretName, which is all kfleet's specs
// of those clusters name.

// SecuredClusterID is the cluster `make run` runs with SASL/SCRAM and ACLs.
const SecuredClusterID = "local-s"

// LocalAdmin is the superuser of the local fleet's SASL clusters: kfleet's
// admin principal there.
const LocalAdmin = "kfleet-admin"

// SecuredCluster is `make run`'s secured cluster: 3 brokers that require
// SCRAM-SHA-512 and enforce ACLs, as kfleet's managed clusters do. Its
// password is made when the stack starts.
func SecuredCluster() localfleet.ClusterConfig {
	return localfleet.ClusterConfig{ID: SecuredClusterID, Brokers: 3, ACLs: true,
		SASL: localfleet.SASLConfig{Enabled: true, Mechanism: localfleet.SCRAMSHA512, Superuser: LocalAdmin}}
}

// AdminSecretName names the secret holding the admin principal's
// credentials of a local cluster.
func AdminSecretName(cluster string) string { return "kfleet/" + cluster + "/admin" }

// DefaultSecrets is the stack's secret source setting when
// StackOptions.Secrets is empty: a file store in the state folder.
func DefaultSecrets(dir string) string { return "file:" + filepath.Join(dir, "secrets") }

// withAdminPasswords returns cfg with a superuser password for every SASL
// cluster that has none: the one kept in keep from an earlier start (the
// fleet's data folder keeps its SCRAM users across restarts, so a new
// password would lock kfleet and the fleet itself out), else a fresh random
// one, kept there. cfg's clusters are copied, so the caller's
// configuration keeps no password.
func withAdminPasswords(ctx context.Context, cfg localfleet.Config, keep secrets.Source) (localfleet.Config, error) {
	cfg.Clusters = slices.Clone(cfg.Clusters)
	for i := range cfg.Clusters {
		c := &cfg.Clusters[i]
		if !c.SASL.Enabled || c.SASL.SuperuserPassword != "" {
			continue
		}
		kept, err := keep.Get(ctx, c.ID)
		switch {
		case err == nil:
			c.SASL.SuperuserPassword = string(kept)
		case errors.Is(err, secrets.ErrNotFound):
			c.SASL.SuperuserPassword = rand.Text() // 26 base32 characters: 130 bits
			if err := keep.Put(ctx, c.ID, []byte(c.SASL.SuperuserPassword)); err != nil {
				return cfg, fmt.Errorf("cluster %s: keep its superuser password: %w", c.ID, err)
			}
		default:
			return cfg, fmt.Errorf("cluster %s: read its kept superuser password: %w", c.ID, err)
		}
	}
	return cfg, nil
}

// openSecrets opens the stack's secret source (the fleet's Secrets
// Manager for "aws") and puts every SASL cluster's admin credentials in
// it.
func (s *Stack) openSecrets(ctx context.Context, cfg localfleet.Config) error {
	ep := s.Fleet.Endpoints().AWS
	awsCfg := aws.Config{Region: ep.Region, Credentials: credentials.NewStaticCredentialsProvider(ep.AccessKeyID, ep.SecretAccessKey, "")}
	src, err := secrets.Open(s.opts.Secrets, awsCfg, ep.Endpoint)
	if err != nil {
		return err
	}
	for _, c := range cfg.Clusters {
		if !c.SASL.Enabled {
			continue
		}
		creds := secrets.Credentials{Username: c.SASL.Superuser, Password: c.SASL.SuperuserPassword}
		if err := src.Put(ctx, AdminSecretName(c.ID), creds.Encode()); err != nil {
			return fmt.Errorf("cluster %s: store its admin credentials: %w", c.ID, err)
		}
	}
	s.Secrets = src
	return nil
}

// securityOf is the spec's security of a fleet cluster: SCRAM as its
// superuser, by the secret's name.
func securityOf(id string, c localfleet.ClusterEndpoints) fleet.Security {
	if c.SASL == nil {
		return fleet.Security{}
	}
	return fleet.Security{SASL: fleet.SASL{Mechanism: c.SASL.Mechanism, CredentialsSecret: AdminSecretName(id)}}
}

// SecretsSetting is the stack's secret source setting (KFLEET_SECRETS).
func (s *Stack) SecretsSetting() string { return s.opts.Secrets }
