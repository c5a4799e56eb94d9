package localfleet

import (
	"errors"
	"fmt"
	"time"
)

// The usage model of a data volume. Two sizes matter and differ on purpose,
// as on AWS: the volume's size becomes the target size the moment a
// modification starts, but the filesystem (what the broker sees, what fills
// up) only grows when the filesystem is grown on the host. Used bytes grow
// at a rate, computed lazily from the fleet clock (Options.Now) so that
// tests can move time instead of waiting.
//
// The rate is the sum of what each tenant (SCRAM user) produces to the
// broker, plus unattributed background growth (user ""). A tenant's
// rate is capped by its producer_byte_rate quota, which clients set with
// AlterClientQuotas (quotas.go) and Kafka enforces on each broker: so
// throttling the heaviest tenant really slows the disk down.

// VolumeConfig describes each broker's data volume in a cluster.
type VolumeConfig struct {
	// SizeGiB is the volume's initial size. Default 100.
	SizeGiB int32 `yaml:"sizeGiB" json:"sizeGiB"`
	// UsedPercent is how full the filesystem is at start. Default 40.
	UsedPercent float64 `yaml:"usedPercent" json:"usedPercent"`
	// GrowthBytesPerSec is how fast the data grows. Default 0: a disk only
	// fills when a test or operator asks (the fill-disk fault).
	GrowthBytesPerSec int64 `yaml:"growthBytesPerSec" json:"growthBytesPerSec"`
	// Modifying and Optimizing are how long a volume modification spends in
	// each state before it is completed. On AWS a size change is modifying
	// for seconds and optimizing for minutes to hours; the defaults keep a
	// demo short: 2s and 5s.
	Modifying  time.Duration `yaml:"modifying" json:"modifying"`
	Optimizing time.Duration `yaml:"optimizing" json:"optimizing"`
}

// Volume defaults and EBS limits.
const (
	defaultVolumeSizeGiB     = 100
	defaultVolumeUsedPercent = 40
	defaultVolumeModifying   = 2 * time.Second
	defaultVolumeOptimizing  = 5 * time.Second
	// maxVolumeSizeGiB is gp3's maximum size.
	maxVolumeSizeGiB = 16384
	// volumeModificationCooldown is EBS's rule: one modification per volume
	// every 6 hours (OPERATIONS.md "Volume expansion" plans around it).
	volumeModificationCooldown = 6 * time.Hour
	gib                        = int64(1) << 30
	// defaultAZ is the availability zone of brokers without a rack.
	defaultAZ = AWSRegion + "a"
)

// Volume modification states, as EC2 names them.
const (
	ModificationModifying  = "modifying"
	ModificationOptimizing = "optimizing"
	ModificationCompleted  = "completed"
)

func (v VolumeConfig) withDefaults() VolumeConfig {
	if v.SizeGiB == 0 {
		v.SizeGiB = defaultVolumeSizeGiB
	}
	if v.UsedPercent == 0 {
		v.UsedPercent = defaultVolumeUsedPercent
	}
	if v.Modifying == 0 {
		v.Modifying = defaultVolumeModifying
	}
	if v.Optimizing == 0 {
		v.Optimizing = defaultVolumeOptimizing
	}
	return v
}

func (v VolumeConfig) validate() error {
	var errs []error
	if v.SizeGiB < 1 || v.SizeGiB > maxVolumeSizeGiB {
		errs = append(errs, fmt.Errorf("volume.sizeGiB must be 1..%d, got %d", maxVolumeSizeGiB, v.SizeGiB))
	}
	if v.UsedPercent < 0 || v.UsedPercent > 100 {
		errs = append(errs, fmt.Errorf("volume.usedPercent must be 0..100, got %g", v.UsedPercent))
	}
	if v.GrowthBytesPerSec < 0 {
		errs = append(errs, fmt.Errorf("volume.growthBytesPerSec must not be negative, got %d", v.GrowthBytesPerSec))
	}
	if v.Modifying < 0 || v.Optimizing < 0 {
		errs = append(errs, errors.New("volume.modifying and volume.optimizing must not be negative"))
	}
	return errors.Join(errs...)
}

// Errors of the hosts model. The EC2 subset maps them to AWS error codes;

// volumeModification is one ModifyVolume; its state follows from its start
// time and the volume's timings, so nothing has to run in the background.
type volumeModification struct {
	originalSize, targetSize int32
	start                    time.Time
}

// modificationStatus is a modification as seen at one instant.
type modificationStatus struct {
	volumeModification
	state    string
	progress int64
	end      time.Time // zero until completed
}

