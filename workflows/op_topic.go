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
// tenants' topic creations and deletions go through the cluster's entity,
// in the maintenance lane (one at a time, never beside a roll), batched:
// a request joins the queued batch of the same action, so one CreateTopics
// (or DeleteTopics) carries them all. Admission refuses, with its reason
// and touching nothing, a topic outside its tenant's prefix, an unknown
// tenant, a retention outside the plan's bounds, or partitions the queued
// batch and the request would take over the plan's limit; the batch's
// activity decides again against what the prefixes hold and the brokers'
// FD/mmap budget (fleet/admin_budget.go), and waits out KIP-599 throttles.
const OpTopicAdmin = "topic-admin"

// MaxTopicsPerRequest bounds one request's topics.
const MaxTopicsPerRequest = 500

// TopicAdminParams are a batch: its action (create, delete), its topics,
// and the plans of their tenants as admitted (admission fills them in:
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
	name:         OpTopicAdmin,
	slug:         "topics",
	summary:      "create or delete tenants' topics through the cluster's admin lane: serialized, batched, never during a roll, within each tenant's prefix, plan and the brokers' FD/mmap budget, honouring KIP-599 throttles",
	lane:         LaneMaintenance,
	workflowName: "TopicAdminWorkflow",
	workflow:     TopicAdminWorkflow,
	validate: func(req Request, p TopicAdminParams) error {
		if err := noBrokers(req); err != nil {
			return err
		}
		if p.Action != activities.TopicActionCreate && p.Action != activities.TopicActionDelete {
			return fmt.Errorf("action %q: want create or delete", p.Action)
		}
		if len(p.Topics) == 0 || len(p.Topics) > MaxTopicsPerRequest {
			return fmt.Errorf("%d topic(s): want 1 to %d", len(p.Topics), MaxTopicsPerRequest)
		}
		var errs []error
		for i, t := range p.Topics {
			if err := fleet.ValidateTenantName(t.Tenant); err != nil {
				errs = append(errs, err)
			} else if err := fleet.CheckTopicName(t.Tenant, t.Name); err != nil {
				errs = append(errs, err)
			} else if slices.ContainsFunc(p.Topics[:i], func(o fleet.TopicRequest) bool { return o.Name == t.Name }) {
				errs = append(errs, fmt.Errorf("topic %s is asked for twice", t.Name))
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
			if p.Action != activities.TopicActionCreate {
				continue
			}
			limit := t.Plan.PartitionLimit(len(a.spec.Brokers))
			if n := queued.partitionsOf(name) + p.partitionsOf(name); n > limit {
				errs = append(errs, fmt.Errorf("tenant %s: %d partition(s) asked for (with the queued batch) are over plan %s's %d", name, n, t.Plan.Name, limit))
			}
		}
		for _, t := range p.Topics {
			if slices.ContainsFunc(queued.Topics, func(o fleet.TopicRequest) bool { return o.Name == t.Name }) {
				errs = append(errs, fmt.Errorf("topic %s is in the queued batch already", t.Name))
			}
			if pl, ok := p.Plans[t.Tenant]; ok && p.Action == activities.TopicActionCreate {
				if err := fleet.CheckTopicShape(pl, len(a.spec.Brokers), t); err != nil {
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
		return fmt.Sprintf("Topic %s of %d topic(s) of %s on **%s**", p.Action, len(p.Topics), strings.Join(p.tenants(), ", "), spec.ID)
	},
	report: func(r activities.TopicBatchResult, err error) Report {
		if err != nil && r.Requests == 0 {
			return Report{}
		}
		return Report{Outcome: topicOutcome(r)}
	},
	describe: func(p TopicAdminParams) string {
		return fmt.Sprintf("%s %d topic(s) of %s", p.Action, len(p.Topics), strings.Join(p.tenants(), ", "))
	},
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
	s := fmt.Sprintf("%d of %d topic(s) done (%d already so) in %d admin request(s)", r.Done, r.Requested, r.Existing, r.Requests)
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
