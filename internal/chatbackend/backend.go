// Package chatbackend is what the ChatOps server (internal/chatops) asks
// of kfleet, over a Temporal client: chat commands become the same
// requests, decisions and approvals as the CLI's (internal/entity).
package chatbackend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/chatops"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// backend is chatops.Backend over a Temporal client.
type backend struct {
	c client.Client
	// every paces Follow's polls.
	every time.Duration
}

// New is what the chat server asks of kfleet, through c.
func New(c client.Client) chatops.Backend {
	return backend{c: c, every: 2 * time.Second}
}

func (b backend) Status(ctx context.Context, cluster string) (string, error) {
	rep, err := entity.Status(ctx, b.c, cluster)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	entity.RenderStatus(&out, rep, entity.RenderOptions{History: 3})
	return strings.TrimRight(out.String(), "\n"), nil // the server sets it in a code block
}

func (b backend) List(ctx context.Context) (string, error) {
	cs, err := entity.ListClusters(ctx, b.c)
	if err != nil {
		return "", err
	}
	if len(cs) == 0 {
		return "no cluster is registered", nil
	}
	lines := make([]string, len(cs))
	for i, cl := range cs {
		lines[i] = fmt.Sprintf("%s (registered %s)", cl.ID, cl.StartedAt.Format(time.DateOnly))
	}
	return strings.Join(lines, "\n"), nil
}

func (b backend) Run(ctx context.Context, cmd chatops.Command, user string) (string, string, error) {
	switch cmd.Verb {
	case chatops.VerbPause:
		p, err := entity.Pause(ctx, b.c, cmd.Cluster, workflows.PauseRequest{By: user, Reason: cmd.Reason})
		if err != nil {
			return "", "", err
		}
		return fmt.Sprintf("%s paused by %s: no queued operation starts until resumed", cmd.Cluster, p.By), "", nil
	case chatops.VerbResume:
		if _, err := entity.Resume(ctx, b.c, cmd.Cluster, workflows.ResumeRequest{By: user}); err != nil {
			return "", "", err
		}
		return fmt.Sprintf("%s resumed by %s", cmd.Cluster, user), "", nil
	case chatops.VerbCreate:
		adm, err := entity.Provision(ctx, b.c, cmd.Plan, user)
		if err != nil {
			return "", "", err
		}
		return fmt.Sprintf("creating %s: %d brokers over %s (plan %s, provisioning %s)", cmd.Cluster, cmd.Plan.Brokers,
			strings.Join(cmd.Plan.AvailabilityZones, ", "), adm.Plan, adm.WorkflowID), adm.WorkflowID, nil
	case chatops.VerbMigrateStart, chatops.VerbMigrateStatus, chatops.VerbMigrateApprove, chatops.VerbMigrateRollback, chatops.VerbMigrateAbandon:
		return b.migrate(ctx, cmd, user) // migrate.go
	}
	// An operation that takes nothing down (cleaner-check, add-brokers,
	// rebalance) is asked for now; a destructive one only once approved.
	if _, err := workflows.KindOfVerb(string(cmd.Verb)); err == nil && !workflows.DestructiveVerb(string(cmd.Verb)) {
		s, err := entity.Submit(ctx, b.c, action(cmd, user))
		if err != nil {
			return "", "", err
		}
		return s.Text, s.OperationID, nil
	}
	return "", "", fmt.Errorf("%w: %s is not run directly", fleet.ErrRefused, cmd.Verb)
}

// action is the chat command as an Action: its arguments are the
// operation kind's parameters by the names they have there (batch= is a
// restart's maxBatch, a version an upgrade's version, throttle= a
// resize's throttleBytesPerSec).
func action(cmd chatops.Command, user string) activities.Action {
	act := activities.Action{Verb: string(cmd.Verb), Cluster: cmd.Cluster, Brokers: cmd.Brokers,
		OperationID: cmd.OperationID, RequestedBy: user, Reason: cmd.Reason}
	if cmd.Topic != "" || cmd.Group != "" {
		act.Params = topicParams(cmd)
		return act
	}
	params := map[string]any{}
	param(params, "maxBatch", cmd.MaxBatch)
	param(params, "version", cmd.Version)
	param(params, "metadataVersion", cmd.MetadataVersion)
	param(params, "force", cmd.Force)
	param(params, "count", cmd.Count)
	param(params, "instanceType", cmd.InstanceType)
	param(params, "volumeGiB", cmd.VolumeGiB)
	param(params, "throttleBytesPerSec", cmd.ThrottleBytesPerSec)
	param(params, "node", cmd.Node)
	// A tenant's plan (its limits are the catalog's: entity.Request
	// resolves them), a rotation's grace, and the tenant, which a
	// creation calls its name.
	param(params, "plan", cmd.TenantPlan)
	param(params, "grace", cmd.Grace)
	if cmd.Verb == chatops.VerbTenantCreate {
		param(params, "name", cmd.Tenant)
	} else {
		param(params, "tenant", cmd.Tenant)
	}
	if len(params) > 0 {
		act.Params, _ = json.Marshal(params) // ints and strings always encode
	}
	return act
}

