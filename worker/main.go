// Command worker runs kfleet's Temporal worker: it connects to Temporal
// (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and the SDK's other environment
// conventions), registers kfleet's workflows and activities, and stops
// gracefully on SIGINT/SIGTERM.
//
// AWS is reached with the default credential chain; KFLEET_AWS_ENDPOINT
// points it at another endpoint (the local fleet's). KFLEET_POLL_INTERVAL
// paces waits that have nothing to watch (default 1s). KFLEET_NOTIFY_WEBHOOK
// is the Slack-compatible incoming webhook on-call messages are posted to;
// unset, they are only logged.
//
// Provisioning (creating clusters): KFLEET_HOST_IMAGE and
// KFLEET_ZOOKEEPER_IMAGE (the hosts' AMIs), KFLEET_HOST_SUBNETS
// (zone=subnet,...), KFLEET_HOST_SECURITY_GROUPS,
// KFLEET_HOST_INSTANCE_PROFILE, KFLEET_BROKER_METRICS_URL (a template of
// {host}, {cluster} and {broker}) and KFLEET_EC2_WAIT_DELAYS (min,max
// between an EC2 waiter's describes; default AWS's 15s,120s).
//
// KFLEET_TASK_QUEUE names the task queue (default kfleet; sensing polls it
// with the suffix -sensing): every worker and client of one deployment
// sets the same.
//
// Concurrency (workerapp.Slots; zero or unset is the default):
// KFLEET_MAX_ACTIVITIES and KFLEET_MAX_WORKFLOW_TASKS bound the operations'
// activities and the workflow tasks on the task queue (1,000 each);
// KFLEET_MAX_SENSING bounds the sensing worker's (the sensing queue: one
// Sense activity per cluster and asked health checks; 10,000);
// KFLEET_ACTIVITY_POLLERS, KFLEET_WORKFLOW_POLLERS and KFLEET_SENSING_POLLERS
// set the pollers of each.
//
// KFLEET_SECRETS is where the secrets that secured clusters' specs name
// are read (fleet.Security): file:/path/to/dir (a directory of 0600
// files), aws (AWS Secrets Manager, at KFLEET_AWS_ENDPOINT when set) or
// aws:prefix/ (every name prefixed). Unset, secured clusters cannot be
// reached; plaintext ones need none.
//
// KFLEET_METRICS_ADDR is where Prometheus metrics are served, at /metrics
// (default 127.0.0.1:9464; "off" serves none): the SDK's (temporal_…),
// kfleet's own (kfleet_…), and the Go runtime's and process's. Logs are
// JSON lines on stderr, with cluster and broker fields on a workflow's or
// an activity's lines.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/kfleet/kfleet/internal/logging"
	"github.com/kfleet/kfleet/internal/secrets"
	"github.com/kfleet/kfleet/internal/telemetry"
	"github.com/kfleet/kfleet/internal/workerapp"
	"github.com/kfleet/kfleet/workflows"
)

// defaultMetricsAddr is loopback: exposing metrics beyond the host is a
// deployment's decision (KFLEET_METRICS_ADDR=:9464).
const defaultMetricsAddr = "127.0.0.1:9464"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := logging.Default().With().Str("component", "worker").Logger()

	opts, err := envconfig.LoadDefaultClientOptions()
	if err != nil {
		return fmt.Errorf("temporal client options: %w", err)
	}
	opts.Logger = logging.Temporal{Log: log}
	reg := telemetry.NewRegistry()
	if opts.MetricsHandler, err = telemetry.NewHandler(reg, telemetry.Options{Help: workflows.MetricHelp()}); err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	if addr := metricsAddr(); addr != "" {
		srv, err := telemetry.Listen(addr, reg, log)
		if err != nil {
			return err
		}
		defer srv.Close()
		log.Info().Str("url", srv.URL()).Msg("serving metrics")
	}
	c, err := client.DialContext(ctx, opts)
	if err != nil {
		return fmt.Errorf("connect to temporal at %q: %w", opts.HostPort, err)
	}
	defer c.Close()

	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("aws config: %w", err)
	}
	var poll time.Duration
	if v := os.Getenv("KFLEET_POLL_INTERVAL"); v != "" {
		if poll, err = time.ParseDuration(v); err != nil || poll <= 0 {
			return fmt.Errorf("KFLEET_POLL_INTERVAL=%q: want a positive duration such as 500ms", v)
		}
	}
	slots, err := slotsFromEnv()
	if err != nil {
		return err
	}
	prov, err := provisioningFromEnv()
	if err != nil {
		return err
	}
	waitMin, waitMax, err := ec2WaitDelays()
	if err != nil {
		return err
	}
	var src secrets.Source
	if setting := os.Getenv(secrets.EnvVar); setting != "" {
		if src, err = secrets.Open(setting, awsCfg, os.Getenv("KFLEET_AWS_ENDPOINT")); err != nil {
			return err
		}
	}
	webhook := os.Getenv("KFLEET_NOTIFY_WEBHOOK")
	// The setting names a directory or a service, never a secret.
	log.Info().Str("temporal", opts.HostPort).Str("namespace", opts.Namespace).Bool("notifyWebhook", webhook != "").
		Str("secrets", os.Getenv(secrets.EnvVar)).Msg("worker starting")
	return workerapp.RunWorker(ctx, c, workerapp.WorkerConfig{
		AWS:           awsCfg,
		AWSEndpoint:   os.Getenv("KFLEET_AWS_ENDPOINT"),
		PollInterval:  poll,
		NotifyWebhook: webhook,
		Slots:         slots,
		EC2WaitMin:    waitMin,
		EC2WaitMax:    waitMax,
		Provisioning:  prov,
		Secrets:       src,
		Log:           log,
	})
}

// slotsFromEnv reads the workers' concurrency from the environment.
func slotsFromEnv() (workerapp.Slots, error) {
	var s workerapp.Slots
	for name, field := range map[string]*int{
		"KFLEET_MAX_ACTIVITIES":     &s.Activities,
		"KFLEET_MAX_WORKFLOW_TASKS": &s.WorkflowTasks,
		"KFLEET_MAX_SENSING":        &s.Sensing,
		"KFLEET_ACTIVITY_POLLERS":   &s.ActivityPollers,
		"KFLEET_WORKFLOW_POLLERS":   &s.WorkflowPollers,
		"KFLEET_SENSING_POLLERS":    &s.SensingPollers,
	} {
		v := os.Getenv(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return s, fmt.Errorf("%s=%q: want a whole number, 0 for the default", name, v)
		}
		*field = n
	}
	return s, nil
}

// metricsAddr is KFLEET_METRICS_ADDR: empty for "off".
func metricsAddr() string {
	switch v := os.Getenv("KFLEET_METRICS_ADDR"); v {
	case "":
		return defaultMetricsAddr
	case "off":
		return ""
	default:
		return v
	}
}
