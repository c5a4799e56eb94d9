package main

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/workflows"
)

// The resize commands' requests are their kinds' own, --throttle read as
// chat reads throttle=.
func TestResizeRequests(t *testing.T) {
	add := workflows.AddBrokersParams{Count: 3, InstanceType: "m5.xlarge", VolumeGiB: 500}
	for _, tc := range []struct {
		name, throttle, kind string
		brokers              []int32
		params               func(workflows.MoveParams) any
		want                 string
	}{
		{"add-brokers", "10MiB", workflows.OpAddBrokers, nil, func(m workflows.MoveParams) any { add.MoveParams = m; return add },
			`{"count":3,"instanceType":"m5.xlarge","volumeGiB":500,"throttleBytesPerSec":10485760}`},
		{"remove-broker", "", workflows.OpRemoveBroker, []int32{4}, func(m workflows.MoveParams) any { return workflows.RemoveBrokerParams{MoveParams: m} }, `{}`},
		{"rebalance", "1048576", workflows.OpRebalance, nil, func(m workflows.MoveParams) any { return m }, `{"throttleBytesPerSec":1048576}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := resizeFlags{cluster: "orders", by: "alice", reason: "more disk", throttle: tc.throttle}
			req, err := f.request(tc.kind, tc.brokers, tc.params)
			require.NoError(t, err)
			assert.Equal(t, tc.kind, req.Kind)
			assert.Equal(t, "alice", req.RequestedBy)
			assert.Equal(t, "more disk", req.Reason)
			assert.Equal(t, tc.brokers, req.Brokers)
			assert.JSONEq(t, tc.want, string(req.Params))
			k, err := workflows.KindNamed(tc.kind)
			require.NoError(t, err)
			assert.NoError(t, k.Check(req))
		})
	}
}

// Bad input exits 2 before Temporal is dialled (the address here answers
// nothing).
func TestResizeCommandsRefuseBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"add-brokers", "--cluster", "orders"}, "--count is required"},
		{[]string{"add-brokers", "--cluster", "orders", "--count", "0"}, "count 0: want 1-50 brokers"},
		{[]string{"add-brokers", "--cluster", "orders", "--count", "51"}, "count 51"},
		{[]string{"add-brokers", "--cluster", "orders", "--count", "2", "--volume-gib", "-1"}, "volumeGiB -1"},
		{[]string{"add-brokers", "--cluster", "orders", "--count", "2", "--throttle", "10MB"}, `--throttle "10MB": want bytes per second`},
		{[]string{"add-brokers", "--count", "2"}, "--cluster is required"},
		{[]string{"remove-broker", "--cluster", "orders"}, "--broker is required"},
		{[]string{"remove-broker", "--cluster", "orders", "--broker", "-2"}, "broker -2: broker ids are not negative"},
		{[]string{"remove-broker", "--cluster", "orders", "--broker", "1", "--throttle", "1023"}, `--throttle "1023": at least 1KiB per second`},
		{[]string{"rebalance", "--cluster", "orders", "--throttle", "1.5MiB"}, `--throttle "1.5MiB"`},
		{[]string{"rebalance", "--cluster", "Orders"}, `--cluster "Orders"`},
	} {
		t.Run(tc.says, func(t *testing.T) {
			root := newRootCommand()
			root.SetArgs(append(tc.args, "--address", "127.0.0.1:1"))
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			err := root.Execute()
			var ee exitError
			require.True(t, errors.As(err, &ee), "%v", err)
			assert.Equal(t, exitBadInput, ee.code)
			assert.ErrorContains(t, err, tc.says)
		})
	}
}
