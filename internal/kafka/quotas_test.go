package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
)

func TestProducerQuota(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	a, err := Dial("quota-a", c.ListenAddrs())
	require.NoError(t, err)
	t.Cleanup(a.Close)

	_, set, err := a.ProducerQuota(ctx, "wabash-58799")
	require.NoError(t, err)
	assert.False(t, set, "no quota yet")

	// Quotas on other entities are not the user's own.
	user, client := "wabash-58799", "app-1"
	_, err = a.adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &user}, {Type: "client-id", Name: &client}}, Ops: []kadm.AlterClientQuotaOp{{Key: KeyProducerByteRate, Value: 1}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "user"}}, Ops: []kadm.AlterClientQuotaOp{{Key: KeyProducerByteRate, Value: 2}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &user}}, Ops: []kadm.AlterClientQuotaOp{{Key: "consumer_byte_rate", Value: 3}}},
	})
	require.NoError(t, err)
	_, set, err = a.ProducerQuota(ctx, user)
	require.NoError(t, err)
	assert.False(t, set, "user+client-id, the user default and another key are not the user's producer quota")

	require.NoError(t, a.SetProducerQuota(ctx, user, 5<<20))
	require.NoError(t, a.SetProducerQuota(ctx, user, 5<<20), "setting the value in force is harmless")
	rate, set, err := a.ProducerQuota(ctx, user)
	require.NoError(t, err)
	assert.True(t, set)
	assert.InDelta(t, 5<<20, rate, 0.5)
	_, set, err = a.ProducerQuota(ctx, "other-1")
	require.NoError(t, err)
	assert.False(t, set)

	assert.Error(t, a.SetProducerQuota(ctx, user, 0))
	assert.Error(t, a.SetProducerQuota(ctx, "", 1))
}
