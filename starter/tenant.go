package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/secrets"
	"github.com/kfleet/kfleet/workflows"
)

// The tenant commands: create (placed on a cluster with room unless
// --cluster says), rotate, change-plan, delete, credentials, list, plans.
// A new password is never in Temporal: the operation stores it in the
// secret source under a handout name; once the operation succeeded, the
// command reads it from there, prints it, and deletes it.

// secretOpener opens the secret source the tenant commands fetch handouts
// from; notFound tells its "no such secret" error.
type secretOpener func(ctx context.Context) (src entity.HandoutSource, notFound func(error) bool, err error)

// envSecretSource opens the secret source $KFLEET_SECRETS names, else the
// one `make run` (starter dev) keeps under its default state folder, so a
// handout made on the local stack is fetched with no setting at all.
func envSecretSource(ctx context.Context) (entity.HandoutSource, func(error) bool, error) {
	setting := cmp.Or(os.Getenv(secrets.EnvVar), devstack.DefaultSecrets(".kfleet"))
	var awsCfg aws.Config
	if strings.HasPrefix(setting, "aws") {
		var err error
		if awsCfg, err = awsconfig.LoadDefaultConfig(ctx); err != nil {
			return nil, nil, fmt.Errorf("secret source %s: %w", setting, err)
		}
	}
	src, err := secrets.Open(setting, awsCfg, os.Getenv("KFLEET_AWS_ENDPOINT"))
	if err != nil {
		return nil, nil, err
	}
	return src, func(err error) bool { return errors.Is(err, secrets.ErrNotFound) }, nil
}

type tenantFlags struct {
	cluster, tenant, by, reason string
}

func (f *tenantFlags) register(cmd *cobra.Command, needsTenant bool) {
	cmd.Flags().StringVar(&f.cluster, "cluster", "", "cluster id")
	if needsTenant {
		cmd.Flags().StringVar(&f.tenant, "tenant", "", "the tenant's name, e.g. wabash-58799")
	}
	cmd.Flags().StringVar(&f.by, "requested-by", defaultRequester(), "who asks (recorded)")
	cmd.Flags().StringVar(&f.reason, "reason", "", "why (recorded)")
}

func (f *tenantFlags) check() error {
	if err := checkCluster(f.cluster); err != nil {
		return err
	}
	if err := fleet.ValidateTenantName(f.tenant); err != nil {
		return exitError{exitBadInput, fmt.Errorf("--tenant: %w", err)}
	}
	return nil
}

const tenantExits = `Bad input, an unknown tenant or plan, no room, or a request the entity
refuses exits 2: nothing is started; 3: Temporal unreachable. The command
follows the operation to its end: 0 when it succeeded, 2 when it was
refused touching nothing (a plan the tenant is over), 1 when it failed.`

func newTenantCommand(g *globalFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tenant",
		Short: "Tenants of multi-tenant clusters: create, rotate, change-plan, delete, credentials, list, plans",
		Long: `A tenant has a generated name (wabash-58799), a prefix "<name>." for its
topics, groups and transactional ids, a SCRAM-SHA-512 user, ACLs PREFIXED on
its prefix only, and quotas by plan (bin/starter tenant plans). A new
password is handed out once: the operation stores it in the secret source,
and this command fetches it, prints it and deletes it.`,
	}
	open := g.secrets
	if open == nil {
		open = envSecretSource
	}
	cmd.AddCommand(newTenantCreateCommand(g, open), newTenantRotateCommand(g, open), newTenantChangePlanCommand(g),
		newTenantDeleteCommand(g), newTenantCredentialsCommand(g, open), newTenantListCommand(g), newTenantPlansCommand(g))
	return cmd
}

// tenantAnswer is what a tenant command prints with --json.
type tenantAnswer struct {
	Cluster     string                   `json:"cluster"`
	Operation   *workflows.Operation     `json:"operation,omitempty"`
	Credentials *fleet.TenantCredentials `json:"credentials,omitempty"`
	// Handout names where the password waits when it was not fetched.
	Handout string `json:"handout,omitempty"`
}

