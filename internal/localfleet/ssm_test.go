package localfleet_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/localfleet"
)

func ssmClient(f *localfleet.Fleet) *ssm.Client {
	ep := f.Endpoints().AWS
	return ssm.NewFromConfig(aws.Config{
		Region:      ep.Region,
		Credentials: credentials.NewStaticCredentialsProvider(ep.AccessKeyID, ep.SecretAccessKey, ""),
	}, func(o *ssm.Options) { o.BaseEndpoint = aws.String(ep.Endpoint) })
}

// runCommand sends a document to one instance and waits for its result, as
// internal/cloud does.
func runCommand(ctx context.Context, t *testing.T, cl *ssm.Client, doc, instance, comment string, params map[string][]string) *ssm.GetCommandInvocationOutput {
	t.Helper()
	out, err := cl.SendCommand(ctx, &ssm.SendCommandInput{
		DocumentName: aws.String(doc),
		InstanceIds:  []string{instance},
		Parameters:   params,
		Comment:      aws.String(comment),
	})
	require.NoError(t, err)
	require.Equal(t, "Pending", string(out.Command.Status))
	require.Equal(t, doc, aws.ToString(out.Command.DocumentName))
	require.WithinDuration(t, time.Now(), aws.ToTime(out.Command.RequestedDateTime), time.Minute)
	for {
		inv, err := cl.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{
			CommandId: out.Command.CommandId, InstanceId: aws.String(instance),
		})
		require.NoError(t, err)
		switch inv.Status {
		case "Success", "Failed":
			return inv
		}
		select {
		case <-ctx.Done():
			t.Fatalf("command %s on %s: %v", doc, instance, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// The real aws-sdk-go-v2 SSM client drives brokers through the fleet.
func TestIntegrationSSMStopStart(t *testing.T) {
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")}})
	ctx := testContext(t)
	cl := ssmClient(f)
	instance := f.Endpoints().Clusters["local-a"].Brokers[1].InstanceID
	require.Regexp(t, `^i-[0-9a-f]{17}$`, instance)

	inv := runCommand(ctx, t, cl, cloud.DocStopBroker, instance, "roll/42", map[string][]string{cloud.ParamGracePeriodSeconds: {"30"}})
	assert.Equal(t, "Success", string(inv.Status))
	assert.Equal(t, "Success", aws.ToString(inv.StatusDetails))
	assert.Equal(t, int32(0), inv.ResponseCode)
	state, err := f.BrokerState("local-a", 2)
	require.NoError(t, err)
	assert.Equal(t, localfleet.StateStopped, state)

	inv = runCommand(ctx, t, cl, cloud.DocBrokerStatus, instance, "check", nil)
	assert.Equal(t, "stopped", strings.SplitN(aws.ToString(inv.StandardOutputContent), "\n", 2)[0])

	inv = runCommand(ctx, t, cl, cloud.DocStartBroker, instance, "roll/42", map[string][]string{cloud.ParamVersion: {"3.7.1"}})
	assert.Equal(t, "Success", string(inv.Status))
	state, err = f.BrokerState("local-a", 2)
	require.NoError(t, err)
	assert.Equal(t, localfleet.StateRunning, state)

	audit := f.Audit("local-a")
	require.Len(t, audit, 4)
	for _, e := range audit {
		assert.Equal(t, "roll/42", e.Who, "the command comment says who asked")
		assert.Equal(t, int32(2), e.Broker)
	}
	assert.Equal(t, "3.7.1", audit[3].Version, "the started event shows the version")
}

func TestIntegrationSSMErrors(t *testing.T) {
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")}})
	ctx := testContext(t)
	cl := ssmClient(f)
	instance := f.Endpoints().Clusters["local-a"].Brokers[0].InstanceID

	tests := []struct {
		name string
		in   ssm.SendCommandInput
		code string
	}{
		{"unknown document", ssm.SendCommandInput{DocumentName: aws.String("AWS-RunShellScript"), InstanceIds: []string{instance}}, "InvalidDocument"},
		{"unknown instance", ssm.SendCommandInput{DocumentName: aws.String(cloud.DocStopBroker), InstanceIds: []string{"i-00000000000000000"}}, "InvalidInstanceId"},
		{"unknown parameter", ssm.SendCommandInput{DocumentName: aws.String(cloud.DocStopBroker), InstanceIds: []string{instance},
			Parameters: map[string][]string{"Force": {"true"}}}, "InvalidParameters"},
		{"bad grace period", ssm.SendCommandInput{DocumentName: aws.String(cloud.DocStopBroker), InstanceIds: []string{instance},
			Parameters: map[string][]string{cloud.ParamGracePeriodSeconds: {"soon"}}}, "InvalidParameters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cl.SendCommand(ctx, &tt.in)
			assertAPIError(t, err, tt.code)
		})
	}

	_, err := cl.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{
		CommandId: aws.String("00000000-0000-4000-8000-000000000000"), InstanceId: aws.String(instance),
	})
	assertAPIError(t, err, "InvalidCommandId")

	out, err := cl.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String(cloud.DocBrokerStatus), InstanceIds: []string{instance}})
	require.NoError(t, err)
	_, err = cl.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{
		CommandId: out.Command.CommandId, InstanceId: aws.String("i-00000000000000000"),
	})
	assertAPIError(t, err, "InvocationDoesNotExist")

	// Unsigned requests and unknown operations are refused the AWS way.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.Endpoints().AWS.Endpoint+"/", strings.NewReader("{}"))
	require.NoError(t, err)
	req.Header.Set("X-Amz-Target", "AmazonSSM.SendCommand")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, "MissingAuthenticationTokenException", resp.Header.Get("X-Amzn-ErrorType"))

	_, err = cl.CancelCommand(ctx, &ssm.CancelCommandInput{CommandId: out.Command.CommandId})
	assertAPIError(t, err, "UnknownOperationException")
}

