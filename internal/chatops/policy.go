package chatops

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// Wildcard in a rule's list matches anything.
const Wildcard = "*"

// ErrUnauthorized is returned (wrapped, saying what is missing) when the
// policy does not allow a request.
var ErrUnauthorized = errors.New("not authorized")

// Rule grants each of its users each of its verbs on each of its clusters,
// from each of its channels. Every list is required; Wildcard matches
// anything, except that users "*" may not be granted destructive verbs:
// the people who may approve one must be named.
type Rule struct {
	// Users are Slack user ids (U…, W…) or user names. An id matches the
	// request's user_id only, a name its user_name only. Prefer ids: a
	// user name can be changed by its owner.
	Users []string `yaml:"users"`
	// Verbs are chat verbs ("restart", "cleaner-check", ...). help needs
	// no grant.
	Verbs []string `yaml:"verbs"`
	// Clusters are cluster ids. A rule granting list needs one too (e.g.
	// "*"): list is allowed by any rule that grants it.
	Clusters []string `yaml:"clusters"`
	// Channels are Slack channel ids (C…, G…, D…), not names: anyone in a
	// channel may rename it.
	Channels []string `yaml:"channels"`
}

// Policy says who may run which verb on which cluster from which channel.
// What no rule allows is denied. A user allowed to run a destructive verb
// on a cluster from a channel may also approve someone else's request of
// it there. A Policy is immutable and safe for concurrent use.
type Policy struct {
	rules []rule
}

// rule is a Rule with its lists as sets.
type rule struct {
	anyUser, anyVerb, anyCluster, anyChannel bool
	ids, names                               map[string]bool
	verbs                                    map[Verb]bool
	clusters, channels                       map[string]bool
	// entries are the rule's users as written, for Approvers.
	entries []string
}

// LoadPolicy reads a policy file (YAML, see ParsePolicy).
func LoadPolicy(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("chatops policy: %w", err)
	}
	p, err := ParsePolicy(data)
	if err != nil {
		return nil, fmt.Errorf("chatops policy %s: %w", path, err)
	}
	return p, nil
}

