package deploycheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testdata/base.yaml is `kustomize build deploy/k8s/base` as committed
// with this test: the good render each case below breaks in one way
// (TestRenderedManifests checks the live renders).
func readBase(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/base.yaml")
	require.NoError(t, err)
	return string(b)
}

// replace swaps old for new, failing the test if old is not in s (a case
// that changed nothing would pass for the wrong reason).
func replace(old, new string) func(*testing.T, string) string {
	return func(t *testing.T, s string) string {
		t.Helper()
		require.Contains(t, s, old, "the fixture no longer has what this case breaks")
		return strings.Replace(s, old, new, 1)
	}
}

func replaceAll(old, new string) func(*testing.T, string) string {
	return func(t *testing.T, s string) string {
		t.Helper()
		require.Contains(t, s, old)
		return strings.ReplaceAll(s, old, new)
	}
}

// dropKind removes the documents of a kind.
func dropKind(kind string) func(*testing.T, string) string {
	return func(t *testing.T, s string) string {
		var kept []string
		for _, doc := range strings.Split(s, "\n---\n") {
			if !strings.Contains(doc, "\nkind: "+kind+"\n") {
				kept = append(kept, doc)
			}
		}
		require.Less(t, len(kept), len(strings.Split(s, "\n---\n")), "no %s to drop", kind)
		return strings.Join(kept, "\n---\n")
	}
}

func appendDoc(doc string) func(*testing.T, string) string {
	return func(_ *testing.T, s string) string { return s + "---\n" + doc }
}

func TestManifestChecks(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(*testing.T, string) string
		want   string // in a decode error or one of the violations
	}{
		{"the good render", nil, ""},
		{"an unknown field", replace("terminationGracePeriodSeconds: 30", "terminationGracePeriodSecond: 30"), `unknown field "terminationGracePeriodSecond"`},
		{"a wrong type", replace("containerPort: 9464", "containerPort: nine"), "containerPort"},
		{"a duplicated key", replace("terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 30\n      terminationGracePeriodSeconds: 40"), "already set"},
		{"a kind kfleet does not deploy", appendDoc("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: x\n"), "no schema"},
		{"one worker", replace("replicas: 2", "replicas: 1"), "want at least 2 replicas"},
		{"no PodDisruptionBudget", dropKind("PodDisruptionBudget"), "no PodDisruptionBudget selects its pods"},
		{"a PDB selecting other pods", replace("maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/component: worker",
			"maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/component: chatops"), "no PodDisruptionBudget selects its pods"},
		{"a grace shorter than the drain", replace("terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 10"), "shorter than the worker's drain"},
		{"root", replaceAll("runAsNonRoot: true", "runAsNonRoot: false"), "runAsNonRoot is not true"},
		{"uid 0", replace("runAsUser: 65532", "runAsUser: 0"), "runs as uid 0"},
		{"a writable root", replace("readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"), "root filesystem is not read-only"},
		{"capabilities kept", replace("drop:\n            - ALL", "drop:\n            - NET_RAW"), "want drop [ALL]"},
		{"unconfined", replace("type: RuntimeDefault", "type: Unconfined"), "not RuntimeDefault"},
		{"no memory limit", replace("limits:\n            memory: 256Mi\n          requests:", "requests:"), "memory limit"},
		{"an image tagged latest", replace("image: kfleet:dev", "image: kfleet:latest"), "pin a tag"},
		{"a misspelt setting", replace("KFLEET_SECRETS: aws", "KFLEET_SECRET: aws"), "sets KFLEET_SECRET (from ConfigMap kfleet-worker"},
		{"a required setting missing", replace("KFLEET_SECRETS: aws", "KFLEET_POLL_INTERVAL: 1s"), "KFLEET_SECRETS is not set"},
		{"a secret in a ConfigMap", replace("KFLEET_SECRETS: aws", "KFLEET_SECRETS: aws\n  KFLEET_NOTIFY_WEBHOOK: https://hooks.example.com/x"), "KFLEET_NOTIFY_WEBHOOK is a secret"},
		{"envFrom a Secret", replace("- configMapRef:\n            name: kfleet-worker", "- secretRef:\n            name: kfleet-worker"), "hides which variables"},
		{"metrics on loopback", replace("KFLEET_METRICS_ADDR: :9464", "KFLEET_METRICS_ADDR: 127.0.0.1:9464"), "beyond loopback"},
		{"no IAM role", replace("eks.amazonaws.com/role-arn: arn:aws:iam::000000000000:role/kfleet-worker", "eks.amazonaws.com/role-arn: TODO"), "is not an IAM role ARN"},
		{"no attributes Job", replace("- register", "- list"), "attributes register"},
		{"a policy that does not parse", replace("verbs: [status, list]", "verbs: [status, lst]"), "--auth /etc/kfleet/policy/policy.yaml"},
		{"a Service to no port", replace("targetPort: http", "targetPort: web"), "targetPort web is not a port"},
		{"a Secret with values", appendDoc("apiVersion: v1\nkind: Secret\nmetadata:\n  name: kfleet-slack\nstringData:\n  signing-secret: hunter2\n"), "carries values"},
	}
	base := readBase(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			render := base
			if tt.break_ != nil {
				render = tt.break_(t, base)
			}
			objs, err := Decode([]byte(render))
			var msgs []string
			if err != nil {
				msgs = append(msgs, err.Error())
			} else {
				for _, e := range Check(objs) {
					msgs = append(msgs, e.Error())
				}
			}
			if tt.want == "" {
				assert.Empty(t, msgs)
				return
			}
			require.NotEmpty(t, msgs, "the broken render passed")
			assert.Contains(t, strings.Join(msgs, "\n"), tt.want)
		})
	}
}

