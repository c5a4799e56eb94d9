package devstack

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/rs/zerolog"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/logging"
	"github.com/kfleet/kfleet/internal/schedules"
	"github.com/kfleet/kfleet/internal/secrets"
	"github.com/kfleet/kfleet/internal/workerapp"
	"github.com/kfleet/kfleet/workflows"
)

// StackOptions configures the local stack. Zero ports pick free ones, which
// is what tests want; `starter dev` uses fixed, documented ports.
type StackOptions struct {
	// Dir is the state folder (sqlite, ZooKeeper data, fleet data, logs).
	Dir            string
	TemporalBinary string
	TemporalPort   int
	TemporalUIPort int
	// TemporalMetricsPort serves the dev server's metrics (0: none).
	TemporalMetricsPort int
	ZooKeeperPort       int
	// FleetHTTPAddr serves the fleet's AWS endpoint and API
	// (default 127.0.0.1:0).
	FleetHTTPAddr string
	Fleet         localfleet.Config
	// WorkerPollInterval paces the worker's waits (default 1 s).
	WorkerPollInterval time.Duration
	// MetricsAddr serves the stack's Prometheus metrics at /metrics
	// (metrics.go); empty serves none.
	MetricsAddr string
	// Health is every registered cluster's health policy (zero: the
	// production defaults); tests and the demo tick faster.
	Health fleet.HealthPolicy
	// NotifyWebhook receives the worker's notifications. Empty with
	// NotifyOut set: a local sink (NotifySink) prints them to NotifyOut;
	// both empty: the worker logs them.
	NotifyWebhook string
	NotifyOut     io.Writer
	// ChatopsAddr serves ChatOps (Slack slash commands and approvals) on
	// this address; empty: none.
	ChatopsAddr string
	// OverviewAddr serves the fleet overview page there ("" : none);
	// OverviewRefresh is how often it lists the fleet (0: 2s).
	OverviewAddr    string
	OverviewRefresh time.Duration
	// WorkerBinary, when set, runs the worker as a process of its own
	// from this build of ./worker (its log in Dir/worker) instead of in
	// this process: a benchmark measures it alone, and the fleet and the
	// worker do not share one process's file descriptors.
	WorkerBinary string
	// Slots tunes the in-process worker's concurrency (zero: defaults).
	Slots workerapp.Slots
	// EventBudget is every registered entity's history budget (0: the
	// default 5,000); tests make it small to see continue-as-new.
	EventBudget int
	// Secrets is the secret source setting (secrets.Open; "aws" is the
	// fleet's Secrets Manager): where the SASL clusters' admin
	// credentials are put and the workers read them. Empty:
	// DefaultSecrets(Dir).
	Secrets string
	// SweepEvery is the fleet sweep schedule's interval: 0 creates (or
	// updates) it with the default (schedules.DefaultSweepEvery), negative
	// creates none.
	SweepEvery time.Duration
	Log        zerolog.Logger
}

// Stack is the whole local stack: Temporal dev server, ZooKeeper, the local
// fleet with its clusters registered in kfleet, and a worker.
type Stack struct {
	Temporal  *Temporal
	ZooKeeper *ZooKeeper
	Fleet     *localfleet.Fleet
	Client    client.Client
	Metrics   *Metrics
	// Notifications is the local chat channel, when NotifyOut asked for
	// one.
	Notifications *NotifySink
	// Chatops is the ChatOps server, when ChatopsAddr asked for one.
	Chatops *Chatops
	// Overview is the fleet overview page, when OverviewAddr asked for one.
	Overview *Overview
	// Specs are the fleet's clusters as kfleet knows them.
	Specs map[string]fleet.ClusterSpec
	// Sweep is the fleet sweep's schedule, unless SweepEvery asked for
	// none.
	Sweep *schedules.Schedule
	// Secrets is the stack's secret source (secrets.go).
	Secrets secrets.Source

	opts   StackOptions
	worker *workerapp.Worker
	// WorkerProcess is the worker's process when StackOptions.WorkerBinary
	// is set.
	WorkerProcess *WorkerProcess
}

