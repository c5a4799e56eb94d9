package localfleet

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kfleet/kfleet/internal/cloud"
)

// The EC2 subset internal/cloud uses, served with EC2's query protocol:
// POST / with a form (Action=...&Version=2016-11-15&...), XML answers in the
// 2016-11-15 namespace. It describes the hosts model (hosts.go): one
// instance per broker, one data volume per instance.

const (
	ec2Namespace  = "http://ec2.amazonaws.com/doc/2016-11-15/"
	ec2OwnerID    = "000000000000"
	ec2Device     = "/dev/xvdb" // the data volume's device; the root volume is not modeled
	ec2VolumeType = "gp3"
	ec2Iops       = 3000 // gp3 baseline
	ec2Throughput = 125  // MiB/s, gp3 baseline
	maxEC2Body    = 1 << 20
	// ec2Time is how EC2 renders timestamps (ISO 8601, milliseconds, UTC).
	ec2Time = "2006-01-02T15:04:05.000Z"
)

// awsRoot routes a call to the endpoint root by protocol: JSON-protocol
// services (SSM) name the operation in X-Amz-Target; EC2's query protocol
// carries it in the form's Action.
func awsRoot(ssm, ec2 http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Target") != "" {
			ssm.ServeHTTP(w, r)
			return
		}
		ec2.ServeHTTP(w, r)
	})
}

// ec2Error is an error as EC2 answers it.
type ec2Error struct {
	status int
	code   string
	msg    string
}

func (e *ec2Error) Error() string { return e.code + ": " + e.msg }

func ec2Err(code, format string, args ...any) *ec2Error {
	return &ec2Error{status: http.StatusBadRequest, code: code, msg: fmt.Sprintf(format, args...)}
}

type ec2Service struct{ f *Fleet }

func newEC2Service(f *Fleet) *ec2Service { return &ec2Service{f: f} }

func (s *ec2Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := newCommandID()
	out, err := s.serve(r)
	if err != nil {
		var ee *ec2Error
		if !errors.As(err, &ee) {
			ee = &ec2Error{status: http.StatusInternalServerError, code: "InternalError", msg: err.Error()}
		}
		s.f.log.Debug().Str("action", r.PostForm.Get("Action")).Str("code", ee.code).Msg(ee.msg)
		writeXML(w, ee.status, ec2ErrorResponse{
			Errors:    []ec2ErrorBody{{Code: ee.code, Message: ee.msg}},
			RequestID: requestID,
		})
		return
	}
	out.setEnvelope(requestID)
	writeXML(w, http.StatusOK, out)
}

func writeXML(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(v)
}

// ec2Response is an action's answer; the envelope (namespace, request id)
// is filled in by ServeHTTP.
type ec2Response interface{ setEnvelope(requestID string) }

type ec2Envelope struct {
	Xmlns     string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
}

func (e *ec2Envelope) setEnvelope(requestID string) {
	e.Xmlns, e.RequestID = ec2Namespace, requestID
}

type ec2ErrorResponse struct {
	XMLName   xml.Name       `xml:"Response"`
	Errors    []ec2ErrorBody `xml:"Errors>Error"`
	RequestID string         `xml:"RequestID"`
}

