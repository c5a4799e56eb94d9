package kafka

import (
	"context"
	"strings"

	"github.com/kfleet/kfleet/internal/connpool"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/secrets"
)

// Pool keeps one Admin per cluster.
type Pool struct {
	pool    *connpool.Pool[*Admin]
	secrets secrets.Source
}

// PoolOption configures a Pool.
type PoolOption func(*Pool)

// WithSecrets is where the pool reads the secrets secured clusters' specs
// name (fleet.Security); without it, a secured cluster cannot be dialed.
func WithSecrets(src secrets.Source) PoolOption { return func(p *Pool) { p.secrets = src } }

// NewPool returns an empty pool.
func NewPool(opts ...PoolOption) *Pool {
	p := &Pool{pool: connpool.New((*Admin).Close)}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Admin returns the cluster's Admin, dialing it on first use or when its
// bootstrap list or its security changed (DialSpec).
func (p *Pool) Admin(spec fleet.ClusterSpec) (*Admin, error) {
	key := strings.Join(spec.Bootstrap, ",") + securityKey(spec.Security)
	return p.pool.Get(spec.ID, key, func() (*Admin, error) {
		return DialSpec(spec, p.secrets)
	})
}

// Replication returns the cluster's controller and partitions; see
// Admin.Replication.
func (p *Pool) Replication(ctx context.Context, spec fleet.ClusterSpec) (int32, []fleet.Partition, error) {
	a, err := p.Admin(spec)
	if err != nil {
		return -1, nil, err
	}
	return a.Replication(ctx)
}

// ElectPreferredLeaders runs a preferred-leader election on the cluster; see
// Admin.ElectPreferredLeaders.
func (p *Pool) ElectPreferredLeaders(ctx context.Context, spec fleet.ClusterSpec, partitions []fleet.Partition) error {
	a, err := p.Admin(spec)
	if err != nil {
		return err
	}
	return a.ElectPreferredLeaders(ctx, partitions)
}

// Close closes every pooled connection.
func (p *Pool) Close() { p.pool.Close() }
