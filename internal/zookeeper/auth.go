package zookeeper

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/secrets"
)

// ZooKeeper digest auth: a session adds "user:password" with the digest
// scheme, and reads what the chroot's ACLs grant that identity
// (digest:user:base64(sha1(user:password))). The credentials come from the
// secret fleet.Security.ZooKeeperDigestSecret names, read when a session is
// dialed; go-zookeeper adds them again on every reconnect of the session.

// DialOption configures Dial.
type DialOption func(*dialConfig)

type dialConfig struct {
	digest *secrets.Credentials
}

// WithDigest authenticates the session with the digest scheme as c.
func WithDigest(c secrets.Credentials) DialOption {
	return func(d *dialConfig) { d.digest = &c }
}

// addAuth adds the session's credentials, if any. Its errors name the user,
// never the password.
func (d dialConfig) addAuth(c *Client) error {
	if d.digest == nil {
		return nil
	}
	if strings.Contains(d.digest.Username, ":") {
		return fmt.Errorf("cluster %s: zookeeper digest user %q: a ':' ends the user in digest auth", c.cluster, d.digest.Username)
	}
	if err := c.conn.AddAuth("digest", []byte(d.digest.Username+":"+d.digest.Password)); err != nil {
		return fmt.Errorf("cluster %s: zookeeper digest auth as %s: %w", c.cluster, d.digest.Username, err)
	}
	return nil
}

// PoolOption configures a Pool.
type PoolOption func(*Pool)

// WithSecrets is where the pool reads the digest credentials secured
// clusters' specs name; without it, such a cluster cannot be dialed.
func WithSecrets(src secrets.Source) PoolOption { return func(p *Pool) { p.secrets = src } }

// auth resolves the spec's ZooKeeper credentials: the dial options and a
// key that tells the pool to dial anew when they change (the secret's name
// and a hash of its value: a rotated password takes effect on the next
// call, without a restart).
func (p *Pool) auth(ctx context.Context, spec fleet.ClusterSpec) ([]DialOption, string, error) {
	name := spec.Security.ZooKeeperDigestSecret
	if name == "" {
		return nil, "", nil
	}
	if p.secrets == nil {
		return nil, "", fmt.Errorf("cluster %s: its spec names ZooKeeper digest secret %s but this process has no secret source (%s)", spec.ID, name, secrets.EnvVar)
	}
	c, err := secrets.GetCredentials(ctx, p.secrets, name)
	if err != nil {
		return nil, "", fmt.Errorf("cluster %s: zookeeper digest: %w", spec.ID, err)
	}
	sum := sha256.Sum256(c.Encode())
	return []DialOption{WithDigest(c)}, "|digest:" + name + ":" + hex.EncodeToString(sum[:8]), nil
}
