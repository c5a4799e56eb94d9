package localfleet

import (
	"fmt"
	"slices"
	"time"
)

// Decommissioned brokers. A ZooKeeper-mode Kafka cluster has no "remove
// broker" call: a broker is drained (its replicas reassigned away),
// stopped and never started again (OPERATIONS.md: a broker leaves only
// when it holds no replica). It is then simply not registered: absent
// from Metadata and DescribeCluster, given no replica of new topics (the
// controller assigns over registered brokers), named by no partition.
//
// The fleet's sign that a broker will not come back is its host being
// terminated: a broker whose host is terminated while it holds no
// replica (no partition lists it, no reassignment in progress names it,
// no topic being created is assigned to it) is decommissioned: it leaves
// the cluster's endpoints, no check counts it, a reassignment may not
// add it, and the audit records EventDecommissioned. A broker whose host
// is terminated while it still holds replicas stays a dead broker, whose
// host can be replaced (provision.go); it is decommissioned when a
// reassignment moves its last replica away. A host configured later
// under a decommissioned id makes a new broker of that id.

// StateDecommissioned: the broker left the cluster; its host was
// terminated while it held no replica.
const StateDecommissioned State = "decommissioned"

// EventDecommissioned: the broker left the cluster (Detail says why it
// could).
const EventDecommissioned EventKind = "decommissioned"

// registered reports whether broker b is registered in ZooKeeper as the
// controller sees it: running, or stopping until it deregisters.
func registered(b *broker) bool {
	return b.state == StateRunning || b.state == StateStopping
}

// decommissionTerminated decommissions the broker whose host instanceID
// was just terminated, if it holds no replica.
func (f *Fleet) decommissionTerminated(instanceID, who string) {
	c, b, ok := f.hostedBroker(instanceID)
	if !ok || c.checkOpen() != nil {
		return // a host terminated as the fleet closes
	}
	// Learn topics no client has asked about yet: one of them may have
	// a replica on it.
	if err := c.refresh(c.life); err != nil {
		c.log.Warn().Err(err).Int32("broker", b.id).Msg("decommission: refresh from kfake; the broker stays")
		return
	}
	b.opMu.Lock() // no start or crash of the broker meanwhile
	defer b.opMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.maybeDecommissionLocked(b.id, who)
}

// maybeDecommissionLocked decommissions broker id if its process is down,
// its host is terminated and it holds no replica. c.mu must be held.
func (c *cluster) maybeDecommissionLocked(id int32, who string) {
	b := c.brokerByID(id)
	if b == nil || c.closed || b.state == StateDecommissioned || processUp(b.state) {
		return
	}
	switch c.hosts.instanceState(b.instanceID) {
	case InstanceTerminated, "":
	default:
		return
	}
	if c.holdsLocked(id) {
		return
	}
	b.state = StateDecommissioned
	b.gen++
	b.behindBytes, b.behind, b.catchUp = 0, nil, catchUpRun{}
	c.recordDetailLocked(b, EventDecommissioned, who, fmt.Sprintf(
		"broker %d left cluster %q: its host (instance %s) is terminated and it holds no replica", b.id, c.id, b.instanceID))
}

// holdsLocked reports whether broker id holds a replica: of a modelled
// partition (a reassignment's union included), or by a manual assignment
// of a topic or partitions being created.
func (c *cluster) holdsLocked(id int32) bool {
	for _, p := range c.partitionsLocked() {
		if p.hostedOn(id) {
			return true
		}
	}
	assigns := func(plan *topicPlan, parts map[int32]*partition) bool {
		if plan == nil {
			return false
		}
		for part, replicas := range plan.assign {
			if _, learned := parts[part]; !learned && slices.Contains(replicas, id) {
				return true
			}
		}
		return false
	}
	for _, plan := range c.plans {
		if assigns(plan, nil) {
			return true
		}
	}
	for _, t := range c.topics {
		if assigns(t.plan, t.parts) {
			return true
		}
	}
	return false
}

// rejoinLocked makes decommissioned broker b a new broker on instanceID:
// stopped, with nothing of its former life. c.mu must be held.
func (c *cluster) rejoinLocked(b *broker, instanceID, rack string) {
	b.instanceID, b.rack = instanceID, rack
	b.state = StateStopped
	b.gen++
	b.version, b.ibp = "", ""
	b.behindBytes, b.behind, b.catchUp = 0, nil, catchUpRun{}
	b.rt = newRuntime(c.cfg, time.Now())
}
