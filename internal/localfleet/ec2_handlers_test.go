package localfleet

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
)

// The EC2 handlers alone, driven by the real aws-sdk-go-v2 client over
// HTTP: a fleet that runs no cluster (no ZooKeeper), only its hosts model,
// with the configuration's hosts of one 3-broker cluster over 3 zones.

// unitTiming keeps EC2's intermediate states short but observable.
var unitTiming = EC2Timing{
	Pending: 100 * time.Millisecond, Stopping: 100 * time.Millisecond, ShuttingDown: 100 * time.Millisecond,
	VolumeCreating: 100 * time.Millisecond, Attaching: 100 * time.Millisecond, Detaching: 100 * time.Millisecond,
}

func newHandlerFleet(t *testing.T) (*Fleet, *ec2.Client) {
	t.Helper()
	f, err := newFleet(Config{
		Clusters: []ClusterConfig{{ID: "local-a", Brokers: 3, Racks: 3}},
		EC2:      EC2Config{AvailabilityZones: []string{"us-east-1a", "us-east-1b", "us-east-1c"}, Timing: unitTiming},
	}, Options{Logger: zerolog.Nop()})
	require.NoError(t, err)
	srv := httptest.NewServer(f.handler())
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, f.Close())
	})
	cl := ec2.NewFromConfig(aws.Config{
		Region:      AWSRegion,
		Credentials: credentials.NewStaticCredentialsProvider(AWSAccessKeyID, AWSSecretAccessKey, ""),
	}, func(o *ec2.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	return f, cl
}

func unitContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// apiCode is the AWS error code of err ("" for none).
func apiCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func tagSpec(typ ec2types.ResourceType, kv ...string) ec2types.TagSpecification {
	ts := ec2types.TagSpecification{ResourceType: typ}
	for i := 0; i+1 < len(kv); i += 2 {
		ts.Tags = append(ts.Tags, ec2types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return ts
}

// brokerLaunch is a RunInstances of one host for broker id of cluster c.
func brokerLaunch(c, id, az, token string) *ec2.RunInstancesInput {
	return &ec2.RunInstancesInput{
		ImageId: aws.String("ami-0123456789abcdef0"), InstanceType: ec2types.InstanceTypeM5Xlarge,
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		Placement:   &ec2types.Placement{AvailabilityZone: aws.String(az)},
		ClientToken: aws.String(token),
		TagSpecifications: []ec2types.TagSpecification{tagSpec(ec2types.ResourceTypeInstance,
			cloud.TagCluster, c, cloud.TagBrokerID, id, cloud.TagRole, cloud.RoleBroker)},
	}
}

func TestRunInstancesRules(t *testing.T) {
	_, cl := newHandlerFleet(t)
	ctx := unitContext(t)
	ok := func() *ec2.RunInstancesInput { return brokerLaunch("c1", "1", "us-east-1a", "") }
	tests := []struct {
		name   string
		change func(in *ec2.RunInstancesInput)
		code   string
	}{
		{"malformed image", func(in *ec2.RunInstancesInput) { in.ImageId = aws.String("ubuntu") }, "InvalidAMIID.Malformed"},
		{"unknown instance type", func(in *ec2.RunInstancesInput) { in.InstanceType = "m9.huge" }, "InvalidParameterValue"},
		{"no instance type is m1.small, which the fleet does not run", func(in *ec2.RunInstancesInput) { in.InstanceType = "" }, "InvalidParameterValue"},
		{"zone outside the fleet", func(in *ec2.RunInstancesInput) { in.Placement.AvailabilityZone = aws.String("us-east-1f") }, "InvalidParameterValue"},
		{"min above max", func(in *ec2.RunInstancesInput) { in.MinCount = aws.Int32(2) }, "InvalidParameterValue"},
		{"min above the limit", func(in *ec2.RunInstancesInput) { in.MinCount, in.MaxCount = aws.Int32(21), aws.Int32(21) }, "InstanceLimitExceeded"},
		{"reserved tag key", func(in *ec2.RunInstancesInput) {
			in.TagSpecifications = []ec2types.TagSpecification{tagSpec(ec2types.ResourceTypeInstance, "aws:owner", "me")}
		}, "InvalidParameterValue"},
		{"tags for a resource RunInstances does not create", func(in *ec2.RunInstancesInput) {
			in.TagSpecifications = []ec2types.TagSpecification{tagSpec(ec2types.ResourceTypeSnapshot, "a", "b")}
		}, "InvalidParameterValue"},
		{"token too long", func(in *ec2.RunInstancesInput) { in.ClientToken = aws.String(string(make([]byte, 65))) }, "InvalidParameterValue"},
		{"dry run", func(in *ec2.RunInstancesInput) { in.DryRun = aws.Bool(true) }, "DryRunOperation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok()
			tt.change(in)
			_, err := cl.RunInstances(ctx, in)
			require.Error(t, err)
			assert.Equal(t, tt.code, apiCode(err), "%v", err)
		})
	}
	all, err := cl.DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + cloud.TagCluster), Values: []string{"c1"}},
	}})
	require.NoError(t, err)
	assert.Empty(t, all.Reservations, "no refused launch launched anything")
}

