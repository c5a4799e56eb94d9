package localfleet_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// kfleet-StartBroker with InterBrokerProtocolVersion, as the two rolls of an
// upgrade send it: recorded per broker, shown in the status and the audit,
// idempotent on a running broker, and refused when it would change a running
// broker behind its back.
func TestIntegrationSSMStartBrokerProtocolVersion(t *testing.T) {
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")}})
	ctx := testContext(t)
	cl := ssmClient(f)
	instance := f.Endpoints().Clusters["local-a"].Brokers[1].InstanceID
	upgrade := map[string][]string{cloud.ParamVersion: {"3.7.1"}, cloud.ParamInterBrokerProtocolVersion: {"3.6"}}

	inv := runCommand(ctx, t, cl, cloud.DocStopBroker, instance, "upgrade/1", map[string][]string{cloud.ParamGracePeriodSeconds: {"30"}})
	require.Equal(t, "Success", string(inv.Status))
	inv = runCommand(ctx, t, cl, cloud.DocStartBroker, instance, "upgrade/1", upgrade)
	require.Equal(t, "Success", string(inv.Status), aws.ToString(inv.StandardErrorContent))

	st, err := f.Status("local-a")
	require.NoError(t, err)
	b := st.Brokers[1]
	assert.Equal(t, localfleet.StateRunning, b.State)
	assert.Equal(t, "3.7.1", b.Version)
	assert.Equal(t, "3.6", b.InterBrokerProtocolVersion)
	assert.Empty(t, st.Brokers[0].InterBrokerProtocolVersion, "other brokers are untouched")

	audit := f.Audit("local-a")
	var start localfleet.Event
	for _, e := range audit {
		if e.Kind == localfleet.EventStart {
			start = e
		}
	}
	assert.Equal(t, "3.7.1", start.Version)
	assert.Equal(t, "inter.broker.protocol.version=3.6", start.Detail)

	// A retried start (same version and protocol) changes nothing.
	inv = runCommand(ctx, t, cl, cloud.DocStartBroker, instance, "upgrade/1", upgrade)
	assert.Equal(t, "Success", string(inv.Status))
	assert.Len(t, f.Audit("local-a"), len(audit), "a retried start is not audited again")

	// Another protocol or version only applies at a start: refused while running.
	for _, params := range []map[string][]string{
		{cloud.ParamInterBrokerProtocolVersion: {"3.7"}},
		{cloud.ParamVersion: {"3.8.0"}},
	} {
		inv = runCommand(ctx, t, cl, cloud.DocStartBroker, instance, "upgrade/2", params)
		assert.Equal(t, "Failed", string(inv.Status))
		assert.Contains(t, aws.ToString(inv.StandardErrorContent), "refusing")
	}
	st, err = f.Status("local-a")
	require.NoError(t, err)
	assert.Equal(t, "3.6", st.Brokers[1].InterBrokerProtocolVersion)
	assert.Equal(t, "3.7.1", st.Brokers[1].Version)

	// Malformed values are refused at SendCommand, as allowedPattern does.
	for _, params := range []map[string][]string{
		{cloud.ParamInterBrokerProtocolVersion: {"3.x"}},
		{cloud.ParamInterBrokerProtocolVersion: {"3.6; rm -rf /"}},
		{cloud.ParamVersion: {"3.7"}},
	} {
		_, err := cl.SendCommand(ctx, &ssm.SendCommandInput{
			DocumentName: aws.String(cloud.DocStartBroker), InstanceIds: []string{instance}, Parameters: params,
		})
		assertAPIError(t, err, "InvalidParameters")
	}
	assert.Empty(t, f.Violations("local-a"))
}