// follow follows a tenant operation to its end and returns its result; a
// refusal that touched nothing exits 2.
func followTenant(ctx context.Context, cmd *cobra.Command, g *globalFlags, c client.Client, cluster string, op workflows.Operation) (workflows.TenantResult, workflows.Operation, error) {
	out := g.progressOut(cmd)
	fmt.Fprintf(out, "queued %s %s on %s (workflow %s)\n", op.Kind, op.ID, cluster, op.WorkflowID)
	res, final, err := entity.Follow[workflows.TenantResult](ctx, c, cluster, op.ID, 500*time.Millisecond, func(p entity.Progress) {
		fmt.Fprintf(out, "%s  %s\n", time.Now().Format(time.TimeOnly), describeProgress(p))
	})
	if err != nil && strings.Contains(final.Error, "refused, nothing touched") {
		return res, final, exitError{exitBadInput, err}
	}
	return res, final, err
}

// handOut fetches the new password of res's user once and prints it.
func handOut(ctx context.Context, cmd *cobra.Command, g *globalFlags, open secretOpener, cluster string, final workflows.Operation, res workflows.TenantResult) error {
	ans := tenantAnswer{Cluster: cluster, Operation: &final}
	if res.Handout == nil {
		return g.emit(cmd, ans, func(out io.Writer) { fmt.Fprintln(out, final.Outcome) })
	}
	src, notFound, err := open(ctx)
	if err == nil {
		var creds fleet.TenantCredentials
		if creds, err = entity.FetchHandout(ctx, src, notFound, cluster, res.Change.Tenant, res.Handout.User); err == nil {
			ans.Credentials = &creds
		}
	}
	if err != nil {
		ans.Handout = res.Handout.Handout
		fmt.Fprintf(cmd.ErrOrStderr(), "the password was not fetched (%v): it waits under %s; fetch it once with: bin/starter tenant credentials --cluster %s --tenant %s --user %s\n",
			err, res.Handout.Handout, cluster, res.Change.Tenant, res.Handout.User)
	}
	return g.emit(cmd, ans, func(out io.Writer) {
		fmt.Fprintln(out, final.Outcome)
		if ans.Credentials != nil {
			printCredentials(out, *ans.Credentials)
		}
	})
}

func printCredentials(out io.Writer, c fleet.TenantCredentials) {
	fmt.Fprintf(out, "\ntenant %s on %s — shown once, it is not kept anywhere else:\n", c.Tenant, c.Cluster)
	fmt.Fprintf(out, "  bootstrap  %s\n  mechanism  %s\n  user       %s\n  password   %s\n  prefix     %s (topics, groups, transactional ids)\n",
		strings.Join(c.Bootstrap, ","), c.Mechanism, c.User, c.Password, c.Prefix)
}

func newTenantCreateCommand(g *globalFlags, open secretOpener) *cobra.Command {
	var f tenantFlags
	var p workflows.TenantCreateParams
	cmd := &cobra.Command{
		Use:   "create --plan PLAN [--cluster ID] [--name NAME]",
		Short: "Create a tenant on a plan, on a cluster with room, and print its credentials once",
		Long: `Creates a tenant: a generated name (or --name), its prefix, a SCRAM-SHA-512
user, ACLs PREFIXED on its prefix and its plan's quotas. Without --cluster,
the registered cluster with the most room for the plan (disk and
partitions) is chosen. Prints the credentials once.

` + tenantExits,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.cluster != "" {
				if err := checkCluster(f.cluster); err != nil {
					return err
				}
			}
			if p.Name != "" {
				if err := fleet.ValidateTenantName(p.Name); err != nil {
					return exitError{exitBadInput, fmt.Errorf("--name: %w", err)}
				}
			}
			cat, err := fleet.TenantCatalogFromEnv()
			if err != nil {
				return exitError{exitBadInput, err}
			}
			if _, err := cat.Plan(p.Plan); err != nil {
				return exitError{exitBadInput, fmt.Errorf("--plan: %w", err)}
			}
			return withClient(cmd, g, func(ctx context.Context, c client.Client) error {
				cluster, op, err := entity.CreateTenant(ctx, c, f.cluster, p, f.by, f.reason)
				if err != nil {
					return err
				}
				res, final, err := followTenant(ctx, cmd, g, c, cluster, op)
				if err != nil {
					return err
				}
				return handOut(ctx, cmd, g, open, cluster, final, res)
			})
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&p.Plan, "plan", "", "the plan (bin/starter tenant plans), e.g. basic-0")
	cmd.Flags().StringVar(&p.Name, "name", "", "the tenant's name (default: generated, like wabash-58799)")
	return cmd
}

