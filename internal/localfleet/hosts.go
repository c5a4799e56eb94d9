package localfleet

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kfleet/kfleet/internal/cloud"
)

// The hosts model: EC2 instances and EBS volumes. It is what the EC2
// subset (ec2*.go) describes, launches, attaches and terminates, what SSM
// runs documents on, what kfleet-GrowFilesystem acts on, and what brokers
// report as their log directory's size (DescribeLogDirs).
//
// Instances and volumes are independent resources, as on AWS: a volume is
// attached to at most one instance, outlives it when it is terminated
// (kfleet's data volumes never have DeleteOnTermination), and can be
// attached to another instance in its zone. Every broker of the
// configuration starts on an instance of its own with one data volume
// attached at ec2Device; launched instances become brokers when
// kfleet-ConfigureBroker has written their server.properties and
// kfleet-StartBroker starts Kafka on them (provision.go).
//
// A volume knows whose log directory it holds (owner: Kafka's
// meta.properties), so a broker started on a volume it used before keeps
// its data and one started on a blank volume copies everything again.

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
	// ErrNoDataVolume: the broker's data volume is not attached to its
	// host, so its log directory is not mounted.
	ErrNoDataVolume = errors.New("no data volume attached")
)

// Volume and attachment states, as EC2 names them.
const (
	VolumeCreating  = "creating"
	VolumeAvailable = "available"
	VolumeInUse     = "in-use"

	AttachmentAttaching = "attaching"
	AttachmentAttached  = "attached"
	AttachmentDetaching = "detaching"
	// AttachmentBusy: a detach was asked (without Force) while the
	// volume is still in use on the host (Kafka's log directory is on
	// it); it stays busy until the process is down.
	AttachmentBusy = "busy"
)

// ec2Device is where the configuration's brokers have their data volume;
// the root volume is not modeled.
const ec2Device = "/dev/xvdb"

// hosts holds every instance and volume. It has its own mutex, never held
// while taking a cluster's mu; cluster code may call in while holding
// cluster.mu (lock order: cluster.mu, then hosts.mu).
type hosts struct {
	now func() time.Time

	mu        sync.Mutex
	instances []*instance // launch order, so describes are stable
	byID      map[string]*instance
	volumes   []*volume // creation order; deleted volumes are removed
	byVolume  map[string]*volume
	// quotas are each cluster's producer_byte_rate quotas in bytes per
	// second, by cluster id, then by user (defaultQuotaUser for the
	// <default> user). A quota is cluster-wide configuration that every
	// broker enforces on its own, so it caps a user's rate per broker.
	quotas map[string]map[string]int64
	// tokens are the ClientTokens of RunInstances and CreateVolume, by
	// action and token (idempotency.go).
	tokens map[string]tokenUse
	// noCapacity are the zones where no instance launches or starts
	// (ec2_capacity.go).
	noCapacity map[string]bool
}

// instance is one EC2 instance. Its identity is immutable; its state,
// tags and broker configuration are guarded by hosts.mu.
type instance struct {
	id, reservationID string
	imageID, itype    string
	az, privateIP     string
	launched          time.Time
	clientToken       string

	state string // EC2 instance state: the host, not the Kafka process (instances.go)
	gen   uint64 // bumped by every state change, so a late completion of an older one does nothing
	tags  []ec2Tag
	// conf is the host's Kafka configuration (server.properties), nil
	// until kfleet-ConfigureBroker writes it; the configuration's hosts
	// have theirs from the start.
	conf *brokerConf
	// zk is a ZooKeeper node's configuration (zookeeper_hosts.go), nil
	// until kfleet-ConfigureZooKeeper writes it.
	zk *zkConf
	// ctl is a KRaft controller's configuration (controller_provision.go),
	// nil until kfleet-ConfigureController writes it.
	ctl *controllerConf
}

