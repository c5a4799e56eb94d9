package localfleet

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// The hosts model: every broker runs on an EC2-like instance with one EBS-like
// data volume. It is what the EC2 subset (ec2.go) describes and modifies, what
// kfleet-GrowFilesystem acts on, and what brokers report as their log
// directory's size (DescribeLogDirs).
//
// Two sizes matter and differ on purpose, as on AWS: the volume's size
// becomes the target size the moment a modification starts, but the
// filesystem (what the broker sees, what fills up) only grows when the
// filesystem is grown on the host. Used bytes grow at a rate, computed
// lazily from the fleet clock (Options.Now) so that tests can move time
// instead of waiting.
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
// Go callers test them with errors.Is.
var (
	ErrUnknownInstance = errors.New("unknown instance")
	ErrUnknownVolume   = errors.New("unknown volume")
	// ErrVolumeShrink: EBS volumes only grow.
	ErrVolumeShrink = errors.New("new size cannot be smaller than existing size")
	// ErrVolumeSameSize: the request would change nothing.
	ErrVolumeSameSize = errors.New("new size equals existing size")
	// ErrVolumeTooLarge: above gp3's maximum size.
	ErrVolumeTooLarge = errors.New("new size is above the maximum volume size")
	// ErrModificationInProgress: the previous modification is still
	// modifying or optimizing.
	ErrModificationInProgress = errors.New("volume modification in progress")
	// ErrModificationRate: a modification started less than 6 hours ago.
	ErrModificationRate = errors.New("maximum modification rate per volume reached")
	// ErrFilesystemNotReady: the filesystem cannot grow before the volume
	// modification reaches optimizing.
	ErrFilesystemNotReady = errors.New("volume modification not yet optimizing or completed")
)

// hosts holds every broker's host and data volume. It has its own mutex,
// never held while taking a cluster's mu; cluster code may call in while
// holding cluster.mu (lock order: cluster.mu, then hosts.mu).
type hosts struct {
	now func() time.Time

	mu         sync.Mutex
	order      []*host // configuration order, so describes are stable
	byInstance map[string]*host
	byVolume   map[string]*host
	// quotas are each cluster's producer_byte_rate quotas in bytes per
	// second, by cluster id, then by user (defaultQuotaUser for the
	// <default> user). A quota is cluster-wide configuration that every
	// broker enforces on its own, so it caps a user's rate per broker.
	quotas map[string]map[string]int64
}

// host is one broker's instance. Its identity is immutable after
// newHosts; its state and volume are guarded by hosts.mu.
type host struct {
	instanceID string
	cluster    string
	broker     int32
	privateIP  string
	az         string
	launched   time.Time
	state      string // EC2 instance state: the host, not the Kafka process (instances.go)
	vol        volume
}

// volume is one data volume.
type volume struct {
	id        string
	created   time.Time
	sizeGiB   int32 // the EBS size: the target size once a modification starts
	fsBytes   int64 // the filesystem's size, what the broker sees
	usedBytes int64 // used bytes at usedAt; see used()
	usedAt    time.Time
	// offered is what each user tries to produce to the broker, in bytes
	// per second ("" is unattributed growth); growth is what reaches the
	// disk once quotas are applied (hosts.rerateLocked keeps it so).
	offered    map[string]int64
	growth     int64
	modifying  time.Duration
	optimizing time.Duration
	mods       []volumeModification // oldest first
}

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
// volume, like instanceID.
func volumeID(cluster string, broker int32) string {
	sum := sha256.Sum256([]byte("volume/" + cluster + "/" + strconv.Itoa(int(broker))))
	return "vol-" + hex.EncodeToString(sum[:])[:17]
}

