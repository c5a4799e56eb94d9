package kafka

import (
	"context"
	"strings"

	"github.com/kfleet/kfleet/internal/connpool"
	"github.com/kfleet/kfleet/internal/fleet"
)

// Pool keeps one Admin per cluster.
type Pool struct{ pool *connpool.Pool[*Admin] }

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{pool: connpool.New((*Admin).Close)} }

// Admin returns the cluster's Admin, dialing it on first use or when its
// bootstrap list changed.
func (p *Pool) Admin(spec fleet.ClusterSpec) (*Admin, error) {
	return p.pool.Get(spec.ID, strings.Join(spec.Bootstrap, ","), func() (*Admin, error) {
		return Dial(spec.ID, spec.Bootstrap)
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
