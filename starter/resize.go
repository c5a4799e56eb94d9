package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kfleet/kfleet/internal/chatops"
	"github.com/kfleet/kfleet/workflows"
)

// newResizeCommands ask for the operations that change a cluster's brokers
// or move its partitions: add-brokers, remove-broker, rebalance.
func newResizeCommands(g *globalFlags) []*cobra.Command {
	return []*cobra.Command{newAddBrokersCommand(g), newRemoveBrokerCommand(g), newRebalanceCommand(g)}
}

// resizeFlags are what the three commands share.
type resizeFlags struct {
	cluster, by, reason, throttle string
	wait                          bool
}

func (f *resizeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.cluster, "cluster", "", "cluster id")
	cmd.Flags().StringVar(&f.throttle, "throttle", "", "replication throttle partitions move under, bytes per second: e.g. 10MiB, 512KiB or 1048576, at least 1KiB (default: kfleet's)")
	cmd.Flags().StringVar(&f.by, "requested-by", defaultRequester(), "who asks (recorded)")
	cmd.Flags().StringVar(&f.reason, "reason", "", "why (recorded)")
	cmd.Flags().BoolVar(&f.wait, "wait", false, "follow the operation until it ends")
}

// request is the request of kind on brokers, with the parameters params
// makes of how partitions move (--throttle).
func (f *resizeFlags) request(kind string, brokers []int32, params func(workflows.MoveParams) any) (workflows.Request, error) {
	var m workflows.MoveParams
	if f.throttle != "" {
		n, err := chatops.ParseRate(f.throttle)
		if err != nil {
			return workflows.Request{}, exitError{exitBadInput, fmt.Errorf("--throttle %w", err)}
		}
		m.ThrottleBytesPerSec = n
	}
	raw, err := json.Marshal(params(m))
	if err != nil {
		return workflows.Request{}, err
	}
	return workflows.Request{Kind: kind, RequestedBy: f.by, Reason: f.reason, Brokers: brokers, Params: raw}, nil
}

const resizeExits = `A malformed flag, a request the entity refuses or an unknown cluster exits 2:
nothing is started; 3: Temporal unreachable. With --wait, follows the
operation until it ends: 0 when it succeeded (with its outcome), 1 when it
failed or was aborted.`

func newAddBrokersCommand(g *globalFlags) *cobra.Command {
	var (
		f resizeFlags
		p workflows.AddBrokersParams
	)
	cmd := &cobra.Command{
		Use:   "add-brokers --cluster ID --count N [--instance-type T] [--volume-gib G] [--throttle RATE]",
		Short: "Add brokers like the cluster's own, then move partitions onto them under a replication throttle",
		Long: fmt.Sprintf(`Asks the cluster's entity to add --count brokers (1 to %d), of the cluster's
instance type and volume size unless --instance-type or --volume-gib say
otherwise, running the cluster's Kafka version; once they have joined,
partitions move onto them under a replication throttle (--throttle), a few
at a time and only while the cluster is healthy, until brokers' replica and
leader counts are within 10%% of each other. A step that fails for good
pauses for a human (starter decide: resume or abort).

`, workflows.MaxBrokersAdded) + resizeExits,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("count") {
				return exitError{exitBadInput, fmt.Errorf("--count is required: how many brokers to add (1 to %d)", workflows.MaxBrokersAdded)}
			}
			req, err := f.request(workflows.OpAddBrokers, nil, func(m workflows.MoveParams) any { p.MoveParams = m; return p })
			if err != nil {
				return err
			}
			return ask(cmd, g, f.cluster, req, f.wait)
		},
	}
	f.register(cmd)
	cmd.Flags().IntVar(&p.Count, "count", 0, fmt.Sprintf("how many brokers to add, 1 to %d", workflows.MaxBrokersAdded))
	cmd.Flags().StringVar(&p.InstanceType, "instance-type", "", "the new brokers' EC2 instance type (default: the cluster's)")
	cmd.Flags().Int32Var(&p.VolumeGiB, "volume-gib", 0, "the new brokers' data volume size in GiB (default: the cluster's)")
	return cmd
}

func newRemoveBrokerCommand(g *globalFlags) *cobra.Command {
	var (
		f      resizeFlags
		broker int32
	)
	cmd := &cobra.Command{
		Use:   "remove-broker --cluster ID --broker N [--throttle RATE]",
		Short: "Drain a broker by reassignment, then stop it, terminate its host and delete its volume",
		Long: `Asks the cluster's entity to remove one broker: its partitions move to the
other brokers under a replication throttle (--throttle), only while the
cluster is healthy; once it holds nothing it is stopped, its host
terminated, its data volume deleted and it leaves the cluster's spec.
Refused when fewer brokers than the default replication factor would
remain. A step that fails for good pauses for a human (starter decide:
resume or abort).

` + resizeExits,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("broker") {
				return exitError{exitBadInput, errors.New("--broker is required: the broker to remove")}
			}
			req, err := f.request(workflows.OpRemoveBroker, []int32{broker}, func(m workflows.MoveParams) any {
				return workflows.RemoveBrokerParams{MoveParams: m}
			})
			if err != nil {
				return err
			}
			return ask(cmd, g, f.cluster, req, f.wait)
		},
	}
	f.register(cmd)
	cmd.Flags().Int32Var(&broker, "broker", -1, "the broker to remove")
	return cmd
}

func newRebalanceCommand(g *globalFlags) *cobra.Command {
	var f resizeFlags
	cmd := &cobra.Command{
		Use:   "rebalance --cluster ID [--throttle RATE]",
		Short: "Move partitions until brokers' replica and leader counts are within 10% of each other",
		Long: `Asks the cluster's entity for a rebalance: partitions move under a
replication throttle (--throttle), a few at a time and only while the
cluster is healthy, until brokers' replica and preferred-leader counts are
within 10% of each other; then the throttles are cleared and preferred
leaders elected. A rebalance already queued or running is joined. A step
that fails for good pauses for a human (starter decide: resume or abort).

` + resizeExits,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.request(workflows.OpRebalance, nil, func(m workflows.MoveParams) any { return m })
			if err != nil {
				return err
			}
			return ask(cmd, g, f.cluster, req, f.wait)
		},
	}
	f.register(cmd)
	return cmd
}
