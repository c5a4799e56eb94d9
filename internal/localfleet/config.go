package localfleet

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"gopkg.in/yaml.v3"
)

// Config describes the clusters of a local fleet. Zero values mean
// "use the default"; see DefaultConfig and the field comments.
type Config struct {
	Clusters []ClusterConfig `yaml:"clusters" json:"clusters"`
	// EC2 is what the fleet's EC2 accepts for provisioning and how long
	// its instances and volumes take to change state (ec2config.go).
	EC2 EC2Config `yaml:"ec2,omitempty" json:"ec2,omitempty"`
}

// ClusterConfig describes one simulated Kafka cluster.
type ClusterConfig struct {
	// ID names the cluster ("local-a"); it is used in ZooKeeper paths and
	// instance ids, so it is limited to lower-case letters, digits and '-'.
	ID string `yaml:"id" json:"id"`
	// Brokers is the broker count; broker ids are 1..Brokers. Default 3.
	Brokers int `yaml:"brokers" json:"brokers"`
	// Racks spreads the brokers over this many racks (broker.rack, named
	// like AWS availability zones: us-east-1a, us-east-1b, ...), broker id
	// i on rack (i-1) mod Racks; replicas are placed rack-aware. 0 means
	// no broker.rack.
	Racks int `yaml:"racks,omitempty" json:"racks,omitempty"`
	// BrokerPorts are the proxy (client-facing) ports, one per broker in id
	// order. Empty picks free ports. Ports are kept across stop/start.
	BrokerPorts []int `yaml:"brokerPorts,omitempty" json:"brokerPorts,omitempty"`
	// MinInsyncReplicas is the cluster's min.insync.replicas. Default 2
	// (capped at the broker count).
	MinInsyncReplicas int `yaml:"minInsyncReplicas" json:"minInsyncReplicas"`
	// Topics are created at start if missing. Nil means one topic
	// "events" with 8 partitions; an explicit empty list seeds nothing.
	Topics []TopicConfig `yaml:"topics" json:"topics"`
	Timing Timing        `yaml:"timing" json:"timing"`
	// AdminStorm models the controller's admin load (storm.go).
	AdminStorm AdminStormConfig `yaml:"adminStorm" json:"adminStorm"`
	// Volume is each broker host's data volume (hosts.go).
	Volume VolumeConfig `yaml:"volume" json:"volume"`
	// SegmentsPerBroker is how many log segments each broker holds; log
	// recovery after an unclean stop takes longer the more there are, and
	// each needs 2 memory maps (vm.max_map_count). Default 2000.
	SegmentsPerBroker int `yaml:"segmentsPerBroker,omitempty" json:"segmentsPerBroker,omitempty"`
	// SASL turns on SASL/SCRAM authentication on every broker listener.
	SASL SASLConfig `yaml:"sasl,omitempty" json:"sasl,omitempty"`
	// ACLs turns on ACL enforcement (kfake's authorizer; super users
	// bypass it). Requires SASL.
	ACLs bool `yaml:"acls,omitempty" json:"acls,omitempty"`
	// QuotaLeak turns on the quota-path heap leak (quota_leak.go) on
	// every broker: each throttled response retains old gen until the
	// broker restarts. Off by default.
	QuotaLeak QuotaLeakConfig `yaml:"quotaLeak,omitempty" json:"quotaLeak,omitempty"`
	// KRaft, when set, makes the cluster a KRaft cluster: controllers
	// instead of ZooKeeper (kraft_config.go). Nil: ZooKeeper mode.
	KRaft *KRaftConfig `yaml:"kraft,omitempty" json:"kraft,omitempty"`
}

// SASLConfig enables SASL/SCRAM on a cluster's listeners, with one seeded
// superuser that the fleet itself authenticates as. Further SCRAM users are
// created by clients (AlterUserScramCredentials) as on a real cluster.
type SASLConfig struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Mechanism is SCRAM-SHA-256 or SCRAM-SHA-512 (the default).
	Mechanism string `yaml:"mechanism,omitempty" json:"mechanism,omitempty"`
	Superuser string `yaml:"superuser,omitempty" json:"superuser,omitempty"`
	// SuperuserPassword is never logged nor served by the fleet API.
	SuperuserPassword string `yaml:"superuserPassword,omitempty" json:"-"`
}

// SCRAM mechanisms a cluster's SASL can use.
const (
	SCRAMSHA256 = "SCRAM-SHA-256"
	SCRAMSHA512 = "SCRAM-SHA-512"
)

// TopicConfig is a topic seeded at start.
type TopicConfig struct {
	Name       string `yaml:"name" json:"name"`
	Partitions int32  `yaml:"partitions" json:"partitions"`
	// ReplicationFactor defaults to 3 and is capped at the broker count.
	ReplicationFactor int16 `yaml:"replicationFactor" json:"replicationFactor"`
}

