package localfleet_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// Controllers run on hosts of their own: EC2 describes them, the brokers'
// SSM documents stop, start (with a version) and report them, and a
// stopped instance kills the controller.
func TestIntegrationKRaftControllerHosts(t *testing.T) {
	f := startKRaft(t, localfleet.KRaftConfig{})
	ctx := testContext(t)
	ctls := f.Endpoints().Clusters["local-k"].Controllers
	require.Len(t, ctls, 3)
	host := ctls[1].InstanceID

	out, err := ec2Client(f).DescribeInstances(ctx, &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("tag:" + cloud.TagRole), Values: []string{"controller"}},
		{Name: aws.String("tag:" + cloud.TagCluster), Values: []string{"local-k"}},
	}})
	require.NoError(t, err)
	var ids []string
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			ids = append(ids, aws.ToString(in.InstanceId))
		}
	}
	assert.ElementsMatch(t, []string{ctls[0].InstanceID, ctls[1].InstanceID, ctls[2].InstanceID}, ids)

	ssm := ssmClient(f)
	inv := runCommand(ctx, t, ssm, cloud.DocBrokerStatus, host, "status", nil)
	require.Equal(t, "Success", string(inv.Status))
	assert.True(t, strings.HasPrefix(aws.ToString(inv.StandardOutputContent), "running\nprocess.roles=controller\nnode.id=3001\n"))

	inv = runCommand(ctx, t, ssm, cloud.DocStopBroker, host, "roll/3001", map[string][]string{cloud.ParamGracePeriodSeconds: {"30"}})
	require.Equal(t, "Success", string(inv.Status), aws.ToString(inv.StandardErrorContent))
	q, err := f.Quorum("local-k")
	require.NoError(t, err)
	assert.Equal(t, localfleet.StateStopped, q.Voters[1].State)
	inv = runCommand(ctx, t, ssm, cloud.DocStartBroker, host, "roll/3001", map[string][]string{cloud.ParamVersion: {"4.0.0"}})
	require.Equal(t, "Success", string(inv.Status), aws.ToString(inv.StandardErrorContent))
	q, err = f.Quorum("local-k")
	require.NoError(t, err)
	assert.Equal(t, localfleet.StateRunning, q.Voters[1].State)
	assert.Equal(t, "4.0.0", q.Voters[1].Version)
	inv = runCommand(ctx, t, ssm, cloud.DocHostLimits, host, "limits", nil)
	assert.Equal(t, "Failed", string(inv.Status), "only stop, start and status are served on a controller's host")

	// The host stops: the controller dies with it and cannot start until
	// the host runs again.
	_, err = ec2Client(f).StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{host}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		q, err := f.Quorum("local-k")
		require.NoError(t, err)
		return q.Voters[1].State == localfleet.StateCrashed
	}, 5*time.Second, 20*time.Millisecond)
	require.ErrorIs(t, f.StartController(ctx, "local-k", 3001, "test"), localfleet.ErrInstanceNotRunning)
	assert.Empty(t, f.Violations("local-k"))
}