func TestRunInstancesIdempotentAndLifecycle(t *testing.T) {
	f, cl := newHandlerFleet(t)
	ctx := unitContext(t)

	first, err := cl.RunInstances(ctx, brokerLaunch("c1", "1", "us-east-1b", "provision-c1-broker-1"))
	require.NoError(t, err)
	require.Len(t, first.Instances, 1)
	in := first.Instances[0]
	id := aws.ToString(in.InstanceId)
	assert.Regexp(t, `^i-[0-9a-f]{17}$`, id)
	assert.Equal(t, ec2types.InstanceStateNamePending, in.State.Name)
	assert.Equal(t, "us-east-1b", aws.ToString(in.Placement.AvailabilityZone))
	assert.Equal(t, "provision-c1-broker-1", aws.ToString(in.ClientToken))

	again, err := cl.RunInstances(ctx, brokerLaunch("c1", "1", "us-east-1b", "provision-c1-broker-1"))
	require.NoError(t, err)
	assert.Equal(t, aws.ToString(first.ReservationId), aws.ToString(again.ReservationId), "the same token is the same reservation")
	assert.Equal(t, id, aws.ToString(again.Instances[0].InstanceId))

	_, err = cl.RunInstances(ctx, brokerLaunch("c1", "1", "us-east-1c", "provision-c1-broker-1"))
	assert.Equal(t, "IdempotentParameterMismatch", apiCode(err), "the same token with another zone")

	require.Eventually(t, func() bool { return f.hosts.instanceState(id) == InstanceRunning }, 5*time.Second, 10*time.Millisecond)
	var launched []Event
	for _, e := range f.Audit("c1") {
		if e.Kind == EventInstanceLaunched {
			launched = append(launched, e)
		}
	}
	require.Len(t, launched, 1, "a replay launches nothing")
	assert.Equal(t, "client-token:provision-c1-broker-1", launched[0].Who)
	assert.Equal(t, int32(1), launched[0].Broker)
	assert.Empty(t, f.Violations("c1"))

	// Stop, start, terminate: EC2's answers and states.
	tests := []struct {
		name           string
		call           func() ([]ec2types.InstanceStateChange, error)
		prev, cur, end ec2types.InstanceStateName
	}{
		{"stop", func() ([]ec2types.InstanceStateChange, error) {
			out, err := cl.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
			return stateChanges(out, err, func(o *ec2.StopInstancesOutput) []ec2types.InstanceStateChange { return o.StoppingInstances })
		}, "running", "stopping", "stopped"},
		{"stop a stopped instance", func() ([]ec2types.InstanceStateChange, error) {
			out, err := cl.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
			return stateChanges(out, err, func(o *ec2.StopInstancesOutput) []ec2types.InstanceStateChange { return o.StoppingInstances })
		}, "stopped", "stopped", "stopped"},
		{"start", func() ([]ec2types.InstanceStateChange, error) {
			out, err := cl.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
			return stateChanges(out, err, func(o *ec2.StartInstancesOutput) []ec2types.InstanceStateChange { return o.StartingInstances })
		}, "stopped", "pending", "running"},
		{"terminate", func() ([]ec2types.InstanceStateChange, error) {
			out, err := cl.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
			return stateChanges(out, err, func(o *ec2.TerminateInstancesOutput) []ec2types.InstanceStateChange { return o.TerminatingInstances })
		}, "running", "shutting-down", "terminated"},
	}
	for _, tt := range tests {
		changes, err := tt.call()
		require.NoError(t, err, tt.name)
		require.Len(t, changes, 1, tt.name)
		assert.Equal(t, tt.prev, changes[0].PreviousState.Name, tt.name)
		assert.Equal(t, tt.cur, changes[0].CurrentState.Name, tt.name)
		require.Eventually(t, func() bool { return f.hosts.instanceState(id) == string(tt.end) }, 5*time.Second, 10*time.Millisecond, tt.name)
	}
	for _, call := range []func() error{
		func() error {
			_, err := cl.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{id}})
			return err
		},
		func() error {
			_, err := cl.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{id}})
			return err
		},
	} {
		assert.Equal(t, "IncorrectInstanceState", apiCode(call()), "a terminated instance neither starts nor stops")
	}
	_, err = cl.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
	assert.Equal(t, "InvalidInstanceID.NotFound", apiCode(err))
	_, err = cl.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"web-1"}})
	assert.Equal(t, "InvalidInstanceID.Malformed", apiCode(err))
}

