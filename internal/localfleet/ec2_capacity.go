package localfleet

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
)

// Capacity: an availability zone can run out of instances, as AWS's do
// (InsufficientInstanceCapacity). While a zone has none, RunInstances
// there and StartInstances of an instance there are refused with EC2's
// code, and nothing changes; a launch replayed with its ClientToken still
// answers what it launched. kfleet's host replacement meets it when it
// starts a stopped instance or launches a new one in the broker's zone.

// EventZoneCapacity: a zone's capacity was taken away or given back
// (Detail says which); in the fleet's EC2 audit, with no cluster.
const EventZoneCapacity EventKind = "zone-capacity"

// errNoCapacity: the instance's zone has no capacity to start it.
var errNoCapacity = errors.New("insufficient instance capacity")

// zoneFull is errNoCapacity in a zone.
type zoneFull struct{ az string }

func (z *zoneFull) Error() string        { return fmt.Sprintf("zone %s: %v", z.az, errNoCapacity) }
func (z *zoneFull) Is(target error) bool { return target == errNoCapacity }

// insufficientCapacity is EC2's refusal for itype (empty when unknown) in az.
func insufficientCapacity(itype, az string) error {
	return ec2Err("InsufficientInstanceCapacity",
		"We currently do not have sufficient %s capacity in the Availability Zone you requested (%s). Our system will be working on provisioning additional capacity.",
		cmp.Or(itype, "instance"), az)
}

// SetZoneCapacity takes a zone's capacity away (available false) or gives
// it back, audited as who's.
func (f *Fleet) SetZoneCapacity(az string, available bool, who string) error {
	if !slices.Contains(f.ec2.AvailabilityZones, az) {
		return fmt.Errorf("localfleet: zone %q is not one of the fleet's %v: %w", az, f.ec2.AvailabilityZones, ErrBadFault)
	}
	f.hosts.mu.Lock()
	if available {
		delete(f.hosts.noCapacity, az)
	} else {
		f.hosts.noCapacity[az] = true
	}
	f.hosts.mu.Unlock()
	f.record(Event{Kind: EventZoneCapacity, Who: cmp.Or(who, "fleet"),
		Detail: fmt.Sprintf("zone %s: capacity %s", az, cond(available, "available", "exhausted (InsufficientInstanceCapacity)"))})
	return nil
}

// capacityLocked refuses a launch or start in az while it has no
// capacity. h.mu must be held.
func (h *hosts) capacityLocked(az string) error {
	if h.noCapacity[az] {
		return &zoneFull{az: az}
	}
	return nil
}

// zoneCapacityHandler serves POST /v1/ec2/zones/{az}/capacity?available=false|true.
func (f *Fleet) zoneCapacityHandler(w http.ResponseWriter, r *http.Request) {
	available, err := strconv.ParseBool(r.URL.Query().Get("available"))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "available: want true or false"})
		return
	}
	if err := f.SetZoneCapacity(r.PathValue("az"), available, r.Header.Get(WhoHeader)); err != nil {
		writeJSON(w, http.StatusBadRequest, apiError{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"zone": r.PathValue("az"), "available": available})
}