// TestRenderedManifests renders deploy/k8s's base and overlays with the
// pinned kustomize (make tools) and checks them; make lint does the same.
func TestRenderedManifests(t *testing.T) {
	root := repoRoot(t)
	kustomize := filepath.Join(root, "bin", "kustomize")
	if _, err := os.Stat(kustomize); err != nil {
		t.Skipf("kustomize not built (%v): run `make tools`", err)
	}
	dirs, err := filepath.Glob(filepath.Join(root, "deploy", "k8s", "overlays", "*"))
	require.NoError(t, err)
	for _, dir := range append([]string{filepath.Join(root, "deploy", "k8s", "base")}, dirs...) {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			out, err := exec.Command(kustomize, "build", dir).Output()
			require.NoError(t, err)
			objs, err := Decode(out)
			require.NoError(t, err)
			assert.Empty(t, Check(objs))
		})
	}
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestWorkerEnvCoversTheSource: every variable the worker's code reads is
// classified in workerEnv or temporalEnv, so a new one cannot go unnoticed
// by the manifests' check.
func TestWorkerEnvCoversTheSource(t *testing.T) {
	root := repoRoot(t)
	files, err := filepath.Glob(filepath.Join(root, "worker", "*.go"))
	require.NoError(t, err)
	files = append(files, filepath.Join(root, "workflows", "ids.go"))
	getenv := regexp.MustCompile(`Getenv\("([A-Z0-9_]+)"\)`)
	seen := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		require.NoError(t, err)
		// The concurrency settings are map keys read in a loop.
		names := regexp.MustCompile(`"(KFLEET_[A-Z0-9_]+)":`).FindAllStringSubmatch(string(src), -1)
		for _, m := range append(getenv.FindAllStringSubmatch(string(src), -1), names...) {
			seen++
			env := envFor(componentWorker)
			assert.Contains(t, env, m[1], "%s reads %s: classify it in workerEnv", filepath.Base(f), m[1])
		}
	}
	assert.Greater(t, seen, 15, "the source scan found the worker's variables")
}

// TestTemporalEnvMatchesEnvconfig: temporalEnv names exactly the
// variables the SDK's envconfig reads.
func TestTemporalEnvMatchesEnvconfig(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "go.temporal.io/sdk/contrib/envconfig").Output()
	require.NoError(t, err)
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "client_config_load.go"))
	require.NoError(t, err)
	read := map[string]bool{}
	for _, m := range regexp.MustCompile(`LookupEnv\("(TEMPORAL_[A-Z_]+[A-Z])"\)`).FindAllStringSubmatch(string(src), -1) {
		read[m[1]] = true
	}
	require.Greater(t, len(read), 10)
	for name := range read {
		assert.Contains(t, temporalEnv, name, "envconfig reads %s", name)
	}
	for name := range temporalEnv {
		if strings.HasPrefix(name, "TEMPORAL_") {
			assert.True(t, read[name], "temporalEnv names %s, which envconfig does not read", name)
		}
	}
}
