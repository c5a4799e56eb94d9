package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// OpTopicAdmin is the admin lane (OPERATIONS.md "Tenants", issue #14):
// tenants' topic creations and deletions, partitions added, retention set
// and consumer groups deleted go through the cluster's entity,
// in the maintenance lane (one at a time, never beside a roll), batched:
// a request joins the queued batch of the same action, so one CreateTopics
// (DeleteTopics, CreatePartitions, ...) carries them all. Admission refuses, with its reason
// and touching nothing, a topic outside its tenant's prefix, an unknown
// tenant, a retention outside the plan's bounds, or partitions the queued
// batch and the request would take over the plan's limit; the batch's
// activity decides again against what the prefixes hold and the brokers'
// FD/mmap budget (fleet/admin_budget.go), and waits out KIP-599 throttles.
const OpTopicAdmin = "topic-admin"

// MaxTopicsPerRequest bounds one request's topics.
const MaxTopicsPerRequest = 500

// TopicAdminParams are a batch: its action (activities.TopicActions), its
// topics (for create, their shape; add-partitions, each one's new total
// of Partitions; retention, its RetentionMs; delete-groups, each Name is a
// consumer group), and the plans of their tenants as admitted (admission fills them in:
// workflow code reads no catalog).
type TopicAdminParams struct {
	Action string                      `json:"action"`
	Topics []fleet.TopicRequest        `json:"topics"`
	Plans  map[string]fleet.TenantPlan `json:"plans,omitempty"`
}

func (p TopicAdminParams) tenants() []string {
	var out []string
	for _, t := range p.Topics {
		if !slices.Contains(out, t.Tenant) {
			out = append(out, t.Tenant)
		}
	}
	return out
}

func (p TopicAdminParams) partitionsOf(tenant string) int {
	n := 0
	for _, t := range p.Topics {
		if t.Tenant == tenant {
			n += t.Partitions
		}
	}
	return n
}

// queuedTopicBatch is the queued (not yet running) batch of action.
func queuedTopicBatch(st *ClusterState, action string) (Operation, TopicAdminParams, bool) {
	for _, op := range st.Queue {
		if op.Kind != OpTopicAdmin || op.Status != StatusQueued {
			continue
		}
		if p, err := paramsOf[TopicAdminParams](op, nil); err == nil && p.Action == action {
			return op, p, true
		}
	}
	return Operation{}, TopicAdminParams{}, false
}

