package cloud

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// What the account offers, asked before anything is launched: a plan that
// names a zone the region lacks, or an instance type a zone does not
// offer, is refused up front rather than failing half-way through a
// provisioning with some hosts already running.

// AvailabilityZones returns the names of the region's zones that are
// available, in EC2's order.
func (e *EC2) AvailabilityZones(ctx context.Context) ([]string, error) {
	out, err := e.client.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{
		Filters: []ec2types.Filter{{Name: aws.String("state"), Values: []string{"available"}}},
	})
	if err != nil {
		return nil, fmt.Errorf("describe availability zones: %w", classify(err))
	}
	zones := make([]string, 0, len(out.AvailabilityZones))
	for _, z := range out.AvailabilityZones {
		zones = append(zones, aws.ToString(z.ZoneName))
	}
	return zones, nil
}

// InstanceTypeZones returns, for each of types, the zones that offer it
// (a type no zone offers, or EC2 does not know, is absent).
func (e *EC2) InstanceTypeZones(ctx context.Context, types []string) (map[string][]string, error) {
	out := map[string][]string{}
	if len(types) == 0 {
		return out, nil
	}
	p := ec2.NewDescribeInstanceTypeOfferingsPaginator(e.client, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters:      []ec2types.Filter{{Name: aws.String("instance-type"), Values: types}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describe instance type offerings of %v: %w", types, classify(err))
		}
		for _, o := range page.InstanceTypeOfferings {
			t, zone := string(o.InstanceType), aws.ToString(o.Location)
			if !slices.Contains(out[t], zone) {
				out[t] = append(out[t], zone)
			}
		}
	}
	return out, nil
}