// topicParams are an admin lane verb's parameters: a batch of one topic
// (or group) of the verb's action, which joins the queued batch of that
// action if there is one.
func topicParams(cmd chatops.Command) json.RawMessage {
	_, av, _ := workflows.ActionOfVerb(string(cmd.Verb)) // an unknown verb: the kind's check refuses "" as an action
	t := fleet.TopicRequest{Tenant: cmd.Tenant, Name: cmd.Topic, Partitions: cmd.Partitions, ReplicationFactor: cmd.ReplicationFactor,
		RetentionMs: cmd.RetentionMs()}
	if cmd.Verb == chatops.VerbGroupDelete {
		t.Name = cmd.Group
	}
	if cmd.Verb == chatops.VerbTopicCreate && t.Partitions == 0 {
		t.Partitions = chatops.DefaultTopicPartitions
	}
	raw, _ := json.Marshal(workflows.TopicAdminParams{Action: av.Action, Topics: []fleet.TopicRequest{t}}) // plain structs always encode
	return raw
}

// param sets params[name] to v unless v is its type's zero (a default).
func param[T comparable](params map[string]any, name string, v T) {
	var zero T
	if v != zero {
		params[name] = v
	}
}

func (b backend) Propose(ctx context.Context, cmd chatops.Command, user string, approvers []string) (string, error) {
	// The same person asking the same thing within the same minute gets
	// the same approval: a retry after a slow answer starts nothing new.
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", user, cmd.String(), time.Now().Unix()/60))
	return entity.Propose(ctx, b.c, action(cmd, user), approvers, hex.EncodeToString(sum[:8]))
}

func (b backend) Decide(ctx context.Context, approvalID, user string, approve bool) (string, string, error) {
	st, err := entity.Approve(ctx, b.c, approvalID, workflows.ApprovalDecision{By: user, Approve: approve})
	if err != nil {
		return "", "", err
	}
	switch st.Status {
	case workflows.ApprovalApproved:
		return fmt.Sprintf("approved by %s: %s", st.DecidedBy, st.Submitted.Text), st.Submitted.OperationID, nil
	case workflows.ApprovalDenied:
		return fmt.Sprintf("%s of %s denied by %s: nothing started", st.Action.Verb, st.Action.Cluster, st.DecidedBy), "", nil
	case workflows.ApprovalFailed:
		return "", "", fmt.Errorf("%w: approved by %s, but %s", fleet.ErrRefused, st.DecidedBy, st.Error)
	}
	return fmt.Sprintf("approval %s", st.Status), "", nil
}

func (b backend) Follow(ctx context.Context, cluster, operationID string, progress func(string)) (string, error) {
	if operationID == workflows.ProvisionWorkflowID(cluster) {
		return b.followProvision(ctx, cluster, progress)
	}
	last := ""
	for {
		st, err := entity.FollowStatus(ctx, b.c, cluster, b.every)
		if err != nil {
			return "", err
		}
		op, ok := st.Operation(operationID)
		if !ok {
			return "", fmt.Errorf("cluster %s: operation %s is no longer known", cluster, operationID)
		}
		line := fmt.Sprintf("%s %s on %s: %s", op.Kind, op.ID, cluster, op.Status)
		if op.Status == workflows.StatusRunning {
			if p := entity.OperationProgress(ctx, b.c, op); len(p) > 0 {
				line += ": " + strings.Join(p, "; ")
			}
		}
		switch op.Status {
		case workflows.StatusSucceeded:
			return strings.TrimSpace(line + " " + op.Outcome), nil
		case workflows.StatusFailed, workflows.StatusCancelled:
			return "", fmt.Errorf("%s: %s", line, op.Error)
		}
		if line != last {
			progress(line)
			last = line
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(b.every):
		}
	}
}

// followProvision follows a cluster's creation to its end.
func (b backend) followProvision(ctx context.Context, cluster string, progress func(string)) (string, error) {
	res, err := entity.FollowProvision(ctx, b.c, cluster, b.every, func(p workflows.ProvisionProgress) {
		progress(strings.Join(workflows.ProvisionLines(p), "; "))
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("created %s: %d hosts, %d data volumes; bootstrap %s; registered with kfleet", res.Cluster, res.Hosts, res.Volumes,
		strings.Join(res.Bootstrap, ",")), nil
}
