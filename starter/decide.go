package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/workflows"
)

// decideFlags are what every answer to a paused operation takes.
type decideFlags struct {
	cluster, by, reason, operation string
	// force goes with an approval (a deletion forced by its approver).
	force bool
}

func (f *decideFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.cluster, "cluster", "", "cluster id")
	cmd.Flags().StringVar(&f.by, "by", defaultRequester(), "who decides (recorded)")
	cmd.Flags().StringVar(&f.reason, "reason", "", "why (recorded)")
	cmd.Flags().StringVar(&f.operation, "operation", "", "the operation id to answer (see status), when several wait")
}

// decisionAnswer is a decision's --json answer: the pause it answered.
type decisionAnswer struct {
	Cluster  string          `json:"cluster"`
	Decision string          `json:"decision"`
	By       string          `json:"by"`
	Pause    workflows.Pause `json:"pause"`
}

// decide sends action to the operation of f.cluster that waits for a
// human. Nothing waiting, or an operation that refuses the action (skip
// after the broker was touched), exits 2.
func decide(cmd *cobra.Command, g *globalFlags, f *decideFlags, action string) error {
	return withCluster(cmd, g, f.cluster, func(ctx context.Context, c client.Client) error {
		p, err := entity.Decide(ctx, c, f.cluster, f.operation, workflows.Decision{Action: action, By: f.by, Reason: f.reason})
		if err != nil {
			return err
		}
		return g.emit(cmd, decisionAnswer{Cluster: f.cluster, Decision: action, By: f.by, Pause: p}, func(out io.Writer) {
			if p.Broker < 0 { // a provisioning's or a deletion's step, no broker's
				fmt.Fprintf(out, "%s: it was paused at %q (%s)\n", action, p.Step, p.Reason)
				return
			}
			fmt.Fprintf(out, "%s: broker %d was paused at %q (%s)\n", action, p.Broker, p.Step, p.Reason)
		})
	})
}

const decideLong = `A roll pauses when a gate stays shut past its deadline, when a gate can
never open (e.g. a partition whose replication factor is at or below
min.insync.replicas), or when a step keeps failing. A recovery pauses when the
broker's instance is gone, when starts keep failing, or when log recovery
stalls. A provisioning (starter create) pauses when a step keeps failing; it
takes resume, abort, or undo (terminate what it launched, delete its volumes
and chroot). A KRaft upgrade pauses when a ghost node (registered, not in
the spec, fenced) blocks its metadata.version: resume (approve) unregisters
it and finalizes; skip or abort keep it, and the upgrade ends with the
binaries rolled and metadata.version unchanged. Until someone decides, it
touches nothing. skip is only allowed
at a roll's gate, before the broker was touched (and at a ghost's approval). Without --operation the decision
goes to the running roll, else to the first recovery that waits. Nothing
waiting, or a decision the operation refuses, exits 2.`

func newDecideCommand(g *globalFlags) *cobra.Command {
	var f decideFlags
	cmd := &cobra.Command{
		Use:       "decide --cluster ID resume|skip|abort|undo",
		Short:     "Answer an operation that paused for a human: resume (re-check or retry), skip the broker, or abort",
		Long:      decideLong + "\n\napprove, skip and abort are the same as decide resume, skip and abort.",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{workflows.DecisionResume, workflows.DecisionSkip, workflows.DecisionAbort, workflows.DecisionUndo},
		RunE: func(cmd *cobra.Command, args []string) error {
			action := args[0]
			if action != workflows.DecisionResume && action != workflows.DecisionSkip && action != workflows.DecisionAbort && action != workflows.DecisionUndo {
				return exitError{exitBadInput, fmt.Errorf("unknown decision %q: want resume, skip, abort (or undo, for a provisioning)", action)}
			}
			return decide(cmd, g, &f, action)
		},
	}
	f.register(cmd)
	return cmd
}

// newDecisionCommands are the decisions by name — approve (resume), skip,
// abort — and the answers to a chat approval (approve --approval, deny).
func newDecisionCommands(g *globalFlags) []*cobra.Command {
	return []*cobra.Command{newApproveCommand(g), newSkipCommand(g), newAbortCommand(g), newDenyCommand(g)}
}

func newApproveCommand(g *globalFlags) *cobra.Command {
	var (
		f        decideFlags
		approval string
	)
	cmd := &cobra.Command{
		Use:   "approve (--cluster ID [--operation OP] | --approval ID)",
		Short: "Let a paused roll or recovery go on (decide resume), or approve a request made in chat",
		Long: `With --cluster: the operation of the cluster that paused for a human
re-checks its gate or retries its failed step (the same as decide resume).

With --approval: approves a destructive action asked in chat (a restart, an
upgrade, an expansion, an abort), which then goes to the cluster's entity.
The approval refuses the person who asked and anyone not among its
approvers (exit 2). --approval takes the approval's workflow ID
(cluster/<id>/approval/<request>), or the request's id with --cluster.

` + decideLong,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if approval != "" {
				return answerApproval(cmd, g, f, approval, true)
			}
			if f.cluster == "" {
				return exitError{exitBadInput, errors.New("--cluster (a paused operation) or --approval (a chat request) is required")}
			}
			return decide(cmd, g, &f, workflows.DecisionResume)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&approval, "approval", "", "approve this chat request (its approval workflow ID) instead")
	cmd.Flags().BoolVar(&f.force, "force", false, "with --approval: force it (a deletion even while topics or tenants remain)")
	return cmd
}