// volume is one EBS volume and what its filesystem holds (volumes.go).
type volume struct {
	id, az      string
	volType     string
	iops, tput  int
	created     time.Time
	clientToken string

	state string // creating, available, in-use
	gen   uint64 // as instance.gen
	tags  []ec2Tag
	att   *attachment // nil while detached
	// owner is the broker whose log directory the volume holds (Kafka's
	// meta.properties); zero while the volume is blank.
	owner dataRef

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

// attachment is a volume's attachment to an instance.
type attachment struct {
	instanceID, device, state string
	at                        time.Time
	deleteOnTermination       bool
}

// dataRef names a broker, as the data a volume holds.
type dataRef struct {
	cluster string
	broker  int32
}

func (d dataRef) String() string {
	if d.cluster == "" {
		return "nothing (blank)"
	}
	return fmt.Sprintf("cluster %q broker %d", d.cluster, d.broker)
}

// instanceID derives a stable, AWS-shaped EC2 instance id for a broker of
// the configuration, so that the same fleet configuration always yields
// the same ids.
func instanceID(cluster string, broker int32) string {
	sum := sha256.Sum256([]byte(cluster + "/" + strconv.Itoa(int(broker))))
	return "i-" + hex.EncodeToString(sum[:])[:17]
}

// volumeID derives a stable, AWS-shaped volume id for a configured
// broker's data volume, like instanceID.
func volumeID(cluster string, broker int32) string {
	sum := sha256.Sum256([]byte("volume/" + cluster + "/" + strconv.Itoa(int(broker))))
	return "vol-" + hex.EncodeToString(sum[:])[:17]
}

// newResourceID returns a random AWS-shaped id: prefix, '-', 17 hex digits.
func newResourceID(prefix string) string {
	var b [9]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on Linux
	return prefix + "-" + hex.EncodeToString(b[:])[:17]
}

// brokerTags are the tags every broker instance carries, so that product
// code can find it by cluster, broker and role.
func brokerTags(cluster string, broker int32) []ec2Tag {
	return []ec2Tag{
		{Key: "Name", Value: fmt.Sprintf("%s-broker-%d", cluster, broker)},
		{Key: cloud.TagCluster, Value: cluster},
		{Key: cloud.TagBrokerID, Value: strconv.Itoa(int(broker))},
		{Key: cloud.TagRole, Value: cloud.RoleBroker},
	}
}

// dataVolumeTags are a broker's data volume's tags.
func dataVolumeTags(cluster string, broker int32) []ec2Tag {
	tags := brokerTags(cluster, broker)
	tags[3].Value = cloud.RoleKafkaData
	return tags
}

// newHosts builds the hosts of every broker of cfg (defaults applied): an
// instance each, running, with its data volume attached. It needs only the
// configuration, so it exists before any broker serves and clusters can be
// handed its usage function at start.
func newHosts(cfg Config, now func() time.Time) *hosts {
	h := &hosts{now: now, byID: map[string]*instance{}, byVolume: map[string]*volume{},
		quotas: map[string]map[string]int64{}, tokens: map[string]tokenUse{}, noCapacity: map[string]bool{}}
	t := now()
	for _, cc := range cfg.Clusters {
		vc := cc.Volume
		for i := 1; i <= cc.Brokers; i++ {
			id := int32(i)
			az := cc.rackOf(i)
			if az == "" {
				az = defaultAZ
			}
			in := &instance{
				id:        instanceID(cc.ID, id),
				imageID:   defaultImageID,
				itype:     defaultInstanceType,
				az:        az,
				privateIP: proxyHost, // every broker serves on loopback: that is where its host is reached
				launched:  t,
				state:     InstanceRunning,
				tags:      brokerTags(cc.ID, id),
				conf:      &brokerConf{cluster: cc.ID, broker: id, rack: cc.rackOf(i), dataVolume: volumeID(cc.ID, id)},
			}
			// One reservation per host, as if each was launched alone.
			sum := sha256.Sum256([]byte("reservation/" + in.id))
			in.reservationID = "r-" + hex.EncodeToString(sum[:])[:17]
			fs := int64(vc.SizeGiB) * gib
			v := newVolume(volumeID(cc.ID, id), az, vc, t)
			v.tags = dataVolumeTags(cc.ID, id)
			v.fsBytes, v.usedBytes = fs, int64(float64(fs)*vc.UsedPercent/100)
			v.owner = dataRef{cluster: cc.ID, broker: id}
			v.state = VolumeInUse
			v.att = &attachment{instanceID: in.id, device: ec2Device, state: AttachmentAttached, at: t}
			if vc.GrowthBytesPerSec > 0 {
				v.offered[""] = vc.GrowthBytesPerSec
			}
			h.addInstanceLocked(in)
			h.addVolumeLocked(v)
		}
		h.addControllerHostsLocked(cc, t) // KRaft controllers' hosts (kraft_hosts.go)
	}
	return h
}

// Defaults of what the configuration's hosts run on.
const (
	defaultImageID      = "ami-00000000000000000"
	defaultInstanceType = "m5.xlarge"
	defaultVolumeType   = "gp3"
	// gp3's baseline performance.
	gp3BaseIops       = 3000
	gp3BaseThroughput = 125 // MiB/s
)

// newVolume is a blank gp3 volume of vc's size (its filesystem as large:
// kfleet-ConfigureBroker formats the whole device), available.
func newVolume(id, az string, vc VolumeConfig, t time.Time) *volume {
	return &volume{
		id: id, az: az, volType: defaultVolumeType, iops: gp3BaseIops, tput: gp3BaseThroughput,
		created: t, state: VolumeAvailable,
		sizeGiB: vc.SizeGiB, fsBytes: int64(vc.SizeGiB) * gib, usedAt: t,
		offered: map[string]int64{}, growth: vc.GrowthBytesPerSec,
		modifying: vc.Modifying, optimizing: vc.Optimizing,
	}
}

func (h *hosts) addInstanceLocked(in *instance) {
	h.instances = append(h.instances, in)
	h.byID[in.id] = in
}

func (h *hosts) addVolumeLocked(v *volume) {
	h.volumes = append(h.volumes, v)
	h.byVolume[v.id] = v
}

func (h *hosts) removeVolumeLocked(v *volume) {
	delete(h.byVolume, v.id)
	h.volumes = slices.DeleteFunc(h.volumes, func(o *volume) bool { return o == v })
}

func (h *hosts) instanceLocked(id string) (*instance, error) {
	if in, ok := h.byID[id]; ok {
		return in, nil
	}
	return nil, fmt.Errorf("localfleet: instance %s: %w", id, ErrUnknownInstance)
}

func (h *hosts) volumeLocked(id string) (*volume, error) {
	if v, ok := h.byVolume[id]; ok {
		return v, nil
	}
	return nil, fmt.Errorf("localfleet: volume %s: %w", id, ErrUnknownVolume)
}

// attachedLocked is the volumes attached to an instance (in any
// attachment state), in device order.
func (h *hosts) attachedLocked(instanceID string) []*volume {
	var out []*volume
	for _, v := range h.volumes {
		if v.att != nil && v.att.instanceID == instanceID {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b *volume) int {
		if a.att.device < b.att.device {
			return -1
		}
		return 1
	})
	return out
}

// dataVolumeLocked is the volume holding Kafka's log directory on in: the
// one its server.properties names, while it is attached to in. nil when
// Kafka is not configured there or that volume is not attached.
func (h *hosts) dataVolumeLocked(in *instance) *volume {
	if in.conf == nil {
		return nil
	}
	v, ok := h.byVolume[in.conf.dataVolume]
	if !ok || v.att == nil || v.att.instanceID != in.id || v.att.state == AttachmentAttaching {
		return nil
	}
	return v
}

// dataVolumeOf is dataVolumeLocked for an instance id, as a view.
func (h *hosts) dataVolumeOf(instanceID string) (volumeView, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	in, err := h.instanceLocked(instanceID)
	if err != nil {
		return volumeView{}, err
	}
	v := h.dataVolumeLocked(in)
	if v == nil {
		return volumeView{}, fmt.Errorf("localfleet: instance %s: %w", instanceID, ErrNoDataVolume)
	}
	return h.volumeViewLocked(v, h.now()), nil
}

// instanceView is a consistent copy of an instance at one instant.
type instanceView struct {
	id, reservationID, imageID, itype, az, privateIP, state, clientToken string
	launched                                                             time.Time
	tags                                                                 []ec2Tag
	attachments                                                          []attachmentView
	conf                                                                 *brokerConf // a copy; nil when not configured
}

type attachmentView struct {
	volumeID, instanceID, device, state string
	at                                  time.Time
	deleteOnTermination                 bool
}

// volumeView is a consistent copy of a volume at one instant.
type volumeView struct {
	id, az, volType, state, clientToken string
	iops, tput                          int
	created                             time.Time
	tags                                []ec2Tag
	att                                 *attachmentView
	owner                               dataRef
	sizeGiB                             int32
	fsBytes, usedBytes, growth          int64
	produce                             map[string]int64 // effective rate by named user; nil when none
	lastMod                             modificationStatus
	modified                            bool
}

func (h *hosts) instanceViewLocked(in *instance) instanceView {
	v := instanceView{
		id: in.id, reservationID: in.reservationID, imageID: in.imageID, itype: in.itype, az: in.az,
		privateIP: in.privateIP, state: in.state, clientToken: in.clientToken, launched: in.launched,
		tags: slices.Clone(in.tags),
	}
	if in.conf != nil {
		c := *in.conf
		v.conf = &c
	}
	for _, vol := range h.attachedLocked(in.id) {
		v.attachments = append(v.attachments, attachmentOf(vol))
	}
	return v
}

func attachmentOf(v *volume) attachmentView {
	return attachmentView{volumeID: v.id, instanceID: v.att.instanceID, device: v.att.device, state: v.att.state,
		at: v.att.at, deleteOnTermination: v.att.deleteOnTermination}
}

func (h *hosts) volumeViewLocked(v *volume, t time.Time) volumeView {
	out := volumeView{
		id: v.id, az: v.az, volType: v.volType, state: v.state, clientToken: v.clientToken,
		iops: v.iops, tput: v.tput, created: v.created, tags: slices.Clone(v.tags), owner: v.owner,
		sizeGiB: v.sizeGiB, fsBytes: v.fsBytes, usedBytes: v.used(t), growth: v.growth,
		produce: h.produceRatesLocked(v),
	}
	if v.att != nil {
		a := attachmentOf(v)
		out.att = &a
	}
	out.lastMod, out.modified = v.lastModification(t)
	return out
}

// allInstances returns every instance, in launch order.
func (h *hosts) allInstances() []instanceView {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]instanceView, 0, len(h.instances))
	for _, in := range h.instances {
		out = append(out, h.instanceViewLocked(in))
	}
	return out
}

