package localfleet

import (
	"cmp"
	"encoding/xml"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"
)

// CreateVolume, AttachVolume, DetachVolume and DeleteVolume with EBS's
// rules: a volume attaches to one instance at a time, in its own zone; an
// attached volume is refused to a second instance (VolumeInUse) and to
// DeleteVolume; a volume still in use on its host (Kafka's log directory)
// stays "busy" on DetachVolume until the process is down, unless Force
// pulls it from under the process, which then dies.

// gp3's limits.
const (
	gp3MaxIops         = 16000
	gp3MaxThroughput   = 1000 // MiB/s
	gp3IopsPerGiB      = 500
	gp3ThroughputRatio = 0.25 // MiB/s per IOPS
)

// devicePattern is the EBS device names EC2 accepts on Linux instances.
var devicePattern = regexp.MustCompile(`^/dev/(sd[b-z]|xvd[b-z]|xvd[b-c][a-z])$`)

// volumeSpec is a validated CreateVolume.
type volumeSpec struct {
	az               string
	sizeGiB          int32
	iops, throughput int
	tags             []ec2Tag
	token, fp        string
}

type createVolumeResponse struct {
	XMLName xml.Name `xml:"CreateVolumeResponse"`
	ec2Envelope
	ec2Volume
}

func (s *ec2Service) createVolume(call ec2Call) (ec2Response, error) {
	spec, err := parseVolume(call, s.f.ec2.AvailabilityZones)
	if err != nil {
		return nil, err
	}
	if call.dryRun() {
		return nil, errDryRun
	}
	v, gen, replay, err := s.f.hosts.createVolume(spec)
	if err != nil {
		return nil, err
	}
	if !replay {
		cluster, broker := tagOwner(v.tags)
		s.f.record(Event{Cluster: cluster, Broker: broker, Kind: EventVolumeCreated, Who: callerOf(call, spec.tags), Volume: v.id,
			Detail: fmt.Sprintf("volume %s (%d GiB %s, %d IOPS, %d MiB/s, %s) created in %s, tags %s",
				v.id, v.sizeGiB, v.volType, v.iops, v.tput, cond(spec.token == "", "no client token", "client token "+spec.token),
				v.az, tagsString(v.tags))})
		s.f.afterVolume(v.id, gen, s.f.ec2.Timing.VolumeCreating, func(v *volume) { v.state = VolumeAvailable })
	}
	return &createVolumeResponse{ec2Volume: volumeXML(v)}, nil
}

func parseVolume(call ec2Call, zones []string) (volumeSpec, error) {
	form := call.form
	var spec volumeSpec
	var err error
	if spec.az, err = required(form, "AvailabilityZone"); err != nil {
		return spec, err
	}
	if !slices.Contains(zones, spec.az) {
		return spec, ec2Err("InvalidZone.NotFound", "The zone '%s' does not exist.", spec.az)
	}
	// EC2's default type is gp2; the fleet models gp3 only, as kfleet
	// provisions it.
	if t := cmp.Or(form.Get("VolumeType"), "gp2"); t != defaultVolumeType {
		return spec, ec2Err("InvalidParameterValue", "The local fleet models %s volumes only; VolumeType %s is not served.", defaultVolumeType, t)
	}
	if form.Get("SnapshotId") != "" {
		return spec, ec2Err("InvalidParameterValue", "The local fleet does not model snapshots; create the volume with a Size.")
	}
	if form.Get("MultiAttachEnabled") == "true" {
		return spec, ec2Err("InvalidParameterValue", "Multi-Attach is not supported for %s volumes.", defaultVolumeType)
	}
	rawSize, err := required(form, "Size")
	if err != nil {
		return spec, err
	}
	size, err := strconv.Atoi(rawSize)
	switch {
	case err != nil || size < 1:
		return spec, ec2Err("InvalidParameterValue", "Value (%s) for parameter size is invalid.", rawSize)
	case size > maxVolumeSizeGiB:
		return spec, ec2Err("InvalidParameterValue", "Volume of %dGiB is too large for volume type %s; maximum is %dGiB.", size, defaultVolumeType, maxVolumeSizeGiB)
	}
	spec.sizeGiB = int32(size)
	if spec.iops, err = intParam(form, "Iops", gp3BaseIops); err != nil {
		return spec, err
	}
	if spec.throughput, err = intParam(form, "Throughput", gp3BaseThroughput); err != nil {
		return spec, err
	}
	switch {
	case spec.iops < gp3BaseIops || spec.iops > gp3MaxIops:
		return spec, ec2Err("InvalidParameterValue", "Volume iops of %d is too %s; %s is %d.", spec.iops,
			cond(spec.iops < gp3BaseIops, "low", "high"), cond(spec.iops < gp3BaseIops, "minimum", "maximum"), cond(spec.iops < gp3BaseIops, gp3BaseIops, gp3MaxIops))
	case spec.iops > size*gp3IopsPerGiB:
		return spec, ec2Err("InvalidParameterValue", "Iops to volume size ratio of %.1f is too high; maximum is %d.", float64(spec.iops)/float64(size), gp3IopsPerGiB)
	case spec.throughput < gp3BaseThroughput || spec.throughput > gp3MaxThroughput:
		return spec, ec2Err("InvalidParameterValue", "Throughput of %d MiB/s is out of range for %s; it must be %d to %d.", spec.throughput, defaultVolumeType, gp3BaseThroughput, gp3MaxThroughput)
	case float64(spec.throughput) > float64(spec.iops)*gp3ThroughputRatio:
		return spec, ec2Err("InvalidParameterValue", "Throughput (MiBps) to iops ratio of %.3f is too high; maximum is %.2f MiBps per iops.",
			float64(spec.throughput)/float64(spec.iops), gp3ThroughputRatio)
	}
	if spec.tags, err = tagSpecs(form, "volume"); err != nil {
		return spec, err
	}
	if spec.token, err = clientToken(form); err != nil {
		return spec, err
	}
	spec.fp = fingerprint(form)
	return spec, nil
}

