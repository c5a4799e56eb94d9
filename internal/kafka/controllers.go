package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kfleet/kfleet/internal/fleet"
)

// Reads sent to a KRaft cluster's controllers themselves, through the
// spec's QuorumBootstrap, not through a broker: a provisioning waits for
// its quorum before any broker exists, and learns its brokers' addresses
// from the controllers (DescribeCluster). A controller serves only the
// controller-facing APIs (no Metadata), so each request goes to one
// controller's connection directly (the seed brokers), never through the
// client's routing.

// NodeEndpoint is a broker as the controllers list it.
type NodeEndpoint struct {
	ID      int32  `json:"id"`
	Address string `json:"address"`
	Rack    string `json:"rack,omitempty"`
	Fenced  bool   `json:"fenced,omitempty"`
}

// controllerAdmin is the pooled client of the spec's controllers, kept
// apart from the brokers' (the pool keeps one client per key, and the two
// would redial each other's away).
func (p *Pool) controllerAdmin(spec fleet.ClusterSpec) (*Admin, error) {
	if spec.KRaft == nil || len(spec.KRaft.QuorumBootstrap) == 0 {
		return nil, fmt.Errorf("cluster %s: no controller addresses (kraft.quorumBootstrap) to ask", spec.ID)
	}
	s := spec
	s.Bootstrap = spec.KRaft.QuorumBootstrap
	key := strings.Join(s.Bootstrap, ",") + securityKey(spec.Security)
	return p.pool.Get(spec.ID+"#controllers", key, func() (*Admin, error) { return DialSpec(s, p.secrets) })
}

// QuorumFromControllers asks each controller in turn for the metadata
// quorum until the leader answers (a follower answers
// NOT_LEADER_OR_FOLLOWER, a stopped one not at all).
func (p *Pool) QuorumFromControllers(ctx context.Context, spec fleet.ClusterSpec) (fleet.Quorum, error) {
	a, err := p.controllerAdmin(spec)
	if err != nil {
		return fleet.Quorum{}, err
	}
	var errs []error
	for _, b := range a.client.SeedBrokers() {
		resp, err := describeQuorumRequest().RequestWith(ctx, b)
		if err == nil {
			var q fleet.Quorum
			if q, err = quorumOf(a.cluster, resp); err == nil {
				return q, nil
			}
		}
		if ctx.Err() != nil {
			return fleet.Quorum{}, fmt.Errorf("cluster %s: describe quorum through the controllers: %w", spec.ID, ctx.Err())
		}
		errs = append(errs, err)
	}
	return fleet.Quorum{}, fmt.Errorf("cluster %s: no controller of %v answered for the quorum's leader: %w", spec.ID, spec.KRaft.QuorumBootstrap, errors.Join(errs...))
}

// BrokersFromControllers lists the brokers registered with the quorum,
// fenced ones included, with their addresses (DescribeCluster v2 sent to
// the first controller that answers).
func (p *Pool) BrokersFromControllers(ctx context.Context, spec fleet.ClusterSpec) ([]NodeEndpoint, error) {
	a, err := p.controllerAdmin(spec)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, b := range a.client.SeedBrokers() {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.IncludeFencedBrokers = true
		resp, err := req.RequestWith(ctx, b)
		if err == nil {
			err = errorWithMessage(resp.ErrorCode, resp.ErrorMessage)
		}
		if err == nil && resp.Version < 2 {
			err = fmt.Errorf("answered v%d, fencing needs v2", resp.Version)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("cluster %s: describe cluster through the controllers: %w", spec.ID, ctx.Err())
			}
			errs = append(errs, err)
			continue
		}
		out := make([]NodeEndpoint, 0, len(resp.Brokers))
		for _, br := range resp.Brokers {
			e := NodeEndpoint{ID: br.NodeID, Address: net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port))), Fenced: br.IsFenced}
			if br.Rack != nil {
				e.Rack = *br.Rack
			}
			out = append(out, e)
		}
		slices.SortFunc(out, func(x, y NodeEndpoint) int { return int(x.ID - y.ID) })
		return out, nil
	}
	return nil, fmt.Errorf("cluster %s: no controller of %v listed the brokers: %w", spec.ID, spec.KRaft.QuorumBootstrap, errors.Join(errs...))
}