// tenantRequest is f's request of kind, checked on its face before
// Temporal is dialled (a malformed one exits 2).
func tenantRequest(f tenantFlags, kind string, params any) (workflows.Request, error) {
	raw, err := json.Marshal(params)
	if err != nil {
		return workflows.Request{}, err
	}
	req := workflows.Request{Kind: kind, RequestedBy: f.by, Reason: f.reason, Params: raw}
	k, err := workflows.KindNamed(kind)
	if err == nil {
		err = k.Check(req)
	}
	if err != nil {
		return req, exitError{exitBadInput, err}
	}
	return req, nil
}

// askTenant asks for a checked tenant request on f's cluster and follows
// it.
// askTenantOutcome asks for a tenant operation that hands nothing out,
// follows it and prints its outcome.
func askTenantOutcome(cmd *cobra.Command, g *globalFlags, cluster string, req workflows.Request) error {
	return withClient(cmd, g, func(ctx context.Context, c client.Client) error {
		_, final, err := askTenant(ctx, cmd, g, c, cluster, req)
		if err != nil {
			return err
		}
		return g.emit(cmd, tenantAnswer{Cluster: cluster, Operation: &final}, func(out io.Writer) { fmt.Fprintln(out, final.Outcome) })
	})
}

func askTenant(ctx context.Context, cmd *cobra.Command, g *globalFlags, c client.Client, cluster string, req workflows.Request) (workflows.TenantResult, workflows.Operation, error) {
	op, err := entity.Request(ctx, c, cluster, req)
	if err != nil {
		return workflows.TenantResult{}, op, err
	}
	return followTenant(ctx, cmd, g, c, cluster, op)
}

func newTenantRotateCommand(g *globalFlags, open secretOpener) *cobra.Command {
	var f tenantFlags
	var grace string
	cmd := &cobra.Command{
		Use:   "rotate --cluster ID --tenant NAME [--grace 24h]",
		Short: "Rotate a tenant's credential: a new user now, printed once; the old one removed after the grace",
		Long: `SCRAM holds one credential per user, so a rotation creates a new user
(<name>-r2, -r3, ...) with the same ACLs and quotas and prints its
credentials once; the old user keeps working for --grace (default 24h, so
clients can move over), then kfleet removes it.

` + tenantExits,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			req, err := tenantRequest(f, workflows.OpTenantRotate, workflows.TenantRotateParams{Tenant: f.tenant, Grace: grace})
			if err != nil {
				return err
			}
			return withClient(cmd, g, func(ctx context.Context, c client.Client) error {
				res, final, err := askTenant(ctx, cmd, g, c, f.cluster, req)
				if err != nil {
					return err
				}
				return handOut(ctx, cmd, g, open, f.cluster, final, res)
			})
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&grace, "grace", "", "how long the old credential keeps working (default 24h)")
	return cmd
}

func newTenantChangePlanCommand(g *globalFlags) *cobra.Command {
	var f tenantFlags
	var plan string
	cmd := &cobra.Command{
		Use:   "change-plan --cluster ID --tenant NAME --plan PLAN",
		Short: "Move a tenant to another plan: its quotas and limits",
		Long: `Sets the tenant's users' quotas to the new plan's. Refused, touching
nothing, when its prefix holds more partitions than the plan allows or a
topic's retention is outside the plan's bounds, or the cluster has no room.

` + tenantExits,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			cat, err := fleet.TenantCatalogFromEnv()
			if err != nil {
				return exitError{exitBadInput, err}
			}
			limits, err := cat.Plan(plan)
			if err != nil {
				return exitError{exitBadInput, fmt.Errorf("--plan: %w", err)}
			}
			req, err := tenantRequest(f, workflows.OpTenantChangePlan, workflows.TenantChangePlanParams{Tenant: f.tenant, Plan: plan, Limits: &limits})
			if err != nil {
				return err
			}
			return askTenantOutcome(cmd, g, f.cluster, req)
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&plan, "plan", "", "the new plan")
	return cmd
}

