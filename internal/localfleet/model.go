package localfleet

import (
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The replication model. kfake reports ISR = replicas and derives replicas
// from the current leader, so clients would never see a broker leave; the
// fleet therefore keeps replicas, ISR, leaders and the controller itself and
// makes every client-visible answer agree with it. Every method here that
// ends in Locked requires c.mu.

// topicModel is the model of one topic.
type topicModel struct {
	id    [16]byte // kfake's topic id; a new id means the topic was recreated
	parts map[int32]*partition
	plan  *topicPlan // what the creator asked for; nil when unknown
	// throttled are the topic's leader/follower.replication.throttled.
	// replicas configs, by key (throttles.go); nil when none is set.
	throttled map[string]replicaList
}

// topicPlan is the replication a topic was created with. kfake runs one
// node and stores every topic with one replica, so the requested
// replication factor (or manual assignment, in broker ids) lives here.
type topicPlan struct {
	rf     int
	assign map[int32][]int32 // by partition; may be nil
	// segments is what each replica holds at steady state (segments.go);
	// 0 when not known (seeded topics: the brokers' base covers them).
	segments int
}

// planTopicLocked records the replication a topic is being created with;
// learnLocked hands it to the topic's model when kfake reports the topic.
func (c *cluster) planTopicLocked(name string, plan *topicPlan) {
	c.plans[name] = plan
}

// defaultRFLocked is the cluster's default.replication.factor, capped
// at the brokers new replicas can go to.
func (c *cluster) defaultRFLocked() int {
	return min(defaultReplicationFactor, len(c.assignableLocked()))
}

// partition is the model of one partition. Broker ids, never kfake nodes.
type partition struct {
	topic    string
	id       int32
	replicas []int32       // replicas[0] is the preferred leader
	isr      []int32       // kept in replica order
	leader   int32         // -1 when no replica is in sync
	epoch    int32         // kfake's leader epoch, reported unchanged (clients fence fetches with it)
	bytes    int64         // log size on an in-sync replica (DescribeLogDirs)
	reassign *reassignment // nil unless a reassignment is in progress
}

func (p *partition) String() string { return fmt.Sprintf("%s-%d", p.topic, p.id) }

// kfakeNode is kfake's only node: it leads every partition, coordinates
// every group and transaction and is the controller. Every client
// connection therefore has exactly one upstream connection, on which SASL
// authentication happens and kfake enforces ACLs.
const kfakeNode int32 = 0

// assignReplicas places a partition's replicas the way Kafka's default
// assignor does, minus the randomness: consecutive brokers of order starting
// at an offset derived from the topic name, shifted by the partition number,
// so leaders and replicas spread evenly and restarts are reproducible. order
// alternates racks (rackAlternated), so consecutive replicas sit on distinct
// racks whenever the replication factor allows, as Kafka's rack-aware
// assignment guarantees.
func assignReplicas(topic string, partition int32, rf int, order []int32) []int32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(topic))
	n := len(order)
	start := int(h.Sum32() % uint32(n))
	rf = min(max(rf, 1), n)
	out := make([]int32, rf)
	for i := range out {
		out[i] = order[(start+int(partition)+i)%n]
	}
	return out
}

// assignableLocked is the broker order new replicas are placed over: as
// Kafka assigns over the brokers registered in ZooKeeper, the running
// brokers (and stopping ones, registered until they deregister), racks
// alternating. When none is registered (a cluster being brought up) the
// model still needs an assignment: every broker that has not left the
// cluster then.
func (c *cluster) assignableLocked() []int32 {
	var live, known []*broker
	for _, b := range c.brokers {
		if b.state == StateDecommissioned {
			continue
		}
		known = append(known, b)
		if registered(b) {
			live = append(live, b)
		}
	}
	if len(live) == 0 {
		live = known
	}
	return rackAlternated(live)
}

