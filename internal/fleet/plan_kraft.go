package fleet

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
)

// A KRaft plan (issue #15): the cluster gets dedicated controllers on hosts
// of their own instead of a ZooKeeper ensemble. Kafka 4 has no ZooKeeper,
// so every new cluster on it is KRaft; 3.9 is the first release whose
// KRaft mode kfleet provisions (the bridge release the migration targets
// too).

// KRaftPlan is a plan's KRaft part.
type KRaftPlan struct {
	// Controllers is the quorum's size: 3 or 5 (default 3).
	Controllers int `json:"controllers,omitempty" yaml:"controllers,omitempty"`
	// MetadataVersion is the metadata.version the controllers format the
	// log with, e.g. "3.9-IV0" or a release like "4.0" (its latest
	// level); default: the latest level the plan's Kafka version
	// supports.
	MetadataVersion string `json:"metadataVersion,omitempty" yaml:"metadataVersion,omitempty"`
	// InstanceType is the controllers' hosts' (default: the service
	// plan's ZooKeeper instance type: a controller is as small a node).
	InstanceType string `json:"instanceType,omitempty" yaml:"instanceType,omitempty"`
}

// ControllerIDBase is the first controller's node id: controllers are
// numbered 3000, 3001, ..., far from the brokers' 1..MaxPlanBrokers, as
// the local fleet numbers them.
const ControllerIDBase = 3000

// kraftMinMajor, kraftMinMinor is the oldest release a new KRaft cluster
// runs.
const kraftMinMajor, kraftMinMinor = 3, 9

// IsKRaft reports whether the plan makes a KRaft cluster.
func (p ClusterPlan) IsKRaft() bool { return p.KRaft != nil }

// withKRaftDefaults fills a KRaft plan's zero fields: 3 controllers, the
// latest metadata.version the Kafka version supports (unknown versions are
// left for Validate), the service plan's small instance type.
func (p ClusterPlan) withKRaftDefaults(sp ServicePlan, known bool) ClusterPlan {
	if p.KRaft == nil {
		return p
	}
	k := *p.KRaft
	if k.Controllers == 0 {
		k.Controllers = 3
	}
	if k.InstanceType == "" && known {
		k.InstanceType = sp.ZooKeeperInstanceType
	}
	if k.MetadataVersion == "" {
		if v, err := ParseKafkaVersion(p.KafkaVersion); err == nil {
			if m, ok := LatestMetadataVersionOf(v); ok {
				k.MetadataVersion = m.Name
			}
		}
	}
	p.KRaft = &k
	return p
}

// LatestMetadataVersionOf is the newest metadata.version release v's
// nodes support; false for a release older than every level.
func LatestMetadataVersionOf(v KafkaVersion) (MetadataVersion, bool) {
	var out MetadataVersion
	found := false
	for _, m := range MetadataVersions() {
		if !m.Release.After(KafkaVersion{Major: v.Major, Minor: v.Minor}) {
			out, found = m, true
		}
	}
	return out, found
}

// validateKRaft checks the plan's KRaft part and its Kafka version (the
// version's ZooKeeper check does not apply: a KRaft cluster needs none).
// p has its defaults.
func (p ClusterPlan) validateKRaft() []error {
	var errs []error
	v, verr := ParseKafkaVersion(p.KafkaVersion)
	if verr != nil {
		errs = append(errs, fmt.Errorf("kafkaVersion: %w", verr))
	} else if v.Major < kraftMinMajor || v.Major == kraftMinMajor && v.Minor < kraftMinMinor {
		errs = append(errs, fmt.Errorf("kafkaVersion %s: a new KRaft cluster runs %d.%d or later", v, kraftMinMajor, kraftMinMinor))
	}
	k := p.KRaft
	if k.Controllers != 3 && k.Controllers != 5 {
		errs = append(errs, fmt.Errorf("kraft.controllers %d: want 3 or 5 (an even count adds no fault tolerance, 1 has none, 7 slows every commit)", k.Controllers))
	}
	if k.InstanceType != "" && !instanceTypePattern.MatchString(k.InstanceType) {
		errs = append(errs, fmt.Errorf("kraft.instanceType %q: not an instance type like m5.xlarge", k.InstanceType))
	}
	switch m, err := ParseMetadataVersion(k.MetadataVersion); {
	case k.MetadataVersion == "" && verr == nil:
		errs = append(errs, fmt.Errorf("kraft.metadataVersion: Kafka %s supports no known level", v))
	case k.MetadataVersion == "":
	case err != nil:
		errs = append(errs, fmt.Errorf("kraft.metadataVersion: %w", err))
	case verr == nil && m.Release.After(KafkaVersion{Major: v.Major, Minor: v.Minor}):
		errs = append(errs, fmt.Errorf("kraft.metadataVersion %s: Kafka %s does not support it (it needs %d.%d)", m, v, m.Release.Major, m.Release.Minor))
	case m.Release.Major < kraftMinMajor || m.Release.Major == kraftMinMajor && m.Release.Minor < kraftMinMinor:
		errs = append(errs, fmt.Errorf("kraft.metadataVersion %s: a new KRaft cluster starts at %d.%d-IV0 or later", m, kraftMinMajor, kraftMinMinor))
	}
	return errs
}

