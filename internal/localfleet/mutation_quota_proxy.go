package localfleet

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The proxy's side of the controller mutation quotas (mutation_quota.go):
// the topics a strict quota refuses are taken out of the request before
// it goes on (to topics.go's handlers and kfake), answered
// THROTTLING_QUOTA_EXCEEDED, and the response carries the throttle time;
// the connection is muted for it as Kafka mutes the channel (KIP-219).

// Versions from which each request is strict (KIP-599).
const (
	strictCreateTopicsVersion     = 6
	strictCreatePartitionsVersion = 3
	strictDeleteTopicsVersion     = 5
)

var throttledMessage = kerr.ThrottlingQuotaExceeded.Description

// createTopicsQuota applies the quota to CreateTopics, then createTopics.
// Kafka counts a topic only once it has passed validation, so topics the
// model refuses or that exist already are not counted (they are answered
// by createTopics/kfake as before); validate-only requests record nothing.
func (s *session) createTopicsQuota(req *request) ([]byte, error) {
	c := s.p.c
	kreq, err := req.decode()
	if err != nil {
		return nil, err
	}
	r := kreq.(*kmsg.CreateTopicsRequest)
	q := c.mutations.forRequest(s.principal(), req.clientID(), req.version >= strictCreateTopicsVersion)
	if q.unbounded || r.ValidateOnly {
		return s.createTopics(req)
	}
	now := time.Now()
	var keep []kmsg.CreateTopicsRequestTopic
	var refused []kmsg.CreateTopicsResponseTopic
	for _, t := range r.Topics {
		if q.record(c.partitionsToCreate(&t), now) {
			keep = append(keep, t)
			continue
		}
		rt := kmsg.NewCreateTopicsResponseTopic()
		rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, kerr.ThrottlingQuotaExceeded.Code, &throttledMessage
		rt.NumPartitions, rt.ReplicationFactor = -1, -1
		refused = append(refused, rt)
	}
	if len(refused) > 0 {
		r.Topics = keep
		req.reencode(r)
	}
	raw, err := s.createTopics(req)
	if err != nil {
		return nil, err
	}
	return s.withMutationThrottle(req, raw, q, len(refused) > 0, func(resp kmsg.Response) {
		cr := resp.(*kmsg.CreateTopicsResponse)
		cr.Topics = append(cr.Topics, refused...)
	})
}

// partitionsToCreate is what a CreateTopics topic would count: 0 when the
// model refuses it or it exists.
func (c *cluster) partitionsToCreate(t *kmsg.CreateTopicsRequestTopic) int {
	if _, kerrv, _ := c.planCreate(t); kerrv != nil {
		return 0
	}
	c.mu.Lock()
	_, exists := c.topics[t.Topic]
	c.mu.Unlock()
	switch {
	case exists:
		return 0
	case len(t.ReplicaAssignment) > 0:
		return len(t.ReplicaAssignment)
	case t.NumPartitions < 0:
		return kfakeDefaultNumPartitions
	}
	return int(t.NumPartitions)
}

// createPartitionsQuota applies the quota to CreatePartitions (the new
// partitions count), then forwards it as the proxy did before.
func (s *session) createPartitionsQuota(req *request) ([]byte, error) {
	c := s.p.c
	kreq, err := req.decode()
	if err != nil {
		return nil, err
	}
	r := kreq.(*kmsg.CreatePartitionsRequest)
	q := c.mutations.forRequest(s.principal(), req.clientID(), req.version >= strictCreatePartitionsVersion)
	var refused []kmsg.CreatePartitionsResponseTopic
	if !q.unbounded && !r.ValidateOnly {
		now := time.Now()
		var keep []kmsg.CreatePartitionsRequestTopic
		for _, t := range r.Topics {
			c.mu.Lock()
			n := 0
			if tm := c.topics[t.Topic]; tm != nil {
				n = int(t.Count) - len(tm.parts)
			}
			c.mu.Unlock()
			if q.record(n, now) {
				keep = append(keep, t)
				continue
			}
			rt := kmsg.NewCreatePartitionsResponseTopic()
			rt.Topic, rt.ErrorCode, rt.ErrorMessage = t.Topic, kerr.ThrottlingQuotaExceeded.Code, &throttledMessage
			refused = append(refused, rt)
		}
		if len(refused) > 0 {
			r.Topics = keep
			req.reencode(r)
		}
	}
	if err := c.stripPartitionAssignments(req); err != nil {
		return nil, err
	}
	raw, err := s.roundTrip(req, true)
	if err != nil {
		return nil, err
	}
	if raw, err = c.rewriteResponse(req, raw); err != nil {
		return nil, err
	}
	if !r.ValidateOnly && len(r.Topics) > 0 {
		c.checkMaps(c.life) // the new partitions' replicas bring segments
	}
	return s.withMutationThrottle(req, raw, q, len(refused) > 0, func(resp kmsg.Response) {
		cr := resp.(*kmsg.CreatePartitionsResponse)
		cr.Topics = append(cr.Topics, refused...)
	})
}

