package fleet

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The rules of host replacement (OPERATIONS.md "Provisioning and hosts"):
// what recovery does about a lost broker's instance, which volume holds
// its data, and how fast a replaced broker catches up. Activities read EC2
// and Kafka; these rules decide, so the workflow and its tests share them.

// HostFate is what recovery does about a lost broker's instance, by the
// instance's EC2 state.
type HostFate string

// Fates of a broker's instance.
const (
	// HostUp: the instance runs; the broker is diagnosed and started
	// there.
	HostUp HostFate = "up"
	// HostStopped: the instance is stopped, or on its way (stopping) or
	// back (pending): start it and wait; only one that does not come back
	// is replaced. A stop is often a human's or a maintenance event's, and
	// the instance keeps its volume, its address and its host limits.
	HostStopped HostFate = "stopped"
	// HostGone: terminated, shutting down, or unknown to EC2: no start
	// can bring it back, so the broker gets a new host.
	HostGone HostFate = "gone"
)

// InstanceFate is the fate of an instance in EC2 state state; an instance
// EC2 does not know (any state not EC2's, "not-found") is gone.
func InstanceFate(state string) HostFate {
	switch state {
	case "running":
		return HostUp
	case "pending", "stopping", "stopped":
		return HostStopped
	}
	return HostGone
}

// VolumeSighting is one EBS volume tagged as a broker's data volume, as
// EC2 describes it.
type VolumeSighting struct {
	ID    string `json:"id"`
	State string `json:"state"` // creating, available, in-use, deleting, deleted, error
	AZ    string `json:"az"`
	// InstanceID and AttachState are its attachment; empty while detached.
	InstanceID  string `json:"instanceId,omitempty"`
	AttachState string `json:"attachState,omitempty"`
	SizeGiB     int32  `json:"sizeGiB"`
	Device      string `json:"device,omitempty"`
}

// VolumeChoice is the data volume a replacement host takes over.
type VolumeChoice struct {
	Volume VolumeSighting `json:"volume"`
	// Lost: no volume of the broker survives; the replacement gets a
	// blank one and copies every replica it holds.
	Lost bool `json:"lost,omitempty"`
	// Why says what was found, for humans.
	Why string `json:"why"`
}

// ErrVolumeAmbiguous: which of a broker's volumes holds its data cannot be
// told; a human decides (attaching the wrong one would start the broker on
// stale or foreign logs).
var ErrVolumeAmbiguous = errors.New("cannot tell which volume holds the broker's data")

// ChooseDataVolume picks, among the volumes tagged as broker's data
// volume, the one its replacement host takes over: one already attached to
// the replacement (an earlier attempt moved it), else the one still
// attached to the old instance, else the only one available. A volume
// deleted, being deleted or failed (state error) holds nothing to keep;
// when no other survives the volume is lost. Several available volumes,
// or only volumes attached to other hosts, are ErrVolumeAmbiguous.
func ChooseDataVolume(broker int32, vols []VolumeSighting, old, replacement string) (VolumeChoice, error) {
	var usable, dead, elsewhere []VolumeSighting
	for _, v := range vols {
		switch {
		case slices.Contains([]string{"deleting", "deleted", "error"}, v.State):
			dead = append(dead, v)
		case replacement != "" && v.InstanceID == replacement:
			return VolumeChoice{Volume: v, Why: fmt.Sprintf("volume %s is %s to the new host %s", v.ID, v.AttachState, replacement)}, nil
		case v.InstanceID == "":
			usable = append(usable, v)
		case v.InstanceID == old:
			return VolumeChoice{Volume: v, Why: fmt.Sprintf("volume %s is still %s to the old host %s", v.ID, v.AttachState, old)}, nil
		default:
			elsewhere = append(elsewhere, v)
		}
	}
	switch {
	case len(usable) == 1:
		return VolumeChoice{Volume: usable[0], Why: fmt.Sprintf("volume %s survived its host, detached", usable[0].ID)}, nil
	case len(usable) > 1:
		return VolumeChoice{}, fmt.Errorf("broker %d: volumes %s are all available: %w", broker, volumeIDs(usable), ErrVolumeAmbiguous)
	case len(elsewhere) > 0:
		return VolumeChoice{}, fmt.Errorf("broker %d: volume %s is attached to instance %s, neither its old host nor its new one: %w",
			broker, elsewhere[0].ID, elsewhere[0].InstanceID, ErrVolumeAmbiguous)
	}
	why := fmt.Sprintf("no data volume of broker %d survives", broker)
	if len(dead) > 0 {
		why += fmt.Sprintf(" (%s)", volumeStates(dead))
	}
	return VolumeChoice{Lost: true, Why: why}, nil
}

func volumeIDs(vols []VolumeSighting) string {
	ids := make([]string, len(vols))
	for i, v := range vols {
		ids[i] = v.ID
	}
	return strings.Join(ids, ", ")
}

func volumeStates(vols []VolumeSighting) string {
	out := make([]string, len(vols))
	for i, v := range vols {
		out[i] = v.ID + " " + v.State
	}
	return strings.Join(out, ", ")
}

// CatchUp is how far a broker's replicas are behind their leaders: the
// replicas out of the ISR and the bytes they lack (the leader's log size
// less the follower's, as DescribeLogDirs reports them).
type CatchUp struct {
	Broker   int32 `json:"broker"`
	Replicas int   `json:"replicas"`
	Bytes    int64 `json:"bytes"`
}

// InSync reports whether every replica of the broker is in the ISR.
func (c CatchUp) InSync() bool { return c.Replicas == 0 }

// ByteSample is the bytes a catch-up still had to copy at one moment.
type ByteSample struct {
	At    time.Time `json:"at"`
	Bytes int64     `json:"bytes"`
}

// CatchUpPace is a catch-up's pace, for operators: how fast it copies and
// when it should be done.
type CatchUpPace struct {
	Bytes       int64         `json:"bytes"`
	BytesPerSec float64       `json:"bytesPerSec"`
	ETA         time.Duration `json:"eta"`
}

func (p CatchUpPace) String() string {
	return fmt.Sprintf("%s to copy at %s/s, ETA %s", Bytes(p.Bytes), Bytes(int64(p.BytesPerSec)), p.ETA)
}

// CatchUpFrom is the pace from first to bytes at now; ok is false until
// the catch-up copied something since first. The pace is the average since
// the first sample, so one slow poll does not swing the estimate.
func CatchUpFrom(first ByteSample, now time.Time, bytes int64) (CatchUpPace, bool) {
	if first.At.IsZero() || bytes >= first.Bytes || !now.After(first.At) {
		return CatchUpPace{Bytes: bytes}, false
	}
	rate := float64(first.Bytes-bytes) / now.Sub(first.At).Seconds()
	return CatchUpPace{Bytes: bytes, BytesPerSec: rate, ETA: time.Duration(float64(bytes) / rate * float64(time.Second)).Round(time.Second)}, true
}