// createVolume creates a blank volume, creating; a token already used
// returns that volume as it is now (replay). gen identifies its creation
// for afterVolume.
func (h *hosts) createVolume(spec volumeSpec) (_ volumeView, gen uint64, replay bool, _ error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids, replay, err := h.tokenLocked("CreateVolume", spec.token, spec.fp)
	if err != nil {
		return volumeView{}, 0, false, err
	}
	t := h.now()
	if replay {
		v, ok := h.byVolume[ids[0]]
		if !ok {
			// Deleted since: EC2 still answers the token with the volume
			// it made, which is gone.
			return volumeView{id: ids[0], az: spec.az, volType: defaultVolumeType, state: "deleted", sizeGiB: spec.sizeGiB,
				clientToken: spec.token, tags: spec.tags}, 0, true, nil
		}
		return h.volumeViewLocked(v, t), v.gen, true, nil
	}
	vc := VolumeConfig{SizeGiB: spec.sizeGiB}.withDefaults()
	v := newVolume(newResourceID("vol"), spec.az, vc, t)
	v.iops, v.tput, v.clientToken, v.tags = spec.iops, spec.throughput, spec.token, slices.Clone(spec.tags)
	v.state = VolumeCreating
	h.addVolumeLocked(v)
	h.rememberTokenLocked("CreateVolume", spec.token, spec.fp, []string{v.id})
	return h.volumeViewLocked(v, t), v.gen, false, nil
}

// afterVolume applies change to a volume after d, unless the volume
// changed meanwhile (its gen moved on) or is gone. Every change bumps gen.
func (f *Fleet) afterVolume(volumeID string, gen uint64, d time.Duration, change func(v *volume)) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		_ = sleep(f.life, d) // the volume reaches its state even if the fleet closes meanwhile
		f.hosts.mu.Lock()
		defer f.hosts.mu.Unlock()
		if v, ok := f.hosts.byVolume[volumeID]; ok && v.gen == gen {
			change(v)
			v.gen++
		}
	}()
}

// ---- AttachVolume ----

type volumeAttachmentResponse struct {
	XMLName xml.Name
	ec2Envelope
	ec2Attachment
}

func (s *ec2Service) attachVolume(call ec2Call) (ec2Response, error) {
	var ids [3]string
	for i, p := range []string{"VolumeId", "InstanceId", "Device"} {
		v, err := required(call.form, p)
		if err != nil {
			return nil, err
		}
		ids[i] = v
	}
	volID, instID, device := ids[0], ids[1], ids[2]
	if !devicePattern.MatchString(device) {
		return nil, ec2Err("InvalidParameterValue", "Value (%s) for parameter device is invalid. %s is not a valid EBS device name.", device, device)
	}
	a, gen, err := s.f.hosts.attach(volID, instID, device, call.dryRun())
	if err != nil {
		return nil, err
	}
	v, _ := s.f.hosts.volume(volID)
	in, _ := s.f.hosts.instance(instID)
	cluster, broker := tagOwner(v.tags)
	if cluster == "" {
		cluster, broker = instanceOwner(in)
	}
	s.f.record(Event{Cluster: cluster, Broker: broker, Kind: EventVolumeAttached, Who: cmp.Or(call.who, "ec2"),
		Instance: instID, Volume: volID, Detail: fmt.Sprintf("volume %s (holding %s) attached to instance %s at %s", volID, v.owner, instID, device)})
	s.f.afterVolume(volID, gen, s.f.ec2.Timing.Attaching, func(v *volume) { v.att.state = AttachmentAttached })
	return &volumeAttachmentResponse{XMLName: xml.Name{Local: "AttachVolumeResponse"}, ec2Attachment: attachmentXML(a)}, nil
}

