package workflows_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// add-partitions, retention and delete-groups through the entity: each
// request joins the queued batch of its action, and what admission
// refuses starts and queues nothing.
func (s *TopicAdminSuite) TestBreadthBatchedAndRefused() {
	tenants := []workflows.TenantState{{Name: "wabash-1", Plan: tenantPlan("basic-0")}}
	state := &workflows.ClusterState{Tenants: tenants, Paused: &workflows.PauseState{By: "test", Reason: "hold the queue"}}
	total := func(name string, n int) fleet.TopicRequest {
		return fleet.TopicRequest{Tenant: "wabash-1", Name: name, Partitions: n}
	}
	retention := func(name string, d time.Duration) fleet.TopicRequest {
		return fleet.TopicRequest{Tenant: "wabash-1", Name: name, RetentionMs: d.Milliseconds()}
	}
	group := func(name string) fleet.TopicRequest { return fleet.TopicRequest{Tenant: "wabash-1", Name: name} }
	type ask struct {
		action string
		topic  fleet.TopicRequest
		joins  bool   // joins the queued batch of its action
		refuse string // "": admitted
	}
	asks := []ask{
		{"add-partitions", total("wabash-1.a", 100), false, ""},
		{"add-partitions", total("wabash-1.b", 100), true, ""},
		{"add-partitions", total("wabash-1.c", 50), false, "tenant wabash-1: 250 partition(s) asked for (with the queued batch) are over plan basic-0's 240"},
		{"add-partitions", total("ohio-2.x", 5), false, `topic "ohio-2.x" is outside tenant wabash-1's prefix wabash-1.`},
		{"add-partitions", total("wabash-1.d", 0), false, "topic wabash-1.d: a new total of 0 partitions: want 1 to 10000"},
		{"add-partitions", total("wabash-1.a", 120), false, "topic wabash-1.a is in the queued batch already"},
		{"retention", retention("wabash-1.a", time.Hour), false, "topic wabash-1.a: retention 1h0m0s is outside plan basic-0's bounds (6h0m0s to 168h0m0s)"},
		{"retention", retention("wabash-1.a", 0), false, "topic wabash-1.a: retention.ms 0: want a positive retention"},
		{"retention", retention("wabash-1.a", 12*time.Hour), false, ""},
		{"retention", retention("wabash-1.b", 36*time.Hour), true, ""},
		{"delete-groups", group("wabash-1.g"), false, ""},
		{"delete-groups", group("ohio-2.g"), false, `group "ohio-2.g" is outside tenant wabash-1's prefix wabash-1.`},
		{"delete-groups", group("wabash-1.g"), false, "group wabash-1.g is in the queued batch already"},
		{"rename", group("wabash-1.a"), false, `action "rename": want one of create, delete, add-partitions, retention, delete-groups`},
	}
	answers := make([]answer, len(asks))
	for i, a := range asks {
		s.update(time.Duration(i+1)*time.Minute, workflows.UpdateRequest, topicReq(a.action, a.topic), &answers[i])
	}
	var queued workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { queued = s.status() }, time.Duration(len(asks))*time.Minute+30*time.Second)
	s.update(time.Duration(len(asks)+1)*time.Minute, workflows.UpdateResume, workflows.ResumeRequest{By: "test"}, &answer{})
	var st workflows.ClusterStatus
	s.env.RegisterDelayedCallback(func() { st = s.status(); s.env.CancelWorkflow() }, time.Duration(len(asks)+10)*time.Minute)
	stubSelfHealing(s.env)
	s.env.ExecuteWorkflow(workflows.ClusterWorkflow, workflows.ClusterInput{Spec: testSpec(), State: state})

	for i, a := range asks {
		if a.refuse != "" {
			s.ErrorContains(answers[i].err, a.refuse, "%s %s", a.action, a.topic.Name)
			continue
		}
		s.Require().NoError(answers[i].err, "%s %s", a.action, a.topic.Name)
		s.Equal(a.joins, answers[i].op.Existing, "%s %s joins the queued batch of its action", a.action, a.topic.Name)
	}
	s.Require().Len(queued.Queue, 3, "one batch per action; refusals queue nothing")
	s.Require().Len(s.batches, 3)
	for i, want := range []struct {
		action string
		names  []string
	}{
		{"add-partitions", []string{"wabash-1.a", "wabash-1.b"}},
		{"retention", []string{"wabash-1.a", "wabash-1.b"}},
		{"delete-groups", []string{"wabash-1.g"}},
	} {
		b := s.batches[i]
		s.Equal(want.action, b.Action)
		var names []string
		for _, t := range b.Topics {
			names = append(names, t.Name)
		}
		s.Equal(want.names, names)
		s.Equal("basic-0", b.Plans["wabash-1"].Name, "admission fills in the plans")
	}
	s.Equal(int64(36*time.Hour/time.Millisecond), s.batches[1].Topics[1].RetentionMs)
	s.Require().Len(st.History, 3)
	for _, op := range st.History {
		s.Equal(workflows.StatusSucceeded, op.Status)
	}
}

// Each action of the admin lane has its verb; a request's verb is its
// action's, and only topic-delete needs a second person.
func TestTopicAdminVerbs(t *testing.T) {
	k, err := workflows.KindNamed(workflows.OpTopicAdmin)
	require.NoError(t, err)
	for _, tc := range []struct {
		action, verb string
		destructive  bool
	}{
		{"create", "topic-create", false},
		{"delete", "topic-delete", true},
		{"add-partitions", "topic-partitions", false},
		{"retention", "topic-retention", false},
		{"delete-groups", "group-delete", false},
	} {
		verb, err := k.VerbOf(topicReq(tc.action, fleet.TopicRequest{Tenant: "wabash-1", Name: "wabash-1.a", Partitions: 3, RetentionMs: 6 * 3600_000}))
		require.NoError(t, err, tc.action)
		assert.Equal(t, tc.verb, verb)
		assert.Equal(t, tc.destructive, workflows.DestructiveVerb(tc.verb), tc.verb)
		_, av, err := workflows.ActionOfVerb(tc.verb)
		require.NoError(t, err)
		assert.Equal(t, tc.action, av.Action)
	}
	assert.False(t, k.Destructive(), "the kind itself takes nothing down")
	assert.True(t, workflows.DestructiveVerb("tenant-delete"), "kinds' own verbs as before")
	assert.False(t, workflows.DestructiveVerb("reboot"))
}
