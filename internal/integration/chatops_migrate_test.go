package integration_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/workflows"
)

// TestIntegrationChatopsMigrate drives the ZooKeeper-to-KRaft migration's
// chat verbs through the local stack's ChatOps server and its real chat
// backend: on a cluster at Kafka 3.8.1 the preflight refuses, naming the
// 3.9.x it needs; at 3.9.0 the migration awaits phase 1, which the person
// who started it may not approve, nor anyone approve a phase out of turn.
// Phases are not approved here: the fleet's audit shows nothing touched.
func TestIntegrationChatopsMigrate(t *testing.T) {
	t.Parallel() // mostly waiting
	const cluster = "chatmig-a"
	stack := startStackWith(t, fastFleet(localfleet.ClusterConfig{ID: cluster, Brokers: 3}), func(o *devstack.StackOptions) {
		o.ChatopsAddr = "127.0.0.1:0"
		o.NotifyOut = io.Discard
	})
	slack := newSlackStandIn(t, stack.Chatops)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	audit := len(stack.Fleet.Audit(cluster))
	// say types text as user and reads the answer. "kfleet is
	// unavailable" (a backend call outlasted chat's quick timeout: on a
	// loaded machine an entity's query can) is asked again, as the answer
	// tells a person to; every verb here is safe to ask twice.
	say := func(user, text string) (ephemeral bool, reply string) {
		t.Helper()
		for try := 1; ; try++ {
			began := time.Now()
			code, body := slack.command(user, text)
			require.Equal(t, http.StatusOK, code, body)
			var m struct {
				ResponseType string `json:"response_type"`
				Text         string `json:"text"`
			}
			require.NoError(t, json.Unmarshal([]byte(body), &m), body)
			t.Logf("%s: /kafka %s (%s, try %d)\n%s", user, text, time.Since(began).Round(time.Millisecond), try, m.Text)
			if !strings.Contains(m.Text, "kfleet is unavailable") || try == 5 {
				return m.ResponseType == "ephemeral", m.Text
			}
			time.Sleep(time.Second)
		}
	}
	// register re-registers the cluster as running release version at
	// inter.broker.protocol.version ibp.
	register := func(version, ibp string) {
		t.Helper()
		spec := stack.Specs[cluster]
		spec.KafkaVersion, spec.InterBrokerProtocol = version, ibp
		require.NoError(t, entity.RegisterCluster(ctx, stack.Client, spec))
	}
	// started reads a start's preflight verdict: from its reply, or from
	// migrate status when the preflight outlasted chat's quick timeout.
	started := func(user, text string) (ephemeral bool, reply string) {
		t.Helper()
		ephemeral, reply = say(user, text)
		if !strings.Contains(reply, "preflight is still running") {
			return ephemeral, reply
		}
		require.Eventually(t, func() bool {
			_, reply = say(user, "migrate status "+cluster)
			return !strings.Contains(reply, ": preflight;")
		}, 30*time.Second, 500*time.Millisecond)
		return strings.Contains(reply, workflows.MigrationRefused), reply
	}

	// At 3.8.1 the preflight refuses: the reply names what blocks it.
	register("3.8.1", "3.8")
	ephemeral, reply := started("alice", "migrate start "+cluster)
	assert.True(t, ephemeral, "a refusal is shown to who asked")
	assert.Contains(t, reply, "refused")
	assert.Contains(t, reply, "3.9.x")
	assert.Contains(t, reply, "broker 1 runs 3.8.1")
	ephemeral, reply = say("bob", "migrate approve "+cluster+" 1")
	assert.True(t, ephemeral)
	assert.Contains(t, reply, "no migration of it awaits a decision", "the refused migration ended: nothing to approve")

	// At 3.9.0 it awaits phase 1.
	register("3.9.0", "3.9")
	ephemeral, reply = started("alice", "migrate start "+cluster+" controllers=3")
	assert.False(t, ephemeral, "a started migration is told to the channel")
	assert.Contains(t, reply, "awaiting-approval")
	assert.Contains(t, reply, "next: phase 1-controllers awaits approval by someone other than alice (migrate approve "+cluster+" 1)")
	assert.NotContains(t, reply, "blocked")

	// alice may not approve her own migration's phase; bob may not approve
	// a phase out of turn.
	ephemeral, reply = say("alice", "migrate approve "+cluster+" 1")
	assert.True(t, ephemeral)
	assert.Contains(t, reply, ":no_entry:")
	assert.Contains(t, reply, "alice asked for this migration: a second, different person approves its phases")
	ephemeral, reply = say("bob", "migrate approve "+cluster+" 2")
	assert.True(t, ephemeral)
	assert.Contains(t, reply, "phase 2-dual-write is not the one awaiting approval: phase 1-controllers is")
	ephemeral, reply = say("bob", "migrate rollback "+cluster+" why not")
	assert.True(t, ephemeral)
	assert.Contains(t, reply, "there is nothing to roll back")

	_, reply = say("bob", "migrate status "+cluster)
	assert.Contains(t, reply, "asked by alice): awaiting-approval; the cluster is zookeeper")
	st, err := entity.MigrationStatus(ctx, stack.Client, cluster)
	require.NoError(t, err)
	assert.Equal(t, workflows.MigrationAwaiting, st.Status)
	assert.Equal(t, "alice", st.RequestedBy, "the chat user is the migration's requester")
	assert.Empty(t, st.Steps, "no phase started")

	// bob abandons it: the cluster stays in ZooKeeper mode.
	ephemeral, reply = say("bob", "migrate abandon "+cluster+" not this week")
	assert.False(t, ephemeral)
	assert.Contains(t, reply, "migration of "+cluster+" to KRaft abandoned by bob; the cluster is zookeeper")
	require.Eventually(t, func() bool {
		st, err = entity.MigrationStatus(ctx, stack.Client, cluster)
		return err == nil && st.Status == workflows.MigrationAbandoned
	}, 10*time.Second, 100*time.Millisecond)
	assert.Contains(t, st.Error, "abandoned by bob at zookeeper: not this week")

	// The fleet's own account: nothing happened to it (no broker stopped
	// or started, no controller's host launched), no /migration znode, no
	// violation.
	assert.Len(t, stack.Fleet.Audit(cluster), audit, "the fleet saw nothing happen: %v", stack.Fleet.Audit(cluster)[audit:])
	exists, _, err := zkConn(t, stack).Exists(cloud.ZooKeeperChroot(cluster) + "/migration")
	require.NoError(t, err)
	assert.False(t, exists, "no /migration znode")
	es, err := entity.ClusterStatus(ctx, stack.Client, cluster)
	require.NoError(t, err)
	assert.Nil(t, es.Spec.KRaft, "the cluster's spec is ZooKeeper mode's still")
	assert.Nil(t, es.Running)
	assert.Empty(t, es.History, "the entity ran no operation")
	noViolations(t, stack, cluster)
}
