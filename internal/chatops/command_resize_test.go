package chatops_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/chatops"
	"github.com/kfleet/kfleet/workflows"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  string // "": accepted
	}{
		{"1024", 1024, ""},
		{"1048576", 1 << 20, ""},
		{"1KiB", 1 << 10, ""},
		{"512KiB", 512 << 10, ""},
		{"10MiB", 10 << 20, ""},
		{"10MiB/s", 10 << 20, ""},
		{"2GiB", 2 << 30, ""},
		{"1024GiB", 1 << 40, ""},
		{"1099511627776", 1 << 40, ""},
		{"", 0, "want bytes per second"},
		{"MiB", 0, "want bytes per second"},
		{"10 MiB", 0, "want bytes per second"},
		{"10MB", 0, "want bytes per second"},
		{"10M", 0, "want bytes per second"},
		{"10mib", 0, "want bytes per second"},
		{"10MiBps", 0, "want bytes per second"},
		{"10MiB/s/s", 0, "want bytes per second"},
		{"1e6", 0, "want bytes per second"},
		{"1.5MiB", 0, "want bytes per second"},
		{"+10MiB", 0, "want bytes per second"},
		{"-10MiB", 0, "want bytes per second"},
		{"010MiB", 0, "want bytes per second"},
		{"99999999999999", 0, "want bytes per second"},
		{"0", 0, "at least 1KiB per second"},
		{"0KiB", 0, "at least 1KiB per second"},
		{"1023", 0, "at least 1KiB per second"},
		{"1025GiB", 0, "at most 1024GiB per second"},
		{"1099511627777", 0, "at most 1024GiB per second"},
		{"9999999999999GiB", 0, "at most 1024GiB per second"},
	}
	for _, tt := range tests {
		got, err := chatops.ParseRate(tt.in)
		if tt.bad != "" {
			if assert.Error(t, err, tt.in) {
				assert.Contains(t, err.Error(), tt.bad, tt.in)
			}
			continue
		}
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
		again, err := chatops.ParseRate(chatops.FormatRate(got))
		require.NoError(t, err, "FormatRate(%d) = %q", got, chatops.FormatRate(got))
		assert.Equal(t, got, again)
	}
}

func TestFormatRate(t *testing.T) {
	for n, want := range map[int64]string{
		1024: "1KiB", 1536: "1536", 10 << 20: "10MiB", 1<<20 + 1<<10: "1025KiB", 3 << 30: "3GiB", 1 << 40: "1024GiB", 0: "0", -1024: "-1024",
	} {
		assert.Equal(t, want, chatops.FormatRate(n), n)
	}
}

// Chat's RATE bounds are the kinds': what ParseRate accepts the kinds
// accept, and the slowest rate they accept is the slowest it accepts.
func TestRateBoundsAreTheKinds(t *testing.T) {
	for _, tc := range []struct {
		kind, params string
		brokers      []int32
	}{
		{workflows.OpAddBrokers, `{"count":1,"throttleBytesPerSec":%d}`, nil},
		{workflows.OpRemoveBroker, `{"throttleBytesPerSec":%d}`, []int32{1}},
		{workflows.OpRebalance, `{"throttleBytesPerSec":%d}`, nil},
	} {
		k, err := workflows.KindNamed(tc.kind)
		require.NoError(t, err)
		check := func(rate int64) error {
			return k.Check(workflows.Request{Kind: tc.kind, RequestedBy: "alice", Brokers: tc.brokers, Params: json.RawMessage(fmt.Sprintf(tc.params, rate))})
		}
		assert.NoError(t, check(chatops.MinThrottleBytesPerSec), tc.kind)
		assert.NoError(t, check(chatops.MaxThrottleBytesPerSec), tc.kind)
		assert.Error(t, check(chatops.MinThrottleBytesPerSec-1), tc.kind)
	}
}

// Adding brokers and rebalancing run at once; removing a broker waits for
// a second person, throttle included in what the approver sees.
func TestResizeVerbsInChat(t *testing.T) {
	h := newHarness(t, func(c *chatops.Config) {
		c.Policy = mustPolicy(t, `
rules:
  - users: [U0ALICE, bob]
    verbs: [add-brokers, remove-broker, rebalance]
    clusters: [orders]
    channels: [COPS]
`)
	})
	r := h.slash(t, alice, "COPS", "add-brokers orders 3 throttle=10485760 type=m5.xlarge")
	assert.Equal(t, "in_channel", r.ResponseType)
	assert.Contains(t, r.Text, "ran `add-brokers orders 3 type=m5.xlarge throttle=10MiB`")
	assert.Empty(t, r.Blocks, "no approval buttons")
	r = h.slash(t, bob, "COPS", "rebalance orders")
	assert.Equal(t, "in_channel", r.ResponseType)
	assert.Contains(t, r.Text, "ran `rebalance orders`")
	r = h.slash(t, alice, "COPS", "remove-broker orders 4 throttle=512KiB/s")
	assert.Equal(t, "in_channel", r.ResponseType)
	assert.Contains(t, r.Text, "asks for `remove-broker orders 4 throttle=512KiB`: a second person must approve (one of bob)")
	require.Len(t, r.Blocks, 2)
	assert.Equal(t, "kfleet_approval:remove-broker:orders", r.Blocks[1].BlockID)
	assert.Equal(t, []string{
		"run add-brokers orders 3 type=m5.xlarge throttle=10MiB by U0ALICE",
		"run rebalance orders by bob",
		"propose remove-broker orders 4 throttle=512KiB by U0ALICE to bob",
	}, h.backend.Calls())

	r = h.slash(t, alice, "COPS", "rebalance orders throttle=10MB")
	assert.Equal(t, "ephemeral", r.ResponseType)
	assert.Contains(t, r.Text, `rebalance: throttle "10MB": want bytes per second`)
	assert.Len(t, h.backend.Calls(), 3, "a malformed command reaches nothing")

	help := h.slash(t, alice, "COPS", "help").Text
	for _, usage := range []string{"add-brokers &lt;cluster&gt; &lt;count&gt; [type=T] [volume=GiB] [throttle=RATE]",
		"remove-broker &lt;cluster&gt; &lt;broker&gt; [throttle=RATE]", "rebalance &lt;cluster&gt; [throttle=RATE]"} {
		assert.Contains(t, help, "`"+usage+"`")
	}
}