// newHosts builds the hosts of every broker of cfg (defaults applied). It
// needs only the configuration, so it exists before any broker serves and
// clusters can be handed its usage function at start.
func newHosts(cfg Config, now func() time.Time) *hosts {
	h := &hosts{now: now, byInstance: map[string]*host{}, byVolume: map[string]*host{}, quotas: map[string]map[string]int64{}}
	t := now()
	for _, cc := range cfg.Clusters {
		vc := cc.Volume
		for i := 1; i <= cc.Brokers; i++ {
			id := int32(i)
			az := cc.rackOf(i)
			if az == "" {
				az = defaultAZ
			}
			fs := int64(vc.SizeGiB) * gib
			hs := &host{
				instanceID: instanceID(cc.ID, id),
				cluster:    cc.ID,
				broker:     id,
				// Every broker serves on loopback; that is where its host is
				// reached, so that is its private address.
				privateIP: proxyHost,
				az:        az,
				launched:  t,
				state:     InstanceRunning,
				vol: volume{
					id:         volumeID(cc.ID, id),
					created:    t,
					sizeGiB:    vc.SizeGiB,
					fsBytes:    fs,
					usedBytes:  int64(float64(fs) * vc.UsedPercent / 100),
					usedAt:     t,
					offered:    map[string]int64{},
					growth:     vc.GrowthBytesPerSec,
					modifying:  vc.Modifying,
					optimizing: vc.Optimizing,
				},
			}
			if vc.GrowthBytesPerSec > 0 {
				hs.vol.offered[""] = vc.GrowthBytesPerSec
			}
			h.order = append(h.order, hs)
			h.byInstance[hs.instanceID] = hs
			h.byVolume[hs.vol.id] = hs
		}
	}
	return h
}

