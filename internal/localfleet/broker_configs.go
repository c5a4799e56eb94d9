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

// withServerProperties rewrites the BROKER resources of a DescribeConfigs
// response (names already the client's broker ids) with each broker's
// server.properties, as static broker configs, honouring the config names
// each resource asked for.
func (c *cluster) withServerProperties(req *request, raw []byte) ([]byte, error) {
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
	for i := range dresp.Resources {
		r := &dresp.Resources[i]
		if r.ResourceType != kmsg.ConfigResourceTypeBroker || r.ErrorCode != 0 {
			continue
		}
		id, err := strconv.ParseInt(r.ResourceName, 10, 32)
		if err != nil {
			continue
		}
		b, err := c.broker(int32(id))
		if err != nil {
			continue
		}
		props := c.serverProperties(b)
		asked := dreq.Resources[i].ConfigNames
		have := map[string]int{}
		for j, cfg := range r.Configs {
			have[cfg.Name] = j
		}
		for _, k := range slices.Sorted(maps.Keys(props)) {
			if asked != nil && !slices.Contains(asked, k) {
				continue
			}
			cfg := kmsg.NewDescribeConfigsResponseResourceConfig()
			v := props[k]
			cfg.Name, cfg.Value, cfg.ReadOnly, cfg.Source = k, &v, true, kmsg.ConfigSourceStaticBrokerConfig
			if j, ok := have[k]; ok {
				r.Configs[j] = cfg
			} else {
				r.Configs = append(r.Configs, cfg)
			}
		}
	}
	return req.encodeResponse(dresp), nil
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
