package workflows

import (
	"fmt"
	"slices"
)

// ActionVerb is one verb of a kind people ask for with several, one per
// action of its parameters: the admin lane is one kind (one lane, one
// batch per action) asked for as topic-create, topic-delete,
// topic-partitions, topic-retention and group-delete. A verb may be
// destructive when its kind's others are not: deleting a tenant's topic
// loses its data, so chat asks a second person for it.
type ActionVerb struct {
	Verb        string
	Action      string
	Summary     string
	Destructive bool
}

func (k *kind[P, In, Res]) ActionVerbs() []ActionVerb { return slices.Clone(k.actions) }

func (k *kind[P, In, Res]) VerbOf(req Request) (string, error) {
	if len(k.actions) == 0 || k.actionOf == nil {
		return k.verb, nil
	}
	p, err := k.checked(req)
	if err != nil {
		return "", err
	}
	action := k.actionOf(p)
	for _, av := range k.actions {
		if av.Action == action {
			return av.Verb, nil
		}
	}
	return "", fmt.Errorf("%s: action %q has no verb", k.name, action)
}

// actionVerbOf finds verb among k's action verbs.
func actionVerbOf(k Kind, verb string) (ActionVerb, bool) {
	for _, av := range k.ActionVerbs() {
		if av.Verb == verb {
			return av, true
		}
	}
	return ActionVerb{}, false
}

// ActionOfVerb finds the kind and the action people ask for with verb,
// one of a kind's ActionVerbs.
func ActionOfVerb(verb string) (Kind, ActionVerb, error) {
	for _, k := range kinds {
		if av, ok := actionVerbOf(k, verb); ok {
			return k, av, nil
		}
	}
	return nil, ActionVerb{}, fmt.Errorf("unknown action verb %q", verb)
}

// DestructiveVerb reports whether what verb asks for takes brokers down,
// changes hosts or loses data: asked from chat, a second person approves
// it. An unknown verb is not an operation's (false).
func DestructiveVerb(verb string) bool {
	if _, av, err := ActionOfVerb(verb); err == nil {
		return av.Destructive
	}
	k, err := KindOfVerb(verb)
	return err == nil && k.Destructive()
}
