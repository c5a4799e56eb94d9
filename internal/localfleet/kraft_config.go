package localfleet

import (
	"fmt"
	"time"

	"github.com/kfleet/kfleet/internal/localfleet/kraft"
)

// KRaftConfig makes a cluster a KRaft cluster: controller nodes on their
// own listeners form the metadata quorum instead of ZooKeeper, and the
// brokers register and heartbeat with its active controller (kraft.go).
//
//	kraft:
//	  controllers: 3
//	  metadataVersion: 3.9-IV0
//	  timing: {heartbeat: 2s, session: 9s, fetchTimeout: 2s, election: 1s}
type KRaftConfig struct {
	// Controllers is the voter count: 3 or 5. Controller node ids are
	// 3000, 3001, ... (kraftControllerBase).
	Controllers int `yaml:"controllers" json:"controllers"`
	// MetadataVersion is the finalized metadata.version the cluster is
	// formatted with. Default 3.9-IV0.
	MetadataVersion string `yaml:"metadataVersion,omitempty" json:"metadataVersion,omitempty"`
	// Version is the Kafka version every node runs at the start (a
	// broker's kfleet-StartBroker version replaces it). Default 3.9.0;
	// it decides the metadata.version levels a node supports.
	Version string `yaml:"version,omitempty" json:"version,omitempty"`
	// ControllerPorts are the controllers' listener ports in id order;
	// empty picks free ports, kept across restarts.
	ControllerPorts []int       `yaml:"controllerPorts,omitempty" json:"controllerPorts,omitempty"`
	Timing          KRaftTiming `yaml:"timing,omitempty" json:"timing,omitempty"`

	// prov is set for a quorum formed by provisioned controllers
	// (controller_provision.go) rather than configured ones.
	prov *provisionedQuorum
}

// KRaftTiming is the quorum's and the brokers' timing; zero means
// OPERATIONS.md's production value. Tests pass fast ones.
type KRaftTiming struct {
	Heartbeat    time.Duration `yaml:"heartbeat,omitempty" json:"heartbeat,omitempty"`       // broker.heartbeat.interval.ms, 2s
	Session      time.Duration `yaml:"session,omitempty" json:"session,omitempty"`           // broker.session.timeout.ms, 9s
	FetchTimeout time.Duration `yaml:"fetchTimeout,omitempty" json:"fetchTimeout,omitempty"` // controller.quorum.fetch.timeout.ms, 2s
	Election     time.Duration `yaml:"election,omitempty" json:"election,omitempty"`         // controller.quorum.election.timeout.ms, 1s
}

const (
	kraftControllerBase     = 3000
	defaultKRaftMV          = "3.9-IV0"
	defaultKRaftVersion     = "3.9.0"
	defaultKRaftHeartbeat   = 2 * time.Second
	defaultKRaftSession     = 9 * time.Second
	defaultKRaftFetch       = 2 * time.Second
	defaultKRaftElection    = time.Second
	kraftClusterMetadata    = "__cluster_metadata"
	kraftControllerListener = "CONTROLLER"
)

func (k KRaftConfig) withDefaults() KRaftConfig {
	if k.MetadataVersion == "" {
		k.MetadataVersion = defaultKRaftMV
	}
	if k.Version == "" {
		k.Version = defaultKRaftVersion
	}
	k.ControllerPorts = append([]int(nil), k.ControllerPorts...)
	t := &k.Timing
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&t.Heartbeat, defaultKRaftHeartbeat}, {&t.Session, defaultKRaftSession}, {&t.FetchTimeout, defaultKRaftFetch}, {&t.Election, defaultKRaftElection}} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	return k
}

func (k KRaftConfig) validate() []error {
	var errs []error
	if k.Controllers != 3 && k.Controllers != 5 {
		errs = append(errs, fmt.Errorf("kraft.controllers must be 3 or 5, got %d", k.Controllers))
	}
	mv, ok := kraft.MetadataVersionLevel(k.MetadataVersion)
	if !ok {
		errs = append(errs, fmt.Errorf("kraft.metadataVersion %q is not a modelled metadata.version (3.3-IV3 .. 4.0-IV3)", k.MetadataVersion))
	}
	if r, ok := kraft.SupportedBy(k.Version); !ok {
		errs = append(errs, fmt.Errorf("kraft.version %q: only Kafka 3.7 to 4.0 are modelled", k.Version))
	} else if mv > r.Max {
		errs = append(errs, fmt.Errorf("kraft.metadataVersion %s is above what Kafka %s supports (%s)", k.MetadataVersion, k.Version, kraft.MetadataVersionName(r.Max)))
	}
	if len(k.ControllerPorts) > 0 && len(k.ControllerPorts) != k.Controllers {
		errs = append(errs, fmt.Errorf("kraft.controllerPorts has %d ports for %d controllers", len(k.ControllerPorts), k.Controllers))
	}
	t := k.Timing
	if t.Heartbeat <= 0 || t.Session <= 0 || t.FetchTimeout <= 0 || t.Election <= 0 {
		errs = append(errs, fmt.Errorf("kraft.timing durations must be positive"))
	} else if t.Session <= t.Heartbeat {
		errs = append(errs, fmt.Errorf("kraft.timing.session (%s) must exceed heartbeat (%s)", t.Session, t.Heartbeat))
	}
	return errs
}

// modelTiming is t as the quorum model takes it.
func (t KRaftTiming) modelTiming() kraft.Timing {
	return kraft.Timing{Heartbeat: t.Heartbeat, Session: t.Session, FetchTimeout: t.FetchTimeout, Election: t.Election}
}

// tick is how often the fleet advances the quorum model: fine enough
// that fencing and elections happen within a few percent of their
// timeouts.
func (t KRaftTiming) tick() time.Duration {
	return min(max(min(t.Heartbeat, t.FetchTimeout, t.Election)/10, 5*time.Millisecond), 100*time.Millisecond)
}