// attach attaches a volume to an instance with EBS's rules. With dryRun it
// only checks them.
func (h *hosts) attach(volID, instID, device string, dryRun bool) (_ attachmentView, gen uint64, _ error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.byVolume[volID]
	if !ok {
		return attachmentView{}, 0, volumeNotFound(volID)
	}
	in, ok := h.byID[instID]
	if !ok {
		return attachmentView{}, 0, instanceNotFound(instID)
	}
	switch {
	case v.att != nil:
		return attachmentView{}, 0, ec2Err("VolumeInUse", "%s is already attached to an instance", volID)
	case v.state != VolumeAvailable:
		return attachmentView{}, 0, ec2Err("IncorrectState", "%s is not 'available'.", volID)
	case in.state != InstanceRunning && in.state != InstanceStopped:
		return attachmentView{}, 0, ec2Err("IncorrectInstanceState", "Instance '%s' is not 'running'.", instID)
	case v.az != in.az:
		return attachmentView{}, 0, ec2Err("InvalidVolume.ZoneMismatch",
			"The volume '%s' is not in the same availability zone as instance '%s'", volID, instID)
	}
	for _, o := range h.attachedLocked(instID) {
		if o.att.device == device {
			return attachmentView{}, 0, ec2Err("InvalidParameterValue", "Attachment point %s is already in use", device)
		}
	}
	if dryRun {
		return attachmentView{}, 0, errDryRun
	}
	v.att = &attachment{instanceID: instID, device: device, state: AttachmentAttaching, at: h.now()}
	v.state = VolumeInUse
	v.gen++
	return attachmentOf(v), v.gen, nil
}

// ---- DetachVolume ----

func (s *ec2Service) detachVolume(call ec2Call) (ec2Response, error) {
	volID, err := required(call.form, "VolumeId")
	if err != nil {
		return nil, err
	}
	force := call.form.Get("Force") == "true"
	v, err := s.f.hosts.volume(volID)
	if err != nil {
		return nil, volumeNotFound(volID)
	}
	if err := checkDetach(v, call.form.Get("InstanceId"), call.form.Get("Device")); err != nil {
		return nil, err
	}
	if call.dryRun() {
		return nil, errDryRun
	}
	a := *v.att
	who := cmp.Or(call.who, "ec2")
	if a.state == AttachmentDetaching || (a.state == AttachmentBusy && !force) {
		return &volumeAttachmentResponse{XMLName: xml.Name{Local: "DetachVolumeResponse"}, ec2Attachment: attachmentXML(a)}, nil
	}
	// A volume Kafka's log directory is on stays busy until the process
	// is down; Force pulls it from under the process, which dies of it.
	c, b, inUse := s.f.logDirOn(a.instanceID, volID)
	state := AttachmentDetaching
	switch {
	case inUse && force:
		if err := c.crash(b, who, fmt.Sprintf("log directory %s failed: volume %s force-detached", logDir, volID), []string{
			kafkaLine(time.Now(), "ERROR", fmt.Sprintf("Error while writing to checkpoint file %s/recovery-point-offset-checkpoint", logDir), "kafka.server.LogDirFailureChannel"),
			kafkaLine(time.Now(), "ERROR", fmt.Sprintf("Shutdown broker because all log dirs in %s have failed", logDir), "kafka.log.LogManager"),
		}); err != nil {
			s.f.log.Warn().Err(err).Str("volume", volID).Msg("force detach: crash the broker")
		}
	case inUse:
		state = AttachmentBusy
	}
	gen, err := s.f.hosts.setAttachmentState(volID, a.instanceID, state)
	if err != nil {
		return nil, err
	}
	a.state = state
	cluster, broker := tagOwner(v.tags)
	s.f.record(Event{Cluster: cluster, Broker: broker, Kind: EventVolumeDetached, Who: who, Instance: a.instanceID, Volume: volID,
		Detail: fmt.Sprintf("volume %s (holding %s) detaching from instance %s%s%s", volID, v.owner, a.instanceID,
			cond(force, " (forced)", ""), cond(state == AttachmentBusy, ": busy until Kafka is down on it", ""))})
	if state == AttachmentBusy {
		s.f.detachWhenIdle(volID, a.instanceID, gen)
	} else {
		s.f.afterVolume(volID, gen, s.f.ec2.Timing.Detaching, detached)
	}
	return &volumeAttachmentResponse{XMLName: xml.Name{Local: "DetachVolumeResponse"}, ec2Attachment: attachmentXML(a)}, nil
}