// rackAlternated lists broker ids so that racks alternate: the first broker
// of each rack (racks in name order), then the second of each, and so on.
// Brokers without a rack count as one rack named "".
func rackAlternated(brokers []*broker) []int32 {
	byRack := map[string][]int32{}
	for _, b := range brokers {
		byRack[b.rack] = append(byRack[b.rack], b.id)
	}
	racks := sortedKeys(byRack)
	var out []int32
	for i := 0; len(out) < len(brokers); i++ {
		for _, r := range racks {
			if i < len(byRack[r]) {
				out = append(out, byRack[r][i])
			}
		}
	}
	return out
}

func (c *cluster) runningLocked(id int32) bool {
	b := c.brokerByID(id)
	return b != nil && b.state == StateRunning
}

// learnLocked folds what kfake reports into the model: partitions the model
// has not seen get a replica assignment and an ISR of the running brokers;
// deleted topics are dropped when resp lists every topic (all). kfake's
// leader epoch is kept, since clients send it back in fetches.
func (c *cluster) learnLocked(resp *kmsg.MetadataResponse, all bool) {
	seen := make(map[string]bool, len(resp.Topics))
	for i := range resp.Topics {
		rt := &resp.Topics[i]
		if rt.Topic == nil {
			continue
		}
		name := *rt.Topic
		if rt.ErrorCode == kerr.UnknownTopicOrPartition.Code {
			delete(c.topics, name)
			continue
		}
		if rt.ErrorCode != 0 {
			continue
		}
		seen[name] = true
		t := c.topics[name]
		if t != nil && rt.TopicID != ([16]byte{}) && t.id != ([16]byte{}) && t.id != rt.TopicID {
			c.log.Info().Str("topic", name).Msg("topic was recreated; forgetting its old assignment")
			t = nil
		}
		if t == nil {
			t = &topicModel{id: rt.TopicID, parts: map[int32]*partition{}, plan: c.plans[name]}
			delete(c.plans, name)
			c.topics[name] = t
		} else if t.plan == nil && c.plans[name] != nil && len(t.parts) == 0 {
			t.plan = c.plans[name]
			delete(c.plans, name)
		}
		for j := range rt.Partitions {
			rp := &rt.Partitions[j]
			if rp.ErrorCode != 0 && rp.ErrorCode != kerr.LeaderNotAvailable.Code {
				continue
			}
			p := t.parts[rp.Partition]
			if p == nil {
				p = c.newPartitionLocked(t, name, rp.Partition)
				t.parts[rp.Partition] = p
			}
			p.epoch = max(rp.LeaderEpoch, 0)
		}
	}
	if all {
		for name := range c.topics {
			if !seen[name] {
				delete(c.topics, name)
			}
		}
	}
}

// newPartitionLocked models a partition kfake reported for the first time.
// Its replication factor is the topic's: the one it was created with, else
// that of its other partitions, else the cluster default.
func (c *cluster) newPartitionLocked(t *topicModel, topic string, id int32) *partition {
	p := &partition{topic: topic, id: id, leader: -1}
	rf := 0
	if t.plan != nil {
		if a := t.plan.assign[id]; len(a) > 0 {
			p.replicas = slices.Clone(a)
		}
		rf = t.plan.rf
	}
	if rf <= 0 {
		for _, q := range t.parts {
			rf = len(q.replicas)
			if q.reassign != nil {
				rf = len(q.reassign.target)
			}
			break
		}
	}
	if rf <= 0 {
		rf = c.defaultRFLocked()
	}
	if p.replicas == nil {
		if order := c.assignableLocked(); len(order) > 0 {
			p.replicas = assignReplicas(topic, id, rf, order)
		}
	}
	for _, r := range p.replicas {
		if c.runningLocked(r) {
			p.isr = append(p.isr, r)
		}
	}
	if len(p.isr) > 0 {
		p.leader = p.isr[0]
	}
	return p
}

// setLeaderLocked changes the model's leader of p. kfake's node leads every
// partition whatever the model says, so there is nothing to move there.
func (c *cluster) setLeaderLocked(p *partition, leader int32) {
	p.leader = leader
}

