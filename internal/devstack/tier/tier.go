// Package tier holds kfleet's one rule for test tiers.
//
// A test that starts a real server — ZooKeeper, a Temporal dev server, or
// the embedded local fleet (internal/localfleet, which runs against a real
// ZooKeeper) — is an integration test. It is named TestIntegration…, so
// `make integration` (go test -run Integration) selects it, and it calls
// Integration before starting anything, directly or through the test helper
// that starts the server, so `make unit` (go test -short) skips it.
//
// Every other test — parsers, rules, handlers with fakes, workflows on the
// SDK's test suite, replays of recorded histories — is a unit test: it
// needs no server and runs in every tier.
// `make test` runs both tiers (no -short), after lint.
package tier

import (
	"cmp"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// Server is what an integration test starts.
type Server string

// The servers integration tests start. The local fleet needs ZooKeeper.
const (
	ZooKeeper Server = "ZooKeeper"
	Temporal  Server = "a Temporal dev server"
	// Chromium is Debian's headless browser, for the pages kfleet serves.
	Chromium Server = "a headless chromium"
)

// Integration marks tb as an integration test needing servers: it fails a
// test not named TestIntegration… (in every tier, so a misnamed one cannot
// slip out of `make integration`), skips under -short, and, when ZooKeeper
// is needed, skips where java is not installed, and, when chromium is,
// where it is not (`make deps` installs both).
// Benchmarks may call it under any name.
func Integration(tb testing.TB, servers ...Server) {
	tb.Helper()
	if _, bench := tb.(*testing.B); !bench && !strings.HasPrefix(tb.Name(), "TestIntegration") {
		tb.Fatalf("%s starts servers: name it TestIntegration… (see package internal/devstack/tier)", tb.Name())
	}
	names := make([]string, len(servers))
	for i, s := range servers {
		names[i] = string(s)
	}
	needs := cmp.Or(strings.Join(names, " and "), "a server")
	if testing.Short() {
		tb.Skipf("integration test (needs %s): skipped under -short", needs)
	}
	if slices.Contains(servers, ZooKeeper) {
		if _, err := exec.LookPath("java"); err != nil {
			tb.Skipf("integration test (needs %s): java not installed; run `make deps`", needs)
		}
	}
	if slices.Contains(servers, Chromium) {
		if _, err := exec.LookPath("chromium"); err != nil {
			tb.Skipf("integration test (needs %s): chromium not installed; run `make deps`", needs)
		}
	}
}