// checkDetach refuses a detach of a volume that is not attached (or not
// to the instance or device the request names).
func checkDetach(v volumeView, instID, device string) error {
	if v.att == nil {
		return ec2Err("IncorrectState", "Volume '%s' is in the '%s' state.", v.id, v.state)
	}
	if (instID != "" && instID != v.att.instanceID) || (device != "" && device != v.att.device) {
		return ec2Err("InvalidAttachment.NotFound", "Volume '%s' is not attached to instance '%s' at %s",
			v.id, cmp.Or(instID, v.att.instanceID), cmp.Or(device, v.att.device))
	}
	return nil
}

func detached(v *volume) { v.att, v.state = nil, VolumeAvailable }

// setAttachmentState changes the state of a volume's attachment to
// instID; it returns the change's gen.
func (h *hosts) setAttachmentState(volID, instID, state string) (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.byVolume[volID]
	if !ok || v.att == nil || v.att.instanceID != instID {
		return 0, ec2Err("IncorrectState", "Volume '%s' is no longer attached to '%s'.", volID, instID)
	}
	v.att.state = state
	v.gen++
	return v.gen, nil
}

// logDirOn reports the broker whose running process has its log directory
// on volID, on instID.
func (f *Fleet) logDirOn(instID, volID string) (*cluster, *broker, bool) {
	c, b, ok := f.hostedBroker(instID)
	if !ok {
		return nil, nil, false
	}
	if v, err := f.hosts.dataVolumeOf(instID); err != nil || v.id != volID {
		return nil, nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c, b, processUp(b.state)
}

// processUp reports whether a broker's process runs in state st.
func processUp(st State) bool {
	switch st {
	case StateRunning, StateRecovering, StateStarting, StateStopping:
		return true
	}
	return false
}

// detachWhenIdle completes a busy detach once nothing uses the volume on
// its instance any more (the broker stopped, crashed, or its host
// stopped), unless the attachment changed meanwhile (a forced detach).
func (f *Fleet) detachWhenIdle(volID, instID string, gen uint64) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			if _, _, inUse := f.logDirOn(instID, volID); !inUse {
				break
			}
			if sleep(f.life, 20*time.Millisecond) != nil {
				return
			}
		}
		next, err := f.hosts.advanceAttachment(volID, gen, AttachmentDetaching)
		if err == nil {
			f.afterVolume(volID, next, f.ec2.Timing.Detaching, detached)
		}
	}()
}

// advanceAttachment sets the attachment's state if the volume is still at
// gen; it returns the new gen.
func (h *hosts) advanceAttachment(volID string, gen uint64, state string) (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.byVolume[volID]
	if !ok || v.gen != gen || v.att == nil {
		return 0, fmt.Errorf("volume %s changed meanwhile", volID)
	}
	v.att.state = state
	v.gen++
	return v.gen, nil
}

// ---- DeleteVolume ----

func (s *ec2Service) deleteVolume(call ec2Call) (ec2Response, error) {
	volID, err := required(call.form, "VolumeId")
	if err != nil {
		return nil, err
	}
	v, err := s.f.hosts.deleteVolume(volID, call.dryRun())
	if err != nil {
		return nil, err
	}
	cluster, broker := tagOwner(v.tags)
	s.f.record(Event{Cluster: cluster, Broker: broker, Kind: EventVolumeDeleted, Who: cmp.Or(call.who, "ec2"), Volume: volID,
		Detail: fmt.Sprintf("volume %s (holding %s) deleted", volID, v.owner)})
	return returnTrue("DeleteVolume"), nil
}

// deleteVolume deletes an available volume; what it held is gone.
func (h *hosts) deleteVolume(volID string, dryRun bool) (volumeView, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.byVolume[volID]
	switch {
	case !ok:
		return volumeView{}, volumeNotFound(volID)
	case v.att != nil:
		return volumeView{}, ec2Err("VolumeInUse", "Volume %s is currently attached to %s", volID, v.att.instanceID)
	case v.state != VolumeAvailable:
		return volumeView{}, ec2Err("IncorrectState", "The volume '%s' is '%s'.", volID, v.state)
	case dryRun:
		return volumeView{}, errDryRun
	}
	out := h.volumeViewLocked(v, h.now())
	h.removeVolumeLocked(v)
	return out, nil
}
