package localfleet_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/localfleet"
)

func filter(key ssmtypes.CommandFilterKey, value string) ssmtypes.CommandFilter {
	return ssmtypes.CommandFilter{Key: key, Value: aws.String(value)}
}

func commandIDs(cmds []ssmtypes.Command) []string {
	ids := make([]string, len(cmds))
	for i, c := range cmds {
		ids[i] = aws.ToString(c.CommandId)
	}
	return ids
}

// ListCommands answers the real aws-sdk-go-v2 client with AWS's semantics:
// newest first, the instance and the five filter keys, pages of MaxResults
// joined by NextToken, and AWS's errors.
func TestIntegrationSSMListCommands(t *testing.T) {
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")}})
	ctx := testContext(t)
	cl := ssmClient(f)
	brokers := f.Endpoints().Clusters["local-a"].Brokers
	a, b := brokers[0].InstanceID, brokers[1].InstanceID

	status := runCommand(ctx, t, cl, cloud.DocBrokerStatus, a, "check a", nil)
	other := runCommand(ctx, t, cl, cloud.DocBrokerStatus, b, "check b", nil)
	time.Sleep(10 * time.Millisecond)
	mid := time.Now()
	time.Sleep(10 * time.Millisecond)
	// The volume is far from 16,000 GiB: the command fails on the host.
	failed := runCommand(ctx, t, cl, cloud.DocGrowFilesystem, a, "grow a", map[string][]string{cloud.ParamTargetSizeGiB: {"16000"}})
	require.Equal(t, "Failed", string(failed.Status))
	newestFirst := []string{aws.ToString(failed.CommandId), aws.ToString(other.CommandId), aws.ToString(status.CommandId)}

	list := func(in ssm.ListCommandsInput) []ssmtypes.Command {
		t.Helper()
		out, err := cl.ListCommands(ctx, &in)
		require.NoError(t, err)
		assert.Empty(t, aws.ToString(out.NextToken), "one page")
		return out.Commands
	}
	all := list(ssm.ListCommandsInput{})
	assert.Equal(t, newestFirst, commandIDs(all))
	grow := all[0]
	assert.Equal(t, cloud.DocGrowFilesystem, aws.ToString(grow.DocumentName))
	assert.Equal(t, "grow a", aws.ToString(grow.Comment))
	assert.Equal(t, []string{a}, grow.InstanceIds)
	assert.Equal(t, ssmtypes.CommandStatusFailed, grow.Status)
	assert.Equal(t, int32(1), grow.TargetCount)
	assert.Equal(t, int32(1), grow.CompletedCount)
	assert.Equal(t, int32(1), grow.ErrorCount)
	assert.WithinDuration(t, time.Now(), aws.ToTime(grow.RequestedDateTime), time.Minute)
	assert.Equal(t, ssmtypes.CommandStatusSuccess, all[1].Status)
	assert.Equal(t, int32(0), all[1].ErrorCount)

	filtered := []struct {
		name string
		in   ssm.ListCommandsInput
		want []string
	}{
		{"instance", ssm.ListCommandsInput{InstanceId: aws.String(a)}, []string{newestFirst[0], newestFirst[2]}},
		{"instance that ran nothing", ssm.ListCommandsInput{InstanceId: aws.String("i-0123456789abcdef0")}, []string{}},
		{"command", ssm.ListCommandsInput{CommandId: other.CommandId}, []string{newestFirst[1]}},
		{"document", ssm.ListCommandsInput{Filters: []ssmtypes.CommandFilter{filter(ssmtypes.CommandFilterKeyDocumentName, cloud.DocBrokerStatus)}}, newestFirst[1:]},
		{"invoked after", ssm.ListCommandsInput{Filters: []ssmtypes.CommandFilter{filter(ssmtypes.CommandFilterKeyInvokedAfter, mid.UTC().Format(time.RFC3339Nano))}}, newestFirst[:1]},
		{"invoked before", ssm.ListCommandsInput{Filters: []ssmtypes.CommandFilter{filter(ssmtypes.CommandFilterKeyInvokedBefore, mid.UTC().Format(time.RFC3339Nano))}}, newestFirst[1:]},
		{"whole seconds", ssm.ListCommandsInput{Filters: []ssmtypes.CommandFilter{filter(ssmtypes.CommandFilterKeyInvokedAfter, mid.Add(time.Hour).UTC().Format(time.RFC3339))}}, []string{}},
		{"status", ssm.ListCommandsInput{Filters: []ssmtypes.CommandFilter{filter(ssmtypes.CommandFilterKeyStatus, "Failed")}}, newestFirst[:1]},
		{"stage complete", ssm.ListCommandsInput{Filters: []ssmtypes.CommandFilter{filter(ssmtypes.CommandFilterKeyExecutionStage, "Complete")}}, newestFirst},
		{"stage executing", ssm.ListCommandsInput{Filters: []ssmtypes.CommandFilter{filter(ssmtypes.CommandFilterKeyExecutionStage, "Executing")}}, []string{}},
		{"every filter holds", ssm.ListCommandsInput{InstanceId: aws.String(a), Filters: []ssmtypes.CommandFilter{
			filter(ssmtypes.CommandFilterKeyDocumentName, cloud.DocBrokerStatus), filter(ssmtypes.CommandFilterKeyStatus, "Success")}}, newestFirst[2:]},
	}
	for _, tt := range filtered {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, commandIDs(list(tt.in)))
		})
	}

	// Pages of one, joined by NextToken (the SDK's paginator).
	var paged []string
	pages := 0
	for p := ssm.NewListCommandsPaginator(cl, &ssm.ListCommandsInput{MaxResults: aws.Int32(1)}); p.HasMorePages(); pages++ {
		page, err := p.NextPage(ctx)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Commands), 1)
		paged = append(paged, commandIDs(page.Commands)...)
	}
	assert.Equal(t, newestFirst, paged)
	assert.Equal(t, 3, pages)

	refused := []struct {
		name string
		in   ssm.ListCommandsInput
		code string
	}{
		{"unknown command", ssm.ListCommandsInput{CommandId: aws.String("00000000-0000-4000-8000-000000000000")}, "InvalidCommandId"},
		{"malformed instance", ssm.ListCommandsInput{InstanceId: aws.String("broker-1")}, "InvalidInstanceId"},
		{"unknown filter key", ssm.ListCommandsInput{Filters: []ssmtypes.CommandFilter{filter("Comment", "roll")}}, "InvalidFilterKey"},
		{"bad timestamp", ssm.ListCommandsInput{Filters: []ssmtypes.CommandFilter{filter(ssmtypes.CommandFilterKeyInvokedAfter, "yesterday")}}, "InvalidFilterValue"},
		{"bad status", ssm.ListCommandsInput{Filters: []ssmtypes.CommandFilter{filter(ssmtypes.CommandFilterKeyStatus, "Done")}}, "InvalidFilterValue"},
		{"pending on an instance", ssm.ListCommandsInput{InstanceId: aws.String(a), Filters: []ssmtypes.CommandFilter{filter(ssmtypes.CommandFilterKeyStatus, "Pending")}}, "InvalidFilter"},
		{"page too large", ssm.ListCommandsInput{MaxResults: aws.Int32(51)}, "ValidationException"},
		{"bad token", ssm.ListCommandsInput{NextToken: aws.String("not-a-token")}, "InvalidNextToken"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			_, err := cl.ListCommands(ctx, &tt.in)
			assertAPIError(t, err, tt.code)
		})
	}
}