// ControllerIDs are the plan's controllers' node ids, ControllerIDBase on;
// none for a ZooKeeper plan.
func (p ClusterPlan) ControllerIDs() []int32 {
	if p.KRaft == nil {
		return nil
	}
	n := p.KRaft.Controllers
	if n == 0 {
		n = 3
	}
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(ControllerIDBase + i)
	}
	return ids
}

// ControllerZone is controller id's zone: round-robin over the plan's
// zones from the first controller, so three zones hold one controller
// each (five: two, two and one) and a zone's loss keeps a majority.
func (p ClusterPlan) ControllerZone(id int32) string {
	return p.AvailabilityZones[int(id-ControllerIDBase)%len(p.AvailabilityZones)]
}

// kraftFingerprint is the KRaft part of a plan's fingerprint: "" for a
// ZooKeeper plan, so their fingerprints (and the hosts tagged with them)
// are what they were before KRaft plans existed.
func (p ClusterPlan) kraftFingerprint() string {
	if p.KRaft == nil {
		return ""
	}
	return "|kraft:" + strconv.Itoa(p.KRaft.Controllers) + ":" + strconv.Quote(p.KRaft.MetadataVersion) + ":" + strconv.Quote(p.KRaft.InstanceType)
}

// QuorumVoters is controller.quorum.voters, "<id>@<host>:<port>,...", in
// id order, from each controller's address.
func QuorumVoters(ids []int32, addrs map[int32]string) (string, error) {
	out := ""
	for i, id := range ids {
		a, ok := addrs[id]
		if !ok || a == "" {
			return "", fmt.Errorf("controller %d: no address for the quorum's voters", id)
		}
		if i > 0 {
			out += ","
		}
		out += strconv.Itoa(int(id)) + "@" + a
	}
	if out == "" {
		return "", errors.New("no controllers for the quorum's voters")
	}
	return out, nil
}

// ControllerPort is the CONTROLLER listener's port kfleet configures
// (Kafka's convention); controller.quorum.voters names each controller's
// host with it.
const ControllerPort = 9093

// KafkaClusterID is a new KRaft cluster's cluster.id (what kafka-storage
// format writes into every node's meta.properties): 16 bytes in URL-safe
// base64 without padding, as Kafka's Uuid prints, derived from seed (the
// provisioning's first run and the cluster id), so every retry and every
// node of one provisioning gets the same id and another provisioning
// another.
func KafkaClusterID(seed string) string {
	sum := sha256.Sum256([]byte("kafka-cluster-id/" + seed))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// KRaftBrokerConfig is what kfleet-ConfigureBroker writes into a KRaft
// broker's server.properties that kfleet checks afterwards through the
// Kafka protocol: its identity and role, rack and the safe defaults (no
// zookeeper.connect).
func KRaftBrokerConfig(broker int32, rack string) map[string]string {
	c := BrokerConfig(broker, rack, "")
	delete(c, "zookeeper.connect")
	delete(c, "broker.id")
	c["node.id"] = strconv.Itoa(int(broker))
	c["process.roles"] = "broker"
	return c
}
