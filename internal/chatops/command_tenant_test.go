package chatops_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/chatops"
)

func TestTenantVerbsInChat(t *testing.T) {
	good := []struct {
		text string
		want chatops.Command
	}{
		{"tenant-create orders basic-0", chatops.Command{Verb: chatops.VerbTenantCreate, Cluster: "orders", TenantPlan: "basic-0"}},
		{"tenant-create orders basic-1 name=acme", chatops.Command{Verb: chatops.VerbTenantCreate, Cluster: "orders", TenantPlan: "basic-1", Tenant: "acme"}},
		{"tenant-rotate orders wabash-58799", chatops.Command{Verb: chatops.VerbTenantRotate, Cluster: "orders", Tenant: "wabash-58799"}},
		{"tenant-rotate orders wabash-58799 grace=2h", chatops.Command{Verb: chatops.VerbTenantRotate, Cluster: "orders", Tenant: "wabash-58799", Grace: "2h"}},
		{"tenant-change-plan orders wabash-58799 basic-2", chatops.Command{Verb: chatops.VerbTenantChangePlan, Cluster: "orders", Tenant: "wabash-58799", TenantPlan: "basic-2"}},
		{"tenant-delete orders wabash-58799", chatops.Command{Verb: chatops.VerbTenantDelete, Cluster: "orders", Tenant: "wabash-58799"}},
	}
	for _, tt := range good {
		cmd, err := chatops.Parse(tt.text)
		require.NoError(t, err, tt.text)
		assert.Equal(t, tt.want, cmd, tt.text)
		assert.Equal(t, tt.text, cmd.String(), "canonical")
		assert.NoError(t, cmd.Validate(), tt.text)
	}
	assert.True(t, chatops.VerbTenantDelete.Destructive(), "a second person approves a tenant's deletion")
	assert.False(t, chatops.VerbTenantCreate.Destructive())
	assert.False(t, chatops.VerbTenantRotate.Destructive())

	for _, bad := range []string{
		"tenant-create orders", "tenant-create orders Basic", "tenant-create orders basic-0 name=x-r2", "tenant-create orders basic-0 grace=1h",
		"tenant-rotate orders", "tenant-rotate orders UPPER", "tenant-rotate orders wabash-58799 grace=1ms", "tenant-rotate orders wabash-58799 grace=soon",
		"tenant-change-plan orders wabash-58799", "tenant-delete orders wabash-58799 now", "tenant-delete orders",
	} {
		_, err := chatops.Parse(bad)
		assert.Error(t, err, bad)
	}
	assert.Error(t, chatops.Command{Verb: chatops.VerbTenantDelete, Cluster: "orders", Tenant: "wabash-58799", Grace: "1h"}.Validate(), "fields of another verb")
	assert.Error(t, chatops.Command{Verb: chatops.VerbRestart, Cluster: "orders", Tenant: "wabash-58799"}.Validate())
}