// StartStack starts every part in dependency order and registers the
// fleet's clusters. On error, whatever started is stopped again.
func StartStack(ctx context.Context, opts StackOptions) (s *Stack, err error) {
	if opts.Secrets == "" {
		opts.Secrets = DefaultSecrets(opts.Dir)
	}
	s = &Stack{opts: opts}
	defer func() {
		if err != nil {
			s.Close()
			s = nil
		}
	}()
	log := opts.Log
	if s.Temporal, err = StartTemporal(ctx, TemporalOptions{
		Binary:           opts.TemporalBinary,
		Dir:              filepath.Join(opts.Dir, "temporal"),
		Port:             opts.TemporalPort,
		UIPort:           opts.TemporalUIPort,
		SearchAttributes: workflows.SearchAttributeFlags(),
		MetricsPort:      opts.TemporalMetricsPort,
		Log:              log,
	}); err != nil {
		return s, err
	}
	if s.ZooKeeper, err = StartZooKeeper(ctx, filepath.Join(opts.Dir, "zookeeper"), opts.ZooKeeperPort, log); err != nil {
		return s, err
	}
	httpAddr := opts.FleetHTTPAddr
	if httpAddr == "" {
		httpAddr = "127.0.0.1:0"
	}
	keep, err := secrets.NewFileStore(filepath.Join(opts.Dir, "fleet-superusers"))
	if err != nil {
		return s, err
	}
	fleetCfg, err := withAdminPasswords(ctx, opts.Fleet, keep)
	if err != nil {
		return s, err
	}
	if s.Fleet, err = localfleet.Start(ctx, fleetCfg, localfleet.Options{
		ZooKeeper: s.ZooKeeper.Addr,
		DataDir:   filepath.Join(opts.Dir, "fleet"),
		HTTPAddr:  httpAddr,
		Logger:    log.With().Str("component", "localfleet").Logger(),
	}); err != nil {
		return s, fmt.Errorf("local fleet: %w", err)
	}
	if err = s.openSecrets(ctx, fleetCfg); err != nil {
		return s, err
	}
	metrics, err := s.startMetrics()
	if err != nil {
		return s, err
	}
	if s.Client, err = client.DialContext(ctx, client.Options{
		HostPort:       s.Temporal.Addr,
		Logger:         logging.Temporal{Log: log.With().Str("component", "temporal-client").Logger().Level(zerolog.WarnLevel)},
		MetricsHandler: metrics,
	}); err != nil {
		return s, fmt.Errorf("temporal client: %w", err)
	}
	if s.opts.NotifyWebhook == "" && s.opts.NotifyOut != nil {
		if s.Notifications, err = StartNotifySink(s.opts.NotifyOut); err != nil {
			return s, err
		}
		s.opts.NotifyWebhook = s.Notifications.URL
	}
	if err = s.StartWorker(); err != nil {
		return s, err
	}
	s.Specs = SpecsFromFleet(s.Fleet.Endpoints())
	for id, spec := range s.Specs {
		spec.Health = opts.Health
		s.Specs[id] = spec
		if err = registerWhenServed(ctx, s.Client, spec, opts.EventBudget); err != nil {
			return s, err
		}
	}
	// `make run` keeps the fleet swept. The sweep fires on its interval
	// (the next whole hour by default), never at creation, so it costs a
	// stack one RPC; a second start updates it.
	if opts.SweepEvery >= 0 {
		var sweep schedules.Schedule
		// The creation is idempotent (a second one updates): a call the
		// dev server dropped on a loaded machine ("stream terminated by
		// RST_STREAM with error code: CANCEL") is made again.
		for attempt := 1; ; attempt++ {
			sweep, _, err = schedules.CreateSchedule(ctx, s.Client, schedules.ScheduleRequest{Sweep: true, Every: opts.SweepEvery, CreatedBy: "starter dev"})
			if err == nil || attempt == 3 || ctx.Err() != nil || errors.Is(err, schedules.ErrBadSchedule) {
				break
			}
			log.Warn().Err(err).Int("attempt", attempt).Msg("fleet sweep schedule: asking again")
			time.Sleep(time.Second)
		}
		if err != nil {
			return s, fmt.Errorf("fleet sweep schedule: %w", err)
		}
		s.Sweep = &sweep
	}
	if opts.ChatopsAddr != "" {
		if err = s.startChatops(opts.ChatopsAddr, filepath.Join(opts.Dir, "chatops")); err != nil {
			return s, err
		}
	}
	if opts.OverviewAddr != "" {
		// A demo wants a crash on the page within seconds.
		if s.Overview, err = StartOverview(s.Client, client.DefaultNamespace, opts.OverviewAddr, s.Temporal.UI,
			cmp.Or(opts.OverviewRefresh, 2*time.Second), log.With().Str("component", "overview").Logger()); err != nil {
			return s, err
		}
	}
	return s, nil
}

