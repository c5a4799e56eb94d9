package entity

import (
	"context"
	"fmt"
	"slices"

	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/fleet"
)

// SetControllerHost makes instance the host of KRaft controller node in
// the cluster entity's spec, and address its entry in the quorum's
// bootstrap list in place of oldAddress (appended when oldAddress is not
// listed), provided the spec still names from — or names instance
// already, and then nothing changes (changed false). As SetBrokerHost, a
// spec that names another host, or lacks the controller, is refused
// (fleet.ErrRefused), and the spec is read and written in two calls.
func SetControllerHost(ctx context.Context, c client.Client, cluster string, node int32, from, instance, oldAddress, address string) (bool, error) {
	st, err := ClusterStatus(ctx, c, cluster)
	if err != nil {
		return false, err
	}
	spec := st.Spec
	if spec.KRaft == nil {
		return false, fmt.Errorf("cluster %s: not a KRaft cluster, it has no controller %d: %w", cluster, node, fleet.ErrRefused)
	}
	k := *spec.KRaft
	k.Controllers, k.QuorumBootstrap = slices.Clone(k.Controllers), slices.Clone(k.QuorumBootstrap)
	i := slices.IndexFunc(k.Controllers, func(c fleet.ControllerSpec) bool { return c.ID == node })
	switch {
	case i < 0:
		return false, fmt.Errorf("cluster %s: controller %d is not in its spec: %w", cluster, node, fleet.ErrRefused)
	case k.Controllers[i].InstanceID == instance && (address == "" || slices.Contains(k.QuorumBootstrap, address)):
		return false, nil
	case k.Controllers[i].InstanceID != from && k.Controllers[i].InstanceID != instance:
		return false, fmt.Errorf("cluster %s: controller %d's host is %s in its spec, not %s: %w", cluster, node, k.Controllers[i].InstanceID, from, fleet.ErrRefused)
	}
	k.Controllers[i].InstanceID = instance
	if address != "" && !slices.Contains(k.QuorumBootstrap, address) {
		if j := slices.Index(k.QuorumBootstrap, oldAddress); oldAddress != "" && j >= 0 {
			k.QuorumBootstrap[j] = address
		} else {
			k.QuorumBootstrap = append(k.QuorumBootstrap, address)
		}
	}
	spec.KRaft = &k
	if _, err := setSpec(ctx, c, cluster, spec); err != nil {
		return false, err
	}
	return true, nil
}

// SetControllerHost implements the controller replacement's spec change
// (activities.ControllerSpecs).
func (o Operator) SetControllerHost(ctx context.Context, cluster string, node int32, from, instance, oldAddress, address string) (bool, error) {
	return SetControllerHost(ctx, o.Client, cluster, node, from, instance, oldAddress, address)
}
