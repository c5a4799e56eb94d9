package localfleet

import (
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// reassignment is a partition's move in progress, as Kafka runs it: the
// replica set is the union of the target and the original (RS = TRS + ORS)
// until every target replica is in sync; then the replicas not in the
// target are dropped and, if the leader was one of them, leadership moves.
type reassignment struct {
	original []int32
	target   []int32
}

func (r *reassignment) adding() []int32   { return without(r.target, r.original) }
func (r *reassignment) removing() []int32 { return without(r.original, r.target) }

// without returns the ids of a that are not in b, in a's order.
func without(a, b []int32) []int32 {
	out := []int32{}
	for _, id := range a {
		if !slices.Contains(b, id) {
			out = append(out, id)
		}
	}
	return out
}

// answerAlterPartitionAssignments starts, changes or cancels (nil replicas)
// reassignments in the model. kfake answers success and moves nothing.
func (c *cluster) answerAlterPartitionAssignments(req *request) ([]byte, error) {
	kreq, err := req.decode()
	if err != nil {
		return nil, err
	}
	r := kreq.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := r.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	if err := c.refresh(c.life); err != nil {
		c.log.Warn().Err(err).Msg("reassign: refresh from kfake")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range r.Topics {
		rt := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		rt.Topic = t.Topic
		for _, tp := range t.Partitions {
			rp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			rp.Partition = tp.Partition
			if err := c.reassignLocked(t.Topic, tp.Partition, tp.Replicas); err != nil {
				rp.ErrorCode = err.(*kerr.Error).Code
				msg := fmt.Sprintf("%s: partition %s-%d, replicas %v", err, t.Topic, tp.Partition, tp.Replicas)
				rp.ErrorMessage = &msg
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return req.encodeResponse(resp), nil
}

// reassignLocked applies one partition's request and returns Kafka's error.
func (c *cluster) reassignLocked(topic string, id int32, target []int32) error {
	p := c.partitionLocked(topic, id)
	if p == nil {
		return kerr.UnknownTopicOrPartition
	}
	if target == nil {
		if p.reassign == nil {
			return kerr.NoReassignmentInProgress
		}
		c.finishReassignmentLocked(p, p.reassign.original)
		c.log.Info().Str("partition", p.String()).Ints32("replicas", p.replicas).Msg("reassignment cancelled")
		return nil
	}
	if len(target) == 0 {
		return kerr.InvalidReplicaAssignment
	}
	for i, b := range target {
		if c.brokerByID(b) == nil || slices.Contains(target[:i], b) {
			return kerr.InvalidReplicaAssignment
		}
	}
	original := p.replicas
	if p.reassign != nil {
		original = p.reassign.original
	}
	if slices.Equal(original, target) && p.reassign == nil {
		return nil
	}
	ra := &reassignment{original: slices.Clone(original), target: slices.Clone(target)}
	p.reassign = ra
	p.replicas = append(slices.Clone(ra.target), ra.removing()...)
	c.log.Info().Str("partition", p.String()).Ints32("target", ra.target).Ints32("adding", ra.adding()).Msg("reassignment started")

	// Adding replicas copy the partition's log, then join the ISR.
	delay := c.cfg.Timing.CatchUp
	if rate := c.cfg.Timing.CatchUpBytesPerSec; rate > 0 {
		delay += time.Duration(float64(p.bytes) / float64(rate) * float64(time.Second))
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if sleep(c.life, delay) != nil {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed || p.reassign != ra {
			return // cancelled or superseded
		}
		for _, b := range ra.adding() {
			if c.runningLocked(b) && !p.inSync(b) {
				p.isr = c.inReplicaOrder(p, append(slices.Clone(p.isr), b))
			}
		}
		c.maybeCompleteReassignmentLocked(p)
	}()
	c.maybeCompleteReassignmentLocked(p)
	return nil
}

// maybeCompleteReassignmentLocked ends p's reassignment once every target
// replica is in sync.
func (c *cluster) maybeCompleteReassignmentLocked(p *partition) {
	if p.reassign == nil {
		return
	}
	for _, b := range p.reassign.target {
		if !p.inSync(b) {
			return
		}
	}
	c.finishReassignmentLocked(p, p.reassign.target)
	c.log.Info().Str("partition", p.String()).Ints32("replicas", p.replicas).Msg("reassignment completed")
}

// finishReassignmentLocked makes replicas p's replica set, keeps the ISR
// members among them, and moves leadership when the leader left.
func (c *cluster) finishReassignmentLocked(p *partition, replicas []int32) {
	p.reassign = nil
	p.replicas = slices.Clone(replicas)
	p.isr = slices.DeleteFunc(slices.Clone(p.isr), func(b int32) bool { return !slices.Contains(replicas, b) })
	p.isr = c.inReplicaOrder(p, p.isr)
	if !slices.Contains(p.isr, p.leader) {
		c.setLeaderLocked(p, firstInSync(p, -1))
	}
}

// inReplicaOrder sorts ids by their position in p's replica list.
func (c *cluster) inReplicaOrder(p *partition, ids []int32) []int32 {
	slices.SortFunc(ids, func(a, b int32) int {
		return slices.Index(p.replicas, a) - slices.Index(p.replicas, b)
	})
	return ids
}

// answerListPartitionReassignments reports reassignments in progress from
// the model: the union replica set with what is being added and removed.
func (c *cluster) answerListPartitionReassignments(req *request) ([]byte, error) {
	kreq, err := req.decode()
	if err != nil {
		return nil, err
	}
	r := kreq.(*kmsg.ListPartitionReassignmentsRequest)
	resp := r.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	c.mu.Lock()
	defer c.mu.Unlock()
	wanted := func(p *partition) bool {
		if r.Topics == nil {
			return true
		}
		for _, t := range r.Topics {
			if t.Topic == p.topic && slices.Contains(t.Partitions, p.id) {
				return true
			}
		}
		return false
	}
	for _, p := range c.partitionsLocked() {
		if p.reassign == nil || !wanted(p) {
			continue
		}
		if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != p.topic {
			rt := kmsg.NewListPartitionReassignmentsResponseTopic()
			rt.Topic = p.topic
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		rp.Partition = p.id
		rp.Replicas = slices.Clone(p.replicas)
		rp.AddingReplicas = p.reassign.adding()
		rp.RemovingReplicas = p.reassign.removing()
		rt := &resp.Topics[len(resp.Topics)-1]
		rt.Partitions = append(rt.Partitions, rp)
	}
	return req.encodeResponse(resp), nil
}
