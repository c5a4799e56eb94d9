package integration_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/devstack/tier"
	"github.com/kfleet/kfleet/internal/logging"
)

// TestIntegrationAttributesRegister runs `starter attributes register` (the
// deploy's Job) against a real Temporal dev server started without kfleet's
// search attributes: the first run adds all five, a second changes
// nothing, and in a namespace where one of them has another type it fails
// with exit 2 and adds none of the others.
func TestIntegrationAttributesRegister(t *testing.T) {
	t.Parallel()
	tier.Integration(t, tier.Temporal)
	bin := make(chan string, 1)
	go func() { bin <- buildStarter(t) }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	temporal, err := devstack.StartTemporal(ctx, devstack.TemporalOptions{
		Binary: temporalBinary(t), Dir: t.TempDir(), Log: logging.New(os.Stderr, true, zerolog.WarnLevel),
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = temporal.Stop() })
	c, err := client.DialContext(ctx, client.Options{HostPort: temporal.Addr})
	require.NoError(t, err)
	defer c.Close()
	custom := func(ns string) map[string]enumspb.IndexedValueType {
		t.Helper()
		res, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
		require.NoError(t, err)
		return res.GetCustomAttributes()
	}
	kfleet := map[string]enumspb.IndexedValueType{
		"ClusterID": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"Operation": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"BrokerID":  enumspb.INDEXED_VALUE_TYPE_INT,
		"Tenant":    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		"Paused":    enumspb.INDEXED_VALUE_TYPE_BOOL,
	}
	before := custom("default")
	for name := range kfleet {
		require.NotContains(t, before, name, "the server starts without kfleet's attributes")
	}
	starter := <-bin

	// The first run adds them; the server lists them with their types.
	var first struct {
		Namespace      string
		Present, Added []string
	}
	msg, code := runStarterJSON(t, starter, &first, "attributes", "register", "--address", temporal.Addr)
	require.Equal(t, 0, code, msg)
	assert.Equal(t, "default", first.Namespace)
	assert.Len(t, first.Added, 5)
	assert.Empty(t, first.Present)
	after := custom("default")
	for name, typ := range kfleet {
		assert.Equal(t, typ, after[name], name)
	}

	// A second run finds them and adds nothing.
	var second struct{ Present, Added []string }
	msg, code = runStarterJSON(t, starter, &second, "attributes", "register", "--address", temporal.Addr)
	require.Equal(t, 0, code, msg)
	assert.Len(t, second.Present, 5)
	assert.Empty(t, second.Added)
	assert.Equal(t, after, custom("default"), "the second run changed nothing")

	// A namespace where Tenant is an Int: a clear error, exit 2, nothing added.
	const ns = "conflicting"
	_, err = c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: ns, WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
	})
	require.NoError(t, err)
	// A new namespace reaches the server's namespace cache within seconds.
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		_, err := c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
			Namespace: ns, SearchAttributes: map[string]enumspb.IndexedValueType{"Tenant": enumspb.INDEXED_VALUE_TYPE_INT},
		})
		assert.NoError(ct, err)
	}, time.Minute, 500*time.Millisecond)
	out, code := runStarter(t, starter, "attributes", "register", "--address", temporal.Addr, "--namespace", ns)
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "Tenant is registered as Int, kfleet needs Keyword")
	assert.Contains(t, out, "nothing registered")
	got := custom(ns)
	assert.Equal(t, enumspb.INDEXED_VALUE_TYPE_INT, got["Tenant"])
	for _, name := range []string{"ClusterID", "Operation", "BrokerID", "Paused"} {
		assert.NotContains(t, got, name, "a conflict adds none of the others")
	}
}