func assertAPIError(t *testing.T, err error, code string) {
	t.Helper()
	var apiErr smithy.APIError
	require.True(t, errors.As(err, &apiErr), "want API error %s, got %v", code, err)
	assert.Equal(t, code, apiErr.ErrorCode(), apiErr.ErrorMessage())
}

// kfleet-HostLimits prints the limits and the broker's segment count in the
// real document's format; maps and open files are the process's, so 0
// while it is down.
func TestIntegrationSSMHostLimits(t *testing.T) {
	t.Parallel()
	cc := testCluster("local-a")
	cc.SegmentsPerBroker = 400
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{cc}})
	ctx := testContext(t)
	cl := ssmClient(f)
	instance := f.Endpoints().Clusters["local-a"].Brokers[1].InstanceID

	_, err := cl.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String(cloud.DocHostLimits), InstanceIds: []string{instance},
		Parameters: map[string][]string{cloud.ParamLines: {"10"}}})
	assertAPIError(t, err, "InvalidParameters")

	tests := []struct {
		name   string
		before func(t *testing.T)
		stdout string
		want   cloud.HostLimits
	}{
		{"running", func(*testing.T) {},
			"vm.max_map_count=65530\nfs.file-max=9223372036854775807\nnofile=100000\nsegments=400\nmaps=800\nopen_files=1624\n",
			cloud.HostLimits{MaxMapCount: 65530, FileMax: 9223372036854775807, Nofile: 100000, Segments: 400, Maps: 800, OpenFiles: 1624}},
		{"stopped, limit raised", func(t *testing.T) {
			require.NoError(t, f.StopBroker(ctx, "local-a", 2, "ops"))
			_, err := f.SetLimit(ctx, "local-a", 2, localfleet.LimitMaxMapCount, 262144, "ops")
			require.NoError(t, err)
		},
			"vm.max_map_count=262144\nfs.file-max=9223372036854775807\nnofile=100000\nsegments=400\nmaps=0\nopen_files=0\n",
			cloud.HostLimits{MaxMapCount: 262144, FileMax: 9223372036854775807, Nofile: 100000, Segments: 400}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.before(t)
			inv := runCommand(ctx, t, cl, cloud.DocHostLimits, instance, "diagnose", nil)
			require.Equal(t, "Success", string(inv.Status), aws.ToString(inv.StandardErrorContent))
			assert.Equal(t, tt.stdout, aws.ToString(inv.StandardOutputContent))
			got, err := cloud.ParseHostLimits(aws.ToString(inv.StandardOutputContent))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
