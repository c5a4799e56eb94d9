package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/chatops"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// chatopsBackend is chatops.Backend over a Temporal client.
type chatopsBackend struct {
	c client.Client
	// every paces Follow's polls.
	every time.Duration
}

// NewChatopsBackend is what the chat server asks of kfleet, through c.
func NewChatopsBackend(c client.Client) chatops.Backend {
	return chatopsBackend{c: c, every: 2 * time.Second}
}

// chatError maps this package's refusals onto the chat server's.
func chatError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnknownCluster):
		return fmt.Errorf("%w: %w", chatops.ErrUnknownCluster, err)
	case errors.Is(err, ErrRefused), errors.Is(err, ErrNothingRunning):
		return fmt.Errorf("%w: %w", chatops.ErrRefused, err)
	}
	return err
}

func (b chatopsBackend) Status(ctx context.Context, cluster string) (string, error) {
	st, err := ClusterStatus(ctx, b.c, cluster)
	if err != nil {
		return "", chatError(err)
	}
	return DescribeStatus(st), nil
}

// DescribeStatus is a cluster's status in a few lines for humans.
func DescribeStatus(st workflows.ClusterStatus) string {
	var lines []string
	head := fmt.Sprintf("*%s*: %d brokers", st.Spec.ID, len(st.Spec.Brokers))
	if st.Paused != nil {
		head += fmt.Sprintf(", PAUSED by %s (%s)", st.Paused.By, st.Paused.Reason)
	}
	lines = append(lines, head)
	if r := st.Running; r != nil {
		lines = append(lines, fmt.Sprintf("running: %s %s (by %s, since %s)", r.Kind, r.ID, r.RequestedBy, r.StartedAt.Format(time.RFC3339)))
	}
	for _, u := range st.Urgent {
		lines = append(lines, fmt.Sprintf("urgent: %s %s on broker(s) %v", u.Kind, u.ID, u.Brokers))
	}
	for _, q := range st.Queue {
		lines = append(lines, fmt.Sprintf("queued: %s %s (by %s)", q.Kind, q.ID, q.RequestedBy))
	}
	for _, l := range st.OpenLosses() {
		lines = append(lines, fmt.Sprintf("broker %d lost at %s (recovery %s)", l.Broker, l.At.Format(time.RFC3339), l.Recovery))
	}
	if hs := st.Health; hs != nil {
		for _, bh := range hs.Brokers {
			if bh.Last.Error != "" {
				lines = append(lines, fmt.Sprintf("broker %d: metrics unavailable", bh.Broker))
				continue
			}
			lines = append(lines, fmt.Sprintf("broker %d: disk %.0f%%, heap %s/%s, cleaner dead threads %d",
				bh.Broker, bh.Last.Disk.Percent(), fleet.Bytes(bh.Last.Heap.Used), fleet.Bytes(bh.Last.Heap.Max), bh.Last.Cleaner.DeadThreads))
		}
	}
	if n := len(st.History); n > 0 {
		h := st.History[n-1]
		last := fmt.Sprintf("last: %s %s %s", h.Kind, h.ID, h.Status)
		if h.Outcome != "" {
			last += " (" + h.Outcome + ")"
		}
		lines = append(lines, last)
	}
	return strings.Join(lines, "\n")
}

func (b chatopsBackend) List(ctx context.Context) (string, error) {
	cs, err := ListClusters(ctx, b.c)
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

func (b chatopsBackend) Run(ctx context.Context, cmd chatops.Command, user string) (string, string, error) {
	switch cmd.Verb {
	case chatops.VerbPause:
		p, err := Pause(ctx, b.c, cmd.Cluster, workflows.PauseRequest{By: user, Reason: cmd.Reason})
		if err != nil {
			return "", "", chatError(err)
		}
		return fmt.Sprintf("%s paused by %s: no queued operation starts until resumed", cmd.Cluster, p.By), "", nil
	case chatops.VerbResume:
		if _, err := Resume(ctx, b.c, cmd.Cluster, workflows.ResumeRequest{By: user}); err != nil {
			return "", "", chatError(err)
		}
		return fmt.Sprintf("%s resumed by %s", cmd.Cluster, user), "", nil
	case chatops.VerbCleanerCheck:
		s, err := Submit(ctx, b.c, action(cmd, user))
		if err != nil {
			return "", "", chatError(err)
		}
		return s.Text, s.OperationID, nil
	}
	return "", "", fmt.Errorf("%w: %s is not run directly", chatops.ErrRefused, cmd.Verb)
}

// action is the chat command as an Action.
func action(cmd chatops.Command, user string) activities.Action {
	return activities.Action{Verb: string(cmd.Verb), Cluster: cmd.Cluster, Brokers: cmd.Brokers, MaxBatch: cmd.MaxBatch,
		Version: cmd.Version, OperationID: cmd.OperationID, RequestedBy: user, Reason: cmd.Reason}
}

func (b chatopsBackend) Propose(ctx context.Context, cmd chatops.Command, user string, approvers []string) (string, error) {
	// The same person asking the same thing within the same minute gets
	// the same approval: a retry after a slow answer starts nothing new.
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%d", user, cmd.String(), time.Now().Unix()/60))
	id, err := Propose(ctx, b.c, action(cmd, user), approvers, hex.EncodeToString(sum[:8]))
	return id, chatError(err)
}

func (b chatopsBackend) Decide(ctx context.Context, approvalID, user string, approve bool) (string, string, error) {
	st, err := Approve(ctx, b.c, approvalID, workflows.ApprovalDecision{By: user, Approve: approve})
	if err != nil {
		return "", "", chatError(err)
	}
	switch st.Status {
	case workflows.ApprovalApproved:
		return fmt.Sprintf("approved by %s: %s", st.DecidedBy, st.Submitted.Text), st.Submitted.OperationID, nil
	case workflows.ApprovalDenied:
		return fmt.Sprintf("%s of %s denied by %s: nothing started", st.Action.Verb, st.Action.Cluster, st.DecidedBy), "", nil
	case workflows.ApprovalFailed:
		return "", "", fmt.Errorf("%w: approved by %s, but %s", chatops.ErrRefused, st.DecidedBy, st.Error)
	}
	return fmt.Sprintf("approval %s", st.Status), "", nil
}

func (b chatopsBackend) Follow(ctx context.Context, cluster, operationID string, progress func(string)) (string, error) {
	last := ""
	for {
		st, err := followStatus(ctx, b.c, cluster, b.every)
		if err != nil {
			return "", err
		}
		op, ok := st.Operation(operationID)
		if !ok {
			return "", fmt.Errorf("cluster %s: operation %s is no longer known", cluster, operationID)
		}
		line := fmt.Sprintf("%s %s on %s: %s", op.Kind, op.ID, cluster, op.Status)
		if op.Status == workflows.StatusRunning {
			if p := runningStep(ctx, b.c, op); p != "" {
				line += ": " + p
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

// runningStep is a running roll's step in a few words, "" when it does not
// answer (not a roll, or between workflow tasks).
func runningStep(ctx context.Context, c client.Client, op workflows.Operation) string {
	p := rollProgress(ctx, c, op.WorkflowID)
	if p == nil {
		return ""
	}
	if p.Paused != nil {
		return fmt.Sprintf("PAUSED at broker %d: %s", p.Paused.Broker, p.Paused.Reason)
	}
	return fmt.Sprintf("%d/%d brokers done, %s", len(p.Done), len(p.Done)+len(p.Remaining), p.Step)
}
