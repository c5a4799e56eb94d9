package localfleet_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/metrics"
)

const tenant = "wabash-58799"

// producerQuota sets (or with remove, lifts) a user's producer_byte_rate
// through the Kafka protocol, as the product's tenant workflows do.
func producerQuota(ctx context.Context, t *testing.T, adm *kadm.Client, user string, rate float64, remove bool) {
	t.Helper()
	res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &user}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: rate, Remove: remove}},
	}})
	require.NoError(t, err)
	for _, r := range res {
		require.NoError(t, r.Err, r.ErrMessage)
	}
}

// A tenant fills a broker's disk; a producer quota set with a real kadm
// client throttles it on that broker, as Kafka's per-broker quota does,
// so the disk really fills slower; lifting the quota restores the rate.
// Each change is audited with the client's SASL user.
func TestIntegrationProducerQuotaThrottlesTenant(t *testing.T) {
	t.Parallel()
	const (
		rate       = 8 << 20 // the tenant's bytes per second
		background = 1 << 20 // unattributed growth, which no quota slows
	)
	withSASL := hostTestCluster("local-a")
	withSASL.SASL = localfleet.SASLConfig{Enabled: true, Superuser: testSuperuser, SuperuserPassword: testSuperPass}
	tests := []struct {
		name string
		cc   localfleet.ClusterConfig
		opts []kgo.Opt
		who  string
	}{
		{"without SASL", hostTestCluster("local-a"), nil, "client"},
		{"as a SASL user", withSASL, []kgo.Opt{scramAs(testSuperuser, testSuperPass)}, testSuperuser},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, clock := startClockedFleet(t, tt.cc)
			ctx := testContext(t)
			_, adm := kafkaClient(t, f, "local-a", tt.opts...)
			b2 := f.Endpoints().Clusters["local-a"].Brokers[1]
			base := f.Endpoints().API + "/v1/clusters/local-a/brokers/2"

			var st localfleet.VolumeStatus
			hostsHTTP(ctx, t, http.MethodPost, base+"/faults/fill-disk?bytesPerSec="+strconv.Itoa(rate)+"&user="+tenant, http.StatusOK, &st)
			assert.Equal(t, int64(rate), st.GrowthBytesPerSec)
			assert.Equal(t, map[string]int64{tenant: rate}, st.ProduceBytesPerSec)
			require.NoError(t, f.FillDisk("local-a", 2, background))

			// expect checks the tenant's rate as the broker reports it and
			// as the disk fills.
			expect := func(tenantRate int64, why string) {
				t.Helper()
				m, err := metrics.Scrape(ctx, b2.MetricsURL)
				require.NoError(t, err)
				assert.Equal(t, map[string]float64{tenant: float64(tenantRate)}, m.ProduceByteRates, why)
				before, err := f.Volume("local-a", 2)
				require.NoError(t, err)
				assert.Equal(t, tenantRate+background, before.GrowthBytesPerSec, why)
				clock.Advance(100 * time.Second)
				after, err := f.Volume("local-a", 2)
				require.NoError(t, err)
				assert.Equal(t, 100*(tenantRate+background), after.UsedBytes-before.UsedBytes, "%s: the disk fills at that rate", why)
			}
			expect(rate, "no quota")

			// Validation changes nothing.
			_, err := adm.ValidateAlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
				Entity: kadm.ClientQuotaEntity{{Type: "user", Name: kadm.StringPtr(tenant)}},
				Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1}},
			}})
			require.NoError(t, err)
			expect(rate, "validate only")

			producerQuota(ctx, t, adm, tenant, rate/4, false)
			expect(rate/4, "throttled to a quarter")
			other, err := f.Volume("local-a", 1)
			require.NoError(t, err)
			assert.Zero(t, other.GrowthBytesPerSec, "the tenant does not produce to broker 1")

			described, err := adm.DescribeClientQuotas(ctx, false, nil)
			require.NoError(t, err)
			require.Len(t, described, 1, "kfake stores the quota")
			assert.Equal(t, float64(rate/4), described[0].Values[0].Value)

			producerQuota(ctx, t, adm, tenant, 0, true)
			expect(rate, "quota lifted")
			described, err = adm.DescribeClientQuotas(ctx, false, nil)
			require.NoError(t, err)
			assert.Empty(t, described)

			var quotas []localfleet.Event
			for _, e := range f.Audit("local-a") {
				if e.Kind == localfleet.EventQuota {
					quotas = append(quotas, e)
				}
			}
			require.Len(t, quotas, 2, "validation is not a change")
			for _, e := range quotas {
				assert.Equal(t, tt.who, e.Who)
				assert.Zero(t, e.Broker, "quotas are cluster-wide")
			}
			assert.Equal(t, "user "+tenant+" producer_byte_rate="+strconv.Itoa(rate/4), quotas[0].Detail)
			assert.Equal(t, "user "+tenant+" producer_byte_rate removed", quotas[1].Detail)
		})
	}
}

// kfake keeps quotas in DataDir; a fleet restarted on it enforces them.
func TestIntegrationProducerQuotaSurvivesRestart(t *testing.T) {
	t.Parallel()
	z := startZooKeeper(t)
	ctx := testContext(t)
	opts := localfleet.Options{ZooKeeper: z.Addr, DataDir: t.TempDir(), Logger: testLogger(t)}
	cfg := localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")}}

	f, err := localfleet.Start(ctx, cfg, opts)
	require.NoError(t, err)
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.Endpoints().Clusters["local-a"].Bootstrap...))
	require.NoError(t, err)
	producerQuota(ctx, t, kadm.NewClient(cl), tenant, 1<<20, false)
	cl.Close()
	require.NoError(t, f.Close())

	f, err = localfleet.Start(ctx, cfg, opts)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, f.Close()) })
	require.NoError(t, f.FillDiskBy("local-a", 3, 4<<20, tenant))
	v, err := f.Volume("local-a", 3)
	require.NoError(t, err)
	assert.Equal(t, int64(1<<20), v.GrowthBytesPerSec)
	assert.Equal(t, map[string]int64{tenant: 1 << 20}, v.ProduceBytesPerSec)
	for _, e := range f.Audit("local-a") {
		assert.NotEqual(t, localfleet.EventQuota, e.Kind, "a restored quota is not a change")
	}
}
