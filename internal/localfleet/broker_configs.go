package localfleet

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A broker's static configuration as DescribeConfigs reports it: what its
// host's server.properties says (kfleet-ConfigureBroker's, or the
// configuration's for the fleet's own hosts). kfake knows one node with
// its own broker.id and broker.rack ("krack") and none of a ZooKeeper
// broker's settings, so the fleet answers these itself: a client checking
// a new broker's rack, ensemble and safe defaults sees what the host was
// given.

// configsFor gives the configs the model answers for one resource of a
// DescribeConfigs response, nil for none; it takes c.mu itself if it
// needs it.
type configsFor func(dreq *kmsg.DescribeConfigsRequest, r *kmsg.DescribeConfigsResponseResource) []kmsg.DescribeConfigsResponseResourceConfig

// amendDescribeConfigs decodes a DescribeConfigs answer (resource names
// already the client's) once and sets in each resource without an error
// the configs each source gives for it, honouring the config names the
// resource asked for: a config kfake reported is replaced, another added.
// An answer nothing was set in is returned as it came.
func (c *cluster) amendDescribeConfigs(req *request, raw []byte, sources ...configsFor) ([]byte, error) {
	kreq, err := req.decode()
	if err != nil {
		return raw, nil
	}
	dreq, ok := kreq.(*kmsg.DescribeConfigsRequest)
	if !ok {
		return raw, nil
	}
	resp, err := req.decodeResponse(raw)
	if err != nil {
		return raw, nil
	}
	dresp, ok := resp.(*kmsg.DescribeConfigsResponse)
	if !ok || len(dresp.Resources) != len(dreq.Resources) {
		return raw, nil
	}
	changed := false
	for i := range dresp.Resources {
		r := &dresp.Resources[i]
		if r.ErrorCode != 0 {
			continue
		}
		asked := dreq.Resources[i].ConfigNames
		for _, source := range sources {
			for _, cfg := range source(dreq, r) {
				if asked != nil && !slices.Contains(asked, cfg.Name) {
					continue
				}
				changed = true
				if j := slices.IndexFunc(r.Configs, func(x kmsg.DescribeConfigsResponseResourceConfig) bool { return x.Name == cfg.Name }); j >= 0 {
					r.Configs[j] = cfg
				} else {
					r.Configs = append(r.Configs, cfg)
				}
			}
		}
	}
	if !changed {
		return raw, nil
	}
	return req.encodeResponse(dresp), nil
}

// serverPropertiesOf is a BROKER resource's server.properties as static
// broker configs.
func (c *cluster) serverPropertiesOf(_ *kmsg.DescribeConfigsRequest, r *kmsg.DescribeConfigsResponseResource) []kmsg.DescribeConfigsResponseResourceConfig {
	if r.ResourceType != kmsg.ConfigResourceTypeBroker {
		return nil
	}
	id, err := strconv.ParseInt(r.ResourceName, 10, 32)
	if err != nil {
		return nil
	}
	b, err := c.broker(int32(id))
	if err != nil {
		return nil
	}
	props := c.serverProperties(b)
	var out []kmsg.DescribeConfigsResponseResourceConfig
	for _, k := range slices.Sorted(maps.Keys(props)) {
		cfg := kmsg.NewDescribeConfigsResponseResourceConfig()
		v := props[k]
		cfg.Name, cfg.Value, cfg.ReadOnly, cfg.Source = k, &v, true, kmsg.ConfigSourceStaticBrokerConfig
		out = append(out, cfg)
	}
	return out
}

// serverProperties is broker b's server.properties as key/values: its
// host's configuration, with the cluster's own min.insync.replicas and
// default replication factor (a configured cluster may run others than a
// provisioned one's).
func (c *cluster) serverProperties(b *broker) map[string]string {
	out := map[string]string{}
	var text string
	if in, err := c.hosts.instance(c.hostOf(b)); err == nil && in.conf != nil {
		text = in.conf.properties(in.privateIP)
	} else {
		c.mu.Lock()
		rack := b.rack
		c.mu.Unlock()
		text = brokerConf{cluster: c.id, broker: b.id, rack: rack, zkConnect: c.zkConnect + c.zkRoot}.properties(proxyHost)
	}
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = v
		}
	}
	out["min.insync.replicas"] = strconv.Itoa(c.minISR)
	out["default.replication.factor"] = strconv.Itoa(defaultRF(c.cfg.Brokers))
	return out
}