// SpecsFromFleet turns what the fleet serves into kfleet cluster specs. A
// KRaft cluster (one with controllers) gets a KRaft spec with its
// controllers and their listeners as the quorum bootstrap, and no
// ZooKeeper connect string (it has none).
func SpecsFromFleet(ep localfleet.Endpoints) map[string]fleet.ClusterSpec {
	specs := make(map[string]fleet.ClusterSpec, len(ep.Clusters))
	for id, c := range ep.Clusters {
		spec := fleet.ClusterSpec{ID: id, Bootstrap: c.Bootstrap, ZooKeeper: c.ZooKeeper, Security: securityOf(id, c), KRaft: kraftOf(c)}
		for _, b := range c.Brokers {
			spec.Brokers = append(spec.Brokers, fleet.BrokerSpec{ID: b.ID, InstanceID: b.InstanceID, Rack: b.Rack, MetricsURL: b.MetricsURL})
		}
		specs[id] = spec
	}
	return specs
}

// kraftOf is a fleet cluster's KRaft spec; nil for a ZooKeeper cluster.
func kraftOf(c localfleet.ClusterEndpoints) *fleet.KRaftSpec {
	if len(c.Controllers) == 0 {
		return nil
	}
	k := &fleet.KRaftSpec{Mode: fleet.ModeKRaft}
	for _, ctl := range c.Controllers {
		k.Controllers = append(k.Controllers, fleet.ControllerSpec{ID: ctl.ID, InstanceID: ctl.InstanceID})
		k.QuorumBootstrap = append(k.QuorumBootstrap, ctl.Address)
	}
	return k
}

// StartWorker starts the in-process worker (again, after StopWorker).
func (s *Stack) StartWorker() error {
	if s.worker != nil || s.WorkerProcess != nil {
		return errors.New("worker already running")
	}
	if s.opts.WorkerBinary != "" {
		w, err := s.StartWorkerProcess(s.opts.WorkerBinary, filepath.Join(s.opts.Dir, "worker"))
		if err != nil {
			return err
		}
		s.WorkerProcess = w
		return nil
	}
	ep := s.Fleet.Endpoints().AWS
	w, err := workerapp.StartWorker(s.Client, workerapp.WorkerConfig{
		AWS: aws.Config{
			Region:      ep.Region,
			Credentials: credentials.NewStaticCredentialsProvider(ep.AccessKeyID, ep.SecretAccessKey, ""),
		},
		AWSEndpoint:   ep.Endpoint,
		PollInterval:  s.opts.WorkerPollInterval,
		NotifyWebhook: s.opts.NotifyWebhook,
		Slots:         s.opts.Slots,
		EC2WaitMin:    LocalEC2WaitMin,
		EC2WaitMax:    LocalEC2WaitMax,
		Provisioning:  s.LocalProvisioning(),
		Secrets:       s.Secrets,
		Log:           s.opts.Log.With().Str("component", "worker").Logger(),
	})
	if err != nil {
		return err
	}
	s.worker = w
	return nil
}

