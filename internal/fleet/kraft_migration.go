package fleet

import (
	"fmt"
	"slices"
	"strings"
)

// MigrationPhase is where a ZooKeeper cluster is in its migration to KRaft
// (KIP-866, OPERATIONS.md). Each phase is started by a human's approval,
// and weeks may pass between phases; until finalization every phase has a
// rollback.
type MigrationPhase int

const (
	// PhasePreflight: nothing changed yet; CheckPreflight must pass.
	PhasePreflight MigrationPhase = iota
	// PhaseControllers: controllers provisioned with
	// zookeeper.metadata.migration.enable.
	PhaseControllers
	// PhaseDualWrite: brokers rolled with the migration flag and the quorum
	// config; the KRaft leader took /controller, copied the metadata and
	// writes to both.
	PhaseDualWrite
	// PhaseBrokersKRaft: brokers rolled to process.roles=broker, node.id =
	// broker.id.
	PhaseBrokersKRaft
	// PhaseFinalize: the migration flag removed from the controllers and
	// the controllers rolled; no way back.
	PhaseFinalize
)

// Valid reports whether p is one of the phases 0-4.
func (p MigrationPhase) Valid() bool { return p >= PhasePreflight && p <= PhaseFinalize }

func (p MigrationPhase) String() string {
	switch p {
	case PhasePreflight:
		return "0-preflight"
	case PhaseControllers:
		return "1-controllers"
	case PhaseDualWrite:
		return "2-dual-write"
	case PhaseBrokersKRaft:
		return "3-brokers-kraft"
	case PhaseFinalize:
		return "4-finalize"
	}
	return fmt.Sprintf("phase-%d", int(p))
}

// CanRollBack reports whether the cluster can still go back from phase p
// to ZooKeeper: every phase before finalization can.
func (p MigrationPhase) CanRollBack() bool { return p.Valid() && p < PhaseFinalize }

// Rollback says what undoes phase p, as OPERATIONS.md lists it; a human
// reads it before approving a rollback.
func (p MigrationPhase) Rollback() string {
	switch p {
	case PhasePreflight:
		return "nothing to undo: preflight changes nothing"
	case PhaseControllers:
		return "remove the controllers"
	case PhaseDualWrite:
		return "stop the controllers, delete /controller and /migration in ZooKeeper, remove the migration and quorum configs from the brokers, roll the brokers; then remove the controllers"
	case PhaseBrokersKRaft:
		return "roll each broker back to ZooKeeper mode, then undo phase 2; only while ZooKeeper's controller epoch is above KRaft's"
	case PhaseFinalize:
		return "none: a finalized migration cannot be undone"
	}
	return "unknown phase"
}

// GatePreflight names the migration preflight's blockers.
const GatePreflight = "migration-preflight"

// migrationMajor.migrationMinor is the Kafka release line a cluster must
// run, on every broker and at its inter.broker.protocol.version, before
// migrating: the last line with both ZooKeeper mode and the migration.
const migrationMajor, migrationMinor = 3, 9

// PreflightFacts is what sensing found about a ZooKeeper cluster before its
// migration: gathered by activities, judged by CheckPreflight.
type PreflightFacts struct {
	// Versions is the Kafka release each broker runs, by broker id.
	Versions map[int32]KafkaVersion `json:"versions"`
	// Protocols is each broker's inter.broker.protocol.version as set.
	Protocols map[int32]string `json:"protocols"`
	// ClusterID is the id read from /cluster/id; the controllers are
	// formatted with it, so it must be known.
	ClusterID string `json:"clusterId"`
	// MetadataVersionChangePending: an upgrade or feature change that would
	// move metadata.version is queued or running.
	MetadataVersionChangePending bool `json:"metadataVersionChangePending,omitempty"`
	// LeftoverMigrationZnode: /migration exists in ZooKeeper from an earlier
	// attempt; a re-run on it has wiped metadata in the field.
	LeftoverMigrationZnode bool `json:"leftoverMigrationZnode,omitempty"`
}

