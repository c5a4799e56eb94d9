package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// Removing a cluster's hosts, volumes and chroot: deleting a cluster
// (DeleteClusterWorkflow) and undoing a provisioning. Each finds what is
// left by kfleet's tags and removes it, so a retry (or a human resuming)
// only finishes the job.

// RemoveInput names what of a cluster to remove: its hosts of one role,
// or its data volumes. Plan, when set, restricts it to what that plan
// made (undoing a provisioning never removes another's hosts).
type RemoveInput struct {
	Cluster string `json:"cluster"`
	Role    string `json:"role,omitempty"`
	Plan    string `json:"plan,omitempty"`
	// Broker, when set, restricts it to that broker's host or volume (a
	// broker removed from its cluster).
	Broker *int32 `json:"broker,omitempty"`
}

// Removed counts what a removal removed (and what was already gone).
type Removed struct {
	Removed int      `json:"removed"`
	IDs     []string `json:"ids,omitempty"` // at most 20
}

func (r *Removed) add(id string) {
	r.Removed++
	if len(r.IDs) < 20 {
		r.IDs = append(r.IDs, id)
	}
}

// TerminateHosts terminates the cluster's live hosts of in.Role and waits
// until each is terminated (a broker's Kafka dies with its host; its data
// volume is detached).
func (a *Activities) TerminateHosts(ctx context.Context, in RemoveInput) (Removed, error) {
	if in.Cluster == "" || (in.Role != cloud.RoleBroker && in.Role != cloud.RoleZooKeeper && in.Role != cloud.RoleController) {
		return Removed{}, badInput(fmt.Errorf("terminate hosts of cluster %q: a cluster and a role (broker, zookeeper or controller) are required, got role %q", in.Cluster, in.Role))
	}
	hosts, err := a.EC2.FindInstances(ctx, cloud.InstanceFilter{Cluster: in.Cluster, Role: in.Role, BrokerID: in.Broker,
		States: append(slices.Clone(liveStates), "shutting-down")})
	if err != nil {
		return Removed{}, err
	}
	var out Removed
	defer keepAlive(ctx, in)()
	for _, h := range hosts {
		if in.Plan != "" && h.Tags[cloud.TagPlan] != in.Plan {
			continue
		}
		if h.State != "shutting-down" {
			if _, err := a.EC2.TerminateInstance(ctx, h.ID); err != nil && !errors.Is(err, cloud.ErrInstanceNotFound) {
				return out, fmt.Errorf("cluster %s: %w", in.Cluster, err)
			}
			a.Log.Info().Str("cluster", in.Cluster).Str("role", in.Role).Str("instance", h.ID).Msg("host terminated")
		}
		out.add(h.ID)
	}
	for _, id := range out.IDs {
		if _, err := a.EC2.WaitInstanceTerminated(ctx, id, a.Provisioning.waitTimeout()); err != nil && !errors.Is(err, cloud.ErrInstanceNotFound) {
			return out, fmt.Errorf("cluster %s: %w", in.Cluster, err)
		}
	}
	return out, nil
}

// DeleteDataVolumes deletes the cluster's Kafka data volumes, and their
// data with them. A volume still attached to a host that runs is refused:
// its host must be terminated first.
func (a *Activities) DeleteDataVolumes(ctx context.Context, in RemoveInput) (Removed, error) {
	if in.Cluster == "" {
		return Removed{}, badInput(errors.New("delete data volumes: a cluster is required"))
	}
	vols, err := a.EC2.FindVolumes(ctx, cloud.VolumeFilter{Cluster: in.Cluster, Role: cloud.RoleKafkaData, BrokerID: in.Broker})
	if err != nil {
		return Removed{}, err
	}
	var out Removed
	defer keepAlive(ctx, in)()
	for _, v := range vols {
		if in.Plan != "" && v.Tags[cloud.TagPlan] != in.Plan {
			continue
		}
		if v.State != "available" {
			// A terminated host's volume detaches on its own; give it
			// the time it takes.
			if _, err := a.EC2.WaitVolumeAvailable(ctx, v.ID, a.Provisioning.waitTimeout()); err != nil {
				if errors.Is(err, cloud.ErrVolumeNotFound) {
					continue
				}
				return out, fmt.Errorf("cluster %s broker %d: data volume %s (attached to %s): %w", in.Cluster, v.BrokerID, v.ID, v.InstanceID, err)
			}
		}
		if err := a.EC2.DeleteVolume(ctx, v.ID); err != nil && !errors.Is(err, cloud.ErrVolumeNotFound) {
			return out, fmt.Errorf("cluster %s broker %d: %w", in.Cluster, v.BrokerID, err)
		}
		if err := a.EC2.WaitVolumeDeleted(ctx, v.ID, a.Provisioning.waitTimeout()); err != nil {
			return out, fmt.Errorf("cluster %s broker %d: %w", in.Cluster, v.BrokerID, err)
		}
		a.Log.Info().Str("cluster", in.Cluster).Int32("broker", v.BrokerID).Str("volume", v.ID).Msg("data volume deleted")
		out.add(v.ID)
	}
	return out, nil
}

// RemoveChroot deletes the cluster's ZooKeeper chroot and everything under
// it (broker registrations, topics' metadata, the controller); gone
// already is done.
func (a *Activities) RemoveChroot(ctx context.Context, spec fleet.ClusterSpec) (int, error) {
	defer keepAlive(ctx, spec.ZooKeeper)()
	n, err := a.Chroots.RemoveChroot(ctx, spec)
	if err != nil {
		return n, err
	}
	a.Log.Info().Str("cluster", spec.ID).Int("znodes", n).Msg("ZooKeeper chroot removed")
	return n, nil
}

// Residents is what lives in a cluster besides Kafka's own: a deletion is
// refused while any remains, unless an approver forces it.
type Residents struct {
	Topics int      `json:"topics"`
	Users  int      `json:"users"`
	Some   []string `json:"some,omitempty"` // up to 10 names, for the refusal
}

// Empty reports whether nothing lives there.
func (r Residents) Empty() bool { return r.Topics == 0 && r.Users == 0 }

// ClusterResidents lists the cluster's topics (internal ones aside) and
// its SCRAM users (tenants).
func (a *Activities) ClusterResidents(ctx context.Context, spec fleet.ClusterSpec) (Residents, error) {
	defer keepAlive(ctx, spec.ID)()
	topics, users, err := a.Admin.Residents(ctx, spec)
	if err != nil {
		return Residents{}, err
	}
	r := Residents{Topics: len(topics), Users: len(users)}
	for _, t := range topics {
		r.Some = append(r.Some, "topic "+t)
	}
	for _, u := range users {
		r.Some = append(r.Some, "tenant "+u)
	}
	if len(r.Some) > 10 {
		r.Some = r.Some[:10]
	}
	return r, nil
}
