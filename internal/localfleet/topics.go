package localfleet

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Requests whose topic or broker arguments kfake's single node cannot take
// as a client sends them: the proxy validates them like Kafka, keeps in the
// model what kfake cannot store, and forwards what kfake can.

// createTopics validates each topic's replication against the fleet's
// brokers (kfake refuses a replication factor above its one node), records
// the requested replication in the model, forwards the valid topics with
// the default replication factor and no manual assignment, and answers with
// the requested replication factor.
func (s *session) createTopics(req *request) ([]byte, error) {
	c := s.p.c
	kreq, err := req.decode()
	if err != nil {
		return nil, err
	}
	r := kreq.(*kmsg.CreateTopicsRequest)
	var local []kmsg.CreateTopicsResponseTopic
	plans := map[string]*topicPlan{}
	var fwd []kmsg.CreateTopicsRequestTopic
	for _, t := range r.Topics {
		plan, kerrv, msg := c.planCreate(&t)
		if kerrv != nil {
			rt := kmsg.NewCreateTopicsResponseTopic()
			rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, kerrv.Code, &msg
			rt.NumPartitions, rt.ReplicationFactor = -1, -1
			local = append(local, rt)
			continue
		}
		plan.segments = steadySegments(t.Configs)
		plans[t.Topic] = plan
		if len(t.ReplicaAssignment) > 0 {
			t.NumPartitions = int32(len(t.ReplicaAssignment))
			t.ReplicaAssignment = nil
		}
		t.ReplicationFactor = -1
		fwd = append(fwd, t)
	}
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	if len(fwd) > 0 {
		if !r.ValidateOnly {
			c.mu.Lock()
			for name, plan := range plans {
				c.planTopicLocked(name, plan)
			}
			c.mu.Unlock()
		}
		r.Topics = fwd
		req.reencode(r)
		raw, err := s.roundTrip(req, true)
		if err != nil {
			return nil, err
		}
		kresp, err := req.decodeResponse(raw)
		if err != nil {
			return nil, err
		}
		resp = kresp.(*kmsg.CreateTopicsResponse)
		c.mu.Lock()
		created := false
		for i := range resp.Topics {
			rt := &resp.Topics[i]
			plan := plans[rt.Topic]
			if plan == nil {
				continue
			}
			if rt.ErrorCode == 0 {
				rt.ReplicationFactor = int16(plan.rf)
				created = true
			} else if c.plans[rt.Topic] == plan {
				delete(c.plans, rt.Topic)
			}
		}
		c.mu.Unlock()
		if created && !r.ValidateOnly {
			c.checkMaps(c.life)
		}
	}
	resp.Topics = append(resp.Topics, local...)
	return req.encodeResponse(resp), nil
}

// planCreate validates one CreateTopics topic as Kafka does and returns its
// replication, or the error to answer with.
func (c *cluster) planCreate(t *kmsg.CreateTopicsRequestTopic) (*topicPlan, *kerr.Error, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Kafka places replicas over the registered brokers only
	// (assignableLocked); a manual assignment may name any broker of
	// the cluster that has not left it.
	brokers := len(c.assignableLocked())
	known := func(id int32) bool { b := c.brokerByID(id); return b != nil && b.state != StateDecommissioned }
	if len(t.ReplicaAssignment) > 0 {
		if t.NumPartitions != -1 || t.ReplicationFactor != -1 {
			return nil, kerr.InvalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time."
		}
		plan := &topicPlan{assign: map[int32][]int32{}}
		for _, a := range t.ReplicaAssignment {
			if _, dup := plan.assign[a.Partition]; dup || len(a.Replicas) == 0 {
				return nil, kerr.InvalidReplicaAssignment, fmt.Sprintf("invalid replica assignment for partition %d", a.Partition)
			}
			if plan.rf == 0 {
				plan.rf = len(a.Replicas)
			}
			if len(a.Replicas) != plan.rf {
				return nil, kerr.InvalidReplicaAssignment, "All partitions should have the same number of replicas"
			}
			for i, b := range a.Replicas {
				if !known(b) || slices.Contains(a.Replicas[:i], b) {
					return nil, kerr.InvalidReplicaAssignment, fmt.Sprintf("invalid replicas %v for partition %d", a.Replicas, a.Partition)
				}
			}
			plan.assign[a.Partition] = slices.Clone(a.Replicas)
		}
		for i := range int32(len(t.ReplicaAssignment)) {
			if _, ok := plan.assign[i]; !ok {
				return nil, kerr.InvalidReplicaAssignment, "partitions should be a consecutive 0-based integer sequence"
			}
		}
		return plan, nil, ""
	}
	rf := int(t.ReplicationFactor)
	switch {
	case rf == -1:
		rf = min(defaultReplicationFactor, brokers)
	case rf < 1:
		return nil, kerr.InvalidReplicationFactor, "Replication factor must be larger than 0, or -1 to use the default value."
	case rf > brokers:
		return nil, kerr.InvalidReplicationFactor, fmt.Sprintf("Replication factor: %d larger than available brokers: %d.", rf, brokers)
	}
	return &topicPlan{rf: rf}, nil, ""
}

