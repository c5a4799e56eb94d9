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
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/envconfig"

	"github.com/kfleet/kfleet/internal/app"
	"github.com/kfleet/kfleet/internal/logging"
)

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
	webhook := os.Getenv("KFLEET_NOTIFY_WEBHOOK")
	log.Info().Str("temporal", opts.HostPort).Str("namespace", opts.Namespace).Bool("notifyWebhook", webhook != "").Msg("worker starting")
	return app.RunWorker(ctx, c, app.WorkerConfig{
		AWS:           awsCfg,
		AWSEndpoint:   os.Getenv("KFLEET_AWS_ENDPOINT"),
		PollInterval:  poll,
		NotifyWebhook: webhook,
		Log:           log,
	})
}