func newDenyCommand(g *globalFlags) *cobra.Command {
	var (
		f        decideFlags
		approval string
	)
	cmd := &cobra.Command{
		Use:   "deny --approval ID",
		Short: "Deny a destructive action asked in chat: nothing is started",
		Long: `Denies a chat request waiting for approval. The approval refuses the person
who asked and anyone not among its approvers (exit 2). --approval takes the
approval's workflow ID (cluster/<id>/approval/<request>), or the request's
id with --cluster.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if approval == "" {
				return exitError{exitBadInput, errors.New("--approval is required")}
			}
			return answerApproval(cmd, g, f, approval, false)
		},
	}
	cmd.Flags().StringVar(&approval, "approval", "", "the approval's workflow ID")
	cmd.Flags().StringVar(&f.cluster, "cluster", "", "cluster id (with a request id as --approval)")
	cmd.Flags().StringVar(&f.by, "by", defaultRequester(), "who denies (recorded)")
	cmd.Flags().StringVar(&f.reason, "reason", "", "why (recorded)")
	return cmd
}

// answerApproval approves or denies a chat approval and prints its
// outcome: 0 approved (the action was submitted) or denied, 1 approved
// but the cluster's entity refused it, 2 refused by the approval itself.
func answerApproval(cmd *cobra.Command, g *globalFlags, f decideFlags, approval string, approve bool) error {
	if f.operation != "" {
		return exitError{exitBadInput, errors.New("--operation answers a paused operation, not an approval")}
	}
	if f.force && !approve {
		return exitError{exitBadInput, errors.New("--force goes with an approval")}
	}
	if !strings.HasPrefix(approval, workflows.ClusterWorkflowID("")) {
		if err := checkCluster(f.cluster); err != nil {
			return exitError{exitBadInput, fmt.Errorf("--approval %q is no approval workflow ID (cluster/<id>/approval/<request>); give --cluster with a request id: %w", approval, err)}
		}
		approval = workflows.ApprovalWorkflowID(f.cluster, approval)
	}
	return withClient(cmd, g, func(ctx context.Context, c client.Client) error {
		st, err := entity.Approve(ctx, c, approval, workflows.ApprovalDecision{By: f.by, Approve: approve, Reason: f.reason, Force: f.force})
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			// A closed approval takes no update; say how it ended.
			if prev, qerr := entity.ApprovalStatus(ctx, c, approval); qerr == nil && prev.Status != workflows.ApprovalPending {
				return exitError{exitBadInput, fmt.Errorf("approval %s is already %s%s: nothing changed", approval, prev.Status, entity.Suffix(" by ", prev.DecidedBy, ""))}
			}
		}
		if err != nil {
			return err
		}
		if err := g.emit(cmd, st, func(out io.Writer) { fmt.Fprintln(out, describeApproval(st)) }); err != nil {
			return err
		}
		if st.Status == workflows.ApprovalFailed {
			return fmt.Errorf("approved, but %s refused the %s: %s", st.Action.Cluster, st.Action.Verb, st.Error)
		}
		return nil
	})
}

func describeApproval(st workflows.ApprovalState) string {
	act := st.Action
	what := fmt.Sprintf("%s of %s asked by %s", act.Verb, act.Cluster, act.RequestedBy)
	switch st.Status {
	case workflows.ApprovalApproved:
		s := fmt.Sprintf("approved %s (by %s)", what, st.DecidedBy)
		if st.Submitted != nil {
			s += ": " + st.Submitted.Text
		}
		return s
	case workflows.ApprovalDenied:
		return fmt.Sprintf("denied %s (by %s%s): nothing was started", what, st.DecidedBy, entity.Suffix(": ", st.Reason, ""))
	case workflows.ApprovalFailed:
		return fmt.Sprintf("approved %s (by %s), but it failed: %s", what, st.DecidedBy, st.Error)
	}
	return fmt.Sprintf("%s: %s", what, st.Status)
}

func newSkipCommand(g *globalFlags) *cobra.Command {
	var f decideFlags
	cmd := &cobra.Command{
		Use:   "skip --cluster ID [--operation OP]",
		Short: "Leave the broker a paused roll waits at alone and go on with the next (decide skip)",
		Long:  decideLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return decide(cmd, g, &f, workflows.DecisionSkip)
		},
	}
	f.register(cmd)
	return cmd
}

func newAbortCommand(g *globalFlags) *cobra.Command {
	var f decideFlags
	cmd := &cobra.Command{
		Use:   "abort --cluster ID [--operation OP]",
		Short: "End a paused roll or recovery where it stands (decide abort)",
		Long:  decideLong + "\n\nTo stop an operation that is not waiting for a human, use cancel.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return decide(cmd, g, &f, workflows.DecisionAbort)
		},
	}
	f.register(cmd)
	return cmd
}