// CheckPreflight returns every failed preflight check of OPERATIONS.md, each
// with its reason; none means phase 1 may be approved. brokers are the
// spec's broker ids: a broker without a known version fails too.
func CheckPreflight(brokers []int32, f PreflightFacts) []Blocker {
	var out []Blocker
	add := func(format string, args ...any) {
		out = append(out, Blocker{Gate: GatePreflight, Reason: fmt.Sprintf(format, args...)})
	}
	ids := slices.Clone(brokers)
	slices.Sort(ids)
	var wrongVersion, unknownVersion, wrongProtocol []string
	for _, id := range ids {
		v, ok := f.Versions[id]
		switch {
		case !ok:
			unknownVersion = append(unknownVersion, fmt.Sprint(id))
		case v.Major != migrationMajor || v.Minor != migrationMinor:
			wrongVersion = append(wrongVersion, fmt.Sprintf("%d runs %s", id, v))
		}
		p, err := ParseProtocolVersion(f.Protocols[id])
		if err != nil || p.Major != migrationMajor || p.Minor != migrationMinor {
			got := f.Protocols[id]
			if got == "" {
				got = "unknown"
			}
			wrongProtocol = append(wrongProtocol, fmt.Sprintf("%d is at %s", id, got))
		}
	}
	if len(unknownVersion) > 0 {
		add("Kafka version unknown on brokers %s: every broker must be known to run %d.%d.x", strings.Join(unknownVersion, ","), migrationMajor, migrationMinor)
	}
	if len(wrongVersion) > 0 {
		add("every broker must run Kafka %d.%d.x before migrating (upgrade first): broker %s", migrationMajor, migrationMinor, strings.Join(wrongVersion, ", broker "))
	}
	if len(wrongProtocol) > 0 {
		add("inter.broker.protocol.version must be %d.%d on every broker (finish the upgrade's protocol bump): broker %s", migrationMajor, migrationMinor, strings.Join(wrongProtocol, ", broker "))
	}
	if f.MetadataVersionChangePending {
		add("a metadata.version change is pending: let it finish or cancel it, none may run during the migration")
	}
	return append(out, CheckPreflightZnodes(f)...)
}

// CheckPreflightZnodes is the part of CheckPreflight ZooKeeper decides:
// phase 1 checks it again just before it formats the controllers.
func CheckPreflightZnodes(f PreflightFacts) []Blocker {
	var out []Blocker
	if f.ClusterID == "" {
		out = append(out, Blocker{Gate: GatePreflight, Reason: "cluster id unknown: /cluster/id is missing in ZooKeeper; the controllers must be formatted with it"})
	}
	if f.LeftoverMigrationZnode {
		out = append(out, Blocker{Gate: GatePreflight, Reason: "/migration exists in ZooKeeper from an earlier attempt: a re-run on it can wipe metadata; inspect and delete it first"})
	}
	return out
}

// OpImpact is what an operation does to a cluster, as far as a migration
// cares. Each operation kind declares its impact where it is registered
// (workflows/kinds.go), so this rule needs no list of kind names.
type OpImpact int

const (
	// ImpactUnknown is a kind that declared none: refused mid-migration,
	// so a kind that forgets is held, not let through.
	ImpactUnknown OpImpact = iota
	// ImpactAdmin: topics, tenants, quotas, checks: no node restarts.
	ImpactAdmin
	// ImpactBrokerRoll: restarts brokers with their current config.
	ImpactBrokerRoll
	// ImpactControllerRoll: restarts controllers with their current config.
	ImpactControllerRoll
	// ImpactRecovery: restarts or replaces a failed node in place.
	ImpactRecovery
	// ImpactBinaryUpgrade: rolls nodes onto another Kafka release.
	ImpactBinaryUpgrade
	// ImpactProtocolChange: moves inter.broker.protocol.version.
	ImpactProtocolChange
	// ImpactMetadataVersion: moves metadata.version (UpdateFeatures).
	ImpactMetadataVersion
	// ImpactMembership: adds or removes brokers or controllers.
	ImpactMembership
	// ImpactDelete: deletes the cluster.
	ImpactDelete
	// ImpactMigration: the migration's own phases and rollbacks; their
	// kind checks the phase order itself (NextMigrationStep).
	ImpactMigration
)

// AllowedInPhase decides whether the entity may run an operation of impact
// on a cluster in migration phase (a cluster not migrating allows all of
// them here; other rules still apply). A refusal's reason names the phase
// and what to do instead.
func AllowedInPhase(impact OpImpact, phase MigrationPhase) (bool, string) {
	switch impact {
	case ImpactAdmin:
		return true, ""
	case ImpactBrokerRoll, ImpactRecovery:
		// A restart keeps each broker's config, so it keeps the phase's:
		// migration flag and quorum config from phase 2, process.roles
		// from phase 3 on the brokers already rolled.
		return true, ""
	case ImpactControllerRoll:
		if phase < PhaseControllers {
			return false, fmt.Sprintf("migration phase %s: no controllers exist yet", phase)
		}
		return true, ""
	case ImpactBinaryUpgrade, ImpactProtocolChange:
		return false, fmt.Sprintf("migration phase %s: Kafka %d.%d.x and inter.broker.protocol.version %d.%d are held until the migration is finalized or rolled back", phase, migrationMajor, migrationMinor, migrationMajor, migrationMinor)
	case ImpactMetadataVersion:
		return false, fmt.Sprintf("migration phase %s: metadata.version must not change during a migration; finalize it first", phase)
	case ImpactMembership:
		return false, fmt.Sprintf("migration phase %s: brokers and controllers are fixed during a migration; finalize or roll back first", phase)
	case ImpactDelete:
		return false, fmt.Sprintf("migration phase %s: roll the migration back or finalize it before deleting the cluster", phase)
	case ImpactMigration:
		return true, ""
	}
	return false, fmt.Sprintf("unknown operation impact %d", impact)
}