// volumeID derives a stable, AWS-shaped volume id for a broker's data

// usage is the broker's view of its data filesystem on an instance: its
// size (which grows only when the filesystem is grown, not when the
// volume is modified) and the bytes used now. ok is false for an unknown
// instance or one without its data volume. Safe to call with cluster.mu
// held.
func (h *hosts) usage(instanceID string) (sizeBytes, usedBytes int64, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	in, found := h.byID[instanceID]
	if !found {
		return 0, 0, false
	}
	v := h.dataVolumeLocked(in)
	if v == nil {
		return 0, 0, false
	}
	return v.fsBytes, v.used(h.now()), true
}

// used is the bytes used at t: the data grows at the growth rate until the
// filesystem is full.
func (v *volume) used(t time.Time) int64 {
	n := v.usedBytes
	if d := t.Sub(v.usedAt); d > 0 && v.growth > 0 {
		n += int64(d.Seconds() * float64(v.growth))
	}
	return min(max(n, 0), v.fsBytes)
}

// settle folds the growth so far into usedBytes, so that the rate or the
// filesystem size can change from t on without rewriting the past.
func (v *volume) settle(t time.Time) {
	v.usedBytes, v.usedAt = v.used(t), t
}

// status is modification m as of t.
func (v *volume) status(m volumeModification, t time.Time) modificationStatus {
	st := modificationStatus{volumeModification: m}
	elapsed := max(t.Sub(m.start), 0)
	total := v.modifying + v.optimizing
	switch {
	case elapsed >= total:
		st.state, st.progress, st.end = ModificationCompleted, 100, m.start.Add(total)
	case elapsed < v.modifying:
		st.state = ModificationModifying
	default:
		st.state = ModificationOptimizing
	}
	if st.state != ModificationCompleted {
		// AWS reports one progress figure across both states.
		st.progress = min(int64(elapsed*100/total), 99)
	}
	return st
}

// lastModification is the volume's latest modification as of t.
func (v *volume) lastModification(t time.Time) (modificationStatus, bool) {
	if len(v.mods) == 0 {
		return modificationStatus{}, false
	}
	return v.status(v.mods[len(v.mods)-1], t), true
}

// defaultQuotaUser is how Kafka names the <default> user's quota entity
// (ConfigEntityName.Default); a real user of that name is stored escaped,
// so the name cannot collide.
const defaultQuotaUser = "<default>"

// setRate makes user produce bytesPerSec to the broker on an instance
// from now on (0 stops it); user "" is unattributed growth. It returns the
// rate that reaches the disk (the instance's data volume) for that user
// once its quota applies.
func (h *hosts) setRate(instanceID, user string, bytesPerSec int64) (effective int64, _ error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	in, err := h.instanceLocked(instanceID)
	if err != nil {
		return 0, err
	}
	v := h.dataVolumeLocked(in)
	if v == nil {
		return 0, fmt.Errorf("localfleet: instance %s: %w", instanceID, ErrNoDataVolume)
	}
	if bytesPerSec > 0 {
		v.offered[user] = bytesPerSec
	} else {
		delete(v.offered, user)
	}
	h.rerateLocked(v, h.now())
	return h.effectiveLocked(v, user), nil
}

// setProduceQuota sets (or, with nil, lifts) user's producer_byte_rate
// quota on a cluster: from now on each of its brokers lets user write at
// most that many bytes per second.
func (h *hosts) setProduceQuota(cluster, user string, bytesPerSec *int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := h.quotas[cluster]
	if q == nil {
		q = map[string]int64{}
		h.quotas[cluster] = q
	}
	if bytesPerSec != nil {
		q[user] = max(*bytesPerSec, 0)
	} else {
		delete(q, user)
	}
	t := h.now()
	for _, v := range h.volumes {
		if v.owner.cluster == cluster {
			h.rerateLocked(v, t)
		}
	}
}

// produceQuotaLocked is user's producer_byte_rate quota on cluster: its own, else
// the <default> user's. ok is false when neither is set. h.mu must be held.
func (h *hosts) produceQuotaLocked(cluster, user string) (bytesPerSec int64, ok bool) {
	q := h.quotas[cluster]
	if v, ok := q[user]; ok {
		return v, true
	}
	v, ok := q[defaultQuotaUser]
	return v, ok
}