// allVolumes returns every volume not deleted, in creation order.
func (h *hosts) allVolumes() []volumeView {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.now()
	out := make([]volumeView, 0, len(h.volumes))
	for _, v := range h.volumes {
		out = append(out, h.volumeViewLocked(v, t))
	}
	return out
}

func (h *hosts) instance(id string) (instanceView, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	in, err := h.instanceLocked(id)
	if err != nil {
		return instanceView{}, err
	}
	return h.instanceViewLocked(in), nil
}

func (h *hosts) volume(id string) (volumeView, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, err := h.volumeLocked(id)
	if err != nil {
		return volumeView{}, err
	}
	return h.volumeViewLocked(v, h.now()), nil
}

// instanceState is the instance's EC2 state; "" for an unknown instance.
// Safe to call with cluster.mu held.
func (h *hosts) instanceState(instanceID string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if in, ok := h.byID[instanceID]; ok {
		return in.state
	}
	return ""
}

// binding is the broker an instance is configured for (its
// server.properties), ok false when Kafka is not configured there. It
// stays after the instance is terminated, so what ran there can still be
// told.
func (h *hosts) binding(instanceID string) (ref instanceRef, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	in, found := h.byID[instanceID]
	if !found || in.conf == nil {
		return instanceRef{}, false
	}
	return instanceRef{cluster: in.conf.cluster, broker: in.conf.broker}, true
}

// tagValue is the value of key in tags, ok false when absent.
func tagValue(tags []ec2Tag, key string) (string, bool) {
	for _, t := range tags {
		if t.Key == key {
			return t.Value, true
		}
	}
	return "", false
}

// setTags merges tags into have, as CreateTags does: a key present gets
// the new value, others are appended.
func setTags(have, tags []ec2Tag) []ec2Tag {
	for _, t := range tags {
		if i := slices.IndexFunc(have, func(o ec2Tag) bool { return o.Key == t.Key }); i >= 0 {
			have[i].Value = t.Value
		} else {
			have = append(have, t)
		}
	}
	return have
}
