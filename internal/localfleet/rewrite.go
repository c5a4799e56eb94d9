package localfleet

import (
	"hash/fnv"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Responses the proxy rewrites from the model. kfake's answers carry its
// one node (0), its address and one replica per partition; clients must see
// the fleet's broker ids, proxy addresses and the model's replication state.

// rewriteResponse returns the response frame for req, rewritten when it
// describes cluster state.
func (c *cluster) rewriteResponse(req *request, raw []byte) ([]byte, error) {
	return c.rewriteResponseFor(req, raw, -1)
}

// rewriteResponseFor is rewriteResponse for a response broker sends (-1:
// unknown), which a KRaft broker's ApiVersions features depend on.
func (c *cluster) rewriteResponseFor(req *request, raw []byte, broker int32) ([]byte, error) {
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
		if c.kraftAnswers() && r.ErrorCode == 0 {
			kreq, err := req.decode()
			if err != nil {
				return nil, err
			}
			c.describeClusterKRaft(kreq.(*kmsg.DescribeClusterRequest), r)
			break
		}
		c.rewriteDescribeCluster(r)
	case *kmsg.FindCoordinatorResponse:
		c.rewriteFindCoordinator(req, r)
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
		// Kafka advertises SaslHandshake 0..1; kfake 1..1. librdkafka
		// (kcat) takes a broker without v0 for one that cannot do SASL
		// at all, though it then sends v1 with SaslAuthenticate, which
		// kfake serves.
		for i := range r.ApiKeys {
			if kmsg.Key(r.ApiKeys[i].ApiKey) == kmsg.SASLHandshake {
				r.ApiKeys[i].MinVersion = 0
			}
		}
		if c.kraftAnswers() {
			c.rewriteApiVersionsKRaft(r, broker)
		}
	}
	return req.encodeResponse(resp), nil
}

func (c *cluster) rewriteMetadata(req *request, r *kmsg.MetadataResponse) {
	all := false
	if kreq, err := req.decode(); err == nil && !c.cfg.ACLs {
		// With ACLs, "all topics" means all the client may describe;
		// only the fleet's own (superuser) refresh prunes the model.
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
				// Not modelled (an error answer): no kfake node leaks.
				rp.Leader, rp.Replicas, rp.ISR, rp.OfflineReplicas = -1, []int32{}, []int32{}, []int32{}
				continue
			}
			// kfake's leader epoch stays: clients send it back in fetches
			// and kfake's one node checks it.
			rp.Leader = p.leader
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
// coordinator of a group or transactional id: the key hashed over the
// running brokers, so coordinators spread and move off stopped brokers.
// Whichever broker the client reaches, kfake's one node coordinates.
func (c *cluster) coordinatorBrokerLocked(key string) int32 {
	var running []int32
	for _, b := range c.brokers {
		if b.state == StateRunning {
			running = append(running, b.id)
		}
	}
	if len(running) == 0 {
		return -1
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return running[h.Sum32()%uint32(len(running))]
}

func (c *cluster) rewriteFindCoordinator(req *request, r *kmsg.FindCoordinatorResponse) {
	key := ""
	if kreq, err := req.decode(); err == nil {
		key = kreq.(*kmsg.FindCoordinatorRequest).CoordinatorKey
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	fix := func(key string, node *int32, host *string, port *int32, code *int16) {
		if *code != 0 {
			return
		}
		id := c.coordinatorBrokerLocked(key)
		if id < 0 {
			*node, *host, *port, *code = -1, "", -1, kerr.CoordinatorNotAvailable.Code
			return
		}
		*node, *host, *port = id, proxyHost, int32(c.brokerByID(id).proxy.port())
	}
	if r.Version <= 3 {
		fix(key, &r.NodeID, &r.Host, &r.Port, &r.ErrorCode)
		return
	}
	for i := range r.Coordinators {
		co := &r.Coordinators[i]
		fix(co.Key, &co.NodeID, &co.Host, &co.Port, &co.ErrorCode)
	}
}

// leaderHintLocked is the leader a KIP-951 hint names for a partition:
// the model's, or -1 (no hint) when the model has none.
func (c *cluster) leaderHintLocked(topic string, id [16]byte, part int32, need map[int32]bool) int32 {
	if topic == "" {
		topic = c.topicNameLocked(id)
	}
	p := c.partitionLocked(topic, part)
	if p == nil || p.leader < 0 || !c.runningLocked(p.leader) {
		return -1
	}
	need[p.leader] = true
	return p.leader
}

// rewriteProduce replaces the leader hints (KIP-951) kfake gives, which name
// its one node, with the model's leaders and their proxies.
func (c *cluster) rewriteProduce(r *kmsg.ProduceResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	need := map[int32]bool{}
	for i := range r.Topics {
		rt := &r.Topics[i]
		for j := range rt.Partitions {
			cl := &rt.Partitions[j].CurrentLeader
			if cl.LeaderID >= 0 {
				cl.LeaderID = c.leaderHintLocked(rt.Topic, rt.TopicID, rt.Partitions[j].Partition, need)
			}
		}
	}
	r.Brokers = r.Brokers[:0]
	for _, id := range sortedKeys(need) {
		b := kmsg.NewProduceResponseBroker()
		b.NodeID, b.Host, b.Port = id, proxyHost, int32(c.brokerByID(id).proxy.port())
		r.Brokers = append(r.Brokers, b)
	}
}

// rewriteFetch does for fetches what rewriteProduce does for produces.
func (c *cluster) rewriteFetch(r *kmsg.FetchResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	need := map[int32]bool{}
	for i := range r.Topics {
		rt := &r.Topics[i]
		for j := range rt.Partitions {
			p := &rt.Partitions[j]
			if p.CurrentLeader.LeaderID >= 0 {
				p.CurrentLeader.LeaderID = c.leaderHintLocked(rt.Topic, rt.TopicID, p.Partition, need)
			}
			p.PreferredReadReplica = -1
		}
	}
	r.Brokers = r.Brokers[:0]
	for _, id := range sortedKeys(need) {
		b := kmsg.NewFetchResponseBroker()
		b.NodeID, b.Host, b.Port = id, proxyHost, int32(c.brokerByID(id).proxy.port())
		r.Brokers = append(r.Brokers, b)
	}
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
