package fleet

import (
	"errors"
	"fmt"
	"strings"
)

// Security is how kfleet authenticates to a secured cluster: SASL/SCRAM as
// its admin principal, TLS on the broker connections, digest auth to
// ZooKeeper. It names secrets, never holds them: a spec travels through
// workflow inputs and history, and a secret's value is read from the
// worker's secret source (internal/secrets) only when a connection is
// made. The zero value is a cluster with none of them.
type Security struct {
	SASL SASL `json:"sasl,omitzero" yaml:"sasl,omitempty"`
	TLS  TLS  `json:"tls,omitzero" yaml:"tls,omitempty"`
	// ZooKeeperDigestSecret names the credentials kfleet adds to its
	// ZooKeeper sessions with the digest scheme (the user:password the
	// chroot's ACLs grant); empty: no ZooKeeper auth.
	ZooKeeperDigestSecret string `json:"zookeeperDigestSecret,omitempty" yaml:"zookeeperDigestSecret,omitempty"`
}

// SASL is SASL/SCRAM authentication on every broker connection.
type SASL struct {
	// Mechanism is SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism string `json:"mechanism,omitempty" yaml:"mechanism,omitempty"`
	// CredentialsSecret names the secret holding the admin principal's
	// credentials, a JSON document {"username": "...", "password": "..."}.
	CredentialsSecret string `json:"credentialsSecret,omitempty" yaml:"credentialsSecret,omitempty"`
}

// TLS is TLS on every broker connection.
type TLS struct {
	Enabled bool `json:"enabled,omitempty" yaml:"enabled,omitempty"`
	// CASecret names a secret holding the PEM certificates that sign the
	// brokers' certificates; empty: the host's roots.
	CASecret string `json:"caSecret,omitempty" yaml:"caSecret,omitempty"`
	// ServerName is the name the brokers' certificates are checked
	// against; empty: each broker's host name.
	ServerName string `json:"serverName,omitempty" yaml:"serverName,omitempty"`
}

// SCRAM mechanisms a cluster's SASL can use.
const (
	SCRAMSHA256 = "SCRAM-SHA-256"
	SCRAMSHA512 = "SCRAM-SHA-512"
)

// Enabled reports whether the cluster uses SASL.
func (s SASL) Enabled() bool { return s != SASL{} }

// Secrets lists every secret name the spec's security refers to.
func (s Security) Secrets() []string {
	var names []string
	for _, n := range []string{s.SASL.CredentialsSecret, s.TLS.CASecret, s.ZooKeeperDigestSecret} {
		if n != "" {
			names = append(names, n)
		}
	}
	return names
}

// String describes the security for people (status, chat): mechanisms
// and secret names, "" for a plaintext cluster.
func (s Security) String() string {
	var parts []string
	if s.SASL.Enabled() {
		parts = append(parts, fmt.Sprintf("SASL %s (credentials: secret %s)", s.SASL.Mechanism, s.SASL.CredentialsSecret))
	}
	if s.TLS.Enabled {
		tls := "TLS"
		if s.TLS.CASecret != "" {
			tls += " (CA: secret " + s.TLS.CASecret + ")"
		}
		if s.TLS.ServerName != "" {
			tls += " as " + s.TLS.ServerName
		}
		parts = append(parts, tls)
	}
	if s.ZooKeeperDigestSecret != "" {
		parts = append(parts, "ZooKeeper digest (secret "+s.ZooKeeperDigestSecret+")")
	}
	return strings.Join(parts, ", ")
}

// Validate reports every problem of the security section at once.
func (s Security) Validate() error {
	var errs []error
	if s.SASL.Enabled() {
		switch s.SASL.Mechanism {
		case SCRAMSHA256, SCRAMSHA512:
		case "":
			errs = append(errs, fmt.Errorf("security.sasl.mechanism: required (%s or %s)", SCRAMSHA256, SCRAMSHA512))
		default:
			errs = append(errs, fmt.Errorf("security.sasl.mechanism %q: want %s or %s", s.SASL.Mechanism, SCRAMSHA256, SCRAMSHA512))
		}
		if s.SASL.CredentialsSecret == "" {
			errs = append(errs, errors.New("security.sasl.credentialsSecret: required: the name of the secret holding the admin principal's credentials"))
		} else if err := ValidSecretName(s.SASL.CredentialsSecret); err != nil {
			errs = append(errs, fmt.Errorf("security.sasl.credentialsSecret: %w", err))
		}
	}
	if !s.TLS.Enabled && (s.TLS.CASecret != "" || s.TLS.ServerName != "") {
		errs = append(errs, errors.New("security.tls: caSecret and serverName need enabled: true"))
	}
	if s.TLS.CASecret != "" {
		if err := ValidSecretName(s.TLS.CASecret); err != nil {
			errs = append(errs, fmt.Errorf("security.tls.caSecret: %w", err))
		}
	}
	if strings.ContainsAny(s.TLS.ServerName, " /:") {
		errs = append(errs, fmt.Errorf("security.tls.serverName %q: want a host name", s.TLS.ServerName))
	}
	if s.ZooKeeperDigestSecret != "" {
		if err := ValidSecretName(s.ZooKeeperDigestSecret); err != nil {
			errs = append(errs, fmt.Errorf("security.zookeeperDigestSecret: %w", err))
		}
	}
	return errors.Join(errs...)
}

// MaxSecretNameLen is the longest secret name (AWS Secrets Manager's).
const MaxSecretNameLen = 512

// ValidSecretName checks a secret's name: 1 to 512 of AWS Secrets Manager's
// characters (letters, digits and /_+=.@-), '/' separating path segments,
// none of them empty, "." or "..": a name is a file's name in the local
// file store, so it must never reach outside it. A name is checked where a
// spec is validated and again by every secret source.
func ValidSecretName(name string) error {
	if name == "" || len(name) > MaxSecretNameLen {
		return fmt.Errorf("secret name %q: want 1 to %d characters", name, MaxSecretNameLen)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_+=.@-", r)) {
			return fmt.Errorf("secret name %q: %q is not allowed (letters, digits and /_+=.@-)", name, r)
		}
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("secret name %q: empty, \".\" and \"..\" path segments are not allowed", name)
		}
	}
	return nil
}