// The local fleet's EC2 changes states within a second: its waiters
// describe every 100 ms at first, at most every 250 ms (a describe is a
// loopback call), rather than AWS's 15 s and 120 s.
const (
	LocalEC2WaitMin = 100 * time.Millisecond
	LocalEC2WaitMax = 250 * time.Millisecond
)

// LocalImageID is the AMI the local stack launches hosts from (the fleet
// accepts any well-formed one).
const LocalImageID = "ami-0123456789abcdef0"

// LocalProvisioning is how the local stack's workers launch hosts: the
// local image, and each broker's metrics on the fleet's API.
func (s *Stack) LocalProvisioning() activities.ProvisionConfig {
	return activities.ProvisionConfig{ImageID: LocalImageID,
		MetricsURL: s.Fleet.Endpoints().API + "/v1/clusters/{cluster}/brokers/{broker}/metrics"}
}

// StopWorker stops the in-process worker, or kills the worker process.
func (s *Stack) StopWorker() {
	if s.WorkerProcess != nil {
		_ = s.WorkerProcess.Kill()
		s.WorkerProcess = nil
	}
	if s.worker != nil {
		s.worker.Stop()
		s.worker = nil
	}
}

// WriteEndpoints writes what the stack serves to path as JSON, for scripts
// and other tools.
func (s *Stack) WriteEndpoints(path string) error {
	doc := struct {
		Temporal   string               `json:"temporal"`
		TemporalUI string               `json:"temporalUI"`
		ZooKeeper  string               `json:"zookeeper"`
		Fleet      localfleet.Endpoints `json:"fleet"`
	}{s.Temporal.Addr, s.Temporal.UI, s.ZooKeeper.Addr, s.Fleet.Endpoints()}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// Close stops everything in reverse order; safe on a partly started stack.
func (s *Stack) Close() {
	log := s.opts.Log
	if s.Overview != nil {
		if err := s.Overview.Close(); err != nil {
			log.Warn().Err(err).Msg("stop overview")
		}
	}
	if s.Chatops != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := s.Chatops.srv.Shutdown(ctx); err != nil {
			log.Warn().Err(err).Msg("stop chatops")
		}
		cancel()
	}
	s.StopWorker()
	s.closeMetrics()
	if s.Notifications != nil {
		if err := s.Notifications.Close(); err != nil {
			log.Warn().Err(err).Msg("stop notification sink")
		}
	}
	if s.Client != nil {
		s.Client.Close()
	}
	if s.Fleet != nil {
		if err := s.Fleet.Close(); err != nil {
			log.Warn().Err(err).Msg("stop local fleet")
		}
	}
	if s.ZooKeeper != nil {
		if err := s.ZooKeeper.Stop(); err != nil {
			log.Warn().Err(err).Msg("stop zookeeper")
		}
	}
	if s.Temporal != nil {
		if err := s.Temporal.Stop(); err != nil {
			log.Warn().Err(err).Msg("stop temporal")
		}
	}
}

// registerWhenServed registers a cluster's entity. A dev server that has
// just registered its default namespace may still answer "namespace not
// found" from a service whose namespace cache has not refreshed yet (seen
// on a loaded machine): asked again until ctx ends.
func registerWhenServed(ctx context.Context, c client.Client, spec fleet.ClusterSpec, budget int) error {
	for {
		err := entity.RegisterCluster(ctx, c, spec, entity.WithEventBudget(budget))
		var nf *serviceerror.NamespaceNotFound
		if err == nil || !errors.As(err, &nf) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}
