package deploycheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// dashboard is the part of a Grafana dashboard the check reads.
type dashboard struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
	Panels []struct {
		ID         int    `json:"id"`
		Title      string `json:"title"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
		Targets []struct {
			RefID string `json:"refId"`
			Expr  string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// dashboardVariables are what Grafana substitutes in a query, and a value
// that keeps the PromQL valid for promtool to parse.
var dashboardVariables = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$cluster", ".*")

// CheckDashboard checks a Grafana dashboard's JSON: a uid and a title,
// the datasource and cluster variables, panels with unique ids and titles
// on the datasource variable, each with queries. It returns the queries as
// a Prometheus rules file of recording rules, for `promtool check rules`
// to parse every one of them as PromQL.
func CheckDashboard(data []byte) (rules []byte, errs []error) {
	var d dashboard
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		return nil, []error{fmt.Errorf("dashboard: %w", err)}
	}
	if d.UID == "" || d.Title == "" {
		errs = append(errs, errors.New("dashboard: a uid and a title are required"))
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	for _, want := range []string{"datasource", "cluster"} {
		if !vars[want] {
			errs = append(errs, fmt.Errorf("dashboard: no %q variable", want))
		}
	}
	if len(d.Panels) == 0 {
		errs = append(errs, errors.New("dashboard: no panels"))
	}
	type rule struct {
		Record string `json:"record"`
		Expr   string `json:"expr"`
	}
	var recorded []rule
	ids, titles := map[int]bool{}, map[string]bool{}
	for _, p := range d.Panels {
		what := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if ids[p.ID] || titles[p.Title] || p.Title == "" {
			errs = append(errs, fmt.Errorf("%s: ids and titles must be set and unique", what))
		}
		ids[p.ID], titles[p.Title] = true, true
		if p.Datasource.UID != "${datasource}" {
			errs = append(errs, fmt.Errorf("%s: datasource %q, want the ${datasource} variable", what, p.Datasource.UID))
		}
		if len(p.Targets) == 0 {
			errs = append(errs, fmt.Errorf("%s: no query", what))
		}
		for _, q := range p.Targets {
			if strings.TrimSpace(q.Expr) == "" {
				errs = append(errs, fmt.Errorf("%s: query %s is empty", what, q.RefID))
				continue
			}
			recorded = append(recorded, rule{Record: fmt.Sprintf("dashboard:panel_%d:%s", p.ID, q.RefID), Expr: dashboardVariables.Replace(q.Expr)})
		}
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard-" + d.UID, "rules": recorded}}})
	if err != nil {
		errs = append(errs, err)
	}
	return out, errs
}
