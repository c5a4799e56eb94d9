package fleet

import (
	"fmt"
	"slices"
	"strings"
)

// MetadataVersionFeature is the feature UpdateFeatures finalizes for the
// metadata log's format.
const MetadataVersionFeature = "metadata.version"

// MetadataVersion is one metadata.version level: its name (3.9-IV0), its
// feature level (21) and the Kafka release that first supports it.
type MetadataVersion struct {
	Name  string `json:"name"`
	Level int16  `json:"level"`
	// Release is the first Kafka release whose nodes support the level.
	Release KafkaVersion `json:"release"`
}

func (m MetadataVersion) String() string { return fmt.Sprintf("%s (level %d)", m.Name, m.Level) }

// MetadataVersions is Kafka's table of production metadata.version levels,
// 3.3-IV3 (the minimum Kafka 4 still reads) to 4.1-IV1, oldest first, as
// MetadataVersion.java defines them (feature level per IBP_x_y_IVn). A
// function, not a package variable, so no caller can edit the table.
func MetadataVersions() []MetadataVersion {
	mv := func(name string, level int16, major, minor int) MetadataVersion {
		return MetadataVersion{Name: name, Level: level, Release: KafkaVersion{Major: major, Minor: minor}}
	}
	return []MetadataVersion{
		mv("3.3-IV3", 7, 3, 3),
		mv("3.4-IV0", 8, 3, 4),
		mv("3.5-IV0", 9, 3, 5), mv("3.5-IV1", 10, 3, 5), mv("3.5-IV2", 11, 3, 5),
		mv("3.6-IV0", 12, 3, 6), mv("3.6-IV1", 13, 3, 6), mv("3.6-IV2", 14, 3, 6),
		mv("3.7-IV0", 15, 3, 7), mv("3.7-IV1", 16, 3, 7), mv("3.7-IV2", 17, 3, 7), mv("3.7-IV3", 18, 3, 7), mv("3.7-IV4", 19, 3, 7),
		mv("3.8-IV0", 20, 3, 8),
		mv("3.9-IV0", 21, 3, 9),
		mv("4.0-IV0", 22, 4, 0), mv("4.0-IV1", 23, 4, 0), mv("4.0-IV2", 24, 4, 0), mv("4.0-IV3", 25, 4, 0),
		mv("4.1-IV0", 26, 4, 1), mv("4.1-IV1", 27, 4, 1),
	}
}

// ParseMetadataVersion finds a metadata.version by name: 3.9-IV0, or a
// release's major.minor (3.7) for its latest level, as kafka-features.sh
// --metadata takes them.
func ParseMetadataVersion(s string) (MetadataVersion, error) {
	table := MetadataVersions()
	if i := slices.IndexFunc(table, func(m MetadataVersion) bool { return m.Name == s }); i >= 0 {
		return table[i], nil
	}
	var found *MetadataVersion
	for i, m := range table {
		if release, _, _ := strings.Cut(m.Name, "-"); release == s {
			found = &table[i] // the table is oldest first: the last match is the latest
		}
	}
	if found == nil {
		return MetadataVersion{}, versionError(MetadataVersionFeature, s, "unknown; want one of %s to %s, or a release like 3.9", table[0].Name, table[len(table)-1].Name)
	}
	return *found, nil
}

// MetadataVersionAt returns the metadata.version of a feature level.
func MetadataVersionAt(level int16) (MetadataVersion, bool) {
	table := MetadataVersions()
	i := slices.IndexFunc(table, func(m MetadataVersion) bool { return m.Level == level })
	if i < 0 {
		return MetadataVersion{}, false
	}
	return table[i], true
}

// levelName names a level for a reason: "3.9-IV0 (level 21)", or the bare
// level when the table does not know it.
func levelName(level int16) string {
	if m, ok := MetadataVersionAt(level); ok {
		return m.String()
	}
	return fmt.Sprintf("level %d", level)
}

