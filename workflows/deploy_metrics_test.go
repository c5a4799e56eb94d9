package workflows_test

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/kfleet/kfleet/internal/overview"
	"github.com/kfleet/kfleet/workflows"
)

// kfleetMetric finds kfleet's metric names in a PromQL expression; a
// histogram is queried by its _bucket, _sum or _count series.
var kfleetMetric = regexp.MustCompile(`\bkfleet_[a-z_]+`)

// kfleetMetrics are every metric kfleet exports: the workers' and the
// fleet overview's.
func kfleetMetrics() map[string]string {
	help := workflows.MetricHelp()
	maps.Copy(help, overview.MetricHelp())
	return help
}

// exported is the name of a series of one of kfleet's metrics, as the
// worker's or the overview's /metrics exposes it.
func exported(series string) bool {
	help := kfleetMetrics()
	for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
		if _, ok := help[strings.TrimSuffix(series, suffix)]; ok && strings.HasSuffix(series, suffix) {
			return true
		}
	}
	return false
}

// The Grafana dashboard and the alert rules under deploy/ query only
// metrics kfleet exports: a renamed metric would leave a panel empty and
// an alert silent, which no one notices until it should have fired.
func TestDeployQueriesKnownMetrics(t *testing.T) {
	var exprs []string
	raw, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "kfleet-fleet.json"))
	require.NoError(t, err)
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	require.NoError(t, json.Unmarshal(raw, &dash))
	require.NotEmpty(t, dash.Panels)
	for _, p := range dash.Panels {
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, q := range p.Targets {
			require.NotEmpty(t, q.Expr, "panel %q", p.Title)
			exprs = append(exprs, q.Expr)
		}
	}
	raw, err = os.ReadFile(filepath.Join("..", "deploy", "prometheus", "kfleet-alerts.yaml"))
	require.NoError(t, err)
	var rules struct {
		Groups []struct {
			Rules []struct {
				Expr string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &rules))
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range kfleetMetric.FindAllString(e, -1) {
			assert.True(t, exported(name), "%s is not one of kfleet's metrics (%v): %s", name, kfleetMetrics(), e)
			used[strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_count")] = true
		}
	}
	for name := range kfleetMetrics() {
		assert.True(t, used[name], "%s is in no dashboard panel and no alert", name)
	}
}