// CheckMigrationStep refuses a migration step that does not follow from
// where the cluster is: phase n forward only from phase n-1 (phase 1 from
// a ZooKeeper cluster), a rollback only of the phase the cluster is in and
// only before finalization. spec is the cluster's as its entity holds it.
func CheckMigrationStep(spec ClusterSpec, phase MigrationPhase, rollback bool) error {
	mode := spec.Mode()
	current := PhasePreflight
	if mode == ModeMigrating {
		current = spec.KRaft.Phase
	}
	switch {
	case !phase.Valid() || phase == PhasePreflight:
		return fmt.Errorf("migration phase %d: want 1 to %d", phase, PhaseFinalize)
	case mode == ModeKRaft:
		return fmt.Errorf("cluster %s is a KRaft cluster: there is nothing to migrate", spec.ID)
	case rollback && mode != ModeMigrating && phase != PhaseControllers:
		// Phase 1's rollback from a ZooKeeper cluster removes what a
		// phase 1 that failed half-way left (controllers' hosts).
		return fmt.Errorf("cluster %s is not migrating: there is nothing to roll back", spec.ID)
	case rollback && mode != ModeMigrating:
	case rollback && phase != current:
		return fmt.Errorf("cluster %s is in migration phase %s: only that phase can be rolled back, not %s", spec.ID, current, phase)
	case rollback && !phase.CanRollBack():
		return fmt.Errorf("cluster %s: phase %s cannot be rolled back", spec.ID, phase)
	case !rollback && phase <= current:
		return fmt.Errorf("cluster %s: migration phase %s is done already (the cluster is in phase %s)", spec.ID, phase, current)
	case !rollback && phase != current+1:
		return fmt.Errorf("cluster %s is in migration phase %s: phase %s must come first", spec.ID, current, current+1)
	}
	return nil
}

// Voters is controller.quorum.voters of k's controllers:
// "<id>@<address>,..." with each controller's QuorumBootstrap address
// (the two lists are in the same order).
func (k KRaftSpec) Voters() string {
	var out []string
	for i, c := range k.Controllers {
		if i < len(k.QuorumBootstrap) {
			out = append(out, fmt.Sprintf("%d@%s", c.ID, k.QuorumBootstrap[i]))
		}
	}
	return strings.Join(out, ",")
}

// MigrationZnodes is what ZooKeeper holds of a cluster's migration.
type MigrationZnodes struct {
	// ClusterID is /cluster/id's id, "" when the znode is missing.
	ClusterID string `json:"clusterId"`
	// Migration: /migration exists.
	Migration bool `json:"migration"`
	// KRaftControllerEpoch is /controller's kraftControllerEpoch: a KRaft
	// controller holds /controller (dual-write) when it is above 0.
	KRaftControllerEpoch int32 `json:"kraftControllerEpoch,omitempty"`
	// Controller is /controller's brokerid, -1 without one: a broker in
	// ZooKeeper mode, or the KRaft controller's node id in dual-write.
	Controller int32 `json:"controller"`
	// Brokers are the ids registered under /brokers/ids.
	Brokers []int32 `json:"brokers"`
}

// DualWrite reports whether a KRaft controller holds /controller and
// /migration exists: the controllers copied the metadata and write to
// both.
func (m MigrationZnodes) DualWrite() bool { return m.Migration && m.KRaftControllerEpoch > 0 }

// MigrationStage is where a cluster is between ZooKeeper and KRaft: its
// mode, and its phase while migrating.
type MigrationStage struct {
	Mode  ClusterMode    `json:"mode"`
	Phase MigrationPhase `json:"phase,omitempty"`
}

func (s MigrationStage) String() string {
	if s.Mode == ModeMigrating {
		return fmt.Sprintf("%s %s", s.Mode, s.Phase)
	}
	return string(s.Mode)
}

// StageOf is the stage a spec with KRaft side k is at.
func StageOf(k *KRaftSpec) MigrationStage {
	return ClusterSpec{KRaft: k}.MigrationStage()
}

// MigrationStage is where the spec's cluster is.
func (s ClusterSpec) MigrationStage() MigrationStage {
	st := MigrationStage{Mode: s.Mode()}
	if st.Mode == ModeMigrating {
		st.Phase = s.KRaft.Phase
	}
	return st
}
