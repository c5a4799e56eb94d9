// Command ssmscripts extracts the shell scripts of SSM documents
// (aws:runShellScript steps' runCommand) into files, so that `make lint`
// can run shellcheck on exactly what the SSM agent runs on broker hosts.
//
//	go run ./internal/tools/ssmscripts -out DIR deploy/ssm/*.yaml
//
// Each step becomes DIR/<document>.<step>.sh with a bash shebang (the
// scripts use bash's pipefail). Document parameters ({{ Name }}) are left
// as they are: every script quotes them, which shellcheck then checks.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// document is the part of an SSM document (schema 2.2) this tool reads.
type document struct {
	SchemaVersion string `yaml:"schemaVersion"`
	MainSteps     []struct {
		Action string `yaml:"action"`
		Name   string `yaml:"name"`
		Inputs struct {
			RunCommand []string `yaml:"runCommand"`
		} `yaml:"inputs"`
	} `yaml:"mainSteps"`
}

func main() {
	out := flag.String("out", "", "directory to write the scripts to (required)")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: ssmscripts -out DIR DOCUMENT.yaml...")
		os.Exit(2)
	}
	var errs []error
	for _, path := range flag.Args() {
		if err := extract(path, *out); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func extract(path, outDir string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("ssmscripts: %w", err)
	}
	var doc document
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("ssmscripts: %s: %w", path, err)
	}
	if doc.SchemaVersion != "2.2" {
		return fmt.Errorf("ssmscripts: %s: schemaVersion %q, want \"2.2\"", path, doc.SchemaVersion)
	}
	base := strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))
	n := 0
	for _, step := range doc.MainSteps {
		if step.Action != "aws:runShellScript" {
			continue
		}
		if len(step.Inputs.RunCommand) == 0 {
			return fmt.Errorf("ssmscripts: %s: step %q has no runCommand", path, step.Name)
		}
		script := "#!/usr/bin/env bash\n" + strings.Join(step.Inputs.RunCommand, "\n")
		file := filepath.Join(outDir, base+"."+step.Name+".sh")
		if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
			return fmt.Errorf("ssmscripts: %s: %w", path, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("ssmscripts: %s: no aws:runShellScript step", path)
	}
	return nil
}
