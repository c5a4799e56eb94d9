package localfleet

import "sync"

// The byte-rate quotas the brokers enforce, as each Kafka broker keeps
// them in its ClientQuotaManagers: the quotas set through
// AlterClientQuotas (or restored from kfake at start), for user,
// (user, client-id) and client-id entities and their <default>s, one
// table per quota type. Which quota applies to a client, and which
// sensor its bytes are counted in, follows Kafka's DefaultQuotaCallback.
// controller_mutation_rate is the cluster's (mutation_quota.go);
// request_percentage and connection quotas
// are stored by kfake but not enforced.

// quotaKind is a byte-rate quota type; each has its own table and sensors.
type quotaKind int

const (
	quotaProduce quotaKind = iota // producer_byte_rate, on Produce request bytes
	quotaFetch                    // consumer_byte_rate, on Fetch response bytes
	numQuotaKinds
)

// Quota keys and the client-id entity type, as Kafka names them.
const (
	quotaConsumerByteRate = "consumer_byte_rate"
	quotaEntityClientID   = "client-id"
	// anonymousUser is the principal of a client that did not
	// authenticate (KafkaPrincipal.ANONYMOUS): its quotas are
	// user=ANONYMOUS's, else user=<default>'s.
	anonymousUser = "ANONYMOUS"
)

// quotaKindOf is the kind a quota key sets; ok is false for the keys the
// brokers do not enforce.
func quotaKindOf(key string) (quotaKind, bool) {
	switch key {
	case quotaProducerByteRate:
		return quotaProduce, true
	case quotaConsumerByteRate:
		return quotaFetch, true
	}
	return 0, false
}

// entityPart is one component of a quota entity: absent, <default>, or
// named. Defaults are a flag, not a spelling, so no name collides.
type entityPart struct {
	set, dflt bool
	name      string
}

func named(name string) entityPart { return entityPart{set: true, name: name} }

// dflt is the entity type's <default>.
func dflt() entityPart { return entityPart{set: true, dflt: true} }

// quotaEntity is a user, client-id or (user, client-id) entity.
type quotaEntity struct {
	user, client entityPart
}

// quotaEntityOf builds the entity of a user and/or client-id entity; ok
// is false for any other entity (ip, or a repeated type).
func quotaEntityOf(cs []quotaComponent) (quotaEntity, bool) {
	var e quotaEntity
	for _, c := range cs {
		var part *entityPart
		switch c.typ {
		case quotaEntityUser:
			part = &e.user
		case quotaEntityClientID:
			part = &e.client
		default:
			return quotaEntity{}, false
		}
		if part.set {
			return quotaEntity{}, false
		}
		*part = dflt()
		if c.name != nil {
			*part = named(*c.name)
		}
	}
	return e, e.user.set || e.client.set
}

// Entity levels a quota type has had quotas at (Kafka's QuotaTypes): with
// only one, every client is counted at that level even without a quota of
// its own; with several, the precedence chain decides.
const (
	levelUser = 1 << iota
	levelClient
	levelUserClient
)

// sensorTags identify a quota sensor as Kafka's metric tags do: clients
// sharing a quota share a sensor ("" for the part the quota does not
// name).
type sensorTags struct {
	user, clientID string
}

// clientQuotas is a cluster's quota tables. Every broker enforces them on
// its own traffic (quota_enforce.go).
type clientQuotas struct {
	mu     sync.Mutex
	limits [numQuotaKinds]map[quotaEntity]float64
	// levels only grow: as in Kafka, a quota type once enabled stays so
	// (sensors keep being recorded) until the cluster restarts.
	levels [numQuotaKinds]int
}

// set sets (nil: removes) an entity's quota of a kind.
func (q *clientQuotas) set(kind quotaKind, e quotaEntity, value *float64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if value == nil {
		delete(q.limits[kind], e)
		return
	}
	if q.limits[kind] == nil {
		q.limits[kind] = map[quotaEntity]float64{}
	}
	q.limits[kind][e] = *value
	switch {
	case e.user.set && e.client.set:
		q.levels[kind] |= levelUserClient
	case e.user.set:
		q.levels[kind] |= levelUser
	default:
		q.levels[kind] |= levelClient
	}
}

// resolution is which sensor a client's bytes go to and the quota it is
// held to.
type resolution struct {
	// enabled is false while the kind never had a quota: Kafka records
	// nothing then.
	enabled  bool
	tags     sensorTags
	limit    float64
	hasLimit bool
}

// resolve finds the sensor and quota for user's client clientID, in
// Kafka's order: (user, client-id), (user, <default> client-id), user,
// (<default> user, client-id), (<default> user, <default> client-id),
// <default> user, client-id, <default> client-id.
func (q *clientQuotas) resolve(kind quotaKind, user, clientID string) resolution {
	q.mu.Lock()
	defer q.mu.Unlock()
	limits := q.limits[kind]
	has := func(u, c entityPart) bool { _, ok := limits[quotaEntity{user: u, client: c}]; return ok }
	u, c, d, none := named(user), named(clientID), dflt(), entityPart{}
	var tags sensorTags
	switch q.levels[kind] {
	case 0:
		return resolution{}
	case levelClient:
		tags = sensorTags{clientID: clientID}
	case levelUser:
		tags = sensorTags{user: user}
	case levelUserClient:
		tags = sensorTags{user: user, clientID: clientID}
	default:
		switch {
		case has(u, c), has(u, d):
			tags = sensorTags{user: user, clientID: clientID}
		case has(u, none):
			tags = sensorTags{user: user}
		case has(d, c), has(d, d):
			tags = sensorTags{user: user, clientID: clientID}
		case has(d, none):
			tags = sensorTags{user: user}
		default:
			tags = sensorTags{clientID: clientID}
		}
	}
	limit, ok := q.limitLocked(kind, tags)
	return resolution{enabled: true, tags: tags, limit: limit, hasLimit: ok}
}

// limitLocked is the quota of a sensor's tags (DefaultQuotaCallback's
// quotaLimit). q.mu must be held.
func (q *clientQuotas) limitLocked(kind quotaKind, tags sensorTags) (float64, bool) {
	limits := q.limits[kind]
	var order []quotaEntity
	u, c, d, none := named(tags.user), named(tags.clientID), dflt(), entityPart{}
	switch {
	case tags.user != "" && tags.clientID != "":
		order = []quotaEntity{{u, c}, {u, d}, {d, c}, {d, d}}
	case tags.user != "":
		order = []quotaEntity{{u, none}, {d, none}}
	case tags.clientID != "":
		order = []quotaEntity{{none, c}, {none, d}}
	}
	for _, e := range order {
		if v, ok := limits[e]; ok {
			return v, true
		}
	}
	return 0, false
}
