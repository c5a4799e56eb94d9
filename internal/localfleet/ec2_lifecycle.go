package localfleet

import (
	"cmp"
	"encoding/xml"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// RunInstances, TerminateInstances, StopInstances, StartInstances and
// CreateTags, with EC2's rules and error codes. A launched instance is a
// bare host: it becomes a broker when kfleet-ConfigureBroker and
// kfleet-StartBroker run on it (provision.go).

var (
	amiPattern        = regexp.MustCompile(`^ami-[0-9a-f]{8}([0-9a-f]{9})?$`)
	instanceIDPattern = regexp.MustCompile(`^i-[0-9a-f]{8}([0-9a-f]{9})?$`)
	volumeIDPattern   = regexp.MustCompile(`^vol-[0-9a-f]{8}([0-9a-f]{9})?$`)
)

// maxInstancesPerLaunch is the fleet's instance limit per RunInstances: a
// launch of more runs this many when MinCount allows, as AWS launches
// what capacity allows between MinCount and MaxCount.
const maxInstancesPerLaunch = 20

// awsDefaultInstanceType is what RunInstances launches without an
// InstanceType; the fleet refuses it like any type it does not know.
const awsDefaultInstanceType = "m1.small"

type runInstancesResponse struct {
	XMLName xml.Name `xml:"RunInstancesResponse"`
	ec2Envelope
	ReservationID string        `xml:"reservationId"`
	OwnerID       string        `xml:"ownerId"`
	Groups        []struct{}    `xml:"groupSet>item"`
	Instances     []ec2Instance `xml:"instancesSet>item"`
}

// launchSpec is a validated RunInstances.
type launchSpec struct {
	imageID, itype, az string
	count              int
	tags               []ec2Tag
	token, fp          string
}

func (s *ec2Service) runInstances(call ec2Call) (ec2Response, error) {
	spec, err := s.parseLaunch(call)
	if err != nil {
		return nil, err
	}
	if call.dryRun() {
		return nil, errDryRun
	}
	views, replay, err := s.f.hosts.launch(spec)
	if err != nil {
		return nil, err
	}
	if !replay {
		who := callerOf(call, spec.tags)
		for _, v := range views {
			cluster, broker := tagOwner(v.tags)
			s.f.record(Event{Cluster: cluster, Broker: broker, Kind: EventInstanceLaunched, Who: who, Instance: v.id,
				Detail: fmt.Sprintf("instance %s (%s, %s, %s) launched in %s, reservation %s, tags %s",
					v.id, v.itype, v.imageID, cond(spec.token == "", "no client token", "client token "+spec.token),
					v.az, v.reservationID, tagsString(v.tags))})
			s.f.checkDuplicates(v.id)
			s.f.completeLaunch(v.id, who)
		}
	}
	out := &runInstancesResponse{ReservationID: views[0].reservationID, OwnerID: ec2OwnerID}
	for _, v := range views {
		out.Instances = append(out.Instances, instanceXML(v))
	}
	return out, nil
}

func (s *ec2Service) parseLaunch(call ec2Call) (launchSpec, error) {
	form := call.form
	var spec launchSpec
	var err error
	if spec.imageID, err = required(form, "ImageId"); err != nil {
		return spec, err
	}
	if !amiPattern.MatchString(spec.imageID) {
		return spec, ec2Err("InvalidAMIID.Malformed", "Invalid id: \"%s\" (expecting \"ami-...\")", spec.imageID)
	}
	spec.itype = cmp.Or(form.Get("InstanceType"), awsDefaultInstanceType)
	if !slices.Contains(s.f.ec2.InstanceTypes, spec.itype) {
		return spec, ec2Err("InvalidParameterValue", "Invalid value '%s' for InstanceType.", spec.itype)
	}
	minCount, err := intParam(form, "MinCount", 0)
	if err != nil {
		return spec, err
	}
	maxCount, err := intParam(form, "MaxCount", 0)
	if err != nil {
		return spec, err
	}
	switch {
	case !form.Has("MinCount"):
		return spec, ec2Err("MissingParameter", "The request must contain the parameter MinCount")
	case !form.Has("MaxCount"):
		return spec, ec2Err("MissingParameter", "The request must contain the parameter MaxCount")
	case minCount < 1:
		return spec, ec2Err("InvalidParameterValue", "Value (%d) for parameter minCount is invalid. Expected a positive integer.", minCount)
	case maxCount < minCount:
		return spec, ec2Err("InvalidParameterValue", "Value (%d) for parameter maxCount is invalid. Expected a value greater than or equal to minCount (%d).", maxCount, minCount)
	case minCount > maxInstancesPerLaunch:
		return spec, ec2Err("InstanceLimitExceeded", "You have requested more instances (%d) than your current instance limit of %d allows for the specified instance type.", minCount, maxInstancesPerLaunch)
	}
	spec.count = min(maxCount, maxInstancesPerLaunch)
	spec.az = cmp.Or(form.Get("Placement.AvailabilityZone"), s.f.ec2.AvailabilityZones[0])
	if !slices.Contains(s.f.ec2.AvailabilityZones, spec.az) {
		return spec, ec2Err("InvalidParameterValue", "Invalid availability zone: [%s]", spec.az)
	}
	// RunInstances may tag what it creates besides the instance: the root
	// volume and the network interface, which the fleet does not model.
	if spec.tags, err = tagSpecs(form, "instance", "volume", "network-interface"); err != nil {
		return spec, err
	}
	if spec.token, err = clientToken(form); err != nil {
		return spec, err
	}
	spec.fp = fingerprint(form)
	return spec, nil
}

// launch creates spec's instances, pending, in one reservation; a token
// already used returns that reservation's instances as they are now
// (replay). Subnets, security groups, key pairs, instance profiles and
// user data are accepted and not modeled.
func (h *hosts) launch(spec launchSpec) (_ []instanceView, replay bool, _ error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids, replay, err := h.tokenLocked("RunInstances", spec.token, spec.fp)
	if err != nil {
		return nil, false, err
	}
	if !replay {
		if err := h.capacityLocked(spec.az); err != nil {
			return nil, false, insufficientCapacity(spec.itype, spec.az)
		}
		reservation, t := newResourceID("r"), h.now()
		for range spec.count {
			in := &instance{
				id: newResourceID("i"), reservationID: reservation, imageID: spec.imageID, itype: spec.itype,
				az: spec.az, privateIP: proxyHost, launched: t, clientToken: spec.token,
				state: InstancePending, tags: slices.Clone(spec.tags),
			}
			h.addInstanceLocked(in)
			ids = append(ids, in.id)
		}
		h.rememberTokenLocked("RunInstances", spec.token, spec.fp, ids)
	}
	out := make([]instanceView, 0, len(ids))
	for _, id := range ids {
		out = append(out, h.instanceViewLocked(h.byID[id]))
	}
	return out, replay, nil
}

// completeLaunch makes a launched instance running after the fleet's
// pending time, unless something changed it meanwhile (a terminate).
func (f *Fleet) completeLaunch(instanceID, who string) {
	f.hosts.mu.Lock()
	gen := f.hosts.byID[instanceID].gen
	f.hosts.mu.Unlock()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		_ = sleep(f.life, f.ec2.Timing.Pending)
		f.finishInstance(instanceID, launchTransition, gen, InstancePending, who)
	}()
}

