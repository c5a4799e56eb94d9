package fleet

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"time"
)

// KRaft timing of OPERATIONS.md, the settings kfleet provisions and the
// rules assume: a broker that misses heartbeats for the session timeout is
// fenced, and sensing must call an unclean loss within the session timeout
// plus UncleanLossSlack.
const (
	BrokerHeartbeatInterval = 2 * time.Second
	BrokerSessionTimeout    = 9 * time.Second
	QuorumFetchTimeout      = 2 * time.Second
	QuorumElectionTimeout   = 1 * time.Second
	// UncleanLossSlack is what sensing may add to the session timeout
	// before it reports a fenced broker as lost (issue #15: 9 s + 2 s).
	UncleanLossSlack = 2 * time.Second
)

// ClusterMode is how a cluster keeps its metadata.
type ClusterMode string

const (
	// ModeZooKeeper: metadata in ZooKeeper, a broker is the controller.
	ModeZooKeeper ClusterMode = "zookeeper"
	// ModeKRaft: metadata in the KRaft quorum of dedicated controllers.
	ModeKRaft ClusterMode = "kraft"
	// ModeMigrating: a ZooKeeper cluster in one of the KIP-866 phases
	// (KRaftSpec.Phase); both ZooKeeper and the controllers are in use.
	ModeMigrating ClusterMode = "migrating"
)

// KRaftSpec is what kfleet knows of a cluster's KRaft side. A spec without
// one (every spec written before KRaft support) is a ZooKeeper cluster.
type KRaftSpec struct {
	// Mode defaults to kraft when empty: a spec that carries a KRaftSpec
	// and says nothing else is a KRaft cluster.
	Mode ClusterMode `json:"mode,omitempty" yaml:"mode,omitempty"`
	// Phase is the migration phase while Mode is migrating (0-4).
	Phase MigrationPhase `json:"phase,omitempty" yaml:"phase,omitempty"`
	// Controllers are the quorum's dedicated controllers (3 or 5).
	Controllers []ControllerSpec `json:"controllers,omitempty" yaml:"controllers,omitempty"`
	// QuorumBootstrap is controller.quorum.bootstrap.servers: host:port of
	// the controllers' listeners.
	QuorumBootstrap []string `json:"quorumBootstrap,omitempty" yaml:"quorumBootstrap,omitempty"`
	// MetadataVersion is the metadata.version the cluster should be
	// finalized at, e.g. "3.9-IV0"; empty: whatever it runs.
	MetadataVersion string `json:"metadataVersion,omitempty" yaml:"metadataVersion,omitempty"`
}

// ControllerSpec ties a controller's node id to the host it runs on.
type ControllerSpec struct {
	ID         int32  `json:"id" yaml:"id"`
	InstanceID string `json:"instanceId" yaml:"instanceId"`
	Rack       string `json:"rack,omitempty" yaml:"rack,omitempty"`
}

// Mode is how the cluster keeps its metadata: ZooKeeper without a KRaft
// spec, else the spec's mode (kraft when empty).
func (s ClusterSpec) Mode() ClusterMode {
	switch {
	case s.KRaft == nil:
		return ModeZooKeeper
	case s.KRaft.Mode == "":
		return ModeKRaft
	default:
		return s.KRaft.Mode
	}
}

