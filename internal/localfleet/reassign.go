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
// Adding replicas join the ISR once they have copied the log
// (reassign_copy.go).
type reassignment struct {
	original []int32
	target   []int32
	started  time.Time
	who      string // who asked, for the audit
	// copies are the adding replicas still copying, by broker; a replica
	// leaves it when it joins the ISR.
	copies map[int32]*copyJob
	copied float64 // bytes the adding replicas copied so far
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
// reassignments in the model. kfake answers success and moves nothing. who
// is the client, for the audit.
func (c *cluster) answerAlterPartitionAssignments(req *request, who string) ([]byte, error) {
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
			if err, why := c.reassignLocked(t.Topic, tp.Partition, tp.Replicas, who); err != nil {
				rp.ErrorCode = err.Code
				msg := fmt.Sprintf("%s: partition %s-%d, replicas %v", err, t.Topic, tp.Partition, tp.Replicas)
				if why != "" {
					msg = fmt.Sprintf("%s (partition %s-%d)", why, t.Topic, tp.Partition)
				}
				rp.ErrorMessage = &msg
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return req.encodeResponse(resp), nil
}

// reassignLocked applies one partition's request and returns Kafka's
// error, with its message when Kafka's says more than the code.
func (c *cluster) reassignLocked(topic string, id int32, target []int32, who string) (*kerr.Error, string) {
	p := c.partitionLocked(topic, id)
	if p == nil {
		return kerr.UnknownTopicOrPartition, ""
	}
	now := time.Now()
	if target == nil {
		ra := p.reassign
		if ra == nil {
			return kerr.NoReassignmentInProgress, ""
		}
		c.finishReassignmentLocked(p, ra.original)
		c.recordReassignmentLocked(EventReassignmentCancelled, p, ra, who, int64(ra.copied), now)
		c.log.Info().Str("partition", p.String()).Ints32("replicas", p.replicas).Msg("reassignment cancelled")
		return nil, ""
	}
	if len(target) == 0 {
		return kerr.InvalidReplicaAssignment, "Empty replica list specified in partition reassignment."
	}
	for i, b := range target {
		if br := c.brokerByID(b); br == nil || br.state == StateDecommissioned || slices.Contains(target[:i], b) {
			return kerr.InvalidReplicaAssignment, ""
		}
	}
	original := p.replicas
	if p.reassign != nil {
		original = p.reassign.original
		if slices.Equal(p.reassign.target, target) {
			return nil, "" // already under way
		}
	}
	if slices.Equal(original, target) && p.reassign == nil {
		return nil, ""
	}
	// Kafka's controller places new replicas on live brokers only.
	adding := without(target, original)
	var live []int32
	for _, b := range c.brokers {
		if registered(b) {
			live = append(live, b.id)
		}
	}
	for _, b := range adding {
		if !slices.Contains(live, b) {
			return kerr.InvalidReplicaAssignment, fmt.Sprintf(
				"Replica assignment has brokers that are not alive. Replica list: %v, live broker list: %v", adding, live)
		}
	}
	old := p.reassign
	ra := &reassignment{original: slices.Clone(original), target: slices.Clone(target), started: now, who: who, copies: map[int32]*copyJob{}}
	p.reassign = ra
	p.replicas = append(slices.Clone(ra.target), ra.removing()...)
	// Replicas a superseded reassignment added that this one does not
	// want leave at once.
	p.isr = c.inReplicaOrder(p, slices.DeleteFunc(slices.Clone(p.isr), func(b int32) bool { return !slices.Contains(p.replicas, b) }))
	if !p.inSync(p.leader) {
		c.setLeaderLocked(p, firstInSync(p, -1))
	}
	if c.copies.first.IsZero() {
		c.copies.first = now
	}
	toCopy := c.beginCopiesLocked(p, ra, old, now)
	c.recordReassignmentLocked(EventReassignmentStarted, p, ra, who, toCopy, now)
	if old != nil {
		c.audit[len(c.audit)-1].Detail += fmt.Sprintf("; supersedes the reassignment to %v", old.target)
	}
	c.log.Info().Str("partition", p.String()).Ints32("target", ra.target).Ints32("adding", ra.adding()).Int64("bytes", toCopy).Msg("reassignment started")
	c.maybeCompleteReassignmentLocked(p)
	return nil, ""
}

// maybeCompleteReassignmentLocked ends p's reassignment once every target
// replica is in sync.
func (c *cluster) maybeCompleteReassignmentLocked(p *partition) {
	ra := p.reassign
	if ra == nil {
		return
	}
	for _, b := range ra.target {
		if !p.inSync(b) {
			return
		}
	}
	now := time.Now()
	c.finishReassignmentLocked(p, ra.target)
	c.copies.moved++
	c.copies.lastEnd = now
	c.recordReassignmentLocked(EventReassignmentCompleted, p, ra, ra.who, int64(ra.copied), now)
	c.log.Info().Str("partition", p.String()).Ints32("replicas", p.replicas).Msg("reassignment completed")
}

// finishReassignmentLocked makes replicas p's replica set, keeps the ISR
// members among them, and moves leadership when the leader left. A
// dropped replica on a broker whose host is gone may have been its last
// (decommission.go).
func (c *cluster) finishReassignmentLocked(p *partition, replicas []int32) {
	who := p.reassign.who
	dropped := without(p.replicas, replicas)
	p.reassign = nil
	p.replicas = slices.Clone(replicas)
	p.isr = slices.DeleteFunc(slices.Clone(p.isr), func(b int32) bool { return !slices.Contains(replicas, b) })
	p.isr = c.inReplicaOrder(p, p.isr)
	if !slices.Contains(p.isr, p.leader) {
		c.setLeaderLocked(p, firstInSync(p, -1))
	}
	for _, b := range dropped {
		c.maybeDecommissionLocked(b, who)
	}
}

// recordReassignmentLocked audits a reassignment event; bytes is what
// was copied (to copy, at the start).
func (c *cluster) recordReassignmentLocked(kind EventKind, p *partition, ra *reassignment, who string, bytes int64, now time.Time) {
	rec := &ReassignmentRecord{Topic: p.topic, Partition: p.id, From: slices.Clone(ra.original), To: slices.Clone(ra.target),
		Bytes: bytes, Duration: now.Sub(ra.started)}
	detail := fmt.Sprintf("partition %s: replicas %v -> %v", p, ra.original, ra.target)
	switch kind {
	case EventReassignmentStarted:
		detail += fmt.Sprintf(" (adding %v, removing %v): %d bytes to copy", ra.adding(), ra.removing(), bytes)
	default:
		detail += fmt.Sprintf(": %d bytes copied in %s", bytes, rec.Duration.Round(time.Millisecond))
	}
	c.appendEventLocked(Event{Time: now, Kind: kind, Who: who, Detail: detail, Reassignment: rec})
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