// stripPartitionAssignments records a CreatePartitions manual assignment
// (broker ids) in the model and removes it from the request, which kfake
// would refuse for naming nodes it does not have. New partitions without
// one get the topic's replication factor (newPartitionLocked). An
// assignment naming unknown brokers is left for kfake to refuse.
func (c *cluster) stripPartitionAssignments(req *request) error {
	kreq, err := req.decode()
	if err != nil {
		return err
	}
	r := kreq.(*kmsg.CreatePartitionsRequest)
	changed := false
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range r.Topics {
		rt := &r.Topics[i]
		if len(rt.Assignment) == 0 || r.ValidateOnly {
			continue
		}
		valid := true
		for _, a := range rt.Assignment {
			for j, b := range a.Replicas {
				if c.brokerByID(b) == nil || slices.Contains(a.Replicas[:j], b) {
					valid = false
				}
			}
			valid = valid && len(a.Replicas) > 0
		}
		t := c.topics[rt.Topic]
		if !valid || t == nil {
			continue
		}
		if t.plan == nil {
			t.plan = &topicPlan{}
			for _, p := range t.parts {
				t.plan.rf = len(p.replicas)
				break
			}
		}
		if t.plan.assign == nil {
			t.plan.assign = map[int32][]int32{}
		}
		first := rt.Count - int32(len(rt.Assignment))
		for j, a := range rt.Assignment {
			t.plan.assign[first+int32(j)] = slices.Clone(a.Replicas)
		}
		rt.Assignment = nil
		changed = true
	}
	if changed {
		req.reencode(r)
	}
	return nil
}

// kfakeBrokerResource is the config resource name kfake's node answers to.
var kfakeBrokerResource = strconv.Itoa(int(kfakeNode))

// toKfakeBrokerResources rewrites the broker ids that BROKER and
// BROKER_LOGGER config resources name into kfake's node id, and returns
// the names the client sent, in order, for restoreBrokerResources. Names
// that are no broker of the cluster become an id kfake refuses too.
func toKfakeBrokerResources(req *request, known func(id int32) bool) ([]string, error) {
	kreq, err := req.decode()
	if err != nil {
		return nil, err
	}
	var names []string
	fix := func(typ kmsg.ConfigResourceType, name *string) {
		if typ != kmsg.ConfigResourceTypeBroker && typ != kmsg.ConfigResourceTypeBrokerLogger {
			return
		}
		names = append(names, *name)
		if *name == "" { // the cluster-wide default
			return
		}
		if id, err := strconv.ParseInt(*name, 10, 32); err == nil && known(int32(id)) {
			*name = kfakeBrokerResource
		} else {
			*name = "-1"
		}
	}
	eachConfigResource(kreq, fix)
	if len(names) > 0 {
		req.reencode(kreq)
	}
	return names, nil
}

// restoreBrokerResources puts the broker ids the client asked about back
// into the response, in order (kfake answers resources in request order).
func restoreBrokerResources(req *request, raw []byte, names []string) ([]byte, error) {
	if len(names) == 0 {
		return raw, nil
	}
	resp, err := req.decodeResponse(raw)
	if err != nil {
		return raw, nil
	}
	k := 0
	fix := func(typ kmsg.ConfigResourceType, name *string) {
		if (typ == kmsg.ConfigResourceTypeBroker || typ == kmsg.ConfigResourceTypeBrokerLogger) && k < len(names) {
			*name = names[k]
			k++
		}
	}
	eachConfigResource(resp, fix)
	return req.encodeResponse(resp), nil
}

// eachConfigResource calls fn with the type and a pointer to the name of
// every resource of a config request or response (DescribeConfigs,
// AlterConfigs, IncrementalAlterConfigs); other messages are left alone.
func eachConfigResource(msg any, fn func(kmsg.ConfigResourceType, *string)) {
	switch r := msg.(type) {
	case *kmsg.DescribeConfigsRequest:
		for i := range r.Resources {
			fn(r.Resources[i].ResourceType, &r.Resources[i].ResourceName)
		}
	case *kmsg.AlterConfigsRequest:
		for i := range r.Resources {
			fn(r.Resources[i].ResourceType, &r.Resources[i].ResourceName)
		}
	case *kmsg.IncrementalAlterConfigsRequest:
		for i := range r.Resources {
			fn(r.Resources[i].ResourceType, &r.Resources[i].ResourceName)
		}
	case *kmsg.DescribeConfigsResponse:
		for i := range r.Resources {
			fn(r.Resources[i].ResourceType, &r.Resources[i].ResourceName)
		}
	case *kmsg.AlterConfigsResponse:
		for i := range r.Resources {
			fn(r.Resources[i].ResourceType, &r.Resources[i].ResourceName)
		}
	case *kmsg.IncrementalAlterConfigsResponse:
		for i := range r.Resources {
			fn(r.Resources[i].ResourceType, &r.Resources[i].ResourceName)
		}
	}
}

// deleteTopics forwards DeleteTopics and drops the topics kfake deleted
// from the model at once, rather than at the next full metadata refresh:
// their throttles, reassignments and copies go with them, and a topic
// recreated under the same name starts afresh even before the model sees
// its new topic id.
func (s *session) deleteTopics(req *request) ([]byte, error) {
	c := s.p.c
	raw, err := s.roundTrip(req, true)
	if err != nil {
		return nil, err
	}
	resp, err := req.decodeResponse(raw)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rt := range resp.(*kmsg.DeleteTopicsResponse).Topics {
		if rt.ErrorCode != 0 {
			continue
		}
		var name string
		switch {
		case rt.Topic != nil && *rt.Topic != "":
			name = *rt.Topic
		case rt.TopicID != [16]byte{}:
			name = c.topicNameLocked(rt.TopicID)
		}
		if name != "" {
			delete(c.topics, name)
		}
	}
	return raw, nil
}
