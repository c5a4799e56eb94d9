// Package workerapp wires kfleet's worker: the workflows every operation
// kind registers (workflows.Register) and the activities with their
// clients, shared by the worker binary and the local stack (starter dev).
package workerapp

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/rs/zerolog"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/kafka"
	"github.com/kfleet/kfleet/internal/metrics"
	"github.com/kfleet/kfleet/internal/notify"
	"github.com/kfleet/kfleet/internal/secrets"
	"github.com/kfleet/kfleet/internal/zookeeper"
	"github.com/kfleet/kfleet/workflows"
)

// WorkerConfig is what a worker needs besides its Temporal client.
type WorkerConfig struct {
	AWS aws.Config
	// AWSEndpoint overrides AWS's endpoints (the local fleet); empty in
	// production.
	AWSEndpoint string
	// PollInterval paces waits with nothing to watch (default 1 s).
	PollInterval time.Duration
	// NotifyWebhook is the Slack-compatible incoming webhook the on-call
	// messages go to; empty only logs them. It is a secret: never log it.
	NotifyWebhook string
	// Slots tunes the workers' concurrency; zero values are the defaults.
	Slots Slots
	// EC2WaitMin and EC2WaitMax bound the delay between two describes of
	// an EC2 waiter; zero keeps AWS's (15 s, 120 s). The local fleet
	// changes states in a second: its stacks set a fraction of that.
	EC2WaitMin, EC2WaitMax time.Duration
	// Provisioning is how this deployment launches hosts (images,
	// network, the brokers' metrics URL).
	Provisioning activities.ProvisionConfig
	// Secrets is where the secrets secured clusters' specs name are read
	// (KFLEET_SECRETS); nil: no secured cluster can be reached.
	Secrets secrets.Source
	// TaskQueue is the queue polled for workflow tasks and operations'
	// activities, with sensing on TaskQueue+"-sensing"; empty:
	// workflows.QueueFromEnv (KFLEET_TASK_QUEUE, or "kfleet").
	TaskQueue string
	Log       zerolog.Logger
}

// Slots are the concurrency of a worker process's two Temporal workers:
// one polls TaskQueue (workflow tasks and the activities of operations),
// the other SensingTaskQueue (each entity's broker watch, held for hours,
// and its health ticks). They have separate slot pools, so a fleet's
// watches never take the slots its operations need.
type Slots struct {
	// Activities bounds the operations' concurrent activities (default
	// 1,000, the SDK's).
	Activities int `json:"activities,omitempty"`
	// WorkflowTasks bounds concurrent workflow tasks (default 1,000).
	WorkflowTasks int `json:"workflowTasks,omitempty"`
	// Sensing bounds the sensing worker's concurrent activities: a watch
	// per cluster this worker holds, plus health ticks (default 10,000;
	// a watch is a goroutine blocked on a ZooKeeper watch).
	Sensing int `json:"sensing,omitempty"`
	// ActivityPollers, WorkflowPollers and SensingPollers are the pollers
	// of each (default: the SDK's, 2 each).
	ActivityPollers int `json:"activityPollers,omitempty"`
	WorkflowPollers int `json:"workflowPollers,omitempty"`
	SensingPollers  int `json:"sensingPollers,omitempty"`
}

// StopTimeout and SensingStopTimeout are how long Stop waits for running
// activities of the task queue's worker and then of the sensing worker:
// a deployment gives the process longer than their sum to stop (the
// Kubernetes manifests' terminationGracePeriodSeconds, checked by
// internal/deploycheck).
const (
	StopTimeout        = 10 * time.Second
	SensingStopTimeout = time.Second
)

// DefaultSensingSlots is Slots.Sensing's default.
const DefaultSensingSlots = 10_000

// Worker is a started kfleet worker process: its two Temporal workers.
type Worker struct {
	w, sensing worker.Worker
	kafka      *kafka.Pool
	zk         *zookeeper.Pool
}