// FindCommand (internal/cloud, the product's code path) finds a step's
// command on the fleet by the mark in its comment: the newest one of the
// document on the instance since the step began that has not failed.
func TestIntegrationSSMFindCommand(t *testing.T) {
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")}})
	ctx := testContext(t)
	cl := ssmClient(f)
	ep := f.Endpoints().AWS
	runner := cloud.NewSSM(aws.Config{
		Region:      ep.Region,
		Credentials: credentials.NewStaticCredentialsProvider(ep.AccessKeyID, ep.SecretAccessKey, ""),
	}, ep.Endpoint)
	brokers := f.Endpoints().Clusters["local-a"].Brokers
	a, b := brokers[0].InstanceID, brokers[1].InstanceID
	const mark = "kfleet-step=0123456789abcdef"
	begun := time.Now()

	sent := runCommand(ctx, t, cl, cloud.DocBrokerStatus, a, "roll/1 "+mark, nil)
	runCommand(ctx, t, cl, cloud.DocBrokerStatus, a, "roll/2 kfleet-step=fedcba9876543210", nil)
	runCommand(ctx, t, cl, cloud.DocBrokerStatus, b, "roll/1 "+mark, nil)
	failed := runCommand(ctx, t, cl, cloud.DocGrowFilesystem, a, "roll/1 "+mark, map[string][]string{cloud.ParamTargetSizeGiB: {"16000"}})
	require.Equal(t, "Failed", string(failed.Status))

	find := func(instance, document, mark string, since time.Time) string {
		t.Helper()
		id, err := runner.FindCommand(ctx, instance, document, mark, since)
		require.NoError(t, err)
		return id
	}
	assert.Equal(t, aws.ToString(sent.CommandId), find(a, cloud.DocBrokerStatus, mark, begun))
	assert.Empty(t, find(a, cloud.DocBrokerStatus, "kfleet-step=0000000000000000", begun), "another step's mark")
	assert.Empty(t, find(a, cloud.DocStopBroker, mark, begun), "another document")
	assert.Empty(t, find(a, cloud.DocBrokerStatus, mark, begun.Add(time.Hour)), "sent before the step began")
	assert.Empty(t, find(a, cloud.DocGrowFilesystem, mark, begun), "a command that failed is not followed")
	_, err := runner.FindCommand(ctx, a, cloud.DocBrokerStatus, "", begun)
	require.ErrorContains(t, err, "empty step mark", "an empty mark would match any command")
	_, err = runner.FindCommand(ctx, "broker-1", cloud.DocBrokerStatus, mark, begun)
	require.ErrorContains(t, err, "instance broker-1")
	assertAPIError(t, err, "InvalidInstanceId")
}
