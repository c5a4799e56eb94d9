package localfleet_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/localfleet"
)

func TestIntegrationHTTPAPI(t *testing.T) {
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")}})
	base := f.Endpoints().API

	call := func(method, path, who string, out any) int {
		t.Helper()
		req, err := http.NewRequestWithContext(testContext(t), method, base+path, nil)
		require.NoError(t, err)
		if who != "" {
			req.Header.Set(localfleet.WhoHeader, who)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		if out != nil {
			require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
		}
		return resp.StatusCode
	}

	var ep localfleet.Endpoints
	require.Equal(t, http.StatusOK, call("GET", "/v1/endpoints", "", &ep))
	assert.Equal(t, f.Endpoints(), ep, "endpoints round-trip through JSON")

	var st localfleet.ClusterStatus
	require.Equal(t, http.StatusOK, call("POST", "/v1/clusters/local-a/brokers/3/stop", "operator", &st))
	assert.Equal(t, localfleet.StateStopped, st.Brokers[2].State)
	assert.Equal(t, int32(1), st.Controller)

	require.Equal(t, http.StatusOK, call("POST", "/v1/clusters/local-a/brokers/3/start", "", &st))
	assert.Equal(t, localfleet.StateRunning, st.Brokers[2].State)

	var audit []localfleet.Event
	require.Equal(t, http.StatusOK, call("GET", "/v1/clusters/local-a/audit", "", &audit))
	require.Len(t, audit, 4)
	assert.Equal(t, "operator", audit[0].Who)
	assert.Equal(t, "api", audit[2].Who, "who defaults to api")

	var violations []localfleet.Violation
	require.Equal(t, http.StatusOK, call("GET", "/v1/clusters/local-a/violations", "", &violations))
	assert.Empty(t, violations)

	require.Equal(t, http.StatusOK, call("GET", "/v1/clusters/local-a/brokers", "", &st))
	assert.Len(t, st.Brokers, 3)

	var apiErr struct{ Error string }
	assert.Equal(t, http.StatusNotFound, call("GET", "/v1/clusters/nope/audit", "", &apiErr))
	assert.Contains(t, apiErr.Error, "unknown cluster")
	assert.Equal(t, http.StatusNotFound, call("POST", "/v1/clusters/local-a/brokers/9/stop", "", &apiErr))
	assert.Equal(t, http.StatusBadRequest, call("POST", "/v1/clusters/local-a/brokers/one/stop", "", &apiErr))
	assert.Equal(t, http.StatusMethodNotAllowed, call("GET", "/v1/clusters/local-a/brokers/1/stop", "", nil))
}
