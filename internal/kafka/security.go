package kafka

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/secrets"
)

// dialTimeout bounds a broker dial: a broker being restarted refuses
// connections; fail over to the others quickly instead of waiting out the
// default.
const dialTimeout = 5 * time.Second

// DialSpec connects to the cluster as its spec says: its bootstrap
// brokers, and SASL/SCRAM and TLS when spec.Security asks, with secrets
// from src (nil for a cluster that names none).
func DialSpec(spec fleet.ClusterSpec, src secrets.Source, opts ...kgo.Opt) (*Admin, error) {
	sec, err := securityOpts(spec, src)
	if err != nil {
		return nil, err
	}
	return Dial(spec.ID, spec.Bootstrap, append(sec, opts...)...)
}

// securityOpts are the client options of the spec's security. Secrets are
// read when franz-go opens a connection (SCRAM's authFn, the TLS dialer),
// not when the client is made: a rotated password or CA is used by the
// next connection, a connection refused with a stale one is retried with
// the new one, and no value is held longer than one handshake.
func securityOpts(spec fleet.ClusterSpec, src secrets.Source) ([]kgo.Opt, error) {
	s := spec.Security
	if names := s.Secrets(); len(names) > 0 && src == nil {
		return nil, fmt.Errorf("cluster %s: its spec names secrets %v but this process has no secret source (%s)", spec.ID, names, secrets.EnvVar)
	}
	var opts []kgo.Opt
	if s.SASL.Enabled() {
		m, err := scramMechanism(spec.ID, s.SASL, src)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	if s.TLS.Enabled {
		if s.TLS.CASecret == "" {
			opts = append(opts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12, ServerName: s.TLS.ServerName}))
		} else {
			opts = append(opts, kgo.Dialer(tlsDialer(spec.ID, s.TLS, src)))
		}
	}
	return opts, nil
}

// scramMechanism authenticates as the credentials in the spec's secret,
// read at each authentication.
func scramMechanism(cluster string, s fleet.SASL, src secrets.Source) (sasl.Mechanism, error) {
	auth := func(ctx context.Context) (scram.Auth, error) {
		c, err := secrets.GetCredentials(ctx, src, s.CredentialsSecret)
		if err != nil {
			return scram.Auth{}, fmt.Errorf("cluster %s: SASL credentials: %w", cluster, err)
		}
		return scram.Auth{User: c.Username, Pass: c.Password}, nil
	}
	switch s.Mechanism {
	case fleet.SCRAMSHA256:
		return scram.Sha256(auth), nil
	case fleet.SCRAMSHA512:
		return scram.Sha512(auth), nil
	}
	return nil, fmt.Errorf("cluster %s: SASL mechanism %q: want %s or %s", cluster, s.Mechanism, fleet.SCRAMSHA256, fleet.SCRAMSHA512)
}

// tlsDialer dials a broker with TLS, trusting the CA certificates of the
// spec's CA secret, read at each dial.
func tlsDialer(cluster string, t fleet.TLS, src secrets.Source) func(ctx context.Context, network, host string) (net.Conn, error) {
	return func(ctx context.Context, network, host string) (net.Conn, error) {
		pem, err := src.Get(ctx, t.CASecret)
		if err != nil {
			return nil, fmt.Errorf("cluster %s: TLS CA: %w", cluster, err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("cluster %s: TLS CA: secret %s holds no PEM certificate", cluster, t.CASecret)
		}
		// An empty ServerName is the dialed host's, as tls.Dialer does.
		d := tls.Dialer{NetDialer: &net.Dialer{Timeout: dialTimeout},
			Config: &tls.Config{RootCAs: roots, ServerName: t.ServerName, MinVersion: tls.VersionTLS12}}
		return d.DialContext(ctx, network, host)
	}
}

// securityKey identifies a spec's security in the pool: a changed
// mechanism, secret name or TLS setting dials anew. It holds names only;
// changed values need no new client (see securityOpts).
func securityKey(s fleet.Security) string {
	if s == (fleet.Security{}) {
		return ""
	}
	b, _ := json.Marshal(s) // strings and bools only: cannot fail
	return string(b)
}