// describeQuorumRequest asks for the metadata log's partition.
func describeQuorumRequest() *kmsg.DescribeQuorumRequest {
	req := kmsg.NewPtrDescribeQuorumRequest()
	t := kmsg.NewDescribeQuorumRequestTopic()
	t.Topic = metadataTopic
	p := kmsg.NewDescribeQuorumRequestTopicPartition()
	p.Partition = 0
	t.Partitions = append(t.Partitions, p)
	req.Topics = append(req.Topics, t)
	return req
}

// quorumOf reads a DescribeQuorum answer for the metadata log; a
// follower's NOT_LEADER_OR_FOLLOWER is an error (kerr's).
func quorumOf(cluster string, resp *kmsg.DescribeQuorumResponse) (fleet.Quorum, error) {
	if err := errorWithMessage(resp.ErrorCode, resp.ErrorMessage); err != nil {
		return fleet.Quorum{}, fmt.Errorf("cluster %s: describe quorum: %w", cluster, err)
	}
	for _, t := range resp.Topics {
		if t.Topic != metadataTopic {
			continue
		}
		for _, p := range t.Partitions {
			if p.Partition != 0 {
				continue
			}
			if err := errorWithMessage(p.ErrorCode, p.ErrorMessage); err != nil {
				return fleet.Quorum{}, fmt.Errorf("cluster %s: describe quorum of %s-0: %w", cluster, metadataTopic, err)
			}
			return fleet.Quorum{
				Leader:        p.LeaderID,
				Epoch:         p.LeaderEpoch,
				HighWatermark: p.HighWatermark,
				Voters:        quorumReplicas(p.CurrentVoters),
				Observers:     quorumReplicas(p.Observers),
			}, nil
		}
	}
	return fleet.Quorum{}, fmt.Errorf("cluster %s: describe quorum: no answer for %s-0", cluster, metadataTopic)
}

// ControllersFromControllers returns the cluster's Kafka cluster id and
// its running controllers with their addresses (DescribeCluster v1+ with
// the controllers' endpoint type, KIP-919, sent to the first controller
// that answers).
func (p *Pool) ControllersFromControllers(ctx context.Context, spec fleet.ClusterSpec) (string, []NodeEndpoint, error) {
	a, err := p.controllerAdmin(spec)
	if err != nil {
		return "", nil, err
	}
	var errs []error
	for _, b := range a.client.SeedBrokers() {
		req := kmsg.NewPtrDescribeClusterRequest()
		req.EndpointType = 2 // controllers
		resp, err := req.RequestWith(ctx, b)
		if err == nil {
			err = errorWithMessage(resp.ErrorCode, resp.ErrorMessage)
		}
		if err != nil {
			if ctx.Err() != nil {
				return "", nil, fmt.Errorf("cluster %s: describe the controllers: %w", spec.ID, ctx.Err())
			}
			errs = append(errs, err)
			continue
		}
		out := make([]NodeEndpoint, 0, len(resp.Brokers))
		for _, c := range resp.Brokers {
			out = append(out, NodeEndpoint{ID: c.NodeID, Address: net.JoinHostPort(c.Host, strconv.Itoa(int(c.Port)))})
		}
		slices.SortFunc(out, func(x, y NodeEndpoint) int { return int(x.ID - y.ID) })
		return resp.ClusterID, out, nil
	}
	return "", nil, fmt.Errorf("cluster %s: no controller of %v described the controllers: %w", spec.ID, spec.KRaft.QuorumBootstrap, errors.Join(errs...))
}
