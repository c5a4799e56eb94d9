package localfleet

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/secrets"
	"github.com/kfleet/kfleet/internal/secrets/secretstest"
)

// The fleet's Secrets Manager, driven by the real aws-sdk-go-v2 client (and
// kfleet's secret source on it) over HTTP, on a fleet that runs no cluster.

func newSecretsFleet(t *testing.T, log io.Writer) (*Fleet, string) {
	t.Helper()
	f, err := newFleet(Config{Clusters: []ClusterConfig{{ID: "local-a"}}},
		Options{Logger: zerolog.New(log).Level(zerolog.DebugLevel)})
	require.NoError(t, err)
	srv := httptest.NewServer(f.handler())
	t.Cleanup(func() {
		srv.Close()
		require.NoError(t, f.Close())
	})
	return f, srv.URL
}

func fleetAWS() aws.Config {
	return aws.Config{Region: AWSRegion, Credentials: credentials.NewStaticCredentialsProvider(AWSAccessKeyID, AWSSecretAccessKey, "")}
}

func TestSecretsManagerKeepsTheSourceContract(t *testing.T) {
	var log bytes.Buffer
	_, url := newSecretsFleet(t, &log)
	secretstest.Run(unitContext(t), t, secrets.NewSecretsManager(fleetAWS(), url, ""), "")
	// A prefix keeps a deployment's secrets apart.
	secretstest.Run(unitContext(t), t, secrets.NewSecretsManager(fleetAWS(), url, "kfleet/test/"), "")
	assert.NotContains(t, log.String(), "s3cret-value", "no value is ever logged")
	assert.NotContains(t, log.String(), "rotated")
}