// firstInSync returns the first in-sync replica in replica (preference)
// order other than skip, or -1.
func firstInSync(p *partition, skip int32) int32 {
	for _, r := range p.replicas {
		if r != skip && slices.Contains(p.isr, r) {
			return r
		}
	}
	return -1
}

// leaveISRLocked is the replication half of a controlled shutdown of
// broker id: leadership moves to another in-sync replica, then the broker
// leaves every ISR. Partitions that fall below min.insync.replicas are
// recorded as violations.
func (c *cluster) leaveISRLocked(id int32) {
	for _, p := range c.partitionsLocked() {
		if p.leader == id {
			c.setLeaderLocked(p, firstInSync(p, id))
		}
		i := slices.Index(p.isr, id)
		if i < 0 {
			continue
		}
		before := len(p.isr)
		p.isr = slices.Delete(slices.Clone(p.isr), i, i+1)
		if before >= c.minISR && len(p.isr) < c.minISR {
			c.violateLocked(ViolationUnderMinISR, fmt.Sprintf(
				"partition %s: isr %v below min.insync.replicas %d after broker %d left", p, p.isr, c.minISR, id))
		}
	}
}

// joinISRLocked puts broker id back into the ISR of each partition it
// replicates; a partition that had no leader gets it as leader.
func (c *cluster) joinISRLocked(id int32) {
	if b := c.brokerByID(id); b != nil {
		b.behindBytes, b.behind, b.catchUp = 0, nil, catchUpRun{}
	}
	for _, p := range c.partitionsLocked() {
		if !slices.Contains(p.replicas, id) || slices.Contains(p.isr, id) || c.copyingLocked(p, id) {
			// An adding replica joins once its copy is done
			// (reassign_copy.go), not with the broker's catch-up.
			continue
		}
		p.isr = c.inReplicaOrder(p, append(slices.Clone(p.isr), id))
		if p.leader < 0 {
			c.setLeaderLocked(p, id)
		}
		c.maybeCompleteReassignmentLocked(p)
	}
}

// electPreferredLocked runs a preferred-leader election for p and returns
// Kafka's per-partition error code.
func (c *cluster) electPreferredLocked(p *partition) int16 {
	preferred := p.replicas[0]
	switch {
	case p.leader == preferred:
		return kerr.ElectionNotNeeded.Code
	case !slices.Contains(p.isr, preferred) || !c.runningLocked(preferred):
		return kerr.PreferredLeaderNotAvailable.Code
	}
	c.setLeaderLocked(p, preferred)
	c.log.Debug().Str("partition", p.String()).Int32("leader", preferred).Int32("epoch", p.epoch).Msg("preferred leader elected")
	return 0
}

// electUncleanLocked answers an unclean election. The fleet never elects an
// out-of-sync replica (unclean.leader.election.enable=false), so this only
// reports whether an election was needed.
func (c *cluster) electUncleanLocked(p *partition) int16 {
	if p.leader >= 0 {
		return kerr.ElectionNotNeeded.Code
	}
	return kerr.EligibleLeadersNotAvailable.Code
}

// partitionsLocked returns every modelled partition in topic, partition
// order, so that iteration (and thus kfake moves and violations) is
// deterministic.
func (c *cluster) partitionsLocked() []*partition {
	var out []*partition
	for _, name := range sortedKeys(c.topics) {
		t := c.topics[name]
		for _, id := range sortedKeys(t.parts) {
			out = append(out, t.parts[id])
		}
	}
	return out
}

func (c *cluster) partitionLocked(topic string, id int32) *partition {
	if t := c.topics[topic]; t != nil {
		return t.parts[id]
	}
	return nil
}

// offlineLocked returns p's replicas that are not running.
func (c *cluster) offlineLocked(p *partition) []int32 {
	out := []int32{}
	for _, r := range p.replicas {
		if !c.runningLocked(r) {
			out = append(out, r)
		}
	}
	return out
}

// pickControllerLocked returns the lowest running broker id, or -1.
func (c *cluster) pickControllerLocked() int32 {
	for _, b := range c.brokers {
		if b.state == StateRunning {
			return b.id
		}
	}
	return -1
}

func sortedKeys[K int32 | string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