// effectiveLocked is the rate at which user's data reaches v: what it
// offers, capped by its quota on the cluster whose data v holds.
// Unattributed growth has no quota. h.mu must be held.
func (h *hosts) effectiveLocked(v *volume, user string) int64 {
	rate := v.offered[user]
	if user == "" {
		return rate
	}
	if q, ok := h.produceQuotaLocked(v.owner.cluster, user); ok {
		return min(rate, q)
	}
	return rate
}

// rerateLocked folds the growth so far into the volume at the old rate,
// then recomputes the rate from the offered rates and quotas in force.
// h.mu must be held.
func (h *hosts) rerateLocked(v *volume, t time.Time) {
	v.settle(t)
	var sum int64
	for user := range v.offered {
		sum += h.effectiveLocked(v, user)
	}
	v.growth = sum
}

// produceRatesLocked is the effective rate of every named user producing
// to v, nil when none does. h.mu must be held.
func (h *hosts) produceRatesLocked(v *volume) map[string]int64 {
	var out map[string]int64
	for user := range v.offered {
		if user == "" {
			continue
		}
		if out == nil {
			out = map[string]int64{}
		}
		out[user] = h.effectiveLocked(v, user)
	}
	return out
}

// produceRates is produceRatesLocked for an instance's data volume; nil
// for an unknown instance or one without its data volume.
func (h *hosts) produceRates(instanceID string) map[string]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	in, ok := h.byID[instanceID]
	if !ok {
		return nil
	}
	v := h.dataVolumeLocked(in)
	if v == nil {
		return nil
	}
	return h.produceRatesLocked(v)
}

// modify starts a size modification of a volume with EBS's rules: only
// growth, up to the type's maximum, one modification per 6 hours, none
// while the previous one is still running. The volume's size is the target
// size from now on; the filesystem is not touched.
func (h *hosts) modify(volumeID string, sizeGiB int32) (volumeView, modificationStatus, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, err := h.volumeLocked(volumeID)
	if err != nil {
		return volumeView{}, modificationStatus{}, err
	}
	t := h.now()
	fail := func(err error) (volumeView, modificationStatus, error) {
		return volumeView{}, modificationStatus{}, fmt.Errorf("localfleet: volume %s (holding %s): modify %d GiB to %d GiB: %w",
			v.id, v.owner, v.sizeGiB, sizeGiB, err)
	}
	switch {
	case sizeGiB < v.sizeGiB:
		return fail(ErrVolumeShrink)
	case sizeGiB == v.sizeGiB:
		return fail(ErrVolumeSameSize)
	case sizeGiB > maxVolumeSizeGiB:
		return fail(ErrVolumeTooLarge)
	}
	if last, ok := v.lastModification(t); ok {
		if last.state != ModificationCompleted {
			return fail(fmt.Errorf("%w: %s", ErrModificationInProgress, last.state))
		}
		if next := last.start.Add(volumeModificationCooldown); t.Before(next) {
			return fail(fmt.Errorf("%w: previous started %s, next allowed at %s",
				ErrModificationRate, last.start.UTC().Format(time.RFC3339), next.UTC().Format(time.RFC3339)))
		}
	}
	m := volumeModification{originalSize: v.sizeGiB, targetSize: sizeGiB, start: t}
	v.mods = append(v.mods, m)
	v.sizeGiB = sizeGiB
	return h.volumeViewLocked(v, t), v.status(m, t), nil
}

// growFilesystem grows the instance's data filesystem to its volume's
// size, as growpart + resize2fs do on a host. It is idempotent: a filesystem already
// as large as the volume is left alone (grown reports whether it changed).
// It refuses while the volume's latest modification is still modifying,
// because until then the block device has not grown.
func (h *hosts) growFilesystem(instanceID string) (before, after int64, grown bool, _ error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	in, err := h.instanceLocked(instanceID)
	if err != nil {
		return 0, 0, false, err
	}
	v := h.dataVolumeLocked(in)
	if v == nil {
		return 0, 0, false, fmt.Errorf("localfleet: instance %s: %w", instanceID, ErrNoDataVolume)
	}
	t := h.now()
	before = v.fsBytes
	target := int64(v.sizeGiB) * gib
	if before >= target {
		return before, before, false, nil
	}
	if last, ok := v.lastModification(t); ok && last.state == ModificationModifying {
		return before, before, false, fmt.Errorf("localfleet: instance %s volume %s: modification to %d GiB is %s (%d%%): %w",
			instanceID, v.id, last.targetSize, last.state, last.progress, ErrFilesystemNotReady)
	}
	v.settle(t)
	v.fsBytes = target
	return before, target, true, nil
}
