package fleet

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// ClusterPlan is what an operator asks kfleet to create: a managed
// cluster's shape (OPERATIONS.md "Provisioning and hosts"). Zero fields
// take the service plan's defaults (WithDefaults). It holds no secret: it
// is the provisioning workflow's input.
type ClusterPlan struct {
	ID string `json:"id" yaml:"id"`
	// Brokers is how many brokers to launch, ids 1..Brokers.
	Brokers int `json:"brokers" yaml:"brokers"`
	// AvailabilityZones are where brokers go, round-robin (broker.rack
	// is the zone); the ZooKeeper nodes spread over them too.
	AvailabilityZones []string `json:"availabilityZones" yaml:"availabilityZones"`
	// InstanceType and VolumeGiB are each broker's host and gp3 data
	// volume; ZooKeeperInstanceType the ensemble's hosts.
	InstanceType          string `json:"instanceType,omitempty" yaml:"instanceType,omitempty"`
	VolumeGiB             int32  `json:"volumeGiB,omitempty" yaml:"volumeGiB,omitempty"`
	ZooKeeperInstanceType string `json:"zookeeperInstanceType,omitempty" yaml:"zookeeperInstanceType,omitempty"`
	// KafkaVersion is the release the brokers run (ZooKeeper mode: 3.x).
	KafkaVersion string `json:"kafkaVersion" yaml:"kafkaVersion"`
	// Plan names the service plan whose defaults and limits apply
	// (ServicePlans); default "standard".
	Plan string `json:"plan,omitempty" yaml:"plan,omitempty"`
	// Health is the registered cluster's health policy (zero: the
	// defaults).
	Health HealthPolicy `json:"health,omitzero" yaml:"health,omitempty"`
	// KRaft, when set, makes a KRaft cluster: dedicated controllers
	// instead of a ZooKeeper ensemble (plan_kraft.go).
	KRaft *KRaftPlan `json:"kraft,omitempty" yaml:"kraft,omitempty"`
}

// ServicePlan is a kind of managed cluster kfleet sells: its defaults and
// its limits. Every plan writes the managed cluster's safe defaults.
type ServicePlan struct {
	Name                  string `json:"name"`
	InstanceType          string `json:"instanceType"`
	ZooKeeperInstanceType string `json:"zookeeperInstanceType"`
	VolumeGiB             int32  `json:"volumeGiB"`
	// MinVolumeGiB is the smallest data volume the plan allows: below
	// it a broker's disk fills before its first expansion's cool-down
	// ends.
	MinVolumeGiB int32 `json:"minVolumeGiB"`
}

// The managed cluster's safe defaults (OPERATIONS.md), written into every
// broker's server.properties by kfleet-ConfigureBroker.
const (
	DefaultReplicationFactor = 3
	DefaultNumPartitions     = 8
	// ZooKeeperNodes is the ensemble size: a majority survives one loss.
	ZooKeeperNodes = 3
	// MaxPlanBrokers bounds a plan (the payloads of a 50-broker cluster
	// are what kfleet is sized for).
	MaxPlanBrokers = 64
	// MaxPlanClusterID is the longest cluster id a host accepts: the SSM
	// documents' ClusterId pattern.
	MaxPlanClusterID = 48
	// DefaultServicePlan is the plan of a ClusterPlan that names none.
	DefaultServicePlan = "standard"
)

// ServicePlans are the plans kfleet knows, in the order help lists them.
func ServicePlans() []ServicePlan {
	return []ServicePlan{
		{Name: "standard", InstanceType: "m5.xlarge", ZooKeeperInstanceType: "t3.medium", VolumeGiB: 500, MinVolumeGiB: 100},
		{Name: "memory", InstanceType: "r5.xlarge", ZooKeeperInstanceType: "t3.large", VolumeGiB: 1000, MinVolumeGiB: 500},
	}
}