// ControllerIDs returns the spec's controller node ids in ascending order,
// none for a ZooKeeper cluster.
func (s ClusterSpec) ControllerIDs() []int32 {
	if s.KRaft == nil {
		return nil
	}
	ids := make([]int32, 0, len(s.KRaft.Controllers))
	for _, c := range s.KRaft.Controllers {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids
}

// Controller returns the spec of controller id.
func (s ClusterSpec) Controller(id int32) (ControllerSpec, bool) {
	if s.KRaft == nil {
		return ControllerSpec{}, false
	}
	i := slices.IndexFunc(s.KRaft.Controllers, func(c ControllerSpec) bool { return c.ID == id })
	if i < 0 {
		return ControllerSpec{}, false
	}
	return s.KRaft.Controllers[i], true
}

// HasControllers reports whether the cluster runs KRaft controllers: a
// KRaft cluster, or a migrating one from phase 1 on.
func (s ClusterSpec) HasControllers() bool {
	switch s.Mode() {
	case ModeKRaft:
		return true
	case ModeMigrating:
		return s.KRaft.Phase >= PhaseControllers
	}
	return false
}

// RegistersWithKRaft reports whether the cluster's brokers are sensed
// through the KRaft controllers' fencing rather than ZooKeeper: a KRaft
// cluster's, and a migrating one's from dual-write on (phase 2 done), when
// every broker has registered with the controllers and phase 3 takes them
// out of ZooKeeper one by one.
func (s ClusterSpec) RegistersWithKRaft() bool {
	switch s.Mode() {
	case ModeKRaft:
		return true
	case ModeMigrating:
		return s.KRaft.Phase >= PhaseDualWrite
	}
	return false
}

// InSpec reports whether node is one of the spec's brokers or controllers:
// a registered node that is neither is a ghost (CheckFinalize).
func (s ClusterSpec) InSpec(node int32) bool {
	_, broker := s.Broker(node)
	_, controller := s.Controller(node)
	return broker || controller
}

// validateMode checks the ZooKeeper connect string and the KRaft spec
// against the cluster's mode; Validate joins what it returns.
func (s ClusterSpec) validateMode() []error {
	var errs []error
	mode := s.Mode()
	switch mode {
	case ModeZooKeeper, ModeMigrating:
		if s.ZooKeeper == "" {
			errs = append(errs, fmt.Errorf("zookeeper: connect string is required for a %s cluster", mode))
		}
	case ModeKRaft:
		if s.ZooKeeper != "" {
			errs = append(errs, fmt.Errorf("zookeeper: a KRaft cluster has no ZooKeeper, got connect string %q", s.ZooKeeper))
		}
	default:
		errs = append(errs, fmt.Errorf("kraft.mode %q: want %s, %s or %s", mode, ModeZooKeeper, ModeKRaft, ModeMigrating))
	}
	k := s.KRaft
	if k == nil {
		return errs
	}
	if k.Phase != PhasePreflight && mode != ModeMigrating {
		errs = append(errs, fmt.Errorf("kraft.phase %d: only a migrating cluster has a migration phase", k.Phase))
	}
	if mode == ModeMigrating && !k.Phase.Valid() {
		errs = append(errs, fmt.Errorf("kraft.phase %d: want 0 to %d", k.Phase, PhaseFinalize))
	}
	// Controllers are required once they exist (KRaft, or a migration past
	// preflight) and allowed while a migration plans them; a ZooKeeper
	// cluster outside a migration has none.
	needControllers := mode == ModeKRaft || mode == ModeMigrating && k.Phase >= PhaseControllers
	switch {
	case mode == ModeZooKeeper && len(k.Controllers) > 0:
		errs = append(errs, errors.New("kraft.controllers: a ZooKeeper cluster carries controllers only while migrating"))
	case needControllers || len(k.Controllers) > 0:
		errs = append(errs, s.validateControllers()...)
	}
	if k.MetadataVersion != "" {
		if _, err := ParseMetadataVersion(k.MetadataVersion); err != nil {
			errs = append(errs, fmt.Errorf("kraft.metadataVersion: %w", err))
		}
	}
	return errs
}

// validateControllers checks the quorum's shape: 3 or 5 dedicated
// controllers (an even count adds no fault tolerance, 1 has none, 7 slows
// every commit), distinct ids that no broker uses, and a bootstrap list.
func (s ClusterSpec) validateControllers() []error {
	var errs []error
	k := s.KRaft
	if n := len(k.Controllers); n != 3 && n != 5 {
		errs = append(errs, fmt.Errorf("kraft.controllers: want 3 or 5 controllers, got %d", n))
	}
	seen := make(map[int32]bool, len(k.Controllers))
	for _, c := range k.Controllers {
		if c.ID < 0 {
			errs = append(errs, fmt.Errorf("controller %d: id must not be negative", c.ID))
		}
		if seen[c.ID] {
			errs = append(errs, fmt.Errorf("controller %d: listed twice", c.ID))
		}
		seen[c.ID] = true
		if _, ok := s.Broker(c.ID); ok {
			errs = append(errs, fmt.Errorf("controller %d: id is also a broker's; controllers are dedicated nodes with their own ids", c.ID))
		}
		if c.InstanceID == "" {
			errs = append(errs, fmt.Errorf("controller %d: instanceId is required", c.ID))
		}
	}
	if len(k.QuorumBootstrap) == 0 {
		errs = append(errs, errors.New("kraft.quorumBootstrap: at least one controller address is required"))
	}
	for _, addr := range k.QuorumBootstrap {
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("kraft.quorumBootstrap %q: want host:port", addr))
		}
	}
	return errs
}
