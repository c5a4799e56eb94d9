package deploycheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	good, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	goVersion, err := GoVersion(gomod)
	require.NoError(t, err)
	tests := []struct {
		name     string
		old, new string // the one change to the repository's Dockerfile
		want     string
	}{
		{name: "the repository's Dockerfile"},
		{name: "another Go", old: "FROM golang:" + goVersion + "-bookworm", new: "FROM golang:1.22-bookworm", want: "want golang:" + goVersion},
		{name: "one stage", old: "FROM gcr.io/distroless/static-debian12:nonroot\n", new: "", want: "want a multi-stage build"},
		{name: "flags of its own", old: "RUN make static-binaries STATIC_OUT=/out", new: "RUN CGO_ENABLED=0 go build -o /out/worker ./worker", want: "does not RUN make static-binaries"},
		{name: "root", old: "USER 65532:65532", new: "USER root", want: "want a non-root user"},
		{name: "no USER", old: "USER 65532:65532\n", new: "", want: "want a non-root user"},
		{name: "a full OS", old: "FROM gcr.io/distroless/static-debian12:nonroot", new: "FROM debian:bookworm", want: "want gcr.io/distroless/static-debian12:nonroot or scratch"},
		{name: "a secret in ENV", old: "USER 65532:65532", new: "ENV KFLEET_SLACK_SIGNING_SECRET=abc\nUSER 65532:65532", want: "looks like a secret"},
		{name: "a secret in ARG", old: "WORKDIR /src", new: "ARG TEMPORAL_API_KEY\nWORKDIR /src", want: "looks like a secret"},
		{name: "the local state copied", old: "COPY deploy/ssm", new: "COPY .kfleet /state\nCOPY deploy/ssm", want: "copies what looks like a secret"},
		{name: "ADD from the network", old: "COPY deploy/ssm", new: "ADD https://example.com/x.tgz /x\nCOPY deploy/ssm", want: "ADD fetches"},
		{name: "no starter", old: "COPY --from=build /out/starter /usr/local/bin/starter\n", new: "", want: "does not COPY the starter binary"},
		{name: "a shell-form entrypoint", old: `ENTRYPOINT ["/usr/local/bin/worker"]`, new: "ENTRYPOINT /usr/local/bin/worker", want: "exec-form ENTRYPOINT"},
		{name: "continuation lines", old: "RUN make static-binaries STATIC_OUT=/out", new: "RUN make \\\n    static-binaries \\\n    STATIC_OUT=/out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			df := string(good)
			if tt.old != "" {
				require.Contains(t, df, tt.old)
				df = strings.Replace(df, tt.old, tt.new, 1)
			}
			errs := CheckDockerfile([]byte(df), goVersion)
			if tt.want == "" {
				assert.Empty(t, errs)
				return
			}
			require.NotEmpty(t, errs, "the broken Dockerfile passed")
			assert.Contains(t, joinErrs(errs), tt.want)
		})
	}
}

func TestDockerignore(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	require.NoError(t, err)
	assert.Empty(t, CheckDockerignore(b))
	assert.Contains(t, joinErrs(CheckDockerignore([]byte(".git\nbin\n"))), "does not exclude .kfleet")
}

func joinErrs(errs []error) string {
	var s []string
	for _, e := range errs {
		s = append(s, e.Error())
	}
	return strings.Join(s, "\n")
}

// TestCheckStatic builds a tiny program with the release flags (it
// passes) and without each of them (it fails, naming what is missing).
func TestCheckStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries: skipped under -short")
	}
	tests := []struct {
		name  string
		cgo   string
		flags []string
		want  string
	}{
		{"the release flags", "0", []string{"-trimpath", "-ldflags", "-s -w"}, ""},
		{"cgo", "1", []string{"-trimpath", "-ldflags", "-s -w"}, "dynamically linked"},
		{"cgo, linked statically", "1", []string{"-trimpath", "-ldflags", "-s -w -extldflags=-static"}, "CGO_ENABLED"},
		{"no -trimpath", "0", []string{"-ldflags", "-s -w"}, "-trimpath"},
		{"not stripped", "0", []string{"-trimpath"}, "not stripped"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cgo == "1" {
				if _, err := exec.LookPath("gcc"); err != nil {
					t.Skip("no C compiler for a cgo build")
				}
			}
			bin := filepath.Join(t.TempDir(), "tiny")
			cmd := exec.Command("go", append(append([]string{"build"}, tt.flags...), "-o", bin, "./testdata/tiny")...)
			cmd.Env = append(os.Environ(), "CGO_ENABLED="+tt.cgo)
			out, err := cmd.CombinedOutput()
			if err != nil && tt.cgo == "1" {
				// A machine without libc's static archive cannot link a
				// cgo build statically: nothing to check there.
				t.Skipf("cgo build failed here: %s", out)
			}
			require.NoError(t, err, "%s", out)
			err = CheckStatic(bin)
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
