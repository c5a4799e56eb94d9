// Command deploycheck checks kfleet's deployment offline, for `make lint`:
//
//	deploycheck manifests RENDER.yaml...   kustomize renders: strict schema and kfleet's rules
//	deploycheck binaries FILE...           static, stripped, CGO-free release binaries
//	deploycheck dockerfile DIR             DIR/Dockerfile and DIR/.dockerignore against DIR/go.mod
//	deploycheck dashboard JSON RULES.yaml  a Grafana dashboard; its queries written as recording
//	                                       rules to RULES.yaml, for promtool to parse
//
// It exits 1 naming every violation.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/kfleet/kfleet/internal/deploycheck"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: deploycheck manifests|binaries|dockerfile|dashboard ARGS...")
		os.Exit(2)
	}
	var errs []error
	switch os.Args[1] {
	case "manifests":
		for _, path := range os.Args[2:] {
			errs = append(errs, manifests(path)...)
		}
	case "binaries":
		for _, path := range os.Args[2:] {
			if err := deploycheck.CheckStatic(path); err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Printf("%s: static (no interpreter, no shared libraries), CGO_ENABLED=0, -trimpath, stripped\n", filepath.Base(path))
		}
	case "dockerfile":
		errs = dockerfile(os.Args[2])
	case "dashboard":
		if len(os.Args) != 4 {
			fmt.Fprintln(os.Stderr, "usage: deploycheck dashboard DASHBOARD.json RULES.yaml")
			os.Exit(2)
		}
		errs = dashboardRules(os.Args[2], os.Args[3])
	default:
		fmt.Fprintf(os.Stderr, "deploycheck: unknown check %q\n", os.Args[1])
		os.Exit(2)
	}
	for _, err := range errs {
		fmt.Fprintln(os.Stderr, "deploycheck:", err)
	}
	if len(errs) > 0 {
		os.Exit(1)
	}
}

func manifests(path string) []error {
	data, err := os.ReadFile(path)
	if err != nil {
		return []error{err}
	}
	objs, err := deploycheck.Decode(data)
	if err != nil {
		return []error{fmt.Errorf("%s: %w", path, err)}
	}
	errs := deploycheck.Check(objs)
	for i, err := range errs {
		errs[i] = fmt.Errorf("%s: %w", path, err)
	}
	if len(errs) == 0 {
		fmt.Printf("%s: %d Deployments, %d Jobs, %d PodDisruptionBudgets, %d Services, %d ConfigMaps, %d ServiceAccounts: schema and kfleet's rules hold\n",
			path, len(objs.Deployments), len(objs.Jobs), len(objs.PDBs), len(objs.Services), len(objs.ConfigMaps), len(objs.Accounts))
	}
	return errs
}

func dockerfile(dir string) []error {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			fmt.Fprintln(os.Stderr, "deploycheck:", err)
			os.Exit(1)
		}
		return b
	}
	goVersion, err := deploycheck.GoVersion(read("go.mod"))
	if err != nil {
		return []error{err}
	}
	errs := append(deploycheck.CheckDockerfile(read("Dockerfile"), goVersion), deploycheck.CheckDockerignore(read(".dockerignore"))...)
	if len(errs) == 0 {
		fmt.Printf("Dockerfile: multi-stage on golang:%s, make static-binaries, non-root final stage, no secrets; .dockerignore: ok\n", goVersion)
	}
	return errs
}

func dashboardRules(path, rulesPath string) []error {
	data, err := os.ReadFile(path)
	if err != nil {
		return []error{err}
	}
	rules, errs := deploycheck.CheckDashboard(data)
	if len(errs) > 0 {
		return errs
	}
	if err := os.WriteFile(rulesPath, rules, 0o644); err != nil {
		return []error{err}
	}
	fmt.Printf("%s: variables, panels and queries hold; queries written to %s for promtool\n", path, rulesPath)
	return nil
}