// usage is the broker's view of its data filesystem: its size (which grows
// only when the filesystem is grown, not when the volume is modified) and
// the bytes used now. ok is false for an unknown instance. Safe to call
// with cluster.mu held.
func (h *hosts) usage(instanceID string) (sizeBytes, usedBytes int64, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hs, ok := h.byInstance[instanceID]
	if !ok {
		return 0, 0, false
	}
	return hs.vol.fsBytes, hs.vol.used(h.now()), true
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

// hostView is a consistent copy of a host and its volume at one instant.
type hostView struct {
	instanceID, cluster, privateIP, az, state string
	broker                                    int32
	launched                                  time.Time
	volumeID                                  string
	volumeCreated                             time.Time
	sizeGiB                                   int32
	fsBytes, usedBytes, growth                int64
	produce                                   map[string]int64 // effective rate by named user; nil when none
	lastMod                                   modificationStatus
	modified                                  bool
}

// viewLocked copies hs at t. h.mu must be held.
func (h *hosts) viewLocked(hs *host, t time.Time) hostView {
	v := hostView{
		instanceID: hs.instanceID, cluster: hs.cluster, privateIP: hs.privateIP, az: hs.az, state: hs.state,
		broker: hs.broker, launched: hs.launched,
		volumeID: hs.vol.id, volumeCreated: hs.vol.created, sizeGiB: hs.vol.sizeGiB,
		fsBytes: hs.vol.fsBytes, usedBytes: hs.vol.used(t), growth: hs.vol.growth,
		produce: h.produceRatesLocked(hs),
	}
	v.lastMod, v.modified = hs.vol.lastModification(t)
	return v
}

// attached reports whether the data volume is attached to its instance:
// until the instance is terminated (the data volume outlives it, as
// DeleteOnTermination is false for it, so a replacement can take it over).
func (v hostView) attached() bool { return v.state != InstanceTerminated }

// all returns every host, in configuration order.
func (h *hosts) all() []hostView {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.now()
	out := make([]hostView, 0, len(h.order))
	for _, hs := range h.order {
		out = append(out, h.viewLocked(hs, t))
	}
	return out
}

func (h *hosts) instance(instanceID string) (hostView, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hs, ok := h.byInstance[instanceID]
	if !ok {
		return hostView{}, fmt.Errorf("localfleet: instance %s: %w", instanceID, ErrUnknownInstance)
	}
	return h.viewLocked(hs, h.now()), nil
}

func (h *hosts) volume(volumeID string) (hostView, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hs, ok := h.byVolume[volumeID]
	if !ok {
		return hostView{}, fmt.Errorf("localfleet: volume %s: %w", volumeID, ErrUnknownVolume)
	}
	return h.viewLocked(hs, h.now()), nil
}

// defaultQuotaUser is how Kafka names the <default> user's quota entity
// (ConfigEntityName.Default); a real user of that name is stored escaped,
// so the name cannot collide.
const defaultQuotaUser = "<default>"

// setRate makes user produce bytesPerSec to the instance's broker from now
// on (0 stops it); user "" is unattributed growth. It returns the rate
// that reaches the disk for that user once its quota applies.
func (h *hosts) setRate(instanceID, user string, bytesPerSec int64) (effective int64, _ error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hs, ok := h.byInstance[instanceID]
	if !ok {
		return 0, fmt.Errorf("localfleet: instance %s: %w", instanceID, ErrUnknownInstance)
	}
	if bytesPerSec > 0 {
		hs.vol.offered[user] = bytesPerSec
	} else {
		delete(hs.vol.offered, user)
	}
	h.rerateLocked(hs, h.now())
	return h.effectiveLocked(hs, user), nil
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
	for _, hs := range h.order {
		if hs.cluster == cluster {
			h.rerateLocked(hs, t)
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

// effectiveLocked is the rate at which user's data reaches hs's disk: what
// it offers, capped by its quota. Unattributed growth has no quota. h.mu
// must be held.
func (h *hosts) effectiveLocked(hs *host, user string) int64 {
	rate := hs.vol.offered[user]
	if user == "" {
		return rate
	}
	if q, ok := h.produceQuotaLocked(hs.cluster, user); ok {
		return min(rate, q)
	}
	return rate
}

// rerateLocked folds the growth so far into the volume at the old rate,
// then recomputes the rate from the offered rates and quotas in force.
// h.mu must be held.
func (h *hosts) rerateLocked(hs *host, t time.Time) {
	hs.vol.settle(t)
	var sum int64
	for user := range hs.vol.offered {
		sum += h.effectiveLocked(hs, user)
	}
	hs.vol.growth = sum
}

// produceRatesLocked is the effective rate of every named user producing
// to hs's broker, nil when none does. h.mu must be held.
func (h *hosts) produceRatesLocked(hs *host) map[string]int64 {
	var out map[string]int64
	for user := range hs.vol.offered {
		if user == "" {
			continue
		}
		if out == nil {
			out = map[string]int64{}
		}
		out[user] = h.effectiveLocked(hs, user)
	}
	return out
}

// produceRates is produceRatesLocked for an instance; nil for an unknown
// one.
func (h *hosts) produceRates(instanceID string) map[string]int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	hs, ok := h.byInstance[instanceID]
	if !ok {
		return nil
	}
	return h.produceRatesLocked(hs)
}

// modify starts a size modification of a volume with EBS's rules: only
// growth, up to the type's maximum, one modification per 6 hours, none
// while the previous one is still running. The volume's size is the target
// size from now on; the filesystem is not touched.
func (h *hosts) modify(volumeID string, sizeGiB int32) (hostView, modificationStatus, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hs, ok := h.byVolume[volumeID]
	if !ok {
		return hostView{}, modificationStatus{}, fmt.Errorf("localfleet: volume %s: %w", volumeID, ErrUnknownVolume)
	}
	v := &hs.vol
	t := h.now()
	fail := func(err error) (hostView, modificationStatus, error) {
		return hostView{}, modificationStatus{}, fmt.Errorf("localfleet: volume %s (cluster %q broker %d): modify %d GiB to %d GiB: %w",
			v.id, hs.cluster, hs.broker, v.sizeGiB, sizeGiB, err)
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
	return h.viewLocked(hs, t), v.status(m, t), nil
}

// growFilesystem grows the instance's filesystem to its volume's size, as
// growpart + resize2fs do on a host. It is idempotent: a filesystem already
// as large as the volume is left alone (grown reports whether it changed).
// It refuses while the volume's latest modification is still modifying,
// because until then the block device has not grown.
func (h *hosts) growFilesystem(instanceID string) (before, after int64, grown bool, _ error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	hs, ok := h.byInstance[instanceID]
	if !ok {
		return 0, 0, false, fmt.Errorf("localfleet: instance %s: %w", instanceID, ErrUnknownInstance)
	}
	v := &hs.vol
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
}

func (v hostView) status() VolumeStatus {
	st := VolumeStatus{
		Cluster: v.cluster, Broker: v.broker, InstanceID: v.instanceID, VolumeID: v.volumeID,
		SizeGiB: v.sizeGiB, FilesystemBytes: v.fsBytes, UsedBytes: v.usedBytes, GrowthBytesPerSec: v.growth,
		ProduceBytesPerSec: v.produce,
	}
	if v.fsBytes > 0 {
		st.UsedPercent = float64(v.usedBytes) * 100 / float64(v.fsBytes)
	}
	if v.modified {
		st.ModificationState, st.LastModification = v.lastMod.state, v.lastMod.start
	}
	return st
}

// Volume returns a broker's data volume as of the fleet clock.
func (f *Fleet) Volume(cluster string, broker int32) (VolumeStatus, error) {
	_, b, err := f.broker(cluster, broker)
	if err != nil {
		return VolumeStatus{}, err
	}
	v, err := f.hosts.instance(b.instanceID)
	if err != nil {
		return VolumeStatus{}, fmt.Errorf("localfleet: cluster %q: broker %d: %w", cluster, broker, err)
	}
	return v.status(), nil
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
	effective, err := f.hosts.setRate(b.instanceID, user, bytesPerSec)
	if err != nil {
		return fmt.Errorf("localfleet: cluster %q: broker %d: %w", cluster, broker, err)
	}
	c.log.Info().Int32("broker", broker).Str("user", user).Int64("bytesPerSec", bytesPerSec).
		Int64("effectiveBytesPerSec", effective).Msg("fill-disk")
	return nil
}

// modifyVolume is ModifyVolume on the fleet: the model change, then the
// audit (never under hosts.mu: the audit takes cluster.mu).
func (f *Fleet) modifyVolume(volumeID string, sizeGiB int32, who string) (hostView, modificationStatus, error) {
	v, m, err := f.hosts.modify(volumeID, sizeGiB)
	if err != nil {
		return v, m, err
	}
	f.recordHost(v, EventVolumeModified, who,
		fmt.Sprintf("volume %s: %d GiB -> %d GiB", v.volumeID, m.originalSize, m.targetSize))
	return v, m, nil
}

// growFilesystem runs kfleet-GrowFilesystem on an instance and returns its
// standard output. targetGiB > 0 is the size ModifyVolume asked for: the
// document fails while the volume is smaller, as the real one does while
// the device has not grown.
func (f *Fleet) growFilesystem(ref instanceRef, who string, targetGiB int) (string, error) {
	_, b, err := f.broker(ref.cluster, ref.broker)
	if err != nil {
		return "", err
	}
	if targetGiB > 0 {
		v, err := f.hosts.instance(b.instanceID)
		if err != nil {
			return "", err
		}
		if int(v.sizeGiB) < targetGiB {
			return "", fmt.Errorf("cluster %q broker %d: volume %s is %d GiB, not yet %d GiB: was ModifyVolume called?",
				ref.cluster, ref.broker, v.volumeID, v.sizeGiB, targetGiB)
		}
	}
	before, after, grown, err := f.hosts.growFilesystem(b.instanceID)
	if err != nil {
		return "", fmt.Errorf("cluster %q broker %d: %w", ref.cluster, ref.broker, err)
	}
	if !grown {
		return fmt.Sprintf("filesystem %s already %d GiB; nothing to do\n", DataMountpoint, after/gib), nil
	}
	v, err := f.hosts.instance(b.instanceID)
	if err != nil {
		return "", err
	}
	f.recordHost(v, EventFilesystemGrown, who,
		fmt.Sprintf("filesystem %s on volume %s: %d GiB -> %d GiB", DataMountpoint, v.volumeID, before/gib, after/gib))
	return fmt.Sprintf("filesystem %s grown from %d GiB to %d GiB\n", DataMountpoint, before/gib, after/gib), nil
}

// recordHost appends a host event to the broker's cluster audit.
func (f *Fleet) recordHost(v hostView, kind EventKind, who, detail string) {
	c, err := f.cluster(v.cluster)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.audit = append(c.audit, Event{Time: time.Now(), Cluster: c.id, Broker: v.broker, Kind: kind, Who: who, Detail: detail})
	c.log.Info().Int32("broker", v.broker).Str("event", string(kind)).Str("who", who).Msg(detail)
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