func TestSecretsManagerAPI(t *testing.T) {
	ctx := unitContext(t)
	var log bytes.Buffer
	_, url := newSecretsFleet(t, &log)
	cl := secretsmanager.NewFromConfig(fleetAWS(), func(o *secretsmanager.Options) { o.BaseEndpoint = aws.String(url) })

	created, err := cl.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("kfleet/local-s/admin"),
		SecretString: aws.String("pw-1"), Description: aws.String("admin"),
		Tags: []smtypes.Tag{{Key: aws.String("kfleet:cluster"), Value: aws.String("local-s")}}})
	require.NoError(t, err)
	arn := aws.ToString(created.ARN)
	assert.True(t, strings.HasPrefix(arn, "arn:aws:secretsmanager:us-east-1:000000000000:secret:kfleet/local-s/admin-"), arn)
	v1 := aws.ToString(created.VersionId)
	require.NotEmpty(t, v1, "the SDK's idempotency token is the version id")

	_, err = cl.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("kfleet/local-s/admin"), SecretString: aws.String("pw-x")})
	assert.Equal(t, "ResourceExistsException", apiCode(err))

	got, err := cl.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
	require.NoError(t, err, "by ARN")
	assert.Equal(t, "pw-1", aws.ToString(got.SecretString))
	assert.Equal(t, []string{"AWSCURRENT"}, got.VersionStages)
	assert.WithinDuration(t, time.Now(), aws.ToTime(got.CreatedDate), time.Minute)

	put, err := cl.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("kfleet/local-s/admin"), SecretBinary: []byte{1, 2, 3}})
	require.NoError(t, err)
	v2 := aws.ToString(put.VersionId)
	got, err = cl.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("kfleet/local-s/admin")})
	require.NoError(t, err)
	assert.Equal(t, []byte{1, 2, 3}, got.SecretBinary)
	assert.Nil(t, got.SecretString)
	prev, err := cl.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("kfleet/local-s/admin"), VersionStage: aws.String("AWSPREVIOUS")})
	require.NoError(t, err)
	assert.Equal(t, "pw-1", aws.ToString(prev.SecretString))
	assert.Equal(t, v1, aws.ToString(prev.VersionId))

	// A retried put (same token, same value) changes nothing; the same
	// token with another value is refused.
	_, err = cl.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("kfleet/local-s/admin"), SecretBinary: []byte{1, 2, 3}, ClientRequestToken: aws.String(v2)})
	require.NoError(t, err)
	_, err = cl.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("kfleet/local-s/admin"), SecretString: aws.String("other"), ClientRequestToken: aws.String(v2)})
	assert.Equal(t, "ResourceExistsException", apiCode(err))

	desc, err := cl.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("kfleet/local-s/admin")})
	require.NoError(t, err)
	assert.Equal(t, arn, aws.ToString(desc.ARN))
	assert.Equal(t, "admin", aws.ToString(desc.Description))
	assert.Equal(t, map[string][]string{v2: {"AWSCURRENT"}, v1: {"AWSPREVIOUS"}}, desc.VersionIdsToStages)
	require.Len(t, desc.Tags, 1)
	assert.Nil(t, desc.DeletedDate)

	for name, call := range map[string]func() error{
		"get missing": func() error {
			_, err := cl.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("nope")})
			return err
		},
		"describe missing": func() error {
			_, err := cl.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("nope")})
			return err
		},
		"put missing": func() error {
			_, err := cl.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("nope"), SecretString: aws.String("x")})
			return err
		},
		"delete missing": func() error {
			_, err := cl.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("nope")})
			return err
		},
	} {
		assert.Equal(t, "ResourceNotFoundException", apiCode(call()), name)
	}
	for name, call := range map[string]func() error{
		"bad name": func() error {
			_, err := cl.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("a b"), SecretString: aws.String("x")})
			return err
		},
		"both values": func() error {
			_, err := cl.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("both"), SecretString: aws.String("x"), SecretBinary: []byte("y")})
			return err
		},
		"put without value": func() error {
			_, err := cl.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("kfleet/local-s/admin")})
			return err
		},
		"force and window": func() error {
			_, err := cl.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("kfleet/local-s/admin"),
				ForceDeleteWithoutRecovery: aws.Bool(true), RecoveryWindowInDays: aws.Int64(7)})
			return err
		},
		"short window": func() error {
			_, err := cl.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("kfleet/local-s/admin"), RecoveryWindowInDays: aws.Int64(1)})
			return err
		},
	} {
		assert.Equal(t, "InvalidParameterException", apiCode(call()), name)
	}

	// A delete with a recovery window: described, not readable, its name
	// not reusable; a forced delete ends it, and a forced delete of what is
	// gone succeeds (retries do).
	del, err := cl.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("kfleet/local-s/admin"), RecoveryWindowInDays: aws.Int64(7)})
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(7*24*time.Hour), aws.ToTime(del.DeletionDate), time.Minute)
	_, err = cl.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("kfleet/local-s/admin")})
	assert.Equal(t, "InvalidRequestException", apiCode(err))
	desc, err = cl.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("kfleet/local-s/admin")})
	require.NoError(t, err)
	assert.NotNil(t, desc.DeletedDate)
	_, err = cl.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("kfleet/local-s/admin"), SecretString: aws.String("x")})
	assert.Equal(t, "InvalidRequestException", apiCode(err))
	for range 2 {
		_, err = cl.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String("kfleet/local-s/admin"), ForceDeleteWithoutRecovery: aws.Bool(true)})
		require.NoError(t, err)
	}
	_, err = cl.DescribeSecret(ctx, &secretsmanager.DescribeSecretInput{SecretId: aws.String("kfleet/local-s/admin")})
	assert.Equal(t, "ResourceNotFoundException", apiCode(err))

	assert.NotContains(t, log.String(), "pw-1", "no value is ever logged")
	assert.Contains(t, log.String(), "ResourceNotFoundException", "errors are logged, by code")
}

// The fleet's own API never serves a secret: nothing under /v1 knows them,
// and an unsigned call to the AWS endpoint is refused.
func TestSecretsManagerValuesStayInIt(t *testing.T) {
	ctx := unitContext(t)
	f, url := newSecretsFleet(t, io.Discard)
	src := secrets.NewSecretsManager(fleetAWS(), url, "")
	require.NoError(t, src.Put(ctx, "kfleet/local-a/admin", []byte("pw-never-served")))

	for _, path := range []string{"/v1/endpoints", "/v1/clusters/local-a/audit", "/v1/ec2/audit"} {
		rec := httptest.NewRecorder()
		f.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		assert.NotContains(t, rec.Body.String(), "pw-never-served", path)
	}
	req, err := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(`{"SecretId":"kfleet/local-a/admin"}`))
	require.NoError(t, err)
	req.Header.Set("X-Amz-Target", "secretsmanager.GetSecretValue")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.NotContains(t, string(body), "pw-never-served")
}
