package chatops

import (
	"context"
)

// Backend is what the chat server asks of kfleet.
type Backend interface {
	// Status describes a cluster for humans (a few lines of text).
	Status(ctx context.Context, cluster string) (string, error)
	// List names the registered clusters with a one-line state each.
	List(ctx context.Context) (string, error)
	// Run runs a non-destructive command now (pause, resume, cleaner-check) for user and returns what happened, and an operation id to follow ("" when none).
	Run(ctx context.Context, cmd Command, user string) (text string, operationID string, err error)
	// Propose starts the approval of a destructive command; approvers are who may approve. It returns the approval id.
	Propose(ctx context.Context, cmd Command, user string, approvers []string) (approvalID string, err error)
	// Decide approves or denies an approval as user; the approval's validator refuses self-approval and unknown approvers (the error says why). On approval it returns the text of what was started and the operation id to follow.
	Decide(ctx context.Context, approvalID, user string, approve bool) (text string, operationID string, err error)
	// Follow calls progress with a human line at each change of the operation until it ends, and returns its final line.
	Follow(ctx context.Context, cluster, operationID string, progress func(line string)) (string, error)
}

// A Backend wraps fleet.ErrRefused (kfleet refused the request as asked:
// a cluster already paused, a self-approval, an approval already decided,
// a broker not in the cluster, ...; its text is shown to the person who
// asked) or fleet.ErrUnknownCluster (no such cluster is registered) with
// %w: nothing was started. Any other error from a call made while Slack
// waits (Status, List, Run, Propose) or from Decide means kfleet could not
// be reached or failed: the person is told to try again, and the error is
// logged. Follow is different: its error is how the operation ended (it
// failed, was cancelled, or could not be followed), and its text is posted
// to the channel as the operation's last line.

// User is who sent a request, as Slack names them: the user id (U…/W…),
// stable and assigned by Slack, and the user name, which people can change.
type User struct {
	ID   string
	Name string
}
