package entity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// Tenants through the client: a plan's name becomes its limits (the
// catalog is the clients', KFLEET_PLANS or the embedded one), a new
// tenant is placed on a registered cluster with room unless the caller
// names one, and a handed-out password is fetched from the secret source
// once, by its caller, after the operation succeeded.

// resolvePlan fills in the limits of the plan a tenant creation or plan
// change names, from the catalog; an unknown plan is refused. Requests of
// other kinds, and limits already given, are left as they are.
func resolvePlan(req workflows.Request) (workflows.Request, error) {
	if req.Kind != workflows.OpTenantCreate && req.Kind != workflows.OpTenantChangePlan || len(req.Params) == 0 {
		return req, nil
	}
	var p map[string]json.RawMessage
	if err := json.Unmarshal(req.Params, &p); err != nil {
		return req, nil // the kind's own check says what is wrong
	}
	var plan string
	if err := json.Unmarshal(p["plan"], &plan); err != nil || plan == "" || p["limits"] != nil {
		return req, nil
	}
	cat, err := fleet.TenantCatalogFromEnv()
	if err != nil {
		return req, err
	}
	limits, err := cat.Plan(plan)
	if err != nil {
		return req, err
	}
	if p["limits"], err = json.Marshal(limits); err != nil {
		return req, err
	}
	if req.Params, err = json.Marshal(p); err != nil {
		return req, err
	}
	return req, nil
}

// TenantRooms is what placement knows of every registered cluster.
func TenantRooms(ctx context.Context, c client.Client) ([]fleet.ClusterRoom, error) {
	cs, err := ListClusters(ctx, c)
	if err != nil {
		return nil, err
	}
	var rooms []fleet.ClusterRoom
	for _, cl := range cs {
		st, err := ClusterStatus(ctx, c, cl.ID)
		if errors.Is(err, fleet.ErrUnknownCluster) {
			continue // ended since it was listed
		}
		if err != nil {
			return nil, err
		}
		rooms = append(rooms, workflows.TenantRoom(st))
	}
	return rooms, nil
}

// CreateTenant asks for a tenant on plan on cluster, or, when cluster is
// "", on the registered cluster with the most room for it. It returns the
// cluster and the operation admitted; no cluster with room, an unknown
// plan or a name taken is refused (fleet.ErrRefused): nothing started.
func CreateTenant(ctx context.Context, c client.Client, cluster string, p workflows.TenantCreateParams, by, reason string) (string, workflows.Operation, error) {
	cat, err := fleet.TenantCatalogFromEnv()
	if err != nil {
		return "", workflows.Operation{}, err
	}
	limits, err := cat.Plan(p.Plan)
	if err != nil {
		return "", workflows.Operation{}, err
	}
	p.Limits = &limits
	if cluster == "" {
		rooms, err := TenantRooms(ctx, c)
		if err != nil {
			return "", workflows.Operation{}, err
		}
		if cluster, err = fleet.PlaceTenant(rooms, limits); err != nil {
			return "", workflows.Operation{}, err
		}
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return "", workflows.Operation{}, err
	}
	op, err := Request(ctx, c, cluster, workflows.Request{Kind: workflows.OpTenantCreate, RequestedBy: by, Reason: reason, Params: raw})
	return cluster, op, err
}

// HandoutSource is what fetching a handout needs of the secret source;
// notFound tells its "no such secret" error.
type HandoutSource interface {
	Get(ctx context.Context, name string) ([]byte, error)
	Delete(ctx context.Context, name string) error
}

// ErrHandoutGone: the handout was fetched already (or never made): a
// password is shown once; a rotation makes a new one.
var ErrHandoutGone = fmt.Errorf("%w: the password was handed out already (it is shown once): rotate the tenant's credential for a new one", fleet.ErrRefused)

// FetchHandout reads a user's handed-out credentials from the secret
// source and deletes them: the caller is the only one to see the
// password. notFound tells the source's "no such secret" error.
func FetchHandout(ctx context.Context, src HandoutSource, notFound func(error) bool, cluster, tenant, user string) (fleet.TenantCredentials, error) {
	var creds fleet.TenantCredentials
	name := fleet.HandoutName(cluster, tenant, user)
	data, err := src.Get(ctx, name)
	switch {
	case err != nil && notFound(err):
		return creds, fmt.Errorf("cluster %s tenant %s user %s: %w", cluster, tenant, user, ErrHandoutGone)
	case err != nil:
		return creds, fmt.Errorf("cluster %s tenant %s: read handout %s: %w", cluster, tenant, name, err)
	}
	if err := json.Unmarshal(data, &creds); err != nil {
		return creds, fmt.Errorf("cluster %s tenant %s: handout %s is malformed", cluster, tenant, name) // never quote it
	}
	if err := src.Delete(ctx, name); err != nil && !notFound(err) {
		return creds, fmt.Errorf("cluster %s tenant %s: delete handout %s: %w", cluster, tenant, name, err)
	}
	return creds, nil
}

// renderTenants prints a cluster's tenants: plan, users, what retires.
func renderTenants(w io.Writer, tenants []workflows.TenantState) {
	if len(tenants) == 0 {
		return
	}
	fmt.Fprintf(w, "\ntenants (%d):\n", len(tenants))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TENANT\tPLAN\tUSERS\tCREATED")
	for _, t := range tenants {
		users := make([]string, len(t.Users))
		for i, u := range t.Users {
			users[i] = u.Name
			if !u.RetireAt.IsZero() {
				users[i] += fmt.Sprintf(" (retires %s)", Clock(u.RetireAt))
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s by %s\n", t.Name, t.Plan.Name, strings.Join(users, ", "), Clock(t.Created), orDash(t.CreatedBy))
	}
	tw.Flush()
}
