package fleet_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/fleet"
)

func TestParseKafkaVersion(t *testing.T) {
	good := []struct {
		in   string
		want fleet.KafkaVersion
	}{
		{"3.7.1", fleet.KafkaVersion{Major: 3, Minor: 7, Patch: 1}},
		{"3.0.0", fleet.KafkaVersion{Major: 3}},
		{"2.8.2", fleet.KafkaVersion{Major: 2, Minor: 8, Patch: 2}},
		{"3.10.0", fleet.KafkaVersion{Major: 3, Minor: 10}},
		{"4.0.0", fleet.KafkaVersion{Major: 4}}, // the grammar takes it; ZooKeeperMode refuses it
		{"9999.9999.9999", fleet.KafkaVersion{Major: 9999, Minor: 9999, Patch: 9999}},
	}
	for _, c := range good {
		t.Run(c.in, func(t *testing.T) {
			got, err := fleet.ParseKafkaVersion(c.in)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			assert.Equal(t, c.in, got.String(), "String gives back the text parsed")
		})
	}

	bad := []struct{ in, want string }{
		{"", `Kafka version "": want major.minor.patch, like 3.7.1`},
		{"3.7", `Kafka version "3.7": want major.minor.patch, like 3.7.1`},
		{"3.7.1.0", `Kafka version "3.7.1.0": want major.minor.patch`},
		{"0.10.2.1", `Kafka version "0.10.2.1": want major.minor.patch`},
		{"v3.7.1", `Kafka version "v3.7.1": "v3" is not a number; want major.minor.patch, like 3.7.1`},
		{"3.7.1-rc1", `"1-rc1" is not a number`},
		{"3..1", `Kafka version "3..1": empty number; want major.minor.patch`},
		{"3.7.", `empty number`},
		{"3.07.1", `Kafka version "3.07.1": "07" has a leading zero`},
		{"+3.7.1", `"+3" is not a number`},
		{"-3.7.1", `"-3" is not a number`},
		{" 3.7.1", `" 3" is not a number`},
		{"3.7.1\n", `"1\n" is not a number`},
		{"3.7.10000", `"10000" has more than 4 digits`},
		{"3.7.٣", `"٣" is not a number`},
		{"3.7." + strings.Repeat("1", 100), `Kafka version "3.7.` + strings.Repeat("1", 28) + `…": "` + strings.Repeat("1", 32) + `…" has more than 4 digits`}, // cut short
	}
	for _, c := range bad {
		t.Run(c.in, func(t *testing.T) {
			got, err := fleet.ParseKafkaVersion(c.in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Equal(t, fleet.KafkaVersion{}, got)
		})
	}
}

func TestKafkaVersionZooKeeperMode(t *testing.T) {
	for _, s := range []string{"2.8.2", "3.7.1", "3.9.0", "3.99.0"} {
		assert.NoError(t, mustKafka(t, s).ZooKeeperMode(), s)
	}
	for _, s := range []string{"4.0.0", "4.1.0", "5.0.0"} {
		err := mustKafka(t, s).ZooKeeperMode()
		require.Error(t, err, s)
		assert.Contains(t, err.Error(), "version "+s+": Kafka 4 and later have no ZooKeeper mode; migrate the cluster to KRaft first")
	}
}

func TestParseProtocolVersion(t *testing.T) {
	good := []struct {
		in   string
		want fleet.ProtocolVersion
		iv   bool
	}{
		{"3.6", fleet.ProtocolVersion{Major: 3, Minor: 6, IV: fleet.LatestIV}, false},
		{"3.6-IV2", fleet.ProtocolVersion{Major: 3, Minor: 6, IV: 2}, true},
		{"3.6-IV0", fleet.ProtocolVersion{Major: 3, Minor: 6, IV: 0}, true},
		{"2.8-IV1", fleet.ProtocolVersion{Major: 2, Minor: 8, IV: 1}, true},
		{"3.10", fleet.ProtocolVersion{Major: 3, Minor: 10, IV: fleet.LatestIV}, false},
		{"1.0", fleet.ProtocolVersion{Major: 1, Minor: 0, IV: fleet.LatestIV}, false},
	}
	for _, c := range good {
		t.Run(c.in, func(t *testing.T) {
			got, err := fleet.ParseProtocolVersion(c.in)
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
			assert.Equal(t, c.iv, got.HasIV())
			assert.Equal(t, c.in, got.String(), "String gives back the text parsed")
		})
	}

	const want = "want major.minor or major.minor-IVn, like 3.6 or 3.6-IV2"
	bad := []struct{ in, want string }{
		{"", `inter.broker.protocol.version "": ` + want},
		{"3", `inter.broker.protocol.version "3": ` + want},
		{"3.6.1", `inter.broker.protocol.version "3.6.1": ` + want},
		{"0.10.2", `inter.broker.protocol.version "0.10.2": ` + want},
		{"3.6-IV", `inter.broker.protocol.version "3.6-IV": IV empty number; ` + want},
		{"3.6-iv2", `"iv2" after '-'; ` + want},
		{"3.6-2", `"2" after '-'; ` + want},
		{"3.6-", `"" after '-'`},
		{"3.6-IV02", `IV "02" has a leading zero`},
		{"3.6-IV-1", `IV "-1" is not a number`},
		{"3.6-IV2-IV3", `IV "2-IV3" is not a number`},
		{"3.06", `"06" has a leading zero`},
		{"v3.6", `"v3" is not a number`},
		{".6", `empty number`},
		{"3.6-IV12345", `IV "12345" has more than 4 digits`},
	}
	for _, c := range bad {
		t.Run(c.in, func(t *testing.T) {
			got, err := fleet.ParseProtocolVersion(c.in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Equal(t, fleet.ProtocolVersion{}, got)
		})
	}
}

func TestProtocolVersionOrder(t *testing.T) {
	// Oldest first: an IV-less version is its release's latest, after
	// every numbered IV of that release and before the next release.
	order := []string{"2.8-IV0", "2.8-IV1", "2.8", "3.0-IV1", "3.0", "3.6-IV0", "3.6-IV2", "3.6-IV10", "3.6", "3.7-IV4", "3.7", "3.10-IV0", "3.10", "4.0"}
	for i, a := range order {
		for j, b := range order {
			pa, pb := mustProtocol(t, a), mustProtocol(t, b)
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = +1
			}
			assert.Equal(t, want, pa.Compare(pb), "%s vs %s", a, b)
			assert.Equal(t, i > j, pa.After(pb), "%s after %s", a, b)
		}
	}
}

func TestKafkaVersionOrder(t *testing.T) {
	order := []string{"0.11.0", "1.0.0", "2.8.2", "3.0.0", "3.6.9", "3.7.0", "3.7.1", "3.7.10", "3.10.0", "4.0.0"}
	for i, a := range order {
		for j, b := range order {
			va, vb := mustKafka(t, a), mustKafka(t, b)
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = +1
			}
			assert.Equal(t, want, va.Compare(vb), "%s vs %s", a, b)
			assert.Equal(t, i > j, va.After(vb), "%s after %s", a, b)
		}
	}
}

