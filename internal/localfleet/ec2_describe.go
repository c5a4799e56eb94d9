package localfleet

import (
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// The EC2 describes (instances, volumes, volume modifications) and
// ModifyVolume.

// ---- DescribeInstances ----

type describeInstancesResponse struct {
	XMLName xml.Name `xml:"DescribeInstancesResponse"`
	ec2Envelope
	Reservations []ec2Reservation `xml:"reservationSet>item"`
}

type ec2Reservation struct {
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Instances     []ec2Instance `xml:"instancesSet>item"`
}

func instanceFilter(v instanceView) func(string) ([]string, bool) {
	return func(name string) ([]string, bool) {
		switch name {
		case "instance-id":
			return []string{v.id}, true
		case "availability-zone":
			return []string{v.az}, true
		case "instance-state-name":
			return []string{v.state}, true
		case "instance-state-code":
			return []string{strconv.Itoa(ec2StateCodes[v.state])}, true
		case "instance-type":
			return []string{v.itype}, true
		case "image-id":
			return []string{v.imageID}, true
		case "reservation-id":
			return []string{v.reservationID}, true
		case "client-token":
			return []string{v.clientToken}, true
		// A terminated instance has neither an address nor volumes.
		case "private-ip-address":
			if v.state != InstanceTerminated {
				return []string{v.privateIP}, true
			}
			return nil, true
		case "block-device-mapping.volume-id", "block-device-mapping.device-name", "block-device-mapping.status":
			var out []string
			for _, a := range v.attachments {
				out = append(out, cond(name == "block-device-mapping.volume-id", a.volumeID,
					cond(name == "block-device-mapping.device-name", a.device, a.state)))
			}
			return out, true
		}
		return tagFilter(v.tags, name)
	}
}

// describeInstances answers with one reservation per launch, its
// instances in launch order.
func (s *ec2Service) describeInstances(form url.Values) (ec2Response, error) {
	ins, err := pick(s.f.hosts.allInstances(), listParam(form, "InstanceId"), instanceNotFound, instanceKey)
	if err != nil {
		return nil, err
	}
	fs := filters(form)
	out := &describeInstancesResponse{}
	for _, v := range ins {
		ok, err := matchAll(fs, instanceFilter(v))
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		i := slices.IndexFunc(out.Reservations, func(r ec2Reservation) bool { return r.ReservationID == v.reservationID })
		if i < 0 {
			out.Reservations = append(out.Reservations, ec2Reservation{ReservationID: v.reservationID, OwnerID: ec2OwnerID})
			i = len(out.Reservations) - 1
		}
		out.Reservations[i].Instances = append(out.Reservations[i].Instances, instanceXML(v))
	}
	return out, nil
}

func instanceNotFound(id string) error {
	if !instanceIDPattern.MatchString(id) {
		return ec2Err("InvalidInstanceID.Malformed", "Invalid id: \"%s\"", id)
	}
	return ec2Err("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
}

func instanceKey(v instanceView) string { return v.id }

// pick returns the resources named by ids (key extracts a resource's id),
// or all when ids is empty; an unknown id fails with notFound, as EC2 does.
func pick[V any](all []V, ids []string, notFound func(id string) error, key func(V) string) ([]V, error) {
	if len(ids) == 0 {
		return all, nil
	}
	var out []V
	for _, id := range ids {
		i := slices.IndexFunc(all, func(v V) bool { return key(v) == id })
		if i < 0 {
			return nil, notFound(id)
		}
		if !slices.ContainsFunc(out, func(v V) bool { return key(v) == id }) {
			out = append(out, all[i])
		}
	}
	return out, nil
}

// ---- DescribeVolumes ----

type describeVolumesResponse struct {
	XMLName xml.Name `xml:"DescribeVolumesResponse"`
	ec2Envelope
	Volumes []ec2Volume `xml:"volumeSet>item"`
}

func volumeFilter(v volumeView) func(string) ([]string, bool) {
	// A detached volume has no attachment to match.
	attachment := func(value func(a attachmentView) string) []string {
		if v.att == nil {
			return nil
		}
		return []string{value(*v.att)}
	}
	return func(name string) ([]string, bool) {
		switch name {
		case "volume-id":
			return []string{v.id}, true
		case "attachment.instance-id":
			return attachment(func(a attachmentView) string { return a.instanceID }), true
		case "attachment.device":
			return attachment(func(a attachmentView) string { return a.device }), true
		case "attachment.status":
			return attachment(func(a attachmentView) string { return a.state }), true
		case "attachment.delete-on-termination":
			return attachment(func(a attachmentView) string { return strconv.FormatBool(a.deleteOnTermination) }), true
		case "availability-zone":
			return []string{v.az}, true
		case "status":
			return []string{v.state}, true
		case "size":
			return []string{strconv.Itoa(int(v.sizeGiB))}, true
		case "volume-type":
			return []string{v.volType}, true
		case "client-token":
			return []string{v.clientToken}, true
		}
		return tagFilter(v.tags, name)
	}
}

func volumeNotFound(id string) error {
	if !volumeIDPattern.MatchString(id) {
		return ec2Err("InvalidVolumeID.Malformed", "Invalid id: \"%s\" (expecting \"vol-...\")", id)
	}
	return ec2Err("InvalidVolume.NotFound", "The volume '%s' does not exist.", id)
}

func volumeKey(v volumeView) string { return v.id }

func (s *ec2Service) describeVolumes(form url.Values) (ec2Response, error) {
	vs, err := pick(s.f.hosts.allVolumes(), listParam(form, "VolumeId"), volumeNotFound, volumeKey)
	if err != nil {
		return nil, err
	}
	fs := filters(form)
	out := &describeVolumesResponse{}
	for _, v := range vs {
		ok, err := matchAll(fs, volumeFilter(v))
		if err != nil {
			return nil, err
		}
		if ok {
			out.Volumes = append(out.Volumes, volumeXML(v))
		}
	}
	return out, nil
}

// ---- ModifyVolume and DescribeVolumesModifications ----

type ec2VolumeModification struct {
	VolumeID           string `xml:"volumeId"`
	ModificationState  string `xml:"modificationState"`
	TargetSize         int32  `xml:"targetSize"`
	TargetIops         int    `xml:"targetIops"`
	TargetVolumeType   string `xml:"targetVolumeType"`
	TargetThroughput   int    `xml:"targetThroughput"`
	OriginalSize       int32  `xml:"originalSize"`
	OriginalIops       int    `xml:"originalIops"`
	OriginalVolumeType string `xml:"originalVolumeType"`
	OriginalThroughput int    `xml:"originalThroughput"`
	Progress           int64  `xml:"progress"`
	StartTime          string `xml:"startTime"`
	EndTime            string `xml:"endTime,omitempty"`
}

func modificationXML(volumeID string, m modificationStatus) ec2VolumeModification {
	out := ec2VolumeModification{
		VolumeID:          volumeID,
		ModificationState: m.state,
		TargetSize:        m.targetSize, TargetIops: gp3BaseIops, TargetVolumeType: defaultVolumeType, TargetThroughput: gp3BaseThroughput,
		OriginalSize: m.originalSize, OriginalIops: gp3BaseIops, OriginalVolumeType: defaultVolumeType, OriginalThroughput: gp3BaseThroughput,
		Progress:  m.progress,
		StartTime: ec2Timestamp(m.start),
	}
	if !m.end.IsZero() {
		out.EndTime = ec2Timestamp(m.end)
	}
	return out
}

type modifyVolumeResponse struct {
	XMLName xml.Name `xml:"ModifyVolumeResponse"`
	ec2Envelope
	Modification ec2VolumeModification `xml:"volumeModification"`
}

func (s *ec2Service) modifyVolume(form url.Values, who string) (ec2Response, error) {
	id := form.Get("VolumeId")
	if id == "" {
		return nil, ec2Err("MissingParameter", "The request must contain the parameter VolumeId")
	}
	for _, p := range []string{"VolumeType", "Iops", "Throughput", "MultiAttachEnabled"} {
		if form.Has(p) {
			return nil, ec2Err("InvalidParameterValue", "The local fleet modifies only the Size of a volume, not %s.", p)
		}
	}
	raw := form.Get("Size")
	if raw == "" {
		return nil, ec2Err("InvalidParameterValue", "Invalid input: Must specify at least one of size, type, iops, throughput or multi-attach.")
	}
	size, err := strconv.ParseInt(raw, 10, 32)
	if err != nil || size < 1 {
		return nil, ec2Err("InvalidParameterValue", "Value (%s) for parameter size is invalid.", raw)
	}
	if form.Get("DryRun") == "true" {
		if _, err := s.f.hosts.volume(id); err != nil {
			return nil, volumeNotFound(id)
		}
		return nil, &ec2Error{status: http.StatusPreconditionFailed, code: "DryRunOperation",
			msg: "Request would have succeeded, but DryRun flag is set."}
	}
	v, m, err := s.f.modifyVolume(id, int32(size), who)
	switch {
	case err == nil:
	case errors.Is(err, ErrUnknownVolume):
		return nil, volumeNotFound(id)
	case errors.Is(err, ErrVolumeShrink):
		return nil, ec2Err("InvalidParameterValue", "New size cannot be smaller than existing size")
	case errors.Is(err, ErrVolumeSameSize):
		return nil, ec2Err("InvalidParameterValue", "New size cannot be equal to existing size")
	case errors.Is(err, ErrVolumeTooLarge):
		return nil, ec2Err("InvalidParameterValue", "Volume of %dGiB is too large for volume type %s; maximum is %dGiB.",
			size, defaultVolumeType, maxVolumeSizeGiB)
	case errors.Is(err, ErrModificationInProgress):
		last, _ := s.lastModification(id)
		return nil, ec2Err("IncorrectModificationState", "Volume %s cannot be modified in modification state %s",
			id, strings.ToUpper(last.state))
	case errors.Is(err, ErrModificationRate):
		return nil, ec2Err("VolumeModificationRateExceeded",
			"You've reached the maximum modification rate per volume limit. Wait at least 6 hours between modifications per EBS volume.")
	default:
		return nil, err
	}
	return &modifyVolumeResponse{Modification: modificationXML(v.id, m)}, nil
}

func (s *ec2Service) lastModification(volumeID string) (modificationStatus, bool) {
	v, err := s.f.hosts.volume(volumeID)
	if err != nil {
		return modificationStatus{}, false
	}
	return v.lastMod, v.modified
}

type describeVolumesModificationsResponse struct {
	XMLName xml.Name `xml:"DescribeVolumesModificationsResponse"`
	ec2Envelope
	Modifications []ec2VolumeModification `xml:"volumeModificationSet>item"`
}

// describeVolumesModifications reports each volume's latest modification.
// A volume named by id that was never modified is an error, as on EC2.
func (s *ec2Service) describeVolumesModifications(form url.Values) (ec2Response, error) {
	ids := listParam(form, "VolumeId")
	vs, err := pick(s.f.hosts.allVolumes(), ids, volumeNotFound, volumeKey)
	if err != nil {
		return nil, err
	}
	fs := filters(form)
	out := &describeVolumesModificationsResponse{}
	for _, v := range vs {
		if !v.modified {
			if len(ids) > 0 {
				return nil, ec2Err("InvalidVolumeModification.NotFound", "Modification for volume '%s' does not exist.", v.id)
			}
			continue
		}
		m := v.lastMod
		ok, err := matchAll(fs, func(name string) ([]string, bool) {
			switch name {
			case "volume-id":
				return []string{v.id}, true
			case "modification-state":
				return []string{m.state}, true
			case "target-size":
				return []string{strconv.Itoa(int(m.targetSize))}, true
			case "original-size":
				return []string{strconv.Itoa(int(m.originalSize))}, true
			}
			return nil, false
		})
		if err != nil {
			return nil, err
		}
		if ok {
			out.Modifications = append(out.Modifications, modificationXML(v.id, m))
		}
	}
	return out, nil
}
