package fleet_test

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/fleet"
)

func TestTenantName(t *testing.T) {
	shape := regexp.MustCompile(`^[a-z][a-z-]*[a-z]-[0-9]{5}$`)
	seen := map[string]bool{}
	for seed := uint64(0); seed < 5000; seed++ {
		n := fleet.TenantName(seed * 7919)
		require.Regexp(t, shape, n)
		require.NoError(t, fleet.ValidateTenantName(n))
		seen[n] = true
	}
	assert.Len(t, seen, 5000, "distinct seeds give distinct names")
	assert.Equal(t, fleet.TenantName(42), fleet.TenantName(42), "deterministic")
}

func TestValidateTenantName(t *testing.T) {
	for _, ok := range []string{"wabash-58799", "ab", "acme", "team-7"} {
		assert.NoError(t, fleet.ValidateTenantName(ok), ok)
	}
	for _, bad := range []string{"", "a", "Acme", "7up", "acme-", "ac.me", "ac_me", "wabash-58799-r2", "x-r10",
		"a123456789012345678901234567890123456789012345678"} {
		assert.Error(t, fleet.ValidateTenantName(bad), bad)
	}
	assert.NoError(t, fleet.ValidateTenantName("x-r1"), "r1 is no rotated user")
	assert.NoError(t, fleet.ValidateTenantName("x-rb"))
}

func TestTenantUsersAndNames(t *testing.T) {
	assert.Equal(t, "wabash-58799.", fleet.TenantPrefix("wabash-58799"))
	assert.Equal(t, "wabash-58799", fleet.TenantUser("wabash-58799", 0))
	assert.Equal(t, "wabash-58799-r2", fleet.TenantUser("wabash-58799", 1))
	assert.Equal(t, "wabash-58799-r3", fleet.TenantUser("wabash-58799", 2))
	assert.Equal(t, "kfleet/tenants/local-a/wabash-58799/wabash-58799-r2", fleet.HandoutName("local-a", "wabash-58799", "wabash-58799-r2"))
}

func TestClusterRoom(t *testing.T) {
	cat := fleet.DefaultTenantCatalog()
	plan := func(n string) fleet.TenantPlan { p, err := cat.Plan(n); require.NoError(t, err); return p }
	// 3 brokers of 100 GiB: 80 GiB for tenants, 4,000 partitions.
	room := fleet.ClusterRoom{Cluster: "a", Brokers: 3, DiskBytes: 300 * fleet.GiB}
	assert.Equal(t, int64(80*fleet.GiB), room.CapacityBytes())
	assert.Equal(t, 4000, room.PartitionBudget())

	tests := []struct {
		name    string
		tenants []string
		plan    string
		want    string // "": fits
	}{
		{"empty cluster", nil, "basic-0", ""},
		{"one basic-2 fits", []string{"basic-0"}, "basic-2", ""},
		{"disk full", []string{"basic-2"}, "basic-1", "needs 32 GB of disk, 16 GB of 80 are free"},
		{"partitions full", repeat("basic-0", 16), "basic-0", "needs 240 partitions, 160 of 4000 are free"},
		{"dedicated needs it alone", []string{"basic-0"}, "dedicated", "dedicated"},
		{"beside a dedicated", []string{"dedicated"}, "basic-0", "a dedicated tenant has it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := room
			for _, n := range tt.tenants {
				r.Tenants = append(r.Tenants, plan(n))
			}
			err := r.Fits(plan(tt.plan))
			if tt.want == "" {
				assert.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, tt.want)
			}
		})
	}
	unknown := fleet.ClusterRoom{Cluster: "b", Brokers: 3}
	assert.ErrorContains(t, unknown.Fits(plan("basic-0")), "not known yet")

	// A plan change gives up the old plan's reservation first.
	full := room
	full.Tenants = []fleet.TenantPlan{plan("basic-2"), plan("basic-0")}
	old := plan("basic-2")
	assert.NoError(t, full.FitsInstead(plan("basic-2"), &old))
	assert.Error(t, full.Fits(plan("basic-2")))
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestPlaceTenant(t *testing.T) {
	cat := fleet.DefaultTenantCatalog()
	basic0, _ := cat.Plan("basic-0")
	basic2, _ := cat.Plan("basic-2")
	rooms := []fleet.ClusterRoom{
		{Cluster: "full", Brokers: 3, DiskBytes: 300 * fleet.GiB, Tenants: []fleet.TenantPlan{basic2, basic0, basic0, basic0}},
		{Cluster: "busy", Brokers: 3, DiskBytes: 300 * fleet.GiB, Tenants: []fleet.TenantPlan{basic0}},
		{Cluster: "idle", Brokers: 6, DiskBytes: 600 * fleet.GiB},
		{Cluster: "new", Brokers: 3},
	}
	got, err := fleet.PlaceTenant(rooms, basic0)
	require.NoError(t, err)
	assert.Equal(t, "idle", got, "the most disk left")

	got, err = fleet.PlaceTenant(rooms[:2], basic2)
	require.NoError(t, err)
	assert.Equal(t, "busy", got, "the only one with room")

	_, err = fleet.PlaceTenant(rooms[:1], basic2)
	assert.ErrorIs(t, err, fleet.ErrRefused)
	assert.ErrorContains(t, err, "no cluster has room for a basic-2 tenant")
	assert.ErrorContains(t, err, "cluster full")

	_, err = fleet.PlaceTenant(nil, basic0)
	assert.ErrorContains(t, err, "no cluster is registered")

	// Equal room: the id decides, so placement is stable.
	twins := []fleet.ClusterRoom{{Cluster: "b", Brokers: 3, DiskBytes: fleet.GiB * 300}, {Cluster: "a", Brokers: 3, DiskBytes: fleet.GiB * 300}}
	got, err = fleet.PlaceTenant(twins, basic0)
	require.NoError(t, err)
	assert.Equal(t, "a", got)
}
