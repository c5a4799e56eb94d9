package localfleet

import (
	"cmp"
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

// The EC2 subset kfleet uses, served with EC2's query protocol: POST / with
// a form (Action=...&Version=2016-11-15&...), XML answers in the 2016-11-15
// namespace, errors with AWS's codes, so the real aws-sdk-go-v2 client and
// the AWS CLI both work against it. It serves the hosts model (hosts.go):
// describes (ec2_describe.go), the lifecycle of instances
// (ec2_lifecycle.go) and of volumes (ec2_volumes.go).

const (
	ec2Namespace = "http://ec2.amazonaws.com/doc/2016-11-15/"
	ec2OwnerID   = "000000000000"
	maxEC2Body   = 1 << 20
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

// errDryRun is EC2's answer to a request with DryRun=true that would have
// succeeded.
var errDryRun = &ec2Error{status: http.StatusPreconditionFailed, code: "DryRunOperation",
	msg: "Request would have succeeded, but DryRun flag is set."}

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

// ec2Return is the answer of actions that only say they succeeded
// (CreateTags, DeleteVolume).
type ec2Return struct {
	XMLName xml.Name
	ec2Envelope
	Return bool `xml:"return"`
}

func returnTrue(action string) *ec2Return {
	return &ec2Return{XMLName: xml.Name{Local: action + "Response"}, Return: true}
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

// ec2Call is one request: its form and who sent it (the X-Kfleet-Who
// header; "" when absent, and each action then names the caller from the
// request itself: see callerOf).
type ec2Call struct {
	form url.Values
	who  string
}

// dryRun reports whether the request only asks whether it would succeed.
func (c ec2Call) dryRun() bool { return c.form.Get("DryRun") == "true" }

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
	call := ec2Call{form: r.PostForm, who: r.Header.Get(WhoHeader)}
	switch action := call.form.Get("Action"); action {
	case "DescribeInstances":
		return s.describeInstances(call.form)
	case "DescribeVolumes":
		return s.describeVolumes(call.form)
	case "ModifyVolume":
		return s.modifyVolume(call.form, cmp.Or(call.who, "ec2"))
	case "DescribeVolumesModifications":
		return s.describeVolumesModifications(call.form)
	case "DescribeAvailabilityZones":
		return s.describeAvailabilityZones(call.form)
	case "DescribeInstanceTypeOfferings":
		return s.describeInstanceTypeOfferings(call.form)
	case "RunInstances":
		return s.runInstances(call)
	case "TerminateInstances", "StopInstances", "StartInstances":
		return s.changeInstances(action, call)
	case "CreateTags":
		return s.createTags(call)
	case "CreateVolume":
		return s.createVolume(call)
	case "AttachVolume":
		return s.attachVolume(call)
	case "DetachVolume":
		return s.detachVolume(call)
	case "DeleteVolume":
		return s.deleteVolume(call)
	case "":
		return nil, ec2Err("MissingAction", "The request must contain the parameter Action")
	default:
		return nil, ec2Err("InvalidAction", "The action %s is not valid for this web service.", action)
	}
}

// callerOf names who asked for a change, for the audit: the X-Kfleet-Who
// header, else the kfleet:requested-by tag the request sets, else its
// ClientToken (kfleet derives tokens from the workflow step), else "ec2".
func callerOf(call ec2Call, tags []ec2Tag) string {
	if call.who != "" {
		return call.who
	}
	if v, ok := tagValue(tags, cloud.TagRequestedBy); ok && v != "" {
		return v
	}
	if t := call.form.Get("ClientToken"); t != "" {
		return "client-token:" + t
	}
	return "ec2"
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

// required returns a parameter, or EC2's MissingParameter.
func required(form url.Values, name string) (string, error) {
	v := form.Get(name)
	if v == "" {
		return "", ec2Err("MissingParameter", "The request must contain the parameter %s", name)
	}
	return v, nil
}

// intParam parses an optional integer parameter; def when absent.
func intParam(form url.Values, name string, def int) (int, error) {
	raw := form.Get(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil {
		return 0, ec2Err("InvalidParameterValue", "Invalid value '%s' for %s", raw, name)
	}
	return n, nil
}

// tagSpecs returns the tags a TagSpecification.N list asks for resources
// of resourceType. Tags for the other types allowed (RunInstances may tag
// the volumes it creates, which are not modeled) are ignored; unknown
// types, reserved keys and too many tags are refused as EC2 does.
func tagSpecs(form url.Values, resourceType string, allowed ...string) ([]ec2Tag, error) {
	var out []ec2Tag
	for i := 1; ; i++ {
		prefix := "TagSpecification." + strconv.Itoa(i) + "."
		typ := form.Get(prefix + "ResourceType")
		if typ == "" {
			if form.Has(prefix + "Tag.1.Key") {
				return nil, ec2Err("InvalidParameterValue", "TagSpecification %d has no ResourceType", i)
			}
			return out, nil
		}
		if typ != resourceType && !slices.Contains(allowed, typ) {
			return nil, ec2Err("InvalidParameterValue", "'%s' is not a valid taggable resource type for this operation.", typ)
		}
		tags, err := tagList(form, prefix+"Tag")
		if err != nil {
			return nil, err
		}
		if typ == resourceType {
			out = setTags(out, tags)
		}
	}
}

// maxTags is EC2's limit of tags per resource.
const maxTags = 50

// tagList parses a Tag.N.Key / Tag.N.Value list under prefix.
func tagList(form url.Values, prefix string) ([]ec2Tag, error) {
	var out []ec2Tag
	for j := 1; ; j++ {
		p := prefix + "." + strconv.Itoa(j) + "."
		if !form.Has(p + "Key") {
			break
		}
		key := form.Get(p + "Key")
		switch {
		case key == "" || len(key) > 128:
			return nil, ec2Err("InvalidParameterValue", "Tag key must be 1 to 128 characters, got %q", key)
		case strings.HasPrefix(strings.ToLower(key), "aws:"):
			return nil, ec2Err("InvalidParameterValue", "Tag keys starting with 'aws:' are reserved for internal use")
		case len(form.Get(p+"Value")) > 256:
			return nil, ec2Err("InvalidParameterValue", "Tag value of key %q exceeds 256 characters", key)
		}
		out = setTags(out, []ec2Tag{{Key: key, Value: form.Get(p + "Value")}})
	}
	if len(out) > maxTags {
		return nil, ec2Err("TagLimitExceeded", "The maximum number of Tags for a resource has been reached (%d).", maxTags)
	}
	return out, nil
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

// tagFilter answers tag:<key>, tag-key and tag-value filters from tags.
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
	switch name {
	case "tag-key", "tag-value":
		var out []string
		for _, t := range tags {
			out = append(out, cond(name == "tag-key", t.Key, t.Value))
		}
		return out, true
	}
	return nil, false
}

func cond[T any](ok bool, a, b T) T {
	if ok {
		return a
	}
	return b
}

// ---- shapes ----

type ec2Tag struct {
	Key   string `xml:"key"`
	Value string `xml:"value"`
}

func ec2Timestamp(t time.Time) string { return t.UTC().Format(ec2Time) }

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
	ClientToken    string               `xml:"clientToken,omitempty"`
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

func ec2State(name string) ec2InstanceState {
	return ec2InstanceState{Code: ec2StateCodes[name], Name: name}
}

// instanceXML renders an instance as DescribeInstances and RunInstances
// do. A terminated instance has neither an address nor volumes.
func instanceXML(v instanceView) ec2Instance {
	in := ec2Instance{
		InstanceID:     v.id,
		ImageID:        v.imageID,
		State:          ec2State(v.state),
		InstanceType:   v.itype,
		LaunchTime:     ec2Timestamp(v.launched),
		Placement:      ec2Placement{AvailabilityZone: v.az, Tenancy: "default"},
		Architecture:   "x86_64",
		RootDeviceType: "ebs",
		ClientToken:    v.clientToken,
		Tags:           v.tags,
	}
	if v.state != InstanceTerminated {
		in.PrivateDNSName = "ip-" + strings.ReplaceAll(v.privateIP, ".", "-") + ".ec2.internal"
		in.PrivateIP = v.privateIP
	}
	for _, a := range v.attachments {
		in.BlockDevices = append(in.BlockDevices, ec2BlockDeviceItem{DeviceName: a.device, EBS: ec2InstanceEBS{
			VolumeID: a.volumeID, Status: a.state, AttachTime: ec2Timestamp(a.at), DeleteOnTermination: a.deleteOnTermination,
		}})
	}
	return in
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
	MultiAttach      bool            `xml:"multiAttachEnabled"`
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

func attachmentXML(a attachmentView) ec2Attachment {
	return ec2Attachment{VolumeID: a.volumeID, InstanceID: a.instanceID, Device: a.device, Status: a.state,
		AttachTime: ec2Timestamp(a.at), DeleteOnTermination: a.deleteOnTermination}
}

// volumeXML renders a volume as DescribeVolumes and CreateVolume do.
func volumeXML(v volumeView) ec2Volume {
	out := ec2Volume{
		VolumeID:         v.id,
		Size:             v.sizeGiB,
		AvailabilityZone: v.az,
		Status:           v.state,
		CreateTime:       ec2Timestamp(v.created),
		VolumeType:       v.volType,
		Iops:             v.iops,
		Throughput:       v.tput,
		Tags:             v.tags,
	}
	if v.att != nil {
		out.Attachments = []ec2Attachment{attachmentXML(*v.att)}
	}
	return out
}
