package devstack

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/kfleet/kfleet/internal/secrets"
)

// WorkerProcess is the worker binary running as its own process against
// the stack, for tests that crash it the way production crashes it
// (kill -9), which an in-process worker cannot show.
type WorkerProcess struct {
	proc *process
}

// StartWorkerProcess runs binary (a build of ./worker) against s: the
// stack's Temporal, and the fleet's AWS endpoint with its static
// credentials. Its log is appended to dir/worker.log.
func (s *Stack) StartWorkerProcess(binary, dir string) (*WorkerProcess, error) {
	aws := s.Fleet.Endpoints().AWS
	env := []string{
		"TEMPORAL_ADDRESS=" + s.Temporal.Addr,
		"TEMPORAL_NAMESPACE=default",
		"KFLEET_AWS_ENDPOINT=" + aws.Endpoint,
		"AWS_REGION=" + aws.Region,
		"AWS_ACCESS_KEY_ID=" + aws.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + aws.SecretAccessKey,
		// No shared config or IMDS lookups on a test machine.
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
		// Tests run in parallel: never the fixed default port.
		"KFLEET_METRICS_ADDR=127.0.0.1:0",
		"KFLEET_EC2_WAIT_DELAYS=" + LocalEC2WaitMin.String() + "," + LocalEC2WaitMax.String(),
		"KFLEET_HOST_IMAGE=" + LocalImageID,
		"KFLEET_BROKER_METRICS_URL=" + s.LocalProvisioning().MetricsURL,
		secrets.EnvVar + "=" + s.opts.Secrets,
	}
	if s.opts.WorkerPollInterval > 0 {
		env = append(env, "KFLEET_POLL_INTERVAL="+s.opts.WorkerPollInterval.String())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	proc, err := startProcess("worker", dir, filepath.Join(dir, "worker.log"), env, binary)
	if err != nil {
		return nil, err
	}
	return &WorkerProcess{proc: proc}, nil
}

// PID is the worker's process id (to read its RSS and CPU time).
func (w *WorkerProcess) PID() int { return w.proc.cmd.Process.Pid }

// Kill is kill -9: running activities are abandoned mid-step, as in a crash.
func (w *WorkerProcess) Kill() error { return w.proc.kill() }

// Stop asks the worker to stop gracefully.
func (w *WorkerProcess) Stop() error { return w.proc.stop(15 * time.Second) }

// Pid is the worker's process id.
func (w *WorkerProcess) Pid() string { return strconv.Itoa(w.proc.cmd.Process.Pid) }
