package entity

import (
	"context"
	"fmt"
	"slices"

	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// SetBrokerHost makes instance the host of broker in the cluster entity's
// spec (its set-spec update, which also restarts the entity's sensing on
// the new spec), provided the spec still names from — or names instance
// already, and then nothing changes (changed false). A spec that names
// another host, or lacks the broker, is refused (fleet.ErrRefused): someone
// changed it meanwhile, and a human decides. The spec is read and written
// in two calls; a registration landing between them is overwritten, which
// only an operator re-registering the cluster during a host replacement
// can cause.
func SetBrokerHost(ctx context.Context, c client.Client, cluster string, broker int32, from, instance string) (bool, error) {
	st, err := ClusterStatus(ctx, c, cluster)
	if err != nil {
		return false, err
	}
	spec := st.Spec
	spec.Brokers = slices.Clone(spec.Brokers)
	i := slices.IndexFunc(spec.Brokers, func(b fleet.BrokerSpec) bool { return b.ID == broker })
	switch {
	case i < 0:
		return false, fmt.Errorf("cluster %s: broker %d is not in its spec: %w", cluster, broker, fleet.ErrRefused)
	case spec.Brokers[i].InstanceID == instance:
		return false, nil
	case spec.Brokers[i].InstanceID != from:
		return false, fmt.Errorf("cluster %s: broker %d's host is %s in its spec, not %s: %w", cluster, broker, spec.Brokers[i].InstanceID, from, fleet.ErrRefused)
	}
	spec.Brokers[i].InstanceID = instance
	var answer fleet.ClusterSpec
	if err := control(ctx, c, cluster, workflows.UpdateSetSpec, spec, &answer); err != nil {
		return false, err
	}
	return true, nil
}

// SetBrokerHost implements activities.ClusterSpecs.
func (o Operator) SetBrokerHost(ctx context.Context, cluster string, broker int32, from, instance string) (bool, error) {
	return SetBrokerHost(ctx, o.Client, cluster, broker, from, instance)
}

// AddBrokers adds brokers to the cluster entity's spec (set-spec, which
// restarts its sensing on them) with their bootstrap addresses; brokers
// it has already are left as they are, so a retry changes nothing. The
// spec is read and written in two calls, as SetBrokerHost's.
func AddBrokers(ctx context.Context, c client.Client, cluster string, brokers []fleet.BrokerSpec, bootstrap []string) (fleet.ClusterSpec, error) {
	st, err := ClusterStatus(ctx, c, cluster)
	if err != nil {
		return fleet.ClusterSpec{}, err
	}
	spec := st.Spec
	spec.Brokers, spec.Bootstrap = slices.Clone(spec.Brokers), slices.Clone(spec.Bootstrap)
	changed := false
	for _, b := range brokers {
		if _, ok := spec.Broker(b.ID); !ok {
			spec.Brokers = append(spec.Brokers, b)
			changed = true
		}
	}
	for _, addr := range bootstrap {
		if !slices.Contains(spec.Bootstrap, addr) {
			spec.Bootstrap = append(spec.Bootstrap, addr)
			changed = true
		}
	}
	if !changed {
		return spec, nil
	}
	return setSpec(ctx, c, cluster, spec)
}

// RemoveBroker takes broker out of the cluster entity's spec, and address
// out of its bootstrap list unless it is the last; a broker it lacks
// already changes nothing. The last broker is refused (fleet.ErrRefused).
func RemoveBroker(ctx context.Context, c client.Client, cluster string, broker int32, address string) (fleet.ClusterSpec, error) {
	st, err := ClusterStatus(ctx, c, cluster)
	if err != nil {
		return fleet.ClusterSpec{}, err
	}
	spec := st.Spec
	if _, ok := spec.Broker(broker); !ok {
		return spec, nil
	}
	if len(spec.Brokers) == 1 {
		return spec, fmt.Errorf("cluster %s: broker %d is its last: %w", cluster, broker, fleet.ErrRefused)
	}
	spec.Brokers = slices.DeleteFunc(slices.Clone(spec.Brokers), func(b fleet.BrokerSpec) bool { return b.ID == broker })
	if rest := slices.DeleteFunc(slices.Clone(spec.Bootstrap), func(a string) bool { return a == address }); len(rest) > 0 {
		spec.Bootstrap = rest
	}
	return setSpec(ctx, c, cluster, spec)
}

func setSpec(ctx context.Context, c client.Client, cluster string, spec fleet.ClusterSpec) (fleet.ClusterSpec, error) {
	var answer fleet.ClusterSpec
	if err := control(ctx, c, cluster, workflows.UpdateSetSpec, spec, &answer); err != nil {
		return spec, err
	}
	return answer, nil
}

// AddBrokers implements activities.ClusterSpecs.
func (o Operator) AddBrokers(ctx context.Context, cluster string, brokers []fleet.BrokerSpec, bootstrap []string) (fleet.ClusterSpec, error) {
	return AddBrokers(ctx, o.Client, cluster, brokers, bootstrap)
}

// RemoveBroker implements activities.ClusterSpecs.
func (o Operator) RemoveBroker(ctx context.Context, cluster string, broker int32, address string) (fleet.ClusterSpec, error) {
	return RemoveBroker(ctx, o.Client, cluster, broker, address)
}