func newTenantDeleteCommand(g *globalFlags) *cobra.Command {
	var f tenantFlags
	cmd := &cobra.Command{
		Use:   "delete --cluster ID --tenant NAME",
		Short: "Delete a tenant: its users cut off, its topics and groups deleted, then verified gone",
		Long: `Removes the tenant's users (ACLs, SCRAM credentials, quotas) first, then its
prefix's topics and consumer groups, then counts what is left: anything
left fails the deletion. (Asked in chat, a second person approves it.)

` + tenantExits,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			req, err := tenantRequest(f, workflows.OpTenantDelete, workflows.TenantDeleteParams{Tenant: f.tenant})
			if err != nil {
				return err
			}
			return askTenantOutcome(cmd, g, f.cluster, req)
		},
	}
	f.register(cmd, true)
	return cmd
}

func newTenantCredentialsCommand(g *globalFlags, open secretOpener) *cobra.Command {
	var f tenantFlags
	var user string
	cmd := &cobra.Command{
		Use:   "credentials --cluster ID --tenant NAME [--user USER]",
		Short: "Fetch a handed-out password once (then it is deleted from the secret source)",
		Long: `Prints the credentials a creation or rotation handed out and deletes them
from the secret source: a password is shown once. --user defaults to the
tenant's newest user. A handout fetched already exits 2: rotate for a new
password.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			return withClient(cmd, g, func(ctx context.Context, c client.Client) error {
				if user == "" {
					st, err := entity.ClusterStatus(ctx, c, f.cluster)
					if err != nil {
						return err
					}
					i := slicesIndexTenant(st.Tenants, f.tenant)
					if i < 0 {
						return fmt.Errorf("cluster %s: %w: no tenant %s", f.cluster, fleet.ErrRefused, f.tenant)
					}
					user = st.Tenants[i].CurrentUser()
				}
				src, notFound, err := open(ctx)
				if err != nil {
					return err
				}
				creds, err := entity.FetchHandout(ctx, src, notFound, f.cluster, f.tenant, user)
				if err != nil {
					return err
				}
				return g.emit(cmd, tenantAnswer{Cluster: f.cluster, Credentials: &creds}, func(out io.Writer) { printCredentials(out, creds) })
			})
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&user, "user", "", "the user (default: the tenant's newest)")
	return cmd
}

func slicesIndexTenant(ts []workflows.TenantState, name string) int {
	for i, t := range ts {
		if t.Name == name {
			return i
		}
	}
	return -1
}

func newTenantListCommand(g *globalFlags) *cobra.Command {
	var cluster string
	cmd := &cobra.Command{
		Use:   "list [--cluster ID]",
		Short: "The tenants of a cluster, or of every registered cluster",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withClient(cmd, g, func(ctx context.Context, c client.Client) error {
				ids := []string{cluster}
				if cluster == "" {
					cs, err := entity.ListClusters(ctx, c)
					if err != nil {
						return err
					}
					ids = ids[:0]
					for _, cl := range cs {
						ids = append(ids, cl.ID)
					}
				}
				all := map[string][]workflows.TenantState{}
				for _, id := range ids {
					st, err := entity.ClusterStatus(ctx, c, id)
					if err != nil {
						return err
					}
					all[id] = st.Tenants
				}
				return g.emit(cmd, all, func(out io.Writer) {
					for _, id := range ids {
						fmt.Fprintf(out, "%s: %d tenant(s)\n", id, len(all[id]))
						for _, t := range all[id] {
							fmt.Fprintf(out, "  %s  %s  users %s\n", t.Name, t.Plan.Name, strings.Join(t.UserNames(), ", "))
						}
					}
				})
			})
		},
	}
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster id (default: every registered cluster)")
	return cmd
}

func newTenantPlansCommand(g *globalFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "plans",
		Short: "The plan catalog (KFLEET_PLANS, or the embedded one)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cat, err := fleet.TenantCatalogFromEnv()
			if err != nil {
				return exitError{exitBadInput, err}
			}
			return g.emit(cmd, cat, func(out io.Writer) {
				for _, p := range cat.Plans {
					fmt.Fprintln(out, p.String())
				}
			})
		},
	}
}
