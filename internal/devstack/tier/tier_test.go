package tier_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kfleet/kfleet/internal/devstack/tier"
)

// TestIntegrationSkipsUnderShort runs in both tiers: under -short
// Integration skips it, otherwise it returns (with java installed).
func TestIntegrationSkipsUnderShort(t *testing.T) {
	ran := false
	t.Run("inner", func(t *testing.T) {
		tier.Integration(t) // no server: nothing but the name and -short
		ran = true
	})
	if testing.Short() && ran {
		t.Fatal("Integration did not skip under -short")
	}
	if !testing.Short() && !ran {
		t.Fatal("Integration skipped outside -short")
	}
}

// A test that starts servers under another name fails, in every tier.
func TestIntegrationRefusesOtherNames(t *testing.T) {
	for name, refused := range map[string]bool{
		"TestRollingRestart":           true,
		"TestFleet/TestIntegrationSub": true,
		"TestIntegrationRoll":          false,
		"TestIntegrationRoll/sub-test": false,
	} {
		fake := &fakeTB{TB: t, name: name}
		func() {
			defer func() {
				if r := recover(); r != nil && r != stopped {
					panic(r)
				}
			}()
			tier.Integration(fake, tier.ZooKeeper)
		}()
		if refused {
			assert.Contains(t, fake.fatal, name+" starts servers: name it TestIntegration…", name)
		} else {
			assert.Empty(t, fake.fatal, name)
		}
	}
}

// stopped is what fakeTB panics with where a real test would stop.
var stopped = new(int)

// fakeTB records a fatal error and a skip instead of ending the test.
type fakeTB struct {
	testing.TB
	name, fatal string
}

func (f *fakeTB) Helper()      {}
func (f *fakeTB) Name() string { return f.name }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	panic(stopped)
}
func (f *fakeTB) Skipf(string, ...any) { panic(stopped) }
