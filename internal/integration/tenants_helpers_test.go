package integration_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// What the tenant test needs around the stack: clients that authenticate
// as tenants, and the CLI run with the stack's secret source.

// execStarterEnv is execStarter with env added to the CLI's environment.
func execStarterEnv(t *testing.T, bin string, env []string, stdout, stderr *bytes.Buffer, args ...string) int {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	require.NoError(t, err)
	return 0
}

// passwordIn reads the password the CLI printed ("  password   <it>").
func passwordIn(t *testing.T, out string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "password" {
			return f[1]
		}
	}
	t.Fatalf("no password printed: %s", out)
	return ""
}

// tenantClient is a client that authenticates as a tenant's user, closed
// when the test ends.
func tenantClient(t testing.TB, creds fleet.TenantCredentials, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	require.Equal(t, fleet.TenantSASLMechanism, creds.Mechanism)
	base := []kgo.Opt{kgo.SeedBrokers(creds.Bootstrap...), kgo.SASL(scram.Auth{User: creds.User, Pass: creds.Password}.AsSha512Mechanism()),
		kgo.DisableIdempotentWrite(), kgo.RetryTimeout(3 * time.Second), kgo.RequestRetries(1)}
	cl, err := kgo.NewClient(append(base, opts...)...)
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return cl
}

// authenticates reports whether creds log in: a metadata request on a
// fresh connection answers.
func authenticates(ctx context.Context, t *testing.T, creds fleet.TenantCredentials) bool {
	t.Helper()
	cl := tenantClient(t, creds)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	_, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	return err == nil
}

// topicMetadata asks for one topic and returns its answer.
func topicMetadata(ctx context.Context, cl *kgo.Client, topic string) (kmsg.MetadataResponseTopic, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return kmsg.MetadataResponseTopic{}, err
	}
	if len(resp.Topics) != 1 {
		return kmsg.MetadataResponseTopic{}, errors.New("no topic in metadata")
	}
	return resp.Topics[0], nil
}

// topicNames lists the cluster's topics, asking a broker (kadm may answer
// from its client's metadata cache and show a deleted topic alive).
func topicNames(ctx context.Context, t *testing.T, cl *kgo.Client) []string {
	t.Helper()
	resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
	require.NoError(t, err)
	var names []string
	for _, tp := range resp.Topics {
		if tp.Topic != nil && !strings.HasPrefix(*tp.Topic, "__") {
			names = append(names, *tp.Topic)
		}
	}
	slices.Sort(names)
	return names
}

// kcatIsolation checks tenant a's isolation with kcat (librdkafka) logging
// in as a: its metadata lists a's topic and not b's, it produces to its
// own topic, and reading b's is refused. Skipped where kcat is not
// installed (CI installs it: .ci/run).
func kcatIsolation(ctx context.Context, t *testing.T, creds fleet.TenantCredentials, a, b string) {
	t.Helper()
	bin, err := exec.LookPath("kcat")
	if err != nil {
		t.Log("kcat not installed: the independent client's check is skipped")
		return
	}
	run := func(stdin string, args ...string) (string, error) {
		base := []string{"-b", strings.Join(creds.Bootstrap, ","), "-X", "security.protocol=SASL_PLAINTEXT",
			"-X", "sasl.mechanisms=" + creds.Mechanism, "-X", "sasl.username=" + creds.User, "-X", "sasl.password=" + creds.Password, "-m", "10"}
		kctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		cmd := exec.CommandContext(kctx, bin, append(base, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("", "-L")
	require.NoError(t, err, out)
	require.Contains(t, out, `topic "`+a+`.orders"`, "kcat -L as %s lists its topic", a)
	require.NotContains(t, out, b+".", "kcat -L as %s shows nothing of %s", a, b)
	out, err = run("from kcat\n", "-P", "-t", a+".orders")
	require.NoError(t, err, "kcat produces to %s's own topic: %s", a, out)
	out, err = run("", "-C", "-t", b+".events", "-o", "beginning", "-e", "-q")
	require.True(t, err != nil || strings.Contains(out, "authoriz"), "kcat as %s reads %s's topic: %s", a, b, out)
	require.NotContains(t, out, "b1", "kcat as %s got %s's record", a, b)
}

// secured turns SASL/SCRAM and ACLs on in cfg, with "admin" as the super
// user, and seeds no topic: a multi-tenant cluster as the tenants' tests
// use it.
func secured(cfg localfleet.ClusterConfig, superPass string) localfleet.ClusterConfig {
	cfg.SASL = localfleet.SASLConfig{Enabled: true, Superuser: "admin", SuperuserPassword: superPass}
	cfg.ACLs = true
	if cfg.Topics == nil {
		cfg.Topics = []localfleet.TopicConfig{}
	}
	return cfg
}

// superAdmin is an admin client of cluster logged in as its super user.
func superAdmin(tb testing.TB, stack *devstack.Stack, cluster, superPass string) *kadm.Client {
	return kadm.NewClient(tenantClient(tb, fleet.TenantCredentials{User: "admin", Password: superPass, Mechanism: fleet.TenantSASLMechanism,
		Bootstrap: stack.Specs[cluster].Bootstrap}))
}
