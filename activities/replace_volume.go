package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/kfleet/kfleet/internal/cloud"
)

// A replacement host's data volume: the broker's own, moved over from its
// old host (detached there, attached here), so that only what was written
// meanwhile is copied; or, when it is lost, a blank gp3 volume and a full
// catch-up.

// VolumeCreateInput asks CreateDataVolume for a blank data volume.
type VolumeCreateInput struct {
	ReplaceInput
	AZ      string `json:"az"`
	SizeGiB int32  `json:"sizeGiB"`
	// PollInterval paces the wait until it is available; 0: the worker's.
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

// CreateDataVolume creates the broker's blank gp3 data volume in the
// replacement's zone and waits until it is available; it returns its id.
// It checks first: a volume this recovery created for the broker (its
// kfleet:requested-by and kfleet:replaces tags) is the one; and the
// creation's ClientToken derives from the recovery, the broker, the old
// host and the attempt, so a retry never makes a second volume.
func (a *Activities) CreateDataVolume(ctx context.Context, in VolumeCreateInput) (string, error) {
	host, err := in.host()
	if err != nil {
		return "", err
	}
	if a.Lifecycle == nil {
		return "", badInput(errors.New("this worker has no EC2 client to create volumes with"))
	}
	wf := activity.GetInfo(ctx).WorkflowExecution.ID
	vols, err := a.Lifecycle.FindVolumes(ctx, cloud.VolumeFilter{Cluster: in.Spec.ID, Role: cloud.RoleKafkaData, BrokerID: &in.Broker,
		States: []string{"creating", "available", "in-use"}})
	if err != nil {
		return "", fmt.Errorf("%s: %w", in.what(), err)
	}
	i := slices.IndexFunc(vols, func(v cloud.Volume) bool {
		return v.Tags[cloud.TagRequestedBy] == wf && v.Tags[TagReplaces] == host.InstanceID
	})
	var vol cloud.Volume
	if i >= 0 {
		vol = vols[i]
		a.Log.Info().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Str("volume", vol.ID).Msg("blank data volume found by its tags: not creating another")
	} else {
		token := clientToken("data", wf, in.Broker, host.InstanceID, in.Attempt)
		vol, err = a.Lifecycle.CreateVolume(ctx, cloud.VolumeSpec{Cluster: in.Spec.ID, BrokerID: in.Broker, AZ: in.AZ, SizeGiB: in.SizeGiB,
			ClientToken: token, Tags: map[string]string{cloud.TagRequestedBy: wf, TagReplaces: host.InstanceID}})
		switch {
		case errors.Is(err, cloud.ErrInvalidSpec), errors.Is(err, cloud.ErrIdempotentMismatch):
			return "", badInput(fmt.Errorf("%s: %w", in.what(), err))
		case err != nil:
			return "", fmt.Errorf("%s: %w", in.what(), err)
		}
		a.Log.Info().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Str("volume", vol.ID).Str("token", token).
			Int32("sizeGiB", in.SizeGiB).Msg("blank data volume created (or found by its token)")
	}
	activity.RecordHeartbeat(ctx, vol.ID)
	err = a.poll(ctx, in.PollInterval, time.Time{}, func() (bool, error) {
		v, err := a.Lifecycle.DescribeVolume(ctx, vol.ID)
		if err != nil {
			return false, err
		}
		vol = v
		if v.State == "error" {
			return false, badInput(fmt.Errorf("%s: new volume %s failed (state error)", in.what(), v.ID))
		}
		return v.State == "available" || v.State == "in-use", nil
	}, func() any { return vol.ID + " " + vol.State })
	if err != nil {
		return "", waitFailed(err, "%s: new volume %s", in.what(), vol.ID)
	}
	return vol.ID, nil
}

// AttachInput asks AttachDataVolume to move a data volume to a new host.
type AttachInput struct {
	BrokerInput
	Volume string `json:"volume"`
	// Old is the host it may still be attached to; New the host it goes
	// to, at Device.
	Old    string `json:"old"`
	New    string `json:"new"`
	Device string `json:"device"`
	// PollInterval paces the describes; 0: the worker's.
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

// AttachDataVolume makes the volume attached to the new host: it detaches
// it from the old one only while it is still attached there, attaches it
// only while it is attached nowhere, and waits out each transition, so a
// retry at any point carries on where the last attempt stopped. The old
// host is stopped or terminated (nothing holds the volume there), so the
// detach is never forced: a volume still busy on a running host is waited
// for, never pulled from under Kafka. A volume attached to any other
// instance, or in another zone, is for a human.
func (a *Activities) AttachDataVolume(ctx context.Context, in AttachInput) error {
	if _, err := in.host(); err != nil {
		return err
	}
	if a.Lifecycle == nil {
		return badInput(errors.New("this worker has no EC2 client to attach volumes with"))
	}
	if in.Volume == "" || in.New == "" || in.Device == "" {
		return badInput(fmt.Errorf("cluster %s broker %d: a volume, a new host and a device are required", in.Spec.ID, in.Broker))
	}
	log := a.Log.With().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Str("volume", in.Volume).Str("old", in.Old).Str("new", in.New).Logger()
	what := fmt.Sprintf("cluster %s broker %d: volume %s", in.Spec.ID, in.Broker, in.Volume)
	var seen string
	err := a.poll(ctx, in.PollInterval, time.Time{}, func() (bool, error) {
		v, err := a.Lifecycle.DescribeVolume(ctx, in.Volume)
		switch {
		case errors.Is(err, cloud.ErrVolumeNotFound):
			return false, badInput(fmt.Errorf("%s no longer exists", what))
		case err != nil:
			return false, err
		}
		seen = v.State + attachedTo(v)
		switch {
		case v.InstanceID == in.New:
			return v.AttachState == "attached", nil
		case v.InstanceID != "" && v.InstanceID == in.Old:
			if v.AttachState != "attached" {
				return false, nil // detaching, or busy until the host lets go
			}
			if err := a.Lifecycle.DetachVolume(ctx, in.Volume, in.Old, false); err != nil && !errors.Is(err, cloud.ErrIncorrectState) && !errors.Is(err, cloud.ErrNotAttached) {
				return false, err
			}
			log.Info().Msg("data volume detached from the old host")
		case v.InstanceID != "":
			return false, badInput(fmt.Errorf("%s is %s to instance %s, neither the old host nor the new one", what, v.AttachState, v.InstanceID))
		case v.State == "available":
			err := a.Lifecycle.AttachVolume(ctx, in.Volume, in.New, in.Device)
			switch {
			case errors.Is(err, cloud.ErrZoneMismatch):
				return false, badInput(fmt.Errorf("%s: %w", what, err))
			case errors.Is(err, cloud.ErrVolumeInUse), errors.Is(err, cloud.ErrIncorrectState):
				return false, nil // it moved meanwhile: look again
			case err != nil:
				return false, err
			}
			log.Info().Str("device", in.Device).Msg("data volume attached to the new host")
		case v.State == "error":
			return false, badInput(fmt.Errorf("%s failed (state error)", what))
		}
		return false, nil // creating, or a detach or attach under way
	}, func() any { return seen })
	if err != nil {
		return waitFailed(err, "%s: move to instance %s", what, in.New)
	}
	return nil
}

func attachedTo(v cloud.Volume) string {
	if v.InstanceID == "" {
		return ""
	}
	return fmt.Sprintf(" (%s to %s)", v.AttachState, v.InstanceID)
}
