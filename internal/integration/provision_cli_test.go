package integration_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// TestIntegrationStarterCreateAndDelete drives `starter create` and
// `starter delete` as a person would: bad plans exit 2 with their reasons
// and launch nothing; a good one prints its progress and exits 0 with the
// cluster registered; its status; a deletion asked, refused to its
// requester, approved and forced by a second person.
func TestIntegrationStarterCreateAndDelete(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	bin := buildStarterAsync(t)
	stack := startStackWith(t, fastFleet(localfleet.ClusterConfig{ID: "local-a", Brokers: 3}), provisionFleet(quickEC2))
	starter := <-bin
	run := func(args ...string) (string, int) {
		t.Helper()
		return runStarter(t, starter, append(args, "--address", stack.Temporal.Addr)...)
	}
	dir := t.TempDir()
	plan := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	good := "id: shop\nbrokers: 3\navailabilityZones: [us-east-1a, us-east-1b, us-east-1c]\nkafkaVersion: 3.7.1\nvolumeGiB: 100\n"
	for _, bad := range []struct{ body, want string }{
		{strings.Replace(good, "brokers: 3", "brokers: 2", 1), "fewer than the default replication factor 3"},
		{strings.Replace(good, "us-east-1c", "us-east-1z", 1), `availability zone "us-east-1z": unknown to EC2 here`},
		{strings.Replace(good, "volumeGiB: 100", "volumeGiB: 20", 1), "under plan standard's minimum of 100 GiB"},
		{good + "instanceType: m9.mega\n", `instance type "m9.mega": unknown to EC2 here`},
		{strings.Replace(good, "id: shop", "id: local-a", 1), `cluster id "local-a" is in use`},
		{good + "brokerz: 4\n", "field brokerz not found"},
	} {
		out, code := run("create", "--file", plan("bad.yaml", bad.body))
		assert.Equal(t, 2, code, out)
		assert.Contains(t, out, bad.want)
	}
	out, code := run("create")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "--file is required")
	for _, e := range stack.Fleet.EC2Audit() {
		assert.NotEqual(t, localfleet.EventInstanceLaunched, e.Kind, "a refused plan launched %s", e.Detail)
	}

	out, code = run("create", "--file", plan("shop.yaml", good), "--by", "alice")
	require.Equal(t, 0, code, out)
	for _, want := range []string{"provisioning cluster/shop/provision admitted", "created cluster shop", "6 hosts, 3 data volumes"} {
		assert.Contains(t, out, want)
	}
	// The CLI prints the progress it polls: a phase that passes between
	// two polls is not printed (a busy machine skips some), but what is
	// printed goes forward and ends done.
	var phases []int
	for _, line := range strings.Split(out, "\n") {
		if _, rest, ok := strings.Cut(line, " phase "); ok {
			var n, of int
			if _, err := fmt.Sscanf(rest, "%d/%d", &n, &of); err == nil {
				phases = append(phases, n)
			}
		}
	}
	require.NotEmpty(t, phases, "progress printed: %s", out)
	assert.True(t, slices.IsSorted(phases), "phases go forward: %v", phases)
	assert.Equal(t, 7, phases[len(phases)-1], "the last phase printed is done")
	out, code = run("status", "--cluster", "shop")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "cluster shop: 3 brokers [1 2 3]")

	out, code = run("delete", "--cluster", "shop", "--by", "alice")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "--approvers is required")
	out, code = run("delete", "--cluster", "nope", "--by", "alice", "--approvers", "bob")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "unknown cluster")
	var asked map[string]string
	out, code = runStarterJSON(t, starter, &asked, "delete", "--cluster", "shop", "--by", "alice", "--approvers", "bob", "--address", stack.Temporal.Addr)
	require.Equal(t, 0, code, out)
	approval := asked["approval"]
	require.NotEmpty(t, approval)
	out, code = run("approve", "--approval", approval, "--by", "alice")
	assert.Equal(t, 2, code, out)
	assert.Contains(t, out, "a second, different person must approve it")
	var answered workflows.ApprovalState
	out, code = runStarterJSON(t, starter, &answered, "approve", "--approval", approval, "--by", "bob", "--force", "--address", stack.Temporal.Addr)
	require.Equal(t, 0, code, out)
	assert.Equal(t, workflows.ApprovalApproved, answered.Status)
	assert.JSONEq(t, `{"force":true}`, string(answered.Action.Params), "forced by its approver")
	finishedOp(t.Context(), t, stack, "shop", 1)
	out, code = run("status", "--cluster", "shop")
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "cluster shop: DELETED")
	assert.Contains(t, out, "approved by bob")
}
