package localfleet

import (
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
)

// What the fleet's EC2 offers: its zones, and every type in each.
func TestZonesAndInstanceTypeOfferings(t *testing.T) {
	_, cl := newHandlerFleet(t)
	ctx := unitContext(t)
	zones, err := cl.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{
		Filters: []ec2types.Filter{{Name: aws.String("state"), Values: []string{"available"}}}})
	require.NoError(t, err)
	var names []string
	for _, z := range zones.AvailabilityZones {
		names = append(names, aws.ToString(z.ZoneName))
		assert.Equal(t, AWSRegion, aws.ToString(z.RegionName))
	}
	assert.Equal(t, []string{"us-east-1a", "us-east-1b", "us-east-1c"}, names)
	_, err = cl.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{ZoneNames: []string{"us-east-1z"}})
	assert.Equal(t, "InvalidParameterValue", apiCode(err))

	offers, err := cl.DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{
		LocationType: ec2types.LocationTypeAvailabilityZone,
		Filters:      []ec2types.Filter{{Name: aws.String("instance-type"), Values: []string{"m5.xlarge", "m9.mega"}}}})
	require.NoError(t, err)
	var where []string
	for _, o := range offers.InstanceTypeOfferings {
		assert.Equal(t, ec2types.InstanceTypeM5Xlarge, o.InstanceType, "an unknown type is offered nowhere")
		where = append(where, aws.ToString(o.Location))
	}
	slices.Sort(where)
	assert.Equal(t, []string{"us-east-1a", "us-east-1b", "us-east-1c"}, where)
}

// A ZooKeeper node takes kfleet-ConfigureZooKeeper — once: the same
// configuration again changes nothing — and answers with the ensemble's
// address; a broker's host, another cluster's node or a myid outside the
// ensemble is refused.
func TestConfigureZooKeeperNode(t *testing.T) {
	f, cl := newHandlerFleet(t)
	ctx := unitContext(t)
	launch := func(role string, tags ...string) string {
		out, err := cl.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-0123456789abcdef0"), InstanceType: ec2types.InstanceTypeT3Medium,
			MinCount: aws.Int32(1), MaxCount: aws.Int32(1), TagSpecifications: []ec2types.TagSpecification{tagSpec(ec2types.ResourceTypeInstance,
				append([]string{cloud.TagCluster, "zk1", cloud.TagRole, role}, tags...)...)}})
		require.NoError(t, err)
		return aws.ToString(out.Instances[0].InstanceId)
	}
	node, broker := launch(cloud.RoleZooKeeper, cloud.TagZooKeeperID, "1"), launch(cloud.RoleBroker, cloud.TagBrokerID, "1")
	params := func(cluster, myID, servers string) func(string) string {
		return func(name string) string {
			return map[string]string{cloud.ParamClusterID: cluster, cloud.ParamMyID: myID, cloud.ParamServers: servers}[name]
		}
	}
	out, err := f.configureZooKeeper(node, params("zk1", "1", "1=10.0.1.5,2=10.0.2.6,3=10.0.3.7"), "test")
	require.NoError(t, err)
	assert.Contains(t, out, "server.2=10.0.2.6:2888:3888\n")
	assert.Contains(t, out, "zoo.cfg written")
	assert.Equal(t, f.opts.ZooKeeper, cloud.ZooKeeperClientAddress(out))
	out, err = f.configureZooKeeper(node, params("zk1", "1", "1=10.0.1.5,2=10.0.2.6,3=10.0.3.7"), "test")
	require.NoError(t, err)
	assert.Contains(t, out, "zookeeper unchanged and running")
	configured := 0
	for _, e := range f.Audit("zk1") {
		if e.Kind == EventZooKeeperConfigured {
			configured++
		}
	}
	assert.Equal(t, 1, configured, "configured once")

	for _, bad := range []struct {
		instance string
		p        func(string) string
		want     string
	}{
		{broker, params("zk1", "1", "1=a"), "no ZooKeeper node"},
		{node, params("other", "1", "1=a"), `belongs to cluster "zk1"`},
		{node, params("zk1", "4", "1=a,2=b,3=c"), "myid 4 is not among"},
		{node, params("zk1", "1", "1=a,1=b"), "listed twice"},
	} {
		_, err := f.configureZooKeeper(bad.instance, bad.p, "test")
		require.Error(t, err)
		assert.True(t, strings.Contains(err.Error(), bad.want), "%v: want %q", err, bad.want)
	}
}
