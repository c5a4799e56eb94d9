package fleet

import (
	"fmt"
	"slices"
	"strings"
)

// Gate names, as shown to operators in the UI and in status.
const (
	GateHealthy      = "cluster-healthy"
	GateAvailability = "availability"
	GateRecovering   = "not-recovering"
)

// Blocker is one reason a gate is shut.
type Blocker struct {
	Gate   string `json:"gate"`
	Reason string `json:"reason"`
	// Permanent marks a blocker that waiting cannot clear, e.g. a partition
	// whose replication factor is at or below min.insync.replicas: any restart
	// of one of its replicas takes it under min ISR. It is reported to a human
	// instead of waited on.
	Permanent bool `json:"permanent,omitempty"`
}

func (b Blocker) String() string { return b.Gate + ": " + b.Reason }

// maxReasons bounds the blockers reported per gate: a cluster with 50,000
// partitions can have thousands, and the first few say what is wrong.
const maxReasons = 10

// HealthBlockers checks gate 1 of OPERATIONS.md: every broker of the spec is
// registered, no partition is offline and none is under min.insync.replicas.
func HealthBlockers(spec ClusterSpec, s Snapshot) []Blocker {
	var out []Blocker
	add := func(format string, args ...any) {
		if len(out) < maxReasons {
			out = append(out, Blocker{Gate: GateHealthy, Reason: fmt.Sprintf(format, args...)})
		}
	}
	// Where a broker registers: a KRaft cluster's snapshot holds its
	// unfenced brokers (Unfenced), so a fenced one reads as unregistered.
	where := "in ZooKeeper"
	if spec.RegistersWithKRaft() {
		where = "with the KRaft controller, or is fenced"
	}
	for _, id := range spec.BrokerIDs() {
		if !s.IsRegistered(id) {
			add("broker %d is not registered %s", id, where)
		}
	}
	for _, p := range s.Partitions {
		switch {
		case p.Offline():
			add("partition %s is offline", p)
		case p.UnderMinISR():
			add("partition %s is under min.insync.replicas (isr %v, min %d)", p, p.ISR, p.MinISR)
		}
	}
	return out
}

// AvailabilityBlockers checks gate 2 of OPERATIONS.md for stopping every
// broker of batch at once: no partition with a replica in the batch may drop
// below min.insync.replicas.
func AvailabilityBlockers(s Snapshot, batch []int32) []Blocker {
	var out []Blocker
	for _, p := range s.Partitions {
		hosted := 0
		remaining := 0
		for _, r := range p.Replicas {
			if slices.Contains(batch, r) {
				hosted++
			}
		}
		if hosted == 0 {
			continue
		}
		for _, r := range p.ISR {
			if !slices.Contains(batch, r) {
				remaining++
			}
		}
		if remaining >= p.MinISR {
			continue
		}
		b := Blocker{
			Gate:   GateAvailability,
			Reason: fmt.Sprintf("stopping %s would leave partition %s with %d in-sync replicas (isr %v, min %d)", brokerList(batch), p, remaining, p.ISR, p.MinISR),
		}
		if len(p.Replicas)-hosted < p.MinISR {
			b.Permanent = true
			b.Reason = fmt.Sprintf("partition %s has replication factor %d with min.insync.replicas %d: %s can never restart without taking it under min ISR", p, len(p.Replicas), p.MinISR, brokerList(batch))
		}
		out = append(out, b)
		if len(out) == maxReasons {
			break
		}
	}
	return out
}

// NextBroker picks the next broker of a roll among remaining: the lowest id
// that is not the controller, the controller last. The controller is
// re-resolved from a fresh snapshot at every step because it moves when its
// broker stops; restarting it last costs one controller move, not one per broker.
func NextBroker(s Snapshot, remaining []int32) (int32, bool) {
	if len(remaining) == 0 {
		return 0, false
	}
	sorted := slices.Clone(remaining)
	slices.Sort(sorted)
	for _, id := range sorted {
		if id != s.Controller {
			return id, true
		}
	}
	return sorted[0], true
}

// NextBatch picks the brokers of a roll's next step among remaining: the
// broker NextBroker picks, joined by up to maxBatch-1 other remaining brokers
// such that no two brokers of the batch host a replica of the same
// partition. Brokers on the first broker's rack are tried first (rack names
// from rackOf; nil or "" means unknown): with rack-aware placement a rack
// shares no partition, so batches are whole racks and the roll takes as few
// steps as racks allow. The controller always goes alone and last. The
// availability gate must still hold for the whole batch.
func NextBatch(s Snapshot, remaining []int32, maxBatch int, rackOf func(int32) string) []int32 {
	first, ok := NextBroker(s, remaining)
	if !ok {
		return nil
	}
	batch := []int32{first}
	if maxBatch <= 1 || first == s.Controller {
		return batch
	}
	rack := func(id int32) string {
		if rackOf == nil {
			return ""
		}
		return rackOf(id)
	}
	candidates := slices.Clone(remaining)
	slices.SortFunc(candidates, func(a, b int32) int {
		// Same rack as the first broker before the others, then by id.
		sameA, sameB := rack(a) != "" && rack(a) == rack(first), rack(b) != "" && rack(b) == rack(first)
		if sameA != sameB {
			if sameA {
				return -1
			}
			return 1
		}
		return int(a - b)
	})
	for _, id := range candidates {
		if len(batch) == maxBatch {
			break
		}
		if id == first || id == s.Controller {
			continue
		}
		if !sharesPartition(s, batch, id) {
			batch = append(batch, id)
		}
	}
	return batch
}

// sharesPartition reports whether broker hosts a replica of a partition
// that one of batch also hosts.
func sharesPartition(s Snapshot, batch []int32, broker int32) bool {
	for _, p := range s.Partitions {
		if !p.HostedOn(broker) {
			continue
		}
		for _, b := range batch {
			if p.HostedOn(b) {
				return true
			}
		}
	}
	return false
}

// GracePeriodSeconds sizes the controlled-shutdown grace for a broker leading
// or following partitions: Kafka moves leadership partition by partition, so a
// busy broker needs longer before it may be killed.
func GracePeriodSeconds(partitions int) int {
	const base, perThousand, ceiling = 60, 30, 1800
	return min(base+partitions*perThousand/1000, ceiling)
}

func brokerList(ids []int32) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprint(id)
	}
	if len(parts) == 1 {
		return "broker " + parts[0]
	}
	return "brokers " + strings.Join(parts, ",")
}
