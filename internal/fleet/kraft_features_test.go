package fleet_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/fleet"
)

func TestMetadataVersionTable(t *testing.T) {
	// Levels as Kafka's MetadataVersion.java defines them.
	for name, level := range map[string]int16{
		"3.3-IV3": 7, "3.6-IV2": 14, "3.7-IV0": 15, "3.7-IV4": 19, "3.8-IV0": 20, "3.9-IV0": 21,
		"4.0-IV0": 22, "4.0-IV3": 25, "4.1-IV1": 27,
	} {
		m, err := fleet.ParseMetadataVersion(name)
		require.NoError(t, err, name)
		assert.Equal(t, level, m.Level, name)
		back, ok := fleet.MetadataVersionAt(level)
		assert.True(t, ok)
		assert.Equal(t, name, back.Name)
	}
	table := fleet.MetadataVersions()
	for i := 1; i < len(table); i++ {
		assert.Equal(t, table[i-1].Level+1, table[i].Level, "levels are consecutive: %s", table[i].Name)
		assert.False(t, table[i-1].Release.After(table[i].Release), "releases never go back: %s", table[i].Name)
	}
	table[0].Level = 99
	assert.Equal(t, int16(7), fleet.MetadataVersions()[0].Level, "callers cannot edit the table")
}

func TestParseMetadataVersion(t *testing.T) {
	cases := []struct {
		in      string
		want    string
		release string
	}{
		{"3.9-IV0", "3.9-IV0", "3.9.0"},
		{"3.9", "3.9-IV0", "3.9.0"},
		{"3.7", "3.7-IV4", "3.7.0"}, // a release means its latest level
		{"4.0", "4.0-IV3", "4.0.0"},
	}
	for _, c := range cases {
		m, err := fleet.ParseMetadataVersion(c.in)
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, m.Name)
		assert.Equal(t, c.release, m.Release.String())
	}
	for _, bad := range []string{"", "3.2", "3.9-IV1", "21", "4.9"} {
		_, err := fleet.ParseMetadataVersion(bad)
		assert.ErrorContains(t, err, "metadata.version", bad)
	}
	_, ok := fleet.MetadataVersionAt(6)
	assert.False(t, ok)
}

func TestCheckFinalize(t *testing.T) {
	mv := func(name string) fleet.MetadataVersion {
		m, err := fleet.ParseMetadataVersion(name)
		require.NoError(t, err)
		return m
	}
	at39 := func(id int32) fleet.NodeSupport {
		return fleet.NodeSupport{ID: id, InSpec: true, Known: true, MinLevel: 1, MaxLevel: 21}
	}
	ctrl := func(id int32) fleet.NodeSupport { n := at39(id); n.Controller = true; return n }
	all := []fleet.NodeSupport{at39(1), at39(2), at39(3), ctrl(3000), ctrl(3001), ctrl(3002)}
	cases := []struct {
		name     string
		current  int16
		target   string
		nodes    []fleet.NodeSupport
		ok, done bool
		refusals []string
		ghosts   []int32
	}{
		{"every node supports it", 19, "3.9-IV0", all, true, false, nil, nil},
		{"already there", 21, "3.9-IV0", all, false, true, nil, nil},
		{"downgrade", 21, "3.8-IV0", all, false, false, []string{"the cluster is at 3.9-IV0 (level 21): downgrading metadata.version is refused"}, nil},
		{"a broker on older binaries", 19, "3.9-IV0",
			slices.Concat(all[1:], []fleet.NodeSupport{fleet.NodeSupport{ID: 1, InSpec: true, Known: true, MinLevel: 1, MaxLevel: 20}}), false, false,
			[]string{"broker 1 supports up to 3.8-IV0 (level 20): roll it onto Kafka 3.9 or later first"}, nil},
		{"a controller on older binaries", 19, "3.9-IV0",
			slices.Concat(all[:5], []fleet.NodeSupport{fleet.NodeSupport{ID: 3002, Controller: true, InSpec: true, Known: true, MaxLevel: 19}}), false, false,
			[]string{"controller 3002 supports up to 3.7-IV4 (level 19)"}, nil},
		{"a ghost broker", 19, "3.9-IV0",
			slices.Concat(all, []fleet.NodeSupport{fleet.NodeSupport{ID: 4, Known: true, MaxLevel: 14}}), false, false,
			[]string{"broker 4 supports up to 3.6-IV2 (level 14) and is a ghost (registered, not in the spec): unregister it, with approval"}, []int32{4}},
		{"a ghost that cannot be asked", 19, "3.9-IV0",
			slices.Concat(all, []fleet.NodeSupport{fleet.NodeSupport{ID: 5}}), false, false,
			[]string{"broker 5 did not report what it supports and is a ghost"}, []int32{5}},
		{"a spec node that cannot be asked", 19, "3.9-IV0",
			slices.Concat(all[1:], []fleet.NodeSupport{fleet.NodeSupport{ID: 1, InSpec: true}}), false, false,
			[]string{"broker 1 did not report what it supports: roll it"}, nil},
		{"a node whose minimum is above", 19, "3.8-IV0",
			slices.Concat(all[1:], []fleet.NodeSupport{fleet.NodeSupport{ID: 1, InSpec: true, Known: true, MinLevel: 21, MaxLevel: 25}}), false, false,
			[]string{"broker 1 supports 3.9-IV0 (level 21) at the lowest: pick a target it supports"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := fleet.CheckFinalize(c.current, mv(c.target), c.nodes)
			assert.Equal(t, c.ok, v.OK(), "%+v", v)
			assert.Equal(t, c.done, v.Done)
			assert.Equal(t, c.ghosts, v.Ghosts)
			require.Len(t, v.Refusals, len(c.refusals), "%v", v.Refusals)
			for i, r := range c.refusals {
				assert.Contains(t, v.Refusals[i], r)
			}
			if len(c.refusals) > 0 {
				assert.True(t, errors.Is(v.Err(), fleet.ErrRefused))
			} else {
				assert.NoError(t, v.Err())
			}
		})
	}
}
