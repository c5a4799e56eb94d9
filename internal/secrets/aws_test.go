package secrets_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The worker's IAM policy (deploy/iam) allows every Secrets Manager call
// SecretsManager makes, on kfleet's names (KFLEET_SECRETS=aws:kfleet/):
// a call the policy lacks fails only in production. The calls themselves
// are tested against the local fleet (internal/localfleet).
func TestWorkerPolicyAllowsTheSecretsCalls(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "iam", "kfleet-worker-policy.json"))
	require.NoError(t, err)
	var policy struct {
		Statement []struct {
			Effect   string
			Action   any // a string or a list
			Resource any
		}
	}
	require.NoError(t, json.Unmarshal(raw, &policy))
	allowed := map[string]any{}
	for _, s := range policy.Statement {
		if s.Effect != "Allow" {
			continue
		}
		actions, ok := s.Action.([]any)
		if !ok {
			actions = []any{s.Action}
		}
		for _, a := range actions {
			allowed[a.(string)] = s.Resource
		}
	}
	for _, action := range []string{"secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:CreateSecret", "secretsmanager:DeleteSecret"} {
		require.Contains(t, allowed, action)
		assert.Equal(t, "arn:aws:secretsmanager:*:*:secret:kfleet/*", allowed[action], "%s: kfleet's secrets only", action)
	}
}