func TestKafkaVersionProtocol(t *testing.T) {
	v := mustKafka(t, "3.7.1")
	assert.Equal(t, "3.7", v.Protocol().String())
	assert.False(t, v.Protocol().HasIV())
	for p, speaks := range map[string]bool{
		"2.8": true, "3.6": true, "3.6-IV2": true, "3.7-IV0": true, "3.7-IV4": true, "3.7": true,
		"3.8-IV0": false, "3.8": false, "4.0": false,
	} {
		assert.Equal(t, speaks, v.Speaks(mustProtocol(t, p)), "3.7.1 speaks %s", p)
	}
}

func TestVersionsAsText(t *testing.T) {
	type payload struct {
		Version fleet.KafkaVersion    `json:"version"`
		From    fleet.ProtocolVersion `json:"from"`
		Target  fleet.ProtocolVersion `json:"target"`
	}
	in := payload{mustKafka(t, "3.7.1"), mustProtocol(t, "3.6-IV2"), mustProtocol(t, "3.7")}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	assert.JSONEq(t, `{"version":"3.7.1","from":"3.6-IV2","target":"3.7"}`, string(b))
	var out payload
	require.NoError(t, json.Unmarshal(b, &out))
	assert.Equal(t, in, out)

	assert.ErrorContains(t, json.Unmarshal([]byte(`{"version":"3.7"}`), &out), `Kafka version "3.7"`)
	assert.ErrorContains(t, json.Unmarshal([]byte(`{"from":"3.6-IV"}`), &out), `inter.broker.protocol.version "3.6-IV"`)
}

func mustKafka(t *testing.T, s string) fleet.KafkaVersion {
	t.Helper()
	v, err := fleet.ParseKafkaVersion(s)
	require.NoError(t, err)
	return v
}

func mustProtocol(t *testing.T, s string) fleet.ProtocolVersion {
	t.Helper()
	p, err := fleet.ParseProtocolVersion(s)
	require.NoError(t, err)
	return p
}
