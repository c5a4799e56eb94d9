package fleet_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/kfleet/kfleet/internal/fleet"
)

func securedSpec() fleet.ClusterSpec {
	return fleet.ClusterSpec{ID: "prod-a", Bootstrap: []string{"b1:9096"}, ZooKeeper: "zk1:2181/kafka/prod-a",
		Brokers: []fleet.BrokerSpec{{ID: 1, InstanceID: "i-1"}},
		Security: fleet.Security{
			SASL:                  fleet.SASL{Mechanism: fleet.SCRAMSHA512, CredentialsSecret: "kfleet/prod-a/admin"},
			TLS:                   fleet.TLS{Enabled: true, CASecret: "kfleet/prod-a/ca", ServerName: "kafka.prod-a.internal"},
			ZooKeeperDigestSecret: "kfleet/prod-a/zookeeper",
		}}
}

func TestSecuritySpecReadsFromYAML(t *testing.T) {
	var spec fleet.ClusterSpec
	require.NoError(t, yaml.Unmarshal([]byte(`
id: prod-a
bootstrap: [b1:9096]
zookeeper: zk1:2181/kafka/prod-a
brokers: [{id: 1, instanceId: i-1}]
security:
  sasl: {mechanism: SCRAM-SHA-512, credentialsSecret: kfleet/prod-a/admin}
  tls: {enabled: true, caSecret: kfleet/prod-a/ca, serverName: kafka.prod-a.internal}
  zookeeperDigestSecret: kfleet/prod-a/zookeeper
`), &spec))
	assert.Equal(t, securedSpec(), spec)
	require.NoError(t, spec.Validate())
	assert.Equal(t, []string{"kfleet/prod-a/admin", "kfleet/prod-a/ca", "kfleet/prod-a/zookeeper"}, spec.Security.Secrets())
	assert.Equal(t, "SASL SCRAM-SHA-512 (credentials: secret kfleet/prod-a/admin), TLS (CA: secret kfleet/prod-a/ca) as kafka.prod-a.internal, ZooKeeper digest (secret kfleet/prod-a/zookeeper)",
		spec.Security.String())
	assert.Empty(t, fleet.Security{}.String())
}

func TestPlainSpecHasNoSecurityInItsJSON(t *testing.T) {
	spec := securedSpec()
	spec.Security = fleet.Security{}
	b, err := json.Marshal(spec)
	require.NoError(t, err)
	assert.NotContains(t, string(b), "security", "recorded histories of plaintext clusters keep their shape")
	y, err := yaml.Marshal(spec)
	require.NoError(t, err)
	assert.NotContains(t, string(y), "security")
}

func TestSecurityValidateReportsEveryProblem(t *testing.T) {
	spec := securedSpec()
	spec.Security = fleet.Security{
		SASL:                  fleet.SASL{Mechanism: "PLAIN", CredentialsSecret: "../admin"},
		TLS:                   fleet.TLS{CASecret: "ca", ServerName: "a b"},
		ZooKeeperDigestSecret: "zk secret",
	}
	err := spec.Validate()
	require.Error(t, err)
	for _, want := range []string{
		`security.sasl.mechanism "PLAIN"`,
		`security.sasl.credentialsSecret: secret name "../admin"`,
		"caSecret and serverName need enabled: true",
		`security.tls.serverName "a b"`,
		`security.zookeeperDigestSecret: secret name "zk secret"`,
	} {
		assert.Contains(t, err.Error(), want)
	}

	spec.Security = fleet.Security{SASL: fleet.SASL{CredentialsSecret: "x"}}
	require.ErrorContains(t, spec.Validate(), "security.sasl.mechanism: required")
	spec.Security = fleet.Security{SASL: fleet.SASL{Mechanism: fleet.SCRAMSHA256}}
	require.ErrorContains(t, spec.Validate(), "security.sasl.credentialsSecret: required")
	spec.Security = fleet.Security{TLS: fleet.TLS{Enabled: true}}
	require.NoError(t, spec.Validate(), "TLS with the host's roots")
}

func TestValidSecretName(t *testing.T) {
	for _, ok := range []string{"a", "kfleet/prod-a/admin", "x_y+z=w.v@u-t", ".hidden", "a..b"} {
		assert.NoError(t, fleet.ValidSecretName(ok), ok)
	}
	for _, bad := range []string{"", "..", ".", "../x", "a/../b", "/a", "a/", "a//b", "a b", "a:b", "é", string(make([]byte, 513))} {
		assert.Error(t, fleet.ValidSecretName(bad), "%q", bad)
	}
}
