package kafka

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/kfleet/kfleet/internal/fleet"
)

// BrokerConfigs describes each broker's configuration (DescribeConfigs,
// BROKER resources), every key with a value, by broker id.
func (a *Admin) BrokerConfigs(ctx context.Context, brokers []int32) (map[int32]map[string]string, error) {
	rcs, err := a.adm.DescribeBrokerConfigs(ctx, brokers...)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: describe broker configs: %w", a.cluster, err)
	}
	out := make(map[int32]map[string]string, len(brokers))
	for _, rc := range rcs {
		var id int32
		if _, err := fmt.Sscan(rc.Name, &id); err != nil {
			continue
		}
		if rc.Err != nil {
			return nil, fmt.Errorf("cluster %s broker %d: describe configs: %w", a.cluster, id, rc.Err)
		}
		m := map[string]string{}
		for _, c := range rc.Configs {
			if c.Value != nil {
				m[c.Key] = *c.Value
			}
		}
		out[id] = m
	}
	return out, nil
}

// Residents lists what lives in the cluster besides Kafka's own: topics
// other than internal ones (__consumer_offsets, __transaction_state, any
// "__" topic), and the SCRAM users tenants authenticate as. A cluster
// with either is not deleted unless an approver forces it.
func (a *Admin) Residents(ctx context.Context) (topics, users []string, err error) {
	td, err := a.adm.ListTopics(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster %s: list topics: %w", a.cluster, err)
	}
	for _, t := range td.Sorted() {
		if !t.IsInternal && !strings.HasPrefix(t.Topic, "__") {
			topics = append(topics, t.Topic)
		}
	}
	scram, err := a.adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster %s: describe SCRAM users: %w", a.cluster, err)
	}
	for u := range scram {
		users = append(users, u)
	}
	slices.Sort(users)
	return topics, users, nil
}

// BrokerConfigs describes the cluster's brokers' configurations; see
// Admin.BrokerConfigs.
func (p *Pool) BrokerConfigs(ctx context.Context, spec fleet.ClusterSpec, brokers []int32) (map[int32]map[string]string, error) {
	a, err := p.Admin(spec)
	if err != nil {
		return nil, err
	}
	return a.BrokerConfigs(ctx, brokers)
}

// Residents lists the cluster's topics and SCRAM users; see
// Admin.Residents.
func (p *Pool) Residents(ctx context.Context, spec fleet.ClusterSpec) (topics, users []string, err error) {
	a, err := p.Admin(spec)
	if err != nil {
		return nil, nil, err
	}
	return a.Residents(ctx)
}