// ParsePolicy reads a policy:
//
//	rules:
//	  - users: [U0123ABCD, alice]
//	    verbs: [status, list, restart]
//	    clusters: [local-a, "*"]
//	    channels: [C0456EFGH, "*"]
//
// Unknown fields, unknown verbs, malformed cluster ids, empty lists and a
// policy without rules are errors: a typo must not silently deny (or
// allow) anything.
func ParsePolicy(data []byte) (*Policy, error) {
	var file struct {
		Rules []Rule `yaml:"rules"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&file); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("empty policy: it has no rules")
		}
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(file.Rules) == 0 {
		return nil, errors.New("the policy has no rules: everything would be denied")
	}
	p := &Policy{rules: make([]rule, 0, len(file.Rules))}
	var errs []error
	for i, r := range file.Rules {
		cr, err := compileRule(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %d: %w", i+1, err))
			continue
		}
		p.rules = append(p.rules, cr)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return p, nil
}

func compileRule(r Rule) (rule, error) {
	cr := rule{
		ids: map[string]bool{}, names: map[string]bool{}, verbs: map[Verb]bool{},
		clusters: map[string]bool{}, channels: map[string]bool{},
	}
	var errs []error
	check := func(field string, list []string, add func(string) error) {
		if len(list) == 0 {
			errs = append(errs, fmt.Errorf("%s: at least one is required (%q for any)", field, Wildcard))
		}
		for _, e := range list {
			if err := add(e); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", field, err))
			}
		}
	}
	check("users", r.Users, func(u string) error {
		switch {
		case u == Wildcard:
			cr.anyUser = true
			return nil
		case u == "" || strings.ContainsFunc(u, isSpaceOrControl):
			return fmt.Errorf("%q is not a user id or name", u)
		case isSlackUserID(u):
			cr.ids[u] = true
		default:
			cr.names[u] = true
		}
		cr.entries = append(cr.entries, u)
		return nil
	})
	check("verbs", r.Verbs, func(v string) error {
		if v == Wildcard {
			cr.anyVerb = true
			return nil
		}
		if !Verb(v).Known() {
			return fmt.Errorf("unknown verb %q: want one of %s", v, verbList())
		}
		cr.verbs[Verb(v)] = true
		return nil
	})
	check("clusters", r.Clusters, func(c string) error {
		if c == Wildcard {
			cr.anyCluster = true
			return nil
		}
		if err := checkCluster(c); err != nil {
			return err
		}
		cr.clusters[c] = true
		return nil
	})
	check("channels", r.Channels, func(c string) error {
		switch {
		case c == Wildcard:
			cr.anyChannel = true
		case c == "" || strings.ContainsFunc(c, isSpaceOrControl):
			return fmt.Errorf("%q is not a channel id", c)
		default:
			cr.channels[c] = true
		}
		return nil
	})
	if cr.anyUser {
		for _, v := range Verbs() {
			if v.Destructive() && cr.grants(v) {
				errs = append(errs, fmt.Errorf("users %q may not be granted %s: the people who may approve it must be named", Wildcard, v))
			}
		}
	}
	return cr, errors.Join(errs...)
}

func (r *rule) grants(v Verb) bool { return r.anyVerb || r.verbs[v] }

// matches reports whether the rule allows u to run v on cluster from
// channel; list ignores the cluster. byID says whether u matched by id
// (or the wildcard) rather than by name.
func (r *rule) matches(u User, v Verb, cluster, channel string) (ok, byID bool) {
	byID, byName := r.userMatch(u)
	if !byID && !byName {
		return false, false
	}
	if !r.grants(v) || (v != VerbList && !r.anyCluster && !r.clusters[cluster]) || (!r.anyChannel && !r.channels[channel]) {
		return false, false
	}
	return true, byID
}

func (r *rule) userMatch(u User) (byID, byName bool) {
	byID = u.ID != "" && (r.anyUser || r.ids[u.ID])
	byName = u.Name != "" && (r.anyUser || r.names[u.Name])
	return byID, byName
}

// Authorize decides whether u may run verb on cluster (ignored for list)
// from channel. When allowed, it returns the identity u acts under toward
// the Backend: the user id when a rule allowing the request names it (or
// allows any user), else the user name. The same person asking the same
// thing from the same channel always gets the same identity, so the
// approval's self-approval check sees the requester and the clicker alike.
// When denied, the error wraps ErrUnauthorized and says what is missing.
// help is allowed to anyone.
func (p *Policy) Authorize(u User, verb Verb, cluster, channel string) (string, error) {
	if u.ID == "" && u.Name == "" {
		return "", fmt.Errorf("%w: the request names no user", ErrUnauthorized)
	}
	if verb == VerbHelp {
		return identity(u, u.ID != ""), nil
	}
	var allowed, byID bool
	for i := range p.rules {
		if ok, id := p.rules[i].matches(u, verb, cluster, channel); ok {
			allowed, byID = true, byID || id
		}
	}
	if allowed {
		return identity(u, byID), nil
	}
	return "", p.denial(u, verb, cluster)
}

func identity(u User, byID bool) string {
	if byID {
		return u.ID
	}
	return u.Name
}

// denial says the first thing that is missing, from the broadest: the
// user, the verb, the cluster, the channel.
func (p *Policy) denial(u User, verb Verb, cluster string) error {
	var user, withVerb, withCluster bool
	for i := range p.rules {
		r := &p.rules[i]
		if id, name := r.userMatch(u); !id && !name {
			continue
		}
		user = true
		if !r.grants(verb) {
			continue
		}
		withVerb = true
		if verb == VerbList || r.anyCluster || r.clusters[cluster] {
			withCluster = true
		}
	}
	switch {
	case !user:
		return fmt.Errorf("%w: you are not in kfleet's ChatOps policy", ErrUnauthorized)
	case !withVerb:
		return fmt.Errorf("%w: you may not run %s", ErrUnauthorized, verb)
	case !withCluster:
		return fmt.Errorf("%w: you may not run %s on cluster %s", ErrUnauthorized, verb, cluster)
	case verb == VerbList:
		return fmt.Errorf("%w: you may not run %s from this channel", ErrUnauthorized, verb)
	default:
		return fmt.Errorf("%w: you may not run %s on cluster %s from this channel", ErrUnauthorized, verb, cluster)
	}
}

// Approvers lists who may approve requester's verb on cluster from channel:
// every user the policy allows to run it there, as written in the policy
// (ids and names), minus the requester under either, sorted.
func (p *Policy) Approvers(verb Verb, cluster, channel string, requester User) []string {
	var out []string
	for i := range p.rules {
		r := &p.rules[i]
		if !r.grants(verb) || (verb != VerbList && !r.anyCluster && !r.clusters[cluster]) || (!r.anyChannel && !r.channels[channel]) {
			continue
		}
		for _, e := range r.entries {
			if (requester.ID != "" && e == requester.ID) || (requester.Name != "" && e == requester.Name) {
				continue
			}
			out = append(out, e)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// isSlackUserID reports whether s has the shape of a Slack user id: U or W
// then upper-case letters and digits. User names are lower-case, so no name
// can pass for an id.
func isSlackUserID(s string) bool {
	if len(s) < 3 || (s[0] != 'U' && s[0] != 'W') {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func isSpaceOrControl(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }
