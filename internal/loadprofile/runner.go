package loadprofile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// BrokerOffline takes a broker offline behind kfleet's back and tells
// when it runs again: the local fleet's Crash and broker state in tests,
// its HTTP fault API from the CLI.
type BrokerOffline interface {
	TakeOffline(ctx context.Context, cluster string, broker int32) error
	Running(ctx context.Context, cluster string, broker int32) (bool, error)
}

// QuotaObserver counts, by user, the responses the cluster's brokers
// throttled for its quotas since they started.
type QuotaObserver interface {
	Throttled(ctx context.Context, cluster string) (map[string]int64, error)
}

// Errors a limit is read from (grow.go): kfleet refused a tenant
// (placement: disk or partitions of the plans) or a topic (the admin
// lane: the plan's partitions, the brokers' FD/mmap budget).
var (
	ErrTenantRefused = errors.New("kfleet refused a tenant")
	ErrTopicRefused  = errors.New("kfleet's admin lane refused a topic")
)

// Runner runs profiles on one cluster kfleet operates.
type Runner struct {
	Temporal client.Client
	Cluster  string
	// Handouts is the secret source new tenants' credentials are handed
	// out through; NotFound tells its "no such secret" error.
	Handouts    entity.HandoutSource
	NotFound    func(error) bool
	RequestedBy string
	// Offline, when set, takes OfflineBroker offline once half of the
	// run's records are acknowledged.
	Offline       BrokerOffline
	OfflineBroker int32
	// OfflineWait bounds the wait for kfleet to have the broker back
	// (default 2 min).
	OfflineWait time.Duration
	Quotas      QuotaObserver
	// Progress gets a line per step (nil: none). Never a password.
	Progress io.Writer
	// Drain bounds the wait, after the producers are done, for the
	// consumers to read back every acknowledged record (default 60 s).
	Drain time.Duration
}

// Tenant is a tenant the harness created, with its load.
type Tenant struct {
	Load  TenantLoad
	Name  string
	User  string
	creds fleet.TenantCredentials // from the handout; never printed
}

func (r *Runner) logf(format string, args ...any) {
	if r.Progress != nil {
		fmt.Fprintf(r.Progress, time.Now().Format(time.TimeOnly)+"  "+format+"\n", args...)
	}
}

// createParallel is how many tenant creations are asked for at once: the
// entity admits and runs them one at a time in the maintenance lane, so
// more only lengthens its queue.
const createParallel = 4

// CreateTenants creates a tenant for each load through kfleet's entity,
// follows each creation to its end and takes its credentials from the
// handout (deleting it, as the CLI does). The tenants made before an
// error are returned with it.
func (r *Runner) CreateTenants(ctx context.Context, loads []TenantLoad) ([]Tenant, error) {
	out := make([]Tenant, len(loads))
	errs := make([]error, len(loads))
	sem := make(chan struct{}, createParallel)
	var wg sync.WaitGroup
	for i, l := range loads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			out[i], errs[i] = r.createTenant(ctx, l)
		}()
	}
	wg.Wait()
	var made []Tenant
	for i, t := range out {
		if errs[i] == nil {
			made = append(made, t)
		}
	}
	return made, errors.Join(errs...)
}

func (r *Runner) createTenant(ctx context.Context, l TenantLoad) (Tenant, error) {
	cluster, op, err := entity.CreateTenant(ctx, r.Temporal, r.Cluster, workflows.TenantCreateParams{Plan: l.Plan}, r.RequestedBy, "load profile")
	if errors.Is(err, fleet.ErrRefused) {
		return Tenant{}, fmt.Errorf("cluster %s: tenant #%d on %s: %w: %w", r.Cluster, l.Index, l.Plan, ErrTenantRefused, err)
	}
	if err != nil {
		return Tenant{}, fmt.Errorf("cluster %s: tenant #%d on %s: %w", r.Cluster, l.Index, l.Plan, err)
	}
	res, _, err := entity.Follow[workflows.TenantResult](ctx, r.Temporal, cluster, op.ID, 200*time.Millisecond, func(entity.Progress) {})
	if err != nil {
		return Tenant{}, fmt.Errorf("cluster %s: tenant #%d creation %s: %w", cluster, l.Index, op.ID, err)
	}
	name := res.Change.Tenant
	if res.Handout == nil {
		return Tenant{}, fmt.Errorf("cluster %s: tenant %s: its creation handed out no credentials", cluster, name)
	}
	creds, err := entity.FetchHandout(ctx, r.Handouts, r.NotFound, cluster, name, res.Handout.User)
	if err != nil {
		return Tenant{}, err // names cluster and tenant
	}
	r.logf("tenant %s (%s, %s) created", name, l.Kind, l.Plan)
	return Tenant{Load: l, Name: name, User: creds.User, creds: creds}, nil
}

// topicName is a tenant's topic of a round, in its prefix.
func topicName(tenant string, round int) string {
	return fmt.Sprintf("%sload-%d", fleet.TenantPrefix(tenant), round)
}

// CreateTopics asks kfleet's admin lane for every tenant's topic of the
// round (requests of at most workflows.MaxTopicsPerRequest, which join
// one queued batch when they can) and follows each batch to its end. A
// topic the lane refused fails it with ErrTopicRefused and the reasons.
func (r *Runner) CreateTopics(ctx context.Context, tenants []Tenant, round, partitions int) error {
	var topics []fleet.TopicRequest
	for _, t := range tenants {
		topics = append(topics, fleet.TopicRequest{Tenant: t.Name, Name: topicName(t.Name, round), Partitions: partitions})
	}
	var ops []string
	for chunk := range slices.Chunk(topics, workflows.MaxTopicsPerRequest) {
		raw, err := json.Marshal(workflows.TopicAdminParams{Action: activities.TopicActionCreate, Topics: chunk})
		if err != nil {
			return err
		}
		op, err := entity.Request(ctx, r.Temporal, r.Cluster, workflows.Request{Kind: workflows.OpTopicAdmin, RequestedBy: r.RequestedBy,
			Reason: "load profile", Params: raw})
		if errors.Is(err, fleet.ErrRefused) {
			return fmt.Errorf("cluster %s: %d topic(s) of round %d: %w: %w", r.Cluster, len(chunk), round, ErrTopicRefused, err)
		}
		if err != nil {
			return fmt.Errorf("cluster %s: %d topic(s) of round %d: %w", r.Cluster, len(chunk), round, err)
		}
		if !slices.Contains(ops, op.ID) {
			ops = append(ops, op.ID)
		}
	}
	for _, id := range ops {
		res, _, err := entity.Follow[activities.TopicBatchResult](ctx, r.Temporal, r.Cluster, id, 200*time.Millisecond, func(entity.Progress) {})
		if err != nil {
			return fmt.Errorf("cluster %s: topic batch %s: %w", r.Cluster, id, err)
		}
		if len(res.Refused) > 0 {
			reasons := make([]string, 0, len(res.Refused))
			for _, ref := range res.Refused {
				reasons = append(reasons, ref.Topic+": "+ref.Reason)
			}
			return fmt.Errorf("cluster %s: topic batch %s: %w: %d refused: %s", r.Cluster, id, ErrTopicRefused, len(res.Refused), strings.Join(reasons, "; "))
		}
		r.logf("topic batch %s: %d topic(s) created in %d admin request(s)", id, res.Done, res.Requests)
	}
	return nil
}

// Run creates the profile's tenants and their topics through kfleet, and
// runs the load once (round 1).
func (r *Runner) Run(ctx context.Context, p Profile) (Report, []Tenant, error) {
	p = p.withDefaults()
	loads, err := Assign(p)
	if err != nil {
		return Report{}, nil, err
	}
	start := time.Now()
	tenants, err := r.CreateTenants(ctx, loads)
	if err != nil {
		return Report{}, tenants, err
	}
	r.logf("%d tenant(s) created in %.1f s", len(tenants), time.Since(start).Seconds())
	if err := r.CreateTopics(ctx, tenants, 1, p.Partitions); err != nil {
		return Report{}, tenants, err
	}
	rep, err := r.Load(ctx, p, tenants, 1, r.Offline != nil)
	return rep, tenants, err
}
