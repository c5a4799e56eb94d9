package kafka

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kfleet/kfleet/internal/fleet"
)

// Admin is an admin connection to one cluster.
type Admin struct {
	cluster string
	client  *kgo.Client
	adm     *kadm.Client
}

// Dial connects to the cluster's bootstrap brokers. Extra options (SASL, TLS:
// see DialSpec) are appended to kfleet's defaults.
func Dial(cluster string, bootstrap []string, opts ...kgo.Opt) (*Admin, error) {
	base := []kgo.Opt{
		kgo.SeedBrokers(bootstrap...),
		kgo.ClientID("kfleet"),
		kgo.DialTimeout(dialTimeout),
		kgo.RetryTimeout(30 * time.Second),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: kafka client: %w", cluster, err)
	}
	return &Admin{cluster: cluster, client: cl, adm: kadm.NewClient(cl)}, nil
}

// Close releases the connections.
func (a *Admin) Close() { a.client.Close() }

// Replication returns the active controller and every partition's replicas,
// ISR and effective min.insync.replicas. It always asks a broker: kadm's
// Metadata may answer from the client's metadata cache, and a gate evaluated
// on a cached view could see a stopped broker still in sync.
func (a *Admin) Replication(ctx context.Context) (controller int32, partitions []fleet.Partition, err error) {
	req := kmsg.NewPtrMetadataRequest() // nil Topics: every topic
	resp, err := req.RequestWith(ctx, a.client)
	if err != nil {
		return -1, nil, fmt.Errorf("cluster %s: metadata: %w", a.cluster, err)
	}
	topics := make([]string, 0, len(resp.Topics))
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return -1, nil, fmt.Errorf("cluster %s: metadata of topic %s: %w", a.cluster, *t.Topic, err)
		}
		topics = append(topics, *t.Topic)
	}
	minISR, err := a.minInsyncReplicas(ctx, topics)
	if err != nil {
		return -1, nil, err
	}
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		for _, p := range t.Partitions {
			partitions = append(partitions, fleet.Partition{
				Topic:     *t.Topic,
				Partition: p.Partition,
				Leader:    p.Leader,
				Replicas:  p.Replicas,
				ISR:       p.ISR,
				MinISR:    minISR[*t.Topic],
			})
		}
	}
	slices.SortFunc(partitions, func(x, y fleet.Partition) int {
		return cmp.Or(cmp.Compare(x.Topic, y.Topic), cmp.Compare(x.Partition, y.Partition))
	})
	return resp.ControllerID, partitions, nil
}

// minInsyncReplicas resolves each topic's effective min.insync.replicas
// (topic override, else broker default, as DescribeConfigs reports it).
func (a *Admin) minInsyncReplicas(ctx context.Context, topics []string) (map[string]int, error) {
	out := make(map[string]int, len(topics))
	if len(topics) == 0 {
		return out, nil
	}
	rcs, err := a.adm.DescribeTopicConfigs(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: describe topic configs: %w", a.cluster, err)
	}
	for _, rc := range rcs {
		out[rc.Name] = fleet.DefaultMinInsyncReplicas
		if rc.Err != nil {
			continue
		}
		for _, c := range rc.Configs {
			if c.Key != "min.insync.replicas" || c.Value == nil {
				continue
			}
			if n, err := strconv.Atoi(*c.Value); err == nil && n > 0 {
				out[rc.Name] = n
			}
		}
	}
	return out, nil
}

// ElectPreferredLeaders runs a preferred-leader election for partitions.
// Partitions already led by their preferred replica are not an error.
func (a *Admin) ElectPreferredLeaders(ctx context.Context, partitions []fleet.Partition) error {
	if len(partitions) == 0 {
		return nil
	}
	set := make(kadm.TopicsSet)
	for _, p := range partitions {
		set.Add(p.Topic, p.Partition)
	}
	res, err := a.adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, set)
	if err != nil {
		return fmt.Errorf("cluster %s: elect preferred leaders: %w", a.cluster, err)
	}
	var errs []error
	for topic, ps := range res {
		for p, r := range ps {
			if r.Err != nil && !errors.Is(r.Err, kerr.ElectionNotNeeded) {
				errs = append(errs, fmt.Errorf("%s/%d: %w", topic, p, r.Err))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster %s: elect preferred leaders: %w", a.cluster, err)
	}
	return nil
}
