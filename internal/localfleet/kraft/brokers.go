package kraft

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// Broker is a broker registered with the quorum.
type Broker struct {
	ID int32
	// Epoch is the broker epoch: the offset of its registration record.
	Epoch   int64
	Version string // the Kafka version it registered with
	Support Range  // the metadata.version levels it supports
	Fenced  bool
	// Alive is whether its process heartbeats; a registered broker that
	// is not alive and never comes back is a "ghost".
	Alive        bool
	WantShutdown bool
	// ZkMigrating: a ZooKeeper-mode broker in a KIP-866 migration
	// (RegisterMigrating), registered in ZooKeeper as well.
	ZkMigrating   bool
	RegisteredAt  time.Time
	LastHeartbeat time.Time
}

// Register registers broker id with the active controller (a broker
// starting, or one whose registration was removed while it ran): fenced
// until its first heartbeat after it has caught up with the metadata log.
func (m *Model) Register(id int32, version string, support Range, now time.Time) (Event, error) {
	if m.leader == NoLeader {
		return Event{}, fmt.Errorf("broker %d: register: %w", id, ErrNoLeader)
	}
	m.Append(1, now)
	ldr, _ := m.voter(m.leader)
	b := &Broker{ID: id, Epoch: ldr.LogEndOffset, Version: version, Support: support, Fenced: true,
		Alive: true, RegisteredAt: now, LastHeartbeat: now}
	m.brokers[id] = b
	return Event{Time: now, Kind: EventRegistered, Node: id, Epoch: m.epoch,
		Detail: fmt.Sprintf("broker epoch %d, Kafka %s, metadata.version %s", b.Epoch, version, support)}, nil
}

// RegisterMigrating registers ZooKeeper broker id, started with
// zookeeper.metadata.migration.enable, as a migrating ZooKeeper broker
// (KIP-866 phase 2); it heartbeats as a KRaft broker does.
func (m *Model) RegisterMigrating(id int32, version string, support Range, now time.Time) (Event, error) {
	ev, err := m.Register(id, version, support, now)
	if err != nil {
		return ev, err
	}
	m.brokers[id].ZkMigrating = true
	ev.Detail += ", migrating ZooKeeper broker"
	return ev, nil
}

// Brokers is a copy of the registered brokers, by id.
func (m *Model) Brokers() []Broker {
	out := make([]Broker, 0, len(m.brokers))
	for _, id := range slices.Sorted(maps.Keys(m.brokers)) {
		out = append(out, *m.brokers[id])
	}
	return out
}

// Broker is registered broker id's state.
func (m *Model) Broker(id int32) (Broker, bool) {
	b, ok := m.brokers[id]
	if !ok {
		return Broker{}, false
	}
	return *b, true
}

// StopHeartbeats is broker id's process dying without a word (a crash, a
// host gone): the controller fences it when its session times out.
func (m *Model) StopHeartbeats(id int32) {
	if b, ok := m.brokers[id]; ok {
		b.Alive = false
	}
}

// WantShutdown is broker id's heartbeat asking for a controlled shutdown:
// the controller moves its leadership away (the caller's replication
// model does) and fences it cleanly when it stops (Fence).
func (m *Model) WantShutdown(id int32, now time.Time) (Event, error) {
	b, ok := m.brokers[id]
	if !ok {
		return Event{}, fmt.Errorf("broker %d: want shutdown: %w", id, ErrNotRegistered)
	}
	b.WantShutdown = true
	return Event{Time: now, Kind: EventWantShutdown, Node: id, Epoch: m.epoch, Detail: "controlled shutdown requested"}, nil
}

// Fence fences broker id now, at the end of its controlled shutdown: a
// clean fencing when it asked for it with WantShutdown.
func (m *Model) Fence(id int32, now time.Time) (Event, bool) {
	b, ok := m.brokers[id]
	if !ok {
		return Event{}, false
	}
	b.Alive = false
	if b.Fenced {
		return Event{}, false
	}
	return m.fence(b, now, "controlled shutdown complete"), true
}

func (m *Model) fence(b *Broker, now time.Time, why string) Event {
	b.Fenced = true
	m.Append(1, now)
	return Event{Time: now, Kind: EventFenced, Node: b.ID, Epoch: m.epoch, Unclean: !b.WantShutdown, Detail: why}
}

// Unregister removes broker id's registration (UnregisterBroker). A
// broker whose process still runs registers again at its next heartbeat,
// as a Kafka broker told its epoch is stale does.
func (m *Model) Unregister(id int32, now time.Time) (Event, error) {
	if m.leader == NoLeader {
		return Event{}, fmt.Errorf("broker %d: unregister: %w", id, ErrNoLeader)
	}
	b, ok := m.brokers[id]
	if !ok {
		return Event{}, fmt.Errorf("broker %d: unregister: %w", id, ErrNotRegistered)
	}
	delete(m.brokers, id)
	m.Append(1, now)
	ev := Event{Time: now, Kind: EventUnregistered, Node: id, Epoch: m.epoch}
	if b.Alive {
		ev.Detail = "the broker still runs: it registers again"
	}
	return ev, nil
}

// advanceBrokers runs the brokers' heartbeats up to now: live brokers
// heartbeat every heartbeat interval and are unfenced once a heartbeat
// interval has passed since they registered (their metadata caught up);
// a broker silent for the session timeout is fenced. Without a leader
// nobody heartbeats and nobody fences; a new leader gives every broker a
// fresh session.
func (m *Model) advanceBrokers(now time.Time) []Event {
	if m.leader == NoLeader {
		return nil
	}
	var evs []Event
	for _, id := range slices.Sorted(maps.Keys(m.brokers)) {
		b := m.brokers[id]
		if b.LastHeartbeat.Before(m.resetHBAt) {
			b.LastHeartbeat = m.resetHBAt
		}
		if b.Alive {
			if now.Sub(b.LastHeartbeat) >= m.t.Heartbeat {
				b.LastHeartbeat = now
			}
			if b.Fenced && !b.WantShutdown && now.Sub(b.RegisteredAt) >= m.t.Heartbeat {
				b.Fenced = false
				m.Append(1, now)
				evs = append(evs, Event{Time: now, Kind: EventUnfenced, Node: id, Epoch: m.epoch, Detail: "caught up with the metadata log"})
			}
			continue
		}
		if !b.Fenced && now.Sub(b.LastHeartbeat) >= m.t.Session {
			evs = append(evs, m.fence(b, now, fmt.Sprintf("no heartbeat for %s (broker.session.timeout.ms)", m.t.Session)))
		}
	}
	return evs
}