func tagsString(tags []ec2Tag) string {
	parts := make([]string, len(tags))
	for i, t := range tags {
		parts[i] = t.Key + "=" + t.Value
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// ---- TerminateInstances, StopInstances, StartInstances ----

type instanceStateChange struct {
	InstanceID    string           `xml:"instanceId"`
	CurrentState  ec2InstanceState `xml:"currentState"`
	PreviousState ec2InstanceState `xml:"previousState"`
}

type changeInstancesResponse struct {
	XMLName xml.Name
	ec2Envelope
	Instances []instanceStateChange `xml:"instancesSet>item"`
}

// changeInstances stops, starts or terminates instances. Every instance
// is checked first: one unknown, or in a state the change cannot start
// from, refuses the whole call, as on EC2. Each answer is the instance's
// state before and now (the intermediate state, or the same state when
// there was nothing to do).
func (s *ec2Service) changeInstances(action string, call ec2Call) (ec2Response, error) {
	tr := map[string]instanceTransition{
		"TerminateInstances": terminateTransition, "StopInstances": stopTransition, "StartInstances": startTransition,
	}[action]
	ids := listParam(call.form, "InstanceId")
	if len(ids) == 0 {
		return nil, ec2Err("MissingParameter", "The request must contain the parameter InstanceId")
	}
	for _, id := range ids {
		if err := s.f.hosts.checkTransition(id, tr); err != nil {
			return nil, instanceError(id, tr, err)
		}
	}
	if call.dryRun() {
		return nil, errDryRun
	}
	who := cmp.Or(call.who, "ec2")
	out := &changeInstancesResponse{XMLName: xml.Name{Local: action + "Response"}}
	for _, id := range ids {
		prev, begun, err := s.f.changeInstance(id, tr, who, false)
		if err != nil && !errors.Is(err, ErrClosed) {
			return nil, instanceError(id, tr, err)
		}
		cur := prev
		if begun {
			cur = tr.via
		}
		out.Instances = append(out.Instances, instanceStateChange{InstanceID: id, CurrentState: ec2State(cur), PreviousState: ec2State(prev)})
	}
	return out, nil
}

// instanceError maps the hosts model's errors to EC2's.
func instanceError(id string, tr instanceTransition, err error) error {
	switch {
	case errors.Is(err, ErrUnknownInstance):
		return instanceNotFound(id)
	case errors.Is(err, errIncorrectInstanceState):
		return ec2Err("IncorrectInstanceState", "The instance '%s' is not in a state from which it can be %s.", id, tr.verb)
	}
	if z := (*zoneFull)(nil); errors.As(err, &z) {
		return insufficientCapacity("", z.az)
	}
	return err
}

// ---- CreateTags ----

func (s *ec2Service) createTags(call ec2Call) (ec2Response, error) {
	ids := listParam(call.form, "ResourceId")
	if len(ids) == 0 {
		return nil, ec2Err("MissingParameter", "The request must contain the parameter ResourceId")
	}
	tags, err := tagList(call.form, "Tag")
	if err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		return nil, ec2Err("MissingParameter", "The request must contain the parameter Tag")
	}
	for _, id := range ids {
		if err := s.f.hosts.checkTaggable(id); err != nil {
			return nil, err
		}
	}
	if call.dryRun() {
		return nil, errDryRun
	}
	who := callerOf(call, tags)
	for _, id := range ids {
		cluster, broker, err := s.f.hosts.tag(id, tags)
		if err != nil {
			return nil, err
		}
		ev := Event{Cluster: cluster, Broker: broker, Kind: EventTagged, Who: who,
			Detail: fmt.Sprintf("%s tagged %s", id, tagsString(tags))}
		if strings.HasPrefix(id, "vol-") {
			ev.Volume = id
		} else {
			ev.Instance = id
		}
		s.f.record(ev)
		if ev.Instance != "" {
			s.f.checkDuplicates(id)
		}
	}
	return returnTrue("CreateTags"), nil
}

// checkTaggable reports whether id names an instance or a volume.
func (h *hosts) checkTaggable(id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.byID[id]; ok {
		return nil
	}
	if _, ok := h.byVolume[id]; ok {
		return nil
	}
	switch {
	case strings.HasPrefix(id, "i-"):
		return instanceNotFound(id)
	case strings.HasPrefix(id, "vol-"):
		return volumeNotFound(id)
	}
	return ec2Err("InvalidID", "The ID '%s' is not valid", id)
}

// tag merges tags into an instance's or a volume's and returns the
// cluster and broker its tags name now.
func (h *hosts) tag(id string, tags []ec2Tag) (cluster string, broker int32, _ error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	have := func() *[]ec2Tag {
		if in, ok := h.byID[id]; ok {
			return &in.tags
		}
		if v, ok := h.byVolume[id]; ok {
			return &v.tags
		}
		return nil
	}()
	if have == nil {
		return "", 0, ec2Err("InvalidID", "The ID '%s' is not valid", id)
	}
	merged := setTags(slices.Clone(*have), tags)
	if len(merged) > maxTags {
		return "", 0, ec2Err("TagLimitExceeded", "The maximum number of Tags for a resource has been reached (%d).", maxTags)
	}
	*have = merged
	cluster, broker = tagOwner(merged)
	return cluster, broker, nil
}
