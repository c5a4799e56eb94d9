// Package chatops serves kfleet's Slack-compatible ChatOps: slash commands
// (`/kafka status local-a`, `/kafka restart local-a`, ...) and interactive
// approvals of destructive commands, over plain HTTP.
//
// Routes (see Server.Handler):
//
//	POST /slack/commands     slash commands (application/x-www-form-urlencoded)
//	POST /slack/interactive  Block Kit button clicks (a form with a JSON payload)
//	GET  /healthz            liveness, unauthenticated
//
// Every POST is verified with Slack's v0 signing scheme before anything
// else is read from it: an HMAC-SHA256 of "v0:<timestamp>:<raw body>" under
// the app's signing secret, compared in constant time; a timestamp more than
// five minutes off is refused, and so is a signature already seen within that
// window (a replay starts nothing).
//
// Authorization is deny-by-default, from a YAML policy (see ParsePolicy):
// who may run which verb on which cluster from which channel. Destructive
// verbs (restart, upgrade, expand, remove-broker, delete, tenant-delete,
// topic-delete: the verbs of the operation kinds, or kinds' actions,
// registered destructive; and abort) are never run by this
// server: it asks the Backend to propose them to a second, different
// person, and answers with Approve / Deny buttons; a click is authorized
// against the same policy and handed to the Backend, whose durable
// approval has the last word (it refuses self-approval and unknown
// approvers).
//
// Slack wants an answer within 3 seconds, so a request is answered at once:
// quick backend calls run under a short timeout, and operations that take
// long are followed in the background, with progress posted to the
// request's response_url (a bounded number of times, as Slack allows).
// A response_url is a capability, like the signing secret: neither is ever
// logged nor put in an error.
//
// The Backend is implemented against Temporal elsewhere (internal/app);
// this package knows nothing of workflows.
package chatops
