package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/kfleet/kfleet/internal/fleet"
)

// Client quota entity type and key kfleet sets on tenants.
const (
	QuotaEntityUser     = "user"
	KeyProducerByteRate = "producer_byte_rate"
)

// ProducerQuota returns the producer_byte_rate quota of the entity
// user=<user> alone (not user+client-id pairs, not the user default); set is
// false when the user has none.
func (a *Admin) ProducerQuota(ctx context.Context, user string) (bytesPerSec float64, set bool, err error) {
	if user == "" {
		return 0, false, fmt.Errorf("cluster %s: producer quota: empty user", a.cluster)
	}
	qs, err := a.adm.DescribeClientQuotas(ctx, true, []kadm.DescribeClientQuotaComponent{
		{Type: QuotaEntityUser, MatchName: &user, MatchType: 0},
	})
	if err != nil {
		return 0, false, fmt.Errorf("cluster %s: describe quotas of user %s: %w", a.cluster, user, err)
	}
	for _, q := range qs {
		if len(q.Entity) != 1 || q.Entity[0].Type != QuotaEntityUser || q.Entity[0].Name == nil || *q.Entity[0].Name != user {
			continue
		}
		for _, v := range q.Values {
			if v.Key == KeyProducerByteRate {
				return v.Value, true, nil
			}
		}
	}
	return 0, false, nil
}

// SetProducerQuota sets the producer_byte_rate quota of the entity
// user=<user>. Setting the value in force changes nothing.
func (a *Admin) SetProducerQuota(ctx context.Context, user string, bytesPerSec float64) error {
	if user == "" || bytesPerSec <= 0 {
		return fmt.Errorf("cluster %s: set producer quota of user %q to %g: want a user and a positive rate", a.cluster, user, bytesPerSec)
	}
	res, err := a.adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: QuotaEntityUser, Name: &user}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: KeyProducerByteRate, Value: bytesPerSec}},
	}})
	if err != nil {
		return fmt.Errorf("cluster %s: set producer quota of user %s: %w", a.cluster, user, err)
	}
	var errs []error
	for _, r := range res {
		if r.Err != nil {
			if r.ErrMessage != "" {
				errs = append(errs, fmt.Errorf("%w: %s", r.Err, r.ErrMessage))
			} else {
				errs = append(errs, r.Err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster %s: set producer quota of user %s: %w", a.cluster, user, err)
	}
	return nil
}

// ProducerQuota returns a user's producer quota; see Admin.ProducerQuota.
func (p *Pool) ProducerQuota(ctx context.Context, spec fleet.ClusterSpec, user string) (float64, bool, error) {
	a, err := p.Admin(spec)
	if err != nil {
		return 0, false, err
	}
	return a.ProducerQuota(ctx, user)
}

// SetProducerQuota sets a user's producer quota; see
// Admin.SetProducerQuota.
func (p *Pool) SetProducerQuota(ctx context.Context, spec fleet.ClusterSpec, user string, bytesPerSec float64) error {
	a, err := p.Admin(spec)
	if err != nil {
		return err
	}
	return a.SetProducerQuota(ctx, user, bytesPerSec)
}
