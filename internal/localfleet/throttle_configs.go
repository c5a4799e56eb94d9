package localfleet

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The proxy's side of replication throttles (throttles.go): config
// requests are split between the model and kfake, and their answers
// merged.

// alterConfigs handles AlterConfigs and IncrementalAlterConfigs: the
// throttle keys go to the model, the rest to kfake, and the answers are
// merged in request order.
func (s *session) alterConfigs(req *request) ([]byte, error) {
	c := s.p.c
	edits, err := c.takeThrottles(req)
	if err != nil {
		return nil, err
	}
	names, err := toKfakeBrokerResources(req, func(id int32) bool { _, err := c.broker(id); return err == nil })
	if err != nil {
		return nil, err
	}
	raw, err := s.roundTrip(req, true)
	if err != nil {
		return nil, err
	}
	if raw, err = restoreBrokerResources(req, raw, names); err != nil {
		return nil, err
	}
	return c.settleThrottles(req, raw, edits, s.who())
}

// takeThrottles takes the throttle keys out of an alter request and
// returns, per resource in request order, what they ask. An invalid
// resource of an IncrementalAlterConfigs request is still forwarded, with
// no configs, so that kfake judges ACLs and existence first, as Kafka
// does; AlterConfigs replaces every config, so an invalid resource of it
// is answered here and not forwarded at all.
func (c *cluster) takeThrottles(req *request) ([]throttleEdit, error) {
	kreq, err := req.decode()
	if err != nil {
		return nil, err
	}
	changed := false
	var edits []throttleEdit
	switch r := kreq.(type) {
	case *kmsg.AlterConfigsRequest:
		var kept []kmsg.AlterConfigsRequestResource
		for _, rr := range r.Resources {
			e := throttleEdit{typ: rr.ResourceType, name: rr.ResourceName, replace: true}
			if e.carriesThrottles() {
				e.active = true
				var rest []kmsg.AlterConfigsRequestResourceConfig
				for _, cfg := range rr.Configs {
					if isThrottleKey(cfg.Name) {
						e.ops = append(e.ops, throttleOp{op: kmsg.IncrementalAlterConfigOpSet, key: cfg.Name, value: cfg.Value})
						changed = true
					} else {
						rest = append(rest, cfg)
					}
				}
				rr.Configs = rest
				if e.err = c.validateThrottles(&e); e.err != nil {
					e.local, changed = true, true
					edits = append(edits, e)
					continue
				}
			}
			edits = append(edits, e)
			kept = append(kept, rr)
		}
		r.Resources = kept
	case *kmsg.IncrementalAlterConfigsRequest:
		for i := range r.Resources {
			rr := &r.Resources[i]
			e := throttleEdit{typ: rr.ResourceType, name: rr.ResourceName}
			if e.carriesThrottles() {
				var rest []kmsg.IncrementalAlterConfigsRequestResourceConfig
				for _, cfg := range rr.Configs {
					if isThrottleKey(cfg.Name) {
						e.ops = append(e.ops, throttleOp{op: cfg.Op, key: cfg.Name, value: cfg.Value})
					} else {
						rest = append(rest, cfg)
					}
				}
				if e.active = len(e.ops) > 0; e.active {
					changed = true
					rr.Configs = rest
					if e.err = c.validateThrottles(&e); e.err != nil {
						rr.Configs = nil // kfake only judges the resource itself
					}
				}
			}
			edits = append(edits, e)
		}
	default:
		return nil, fmt.Errorf("takeThrottles: unexpected %s", kmsg.NameForKey(req.key))
	}
	if changed {
		req.reencode(kreq)
	}
	return edits, nil
}

func (e *throttleEdit) carriesThrottles() bool {
	return e.typ == kmsg.ConfigResourceTypeBroker || e.typ == kmsg.ConfigResourceTypeTopic
}

