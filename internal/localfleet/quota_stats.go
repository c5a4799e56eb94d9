package localfleet

import (
	"cmp"
	"slices"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// What the brokers' byte-rate quotas did: per user through
// Fleet.QuotaStats, and per client sensor in each broker's metrics, as
// Kafka's JMX exporter shows them.

// QuotaUsage is what a user's clients did against the byte-rate quotas on
// one broker, or on every broker summed.
type QuotaUsage struct {
	// ProduceBytes and FetchBytes are the bytes counted against
	// producer_byte_rate (Produce requests) and consumer_byte_rate
	// (Fetch responses; a throttled one is answered empty and not
	// counted), since the fleet started.
	ProduceBytes int64 `json:"produceBytes"`
	FetchBytes   int64 `json:"fetchBytes"`
	// ProduceByteRate and FetchByteRate are the user's rates now, in
	// bytes per second, measured as Kafka measures a quota (up to 11
	// samples of 1 s; a broker that has not run 10 s yet spreads what it
	// saw over 10 s). 0 on a broker that is not running.
	ProduceByteRate float64 `json:"produceByteRate"`
	FetchByteRate   float64 `json:"fetchByteRate"`
	// ProduceThrottled and FetchThrottled are the responses (or acks=0
	// produces) that were throttled, and ProduceThrottleMs and
	// FetchThrottleMs their throttle times summed.
	ProduceThrottled  int64 `json:"produceThrottled"`
	FetchThrottled    int64 `json:"fetchThrottled"`
	ProduceThrottleMs int64 `json:"produceThrottleMs"`
	FetchThrottleMs   int64 `json:"fetchThrottleMs"`
}

// UserQuotaStats is a user's QuotaUsage on a cluster, and by broker: each
// broker enforces the user's quotas on its own.
type UserQuotaStats struct {
	QuotaUsage
	Brokers map[int32]QuotaUsage `json:"brokers"`
}

func (u *QuotaUsage) add(o QuotaUsage) {
	u.ProduceBytes += o.ProduceBytes
	u.FetchBytes += o.FetchBytes
	u.ProduceByteRate += o.ProduceByteRate
	u.FetchByteRate += o.FetchByteRate
	u.ProduceThrottled += o.ProduceThrottled
	u.FetchThrottled += o.FetchThrottled
	u.ProduceThrottleMs += o.ProduceThrottleMs
	u.FetchThrottleMs += o.FetchThrottleMs
}

// QuotaStats reports, by user (the SASL user; ANONYMOUS for clients that
// did not authenticate), what the cluster's brokers counted against its
// byte-rate quotas and how much they throttled it. Users that never
// produced or fetched through the brokers are absent.
func (f *Fleet) QuotaStats(cluster string) (map[string]UserQuotaStats, error) {
	c, err := f.cluster(cluster)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := map[string]UserQuotaStats{}
	for _, b := range c.brokerList() {
		for user, u := range b.proxy.quota.usage(now) {
			st := out[user]
			if st.Brokers == nil {
				st.Brokers = map[int32]QuotaUsage{}
			}
			st.Brokers[b.id] = u
			st.add(u)
			out[user] = st
		}
	}
	return out, nil
}

// usage is every user's QuotaUsage on this broker at now.
func (m *quotaManager) usage(now time.Time) map[string]QuotaUsage {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]QuotaUsage, len(m.users))
	for user, u := range m.users {
		out[user] = QuotaUsage{
			ProduceBytes:      u.bytes[quotaProduce],
			FetchBytes:        u.bytes[quotaFetch],
			ProduceByteRate:   u.rate[quotaProduce].rate(rateConfig(), now),
			FetchByteRate:     u.rate[quotaFetch].rate(rateConfig(), now),
			ProduceThrottled:  u.throttled[quotaProduce],
			FetchThrottled:    u.throttled[quotaFetch],
			ProduceThrottleMs: u.throttMs[quotaProduce],
			FetchThrottleMs:   u.throttMs[quotaFetch],
		}
	}
	return out
}

// Help texts of the quota metrics: the MBeans they come from.
const (
	produceByteRateHelp    = "Attribute exposed for management kafka.server<type=Produce, user=U, client-id=C><>byte-rate"
	produceThrottleHelp    = "Attribute exposed for management kafka.server<type=Produce, user=U, client-id=C><>throttle-time"
	fetchByteRateHelp      = "Attribute exposed for management kafka.server<type=Fetch, user=U, client-id=C><>byte-rate"
	fetchThrottleTimeHelp  = "Attribute exposed for management kafka.server<type=Fetch, user=U, client-id=C><>throttle-time"
	quotaMetricsClientIDLb = "client_id"
)

// quotaFamilies is the broker's quota metrics at now: every client
// sensor's byte-rate and throttle-time (the average throttle of its
// throttled responses in the last 30 to 60 s; NaN when none was, as
// Kafka's Avg reports), once its quota type had a quota, as Kafka
// creates sensors only then. modelled is the hosts model's produce rate
// by user (FillDiskBy), which adds to the user's own sensor: tenants have
// user quotas, which Kafka keys by user alone (client_id empty).
func (m *quotaManager) quotaFamilies(modelled map[string]int64, now time.Time) []*dto.MetricFamily {
	type key struct{ user, clientID string }
	var rates, throttles [numQuotaKinds]map[key]float64
	for k := range numQuotaKinds {
		rates[k], throttles[k] = map[key]float64{}, map[key]float64{}
	}
	for user, v := range modelled {
		rates[quotaProduce][key{user: user}] += float64(v)
	}
	m.mu.Lock()
	for sk, s := range m.sensors {
		k := key{sk.tags.user, sk.tags.clientID}
		rates[sk.kind][k] += s.bytes.rate(rateConfig(), now)
		throttles[sk.kind][k] = s.throttle.avg(throttleConfig(), now)
	}
	m.mu.Unlock()

	family := func(name, help string, values map[key]float64) *dto.MetricFamily {
		if len(values) == 0 {
			return nil
		}
		keys := make([]key, 0, len(values))
		for k := range values {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b key) int { return cmp.Or(cmp.Compare(a.user, b.user), cmp.Compare(a.clientID, b.clientID)) })
		samples := make([]*dto.Metric, 0, len(keys))
		for _, k := range keys {
			samples = append(samples, sample(values[k], "user", k.user, quotaMetricsClientIDLb, k.clientID))
		}
		return gaugeFamily(name, help, samples...)
	}
	var fams []*dto.MetricFamily
	for _, fam := range []*dto.MetricFamily{
		family(MetricProduceByteRate, produceByteRateHelp, rates[quotaProduce]),
		family(MetricProduceThrottleTime, produceThrottleHelp, throttles[quotaProduce]),
		family(MetricFetchByteRate, fetchByteRateHelp, rates[quotaFetch]),
		family(MetricFetchThrottleTime, fetchThrottleTimeHelp, throttles[quotaFetch]),
	} {
		if fam != nil {
			fams = append(fams, fam)
		}
	}
	return fams
}
