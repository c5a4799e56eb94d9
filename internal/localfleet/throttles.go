package localfleet

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Replication throttles, the configs partition moves run under
// (OPERATIONS.md, "Moving partitions"). Kafka keeps the rates as dynamic
// broker configs, per broker id with a cluster-wide default (resource
// name ""), and the throttled replica lists as topic configs. kfake
// cannot stand in: it has one node, so every broker's dynamic configs
// would land in one map (and AlterConfigs on one broker would wipe
// another's), it does not validate these values, and it does not act on
// them. The proxy therefore takes these keys out of config requests,
// validates them as Kafka does, keeps them in the model, where
// reassignment copies obey them (reassign_copy.go), forwards everything
// else to kfake and merges both answers. kfake still judges each
// resource (ACLs, an unknown topic or broker): the model changes only
// where kfake accepted the resource.

const (
	leaderThrottledRate       = "leader.replication.throttled.rate"
	followerThrottledRate     = "follower.replication.throttled.rate"
	leaderThrottledReplicas   = "leader.replication.throttled.replicas"
	followerThrottledReplicas = "follower.replication.throttled.replicas"
)

// EventThrottle: a client changed replication throttles (Broker is the
// broker whose rates changed, 0 for the cluster default and for topics).
// Detail: the resource and the new values, e.g. "broker 4:
// follower.replication.throttled.rate=10485760".
const EventThrottle EventKind = "throttle"

// rateKeys are the broker throttle configs, replicasKeys the topic ones.
func rateKeys() [2]string     { return [2]string{leaderThrottledRate, followerThrottledRate} }
func replicasKeys() [2]string { return [2]string{leaderThrottledReplicas, followerThrottledReplicas} }

func isRateKey(k string) bool { return k == leaderThrottledRate || k == followerThrottledRate }

func isThrottleKey(k string) bool {
	return isRateKey(k) || k == leaderThrottledReplicas || k == followerThrottledReplicas
}

// replicaList is a parsed throttled.replicas value: every replica ("*"),
// or the partition:broker pairs it names.
type replicaList struct {
	raw   string
	all   bool
	pairs map[[2]int32]bool
}

// names reports whether the list throttles partition's replica on broker.
func (l replicaList) names(partition, broker int32) bool {
	return l.all || l.pairs[[2]int32{partition, broker}]
}

// parseReplicaList validates a throttled.replicas value as Kafka's
// ThrottledReplicaListValidator does: "*", or comma-separated
// [partitionId]:[brokerId] items (blank items and an empty value allowed).
// invalid is Kafka's message when it is not valid.
func parseReplicaList(key, v string) (_ replicaList, invalid string) {
	l := replicaList{raw: v, pairs: map[[2]int32]bool{}}
	items := strings.Split(v, ",")
	if len(items) == 1 && strings.TrimSpace(items[0]) == "*" {
		l.all = true
		return l, ""
	}
	for _, item := range items {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		ps, bs, ok := strings.Cut(item, ":")
		part, err1 := strconv.ParseInt(ps, 10, 32)
		broker, err2 := strconv.ParseInt(bs, 10, 32)
		if !ok || err1 != nil || err2 != nil || part < 0 || broker < 0 || strings.ContainsAny(ps+bs, "+-") {
			return replicaList{}, fmt.Sprintf("Invalid value %s for configuration %s: %s must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...", v, key, key)
		}
		l.pairs[[2]int32{int32(part), int32(broker)}] = true
	}
	return l, ""
}

// parseRate validates a throttled.rate value: a LONG of at least 0.
// invalid is Kafka's message when it is not valid.
func parseRate(key, v string) (_ int64, invalid string) {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0, fmt.Sprintf("Invalid value %s for configuration %s: Not a number of type LONG", v, key)
	}
	if n < 0 {
		return 0, fmt.Sprintf("Invalid value %s for configuration %s: Value must be at least 0", v, key)
	}
	return n, ""
}

// configError is a config resource's answer when it is refused.
type configError struct {
	code int16
	msg  string
}

// throttleOp is one throttle key of a config request: AlterConfigs'
// values are SETs.
type throttleOp struct {
	op    kmsg.IncrementalAlterConfigOp
	key   string
	value *string
}

// throttleEdit is what one resource of an AlterConfigs or
// IncrementalAlterConfigs request asks of the model's throttles, in
// request order.
type throttleEdit struct {
	typ  kmsg.ConfigResourceType
	name string // as the client sent it
	// active: the resource can carry throttles (BROKER or TOPIC) and
	// either names a throttle key or replaces every config (AlterConfigs).
	active  bool
	replace bool // AlterConfigs: the throttles become exactly ops' keys
	ops     []throttleOp
	err     *configError // invalid: this is the answer and nothing changes
	local   bool         // answered here and not forwarded to kfake
}

