package localfleet_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kfleet/kfleet/internal/localfleet"
)

const (
	leaderRate       = "leader.replication.throttled.rate"
	followerRate     = "follower.replication.throttled.rate"
	leaderReplicas   = "leader.replication.throttled.replicas"
	followerReplicas = "follower.replication.throttled.replicas"
)

func setConfig(k, v string) kadm.AlterConfig {
	return kadm.AlterConfig{Op: kadm.SetConfig, Name: k, Value: kadm.StringPtr(v)}
}

func deleteConfig(k string) kadm.AlterConfig { return kadm.AlterConfig{Op: kadm.DeleteConfig, Name: k} }

// described is one config as DescribeConfigs reports it; ok is false when
// it is not reported.
type described struct {
	value    string
	source   kmsg.ConfigSource
	synonyms int
	ok       bool
}

func findConfig(t *testing.T, rcs kadm.ResourceConfigs, err error, key string) described {
	t.Helper()
	require.NoError(t, err)
	require.Len(t, rcs, 1)
	require.NoError(t, rcs[0].Err)
	for _, c := range rcs[0].Configs {
		if c.Key == key {
			return described{value: c.MaybeValue(), source: c.Source, synonyms: len(c.Synonyms), ok: true}
		}
	}
	return described{}
}

func brokerConfig(t *testing.T, adm *kadm.Client, broker int32, key string) described {
	t.Helper()
	if broker < 0 {
		rcs, err := adm.DescribeBrokerConfigs(testContext(t)) // the cluster default
		return findConfig(t, rcs, err, key)
	}
	rcs, err := adm.DescribeBrokerConfigs(testContext(t), broker)
	return findConfig(t, rcs, err, key)
}

func topicConfig(t *testing.T, adm *kadm.Client, topic, key string) described {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(testContext(t), topic)
	return findConfig(t, rcs, err, key)
}

// oneResult returns a function that takes an alter's results and returns
// its single resource's answer.
func oneResult(t *testing.T) func(kadm.AlterConfigsResponses, error) (string, error) {
	return func(rs kadm.AlterConfigsResponses, err error) (string, error) {
		t.Helper()
		require.NoError(t, err)
		require.Len(t, rs, 1)
		return rs[0].ErrMessage, rs[0].Err
	}
}

