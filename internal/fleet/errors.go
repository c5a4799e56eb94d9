package fleet

import "errors"

// Refusals: kfleet's answers to a request that changed nothing. Every
// surface reads them the same way — the CLI exits 2, chat answers with a
// refusal, an activity fails without retrying — so each is defined once,
// here, and wrapped (%w) with what was refused and why.
var (
	// ErrRefused: the request is invalid, or the cluster's entity (or the
	// operation asked) refused it: a broker not in the cluster, a bad
	// version, a volume in its cool-down, a decision nothing waits for.
	ErrRefused = errors.New("refused")
	// ErrUnknownCluster: no entity runs for the cluster (register it).
	ErrUnknownCluster = errors.New("unknown cluster")
)
