package integration_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/telemetry"
)

// metricValue adds up the series of name whose labels include labels (a
// counter's value, a histogram's observation count).
func metricValue(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	v, _ := telemetry.Find(mfs, name, labels)
	return v
}

// scrape GETs a metrics endpoint as Prometheus would.
func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.True(t, strings.Contains(resp.Header.Get("Content-Type"), "text/plain"), "exposition format, got %s", resp.Header.Get("Content-Type"))
	return string(body)
}