func stateChanges[O any](out *O, err error, get func(*O) []ec2types.InstanceStateChange) ([]ec2types.InstanceStateChange, error) {
	if err != nil {
		return nil, err
	}
	return get(out), nil
}

// One broker with two live instances is a violation, whether a second
// launch, a start or a retag makes it so; a replacement launched after
// its predecessor is terminated is not.
func TestDuplicateInstanceViolation(t *testing.T) {
	f, cl := newHandlerFleet(t)
	ctx := unitContext(t)
	launch := func(id, token string) string {
		out, err := cl.RunInstances(ctx, brokerLaunch("c2", id, "us-east-1a", token))
		require.NoError(t, err)
		return aws.ToString(out.Instances[0].InstanceId)
	}
	a := launch("1", "c2-1-a")
	assert.Empty(t, f.Violations("c2"))
	b := launch("1", "c2-1-b") // a crash lost the first token: a second instance
	v := f.Violations("c2")
	require.Len(t, v, 1)
	assert.Equal(t, ViolationDuplicateInstance, v[0].Kind)
	assert.Contains(t, v[0].Detail, a)
	assert.Contains(t, v[0].Detail, b)
	assert.Contains(t, v[0].Detail, `broker 1 of cluster "c2"`)

	_, err := cl.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{a, b}})
	require.NoError(t, err)
	c := launch("1", "c2-1-c")
	require.Len(t, f.Violations("c2"), 1, "terminated instances are not live")

	other := launch("2", "c2-2-a")
	_, err = cl.CreateTags(ctx, &ec2.CreateTagsInput{Resources: []string{other},
		Tags: []ec2types.Tag{{Key: aws.String(cloud.TagBrokerID), Value: aws.String("1")}}})
	require.NoError(t, err)
	v = f.Violations("c2")
	require.Len(t, v, 2, "retagging broker 2's instance as broker 1's")
	assert.Contains(t, v[1].Detail, c)
	assert.Contains(t, v[1].Detail, other)

	zk := ec2types.TagSpecification{ResourceType: ec2types.ResourceTypeInstance, Tags: []ec2types.Tag{
		{Key: aws.String(cloud.TagCluster), Value: aws.String("c2")}, {Key: aws.String(cloud.TagRole), Value: aws.String(cloud.RoleZooKeeper)},
	}}
	in := brokerLaunch("c2", "", "us-east-1a", "")
	in.TagSpecifications, in.MinCount, in.MaxCount = []ec2types.TagSpecification{zk}, aws.Int32(3), aws.Int32(3)
	out, err := cl.RunInstances(ctx, in)
	require.NoError(t, err)
	assert.Len(t, out.Instances, 3, "one reservation of 3 ZooKeeper nodes")
	assert.Len(t, f.Violations("c2"), 2, "ZooKeeper nodes are no brokers")

	// The fleet API serves what it recorded for c2 before it runs c2.
	for path, want := range map[string]int{
		"/v1/clusters/c2/violations": http.StatusOK, "/v1/clusters/c2/audit": http.StatusOK,
		"/v1/ec2/audit": http.StatusOK, "/v1/clusters/nothing/audit": http.StatusNotFound,
	} {
		rec := httptest.NewRecorder()
		f.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		assert.Equal(t, want, rec.Code, path)
	}
	rec := httptest.NewRecorder()
	f.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/clusters/c2/violations", nil))
	var served []Violation
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &served))
	assert.Len(t, served, 2)
}

