package localfleet

import (
	"net/url"
	"slices"
	"strings"
)

// ClientToken idempotency, as RunInstances and CreateVolume have it on AWS:
// a request carrying a token already used by the same action returns what
// the first request made (the same reservation, the same volume), in its
// current state, and makes nothing; the same token with other parameters is
// IdempotentParameterMismatch. A crash of kfleet between the request and
// its answer therefore never leaves two instances or two volumes when the
// retry carries the first attempt's token.

// maxClientToken is EC2's limit on a ClientToken's length.
const maxClientToken = 64

// tokenUse is what a token made: the request's fingerprint and the ids of
// what it created.
type tokenUse struct {
	fingerprint string
	ids         []string
}

// errIdempotentMismatch is EC2's answer to a token reused with other
// parameters.
var errIdempotentMismatch = ec2Err("IdempotentParameterMismatch",
	"Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")

// fingerprint canonicalizes a request's parameters for comparison: every
// parameter but the action, the API version, the token itself and DryRun,
// sorted, so that the same request compares equal whatever order a client
// serializes it in.
func fingerprint(form url.Values) string {
	var parts []string
	for k, vs := range form {
		switch k {
		case "Action", "Version", "ClientToken", "DryRun":
			continue
		}
		parts = append(parts, k+"="+strings.Join(vs, "\x00"))
	}
	slices.Sort(parts)
	return strings.Join(parts, "\n")
}

// clientToken returns the request's ClientToken, refusing one longer than
// EC2 allows.
func clientToken(form url.Values) (string, error) {
	t := form.Get("ClientToken")
	if len(t) > maxClientToken {
		return "", ec2Err("InvalidParameterValue", "Value (%s) for parameter clientToken is invalid. Length must be at most %d characters.", t, maxClientToken)
	}
	return t, nil
}

// tokenLocked looks a token up for action: ids is what its first use
// made, ok false for a new token. A known token with another fingerprint
// is errIdempotentMismatch. h.mu must be held.
func (h *hosts) tokenLocked(action, token, fp string) (ids []string, ok bool, _ error) {
	if token == "" {
		return nil, false, nil
	}
	use, ok := h.tokens[action+"/"+token]
	if !ok {
		return nil, false, nil
	}
	if use.fingerprint != fp {
		return nil, true, errIdempotentMismatch
	}
	return use.ids, true, nil
}

// rememberTokenLocked records what a token's first use made. h.mu must be
// held.
func (h *hosts) rememberTokenLocked(action, token, fp string, ids []string) {
	if token != "" {
		h.tokens[action+"/"+token] = tokenUse{fingerprint: fp, ids: ids}
	}
}
