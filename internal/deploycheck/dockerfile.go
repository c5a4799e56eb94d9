package deploycheck

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper-cased: FROM, RUN, COPY...
	args string
}

// parseDockerfile splits a Dockerfile into instructions: comments and
// blank lines dropped, lines ending in a backslash joined.
func parseDockerfile(data []byte) []instruction {
	var out []instruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		body, more := strings.CutSuffix(line, "\\")
		cur.WriteString(strings.TrimSpace(body) + " ")
		if more {
			continue
		}
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// The final stage's bases: distroless static (no libc, no shell) as its
// nonroot variant, or scratch.
var finalBase = regexp.MustCompile(`^(gcr\.io/distroless/static-debian12:nonroot(@sha256:[0-9a-f]{64})?|scratch)$`)

// secretish are names that must never be baked into an image.
var secretish = regexp.MustCompile(`(?i)(secret|passw|token|api_?key|private|credential|webhook|\.pem\b|\.key\b|id_rsa|\.aws\b|\.kfleet\b)`)

// CheckDockerfile holds the Dockerfile to the image's rules: multi-stage,
// built on the Go that go.mod names, the binaries made by `make
// static-binaries` (the target `make image-check` checks, so the two
// cannot drift), a distroless-static or scratch final stage running as a
// non-root user, an exec-form ENTRYPOINT, and no secret baked in.
func CheckDockerfile(data []byte, goVersion string) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf("Dockerfile: "+format, args...)) }
	var stages [][]instruction
	for _, in := range parseDockerfile(data) {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				fail("line %d: %s before the first FROM", in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
		switch in.cmd {
		case "ENV", "ARG", "LABEL":
			if secretish.MatchString(in.args) {
				fail("line %d: %s %s: looks like a secret; pass secrets at run time, never in the image", in.line, in.cmd, in.args)
			}
		case "COPY", "ADD":
			if secretish.MatchString(in.args) {
				fail("line %d: %s %s: copies what looks like a secret", in.line, in.cmd, in.args)
			}
			if in.cmd == "ADD" {
				fail("line %d: ADD fetches and unpacks; use COPY (a reproducible, offline build)", in.line)
			}
		}
	}
	if len(stages) < 2 {
		fail("%d stage(s): want a multi-stage build (a Go build stage, then a minimal final stage)", len(stages))
		return errs
	}
	build, final := stages[0], stages[len(stages)-1]
	base := strings.Fields(build[0].args)[0]
	if !strings.HasPrefix(base, "golang:"+goVersion+"-") && base != "golang:"+goVersion {
		fail("line %d: build stage FROM %s: want golang:%s (go.mod's Go)", build[0].line, base, goVersion)
	}
	if !hasInstruction(build, "RUN", "make static-binaries") {
		fail("the build stage does not RUN make static-binaries (the binaries make image-check checks)")
	}
	if fb := strings.Fields(final[0].args)[0]; !finalBase.MatchString(fb) {
		fail("line %d: final stage FROM %s: want gcr.io/distroless/static-debian12:nonroot or scratch", final[0].line, fb)
	}
	user := ""
	for _, in := range final {
		if in.cmd == "USER" {
			user = in.args
		}
	}
	if name, _, _ := strings.Cut(user, ":"); name == "" || name == "0" || name == "root" {
		fail("final stage USER %q: want a non-root user (65532)", user)
	}
	for _, bin := range []string{"worker", "starter"} {
		if !hasInstruction(final, "COPY", "/"+bin) {
			fail("the final stage does not COPY the %s binary", bin)
		}
	}
	if !hasInstruction(final, "COPY", "deploy/ssm") {
		fail("the final stage does not COPY deploy/ssm (the SSM documents, for reference)")
	}
	if !hasInstruction(final, "ENTRYPOINT", "[") {
		fail("the final stage has no exec-form ENTRYPOINT [...] (no shell in distroless)")
	}
	return errs
}

func hasInstruction(stage []instruction, cmd, substr string) bool {
	for _, in := range stage {
		if in.cmd == cmd && strings.Contains(in.args, substr) {
			return true
		}
	}
	return false
}

// CheckDockerignore checks the build context leaves out what must not
// reach an image or bloat the context: git, the local stack's state (its
// secrets among it) and the tools.
func CheckDockerignore(data []byte) []error {
	have := map[string]bool{}
	for _, l := range strings.Split(string(data), "\n") {
		have[strings.Trim(strings.TrimSpace(l), "/")] = true
	}
	var errs []error
	for _, want := range []string{".git", ".kfleet", "bin"} {
		if !have[want] {
			errs = append(errs, fmt.Errorf(".dockerignore: does not exclude %s", want))
		}
	}
	return errs
}

// GoVersion is the go line of a go.mod.
func GoVersion(gomod []byte) (string, error) {
	for _, l := range strings.Split(string(gomod), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "go "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("go.mod: no go line")
}
