package localfleet_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack/tier"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// awsCLI runs the AWS CLI (v1 or v2) against the fleet, isolated from any
// configuration or credentials of the machine, and decodes its JSON
// output into out (when not nil).
func awsCLI(ctx context.Context, t *testing.T, f *localfleet.Fleet, out any, args ...string) {
	t.Helper()
	stdout, err := awsCommand(ctx, t, f, args...).Output()
	if err != nil {
		var exit *exec.ExitError
		stderr := ""
		if errors.As(err, &exit) {
			stderr = string(exit.Stderr)
		}
		t.Fatalf("aws %v: %v: %s", args, err, stderr)
	}
	if out != nil {
		require.NoError(t, json.Unmarshal(stdout, out), "aws %v: %s", args, stdout)
	}
}

// awsCommand is the AWS CLI command of args against the fleet.
func awsCommand(ctx context.Context, t *testing.T, f *localfleet.Fleet, args ...string) *exec.Cmd {
	ep := f.Endpoints().AWS
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, "aws", append([]string{"--endpoint-url", ep.Endpoint, "--output", "json"}, args...)...)
	cmd.Env = append(os.Environ(),
		"AWS_ACCESS_KEY_ID="+ep.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+ep.SecretAccessKey, "AWS_DEFAULT_REGION="+ep.Region,
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true")
	return cmd
}

// The AWS CLI works against the fleet as against EC2: a host launched
// for a broker, a volume created and attached, filters, and a broker's
// host terminated behind kfleet's back, which kills that broker.
func TestIntegrationAWSCLI(t *testing.T) {
	tier.Integration(t, tier.ZooKeeper)
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the AWS CLI (aws) is not installed: apt-get install awscli")
	}
	t.Parallel()
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{faultCluster("local-a")},
		EC2: localfleet.EC2Config{Timing: provTiming}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var run struct {
		ReservationID string `json:"ReservationId"`
		Instances     []struct {
			InstanceID string `json:"InstanceId"`
			State      struct{ Name string }
		}
	}
	launch := []string{"ec2", "run-instances", "--image-id", "ami-0123456789abcdef0", "--instance-type", "m5.large", "--count", "1",
		"--placement", "AvailabilityZone=us-east-1a", "--client-token", "cli-c9-broker-1",
		"--tag-specifications", "ResourceType=instance,Tags=[{Key=kfleet:cluster,Value=c9},{Key=kfleet:broker-id,Value=1},{Key=kfleet:role,Value=broker}]"}
	awsCLI(ctx, t, f, &run, launch...)
	require.Len(t, run.Instances, 1)
	id := run.Instances[0].InstanceID
	assert.Equal(t, "pending", run.Instances[0].State.Name)
	var again struct {
		ReservationID string `json:"ReservationId"`
	}
	awsCLI(ctx, t, f, &again, launch...)
	assert.Equal(t, run.ReservationID, again.ReservationID, "the same client token, the same reservation")

	var vol struct{ VolumeID, State string }
	awsCLI(ctx, t, f, &vol, "ec2", "create-volume", "--availability-zone", "us-east-1a", "--size", "50", "--volume-type", "gp3",
		"--client-token", "cli-c9-broker-1-data",
		"--tag-specifications", "ResourceType=volume,Tags=[{Key=kfleet:cluster,Value=c9},{Key=kfleet:role,Value=kafka-data}]")
	require.Regexp(t, `^vol-`, vol.VolumeID)
	awsCLI(ctx, t, f, nil, "ec2", "wait", "instance-running", "--instance-ids", id)
	awsCLI(ctx, t, f, nil, "ec2", "wait", "volume-available", "--volume-ids", vol.VolumeID)
	awsCLI(ctx, t, f, nil, "ec2", "attach-volume", "--volume-id", vol.VolumeID, "--instance-id", id, "--device", "/dev/xvdb")

	var described struct {
		Reservations []struct {
			Instances []struct {
				InstanceID string `json:"InstanceId"`
			}
		}
	}
	awsCLI(ctx, t, f, &described, "ec2", "describe-instances", "--filters", "Name=tag:kfleet:cluster,Values=c9", "Name=instance-state-name,Values=running")
	require.Len(t, described.Reservations, 1)
	assert.Equal(t, id, described.Reservations[0].Instances[0].InstanceID)
	var vols struct {
		Volumes []struct {
			VolumeID string `json:"VolumeId"`
		}
	}
	awsCLI(ctx, t, f, &vols, "ec2", "describe-volumes", "--filters", "Name=tag:kfleet:cluster,Values=c9", "Name=attachment.instance-id,Values="+id)
	require.Len(t, vols.Volumes, 1)

	// Behind kfleet's back: broker 2's host terminated from the CLI.
	host := f.Endpoints().Clusters["local-a"].Brokers[1].InstanceID
	awsCLI(ctx, t, f, nil, "ec2", "terminate-instances", "--instance-ids", host)
	assert.Equal(t, localfleet.StateCrashed, brokerState(t, f, "local-a", 2))
	awsCLI(ctx, t, f, nil, "ec2", "wait", "instance-terminated", "--instance-ids", host)
	terminated := lastEvent(f.Audit("local-a"), 2, localfleet.EventInstanceTerminated)
	assert.Equal(t, host, terminated.Instance)
	assert.Equal(t, "ec2", terminated.Who, "the CLI names no caller (no X-Kfleet-Who)")
}
