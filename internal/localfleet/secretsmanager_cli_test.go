package localfleet_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/devstack/tier"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// The AWS CLI manages secrets in the fleet's Secrets Manager as in AWS's.
func TestIntegrationAWSCLISecretsManager(t *testing.T) {
	tier.Integration(t, tier.ZooKeeper)
	if _, err := exec.LookPath("aws"); err != nil {
		t.Skip("the AWS CLI (aws) is not installed: apt-get install awscli")
	}
	f, _ := startFleet(t, localfleet.Config{Clusters: []localfleet.ClusterConfig{testCluster("local-a")}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var created struct{ ARN, Name, VersionId string }
	awsCLI(ctx, t, f, &created, "secretsmanager", "create-secret", "--name", "kfleet/local-a/admin",
		"--secret-string", `{"username":"admin","password":"cli-pass"}`)
	assert.Equal(t, "kfleet/local-a/admin", created.Name)
	awsCLI(ctx, t, f, nil, "secretsmanager", "put-secret-value", "--secret-id", created.ARN, "--secret-string", `{"username":"admin","password":"cli-pass-2"}`)
	var got struct {
		SecretString  string
		VersionStages []string
	}
	awsCLI(ctx, t, f, &got, "secretsmanager", "get-secret-value", "--secret-id", "kfleet/local-a/admin")
	assert.JSONEq(t, `{"username":"admin","password":"cli-pass-2"}`, got.SecretString)
	assert.Equal(t, []string{"AWSCURRENT"}, got.VersionStages)
	var desc struct {
		Name               string
		VersionIdsToStages map[string][]string
	}
	awsCLI(ctx, t, f, &desc, "secretsmanager", "describe-secret", "--secret-id", "kfleet/local-a/admin")
	assert.Len(t, desc.VersionIdsToStages, 2, "the current and the previous version")
	awsCLI(ctx, t, f, nil, "secretsmanager", "delete-secret", "--secret-id", "kfleet/local-a/admin", "--force-delete-without-recovery")
	out, err := awsCommand(ctx, t, f, "secretsmanager", "get-secret-value", "--secret-id", "kfleet/local-a/admin").CombinedOutput()
	require.Error(t, err, "gone")
	assert.Contains(t, string(out), "ResourceNotFoundException")
}