var topicAdminKind = &kind[TopicAdminParams, TopicAdminInput, activities.TopicBatchResult]{
	name:    OpTopicAdmin,
	slug:    "topics",
	summary: "create or delete tenants' topics, add partitions, set retention, delete consumer groups through the cluster's admin lane: serialized, batched, never during a roll, within each tenant's prefix, plan and the brokers' FD/mmap budget, honouring KIP-599 throttles",
	actions: []ActionVerb{
		{Verb: "topic-create", Action: activities.TopicActionCreate, Summary: "create a tenant's topic"},
		{Verb: "topic-delete", Action: activities.TopicActionDelete, Summary: "delete a tenant's topic (its data is lost)", Destructive: true},
		{Verb: "topic-partitions", Action: activities.TopicActionAddPartitions, Summary: "take a tenant's topic to more partitions"},
		{Verb: "topic-retention", Action: activities.TopicActionRetention, Summary: "set a tenant's topic's retention within its plan's bounds"},
		{Verb: "group-delete", Action: activities.TopicActionDeleteGroups, Summary: "delete a tenant's consumer group with no live members"},
	},
	actionOf:     func(p TopicAdminParams) string { return p.Action },
	lane:         LaneMaintenance,
	impact:       fleet.ImpactAdmin,
	workflowName: "TopicAdminWorkflow",
	workflow:     TopicAdminWorkflow,
	validate: func(req Request, p TopicAdminParams) error {
		if err := noBrokers(req); err != nil {
			return err
		}
		if !slices.Contains(activities.TopicActions(), p.Action) {
			return fmt.Errorf("action %q: want one of %s", p.Action, strings.Join(activities.TopicActions(), ", "))
		}
		if len(p.Topics) == 0 || len(p.Topics) > MaxTopicsPerRequest {
			return fmt.Errorf("%d %s: want 1 to %d", len(p.Topics), itemNoun(p.Action), MaxTopicsPerRequest)
		}
		var errs []error
		for i, t := range p.Topics {
			if err := fleet.ValidateTenantName(t.Tenant); err != nil {
				errs = append(errs, err)
			} else if err := checkItem(p.Action, t); err != nil {
				errs = append(errs, err)
			} else if slices.ContainsFunc(p.Topics[:i], func(o fleet.TopicRequest) bool { return o.Name == t.Name }) {
				errs = append(errs, fmt.Errorf("%s %s is asked for twice", itemKind(p.Action), t.Name))
			}
		}
		return errors.Join(errs...)
	},
	check: func(a admission, _ Request, p *TopicAdminParams) error {
		p.Plans = map[string]fleet.TenantPlan{}
		_, queued, _ := queuedTopicBatch(a.st, p.Action)
		var errs []error
		for _, name := range p.tenants() {
			t, err := knownTenant(a, name, OpTopicAdmin)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			p.Plans[name] = t.Plan
			// Creations and partition totals count against the plan's
			// limit with the queued batch's: a lower bound of what the
			// prefix will hold (the batch's activity counts what it
			// holds now).
			if p.Action != activities.TopicActionCreate && p.Action != activities.TopicActionAddPartitions {
				continue
			}
			limit := t.Plan.PartitionLimit(len(a.spec.Brokers))
			if n := queued.partitionsOf(name) + p.partitionsOf(name); n > limit {
				errs = append(errs, fmt.Errorf("tenant %s: %d partition(s) asked for (with the queued batch) are over plan %s's %d", name, n, t.Plan.Name, limit))
			}
		}
		for _, t := range p.Topics {
			if slices.ContainsFunc(queued.Topics, func(o fleet.TopicRequest) bool { return o.Name == t.Name }) {
				errs = append(errs, fmt.Errorf("%s %s is in the queued batch already", itemKind(p.Action), t.Name))
			}
			pl, ok := p.Plans[t.Tenant]
			if !ok {
				continue
			}
			switch p.Action {
			case activities.TopicActionCreate:
				if err := fleet.CheckTopicShape(pl, len(a.spec.Brokers), t); err != nil {
					errs = append(errs, err)
				}
			case activities.TopicActionRetention:
				if err := fleet.CheckRetention(pl, t.Name, t.RetentionMs); err != nil {
					errs = append(errs, err)
				}
			}
		}
		return errors.Join(errs...)
	},
	// A request joins the queued batch of its action: its topics are
	// added to it (the entity writes the parameters back).
	joins: func(a admission, _ Request, p *TopicAdminParams) (Operation, bool, error) {
		op, q, ok := queuedTopicBatch(a.st, p.Action)
		if !ok {
			return Operation{}, false, nil
		}
		q.Topics = append(slices.Clone(q.Topics), p.Topics...)
		plans := map[string]fleet.TenantPlan{}
		for _, m := range []map[string]fleet.TenantPlan{q.Plans, p.Plans} {
			for _, name := range sortedKeys(m) {
				plans[name] = m[name]
			}
		}
		q.Plans = plans
		op.Params = mustJSON(q)
		return op, true, nil
	},
	input: func(spec fleet.ClusterSpec, op Operation, p TopicAdminParams) TopicAdminInput {
		return TopicAdminInput{Spec: spec, OperationID: op.ID, Action: p.Action, Topics: p.Topics, Plans: p.Plans}
	},
	title: func(spec fleet.ClusterSpec, _ Operation, p TopicAdminParams) string {
		return fmt.Sprintf("Topic %s of %d %s of %s on **%s**", p.Action, len(p.Topics), itemNoun(p.Action), strings.Join(p.tenants(), ", "), spec.ID)
	},
	report: func(r activities.TopicBatchResult, err error) Report {
		if err != nil && r.Requests == 0 {
			return Report{}
		}
		return Report{Outcome: topicOutcome(r)}
	},
	describe: func(p TopicAdminParams) string {
		return fmt.Sprintf("%s %d %s of %s", p.Action, len(p.Topics), itemNoun(p.Action), strings.Join(p.tenants(), ", "))
	},
}

// itemKind is what an action's entries name: consumer groups for
// delete-groups, topics for the others.
func itemKind(action string) string {
	if action == activities.TopicActionDeleteGroups {
		return "group"
	}
	return "topic"
}

func itemNoun(action string) string { return itemKind(action) + "(s)" }

// checkItem checks one entry of a request on its face for its action.
func checkItem(action string, t fleet.TopicRequest) error {
	switch action {
	case activities.TopicActionDeleteGroups:
		return fleet.CheckGroupName(t.Tenant, t.Name)
	case activities.TopicActionAddPartitions:
		if t.Partitions < 1 || t.Partitions > fleet.MaxTopicPartitions {
			return fmt.Errorf("topic %s: a new total of %d partitions: want 1 to %d", t.Name, t.Partitions, fleet.MaxTopicPartitions)
		}
	case activities.TopicActionRetention:
		if t.RetentionMs <= 0 {
			return fmt.Errorf("topic %s: retention.ms %d: want a positive retention", t.Name, t.RetentionMs)
		}
	}
	return fleet.CheckTopicName(t.Tenant, t.Name)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// topicOutcome reads a batch's result: counts, and the first refusals'
// reasons.
func topicOutcome(r activities.TopicBatchResult) string {
	s := fmt.Sprintf("%d of %d %s done (%d already so) in %d admin request(s)", r.Done, r.Requested, itemNoun(r.Action), r.Existing, r.Requests)
	if r.Throttled > 0 {
		s += fmt.Sprintf("; %d throttled by KIP-599, waited %d ms", r.Throttled, r.ThrottledMillis)
	}
	if len(r.Refused) > 0 {
		s += fmt.Sprintf("; %d refused", len(r.Refused))
		for i, ref := range r.Refused {
			if i == 3 {
				s += fmt.Sprintf(" (+%d more)", len(r.Refused)-3)
				break
			}
			s += "; " + ref.Reason
		}
	}
	return s
}