// validateThrottles checks an edit against the model's current values.
// An invalid AlterConfigs topic the model does not know is answered as
// unknown, as Kafka checks existence first.
func (c *cluster) validateThrottles(e *throttleEdit) *configError {
	c.mu.Lock()
	_, cerr := resolveThrottles(e.typ, c.throttleValuesLocked(e.typ, e.name), e.replace, e.ops)
	known := e.typ != kmsg.ConfigResourceTypeTopic || c.topics[e.name] != nil
	c.mu.Unlock()
	if cerr == nil || !e.replace || known {
		return cerr
	}
	if err := c.refresh(c.life); err != nil {
		c.log.Warn().Err(err).Str("topic", e.name).Msg("alter configs: refresh from kfake")
		return cerr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.topics[e.name] == nil {
		return &configError{code: kerr.UnknownTopicOrPartition.Code, msg: fmt.Sprintf("Topic %s does not exist", e.name)}
	}
	return cerr
}

// settleThrottles merges kfake's answer with the model's: local answers
// are spliced back in request order, an invalid throttle turns kfake's
// success into the refusal, and valid throttles of resources kfake
// accepted are stored (unless the request only validates).
func (c *cluster) settleThrottles(req *request, raw []byte, edits []throttleEdit, who string) ([]byte, error) {
	if !slices.ContainsFunc(edits, func(e throttleEdit) bool { return e.active }) {
		return raw, nil
	}
	resp, err := req.decodeResponse(raw)
	if err != nil {
		// The model cannot tell what kfake stored: better a client
		// retry than a model that silently disagrees with kfake.
		return nil, err
	}
	kreq, err := req.decode()
	if err != nil {
		return nil, err
	}
	var validateOnly bool
	// answer reports, per resource kfake answered, its code and a
	// pointer to its message; splice adds a locally answered resource.
	type answer struct {
		code *int16
		msg  **string
	}
	var answers []answer
	switch r := resp.(type) {
	case *kmsg.AlterConfigsResponse:
		validateOnly = kreq.(*kmsg.AlterConfigsRequest).ValidateOnly
		var out []kmsg.AlterConfigsResponseResource
		k := 0
		for _, e := range edits {
			if e.local {
				rr := kmsg.NewAlterConfigsResponseResource()
				rr.ResourceType, rr.ResourceName, rr.ErrorCode, rr.ErrorMessage = e.typ, e.name, e.err.code, &e.err.msg
				out = append(out, rr)
			} else if k < len(r.Resources) {
				out = append(out, r.Resources[k])
				k++
			}
		}
		r.Resources = out
		for i := range r.Resources {
			answers = append(answers, answer{&r.Resources[i].ErrorCode, &r.Resources[i].ErrorMessage})
		}
	case *kmsg.IncrementalAlterConfigsResponse:
		validateOnly = kreq.(*kmsg.IncrementalAlterConfigsRequest).ValidateOnly
		for i := range r.Resources {
			answers = append(answers, answer{&r.Resources[i].ErrorCode, &r.Resources[i].ErrorMessage})
		}
	default:
		return nil, fmt.Errorf("settleThrottles: unexpected %s response", kmsg.NameForKey(req.key))
	}
	if len(answers) != len(edits) {
		return nil, errors.New("alter configs: kfake answered another number of resources than asked")
	}
	var apply []throttleEdit
	for i, e := range edits {
		switch {
		case !e.active || e.local || *answers[i].code != 0:
		case e.err != nil:
			*answers[i].code, *answers[i].msg = e.err.code, &e.err.msg
		case !validateOnly:
			apply = append(apply, e)
		}
	}
	c.applyThrottles(apply, who)
	return req.encodeResponse(resp), nil
}

// applyThrottles stores edits kfake accepted and audits what changed.
// Topics the model has not learned yet are learned first.
func (c *cluster) applyThrottles(edits []throttleEdit, who string) {
	c.mu.Lock()
	missing := slices.ContainsFunc(edits, func(e throttleEdit) bool {
		return e.typ == kmsg.ConfigResourceTypeTopic && c.topics[e.name] == nil
	})
	c.mu.Unlock()
	if missing {
		if err := c.refresh(c.life); err != nil {
			c.log.Warn().Err(err).Msg("alter configs: refresh from kfake")
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range edits {
		values, cerr := resolveThrottles(e.typ, c.throttleValuesLocked(e.typ, e.name), e.replace, e.ops)
		if cerr != nil {
			// Changed by another client since it was validated.
			c.log.Warn().Str("resource", e.name).Str("error", cerr.msg).Msg("throttle change no longer valid; not applied")
			continue
		}
		changed, ok := c.storeThrottlesLocked(e.typ, e.name, values)
		if !ok {
			c.log.Warn().Str("resource", e.name).Msg("throttle change for a resource the model does not know; not applied")
			continue
		}
		if changed {
			c.recordThrottleLocked(e.typ, e.name, values, who)
		}
	}
}

// recordThrottleLocked audits a resource's new throttle configs.
func (c *cluster) recordThrottleLocked(typ kmsg.ConfigResourceType, name string, values map[string]string, who string) {
	ev := Event{Cluster: c.id, Kind: EventThrottle, Who: who}
	resource := "topic " + name
	if typ == kmsg.ConfigResourceTypeBroker {
		resource = "cluster default"
		if key, _ := rateResourceKey(name); key != "" {
			id, _ := strconv.Atoi(key)
			ev.Broker, resource = int32(id), "broker "+key
		}
	}
	parts := []string{}
	for _, k := range slices.Sorted(maps.Keys(values)) {
		parts = append(parts, k+"="+values[k])
	}
	if len(parts) == 0 {
		parts = append(parts, "no replication throttle")
	}
	ev.Detail = resource + ": " + strings.Join(parts, ", ")
	c.appendEventLocked(ev)
}

// throttlesOf is a BROKER or TOPIC resource's throttle configs in the
// model, where set. A broker without a rate of its own reports the cluster
// default's, as Kafka does.
func (c *cluster) throttlesOf(dreq *kmsg.DescribeConfigsRequest, r *kmsg.DescribeConfigsResponseResource) []kmsg.DescribeConfigsResponseResourceConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch r.ResourceType {
	case kmsg.ConfigResourceTypeBroker:
		return c.describeRatesLocked(r.ResourceName, dreq.IncludeSynonyms)
	case kmsg.ConfigResourceTypeTopic:
		return c.describeReplicasLocked(r.ResourceName, dreq.IncludeSynonyms)
	}
	return nil
}

// describeRatesLocked is a BROKER resource's throttle rates as
// DescribeConfigs reports them.
func (c *cluster) describeRatesLocked(name string, synonyms bool) []kmsg.DescribeConfigsResponseResourceConfig {
	key, ok := rateResourceKey(name)
	if !ok {
		return nil
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, k := range rateKeys() {
		var found []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
		if v, ok := c.rates[key][k]; ok && key != "" {
			found = append(found, synonym(k, strconv.FormatInt(v, 10), kmsg.ConfigSourceDynamicBrokerConfig))
		}
		if v, ok := c.rates[""][k]; ok {
			found = append(found, synonym(k, strconv.FormatInt(v, 10), kmsg.ConfigSourceDynamicDefaultBrokerConfig))
		}
		if len(found) > 0 {
			out = append(out, describedConfig(found, synonyms, kmsg.ConfigTypeLong))
		}
	}
	return out
}

// describeReplicasLocked is a TOPIC resource's throttled replica lists as
// DescribeConfigs reports them.
func (c *cluster) describeReplicasLocked(topic string, synonyms bool) []kmsg.DescribeConfigsResponseResourceConfig {
	t := c.topics[topic]
	if t == nil {
		return nil
	}
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, k := range replicasKeys() {
		if l, ok := t.throttled[k]; ok {
			found := []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{synonym(k, l.raw, kmsg.ConfigSourceDynamicTopicConfig)}
			out = append(out, describedConfig(found, synonyms, kmsg.ConfigTypeList))
		}
	}
	return out
}

func synonym(k, v string, src kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	s.Name, s.Value, s.Source = k, &v, src
	return s
}

// describedConfig is the config whose value comes from found[0], the
// most specific of the places it is set; the rest are its synonyms.
func describedConfig(found []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym, synonyms bool, typ kmsg.ConfigType) kmsg.DescribeConfigsResponseResourceConfig {
	cfg := kmsg.NewDescribeConfigsResponseResourceConfig()
	cfg.Name, cfg.Value, cfg.Source, cfg.ConfigType = found[0].Name, found[0].Value, found[0].Source, typ
	if synonyms {
		cfg.ConfigSynonyms = found
	}
	return cfg
}
