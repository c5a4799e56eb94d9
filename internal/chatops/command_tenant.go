package chatops

import (
	"errors"
	"fmt"
	"time"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// The tenant verbs (workflows' tenant kinds): the grammar only. Whether
// the plan exists, the tenant is known, or the cluster has room is the
// entity's to say. A password never passes through chat: a creation's or
// rotation's outcome says which command fetches it, once.
//
//	tenant-create <cluster> <plan> [name=N]
//	tenant-rotate <cluster> <tenant> [grace=24h]
//	tenant-change-plan <cluster> <tenant> <plan>
//	tenant-delete <cluster> <tenant>

// parseTenantArgs reads what follows the cluster of a tenant verb.
func parseTenantArgs(cmd *Command, args []string) error {
	next := func(what string, check func(string) error) (string, error) {
		if len(args) == 0 {
			return "", errors.New("missing " + what)
		}
		v := args[0]
		if err := check(v); err != nil {
			return "", err
		}
		args = args[1:]
		return v, nil
	}
	var err error
	if cmd.Verb != VerbTenantCreate {
		if cmd.Tenant, err = next("tenant", checkTenant); err != nil {
			return err
		}
	}
	if cmd.Verb == VerbTenantCreate || cmd.Verb == VerbTenantChangePlan {
		if cmd.TenantPlan, err = next("plan", checkPlan); err != nil {
			return err
		}
	}
	var keys []string
	switch cmd.Verb {
	case VerbTenantCreate:
		keys = []string{"name"}
	case VerbTenantRotate:
		keys = []string{"grace"}
	}
	return parseOptions(args, keys, func(key, value string) error {
		switch key {
		case "name":
			if err := checkTenant(value); err != nil {
				return err
			}
			cmd.Tenant = value
		case "grace":
			d, err := time.ParseDuration(value)
			if err != nil || d < workflows.MinRotationGrace || d > workflows.MaxRotationGrace {
				return fmt.Errorf("grace %s: want a duration from %s to %s, like 24h", quote(value), workflows.MinRotationGrace, workflows.MaxRotationGrace)
			}
			cmd.Grace = value
		}
		return nil
	})
}

func checkTenant(s string) error {
	if err := fleet.ValidateTenantName(s); err != nil {
		return fmt.Errorf("tenant %s: want a tenant's name like wabash-58799", quote(s))
	}
	return nil
}

func checkPlan(s string) error {
	if !planToken.MatchString(s) {
		return fmt.Errorf("plan %s: want a plan's name like basic-0", quote(s))
	}
	return nil
}

// tenantArgs writes what follows the cluster of a tenant verb, canonically.
func tenantArgs(c Command) []string {
	var out []string
	switch c.Verb {
	case VerbTenantCreate:
		out = append(out, c.TenantPlan)
		if c.Tenant != "" {
			out = append(out, "name="+c.Tenant)
		}
	case VerbTenantChangePlan:
		out = append(out, c.Tenant, c.TenantPlan)
	case VerbTenantRotate:
		out = append(out, c.Tenant)
		if c.Grace != "" {
			out = append(out, "grace="+c.Grace)
		}
	default:
		out = append(out, c.Tenant)
	}
	return out
}

// reparseTenant is the tenant command Parse makes of c's canonical text.
func reparseTenant(c Command) (Command, error) {
	again := Command{Verb: c.Verb, Cluster: c.Cluster}
	if err := parseTenantArgs(&again, tenantArgs(c)); err != nil {
		return Command{}, fmt.Errorf("%s: %w", c.Verb, err)
	}
	return again, nil
}
