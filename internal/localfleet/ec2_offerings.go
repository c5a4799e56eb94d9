package localfleet

import (
	"encoding/xml"
	"fmt"
	"net/url"
	"slices"
)

// DescribeAvailabilityZones and DescribeInstanceTypeOfferings: what the
// fleet's EC2 offers (EC2Config's zones, and every instance type in every
// zone), so a provisioning checks its plan against the account before it
// launches anything, as it would on AWS.

type describeAvailabilityZonesResponse struct {
	XMLName xml.Name `xml:"DescribeAvailabilityZonesResponse"`
	ec2Envelope
	Zones []ec2Zone `xml:"availabilityZoneInfo>item"`
}

type ec2Zone struct {
	ZoneName    string `xml:"zoneName"`
	ZoneID      string `xml:"zoneId"`
	ZoneState   string `xml:"zoneState"`
	RegionName  string `xml:"regionName"`
	ZoneType    string `xml:"zoneType"`
	OptInStatus string `xml:"optInStatus"`
	GroupName   string `xml:"groupName"`
}

func (s *ec2Service) describeAvailabilityZones(form url.Values) (ec2Response, error) {
	names := listParam(form, "ZoneName")
	fs := filters(form)
	out := &describeAvailabilityZonesResponse{}
	for i, az := range s.f.ec2.AvailabilityZones {
		z := ec2Zone{ZoneName: az, ZoneID: fmt.Sprintf("use1-az%d", i+1), ZoneState: "available", RegionName: AWSRegion,
			ZoneType: "availability-zone", OptInStatus: "opt-in-not-required", GroupName: AWSRegion}
		if len(names) > 0 && !slices.Contains(names, az) {
			continue
		}
		ok, err := matchAll(fs, func(name string) ([]string, bool) {
			switch name {
			case "zone-name":
				return []string{z.ZoneName}, true
			case "zone-id":
				return []string{z.ZoneID}, true
			case "state":
				return []string{z.ZoneState}, true
			case "region-name":
				return []string{z.RegionName}, true
			case "zone-type":
				return []string{z.ZoneType}, true
			}
			return nil, false
		})
		if err != nil {
			return nil, err
		}
		if ok {
			out.Zones = append(out.Zones, z)
		}
	}
	for _, n := range names {
		if !slices.Contains(s.f.ec2.AvailabilityZones, n) {
			return nil, ec2Err("InvalidParameterValue", "The zone '%s' does not exist in the region %s", n, AWSRegion)
		}
	}
	return out, nil
}

type describeInstanceTypeOfferingsResponse struct {
	XMLName xml.Name `xml:"DescribeInstanceTypeOfferingsResponse"`
	ec2Envelope
	Offerings []ec2Offering `xml:"instanceTypeOfferingSet>item"`
}

type ec2Offering struct {
	InstanceType string `xml:"instanceType"`
	LocationType string `xml:"locationType"`
	Location     string `xml:"location"`
}

// describeInstanceTypeOfferings offers every type the fleet launches in
// every zone (LocationType availability-zone), or in the region (region,
// EC2's default). The result is small: it is not paged.
func (s *ec2Service) describeInstanceTypeOfferings(form url.Values) (ec2Response, error) {
	locType := form.Get("LocationType")
	var locations []string
	switch locType {
	case "", "region":
		locType, locations = "region", []string{AWSRegion}
	case "availability-zone":
		locations = s.f.ec2.AvailabilityZones
	default:
		return nil, ec2Err("InvalidParameterValue", "The location type '%s' is not supported (region or availability-zone)", locType)
	}
	fs := filters(form)
	out := &describeInstanceTypeOfferingsResponse{}
	for _, loc := range locations {
		for _, it := range s.f.ec2.InstanceTypes {
			o := ec2Offering{InstanceType: it, LocationType: locType, Location: loc}
			ok, err := matchAll(fs, func(name string) ([]string, bool) {
				switch name {
				case "instance-type":
					return []string{o.InstanceType}, true
				case "location":
					return []string{o.Location}, true
				}
				return nil, false
			})
			if err != nil {
				return nil, err
			}
			if ok {
				out.Offerings = append(out.Offerings, o)
			}
		}
	}
	return out, nil
}
