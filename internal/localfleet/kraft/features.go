package kraft

import (
	"fmt"
	"strings"
	"time"
)

// Range is the metadata.version feature levels a node supports.
type Range struct{ Min, Max int16 }

func (r Range) String() string {
	return fmt.Sprintf("%s..%s", MetadataVersionName(r.Min), MetadataVersionName(r.Max))
}

// Features are the cluster's finalized feature levels.
type Features struct {
	MetadataVersion int16
	// Epoch is the finalized features' epoch: the offset of the record
	// that last changed them (ApiVersions' FinalizedFeaturesEpoch).
	Epoch int64
}

// metadataVersions are the metadata.version levels by name, from Kafka's
// MetadataVersion (3.3-IV3 is the oldest a 3.7+ KRaft node accepts).
var metadataVersions = []struct {
	name  string
	level int16
}{
	{"3.3-IV3", 7}, {"3.4-IV0", 8}, {"3.5-IV0", 9}, {"3.5-IV1", 10}, {"3.5-IV2", 11},
	{"3.6-IV0", 12}, {"3.6-IV1", 13}, {"3.6-IV2", 14},
	{"3.7-IV0", 15}, {"3.7-IV1", 16}, {"3.7-IV2", 17}, {"3.7-IV3", 18}, {"3.7-IV4", 19},
	{"3.8-IV0", 20}, {"3.9-IV0", 21},
	{"4.0-IV0", 22}, {"4.0-IV1", 23}, {"4.0-IV2", 24}, {"4.0-IV3", 25},
}

// MinMetadataVersion is the lowest level any modelled release supports.
const MinMetadataVersion int16 = 7

// MetadataVersionLevel is the feature level of a metadata.version name
// ("3.9-IV0" is 21).
func MetadataVersionLevel(name string) (int16, bool) {
	for _, v := range metadataVersions {
		if v.name == name {
			return v.level, true
		}
	}
	return 0, false
}

// MetadataVersionName is level's name, or "level N" for one not modelled.
func MetadataVersionName(level int16) string {
	for _, v := range metadataVersions {
		if v.level == level {
			return v.name
		}
	}
	return fmt.Sprintf("level %d", level)
}

// SupportedBy is the metadata.version range a Kafka release supports: up
// to its own release's latest production level. ok is false for a
// release not modelled (before 3.7, or after 4.0).
func SupportedBy(kafkaVersion string) (Range, bool) {
	latest := map[string]string{"3.7": "3.7-IV4", "3.8": "3.8-IV0", "3.9": "3.9-IV0", "4.0": "4.0-IV3"}
	parts := strings.SplitN(kafkaVersion, ".", 3)
	if len(parts) < 2 {
		return Range{}, false
	}
	name, ok := latest[parts[0]+"."+parts[1]]
	if !ok {
		return Range{}, false
	}
	lvl, _ := MetadataVersionLevel(name)
	return Range{Min: MinMetadataVersion, Max: lvl}, true
}

// SetVoterSupport records the metadata.version range controller id's
// binaries support; UpdateFeatures checks it as it checks brokers'.
func (m *Model) SetVoterSupport(id int32, r Range) error {
	if _, err := m.voter(id); err != nil {
		return err
	}
	m.voterMV[id] = r
	return nil
}

// Features is the finalized features.
func (m *Model) Features() Features { return m.features }

// Update is one UpdateFeatures request's metadata.version change.
type Update struct {
	Level int16
	// AllowDowngrade: v0's flag, or v1's safe or unsafe downgrade type.
	AllowDowngrade bool
	ValidateOnly   bool
}

// UpdateMetadataVersion finalizes metadata.version at u.Level, as the
// active controller does: refused (ErrInvalidUpdate, naming the node) when
// a registered broker, live or a ghost, or a controller does not support
// the level, and for a downgrade not allowed.
func (m *Model) UpdateMetadataVersion(u Update, now time.Time) (*Event, error) {
	if m.leader == NoLeader {
		return nil, ErrNoLeader
	}
	cur := m.features.MetadataVersion
	if u.Level < cur && !u.AllowDowngrade {
		return nil, fmt.Errorf("%w: the update of metadata.version from %s to %s is a downgrade and downgrades are not allowed",
			ErrInvalidUpdate, MetadataVersionName(cur), MetadataVersionName(u.Level))
	}
	if u.Level < MinMetadataVersion {
		return nil, fmt.Errorf("%w: metadata.version level %d is below the minimum %s",
			ErrInvalidUpdate, u.Level, MetadataVersionName(MinMetadataVersion))
	}
	for _, v := range m.voters {
		if r, ok := m.voterMV[v.ID]; ok && (u.Level < r.Min || u.Level > r.Max) {
			return nil, fmt.Errorf("%w: controller %d does not support metadata.version %s (it supports %s)",
				ErrInvalidUpdate, v.ID, MetadataVersionName(u.Level), r)
		}
	}
	for _, b := range m.Brokers() {
		if u.Level < b.Support.Min || u.Level > b.Support.Max {
			state := "registered"
			if !b.Alive {
				state = "registered but not running"
			}
			return nil, fmt.Errorf("%w: broker %d (%s, Kafka %s) does not support metadata.version %s (it supports %s)",
				ErrInvalidUpdate, b.ID, state, b.Version, MetadataVersionName(u.Level), b.Support)
		}
	}
	if u.ValidateOnly || u.Level == cur {
		return nil, nil
	}
	m.Append(1, now)
	ldr, _ := m.voter(m.leader)
	m.features = Features{MetadataVersion: u.Level, Epoch: ldr.LogEndOffset}
	return &Event{Time: now, Kind: EventFeature, Node: m.leader, Epoch: m.epoch,
		Detail: fmt.Sprintf("metadata.version %s -> %s", MetadataVersionName(cur), MetadataVersionName(u.Level))}, nil
}