// deleteTopicsQuota applies the quota to DeleteTopics (the topic's
// partitions count; an unknown topic counts nothing), then deleteTopics.
func (s *session) deleteTopicsQuota(req *request) ([]byte, error) {
	c := s.p.c
	kreq, err := req.decode()
	if err != nil {
		return nil, err
	}
	r := kreq.(*kmsg.DeleteTopicsRequest)
	q := c.mutations.forRequest(s.principal(), req.clientID(), req.version >= strictDeleteTopicsVersion)
	if q.unbounded {
		return s.deleteTopics(req)
	}
	now := time.Now()
	partitions := func(name string, id [16]byte) int {
		c.mu.Lock()
		defer c.mu.Unlock()
		if name == "" && id != [16]byte{} {
			name = c.topicNameLocked(id)
		}
		if tm := c.topics[name]; tm != nil {
			return len(tm.parts)
		}
		return 0
	}
	var refused []kmsg.DeleteTopicsResponseTopic
	refuse := func(name *string, id [16]byte) {
		rt := kmsg.NewDeleteTopicsResponseTopic()
		rt.Topic, rt.TopicID, rt.ErrorCode, rt.ErrorMessage = name, id, kerr.ThrottlingQuotaExceeded.Code, &throttledMessage
		refused = append(refused, rt)
	}
	// v0-5 name topics in TopicNames, v6+ in Topics (name or id).
	var keepNames []string
	for _, name := range r.TopicNames {
		if q.record(partitions(name, [16]byte{}), now) {
			keepNames = append(keepNames, name)
		} else {
			refuse(&name, [16]byte{})
		}
	}
	var keep []kmsg.DeleteTopicsRequestTopic
	for _, t := range r.Topics {
		name := ""
		if t.Topic != nil {
			name = *t.Topic
		}
		if q.record(partitions(name, t.TopicID), now) {
			keep = append(keep, t)
		} else {
			refuse(t.Topic, t.TopicID)
		}
	}
	if len(refused) > 0 {
		r.TopicNames, r.Topics = keepNames, keep
		req.reencode(r)
	}
	raw, err := s.deleteTopics(req)
	if err != nil {
		return nil, err
	}
	return s.withMutationThrottle(req, raw, q, len(refused) > 0, func(resp kmsg.Response) {
		dr := resp.(*kmsg.DeleteTopicsResponse)
		dr.Topics = append(dr.Topics, refused...)
	})
}

// withMutationThrottle adds the refused topics (add, when refusedAny) and the quota's
// throttle time to a response and mutes the connection for it. Kafka
// sends the larger of the mutation and request throttles; kfake throttles
// nothing, so a larger one already there wins.
func (s *session) withMutationThrottle(req *request, raw []byte, q *mutationQuota, refusedAny bool, add func(kmsg.Response)) ([]byte, error) {
	now := time.Now()
	ms := q.throttleTime(now)
	if ms == 0 && !refusedAny {
		return raw, nil
	}
	resp, err := req.decodeResponse(raw)
	if err != nil {
		return nil, err
	}
	add(resp)
	switch r := resp.(type) {
	case *kmsg.CreateTopicsResponse:
		r.ThrottleMillis = max(r.ThrottleMillis, ms)
	case *kmsg.CreatePartitionsResponse:
		r.ThrottleMillis = max(r.ThrottleMillis, ms)
	case *kmsg.DeleteTopicsResponse:
		r.ThrottleMillis = max(r.ThrottleMillis, ms)
	}
	s.mute(now, ms)
	return req.encodeResponse(resp), nil
}
