package fleet

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// DefaultMinInsyncReplicas is the managed-cluster default (OPERATIONS.md); it
// applies to a topic that does not override min.insync.replicas.
const DefaultMinInsyncReplicas = 2

// ClusterSpec is what kfleet knows about a managed cluster to reach it. It is
// carried in workflow history, so it must never hold a secret: credentials are
// referenced by name and resolved by activities.
type ClusterSpec struct {
	ID string `json:"id" yaml:"id"`
	// Bootstrap lists host:port addresses of the cluster's brokers.
	Bootstrap []string `json:"bootstrap" yaml:"bootstrap"`
	// ZooKeeper is the ensemble connect string with the cluster's chroot,
	// e.g. "zk1:2181,zk2:2181/kafka/prod-a"; empty for a KRaft cluster.
	ZooKeeper string       `json:"zookeeper" yaml:"zookeeper"`
	Brokers   []BrokerSpec `json:"brokers" yaml:"brokers"`
	// Health tunes the entity's health loop and self-healing; zero
	// values are the defaults of OPERATIONS.md.
	Health HealthPolicy `json:"health,omitzero" yaml:"health,omitempty"`
	// KafkaVersion and InterBrokerProtocol are what the brokers run when
	// the cluster is registered (e.g. 3.6.2 and 3.6), optional: they seed
	// the entity's protocol level, which each upgrade through kfleet then
	// keeps, so an upgrade need not be told its fromIbp.
	KafkaVersion        string `json:"kafkaVersion,omitempty" yaml:"kafkaVersion,omitempty"`
	InterBrokerProtocol string `json:"interBrokerProtocol,omitempty" yaml:"interBrokerProtocol,omitempty"`
	// Security is how kfleet authenticates to the cluster (SASL, TLS,
	// ZooKeeper digest), by secret names (security.go); zero: plaintext.
	Security Security `json:"security,omitzero" yaml:"security,omitempty"`
	// KRaft is the cluster's KRaft side (kraft.go); nil: a ZooKeeper
	// cluster, as every spec written before KRaft support is.
	KRaft *KRaftSpec `json:"kraft,omitempty" yaml:"kraft,omitempty"`
}

// BrokerSpec ties a broker id to the host it runs on.
type BrokerSpec struct {
	ID         int32  `json:"id" yaml:"id"`
	InstanceID string `json:"instanceId" yaml:"instanceId"`
	Rack       string `json:"rack,omitempty" yaml:"rack,omitempty"`
	// MetricsURL is the broker's Prometheus exposition (JMX and node
	// exporters); empty when the cluster exposes none, which skips the
	// metrics-based gates.
	MetricsURL string `json:"metricsUrl,omitempty" yaml:"metricsUrl,omitempty"`
}

// Validate reports every problem with the spec at once, so an operator fixes
// a bad spec in one go.
func (s ClusterSpec) Validate() error {
	var errs []error
	if !ValidClusterID(s.ID) {
		errs = append(errs, fmt.Errorf("cluster id %q: want 1-63 characters of a-z, 0-9 and '-'", s.ID))
	}
	if len(s.Bootstrap) == 0 {
		errs = append(errs, errors.New("bootstrap: at least one broker address is required"))
	}
	errs = append(errs, s.validateMode()...)
	if len(s.Brokers) == 0 {
		errs = append(errs, errors.New("brokers: at least one broker is required"))
	}
	seen := make(map[int32]bool, len(s.Brokers))
	for _, b := range s.Brokers {
		if b.ID < 0 {
			errs = append(errs, fmt.Errorf("broker %d: id must not be negative", b.ID))
		}
		if seen[b.ID] {
			errs = append(errs, fmt.Errorf("broker %d: listed twice", b.ID))
		}
		seen[b.ID] = true
		if b.InstanceID == "" {
			errs = append(errs, fmt.Errorf("broker %d: instanceId is required", b.ID))
		}
	}
	if err := s.Health.Validate(); err != nil {
		errs = append(errs, err)
	}
	if s.KafkaVersion != "" {
		if v, err := ParseKafkaVersion(s.KafkaVersion); err != nil {
			errs = append(errs, fmt.Errorf("kafkaVersion: %w", err))
		} else if p, err := ParseProtocolVersion(s.InterBrokerProtocol); s.InterBrokerProtocol != "" && err == nil && !v.Speaks(p) {
			errs = append(errs, fmt.Errorf("interBrokerProtocol %s is newer than Kafka %s speaks", p, v))
		}
	}
	if s.InterBrokerProtocol != "" {
		if _, err := ParseProtocolVersion(s.InterBrokerProtocol); err != nil {
			errs = append(errs, fmt.Errorf("interBrokerProtocol: %w", err))
		}
	}
	if err := s.Security.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster spec %q: %w", s.ID, err)
	}
	return nil
}

// Broker returns the spec of broker id.
func (s ClusterSpec) Broker(id int32) (BrokerSpec, bool) {
	i := slices.IndexFunc(s.Brokers, func(b BrokerSpec) bool { return b.ID == id })
	if i < 0 {
		return BrokerSpec{}, false
	}
	return s.Brokers[i], true
}

// BrokerIDs returns the spec's broker ids in ascending order.
func (s ClusterSpec) BrokerIDs() []int32 {
	ids := make([]int32, 0, len(s.Brokers))
	for _, b := range s.Brokers {
		ids = append(ids, b.ID)
	}
	slices.Sort(ids)
	return ids
}

// ValidClusterID reports whether id can name a cluster: 1 to 63 characters
// of a-z, 0-9 and '-', neither first nor last a '-' (a DNS label). Every
// surface (CLI, chat, actions) checks ids with it before asking anything.
func ValidClusterID(id string) bool {
	if len(id) == 0 || len(id) > 63 || strings.HasPrefix(id, "-") || strings.HasSuffix(id, "-") {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}
