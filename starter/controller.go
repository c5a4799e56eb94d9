package main

import (
	"encoding/json"
	"errors"

	"github.com/spf13/cobra"

	"github.com/kfleet/kfleet/workflows"
)

// newReplaceControllerCommand asks for a KRaft controller's host
// replacement (workflows' replace-controller kind).
func newReplaceControllerCommand(g *globalFlags) *cobra.Command {
	var (
		cluster, by, reason string
		node                int32
		wait                bool
	)
	cmd := &cobra.Command{
		Use:   "replace-controller --cluster ID --node N [--wait]",
		Short: "Replace a KRaft controller's host: same node id on a new host in its zone, the old host terminated",
		Long: `Asks the cluster's entity to replace the host of one KRaft controller. It is
refused, with nothing touched, unless the quorum's caught-up voters stay a
majority without the controller (whether it runs or is down already). It
then stops the controller through its host if that runs, launches a new
host in the controller's zone tagged as the controller, configures the same
node id with the same voters and Kafka cluster id (its metadata log starts
blank), starts it, waits until it is a voter caught up with the leader,
terminates the old host and records the new host and address in the
cluster's spec. A re-run finds the new host by its tags and never launches
a second one. A step that fails for good pauses for a human (starter
decide: resume or abort).

` + resizeExits,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("node") {
				return exitError{exitBadInput, errors.New("--node is required: the controller's node id")}
			}
			raw, err := json.Marshal(workflows.ReplaceControllerParams{Node: node})
			if err != nil {
				return err
			}
			return ask(cmd, g, cluster, workflows.Request{Kind: workflows.OpReplaceController, RequestedBy: by, Reason: reason, Params: raw}, wait)
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id")
	cmd.Flags().Int32Var(&node, "node", -1, "the controller's node id (e.g. 3001)")
	cmd.Flags().StringVar(&by, "requested-by", defaultRequester(), "who asks (recorded)")
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded)")
	cmd.Flags().BoolVar(&wait, "wait", false, "follow the operation until it ends")
	return cmd
}
