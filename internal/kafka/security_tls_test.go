package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/secrets"
)

// testCA makes a CA and a server certificate it signs for names, and
// returns the CA's PEM and the server's TLS certificate.
func testCA(t *testing.T, names ...string) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfleet test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	ca, err = x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
}

// TestDialSpecTLSAndSCRAM dials a kfake cluster that listens with TLS and
// requires SCRAM, trusting the CA in a secret and authenticating with the
// credentials in another, as a spec names them.
func TestDialSpecTLSAndSCRAM(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	caPEM, cert := testCA(t, "kafka.test.internal")
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(), kfake.Superuser(fleet.SCRAMSHA512, "kfleet-admin", "tls-pass-1"))
	require.NoError(t, err)
	t.Cleanup(c.Close)

	store, err := secrets.NewFileStore(filepath.Join(t.TempDir(), "s"))
	require.NoError(t, err)
	require.NoError(t, store.Put(ctx, "prod/ca", caPEM))
	require.NoError(t, store.Put(ctx, "prod/admin", secrets.Credentials{Username: "kfleet-admin", Password: "tls-pass-1"}.Encode()))
	spec := fleet.ClusterSpec{ID: "tls-a", Bootstrap: c.ListenAddrs(), Security: fleet.Security{
		SASL: fleet.SASL{Mechanism: fleet.SCRAMSHA512, CredentialsSecret: "prod/admin"},
		TLS:  fleet.TLS{Enabled: true, CASecret: "prod/ca", ServerName: "kafka.test.internal"},
	}}
	a, err := DialSpec(spec, store)
	require.NoError(t, err)
	defer a.Close()
	_, err = a.adm.BrokerMetadata(ctx)
	require.NoError(t, err, "TLS with the secret's CA, then SCRAM")

	// The certificate names another host: refused.
	other := spec
	other.Security.TLS.ServerName = "elsewhere.internal"
	b, err := DialSpec(other, store, retryBriefly())
	require.NoError(t, err)
	defer b.Close()
	_, err = b.adm.BrokerMetadata(ctx)
	require.ErrorContains(t, err, "certificate")

	// A CA secret that holds no certificate, or is missing, says which.
	require.NoError(t, store.Put(ctx, "prod/bad-ca", []byte("not a pem")))
	for name, want := range map[string]string{"prod/bad-ca": "secret prod/bad-ca holds no PEM certificate", "prod/none": "secret prod/none: secret not found"} {
		bad := spec
		bad.Security.TLS.CASecret = name
		d, err := DialSpec(bad, store, retryBriefly())
		require.NoError(t, err)
		_, err = d.adm.BrokerMetadata(ctx)
		d.Close()
		require.ErrorContains(t, err, want)
		assert.Contains(t, err.Error(), "cluster tls-a: TLS CA")
	}
}

func TestSecurityOptsRefusesWhatCannotWork(t *testing.T) {
	spec := fleet.ClusterSpec{ID: "s-a", Bootstrap: []string{"127.0.0.1:1"},
		Security: fleet.Security{SASL: fleet.SASL{Mechanism: "PLAIN", CredentialsSecret: "x"}}}
	_, err := securityOpts(spec, nil)
	require.ErrorContains(t, err, "no secret source (KFLEET_SECRETS)")
	src, err := secrets.NewFileStore(t.TempDir())
	require.NoError(t, err)
	_, err = securityOpts(spec, src)
	require.ErrorContains(t, err, `cluster s-a: SASL mechanism "PLAIN"`)
	opts, err := securityOpts(fleet.ClusterSpec{ID: "plain"}, nil)
	require.NoError(t, err)
	assert.Empty(t, opts, "a plaintext cluster needs no source")
	assert.Empty(t, securityKey(fleet.Security{}))
	assert.NotEqual(t, securityKey(spec.Security), securityKey(fleet.Security{SASL: fleet.SASL{Mechanism: "PLAIN", CredentialsSecret: "y"}}),
		"another secret name dials anew")
}

// retryBriefly gives up on a broker that cannot be reached within a second
// (the default retries dial errors for 30 s).
func retryBriefly() kgo.Opt { return kgo.RetryTimeout(time.Second) }
