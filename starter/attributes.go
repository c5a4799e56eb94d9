package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"

	"github.com/kfleet/kfleet/workflows"
)

func newAttributesCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "attributes",
		Short: "The Temporal namespace's search attributes kfleet's workflows set",
	}
	cmd.AddCommand(newAttributesRegisterCommand(g))
	return cmd
}

func newAttributesRegisterCommand(g *globalFlags) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register the search attributes kfleet needs on the namespace (idempotent)",
		Long: `Adds to the namespace (--namespace, else TEMPORAL_NAMESPACE, else default)
the search attributes kfleet's workflows set: ClusterID, Operation and
Tenant (Keyword), BrokerID (Int) and Paused (Bool). Those already there with
the right type are left alone, so it can run on every deploy (the Kubernetes
Job of deploy/k8s). One registered with another type is an error (exit 2)
and nothing is added: a workflow upserting it would fail its tasks.

Temporal Cloud does not let a namespace's users add search attributes: add
them with tcld (tcld namespace search-attributes add) or the Cloud UI; this
command then only verifies them, and fails (exit 1) naming what is missing.
Exit codes: 0 all present, 1 failed, 2 a type conflict, 3 Temporal unreachable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := g.clientOptions()
			if err != nil {
				return err
			}
			ns := opts.Namespace
			ctx := cmd.Context()
			c, err := g.dial(ctx)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := registerAttributes(ctx, c.OperatorService(), ns, wait)
			if err != nil {
				return err
			}
			return g.emit(cmd, res, func(w io.Writer) { res.print(w) })
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for added attributes to show (Elasticsearch visibility adds them asynchronously)")
	return cmd
}

// attributesResult is what register did: names as NAME=TYPE.
type attributesResult struct {
	Namespace string   `json:"namespace"`
	Present   []string `json:"present"`
	Added     []string `json:"added"`
}

func (r attributesResult) print(w io.Writer) {
	fmt.Fprintf(w, "namespace %s: %d search attributes kfleet needs\n", r.Namespace, len(r.Present)+len(r.Added))
	for _, a := range r.Present {
		fmt.Fprintf(w, "  %-20s already registered\n", a)
	}
	for _, a := range r.Added {
		fmt.Fprintf(w, "  %-20s added\n", a)
	}
}

// attributeTypes are the attributes kfleet needs, parsed from
// workflows.SearchAttributeFlags (NAME=TYPE, the temporal CLI's form) so
// the dev server, this command and the workflows share one list.
func attributeTypes() (map[string]enumspb.IndexedValueType, error) {
	want := map[string]enumspb.IndexedValueType{}
	for _, f := range workflows.SearchAttributeFlags() {
		name, typ, ok := strings.Cut(f, "=")
		if !ok {
			return nil, fmt.Errorf("search attribute %q: want NAME=TYPE", f)
		}
		v, ok := enumspb.IndexedValueType_value["INDEXED_VALUE_TYPE_"+strings.ToUpper(typ)]
		if !ok {
			return nil, fmt.Errorf("search attribute %s: unknown type %q", name, typ)
		}
		want[name] = enumspb.IndexedValueType(v)
	}
	return want, nil
}

// attributePlan compares what kfleet needs with what the namespace has.
type attributePlan struct {
	missing   map[string]enumspb.IndexedValueType
	present   []string // NAME=TYPE, sorted
	conflicts []string // one sentence each, sorted
}

func planAttributes(want, custom, system map[string]enumspb.IndexedValueType) attributePlan {
	p := attributePlan{missing: map[string]enumspb.IndexedValueType{}}
	for name, typ := range want {
		if got, ok := system[name]; ok {
			p.conflicts = append(p.conflicts, fmt.Sprintf("%s is a system attribute (%s)", name, typeName(got)))
			continue
		}
		got, ok := custom[name]
		switch {
		case !ok:
			p.missing[name] = typ
		case got != typ:
			p.conflicts = append(p.conflicts, fmt.Sprintf("%s is registered as %s, kfleet needs %s", name, typeName(got), typeName(typ)))
		default:
			p.present = append(p.present, name+"="+typeName(typ))
		}
	}
	slices.Sort(p.present)
	slices.Sort(p.conflicts)
	return p
}

// typeName is the temporal CLI's name of a type: Keyword, Int, Bool...
func typeName(t enumspb.IndexedValueType) string { return t.String() }

func names(m map[string]enumspb.IndexedValueType) []string {
	out := make([]string, 0, len(m))
	for name, typ := range m {
		out = append(out, name+"="+typeName(typ))
	}
	slices.Sort(out)
	return out
}

// registerAttributes checks before it acts: it lists the namespace's
// attributes, refuses a type conflict without adding anything, adds only
// the missing ones, and lists again until they show (a server with
// Elasticsearch visibility adds them asynchronously), up to wait.
func registerAttributes(ctx context.Context, op operatorservice.OperatorServiceClient, ns string, wait time.Duration) (attributesResult, error) {
	res := attributesResult{Namespace: ns}
	want, err := attributeTypes()
	if err != nil {
		return res, err
	}
	list := func() (attributePlan, error) {
		have, err := op.ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: ns})
		if err != nil {
			return attributePlan{}, fmt.Errorf("namespace %s: list search attributes: %w", ns, err)
		}
		return planAttributes(want, have.GetCustomAttributes(), have.GetSystemAttributes()), nil
	}
	plan, err := list()
	if err != nil {
		return res, err
	}
	if len(plan.conflicts) > 0 {
		return res, exitError{exitBadInput, fmt.Errorf("namespace %s: nothing registered: %s (rename or remove it, then run again)",
			ns, strings.Join(plan.conflicts, "; "))}
	}
	res.Present, res.Added = plan.present, names(plan.missing)
	if len(plan.missing) == 0 {
		return res, nil
	}
	if _, err := op.AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: ns, SearchAttributes: plan.missing,
	}); err != nil {
		if _, denied := errors.AsType[*serviceerror.PermissionDenied](err); denied {
			return res, fmt.Errorf("namespace %s: adding %s is not allowed to this identity (on Temporal Cloud add them with tcld or the Cloud UI): %w",
				ns, strings.Join(res.Added, ", "), err)
		}
		return res, fmt.Errorf("namespace %s: add search attributes %s: %w", ns, strings.Join(res.Added, ", "), err)
	}
	deadline := time.Now().Add(wait)
	for {
		plan, err := list()
		if err != nil {
			return res, err
		}
		if len(plan.missing) == 0 && len(plan.conflicts) == 0 {
			return res, nil
		}
		if time.Now().After(deadline) {
			return res, fmt.Errorf("namespace %s: added %s, but %s still missing after %s",
				ns, strings.Join(res.Added, ", "), strings.Join(names(plan.missing), ", "), wait)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
