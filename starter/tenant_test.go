package main

import (
	"bytes"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Bad input to the tenant commands exits 2 before Temporal is dialled
// (the address here answers nothing).
func TestTenantCommandsRefuseBadInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"tenant", "create", "--plan", "premium-9"}, `unknown plan "premium-9"`},
		{[]string{"tenant", "create"}, `unknown plan ""`},
		{[]string{"tenant", "create", "--plan", "basic-0", "--name", "x-r2"}, "ends like a rotated user"},
		{[]string{"tenant", "create", "--plan", "basic-0", "--cluster", "Orders"}, `--cluster "Orders"`},
		{[]string{"tenant", "rotate", "--tenant", "wabash-58799"}, "--cluster is required"},
		{[]string{"tenant", "rotate", "--cluster", "orders"}, "--tenant"},
		{[]string{"tenant", "rotate", "--cluster", "orders", "--tenant", "wabash-58799", "--grace", "1ms"}, "want a duration from 1s"},
		{[]string{"tenant", "change-plan", "--cluster", "orders", "--tenant", "wabash-58799", "--plan", "gold"}, `unknown plan "gold"`},
		{[]string{"tenant", "delete", "--cluster", "orders", "--tenant", "Wabash"}, "--tenant"},
		{[]string{"tenant", "credentials", "--cluster", "orders", "--tenant", "a"}, "--tenant"},
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