// StartWorker registers kfleet's workflows and activities on the task queue
// and starts polling.
func StartWorker(c client.Client, cfg WorkerConfig) (*Worker, error) {
	kp, zp := kafka.NewPool(kafka.WithSecrets(cfg.Secrets)), zookeeper.NewPool(zookeeper.WithSecrets(cfg.Secrets))
	var ec2Opts []cloud.EC2Option
	if cfg.EC2WaitMin > 0 {
		ec2Opts = append(ec2Opts, cloud.WithWaitDelays(cfg.EC2WaitMin, cfg.EC2WaitMax))
	}
	ec2 := cloud.NewEC2(cfg.AWS, cfg.AWSEndpoint, ec2Opts...)
	operator := entity.Operator{Client: c}
	acts := &activities.Activities{
		Kafka:        kp,
		ZooKeeper:    zp,
		Hosts:        cloud.NewSSM(cfg.AWS, cfg.AWSEndpoint),
		Metrics:      metrics.Scraper{},
		Instances:    ec2,
		Lifecycle:    ec2,
		Specs:        entity.Operator{Client: c},
		LogDirs:      kp,
		Reassigner:   kp,
		KRaft:        kp,
		Fencing:      kp,
		MigrationZK:  zp,
		Entities:     operator,
		Controllers:  kp,
		Quotas:       kp,
		Ensemble:     zookeeper.Ensemble{},
		EC2:          ec2,
		Provisioning: cfg.Provisioning,
		Admin:        kp,
		Chroots:      zp,
		Registry:     operator,
		Operator:     operator,
		Tenants:      kp,
		Topics:       kp,
		TopicChanges: kp,
		Log:          cfg.Log,
		PollInterval: cfg.PollInterval,
		Sensors:      activities.NewSensors(),
	}
	if cfg.Secrets != nil {
		// Tenants' new passwords are handed out through the deployment's
		// secret source.
		acts.Secrets, acts.SecretNotFound = cfg.Secrets, secrets.ErrNotFound
	}
	if cfg.NotifyWebhook != "" {
		acts.Notifier = activities.WebhookNotifier{Webhook: &notify.Webhook{URL: cfg.NotifyWebhook}}
	}
	sl := cfg.Slots
	queue := cmp.Or(cfg.TaskQueue, workflows.QueueFromEnv())
	w := worker.New(c, queue, worker.Options{
		MaxConcurrentActivityExecutionSize:     sl.Activities,
		MaxConcurrentWorkflowTaskExecutionSize: sl.WorkflowTasks,
		MaxConcurrentActivityTaskPollers:       sl.ActivityPollers,
		MaxConcurrentWorkflowTaskPollers:       sl.WorkflowPollers,
		// Let a running activity finish its step on shutdown rather than
		// abandon it to a retry.
		WorkerStopTimeout: StopTimeout,
	})
	workflows.Register(w)
	w.RegisterActivity(acts)
	if sl.Sensing <= 0 {
		sl.Sensing = DefaultSensingSlots
	}
	sensing := worker.New(c, queue+workflows.SensingSuffix, worker.Options{
		MaxConcurrentActivityExecutionSize: sl.Sensing,
		MaxConcurrentActivityTaskPollers:   sl.SensingPollers,
		// Watches only wait: cancelled at once, resumed by the next worker.
		WorkerStopTimeout: SensingStopTimeout,
	})
	sensing.RegisterActivity(acts)
	if err := w.Start(); err != nil {
		kp.Close()
		zp.Close()
		return nil, fmt.Errorf("start worker on task queue %s: %w", queue, err)
	}
	if err := sensing.Start(); err != nil {
		w.Stop()
		kp.Close()
		zp.Close()
		return nil, fmt.Errorf("start worker on task queue %s: %w", queue+workflows.SensingSuffix, err)
	}
	return &Worker{w: w, sensing: sensing, kafka: kp, zk: zp}, nil
}

// Stop stops polling, waits for running activities up to the stop timeout,
// and closes the cluster connections.
func (w *Worker) Stop() {
	w.sensing.Stop()
	w.w.Stop()
	w.kafka.Close()
	w.zk.Close()
}

// RunWorker runs a worker until ctx ends.
func RunWorker(ctx context.Context, c client.Client, cfg WorkerConfig) error {
	w, err := StartWorker(c, cfg)
	if err != nil {
		return err
	}
	<-ctx.Done()
	w.Stop()
	return nil
}