// NodeSupport is what one registered node supports of metadata.version.
type NodeSupport struct {
	ID int32 `json:"id"`
	// Controller: the node is a controller, else a broker.
	Controller bool `json:"controller,omitempty"`
	// InSpec: the node is one of the spec's brokers or controllers
	// (ClusterSpec.InSpec); a registered node that is not is a ghost.
	InSpec bool `json:"inSpec"`
	// Known: the node answered and its supported range is MinLevel to
	// MaxLevel; a ghost often cannot be asked.
	Known    bool  `json:"known"`
	MinLevel int16 `json:"minLevel,omitempty"`
	MaxLevel int16 `json:"maxLevel,omitempty"`
}

func (n NodeSupport) name() string {
	if n.Controller {
		return fmt.Sprintf("controller %d", n.ID)
	}
	return fmt.Sprintf("broker %d", n.ID)
}

// FinalizeVerdict is whether metadata.version may be finalized at a target.
type FinalizeVerdict struct {
	Current int16 `json:"current"`
	Target  int16 `json:"target"`
	// Done: the cluster is at the target already; nothing to do.
	Done bool `json:"done,omitempty"`
	// Refusals say why the update would fail; none means it may run.
	Refusals []string `json:"refusals,omitempty"`
	// Ghosts are registered nodes outside the spec that block the target:
	// the remedy is to unregister them (UnregisterBroker), with a human's
	// approval.
	Ghosts []int32 `json:"ghosts,omitempty"`
}

// OK reports whether the update may be sent (and is not done already).
func (v FinalizeVerdict) OK() bool { return !v.Done && len(v.Refusals) == 0 }

// Err returns the refusals as one ErrRefused error, nil when there is none.
func (v FinalizeVerdict) Err() error {
	if len(v.Refusals) == 0 {
		return nil
	}
	return fmt.Errorf("%w: metadata.version %s: %s", ErrRefused, levelName(v.Target), strings.Join(v.Refusals, "; "))
}

// CheckFinalize decides whether metadata.version may move from current to
// target given every registered node's support. Kafka refuses an update
// that any registered node does not support (INVALID_UPDATE_VERSION), so
// kfleet checks first and says which node and what to do: upgrade it, or,
// for a ghost (registered but not in the spec, e.g. a removed broker),
// unregister it with approval. Downgrades are refused: most levels change
// the metadata log's format and cannot be taken back safely.
func CheckFinalize(current int16, target MetadataVersion, nodes []NodeSupport) FinalizeVerdict {
	v := FinalizeVerdict{Current: current, Target: target.Level}
	if target.Level == current {
		v.Done = true
		return v
	}
	if target.Level < current {
		v.Refusals = append(v.Refusals, fmt.Sprintf("the cluster is at %s: downgrading metadata.version is refused", levelName(current)))
		return v
	}
	sorted := slices.Clone(nodes)
	slices.SortFunc(sorted, func(a, b NodeSupport) int { return int(a.ID - b.ID) })
	for _, n := range sorted {
		why, remedy := "", fmt.Sprintf("roll it onto Kafka %s or later first", target.Release.minorString())
		switch {
		case !n.Known:
			why = "did not report what it supports"
		case n.MaxLevel < target.Level:
			why = fmt.Sprintf("supports up to %s", levelName(n.MaxLevel))
		case n.MinLevel > target.Level:
			why = fmt.Sprintf("supports %s at the lowest", levelName(n.MinLevel))
			remedy = "pick a target it supports"
		default:
			continue
		}
		if !n.InSpec {
			v.Ghosts = append(v.Ghosts, n.ID)
			v.Refusals = append(v.Refusals, fmt.Sprintf("%s %s and is a ghost (registered, not in the spec): unregister it, with approval", n.name(), why))
			continue
		}
		v.Refusals = append(v.Refusals, fmt.Sprintf("%s %s: %s", n.name(), why, remedy))
	}
	return v
}

// minorString is the release line, e.g. 3.9 for 3.9.0.
func (v KafkaVersion) minorString() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }
