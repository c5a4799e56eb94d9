package fleet

import (
	"fmt"
	"slices"
	"time"
)

// Snapshot is what a cluster looks like at one moment, as seen from outside:
// the Kafka metadata and the ZooKeeper registrations. Gates are evaluated on
// a fresh snapshot right before each broker is touched, never on a cached one.
type Snapshot struct {
	Cluster string    `json:"cluster"`
	TakenAt time.Time `json:"takenAt"`
	// Controller is the active controller's broker id, -1 when none.
	Controller int32 `json:"controller"`
	// Registered are the broker ids registered in ZooKeeper (/brokers/ids).
	Registered []int32     `json:"registered"`
	Partitions []Partition `json:"partitions"`
}

// Partition is one topic partition's replication state.
type Partition struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Leader    int32   `json:"leader"` // -1 when offline
	Replicas  []int32 `json:"replicas"`
	ISR       []int32 `json:"isr"`
	// MinISR is the partition's effective min.insync.replicas.
	MinISR int `json:"minIsr"`
}

func (p Partition) String() string { return fmt.Sprintf("%s/%d", p.Topic, p.Partition) }

// Offline reports whether no replica leads the partition.
func (p Partition) Offline() bool { return p.Leader < 0 }

// UnderMinISR reports whether fewer replicas than min.insync.replicas are in sync.
func (p Partition) UnderMinISR() bool { return len(p.ISR) < p.MinISR }

// HostedOn reports whether broker has a replica of the partition.
func (p Partition) HostedOn(broker int32) bool { return slices.Contains(p.Replicas, broker) }

// InSyncOn reports whether broker's replica is in the ISR.
func (p Partition) InSyncOn(broker int32) bool { return slices.Contains(p.ISR, broker) }

// IsRegistered reports whether broker is registered in ZooKeeper.
func (s Snapshot) IsRegistered(broker int32) bool { return slices.Contains(s.Registered, broker) }

// PartitionsOn returns the partitions with a replica on broker.
func (s Snapshot) PartitionsOn(broker int32) []Partition {
	var out []Partition
	for _, p := range s.Partitions {
		if p.HostedOn(broker) {
			out = append(out, p)
		}
	}
	return out
}

// OutOfSyncOn returns the partitions hosted on broker whose replica there is
// not in sync yet.
func (s Snapshot) OutOfSyncOn(broker int32) []Partition {
	var out []Partition
	for _, p := range s.PartitionsOn(broker) {
		if !p.InSyncOn(broker) {
			out = append(out, p)
		}
	}
	return out
}

// NotPreferredLeaderOn returns the partitions whose preferred leader (first
// replica) is broker but which another broker (or nobody) leads.
func (s Snapshot) NotPreferredLeaderOn(broker int32) []Partition {
	var out []Partition
	for _, p := range s.Partitions {
		if len(p.Replicas) > 0 && p.Replicas[0] == broker && p.Leader != broker {
			out = append(out, p)
		}
	}
	return out
}