type ec2ErrorBody struct {
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func (s *ec2Service) serve(r *http.Request) (ec2Response, error) {
	if err := checkAuthorization(r.Header.Get("Authorization")); err != nil {
		var se *ssmError
		if errors.As(err, &se) {
			code := "AuthFailure"
			if se.code == "MissingAuthenticationTokenException" {
				code = "MissingAuthenticationToken"
			}
			return nil, &ec2Error{status: se.status, code: code, msg: se.msg}
		}
		return nil, err
	}
	r.Body = http.MaxBytesReader(nil, r.Body, maxEC2Body)
	if err := r.ParseForm(); err != nil {
		return nil, ec2Err("InvalidParameterValue", "cannot parse the request form: %v", err)
	}
	form := r.PostForm
	who := r.Header.Get(WhoHeader)
	if who == "" {
		who = "ec2"
	}
	switch action := form.Get("Action"); action {
	case "DescribeInstances":
		return s.describeInstances(form)
	case "DescribeVolumes":
		return s.describeVolumes(form)
	case "ModifyVolume":
		return s.modifyVolume(form, who)
	case "DescribeVolumesModifications":
		return s.describeVolumesModifications(form)
	case "":
		return nil, ec2Err("MissingAction", "The request must contain the parameter Action")
	default:
		return nil, ec2Err("InvalidAction", "The action %s is not valid for this web service.", action)
	}
}

// ---- request parsing ----

// listParam returns a query-protocol list: name.1, name.2, ... in order.
func listParam(form url.Values, name string) []string {
	var out []string
	for i := 1; ; i++ {
		v, ok := form[name+"."+strconv.Itoa(i)]
		if !ok || len(v) == 0 {
			return out
		}
		out = append(out, v[0])
	}
}

// ec2Filter is one Filter.N: a name and the values any of which matches.
type ec2Filter struct {
	name   string
	values []string
}

func filters(form url.Values) []ec2Filter {
	var out []ec2Filter
	for i := 1; ; i++ {
		prefix := "Filter." + strconv.Itoa(i) + "."
		name := form.Get(prefix + "Name")
		if name == "" {
			return out
		}
		out = append(out, ec2Filter{name: name, values: listParam(form, prefix+"Value")})
	}
}

// matchAll reports whether every filter matches, looking each filter's
// name up with field; an unknown filter name is an error, as on EC2. Values
// may use EC2's wildcards * and ?.
func matchAll(fs []ec2Filter, field func(name string) ([]string, bool)) (bool, error) {
	for _, f := range fs {
		have, known := field(f.name)
		if !known {
			return false, ec2Err("InvalidParameterValue", "The filter '%s' is invalid", f.name)
		}
		if !slices.ContainsFunc(f.values, func(want string) bool {
			return slices.ContainsFunc(have, func(v string) bool {
				ok, err := path.Match(want, v)
				return ok && err == nil
			})
		}) {
			return false, nil
		}
	}
	return true, nil
}

// tagFilter answers tag:<key> and tag-key filters from tags.
func tagFilter(tags []ec2Tag, name string) ([]string, bool) {
	if key, ok := strings.CutPrefix(name, "tag:"); ok {
		var vals []string
		for _, t := range tags {
			if t.Key == key {
				vals = append(vals, t.Value)
			}
		}
		return vals, true
	}
	if name == "tag-key" {
		var keys []string
		for _, t := range tags {
			keys = append(keys, t.Key)
		}
		return keys, true
	}
	return nil, false
}

// ---- shapes ----

type ec2Tag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

// hostTags are the tags every broker instance and its volume carry, so that
// product code can find them by cluster and broker.
func hostTags(v hostView) []ec2Tag {
	return []ec2Tag{
		{Key: "Name", Value: fmt.Sprintf("%s-broker-%d", v.cluster, v.broker)},
		{Key: cloud.TagCluster, Value: v.cluster},
		{Key: cloud.TagBrokerID, Value: strconv.Itoa(int(v.broker))},
	}
}

func volumeTags(v hostView) []ec2Tag {
	return append(hostTags(v), ec2Tag{Key: cloud.TagRole, Value: cloud.RoleKafkaData})
}

func ec2Timestamp(t time.Time) string { return t.UTC().Format(ec2Time) }

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

type ec2Instance struct {
	InstanceID     string               `xml:"instanceId"`
	ImageID        string               `xml:"imageId"`
	State          ec2InstanceState     `xml:"instanceState"`
	PrivateDNSName string               `xml:"privateDnsName,omitempty"`
	InstanceType   string               `xml:"instanceType"`
	LaunchTime     string               `xml:"launchTime"`
	Placement      ec2Placement         `xml:"placement"`
	PrivateIP      string               `xml:"privateIpAddress,omitempty"`
	Architecture   string               `xml:"architecture"`
	RootDeviceType string               `xml:"rootDeviceType"`
	BlockDevices   []ec2BlockDeviceItem `xml:"blockDeviceMapping>item"`
	Tags           []ec2Tag             `xml:"tagSet>item"`
}

type ec2InstanceState struct {
	Code int    `xml:"code"`
	Name string `xml:"name"`
}

type ec2Placement struct {
	AvailabilityZone string `xml:"availabilityZone"`
	Tenancy          string `xml:"tenancy"`
}

type ec2BlockDeviceItem struct {
	DeviceName string         `xml:"deviceName"`
	EBS        ec2InstanceEBS `xml:"ebs"`
}

type ec2InstanceEBS struct {
	VolumeID            string `xml:"volumeId"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

// ec2StateCodes are EC2's instance state codes.
var ec2StateCodes = map[string]int{"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80}

func instanceFilter(v hostView, tags []ec2Tag) func(string) ([]string, bool) {
	return func(name string) ([]string, bool) {
		switch name {
		case "instance-id":
			return []string{v.instanceID}, true
		case "availability-zone":
			return []string{v.az}, true
		case "instance-state-name":
			return []string{v.state}, true
		// A terminated instance has neither an address nor volumes.
		case "private-ip-address":
			if v.attached() {
				return []string{v.privateIP}, true
			}
			return nil, true
		case "block-device-mapping.volume-id":
			if v.attached() {
				return []string{v.volumeID}, true
			}
			return nil, true
		}
		return tagFilter(tags, name)
	}
}

func (s *ec2Service) describeInstances(form url.Values) (ec2Response, error) {
	hs, err := s.pick(listParam(form, "InstanceId"), func(id string) error {
		return ec2Err("InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
	}, func(v hostView) string { return v.instanceID })
	if err != nil {
		return nil, err
	}
	fs := filters(form)
	out := &describeInstancesResponse{}
	for _, v := range hs {
		tags := hostTags(v)
		ok, err := matchAll(fs, instanceFilter(v, tags))
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		sum := sha256.Sum256([]byte("reservation/" + v.instanceID))
		in := ec2Instance{
			InstanceID:     v.instanceID,
			ImageID:        "ami-00000000000000000",
			State:          ec2InstanceState{Code: ec2StateCodes[v.state], Name: v.state},
			InstanceType:   "m5.xlarge",
			LaunchTime:     ec2Timestamp(v.launched),
			Placement:      ec2Placement{AvailabilityZone: v.az, Tenancy: "default"},
			Architecture:   "x86_64",
			RootDeviceType: "ebs",
			Tags:           tags,
		}
		// A terminated instance is still described (for about an hour on
		// AWS; here for good), without its network interface or volumes.
		if v.attached() {
			in.PrivateDNSName = "ip-" + strings.ReplaceAll(v.privateIP, ".", "-") + ".ec2.internal"
			in.PrivateIP = v.privateIP
			in.BlockDevices = []ec2BlockDeviceItem{{DeviceName: ec2Device, EBS: ec2InstanceEBS{
				VolumeID: v.volumeID, Status: "attached", AttachTime: ec2Timestamp(v.volumeCreated),
			}}}
		}
		out.Reservations = append(out.Reservations, ec2Reservation{
			ReservationID: "r-" + hex.EncodeToString(sum[:])[:17],
			OwnerID:       ec2OwnerID,
			Instances:     []ec2Instance{in},
		})
	}
	return out, nil
}

// pick returns the hosts named by ids (key extracts a host's id), or all
// hosts when ids is empty; an unknown id fails with notFound, as EC2 does.
func (s *ec2Service) pick(ids []string, notFound func(id string) error, key func(hostView) string) ([]hostView, error) {
	all := s.f.hosts.all()
	if len(ids) == 0 {
		return all, nil
	}
	var out []hostView
	for _, id := range ids {
		i := slices.IndexFunc(all, func(v hostView) bool { return key(v) == id })
		if i < 0 {
			return nil, notFound(id)
		}
		out = append(out, all[i])
	}
	return out, nil
}

// ---- DescribeVolumes ----

type describeVolumesResponse struct {
	XMLName xml.Name `xml:"DescribeVolumesResponse"`
	ec2Envelope
	Volumes []ec2Volume `xml:"volumeSet>item"`
}

type ec2Volume struct {
	VolumeID         string          `xml:"volumeId"`
	Size             int32           `xml:"size"`
	SnapshotID       string          `xml:"snapshotId"`
	AvailabilityZone string          `xml:"availabilityZone"`
	Status           string          `xml:"status"`
	CreateTime       string          `xml:"createTime"`
	Attachments      []ec2Attachment `xml:"attachmentSet>item"`
	VolumeType       string          `xml:"volumeType"`
	Iops             int             `xml:"iops"`
	Throughput       int             `xml:"throughput"`
	Encrypted        bool            `xml:"encrypted"`
	Tags             []ec2Tag        `xml:"tagSet>item"`
}

type ec2Attachment struct {
	VolumeID            string `xml:"volumeId"`
	InstanceID          string `xml:"instanceId"`
	Device              string `xml:"device"`
	Status              string `xml:"status"`
	AttachTime          string `xml:"attachTime"`
	DeleteOnTermination bool   `xml:"deleteOnTermination"`
}

// volumeStatus is the data volume's EC2 state: in use while attached,
// available once its instance is terminated.
func volumeStatus(v hostView) string {
	if v.attached() {
		return "in-use"
	}
	return "available"
}

func volumeFilter(v hostView, tags []ec2Tag) func(string) ([]string, bool) {
	// A detached volume has no attachment to match.
	attachment := func(value string) []string {
		if !v.attached() {
			return nil
		}
		return []string{value}
	}
	return func(name string) ([]string, bool) {
		switch name {
		case "volume-id":
			return []string{v.volumeID}, true
		case "attachment.instance-id":
			return attachment(v.instanceID), true
		case "attachment.device":
			return attachment(ec2Device), true
		case "attachment.status":
			return attachment("attached"), true
		case "availability-zone":
			return []string{v.az}, true
		case "status":
			return []string{volumeStatus(v)}, true
		case "size":
			return []string{strconv.Itoa(int(v.sizeGiB))}, true
		case "volume-type":
			return []string{ec2VolumeType}, true
		}
		return tagFilter(tags, name)
	}
}

func volumeNotFound(id string) error {
	return ec2Err("InvalidVolume.NotFound", "The volume '%s' does not exist.", id)
}

func volumeKey(v hostView) string { return v.volumeID }

func (s *ec2Service) describeVolumes(form url.Values) (ec2Response, error) {
	hs, err := s.pick(listParam(form, "VolumeId"), volumeNotFound, volumeKey)
	if err != nil {
		return nil, err
	}
	fs := filters(form)
	out := &describeVolumesResponse{}
	for _, v := range hs {
		tags := volumeTags(v)
		ok, err := matchAll(fs, volumeFilter(v, tags))
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		vol := ec2Volume{
			VolumeID:         v.volumeID,
			Size:             v.sizeGiB,
			AvailabilityZone: v.az,
			Status:           volumeStatus(v),
			CreateTime:       ec2Timestamp(v.volumeCreated),
			VolumeType:       ec2VolumeType,
			Iops:             ec2Iops,
			Throughput:       ec2Throughput,
			Tags:             tags,
		}
		if v.attached() {
			vol.Attachments = []ec2Attachment{{
				VolumeID: v.volumeID, InstanceID: v.instanceID, Device: ec2Device,
				Status: "attached", AttachTime: ec2Timestamp(v.volumeCreated),
			}}
		}
		out.Volumes = append(out.Volumes, vol)
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
		TargetSize:        m.targetSize, TargetIops: ec2Iops, TargetVolumeType: ec2VolumeType, TargetThroughput: ec2Throughput,
		OriginalSize: m.originalSize, OriginalIops: ec2Iops, OriginalVolumeType: ec2VolumeType, OriginalThroughput: ec2Throughput,
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
			size, ec2VolumeType, maxVolumeSizeGiB)
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
	return &modifyVolumeResponse{Modification: modificationXML(v.volumeID, m)}, nil
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
	hs, err := s.pick(ids, volumeNotFound, volumeKey)
	if err != nil {
		return nil, err
	}
	fs := filters(form)
	out := &describeVolumesModificationsResponse{}
	for _, v := range hs {
		if !v.modified {
			if len(ids) > 0 {
				return nil, ec2Err("InvalidVolumeModification.NotFound", "Modification for volume '%s' does not exist.", v.volumeID)
			}
			continue
		}
		m := v.lastMod
		ok, err := matchAll(fs, func(name string) ([]string, bool) {
			switch name {
			case "volume-id":
				return []string{v.volumeID}, true
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
			out.Modifications = append(out.Modifications, modificationXML(v.volumeID, m))
		}
	}
	return out, nil
}