func TestVolumeRules(t *testing.T) {
	f, cl := newHandlerFleet(t)
	ctx := unitContext(t)
	create := func(az, token string, size int32) (*ec2.CreateVolumeOutput, error) {
		return cl.CreateVolume(ctx, &ec2.CreateVolumeInput{
			AvailabilityZone: aws.String(az), Size: aws.Int32(size), VolumeType: ec2types.VolumeTypeGp3,
			ClientToken:       aws.String(token),
			TagSpecifications: []ec2types.TagSpecification{tagSpec(ec2types.ResourceTypeVolume, cloud.TagCluster, "c3", cloud.TagBrokerID, "1", cloud.TagRole, cloud.RoleKafkaData)},
		})
	}

	t.Run("create refusals", func(t *testing.T) {
		tests := []struct {
			name string
			in   ec2.CreateVolumeInput
			code string
		}{
			{"unknown zone", ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1z"), Size: aws.Int32(10), VolumeType: "gp3"}, "InvalidZone.NotFound"},
			{"gp2, EC2's default", ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(10)}, "InvalidParameterValue"},
			{"no size", ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), VolumeType: "gp3"}, "MissingParameter"},
			{"too large", ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(16385), VolumeType: "gp3"}, "InvalidParameterValue"},
			{"iops above 500 per GiB", ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(10), VolumeType: "gp3", Iops: aws.Int32(6000)}, "InvalidParameterValue"},
			{"throughput above iops/4", ec2.CreateVolumeInput{AvailabilityZone: aws.String("us-east-1a"), Size: aws.Int32(100), VolumeType: "gp3", Throughput: aws.Int32(1000)}, "InvalidParameterValue"},
		}
		for _, tt := range tests {
			_, err := cl.CreateVolume(ctx, &tt.in)
			assert.Equal(t, tt.code, apiCode(err), "%s: %v", tt.name, err)
		}
	})

	launch := func(az, token string) string {
		out, err := cl.RunInstances(ctx, brokerLaunch("c3", "1", az, token))
		require.NoError(t, err)
		id := aws.ToString(out.Instances[0].InstanceId)
		require.Eventually(t, func() bool { return f.hosts.instanceState(id) == InstanceRunning }, 5*time.Second, 10*time.Millisecond)
		return id
	}
	inA := launch("us-east-1a", "c3-1-a")
	vol, err := create("us-east-1a", "c3-broker-1-data", 500)
	require.NoError(t, err)
	volID := aws.ToString(vol.VolumeId)
	assert.Equal(t, ec2types.VolumeStateCreating, vol.State)
	assert.Equal(t, int32(3000), aws.ToInt32(vol.Iops))
	again, err := create("us-east-1a", "c3-broker-1-data", 500)
	require.NoError(t, err)
	assert.Equal(t, volID, aws.ToString(again.VolumeId), "the same token is the same volume")
	_, err = create("us-east-1a", "c3-broker-1-data", 600)
	assert.Equal(t, "IdempotentParameterMismatch", apiCode(err))

	attach := func(vol, inst, dev string) error {
		_, err := cl.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: aws.String(vol), InstanceId: aws.String(inst), Device: aws.String(dev)})
		return err
	}
	volState := func(id string) (ec2types.VolumeState, string) {
		out, err := cl.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{id}})
		require.NoError(t, err)
		v := out.Volumes[0]
		if len(v.Attachments) == 0 {
			return v.State, ""
		}
		return v.State, string(v.Attachments[0].State)
	}

	assert.Equal(t, "IncorrectState", apiCode(attach(volID, inA, "/dev/xvdb")), "still creating")
	require.Eventually(t, func() bool { s, _ := volState(volID); return s == ec2types.VolumeStateAvailable }, 5*time.Second, 10*time.Millisecond)

	inB := launch("us-east-1b", "c3-1-b")
	tests := []struct {
		name string
		err  func() error
		code string
	}{
		{"another zone", func() error { return attach(volID, inB, "/dev/xvdb") }, "InvalidVolume.ZoneMismatch"},
		{"bad device", func() error { return attach(volID, inA, "/dev/sda1") }, "InvalidParameterValue"},
		{"unknown instance", func() error { return attach(volID, "i-0123456789abcdef0", "/dev/xvdb") }, "InvalidInstanceID.NotFound"},
		{"unknown volume", func() error { return attach("vol-0123456789abcdef0", inA, "/dev/xvdb") }, "InvalidVolume.NotFound"},
		{"detach a detached volume", func() error {
			_, err := cl.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(volID)})
			return err
		}, "IncorrectState"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.code, apiCode(tt.err()), tt.name)
	}

	require.NoError(t, attach(volID, inA, "/dev/xvdb"))
	st, att := volState(volID)
	assert.Equal(t, ec2types.VolumeStateInUse, st)
	assert.Equal(t, "attaching", att)
	require.Eventually(t, func() bool { _, a := volState(volID); return a == "attached" }, 5*time.Second, 10*time.Millisecond)

	other, err := create("us-east-1a", "c3-broker-1-other", 10)
	require.NoError(t, err)
	otherID := aws.ToString(other.VolumeId)
	require.Eventually(t, func() bool { s, _ := volState(otherID); return s == ec2types.VolumeStateAvailable }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, "InvalidParameterValue", apiCode(attach(otherID, inA, "/dev/xvdb")), "the device is taken")
	assert.Equal(t, "VolumeInUse", apiCode(attach(volID, launch("us-east-1a", "c3-1-c"), "/dev/xvdb")), "attached volumes attach once")
	_, err = cl.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(volID)})
	assert.Equal(t, "VolumeInUse", apiCode(err))

	// Filters: tag, tag-key, state, zone, attachment.
	filtered := func(fs ...ec2types.Filter) []string {
		out, err := cl.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: fs})
		require.NoError(t, err)
		var ids []string
		for _, v := range out.Volumes {
			ids = append(ids, aws.ToString(v.VolumeId))
		}
		return ids
	}
	filter := func(name string, values ...string) ec2types.Filter {
		return ec2types.Filter{Name: aws.String(name), Values: values}
	}
	assert.Equal(t, []string{volID, otherID}, filtered(filter("tag:"+cloud.TagCluster, "c3")))
	assert.Equal(t, []string{volID}, filtered(filter("tag-key", cloud.TagBrokerID), filter("tag:"+cloud.TagCluster, "c3"), filter("attachment.status", "attached")))
	assert.Len(t, filtered(filter("attachment.status", "attached")), 4, "the configured brokers' 3, and this one")
	assert.Equal(t, []string{otherID}, filtered(filter("tag:"+cloud.TagCluster, "c3"), filter("status", "available")))
	assert.Equal(t, []string{volID}, filtered(filter("attachment.instance-id", inA)))
	assert.Empty(t, filtered(filter("tag:"+cloud.TagCluster, "c3"), filter("availability-zone", "us-east-1b")))

	_, err = cl.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(volID), InstanceId: aws.String(inB)})
	assert.Equal(t, "InvalidAttachment.NotFound", apiCode(err))
	det, err := cl.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: aws.String(volID)})
	require.NoError(t, err)
	assert.Equal(t, ec2types.VolumeAttachmentStateDetaching, det.State, "no broker uses it: it detaches")
	require.Eventually(t, func() bool { s, _ := volState(volID); return s == ec2types.VolumeStateAvailable }, 5*time.Second, 10*time.Millisecond)
	_, err = cl.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: aws.String(volID)})
	require.NoError(t, err)
	_, err = cl.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{volID}})
	assert.Equal(t, "InvalidVolume.NotFound", apiCode(err), "a deleted volume is gone")

	// Terminating an instance detaches its volumes; they survive it.
	require.NoError(t, attach(otherID, inA, "/dev/xvdc"))
	require.Eventually(t, func() bool { _, a := volState(otherID); return a == "attached" }, 5*time.Second, 10*time.Millisecond)
	_, err = cl.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{inA}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { s, _ := volState(otherID); return s == ec2types.VolumeStateAvailable }, 5*time.Second, 10*time.Millisecond)

	var kinds []EventKind
	for _, e := range f.EC2Audit() {
		if e.Volume == volID {
			kinds = append(kinds, e.Kind)
		}
	}
	assert.Equal(t, []EventKind{EventVolumeCreated, EventVolumeAttached, EventVolumeDetached, EventVolumeDeleted}, kinds)
}

func TestFingerprintIgnoresOrderAndToken(t *testing.T) {
	a := map[string][]string{"Action": {"RunInstances"}, "ImageId": {"ami-1"}, "MinCount": {"1"}, "ClientToken": {"x"}}
	b := map[string][]string{"MinCount": {"1"}, "ImageId": {"ami-1"}, "Action": {"RunInstances"}, "ClientToken": {"y"}, "DryRun": {"false"}}
	c := map[string][]string{"ImageId": {"ami-2"}, "MinCount": {"1"}}
	assert.Equal(t, fingerprint(a), fingerprint(b))
	assert.NotEqual(t, fingerprint(a), fingerprint(c))
}