// resolveThrottles applies ops to a resource's current throttle values
// and validates the result as Kafka does.
func resolveThrottles(typ kmsg.ConfigResourceType, current map[string]string, replace bool, ops []throttleOp) (map[string]string, *configError) {
	out := map[string]string{}
	if !replace {
		maps.Copy(out, current)
	}
	invalid := func(format string, args ...any) (map[string]string, *configError) {
		return nil, &configError{code: kerr.InvalidConfig.Code, msg: fmt.Sprintf(format, args...)}
	}
	for _, o := range ops {
		isRate := isRateKey(o.key)
		switch {
		case typ == kmsg.ConfigResourceTypeTopic && isRate:
			return invalid("Unknown topic config name: %s", o.key)
		case typ == kmsg.ConfigResourceTypeBroker && !isRate:
			return invalid("%s is a topic config, not a broker config", o.key)
		}
		switch o.op {
		case kmsg.IncrementalAlterConfigOpSet:
			if o.value == nil {
				return nil, &configError{code: kerr.InvalidRequest.Code, msg: "Null value not supported for : " + o.key}
			}
			out[o.key] = *o.value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(out, o.key)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			verb := "append"
			if o.op == kmsg.IncrementalAlterConfigOpSubtract {
				verb = "subtract"
			}
			if isRate {
				return invalid("Config value %s is not allowed for config key: %s", verb, o.key)
			}
			out[o.key] = listOp(out[o.key], o.value, o.op == kmsg.IncrementalAlterConfigOpAppend)
		default:
			return nil, &configError{code: kerr.InvalidRequest.Code, msg: fmt.Sprintf("unknown config operation %d for %s", o.op, o.key)}
		}
	}
	for k, v := range out {
		var why string
		if isRateKey(k) {
			_, why = parseRate(k, v)
		} else {
			_, why = parseReplicaList(k, v)
		}
		if why != "" {
			return invalid("%s", why)
		}
	}
	return out, nil
}

// listOp is Kafka's APPEND (items not yet present go at the end) or
// SUBTRACT on a LIST value.
func listOp(current string, value *string, add bool) string {
	split := func(s string) []string {
		var out []string
		for _, item := range strings.Split(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
		return out
	}
	items, change := split(current), []string(nil)
	if value != nil {
		change = split(*value)
	}
	for _, item := range change {
		switch {
		case add && !slices.Contains(items, item):
			items = append(items, item)
		case !add:
			items = slices.DeleteFunc(items, func(s string) bool { return s == item })
		}
	}
	return strings.Join(items, ",")
}

// rateResourceKey is the model's key for a BROKER resource name: "" (the
// cluster default) or the broker id in canonical form.
func rateResourceKey(name string) (string, bool) {
	if name == "" {
		return "", true
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil {
		return "", false
	}
	return strconv.Itoa(int(id)), true
}

// throttleValuesLocked is a resource's throttle configs as set, by key.
func (c *cluster) throttleValuesLocked(typ kmsg.ConfigResourceType, name string) map[string]string {
	out := map[string]string{}
	switch typ {
	case kmsg.ConfigResourceTypeBroker:
		if key, ok := rateResourceKey(name); ok {
			for k, v := range c.rates[key] {
				out[k] = strconv.FormatInt(v, 10)
			}
		}
	case kmsg.ConfigResourceTypeTopic:
		if t := c.topics[name]; t != nil {
			for k, l := range t.throttled {
				out[k] = l.raw
			}
		}
	}
	return out
}

// storeThrottlesLocked makes values (validated) a resource's throttle
// configs and returns whether anything changed and whether it could be
// stored (a topic the model does not know cannot).
func (c *cluster) storeThrottlesLocked(typ kmsg.ConfigResourceType, name string, values map[string]string) (changed, ok bool) {
	if maps.Equal(values, c.throttleValuesLocked(typ, name)) {
		return false, true
	}
	switch typ {
	case kmsg.ConfigResourceTypeBroker:
		key, ok := rateResourceKey(name)
		if !ok {
			return false, false
		}
		rates := map[string]int64{}
		for k, v := range values {
			rates[k], _ = parseRate(k, v)
		}
		if len(rates) == 0 {
			delete(c.rates, key)
		} else {
			c.rates[key] = rates
		}
	case kmsg.ConfigResourceTypeTopic:
		t := c.topics[name]
		if t == nil {
			return false, false
		}
		t.throttled = nil
		for k, v := range values {
			if t.throttled == nil {
				t.throttled = map[string]replicaList{}
			}
			t.throttled[k], _ = parseReplicaList(k, v)
		}
	}
	return true, true
}

// rateLocked is the throttle rate key in force on broker id: its own,
// else the cluster default; ok is false when neither is set.
func (c *cluster) rateLocked(id int32, key string) (int64, bool) {
	if v, ok := c.rates[strconv.Itoa(int(id))][key]; ok {
		return v, true
	}
	v, ok := c.rates[""][key]
	return v, ok
}

// throttledLocked reports whether the replicas list key of p's topic
// names p's replica on broker.
func (c *cluster) throttledLocked(p *partition, key string, broker int32) bool {
	t := c.topics[p.topic]
	if t == nil {
		return false
	}
	l, ok := t.throttled[key]
	return ok && l.names(p.id, broker)
}
