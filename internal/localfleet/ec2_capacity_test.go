package localfleet

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A zone without capacity refuses launches and starts there with EC2's
// InsufficientInstanceCapacity and changes nothing; other zones, a replayed
// launch and instances that run already are not concerned; capacity given
// back, both work again. Each change is in the EC2 audit.
func TestZoneCapacity(t *testing.T) {
	f, cl := newHandlerFleet(t)
	ctx := unitContext(t)
	host2 := instanceID("local-a", 2) // us-east-1b
	launched, err := cl.RunInstances(ctx, brokerLaunch("c1", "1", "us-east-1b", "c1-1"))
	require.NoError(t, err)
	_, err = cl.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{host2}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return f.hosts.instanceState(host2) == InstanceStopped }, 5*time.Second, 10*time.Millisecond)

	require.ErrorIs(t, f.SetZoneCapacity("us-west-2a", false, "test"), ErrBadFault, "not one of the fleet's zones")
	require.NoError(t, f.SetZoneCapacity("us-east-1b", false, "test"))
	tests := []struct {
		name string
		call func() error
		code string
	}{
		{"launch in the zone", func() error {
			_, err := cl.RunInstances(ctx, brokerLaunch("c1", "2", "us-east-1b", "c1-2"))
			return err
		}, "InsufficientInstanceCapacity"},
		{"start in the zone", func() error {
			_, err := cl.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{host2}})
			return err
		}, "InsufficientInstanceCapacity"},
		{"launch elsewhere", func() error {
			_, err := cl.RunInstances(ctx, brokerLaunch("c1", "3", "us-east-1c", "c1-3"))
			return err
		}, ""},
		{"a launch replayed by its token", func() error {
			out, err := cl.RunInstances(ctx, brokerLaunch("c1", "1", "us-east-1b", "c1-1"))
			if err == nil {
				assert.Equal(t, aws.ToString(launched.Instances[0].InstanceId), aws.ToString(out.Instances[0].InstanceId))
			}
			return err
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.code, apiCode(tt.call()))
		})
	}
	assert.Equal(t, InstanceStopped, f.hosts.instanceState(host2), "a refused start changes nothing")

	srv := httptest.NewServer(f.handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/ec2/zones/us-east-1b/capacity?available=true", "", nil)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = cl.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: []string{host2}})
	require.NoError(t, err)
	var capacity []string
	for _, e := range f.EC2Audit() {
		if e.Kind == EventZoneCapacity {
			capacity = append(capacity, e.Detail)
		}
	}
	assert.Equal(t, []string{"zone us-east-1b: capacity exhausted (InsufficientInstanceCapacity)", "zone us-east-1b: capacity available"}, capacity)
}
