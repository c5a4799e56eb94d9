package fleet_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/fleet"
)

// The embedded catalog carries Heroku's published basic plans and a
// dedicated one.
func TestDefaultTenantCatalog(t *testing.T) {
	c := fleet.DefaultTenantCatalog()
	assert.Equal(t, []string{"basic-0", "basic-1", "basic-2", "dedicated"}, c.Names())
	tests := []struct {
		plan                 string
		produce, consume, gb int64
		partitions           int
	}{
		{"basic-0", 64, 256, 4, 240},
		{"basic-1", 512, 2048, 32, 480},
		{"basic-2", 4096, 16384, 64, 960},
	}
	for _, tt := range tests {
		p, err := c.Plan(tt.plan)
		require.NoError(t, err)
		assert.Equal(t, tt.produce, p.ProduceKBps, tt.plan)
		assert.Equal(t, tt.consume, p.ConsumeKBps, tt.plan)
		assert.Equal(t, tt.gb, p.CapacityGB, tt.plan)
		assert.Equal(t, tt.partitions, p.PartitionLimit(3), tt.plan)
		assert.Equal(t, 24*time.Hour, p.Retention.Default, tt.plan)
		assert.Equal(t, 6*time.Hour, p.Retention.Min, tt.plan)
		q := p.Quotas()
		assert.Equal(t, float64(tt.produce*1024), q.ProducerByteRate, tt.plan)
		assert.Equal(t, float64(tt.consume*1024), q.ConsumerByteRate, tt.plan)
		assert.Positive(t, q.RequestPercentage)
		assert.Positive(t, q.ControllerMutationRate)
	}
	d, err := c.Plan("dedicated")
	require.NoError(t, err)
	assert.True(t, d.Dedicated)
	assert.Equal(t, 4000*6/3, d.PartitionLimit(6), "4,000 partition replicas per broker at RF 3")
	assert.Equal(t, fleet.MaxClusterPartitions, d.PartitionLimit(1000))

	_, err = c.Plan("premium-9")
	assert.ErrorIs(t, err, fleet.ErrRefused)
	assert.ErrorContains(t, err, `unknown plan "premium-9" (plans: basic-0, basic-1, basic-2, dedicated)`)
}

func TestTenantPlanValidate(t *testing.T) {
	good := fleet.DefaultTenantCatalog().Plans[0]
	require.NoError(t, good.Validate())
	tests := []struct {
		name string
		edit func(*fleet.TenantPlan)
		want string
	}{
		{"name", func(p *fleet.TenantPlan) { p.Name = "Basic 0" }, "name"},
		{"produce", func(p *fleet.TenantPlan) { p.ProduceKBps = 0 }, "produceKBps"},
		{"capacity", func(p *fleet.TenantPlan) { p.CapacityGB = -1 }, "capacityGB"},
		{"no partitions", func(p *fleet.TenantPlan) { p.MaxPartitions = 0 }, "maxPartitions"},
		{"both partitions", func(p *fleet.TenantPlan) { p.PartitionsPerBroker = 10 }, "not both"},
		{"per broker not dedicated", func(p *fleet.TenantPlan) { p.MaxPartitions, p.PartitionsPerBroker = 0, 10 }, "dedicated plans"},
		{"per broker too many", func(p *fleet.TenantPlan) { p.MaxPartitions, p.PartitionsPerBroker, p.Dedicated = 0, 5000, true }, "at most 4000"},
		{"retention order", func(p *fleet.TenantPlan) { p.Retention.Min = 48 * time.Hour }, "retention"},
		{"retention zero", func(p *fleet.TenantPlan) { p.Retention = fleet.RetentionBounds{} }, "retention"},
		{"mutation rate", func(p *fleet.TenantPlan) { p.ControllerMutationRate = 0 }, "controllerMutationRate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := good
			tt.edit(&p)
			assert.ErrorContains(t, p.Validate(), tt.want)
		})
	}
}

func TestLoadTenantCatalog(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o600))
		return p
	}
	ok := write("ok.yaml", `plans:
  - name: tiny
    produceKBps: 8
    consumeKBps: 16
    capacityGB: 1
    maxPartitions: 10
    retention: {default: 12h, min: 1h, max: 24h}
    controllerMutationRate: 1
    requestPercentage: 5
`)
	c, err := fleet.LoadTenantCatalog(ok)
	require.NoError(t, err)
	p, err := c.Plan("tiny")
	require.NoError(t, err)
	assert.Equal(t, 12*time.Hour, p.Retention.Default)

	t.Setenv(fleet.PlansEnv, ok)
	c, err = fleet.TenantCatalogFromEnv()
	require.NoError(t, err)
	assert.Equal(t, []string{"tiny"}, c.Names())

	for name, text := range map[string]string{
		"unknown-field.yaml": "plans:\n  - name: x\n    colour: red\n",
		"empty.yaml":         "plans: []\n",
		"twice.yaml":         "plans:\n" + planYAML("a") + planYAML("a"),
		"invalid.yaml":       "plans:\n  - name: x\n",
	} {
		_, err := fleet.LoadTenantCatalog(write(name, text))
		assert.Error(t, err, name)
	}
	_, err = fleet.LoadTenantCatalog(filepath.Join(dir, "missing.yaml"))
	assert.Error(t, err)
}

func planYAML(name string) string {
	return "  - name: " + name + `
    produceKBps: 8
    consumeKBps: 16
    capacityGB: 1
    maxPartitions: 10
    retention: {default: 12h, min: 1h, max: 24h}
    controllerMutationRate: 1
    requestPercentage: 5
`
}

// A plan admits a tenant whose prefix is within its partitions and
// retention bounds; a plan change is refused otherwise.
func TestTenantPlanAdmits(t *testing.T) {
	basic0, _ := fleet.DefaultTenantCatalog().Plan("basic-0")
	hours := func(h int64) int64 { return h * 3600 * 1000 }
	tests := []struct {
		name string
		f    fleet.TenantFootprint
		want string // "": admitted
	}{
		{"empty", fleet.TenantFootprint{}, ""},
		{"within", fleet.TenantFootprint{Topics: 3, Partitions: 240, MinRetentionMs: hours(6), MaxRetentionMs: hours(168)}, ""},
		{"partitions", fleet.TenantFootprint{Topics: 1, Partitions: 241, MinRetentionMs: hours(24), MaxRetentionMs: hours(24)}, "241 partitions, plan basic-0 allows 240"},
		{"retention long", fleet.TenantFootprint{Topics: 1, Partitions: 8, MinRetentionMs: hours(24), MaxRetentionMs: hours(200)}, "at most 168h"},
		{"retention short", fleet.TenantFootprint{Topics: 1, Partitions: 8, MinRetentionMs: hours(1), MaxRetentionMs: hours(24)}, "at least 6h"},
		{"forever", fleet.TenantFootprint{Topics: 1, Partitions: 8, UnlimitedRetention: 1}, "forever"},
	}
	for _, tt := range tests {
		err := basic0.Admits(tt.f, 3)
		if tt.want == "" {
			assert.NoError(t, err, tt.name)
		} else {
			assert.ErrorContains(t, err, tt.want, tt.name)
		}
	}
}
