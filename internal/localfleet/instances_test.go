package localfleet_test

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// The hosts' EC2 lifecycle (stop-instance, start-instance,
// terminate-instance), seen as production sees it: through EC2, SSM, the
// exporters, ZooKeeper and Kafka; and what a broker can do meanwhile.
func TestIntegrationInstanceLifecycle(t *testing.T) {
	t.Parallel()
	f, _ := startFaultFleet(t, faultCluster("local-a"))
	ctx := testContext(t)
	ec2c, ssmc := ec2Client(f), ssmClient(f)
	_, adm := kafkaClient(t, f, "local-a")
	brokers := f.Endpoints().Clusters["local-a"].Brokers
	b2, b3 := brokers[1], brokers[2]

	describe := func(t *testing.T, id string) ec2types.Instance {
		t.Helper()
		out, err := ec2c.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
		require.NoError(t, err)
		require.Len(t, out.Reservations, 1)
		require.Len(t, out.Reservations[0].Instances, 1)
		return out.Reservations[0].Instances[0]
	}
	// refused checks that nothing runs on a host that does not: SSM
	// refuses commands as AWS does, the broker cannot start, and no
	// exporter answers.
	refused := func(t *testing.T, b localfleet.BrokerEndpoint) {
		t.Helper()
		_, err := ssmc.SendCommand(ctx, &ssm.SendCommandInput{
			DocumentName: aws.String(cloud.DocBrokerStatus), InstanceIds: []string{b.InstanceID},
		})
		var apiErr smithy.APIError
		require.ErrorAs(t, err, &apiErr)
		assert.Equal(t, "InvalidInstanceId", apiErr.ErrorCode())
		assert.Equal(t, "Instances [["+b.InstanceID+"]] not in a valid state for account 000000000000", apiErr.ErrorMessage())

		err = f.StartBroker(ctx, "local-a", b.ID, "ops")
		require.ErrorIs(t, err, localfleet.ErrInstanceNotRunning)
		assert.ErrorContains(t, err, b.InstanceID)
		status, _ := call(t, http.MethodPost, fmt.Sprintf("%s/v1/clusters/local-a/brokers/%d/start", f.Endpoints().API, b.ID))
		assert.Equal(t, http.StatusConflict, status)
		status, _ = call(t, http.MethodGet, b.MetricsURL+"/node")
		assert.Equal(t, http.StatusServiceUnavailable, status, "the node exporter is down with its host")
	}

	t.Run("stop", func(t *testing.T) {
		status, body := postFault(ctx, t, f, "local-a", 2, "stop-instance", "")
		require.Equal(t, http.StatusOK, status, body)
		assert.Equal(t, localfleet.StateCrashed, brokerState(t, f, "local-a", 2), "no controlled shutdown")
		in := describe(t, b2.InstanceID)
		assert.Equal(t, ec2types.InstanceStateNameStopped, in.State.Name)
		assert.Equal(t, int32(80), aws.ToInt32(in.State.Code))
		assert.Equal(t, "127.0.0.1", aws.ToString(in.PrivateIpAddress), "a stopped instance keeps its address")
		refused(t, b2)

		m := metadata(t, adm)
		assert.NotContains(t, m.Brokers.NodeIDs(), int32(2))
		for _, tp := range m.Topics["events"].Partitions {
			assert.NotEqual(t, int32(2), tp.Leader, "no controlled shutdown moved leadership first (%d)", tp.Partition)
		}

		n := len(f.Audit("local-a"))
		status, body = postFault(ctx, t, f, "local-a", 2, "stop-instance", "")
		require.Equal(t, http.StatusOK, status, body)
		assert.Len(t, f.Audit("local-a"), n, "stopping a stopped instance changes nothing")
	})

	t.Run("start", func(t *testing.T) {
		require.NoError(t, f.InjectFault(ctx, "local-a", 2, localfleet.Fault{Kind: localfleet.FaultStartInstance}, "ops"))
		state, err := f.InstanceState("local-a", 2)
		require.NoError(t, err)
		assert.Equal(t, localfleet.InstanceRunning, state)
		assert.Equal(t, ec2types.InstanceStateNameRunning, describe(t, b2.InstanceID).State.Name)
		assert.Equal(t, localfleet.StateCrashed, brokerState(t, f, "local-a", 2), "Kafka does not start by itself")

		require.NoError(t, f.StartBroker(ctx, "local-a", 2, "ops"))
		assert.Equal(t, localfleet.StateRecovering, brokerState(t, f, "local-a", 2), "the process died uncleanly")
		require.Eventually(t, func() bool { return brokerState(t, f, "local-a", 2) == localfleet.StateRunning },
			5*time.Second, 20*time.Millisecond)
		waitInSync(t, f, "local-a", 2, 1)

		var crash localfleet.Event
		for _, e := range f.Audit("local-a") {
			if e.Kind == localfleet.EventCrash {
				crash = e
			}
		}
		assert.Equal(t, "stop-instance: instance "+b2.InstanceID+" stopping", crash.Detail)
		assert.Equal(t, []localfleet.EventKind{
			localfleet.EventCrash, localfleet.EventInstanceStopped, localfleet.EventInstanceStarted,
			localfleet.EventStart, localfleet.EventRecovering, localfleet.EventStarted, localfleet.EventInSync,
		}, auditKinds(f.Audit("local-a"), 2))
	})

	t.Run("terminate", func(t *testing.T) {
		status, body := postFault(ctx, t, f, "local-a", 3, "terminate-instance", "")
		require.Equal(t, http.StatusOK, status, body)
		assert.Equal(t, localfleet.StateCrashed, brokerState(t, f, "local-a", 3))
		in := describe(t, b3.InstanceID)
		assert.Equal(t, ec2types.InstanceStateNameTerminated, in.State.Name, "EC2 keeps describing a terminated instance")
		assert.Nil(t, in.PrivateIpAddress)
		assert.Empty(t, in.BlockDeviceMappings)
		refused(t, b3)

		vol, err := f.Volume("local-a", 3)
		require.NoError(t, err)
		vols, err := ec2c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{vol.VolumeID}})
		require.NoError(t, err)
		require.Len(t, vols.Volumes, 1)
		assert.Equal(t, ec2types.VolumeStateAvailable, vols.Volumes[0].State, "the data volume outlives its instance")
		assert.Empty(t, vols.Volumes[0].Attachments)
		attached, err := ec2c.DescribeVolumes(ctx, &ec2.DescribeVolumesInput{Filters: []ec2types.Filter{
			ec2Filter("attachment.instance-id", b3.InstanceID),
		}})
		require.NoError(t, err)
		assert.Empty(t, attached.Volumes)

		for _, fault := range []string{"start-instance", "stop-instance"} {
			status, body = postFault(ctx, t, f, "local-a", 3, fault, "")
			assert.Equal(t, http.StatusBadRequest, status, fault)
			assert.Contains(t, body, "is terminated", fault)
		}
		err = f.InjectFault(ctx, "local-a", 3, localfleet.Fault{Kind: localfleet.FaultStartInstance}, "ops")
		require.ErrorIs(t, err, localfleet.ErrBadFault)
		assert.ErrorContains(t, err, "replace the host")
		require.NoError(t, f.InjectFault(ctx, "local-a", 3, localfleet.Fault{Kind: localfleet.FaultTerminateInstance}, "ops"),
			"terminating a terminated instance changes nothing")

		assert.Equal(t, []localfleet.EventKind{localfleet.EventCrash, localfleet.EventInstanceTerminated},
			auditKinds(f.Audit("local-a"), 3))
	})
	assert.Empty(t, f.Violations("local-a"), "one host lost at a time, each after the other was back in sync")
}

// call makes a request and returns its status and body.
func call(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(testContext(t), method, url, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}
