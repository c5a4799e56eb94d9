package localfleet

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestParseReplicaList(t *testing.T) {
	tests := []struct {
		value string
		ok    bool
		names [][2]int32 // pairs the list must name
		not   [][2]int32 // pairs it must not
	}{
		{value: "*", ok: true, names: [][2]int32{{0, 1}, {7, 3}}},
		{value: " * ", ok: true, names: [][2]int32{{2, 2}}},
		{value: "", ok: true, not: [][2]int32{{0, 1}}},
		{value: "0:1,1:2", ok: true, names: [][2]int32{{0, 1}, {1, 2}}, not: [][2]int32{{0, 2}, {1, 1}}},
		{value: " 0:1 , ,2:3", ok: true, names: [][2]int32{{0, 1}, {2, 3}}},
		{value: "0-1"},
		{value: "0:"},
		{value: ":1"},
		{value: "a:b"},
		{value: "0:+1"},
		{value: "*,0:1"},
		{value: "0 : 1"},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			l, invalid := parseReplicaList(leaderThrottledReplicas, tt.value)
			if !tt.ok {
				assert.Contains(t, invalid, "must be the literal '*'")
				return
			}
			assert.Empty(t, invalid)
			for _, p := range tt.names {
				assert.True(t, l.names(p[0], p[1]), "%v", p)
			}
			for _, p := range tt.not {
				assert.False(t, l.names(p[0], p[1]), "%v", p)
			}
		})
	}
}

func TestResolveThrottles(t *testing.T) {
	set := func(k, v string) throttleOp {
		return throttleOp{op: kmsg.IncrementalAlterConfigOpSet, key: k, value: &v}
	}
	op := func(o kmsg.IncrementalAlterConfigOp, k, v string) throttleOp {
		return throttleOp{op: o, key: k, value: &v}
	}
	broker, topic := kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeTopic
	tests := []struct {
		name    string
		typ     kmsg.ConfigResourceType
		current map[string]string
		replace bool
		ops     []throttleOp
		want    map[string]string
		code    int16
		msg     string
	}{
		{name: "set a rate", typ: broker, ops: []throttleOp{set(followerThrottledRate, "100")},
			want: map[string]string{followerThrottledRate: "100"}},
		{name: "delete keeps the rest", typ: broker, current: map[string]string{followerThrottledRate: "1", leaderThrottledRate: "2"},
			ops:  []throttleOp{{op: kmsg.IncrementalAlterConfigOpDelete, key: leaderThrottledRate}},
			want: map[string]string{followerThrottledRate: "1"}},
		{name: "replace drops what is not named", typ: topic, current: map[string]string{leaderThrottledReplicas: "*"}, replace: true,
			ops: []throttleOp{set(followerThrottledReplicas, "0:1")}, want: map[string]string{followerThrottledReplicas: "0:1"}},
		{name: "append and subtract", typ: topic, current: map[string]string{followerThrottledReplicas: "0:1,1:2"},
			ops:  []throttleOp{op(kmsg.IncrementalAlterConfigOpAppend, followerThrottledReplicas, "1:2,2:3"), op(kmsg.IncrementalAlterConfigOpSubtract, followerThrottledReplicas, "0:1")},
			want: map[string]string{followerThrottledReplicas: "1:2,2:3"}},
		{name: "not a long", typ: broker, ops: []throttleOp{set(leaderThrottledRate, "1.5")},
			code: kerr.InvalidConfig.Code, msg: "Not a number of type LONG"},
		{name: "negative", typ: broker, ops: []throttleOp{set(leaderThrottledRate, "-2")},
			code: kerr.InvalidConfig.Code, msg: "Value must be at least 0"},
		{name: "subtract from a rate", typ: broker, ops: []throttleOp{op(kmsg.IncrementalAlterConfigOpSubtract, leaderThrottledRate, "1")},
			code: kerr.InvalidConfig.Code, msg: "subtract is not allowed"},
		{name: "a rate on a topic", typ: topic, ops: []throttleOp{set(followerThrottledRate, "1")},
			code: kerr.InvalidConfig.Code, msg: "Unknown topic config name"},
		{name: "replicas on a broker", typ: broker, ops: []throttleOp{set(followerThrottledReplicas, "*")},
			code: kerr.InvalidConfig.Code, msg: "is a topic config"},
		{name: "null value", typ: broker, ops: []throttleOp{{op: kmsg.IncrementalAlterConfigOpSet, key: leaderThrottledRate}},
			code: kerr.InvalidRequest.Code, msg: "Null value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, cerr := resolveThrottles(tt.typ, tt.current, tt.replace, tt.ops)
			if tt.code == 0 {
				assert.Nil(t, cerr)
				assert.Equal(t, tt.want, got)
				return
			}
			if assert.NotNil(t, cerr) {
				assert.Equal(t, tt.code, cerr.code)
				assert.Contains(t, cerr.msg, tt.msg)
			}
		})
	}
}
