package deploycheck_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kfleet/kfleet/internal/deploycheck"
)

func TestCheckDashboard(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "kfleet-fleet.json"))
	if err != nil {
		t.Fatal(err)
	}
	rules, errs := deploycheck.CheckDashboard(good)
	if len(errs) > 0 {
		t.Fatalf("kfleet's dashboard: %v", errs)
	}
	if !strings.Contains(string(rules), "record: dashboard:panel_1:A") || strings.Contains(string(rules), "$cluster") {
		t.Errorf("rules do not carry the queries with the variables substituted:\n%s", rules)
	}
	tests := []struct {
		name    string
		breakIt func(d map[string]any)
		want    string
	}{
		{"no cluster variable", func(d map[string]any) {
			tpl := d["templating"].(map[string]any)
			tpl["list"] = tpl["list"].([]any)[:1]
		}, `no "cluster" variable`},
		{"a panel's id twice", func(d map[string]any) { panel(d, 1)["id"] = panel(d, 0)["id"] }, "unique"},
		{"a fixed datasource", func(d map[string]any) { panel(d, 2)["datasource"] = map[string]any{"uid": "prom-prod"} }, "want the ${datasource} variable"},
		{"an empty query", func(d map[string]any) { panel(d, 3)["targets"].([]any)[0].(map[string]any)["expr"] = " " }, "is empty"},
		{"no query", func(d map[string]any) { delete(panel(d, 4), "targets") }, "no query"},
		{"not JSON", nil, "dashboard:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte("{not json")
			if tt.breakIt != nil {
				var d map[string]any
				if err := json.Unmarshal(good, &d); err != nil {
					t.Fatal(err)
				}
				tt.breakIt(d)
				data, _ = json.Marshal(d)
			}
			_, errs := deploycheck.CheckDashboard(data)
			if !containsErr(errs, tt.want) {
				t.Errorf("errors %v, want one saying %q", errs, tt.want)
			}
		})
	}
}

func panel(d map[string]any, i int) map[string]any { return d["panels"].([]any)[i].(map[string]any) }

func containsErr(errs []error, s string) bool {
	for _, err := range errs {
		if strings.Contains(err.Error(), s) {
			return true
		}
	}
	return false
}