// Replication throttle configs round-trip through the model: per-broker
// rates with the cluster default as fallback, topic replica lists,
// alongside configs kfake keeps; they are validated as Kafka does.
func TestIntegrationThrottleConfigs(t *testing.T) {
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")}})
	cl, adm := kafkaClient(t, f, "local-a")
	ctx := testContext(t)

	t.Run("broker rates, per broker and cluster default", func(t *testing.T) {
		_, err := oneResult(t)(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{setConfig(followerRate, "1048576"), setConfig(leaderRate, "2097152")}, 2))
		require.NoError(t, err)
		assert.Equal(t, described{"1048576", kmsg.ConfigSourceDynamicBrokerConfig, 1, true}, brokerConfig(t, adm, 2, followerRate))
		assert.Equal(t, described{"2097152", kmsg.ConfigSourceDynamicBrokerConfig, 1, true}, brokerConfig(t, adm, 2, leaderRate))
		assert.False(t, brokerConfig(t, adm, 1, followerRate).ok, "a rate is per broker")

		_, err = oneResult(t)(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{setConfig(followerRate, "500")}))
		require.NoError(t, err)
		assert.Equal(t, described{"500", kmsg.ConfigSourceDynamicDefaultBrokerConfig, 1, true}, brokerConfig(t, adm, -1, followerRate))
		assert.Equal(t, described{"500", kmsg.ConfigSourceDynamicDefaultBrokerConfig, 1, true}, brokerConfig(t, adm, 1, followerRate),
			"a broker without its own rate has the default's")
		assert.Equal(t, described{"1048576", kmsg.ConfigSourceDynamicBrokerConfig, 2, true}, brokerConfig(t, adm, 2, followerRate),
			"its own wins; the default is its synonym")

		_, err = oneResult(t)(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{deleteConfig(followerRate)}))
		require.NoError(t, err)
		_, err = oneResult(t)(adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{deleteConfig(followerRate), deleteConfig(leaderRate)}, 2))
		require.NoError(t, err)
		for _, b := range []int32{-1, 1, 2} {
			assert.False(t, brokerConfig(t, adm, b, followerRate).ok, "broker %d", b)
		}
	})

	t.Run("topic replica lists beside kfake's configs", func(t *testing.T) {
		_, err := oneResult(t)(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
			setConfig("retention.ms", "3600000"), setConfig(followerReplicas, "0:1,1:2"), setConfig(leaderReplicas, "*"),
		}, "events"))
		require.NoError(t, err)
		assert.Equal(t, described{"3600000", kmsg.ConfigSourceDynamicTopicConfig, 1, true}, topicConfig(t, adm, "events", "retention.ms"),
			"the other key reached kfake")
		assert.Equal(t, described{"0:1,1:2", kmsg.ConfigSourceDynamicTopicConfig, 1, true}, topicConfig(t, adm, "events", followerReplicas))
		assert.Equal(t, described{"*", kmsg.ConfigSourceDynamicTopicConfig, 1, true}, topicConfig(t, adm, "events", leaderReplicas))

		_, err = oneResult(t)(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{
			{Op: kadm.AppendConfig, Name: followerReplicas, Value: kadm.StringPtr("2:3,0:1")},
			{Op: kadm.SubtractConfig, Name: followerReplicas, Value: kadm.StringPtr("1:2")},
		}, "events"))
		require.NoError(t, err)
		assert.Equal(t, "0:1,2:3", topicConfig(t, adm, "events", followerReplicas).value, "APPEND and SUBTRACT act on the list")

		// Only the names asked for.
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeTopic, "events", []string{followerReplicas}
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctx, cl)
		require.NoError(t, err)
		require.Len(t, resp.Resources, 1)
		var names []string
		for _, c := range resp.Resources[0].Configs {
			names = append(names, c.Name)
		}
		assert.Equal(t, []string{followerReplicas}, names)

		// AlterConfigs replaces every config: throttles not named go.
		_, err = oneResult(t)(adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{setConfig("retention.ms", "7200000")}, "events"))
		require.NoError(t, err)
		assert.Equal(t, "7200000", topicConfig(t, adm, "events", "retention.ms").value)
		assert.False(t, topicConfig(t, adm, "events", followerReplicas).ok)
		assert.False(t, topicConfig(t, adm, "events", leaderReplicas).ok)
	})

	t.Run("a deleted topic forgets its throttles", func(t *testing.T) {
		created, err := adm.CreateTopic(ctx, 2, 3, nil, "doomed")
		require.NoError(t, err)
		require.NoError(t, created.Err)
		_, err = oneResult(t)(adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{setConfig(leaderReplicas, "*")}, "doomed"))
		require.NoError(t, err)
		require.True(t, topicConfig(t, adm, "doomed", leaderReplicas).ok)
		deleted, err := adm.DeleteTopic(ctx, "doomed")
		require.NoError(t, err)
		require.NoError(t, deleted.Err)
		created, err = adm.CreateTopic(ctx, 2, 3, nil, "doomed")
		require.NoError(t, err)
		require.NoError(t, created.Err)
		assert.False(t, topicConfig(t, adm, "doomed", leaderReplicas).ok)
	})

	unset := func(t *testing.T) {
		t.Helper()
		assert.False(t, brokerConfig(t, adm, 1, followerRate).ok, "nothing stored")
		assert.False(t, topicConfig(t, adm, "events", leaderReplicas).ok, "nothing stored")
	}
	tests := []struct {
		name    string
		alter   func() (kadm.AlterConfigsResponses, error)
		wantErr error
		wantMsg string
		check   func(t *testing.T)
	}{
		{"rate not a number", func() (kadm.AlterConfigsResponses, error) {
			return adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{setConfig(followerRate, "fast")}, 1)
		}, kerr.InvalidConfig, "Not a number of type LONG", unset},
		{"negative rate", func() (kadm.AlterConfigsResponses, error) {
			return adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{setConfig(followerRate, "-1")}, 1)
		}, kerr.InvalidConfig, "Value must be at least 0", unset},
		{"append to a rate", func() (kadm.AlterConfigsResponses, error) {
			return adm.AlterBrokerConfigs(ctx, []kadm.AlterConfig{{Op: kadm.AppendConfig, Name: followerRate, Value: kadm.StringPtr("1")}}, 1)
		}, kerr.InvalidConfig, "append is not allowed", unset},
		{"malformed replica list", func() (kadm.AlterConfigsResponses, error) {
			return adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{setConfig(leaderReplicas, "0-1")}, "events")
		}, kerr.InvalidConfig, "must be the literal '*' or a list of replicas", unset},
		{"a rate is no topic config", func() (kadm.AlterConfigsResponses, error) {
			return adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{setConfig(leaderRate, "10")}, "events")
		}, kerr.InvalidConfig, "Unknown topic config name", unset},
		{"an invalid throttle fails the whole resource", func() (kadm.AlterConfigsResponses, error) {
			return adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{setConfig("retention.ms", "1000"), setConfig(leaderReplicas, "x")}, "events")
		}, kerr.InvalidConfig, "must be the literal", func(t *testing.T) {
			assert.Equal(t, "7200000", topicConfig(t, adm, "events", "retention.ms").value, "the other key was not applied")
			unset(t)
		}},
		{"unknown topic", func() (kadm.AlterConfigsResponses, error) {
			return adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{setConfig(leaderReplicas, "*")}, "nosuch")
		}, kerr.UnknownTopicOrPartition, "", unset},
		{"unknown topic and an invalid value", func() (kadm.AlterConfigsResponses, error) {
			return adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{setConfig(leaderReplicas, "x")}, "nosuch")
		}, kerr.UnknownTopicOrPartition, "", unset},
		{"legacy AlterConfigs, invalid", func() (kadm.AlterConfigsResponses, error) {
			return adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{setConfig("retention.ms", "1000"), setConfig(leaderReplicas, "x")}, "events")
		}, kerr.InvalidConfig, "must be the literal", func(t *testing.T) {
			assert.Equal(t, "7200000", topicConfig(t, adm, "events", "retention.ms").value, "nothing was replaced")
		}},
		{"legacy AlterConfigs, unknown topic", func() (kadm.AlterConfigsResponses, error) {
			return adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{setConfig(leaderReplicas, "x")}, "nosuch")
		}, kerr.UnknownTopicOrPartition, "", unset},
		{"validate only", func() (kadm.AlterConfigsResponses, error) {
			return adm.ValidateAlterBrokerConfigs(ctx, []kadm.AlterConfig{setConfig(followerRate, "10")}, 1)
		}, nil, "", unset},
		{"validate only, invalid", func() (kadm.AlterConfigsResponses, error) {
			return adm.ValidateAlterTopicConfigs(ctx, []kadm.AlterConfig{setConfig(leaderReplicas, "0:")}, "events")
		}, kerr.InvalidConfig, "must be the literal", unset},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := oneResult(t)(tt.alter())
			if tt.wantErr == nil {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Contains(t, msg, tt.wantMsg)
			}
			tt.check(t)
		})
	}

	var changes int
	for _, e := range f.Audit("local-a") {
		if e.Kind == localfleet.EventThrottle {
			changes++
			assert.Equal(t, "client", e.Who)
		}
	}
	assert.GreaterOrEqual(t, changes, 6, "each throttle change is audited")
}
