package localfleet

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Responses the proxy rewrites from the model. kfake's answers carry its
// own node ids (0..N-1), addresses and ISR = replicas; clients must see the
// fleet's broker ids, proxy addresses and the model's replication state.

// rewriteResponse returns the response frame for req, rewritten when it
// describes cluster state.
func (c *cluster) rewriteResponse(req *request, raw []byte) ([]byte, error) {
	switch kmsg.Key(req.key) {
	case kmsg.Metadata, kmsg.DescribeCluster, kmsg.FindCoordinator, kmsg.Produce, kmsg.Fetch, kmsg.ApiVersions:
	default:
		return raw, nil
	}
	resp, err := req.decodeResponse(raw)
	if err != nil {
		if kmsg.Key(req.key) == kmsg.ApiVersions {
			// An unsupported ApiVersions version is answered in v0
			// form; the client retries with a version both know.
			return raw, nil
		}
		// Never let kfake's view of the cluster through.
		return nil, err
	}
	switch r := resp.(type) {
	case *kmsg.MetadataResponse:
		c.rewriteMetadata(req, r)
	case *kmsg.DescribeClusterResponse:
		c.rewriteDescribeCluster(r)
	case *kmsg.FindCoordinatorResponse:
		c.rewriteFindCoordinator(r)
	case *kmsg.ProduceResponse:
		c.rewriteProduce(r)
	case *kmsg.FetchResponse:
		c.rewriteFetch(r)
	case *kmsg.ApiVersionsResponse:
		// DescribeTopicPartitions would describe partitions from kfake's
		// view; without it, clients fall back to Metadata.
		r.ApiKeys = slices.DeleteFunc(r.ApiKeys, func(k kmsg.ApiVersionsResponseApiKey) bool {
			return kmsg.Key(k.ApiKey) == kmsg.DescribeTopicPartitions
		})
	}
	return req.encodeResponse(resp), nil
}

func (c *cluster) rewriteMetadata(req *request, r *kmsg.MetadataResponse) {
	all := false
	if kreq, err := req.decode(); err == nil {
		topics := kreq.(*kmsg.MetadataRequest).Topics
		all = topics == nil || (req.version == 0 && len(topics) == 0)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.learnLocked(r, all)
	}
	r.Brokers = r.Brokers[:0]
	for _, b := range c.brokers {
		if b.state == StateRunning {
			mb := kmsg.NewMetadataResponseBroker()
			mb.NodeID, mb.Host, mb.Port, mb.Rack = b.id, proxyHost, int32(b.proxy.port()), b.rackPtr()
			r.Brokers = append(r.Brokers, mb)
		}
	}
	r.ControllerID = c.controller
	for i := range r.Topics {
		rt := &r.Topics[i]
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			var p *partition
			if rt.Topic != nil {
				p = c.partitionLocked(*rt.Topic, rp.Partition)
			}
			if p == nil {
				rp.Leader = brokerOfNode(rp.Leader)
				rp.Replicas = mapNodes(rp.Replicas)
				rp.ISR = mapNodes(rp.ISR)
				rp.OfflineReplicas = mapNodes(rp.OfflineReplicas)
				continue
			}
			rp.Leader, rp.LeaderEpoch = p.leader, p.epoch
			rp.Replicas = slices.Clone(p.replicas)
			rp.ISR = append([]int32{}, p.isr...)
			rp.OfflineReplicas = c.offlineLocked(p)
			switch {
			case p.leader < 0:
				rp.ErrorCode = kerr.LeaderNotAvailable.Code
			case rp.ErrorCode == kerr.LeaderNotAvailable.Code:
				rp.ErrorCode = 0
			}
		}
	}
}

func mapNodes(nodes []int32) []int32 {
	out := make([]int32, len(nodes))
	for i, n := range nodes {
		out[i] = brokerOfNode(n)
	}
	return out
}

func (c *cluster) rewriteDescribeCluster(r *kmsg.DescribeClusterResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r.Brokers = r.Brokers[:0]
	for _, b := range c.brokers {
		if b.state == StateRunning {
			db := kmsg.NewDescribeClusterResponseBroker()
			db.NodeID, db.Host, db.Port, db.Rack = b.id, proxyHost, int32(b.proxy.port()), b.rackPtr()
			r.Brokers = append(r.Brokers, db)
		}
	}
	r.ControllerID = c.controller
}

// coordinatorBrokerLocked is the broker the model advertises as the
// coordinator kfake assigned to node: that broker if it runs, else the next
// running one. Requests reaching it are routed back to kfake's node.
func (c *cluster) coordinatorBrokerLocked(node int32) int32 {
	n := len(c.brokers)
	start := int(brokerOfNode(node)) - 1
	if start < 0 || start >= n {
		return -1
	}
	for i := range n {
		if b := c.brokers[(start+i)%n]; b.state == StateRunning {
			return b.id
		}
	}
	return -1
}

