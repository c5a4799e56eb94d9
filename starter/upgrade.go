package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/workflows"
)

func newUpgradeCommand(g *globalFlags) *cobra.Command {
	var (
		cluster string
		req     workflows.UpgradeParams
		by      string
		noWait  bool
	)
	cmd := &cobra.Command{
		Use:   "upgrade --cluster ID --version X.Y.Z [--from-ibp A.B | --metadata-version L]",
		Short: "Rolling upgrade: new binaries, then the inter-broker protocol (ZooKeeper mode) or metadata.version (KRaft)",
		Long: `Asks the cluster's entity workflow (cluster/<id>) for a rolling upgrade and
follows it until it completes. Two rolling restarts, each with every gate of
a restart: first each broker starts on --version with
inter.broker.protocol.version pinned to --from-ibp (the protocol it runs
now); then, once every broker runs the new binaries, a second roll bumps the
protocol to --target-ibp (default: the major.minor of --version). A patch
upgrade whose protocol does not change takes the first roll only.

--from-ibp defaults to the protocol level the cluster's entity knows (from
its spec's interBrokerProtocol, then from each upgrade through kfleet; see
status); when it knows none, or the last upgrade stopped half-way, it is
required. An upgrade to the same version already
queued or running is joined, not run twice.

A KRaft cluster's upgrade takes no protocol: its binaries roll (controllers
first, each gated on the quorum, then brokers), and once every node is
checked to run them and to be registered, metadata.version is finalized at
--metadata-version (default: the highest level --version supports, e.g.
4.0-IV3 for 4.0.x). A target the release does not support, or below the
cluster's level, is refused before anything is rolled. A refused
finalization ends the upgrade with the binaries rolled and metadata.version
unchanged, saying why. A ghost node (registered, not in the spec, fenced)
that blocks it pauses the upgrade: "starter approve --cluster ID"
unregisters it and finalizes; "starter skip" (or abort) keeps it.

Exit codes: 0 done, 1 failed,
2 bad input, unknown cluster or refused (nothing is started), 3 Temporal
unreachable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkCluster(cluster); err != nil {
				return err
			}
			if req.Version == "" {
				return exitError{exitBadInput, errors.New("--version is required, e.g. --version 3.7.1")}
			}
			params, _ := json.Marshal(req)
			return withCluster(cmd, g, cluster, func(ctx context.Context, c client.Client) error {
				op, err := entity.Request(ctx, c, cluster, workflows.Request{Kind: workflows.OpRollingUpgrade, RequestedBy: by, Params: params})
				if err != nil {
					return err
				}
				return followUpgrade(ctx, cmd, g, c, cluster, op, noWait)
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id, e.g. local-a")
	cmd.Flags().StringVar(&req.Version, "version", "", "Kafka version to run, e.g. 3.7.1")
	cmd.Flags().StringVar(&req.FromIBP, "from-ibp", "", "inter.broker.protocol.version the cluster runs with now, e.g. 3.6 (default: the level the entity knows)")
	cmd.Flags().StringVar(&req.TargetIBP, "target-ibp", "", "inter.broker.protocol.version to end on (default: major.minor of --version)")
	cmd.Flags().StringVar(&req.MetadataVersion, "metadata-version", "", "KRaft: metadata.version to finalize, e.g. 4.0-IV3 (default: the highest --version supports)")
	cmd.Flags().StringVar(&by, "requested-by", defaultRequester(), "who asks (recorded in the operation and on the hosts)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the upgrade is admitted")
	return cmd
}

// followUpgrade prints the admitted upgrade and, unless noWait, its
// progress until it ends.
func followUpgrade(ctx context.Context, cmd *cobra.Command, g *globalFlags, c client.Client, cluster string, op workflows.Operation, noWait bool) error {
	var up workflows.UpgradeParams
	if err := json.Unmarshal(op.Params, &up); err != nil || up.Version == "" { // an entity that predates Params
		return fmt.Errorf("cluster %s: operation %s carries no upgrade (%s)", cluster, op.ID, op.Params)
	}
	out := g.progressOut(cmd)
	verb := "queued"
	if op.Existing {
		verb = "joined existing"
	}
	protocol := fmt.Sprintf("inter.broker.protocol.version %s -> %s", up.FromIBP, up.TargetIBP)
	switch {
	case up.MetadataVersion != "":
		protocol = "then metadata.version " + up.MetadataVersion
	case up.FromIBP == up.TargetIBP:
		protocol = "inter.broker.protocol.version stays " + up.TargetIBP
	}
	fmt.Fprintf(out, "%s rolling upgrade %s of %s to Kafka %s, %s (workflow %s)\n", verb, op.ID, cluster, up.Version, protocol, op.WorkflowID)
	if noWait {
		return g.emit(cmd, operationAnswer{Operation: op}, func(io.Writer) {})
	}
	res, _, err := entity.Follow[workflows.RollingUpgradeResult](ctx, c, cluster, op.ID, time.Second, func(p entity.Progress) {
		op = p.Operation
		fmt.Fprintf(out, "%s  %s\n", time.Now().Format(time.TimeOnly), describeProgress(p))
	})
	if err != nil {
		return err
	}
	return g.emit(cmd, operationAnswer{Operation: op, Result: res}, func(out io.Writer) {
		fmt.Fprintf(out, "rolling upgrade %s of %s to Kafka %s completed:\n", op.ID, cluster, up.Version)
		if mv := res.MetadataVersion; mv != nil {
			printRoll(out, "binaries (KRaft: controllers first)", res.Binaries)
			for _, id := range mv.Unregistered {
				fmt.Fprintf(out, "  ghost broker %d unregistered (approved)\n", id)
			}
			fmt.Fprintf(out, "  metadata.version: %s -> %s\n", mv.From, mv.Target)
			return
		}
		printRoll(out, fmt.Sprintf("binaries (inter.broker.protocol.version pinned to %s)", res.Upgrade.FromIBP), res.Binaries)
		if res.Protocol != nil {
			printRoll(out, fmt.Sprintf("protocol (inter.broker.protocol.version %s -> %s)", res.Upgrade.FromIBP, res.Upgrade.TargetIBP), *res.Protocol)
		} else {
			fmt.Fprintf(out, "  protocol: already %s, no second roll\n", res.Upgrade.TargetIBP)
		}
	})
}

func printRoll(out io.Writer, title string, r workflows.RollingRestartResult) {
	fmt.Fprintf(out, "  %s:\n", title)
	printBrokers(out, "    ", r)
}

// printBrokers lists a roll's KRaft controllers (restarted first) and
// brokers with each step's duration, and those a human skipped.
func printBrokers(out io.Writer, indent string, r workflows.RollingRestartResult) {
	for _, c := range r.Controllers {
		active := ""
		if c.WasActive {
			active = " (active)"
		}
		fmt.Fprintf(out, "%sKRaft controller %d%s: %s (quorum gate %s, stop %s, start %s, caught up %s)\n",
			indent, c.Controller, active, round(c.Total), round(c.GateWait), round(c.Stop), round(c.Start), round(c.CatchUp))
	}
	for _, c := range r.SkippedControllers {
		fmt.Fprintf(out, "%sKRaft controller %d: skipped by a human\n", indent, c)
	}
	kraft := len(r.Controllers)+len(r.SkippedControllers) > 0
	for _, b := range r.Brokers {
		ctl := ""
		if b.WasController && !kraft {
			ctl = " (controller)" // ZooKeeper mode's controller broker
		}
		fmt.Fprintf(out, "%sbroker %d%s: %s (gates %s, stop %s, start %s, register %s, ISR %s, election %s)\n",
			indent, b.Broker, ctl, round(b.Total), round(b.GateWait), round(b.Stop), round(b.Start), round(b.Register), round(b.CatchUp), round(b.Elect))
	}
	for _, b := range r.Skipped {
		fmt.Fprintf(out, "%sbroker %d: skipped by a human\n", indent, b)
	}
}
