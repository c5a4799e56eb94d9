package chatops

import (
	"errors"
	"fmt"
	"strconv"
)

// The KRaft controller verb (workflows' replace-controller kind): the
// grammar only. Whether the cluster is KRaft, has that controller, and
// keeps its quorum without it is the operation's own check.
//
//	replace-controller <cluster> <node id>

// VerbReplaceController replaces a KRaft controller's host.
const VerbReplaceController Verb = "replace-controller"

// parseControllerArgs reads a replace-controller's node id.
func parseControllerArgs(cmd *Command, args []string) error {
	if len(args) == 0 {
		return errors.New("missing controller node id")
	}
	n, err := strconv.ParseInt(args[0], 10, 32)
	if err != nil || !allDigits(args[0]) {
		return fmt.Errorf("node %s: want a non-negative integer controller node id, like 3001", quote(args[0]))
	}
	cmd.Node = int32(n)
	if len(args) > 1 {
		return fmt.Errorf("unexpected %s", quote(args[1]))
	}
	return nil
}
