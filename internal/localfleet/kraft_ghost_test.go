package localfleet_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kfleet/kfleet/internal/localfleet"
)

// TestIntegrationKRaftAddGhost: a ghost (a broker decommissioned on
// 3.8.1 without UnregisterBroker) is registered and fenced as the
// controllers see it, listed by DescribeCluster with fenced brokers,
// blocks a metadata.version it does not support (named, with its
// release) until it is unregistered, and is made through the Go API or
// the HTTP fault API; a live node's id is refused.
func TestIntegrationKRaftAddGhost(t *testing.T) {
	f := startKRaft(t, localfleet.KRaftConfig{MetadataVersion: "3.8-IV0"})
	require.NoError(t, f.AddGhost("local-k", 7, "3.8.1", "test"))
	ghosts := kraftEvents(f, "local-k", localfleet.EventGhost)
	require.Len(t, ghosts, 1)
	assert.Equal(t, int32(7), ghosts[0].Broker)
	assert.Equal(t, "3.8.1", ghosts[0].Version)
	assert.Contains(t, ghosts[0].Detail, "decommissioned without UnregisterBroker")

	cl := client(t, f.Endpoints().Clusters["local-k"].Bootstrap[0])
	dc := describeCluster(t, cl, true, 1)
	var listed *kmsg.DescribeClusterResponseBroker
	for i, b := range dc.Brokers {
		if b.NodeID == 7 {
			listed = &dc.Brokers[i]
		}
	}
	require.NotNil(t, listed, "DescribeCluster with fenced brokers lists the ghost")
	assert.True(t, listed.IsFenced)
	for _, b := range describeCluster(t, cl, false, 1).Brokers {
		assert.NotEqual(t, int32(7), b.NodeID, "without fenced brokers it is not listed")
	}

	code, msg := updateMV(t, cl, 21)
	assert.Equal(t, kerr.InvalidUpdateVersion.Code, code)
	assert.Contains(t, msg, "broker 7 (registered but not running, Kafka 3.8.1) does not support metadata.version 3.9-IV0")

	unreg := kmsg.NewPtrUnregisterBrokerRequest()
	unreg.BrokerID = 7
	assert.Equal(t, int16(0), brokerRequest[*kmsg.UnregisterBrokerResponse](t, cl, unreg).ErrorCode)
	code, msg = updateMV(t, cl, 21)
	assert.Equal(t, int16(0), code, msg)
	assert.Len(t, kraftEvents(f, "local-k", "kraft-unregistered"), 1)

	// Refused: a live broker's id, a controller's, one registered, an
	// unmodelled release.
	for _, bad := range []struct {
		id      int32
		version string
	}{{1, ""}, {3000, ""}, {8, "2.8.0"}} {
		assert.ErrorIs(t, f.AddGhost("local-k", bad.id, bad.version, "test"), localfleet.ErrGhost, "id %d", bad.id)
	}

	post := func(body string) int {
		req, err := http.NewRequestWithContext(testContext(t), http.MethodPost, f.Endpoints().API+"/v1/clusters/local-k/kraft/ghosts", strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set(localfleet.WhoHeader, "operator")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, post(`{"broker": 9, "version": "3.9.0"}`))
	assert.Equal(t, http.StatusBadRequest, post(`{"broker": 9}`), "already registered")
	assert.Equal(t, http.StatusBadRequest, post(`{"broker": 2}`), "a live broker")
	ghosts = kraftEvents(f, "local-k", localfleet.EventGhost)
	require.Len(t, ghosts, 2)
	assert.Equal(t, "operator", ghosts[1].Who)
}
