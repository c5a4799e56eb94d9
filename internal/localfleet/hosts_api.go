package localfleet

import (
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// The Fleet's side of the hosts model: a broker's data volume as the fleet
// API shows it, disk growth, ModifyVolume and kfleet-GrowFilesystem, and
// the audit of host events.

// VolumeStatus is a broker's data volume, as GET
// /v1/clusters/{id}/brokers/{broker}/volume returns it.
type VolumeStatus struct {
	Cluster    string `json:"cluster"`
	Broker     int32  `json:"broker"`
	InstanceID string `json:"instanceId"`
	VolumeID   string `json:"volumeId"`
	// SizeGiB is the EBS volume's size (the target size once a
	// modification started).
	SizeGiB int32 `json:"sizeGiB"`
	// FilesystemBytes is the size the broker sees; it catches up with
	// SizeGiB only when kfleet-GrowFilesystem runs.
	FilesystemBytes int64   `json:"filesystemBytes"`
	UsedBytes       int64   `json:"usedBytes"`
	UsedPercent     float64 `json:"usedPercent"`
	// GrowthBytesPerSec is how fast the data grows: every user's rate,
	// after quotas, plus unattributed growth.
	GrowthBytesPerSec int64 `json:"growthBytesPerSec"`
	// ProduceBytesPerSec is each user's share of the growth, after its
	// quota (the broker's kafka_server_produce_byte_rate).
	ProduceBytesPerSec map[string]int64 `json:"produceBytesPerSec,omitempty"`
	// ModificationState is the latest modification's state ("modifying",
	// "optimizing", "completed"), empty if the volume was never modified.
	ModificationState string `json:"modificationState,omitempty"`
	// LastModification is when the latest modification started.
	LastModification time.Time `json:"lastModification,omitzero"`
	// AttachedTo is the instance the volume is attached to, "" while it
	// is detached (its broker's host was terminated).
	AttachedTo string `json:"attachedTo,omitempty"`
}

func (v volumeView) status(cluster string, broker int32, instanceID string) VolumeStatus {
	st := VolumeStatus{
		Cluster: cluster, Broker: broker, InstanceID: instanceID, VolumeID: v.id,
		SizeGiB: v.sizeGiB, FilesystemBytes: v.fsBytes, UsedBytes: v.usedBytes, GrowthBytesPerSec: v.growth,
		ProduceBytesPerSec: v.produce,
	}
	if v.att != nil {
		st.AttachedTo = v.att.instanceID
	}
	if v.fsBytes > 0 {
		st.UsedPercent = float64(v.usedBytes) * 100 / float64(v.fsBytes)
	}
	if v.modified {
		st.ModificationState, st.LastModification = v.lastMod.state, v.lastMod.start
	}
	return st
}

// Volume returns a broker's data volume as of the fleet clock: the one
// mounted on its host, else (its host gone, the volume detached) the one
// it last ran on.
func (f *Fleet) Volume(cluster string, broker int32) (VolumeStatus, error) {
	c, b, err := f.broker(cluster, broker)
	if err != nil {
		return VolumeStatus{}, err
	}
	host := c.hostOf(b)
	v, err := f.hosts.brokerVolume(host, dataRef{cluster: cluster, broker: broker})
	if err != nil {
		return VolumeStatus{}, fmt.Errorf("localfleet: cluster %q: broker %d: %w", cluster, broker, err)
	}
	return v.status(cluster, broker, host), nil
}

// brokerVolume is the data volume of instanceID, else the newest volume
// holding owner's data.
func (h *hosts) brokerVolume(instanceID string, owner dataRef) (volumeView, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.now()
	if in, ok := h.byID[instanceID]; ok {
		if v := h.dataVolumeLocked(in); v != nil {
			return h.volumeViewLocked(v, t), nil
		}
	}
	for i := len(h.volumes) - 1; i >= 0; i-- {
		if v := h.volumes[i]; v.owner == owner {
			return h.volumeViewLocked(v, t), nil
		}
	}
	return volumeView{}, fmt.Errorf("no volume holds its data: %w", ErrUnknownVolume)
}

// FillDisk makes a broker's data grow at bytesPerSec from now on (0 stops
// the growth), as data producing faster than retention deletes would. The
// filesystem fills up to its size and no further. The growth is
// unattributed: no tenant's quota slows it (see FillDiskBy).
func (f *Fleet) FillDisk(cluster string, broker int32, bytesPerSec int64) error {
	return f.FillDiskBy(cluster, broker, bytesPerSec, "")
}

// FillDiskBy makes user (a tenant's SCRAM user) produce bytesPerSec to a
// broker from now on, as a tenant writing faster than retention deletes
// would; 0 stops it. The broker's disk grows at the sum of every user's
// rate, each capped by the user's producer_byte_rate quota (set with
// AlterClientQuotas; Kafka enforces it per broker), plus unattributed
// growth (user "", which FillDisk sets). The broker reports each user's
// capped rate as kafka_server_produce_byte_rate{user=...}.
func (f *Fleet) FillDiskBy(cluster string, broker int32, bytesPerSec int64, user string) error {
	c, b, err := f.broker(cluster, broker)
	if err != nil {
		return err
	}
	if bytesPerSec < 0 {
		return fmt.Errorf("localfleet: cluster %q: broker %d: fill-disk rate must not be negative, got %d", cluster, broker, bytesPerSec)
	}
	effective, err := f.hosts.setRate(c.hostOf(b), user, bytesPerSec)
	if err != nil {
		return fmt.Errorf("localfleet: cluster %q: broker %d: %w", cluster, broker, err)
	}
	c.log.Info().Int32("broker", broker).Str("user", user).Int64("bytesPerSec", bytesPerSec).
		Int64("effectiveBytesPerSec", effective).Msg("fill-disk")
	return nil
}

// modifyVolume is ModifyVolume on the fleet: the model change, then the
// audit (never under hosts.mu: the audit takes cluster.mu).
func (f *Fleet) modifyVolume(volumeID string, sizeGiB int32, who string) (volumeView, modificationStatus, error) {
	v, m, err := f.hosts.modify(volumeID, sizeGiB)
	if err != nil {
		return v, m, err
	}
	f.record(Event{Cluster: v.owner.cluster, Broker: v.owner.broker, Kind: EventVolumeModified, Who: who, Volume: v.id,
		Detail: fmt.Sprintf("volume %s: %d GiB -> %d GiB", v.id, m.originalSize, m.targetSize)})
	return v, m, nil
}

// growFilesystem runs kfleet-GrowFilesystem on a broker's host and returns
// its standard output. targetGiB > 0 is the size ModifyVolume asked for:
// the document fails while the volume is smaller, as the real one does
// while the device has not grown.
func (f *Fleet) growFilesystem(ref instanceRef, who string, targetGiB int) (string, error) {
	c, b, err := f.broker(ref.cluster, ref.broker)
	if err != nil {
		return "", err
	}
	host := c.hostOf(b)
	if targetGiB > 0 {
		v, err := f.hosts.dataVolumeOf(host)
		if err != nil {
			return "", err
		}
		if int(v.sizeGiB) < targetGiB {
			return "", fmt.Errorf("cluster %q broker %d: volume %s is %d GiB, not yet %d GiB: was ModifyVolume called?",
				ref.cluster, ref.broker, v.id, v.sizeGiB, targetGiB)
		}
	}
	before, after, grown, err := f.hosts.growFilesystem(host)
	if err != nil {
		return "", fmt.Errorf("cluster %q broker %d: %w", ref.cluster, ref.broker, err)
	}
	if !grown {
		return fmt.Sprintf("filesystem %s already %d GiB; nothing to do\n", DataMountpoint, after/gib), nil
	}
	v, err := f.hosts.dataVolumeOf(host)
	if err != nil {
		return "", err
	}
	f.record(Event{Cluster: ref.cluster, Broker: ref.broker, Kind: EventFilesystemGrown, Who: who, Instance: host, Volume: v.id,
		Detail: fmt.Sprintf("filesystem %s on volume %s: %d GiB -> %d GiB", DataMountpoint, v.id, before/gib, after/gib)})
	return fmt.Sprintf("filesystem %s grown from %d GiB to %d GiB\n", DataMountpoint, before/gib, after/gib), nil
}

// hostRoutes serves a broker's data volume and the fill-disk fault on the
// fleet API:
//
//	GET  /v1/clusters/{id}/brokers/{broker}/volume
//	POST /v1/clusters/{id}/brokers/{broker}/faults/fill-disk?bytesPerSec=N[&user=U]
//
// fill-disk without user is unattributed growth (FillDisk), with user a
// tenant's (FillDiskBy).
func (f *Fleet) hostRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/clusters/{id}/brokers/{broker}/volume", f.withVolumeBroker(
		func(w http.ResponseWriter, r *http.Request, cluster string, broker int32) {
			st, err := f.Volume(cluster, broker)
			if err != nil {
				writeError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, st)
		}))
	mux.HandleFunc("POST /v1/clusters/{id}/brokers/{broker}/faults/fill-disk", f.withVolumeBroker(
		func(w http.ResponseWriter, r *http.Request, cluster string, broker int32) {
			rate, err := strconv.ParseInt(r.URL.Query().Get("bytesPerSec"), 10, 64)
			if err != nil || rate < 0 {
				writeJSON(w, http.StatusBadRequest, apiError{Error: "bytesPerSec must be a non-negative integer"})
				return
			}
			if err := f.FillDiskBy(cluster, broker, rate, r.URL.Query().Get("user")); err != nil {
				writeError(w, err)
				return
			}
			st, err := f.Volume(cluster, broker)
			if err != nil {
				writeError(w, err)
				return
			}
			writeJSON(w, http.StatusOK, st)
		}))
}

// withVolumeBroker resolves {id} and {broker} of a host route.
func (f *Fleet) withVolumeBroker(h func(w http.ResponseWriter, r *http.Request, cluster string, broker int32)) http.HandlerFunc {
	return f.withCluster(func(w http.ResponseWriter, r *http.Request, cluster string) {
		n, err := strconv.ParseInt(r.PathValue("broker"), 10, 32)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "broker must be an integer id"})
			return
		}
		h(w, r, cluster, int32(n))
	})
}
