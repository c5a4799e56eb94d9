package chatops_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/kfleet/kfleet/internal/chatops"
)

// Creating a cluster runs at once (it takes nothing down); deleting one
// waits for a second person, force included in what the approver sees.
func TestCreateRunsAndDeleteWaitsForApproval(t *testing.T) {
	h := newHarness(t, func(c *chatops.Config) {
		c.Policy = mustPolicy(t, `
rules:
  - users: [U0ALICE, bob]
    verbs: [create, delete, status]
    clusters: ["*"]
    channels: [COPS]
`)
	})
	r := h.slash(t, alice, "COPS", "create orders brokers=3 zones=us-east-1a,us-east-1b,us-east-1c version=3.7.1")
	assert.Equal(t, "in_channel", r.ResponseType)
	assert.Contains(t, r.Text, "ran `create orders brokers=3 zones=us-east-1a,us-east-1b,us-east-1c version=3.7.1`")
	r = h.slash(t, alice, "COPS", "delete orders force")
	assert.Equal(t, "in_channel", r.ResponseType)
	assert.Contains(t, r.Text, "asks for `delete orders force`: a second person must approve")
	assert.Equal(t, []string{
		"run create orders brokers=3 zones=us-east-1a,us-east-1b,us-east-1c version=3.7.1 by U0ALICE",
		"propose delete orders force by U0ALICE to bob",
	}, h.backend.Calls())
	r = h.slash(t, alice, "COPS", "create orders brokers=3")
	assert.Equal(t, "ephemeral", r.ResponseType)
	assert.Contains(t, r.Text, "missing zones=")
	r = h.slash(t, alice, "COPS", "help")
	assert.Contains(t, r.Text, "restart, upgrade, expand, remove-broker, replace-controller, abort, delete, tenant-delete, topic-delete are not run at once")
}