// Timing sets how long simulated broker transitions take. Zero means the
// default (suited to a demo); tests pass tiny values.
type Timing struct {
	// ControlledShutdown is the time a stopping broker takes between moving
	// its leadership away and leaving the cluster. Default 300ms.
	ControlledShutdown time.Duration `yaml:"controlledShutdown" json:"controlledShutdown"`
	// Startup is the time from start until the broker is registered in
	// ZooKeeper and serves clients. Default 500ms.
	Startup time.Duration `yaml:"startup" json:"startup"`
	// CatchUp is the time from registration until the broker is back in
	// the ISR of all its partitions. Default 1s.
	CatchUp time.Duration `yaml:"catchUp" json:"catchUp"`
	// CatchUpBytesPerSec is how fast a returning broker replicates what
	// was written to its partitions while it was away, on top of CatchUp.
	// Default 50 MiB/s.
	CatchUpBytesPerSec int64 `yaml:"catchUpBytesPerSec" json:"catchUpBytesPerSec"`
	// RecoveryPerSegment is the log recovery time per segment after an
	// unclean stop (2000 segments at 2ms: 4s). Zero means 2ms, applied
	// where it is used (faults.go).
	RecoveryPerSegment time.Duration `yaml:"recoveryPerSegment" json:"recoveryPerSegment"`
}

// Defaults applied by withDefaults.
const (
	defaultClusterID          = "local-a"
	defaultBrokers            = 3
	defaultMinInsyncReplicas  = 2
	defaultReplicationFactor  = 3
	defaultTopic              = "events"
	defaultTopicPartitions    = 8
	defaultControlledShutdown = 300 * time.Millisecond
	defaultStartup            = 500 * time.Millisecond
	defaultCatchUp            = time.Second
	defaultCatchUpBytesPerSec = 50 << 20
	maxBrokers                = 64
	maxRacks                  = 6 // availability zones of one region
	defaultSegmentsPerBroker  = 2000
	defaultRecoveryPerSegment = 2 * time.Millisecond
)

