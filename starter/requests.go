package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/workflows"
)

// newRequestCommands ask the entity for the operations the health loop
// also starts by itself — a volume expansion and a cleaner check —, for
// the resizes (resize.go) and for an operation of any registered kind
// (request).
func newRequestCommands(g *globalFlags) []*cobra.Command {
	return append([]*cobra.Command{newExpandCommand(g), newCleanerCheckCommand(g), newRequestCommand(g)}, newResizeCommands(g)...)
}

// newRequestCommand asks for an operation of any kind the worker
// registers, by its verb, with its parameters as JSON: a new kind is
// usable from the CLI before it has a command of its own.
func newRequestCommand(g *globalFlags) *cobra.Command {
	var (
		cluster, by, reason, params string
		brokers                     []int32
		wait                        bool
	)
	var verbs []string
	for _, k := range workflows.Kinds() {
		if k.Verb() != "" {
			verbs = append(verbs, fmt.Sprintf("  %-14s %s (%s lane)", k.Verb(), k.Summary(), k.Lane()))
		}
		for _, av := range k.ActionVerbs() {
			verbs = append(verbs, fmt.Sprintf("  %-14s %s (%s, action %s, %s lane)", av.Verb, av.Summary, k.Name(), av.Action, k.Lane()))
		}
	}
	cmd := &cobra.Command{
		Use:   "request --cluster ID VERB [--brokers 1,2] [--params JSON]",
		Short: "Ask the cluster's entity for an operation of any kind, by its verb",
		Long: `Asks the cluster's entity for an operation of any registered kind, with the
kind's own parameters as JSON (e.g. restart --params '{"maxBatch":3}',
upgrade --params '{"version":"3.7.1","fromIbp":"3.6"}'). The kinds:

` + strings.Join(verbs, "\n") + `

An unknown verb, malformed parameters or a request the entity refuses exits
2: nothing is started. With --wait, follows the operation until it ends.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := workflows.KindOfVerb(args[0])
			if err != nil {
				return exitError{exitBadInput, err}
			}
			req := workflows.Request{Kind: k.Name(), RequestedBy: by, Reason: reason, Brokers: brokers}
			if params != "" {
				req.Params = json.RawMessage(params)
			}
			return ask(cmd, g, cluster, req, wait)
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id")
	cmd.Flags().Int32SliceVar(&brokers, "brokers", nil, "the brokers it concerns (default: all, for kinds that take all)")
	cmd.Flags().StringVar(&params, "params", "", "the kind's parameters, as a JSON object")
	cmd.Flags().StringVar(&by, "requested-by", defaultRequester(), "who asks (recorded)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded)")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the operation until it ends")
	return cmd
}

func newExpandCommand(g *globalFlags) *cobra.Command {
	var (
		cluster, by, reason string
		broker              int32
		wait                bool
	)
	cmd := &cobra.Command{
		Use:   "expand --cluster ID --broker N [--reason TEXT]",
		Short: "Grow a broker's data volume now (ModifyVolume, then the filesystem, online)",
		Long: `Asks the cluster's entity for a volume expansion of one broker, even below
the disk threshold. EBS allows one modification per volume every 6 hours: a
broker inside that cool-down is refused (exit 2) with the time of the next
allowed change. An expansion of the broker already queued or running is
joined. A broker not in the cluster is refused (exit 2): nothing starts.
With --wait, follows the expansion until it ends and prints its outcome.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("broker") {
				return exitError{exitBadInput, errors.New("--broker is required: the broker whose volume grows")}
			}
			if broker < 0 {
				return exitError{exitBadInput, fmt.Errorf("--broker %d: broker ids are not negative", broker)}
			}
			return withCluster(cmd, g, cluster, func(ctx context.Context, c client.Client) error {
				op, err := entity.Request(ctx, c, cluster, workflows.Request{Kind: workflows.OpVolumeExpansion, Brokers: []int32{broker}, RequestedBy: by, Reason: reason})
				if err != nil {
					return err
				}
				return admitted(ctx, cmd, g, c, cluster, op, wait, nil)
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id")
	cmd.Flags().Int32Var(&broker, "broker", -1, "the broker whose data volume grows")
	cmd.Flags().StringVar(&by, "requested-by", defaultRequester(), "who asks (recorded)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded)")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the expansion until it ends")
	return cmd
}

func newCleanerCheckCommand(g *globalFlags) *cobra.Command {
	var (
		cluster, by string
		brokers     []int32
		wait        bool
	)
	cmd := &cobra.Command{
		Use:   "cleaner-check --cluster ID [--brokers 1,2]",
		Short: "Check the log cleaner now; restart, gated, the brokers whose cleaner is dead or stuck",
		Long: `Asks the cluster's entity for a log-cleaner check: each broker's cleaner
threads and time since the last clean are read, and the brokers whose
cleaner is unhealthy are restarted with every gate of a rolling restart, one
at a time. A check already queued or running is joined. A broker not in the
cluster is refused (exit 2). With --wait, follows the check until it ends
and prints its outcome.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withCluster(cmd, g, cluster, func(ctx context.Context, c client.Client) error {
				op, err := entity.Request(ctx, c, cluster, workflows.Request{Kind: workflows.OpCleanerHealth, Brokers: brokers, RequestedBy: by})
				if err != nil {
					return err
				}
				return admitted(ctx, cmd, g, c, cluster, op, wait, nil)
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id")
	cmd.Flags().Int32SliceVar(&brokers, "brokers", nil, "check only these broker ids (default: all)")
	cmd.Flags().StringVar(&by, "requested-by", defaultRequester(), "who asks (recorded)")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the check until it ends")
	return cmd
}

// ask checks req on its face (a refusal exits 2 before Temporal is
// dialled), asks the cluster's entity for it and prints what it admitted
// (admitted).
func ask(cmd *cobra.Command, g *globalFlags, cluster string, req workflows.Request, wait bool) error {
	return askJudged(cmd, g, cluster, req, wait, nil)
}

// askJudged is ask whose operation, once it succeeded, judge reads from
// its result (nil: the operation's status is the answer).
func askJudged(cmd *cobra.Command, g *globalFlags, cluster string, req workflows.Request, wait bool, judge func(json.RawMessage) error) error {
	k, err := workflows.KindNamed(req.Kind)
	if err != nil {
		return exitError{exitBadInput, err}
	}
	if err := k.Check(req); err != nil {
		return exitError{exitBadInput, err}
	}
	return withCluster(cmd, g, cluster, func(ctx context.Context, c client.Client) error {
		op, err := entity.Request(ctx, c, cluster, req)
		if err != nil {
			return err
		}
		return admitted(ctx, cmd, g, c, cluster, op, wait, judge)
	})
}

// admitted prints the operation the entity admitted and, with wait,
// follows it until it ends: exit 0 when it succeeded (with its outcome), 1
// when it failed or was cancelled, or when judge finds its result wanting.
func admitted(ctx context.Context, cmd *cobra.Command, g *globalFlags, c client.Client, cluster string, op workflows.Operation, wait bool, judge func(json.RawMessage) error) error {
	out := g.progressOut(cmd)
	verb := "queued"
	if op.Existing {
		verb = "joined existing"
	}
	fmt.Fprintf(out, "%s %s %s of %s%s (workflow %s)\n", verb, op.Kind, op.ID, cluster, entity.BrokersSuffix(op.Brokers), op.WorkflowID)
	if !wait {
		return g.emit(cmd, operationAnswer{Operation: op}, func(out io.Writer) {
			fmt.Fprintf(out, "follow it with: bin/starter status --cluster %s\n", cluster)
		})
	}
	res, final, err := entity.Follow[json.RawMessage](ctx, c, cluster, op.ID, time.Second, func(p entity.Progress) {
		fmt.Fprintf(out, "%s  %s\n", time.Now().Format(time.TimeOnly), describeProgress(p))
	})
	if err != nil {
		return err
	}
	err = g.emit(cmd, operationAnswer{Operation: final}, func(out io.Writer) {
		fmt.Fprintf(out, "%s %s of %s %s in %s%s\n", final.Kind, final.ID, cluster, final.Status,
			round(final.FinishedAt.Sub(final.StartedAt)), entity.Suffix(": ", final.Outcome, ""))
	})
	if err == nil && judge != nil {
		if err = judge(res); err != nil {
			err = exitError{exitFailed, err}
		}
	}
	return err
}
