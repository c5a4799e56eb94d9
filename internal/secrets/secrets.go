// Package secrets reads and writes the secrets kfleet authenticates with —
// its admin principal's SCRAM credentials, a ZooKeeper digest, a CA — and
// those it creates (tenants' credentials), by name. Workflow inputs,
// results, history, logs, search attributes and chat carry names only: a
// value is read from a Source by the activity or client that needs it, when
// it needs it, and goes nowhere else.
//
// Two sources: a directory of 0600 files (the local stack, a developer's
// machine) and AWS Secrets Manager (production; the local fleet serves its
// API too). Open picks one from a setting such as KFLEET_SECRETS.
package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/kfleet/kfleet/internal/fleet"
)

// Source is where secrets live, by name. Names follow
// fleet.ValidSecretName. Errors name the secret, never its value.
type Source interface {
	// Get returns the secret's value; ErrNotFound when there is none.
	Get(ctx context.Context, name string) ([]byte, error)
	// Put creates the secret or replaces its value.
	Put(ctx context.Context, name string, value []byte) error
	// Delete removes the secret; one that is gone already is no error.
	Delete(ctx context.Context, name string) error
}

// ErrNotFound is Get's error for a name that holds no secret.
var ErrNotFound = errors.New("secret not found")

// EnvVar is the setting workers and the CLI read their Source from.
const EnvVar = "KFLEET_SECRETS"

// Open returns the Source a setting names:
//
//	file:/path/to/dir   a FileStore in that directory (created 0700)
//	aws                 AWS Secrets Manager, with awsCfg; endpoint
//	                    overrides AWS's (the local fleet's), empty: AWS's
//	aws:prefix/         the same, every name prefixed (kfleet/prod/)
//
// An empty setting is an error: a worker without a source could not reach
// a secured cluster, and should say so at start, not at the first roll.
func Open(setting string, awsCfg aws.Config, endpoint string) (Source, error) {
	switch {
	case strings.HasPrefix(setting, "file:"):
		dir := strings.TrimPrefix(setting, "file:")
		if dir == "" {
			return nil, fmt.Errorf("%s=%q: want file:/path/to/dir", EnvVar, setting)
		}
		return NewFileStore(dir)
	case setting == "aws":
		return NewSecretsManager(awsCfg, endpoint, ""), nil
	case strings.HasPrefix(setting, "aws:"):
		prefix := strings.TrimPrefix(setting, "aws:")
		if err := fleet.ValidSecretName(prefix + "x"); err != nil {
			return nil, fmt.Errorf("%s=%q: bad name prefix: %w", EnvVar, setting, err)
		}
		return NewSecretsManager(awsCfg, endpoint, prefix), nil
	}
	return nil, fmt.Errorf("%s=%q: want file:/path/to/dir, aws or aws:prefix/", EnvVar, setting)
}

// Credentials is a principal's user name and password, stored as the JSON
// document {"username": "...", "password": "..."}: the value of the
// secrets fleet.SASL.CredentialsSecret and fleet.Security's
// ZooKeeperDigestSecret name. It redacts its password when printed or
// marshalled, so logging one by mistake leaks nothing; Encode gives the
// stored form.
type Credentials struct {
	Username string
	Password string
}

type storedCredentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// ParseCredentials reads a stored credentials document. Its error never
// quotes the value.
func ParseCredentials(value []byte) (Credentials, error) {
	var s storedCredentials
	if err := json.Unmarshal(value, &s); err != nil {
		// json's syntax errors quote no input, but a type error could
		// name a field's value: say only what is expected.
		return Credentials{}, errors.New(`not a credentials document: want JSON {"username": "...", "password": "..."}`)
	}
	if s.Username == "" || s.Password == "" {
		return Credentials{}, errors.New("credentials document: username and password are required")
	}
	return Credentials(s), nil
}

// Encode is the stored form of c.
func (c Credentials) Encode() []byte {
	b, _ := json.Marshal(storedCredentials(c)) // strings only: cannot fail
	return b
}

// String shows the user name only.
func (c Credentials) String() string { return c.Username + ":<redacted>" }

// GoString shows the user name only, for %#v.
func (c Credentials) GoString() string { return "secrets.Credentials{" + c.Username + ":<redacted>}" }

// MarshalJSON shows the user name only, for loggers that marshal values.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"username": c.Username, "password": "<redacted>"})
}

// GetCredentials reads and parses the credentials secret name from src.
func GetCredentials(ctx context.Context, src Source, name string) (Credentials, error) {
	if src == nil {
		return Credentials{}, fmt.Errorf("secret %s: no secret source configured (%s)", name, EnvVar)
	}
	v, err := src.Get(ctx, name)
	if err != nil {
		return Credentials{}, err
	}
	c, err := ParseCredentials(v)
	if err != nil {
		return Credentials{}, fmt.Errorf("secret %s: %w", name, err)
	}
	return c, nil
}