var (
	clusterIDPattern    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,46}[a-z0-9])?$`)
	topicPattern        = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	azPattern           = regexp.MustCompile(`^[a-z]{2}-[a-z]+-[0-9][a-z]$`)
	instanceTypePattern = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
)

// DefaultConfig is the fleet `make run` operates: "local-a", 3 brokers
// without racks, and "local-b", 6 brokers over 3 racks, each with the
// default topic and timing.
func DefaultConfig() Config {
	return Config{Clusters: []ClusterConfig{
		{ID: defaultClusterID},
		{ID: "local-b", Brokers: 6, Racks: 3},
	}}.withDefaults()
}

// LoadConfig reads a YAML fleet configuration, applies defaults and
// validates it. Unknown fields are rejected so a typo does not silently
// fall back to a default.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("localfleet: read config: %w", err)
	}
	var cfg Config
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("localfleet: parse config %s: %w", path, err)
	}
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return Config{}, fmt.Errorf("localfleet: config %s: %w", path, err)
	}
	return cfg, nil
}

// withDefaults returns a copy of c with every zero value replaced by its
// default. It never mutates c's slices.
func (c Config) withDefaults() Config {
	out := Config{Clusters: make([]ClusterConfig, len(c.Clusters)), EC2: c.EC2.withDefaults()}
	for i, cl := range c.Clusters {
		if cl.Brokers == 0 {
			cl.Brokers = defaultBrokers
		}
		if cl.MinInsyncReplicas == 0 {
			cl.MinInsyncReplicas = min(defaultMinInsyncReplicas, cl.Brokers)
		}
		if cl.Topics == nil {
			cl.Topics = []TopicConfig{{Name: defaultTopic, Partitions: defaultTopicPartitions}}
		} else {
			cl.Topics = append([]TopicConfig(nil), cl.Topics...)
		}
		for j := range cl.Topics {
			t := &cl.Topics[j]
			if t.Partitions == 0 {
				t.Partitions = defaultTopicPartitions
			}
			if t.ReplicationFactor == 0 {
				t.ReplicationFactor = defaultReplicationFactor
			}
			if cl.Brokers > 0 && int(t.ReplicationFactor) > cl.Brokers {
				t.ReplicationFactor = int16(cl.Brokers)
			}
		}
		cl.BrokerPorts = append([]int(nil), cl.BrokerPorts...)
		cl.Timing = cl.Timing.withDefaults()
		cl.AdminStorm = cl.AdminStorm.withDefaults()
		if cl.SegmentsPerBroker == 0 {
			cl.SegmentsPerBroker = defaultSegmentsPerBroker
		}
		cl.Volume = cl.Volume.withDefaults()
		if cl.SASL.Enabled && cl.SASL.Mechanism == "" {
			cl.SASL.Mechanism = SCRAMSHA512
		}
		if cl.KRaft != nil {
			k := cl.KRaft.withDefaults()
			cl.KRaft = &k
		}
		out.Clusters[i] = cl
	}
	return out
}

// rackOf is broker id's rack, "" without racks.
func (c ClusterConfig) rackOf(id int) string {
	if c.Racks <= 0 {
		return ""
	}
	return fmt.Sprintf("%s%c", AWSRegion, 'a'+rune((id-1)%c.Racks))
}

// Validate reports every problem in the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if len(c.Clusters) == 0 {
		errs = append(errs, errors.New("no clusters"))
	}
	ids := map[string]bool{}
	ports := map[int]string{}
	for i, cl := range c.Clusters {
		name := fmt.Sprintf("clusters[%d] %q", i, cl.ID)
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
		}
		switch {
		case !clusterIDPattern.MatchString(cl.ID):
			bad("id must be 1-48 lower-case letters, digits or '-'")
		case ids[cl.ID]:
			bad("duplicate id")
		}
		ids[cl.ID] = true
		if cl.Brokers < 1 || cl.Brokers > maxBrokers {
			bad("brokers must be 1..%d, got %d", maxBrokers, cl.Brokers)
		}
		if cl.Racks < 0 || cl.Racks > min(cl.Brokers, maxRacks) {
			bad("racks must be 0..%d, got %d", min(cl.Brokers, maxRacks), cl.Racks)
		}
		if len(cl.BrokerPorts) > 0 && len(cl.BrokerPorts) != cl.Brokers {
			bad("brokerPorts has %d ports for %d brokers", len(cl.BrokerPorts), cl.Brokers)
		}
		for _, p := range cl.BrokerPorts {
			if p < 1 || p > 65535 {
				bad("broker port %d out of range", p)
			} else if other, dup := ports[p]; dup {
				bad("broker port %d already used by cluster %q", p, other)
			}
			ports[p] = cl.ID
		}
		if cl.MinInsyncReplicas < 1 || cl.MinInsyncReplicas > cl.Brokers {
			bad("minInsyncReplicas must be 1..%d (brokers), got %d", cl.Brokers, cl.MinInsyncReplicas)
		}
		topics := map[string]bool{}
		for _, t := range cl.Topics {
			switch {
			case !topicPattern.MatchString(t.Name) || t.Name == "." || t.Name == "..":
				bad("invalid topic name %q", t.Name)
			case topics[t.Name]:
				bad("duplicate topic %q", t.Name)
			}
			topics[t.Name] = true
			if t.Partitions < 1 {
				bad("topic %q: partitions must be >= 1, got %d", t.Name, t.Partitions)
			}
			if t.ReplicationFactor < 1 {
				bad("topic %q: replicationFactor must be >= 1, got %d", t.Name, t.ReplicationFactor)
			}
		}
		if cl.Timing.ControlledShutdown < 0 || cl.Timing.Startup < 0 || cl.Timing.CatchUp < 0 || cl.Timing.CatchUpBytesPerSec < 0 || cl.Timing.RecoveryPerSegment < 0 {
			bad("timing durations must not be negative")
		}
		if err := cl.Volume.validate(); err != nil {
			bad("%v", err)
		}
		if err := cl.AdminStorm.validate(); err != nil {
			bad("%v", err)
		}
		if cl.SASL.Enabled {
			if cl.SASL.Mechanism != SCRAMSHA256 && cl.SASL.Mechanism != SCRAMSHA512 {
				bad("sasl.mechanism must be %s or %s, got %q", SCRAMSHA256, SCRAMSHA512, cl.SASL.Mechanism)
			}
			if cl.SASL.Superuser == "" || cl.SASL.SuperuserPassword == "" {
				bad("sasl needs superuser and superuserPassword")
			}
		}
		if cl.ACLs && !cl.SASL.Enabled {
			bad("acls needs sasl.enabled (the fleet authenticates as the superuser)")
		}
		if cl.SegmentsPerBroker < 0 {
			bad("segmentsPerBroker must not be negative, got %d", cl.SegmentsPerBroker)
		}
		if cl.KRaft != nil {
			for _, err := range cl.KRaft.validate() {
				bad("%v", err)
			}
			for _, p := range cl.KRaft.ControllerPorts {
				if p < 1 || p > 65535 {
					bad("controller port %d out of range", p)
				} else if other, dup := ports[p]; dup {
					bad("controller port %d already used by cluster %q", p, other)
				}
				ports[p] = cl.ID
			}
		}
		if cl.QuotaLeak.BytesPerThrottle < 0 {
			bad("quotaLeak.bytesPerThrottle must not be negative, got %d", cl.QuotaLeak.BytesPerThrottle)
		}
	}
	if err := c.EC2.validate(c.Clusters); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