// ServicePlanNamed finds a service plan by name.
func ServicePlanNamed(name string) (ServicePlan, bool) {
	for _, sp := range ServicePlans() {
		if sp.Name == name {
			return sp, true
		}
	}
	return ServicePlan{}, false
}

var (
	zonePattern         = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9][a-z]$`)
	instanceTypePattern = regexp.MustCompile(`^[a-z][a-z0-9-]*\.[a-z0-9]+$`)
)

// WithDefaults fills the plan's zero fields from its service plan (an
// unknown plan is left for Validate to refuse).
func (p ClusterPlan) WithDefaults() ClusterPlan {
	if p.Plan == "" {
		p.Plan = DefaultServicePlan
	}
	sp, ok := ServicePlanNamed(p.Plan)
	if !ok {
		return p
	}
	if p.InstanceType == "" {
		p.InstanceType = sp.InstanceType
	}
	if p.ZooKeeperInstanceType == "" {
		p.ZooKeeperInstanceType = sp.ZooKeeperInstanceType
	}
	if p.VolumeGiB == 0 {
		p.VolumeGiB = sp.VolumeGiB
	}
	p.AvailabilityZones = slices.Clone(p.AvailabilityZones)
	return p.withKRaftDefaults(sp, ok)
}

// Validate refuses a plan on its face — before anything is asked of EC2,
// let alone launched — with every reason at once. Whether EC2 offers its
// zones and types, and whether its id is free, are checked against the
// account by the provisioning workflow's first step.
func (p ClusterPlan) Validate() error {
	p = p.WithDefaults()
	var errs []error
	switch {
	case !ValidClusterID(p.ID):
		errs = append(errs, fmt.Errorf("cluster id %q: want 1-%d characters of a-z, 0-9 and '-', not starting or ending with '-'", p.ID, MaxPlanClusterID))
	case len(p.ID) > MaxPlanClusterID:
		errs = append(errs, fmt.Errorf("cluster id %q: at most %d characters (what a broker host's configuration accepts)", p.ID, MaxPlanClusterID))
	}
	sp, known := ServicePlanNamed(p.Plan)
	if !known {
		errs = append(errs, fmt.Errorf("plan %q: unknown (known: %s)", p.Plan, strings.Join(servicePlanNames(), ", ")))
	}
	switch {
	case p.Brokers < DefaultReplicationFactor:
		errs = append(errs, fmt.Errorf("brokers %d: fewer than the default replication factor %d (a topic created with the defaults could not be placed)", p.Brokers, DefaultReplicationFactor))
	case p.Brokers > MaxPlanBrokers:
		errs = append(errs, fmt.Errorf("brokers %d: at most %d", p.Brokers, MaxPlanBrokers))
	}
	if len(p.AvailabilityZones) == 0 {
		errs = append(errs, errors.New("availabilityZones: at least one zone is required (brokers spread round-robin over them; 3 survive a zone's loss)"))
	}
	for i, az := range p.AvailabilityZones {
		if !zonePattern.MatchString(az) {
			errs = append(errs, fmt.Errorf("availabilityZones: %q is not a zone name like us-east-1a", az))
		}
		if slices.Contains(p.AvailabilityZones[:i], az) {
			errs = append(errs, fmt.Errorf("availabilityZones: %q listed twice", az))
		}
	}
	for _, it := range []struct{ field, v string }{{"instanceType", p.InstanceType}, {"zookeeperInstanceType", p.ZooKeeperInstanceType}} {
		if it.v != "" && !instanceTypePattern.MatchString(it.v) {
			errs = append(errs, fmt.Errorf("%s %q: not an instance type like m5.xlarge", it.field, it.v))
		}
	}
	switch {
	case known && p.VolumeGiB < sp.MinVolumeGiB:
		errs = append(errs, fmt.Errorf("volumeGiB %d: under plan %s's minimum of %d GiB", p.VolumeGiB, p.Plan, sp.MinVolumeGiB))
	case p.VolumeGiB > MaxVolumeGiB:
		errs = append(errs, fmt.Errorf("volumeGiB %d: at most %d (gp3's limit)", p.VolumeGiB, MaxVolumeGiB))
	}
	if p.KRaft != nil {
		errs = append(errs, p.validateKRaft()...)
	} else if v, err := ParseKafkaVersion(p.KafkaVersion); err != nil {
		errs = append(errs, fmt.Errorf("kafkaVersion: %w", err))
	} else if err := v.ZooKeeperMode(); err != nil {
		errs = append(errs, fmt.Errorf("kafkaVersion: %w (or ask for a KRaft cluster: kraft: {controllers: 3})", err))
	}
	if err := p.Health.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster plan %q: %w: %w", p.ID, ErrRefused, err)
	}
	return nil
}

func servicePlanNames() []string {
	var names []string
	for _, sp := range ServicePlans() {
		names = append(names, sp.Name)
	}
	return names
}

// BrokerIDs are the plan's broker ids, 1..Brokers.
func (p ClusterPlan) BrokerIDs() []int32 {
	ids := make([]int32, p.Brokers)
	for i := range ids {
		ids[i] = int32(i + 1)
	}
	return ids
}

// BrokerZone is broker id's zone: the zones round-robin from broker 1.
func (p ClusterPlan) BrokerZone(id int32) string {
	return p.AvailabilityZones[int(id-1)%len(p.AvailabilityZones)]
}

// ZooKeeperZone is ZooKeeper node n's zone (n from 1): round-robin too,
// so three zones hold one node each and a zone's loss keeps a majority.
func (p ClusterPlan) ZooKeeperZone(n int) string {
	return p.AvailabilityZones[(n-1)%len(p.AvailabilityZones)]
}

// Fingerprint names the plan as planned (its defaults filled in): launches
// and volumes are tagged with it, so a run of the same plan adopts what an
// earlier one launched and a different plan never does. A hash of its
// fields in a fixed order (workflow code computes it: no map, no JSON).
func (p ClusterPlan) Fingerprint() string {
	p = p.WithDefaults()
	canonical := fmt.Sprintf("%q|%d|%q|%q|%d|%q|%q|%q|%+v", p.ID, p.Brokers, strings.Join(p.AvailabilityZones, ","), p.InstanceType,
		p.VolumeGiB, p.ZooKeeperInstanceType, p.KafkaVersion, p.Plan, p.Health) + p.kraftFingerprint()
	sum := sha256.Sum256([]byte(canonical))
	return hex.EncodeToString(sum[:6])
}

// InterBrokerProtocol is the protocol a new cluster on the plan's version
// speaks: its major.minor.
func (p ClusterPlan) InterBrokerProtocol() string {
	v, err := ParseKafkaVersion(p.KafkaVersion)
	if err != nil {
		return ""
	}
	return v.Protocol().String()
}

// BrokerConfig is what kfleet-ConfigureBroker writes into a broker's
// server.properties that kfleet checks afterwards through the Kafka
// protocol (DescribeConfigs): its identity, rack, ensemble and the
// managed cluster's safe defaults.
func BrokerConfig(broker int32, rack, zookeeperConnect string) map[string]string {
	return map[string]string{
		"broker.id":                      strconv.Itoa(int(broker)),
		"broker.rack":                    rack,
		"zookeeper.connect":              zookeeperConnect,
		"default.replication.factor":     strconv.Itoa(DefaultReplicationFactor),
		"min.insync.replicas":            strconv.Itoa(DefaultMinInsyncReplicas),
		"num.partitions":                 strconv.Itoa(DefaultNumPartitions),
		"unclean.leader.election.enable": "false",
		"auto.create.topics.enable":      "false",
	}
}

// ConfigMismatches lists, in key order, each key of want that got lacks
// or holds another value.
func ConfigMismatches(want, got map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s missing (want %q)", k, want[k]))
		case g != want[k]:
			out = append(out, fmt.Sprintf("%s=%q (want %q)", k, g, want[k]))
		}
	}
	return out
}
