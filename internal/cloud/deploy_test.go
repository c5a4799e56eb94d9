package cloud_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/kfleet/kfleet/internal/cloud"
)

// The worker's IAM policy (deploy/iam) allows every EC2 and SSM action
// this package calls: a call the policy lacks fails only in production.
func TestWorkerPolicyAllowsEveryCall(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "iam", "kfleet-worker-policy.json"))
	require.NoError(t, err)
	var policy struct {
		Statement []struct {
			Effect string
			Action any // a string or a list
		}
	}
	require.NoError(t, json.Unmarshal(raw, &policy))
	var allowed []string
	for _, s := range policy.Statement {
		if s.Effect != "Allow" {
			continue
		}
		switch a := s.Action.(type) {
		case string:
			allowed = append(allowed, a)
		case []any:
			for _, x := range a {
				allowed = append(allowed, x.(string))
			}
		}
	}
	for _, action := range []string{
		"ssm:SendCommand", "ssm:GetCommandInvocation", "ssm:ListCommands",
		"ec2:DescribeInstances", "ec2:DescribeVolumes", "ec2:DescribeVolumesModifications", "ec2:ModifyVolume",
		"ec2:DescribeAvailabilityZones", "ec2:DescribeInstanceTypeOfferings",
		"ec2:RunInstances", "ec2:CreateTags", "iam:PassRole", "ec2:TerminateInstances", "ec2:StopInstances", "ec2:StartInstances",
		"ec2:CreateVolume", "ec2:AttachVolume", "ec2:DetachVolume", "ec2:DeleteVolume",
	} {
		assert.Contains(t, allowed, action)
	}
}

// Every document kfleet runs exists under deploy/ssm with the parameters
// this package sends.
func TestDocumentsDeployed(t *testing.T) {
	docs := cloud.DocumentParameters()
	for name, params := range docs {
		raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "ssm", name+".yaml"))
		require.NoError(t, err, name)
		var doc struct {
			Parameters map[string]any `yaml:"parameters"`
		}
		require.NoError(t, yaml.Unmarshal(raw, &doc), name)
		var have []string
		for p := range doc.Parameters {
			have = append(have, p)
		}
		slices.Sort(have)
		want := slices.Clone(params)
		slices.Sort(want)
		assert.Equal(t, want, have, name)
	}
}