func (c *cluster) rewriteFindCoordinator(r *kmsg.FindCoordinatorResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fix := func(node *int32, host *string, port *int32, code *int16) {
		if *code != 0 {
			return
		}
		id := c.coordinatorBrokerLocked(*node)
		if id < 0 {
			*node, *host, *port, *code = -1, "", -1, kerr.CoordinatorNotAvailable.Code
			return
		}
		*node, *host, *port = id, proxyHost, int32(c.brokerByID(id).proxy.port())
	}
	if r.Version <= 3 {
		fix(&r.NodeID, &r.Host, &r.Port, &r.ErrorCode)
		return
	}
	for i := range r.Coordinators {
		co := &r.Coordinators[i]
		fix(&co.NodeID, &co.Host, &co.Port, &co.ErrorCode)
	}
}

// rewriteProduce maps the leader hints (KIP-951) a NOT_LEADER error
// carries to broker ids and proxy addresses.
func (c *cluster) rewriteProduce(r *kmsg.ProduceResponse) {
	for i := range r.Topics {
		for j := range r.Topics[i].Partitions {
			cl := &r.Topics[i].Partitions[j].CurrentLeader
			cl.LeaderID = brokerOfNode(cl.LeaderID)
		}
	}
	r.Brokers = rewriteHintBrokers(c, r.Brokers, func(b *kmsg.ProduceResponseBroker) (*int32, *string, *int32, **string) {
		return &b.NodeID, &b.Host, &b.Port, &b.Rack
	})
}

// rewriteFetch does for fetches what rewriteProduce does for produces.
func (c *cluster) rewriteFetch(r *kmsg.FetchResponse) {
	for i := range r.Topics {
		for j := range r.Topics[i].Partitions {
			p := &r.Topics[i].Partitions[j]
			p.CurrentLeader.LeaderID = brokerOfNode(p.CurrentLeader.LeaderID)
			p.PreferredReadReplica = brokerOfNode(p.PreferredReadReplica)
		}
	}
	r.Brokers = rewriteHintBrokers(c, r.Brokers, func(b *kmsg.FetchResponseBroker) (*int32, *string, *int32, **string) {
		return &b.NodeID, &b.Host, &b.Port, &b.Rack
	})
}

// rewriteHintBrokers keeps the running brokers of a leader-hint broker list
// and points them at their proxies. fields exposes one entry's node id,
// host, port and rack, which Produce and Fetch responses name alike.
func rewriteHintBrokers[B any](c *cluster, brokers []B, fields func(*B) (*int32, *string, *int32, **string)) []B {
	c.mu.Lock()
	defer c.mu.Unlock()
	brokers = slices.DeleteFunc(brokers, func(b B) bool {
		node, _, _, _ := fields(&b)
		return !c.runningLocked(brokerOfNode(*node))
	})
	for i := range brokers {
		node, host, port, rack := fields(&brokers[i])
		*node = brokerOfNode(*node)
		*host, *port, *rack = proxyHost, int32(c.brokerByID(*node).proxy.port()), nil
	}
	return brokers
}

// answerElectLeaders answers ElectLeaders from the model; kfake would
// report success without electing anyone.
func (c *cluster) answerElectLeaders(req *request) ([]byte, error) {
	kreq, err := req.decode()
	if err != nil {
		return nil, err
	}
	r := kreq.(*kmsg.ElectLeadersRequest)
	resp := r.ResponseKind().(*kmsg.ElectLeadersResponse)
	all := r.Topics == nil

	if all || c.missingAny(r.Topics) {
		// Elections act on partitions no client may have asked about.
		if err := c.refresh(c.life); err != nil {
			c.log.Warn().Err(err).Msg("elect leaders: refresh from kfake")
		}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	elect := func(p *partition) int16 {
		if r.Version >= 1 && r.ElectionType == 1 {
			return c.electUncleanLocked(p)
		}
		return c.electPreferredLocked(p)
	}
	add := func(topic string, id int32, code int16) {
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != topic {
			rt := kmsg.NewElectLeadersResponseTopic()
			rt.Topic = topic
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewElectLeadersResponseTopicPartition()
		rp.Partition, rp.ErrorCode = id, code
		if code != 0 {
			msg := kerr.ErrorForCode(code).Error()
			rp.ErrorMessage = &msg
		}
		rt := &resp.Topics[len(resp.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	if all {
		// As Kafka does for "all partitions", report only partitions an
		// election was attempted for.
		for _, p := range c.partitionsLocked() {
			if code := elect(p); code != kerr.ElectionNotNeeded.Code {
				add(p.topic, p.id, code)
			}
		}
	} else {
		for _, t := range r.Topics {
			for _, id := range t.Partitions {
				if p := c.partitionLocked(t.Topic, id); p != nil {
					add(t.Topic, id, elect(p))
				} else {
					add(t.Topic, id, kerr.UnknownTopicOrPartition.Code)
				}
			}
		}
	}
	return req.encodeResponse(resp), nil
}

func (c *cluster) missingAny(topics []kmsg.ElectLeadersRequestTopic) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range topics {
		for _, id := range t.Partitions {
			if c.partitionLocked(t.Topic, id) == nil {
				return true
			}
		}
	}
	return false
}
