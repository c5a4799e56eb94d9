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
