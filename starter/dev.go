package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/kfleet/kfleet/internal/chatops"
	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/logging"
	"github.com/kfleet/kfleet/internal/secrets"
)

func newDevCommand() *cobra.Command {
	var (
		stateDir  string
		fleetFile string
		temporal  string
		basePort  int
		logJSON   bool
		opts      devstack.StackOptions
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole local stack in the foreground: Temporal, ZooKeeper, the local fleet, the worker",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			log := logging.New(os.Stderr, !logJSON, zerolog.InfoLevel)
			if opts.MetricsAddr == "off" {
				opts.MetricsAddr = ""
			}
			cfg := localfleet.DefaultConfig()
			// Beside the plaintext clusters, one as kfleet's managed
			// clusters are: SASL/SCRAM and ACLs, its admin password made
			// now and kept in the secret source only.
			cfg.Clusters = append(cfg.Clusters, devstack.SecuredCluster())
			// And one without ZooKeeper, as every Kafka 4 cluster is.
			cfg.Clusters = append(cfg.Clusters, devstack.KRaftCluster())
			if fleetFile != "" {
				var err error
				if cfg, err = localfleet.LoadConfig(fleetFile); err != nil {
					return exitError{exitBadInput, err}
				}
			}
			assignBrokerPorts(&cfg, basePort)
			abs, err := filepath.Abs(stateDir)
			if err != nil {
				return err
			}
			opts.Dir, opts.TemporalBinary, opts.Fleet, opts.Log = abs, temporal, cfg, log
			if opts.Secrets == "" {
				opts.Secrets = devstack.DefaultSecrets(abs)
			}
			// Without a real webhook, notifications land in a local
			// sink that prints them here, as a chat channel would show them.
			opts.NotifyOut = cmd.OutOrStdout()
			stack, err := devstack.StartStack(ctx, opts)
			if err != nil {
				return err
			}
			defer stack.Close()
			endpoints := filepath.Join(abs, "endpoints.json")
			if err := stack.WriteEndpoints(endpoints); err != nil {
				return err
			}
			printWelcome(cmd, stack, endpoints)
			<-ctx.Done()
			fmt.Fprintln(cmd.OutOrStdout(), "\nstopping the local stack...")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&stateDir, "state-dir", ".kfleet", "local state folder (Temporal sqlite, ZooKeeper and fleet data, logs)")
	f.StringVar(&fleetFile, "fleet", "", "fleet file (YAML); default: local-a (3 brokers), local-b (6 over 3 racks), local-s (3, SASL/SCRAM and ACLs) and local-k (KRaft: 3 controllers, 3 brokers)")
	f.StringVar(&opts.Secrets, "secrets", os.Getenv(secrets.EnvVar), "secret source: file:DIR, or aws for the local fleet's Secrets Manager (default $"+secrets.EnvVar+", else file:<state-dir>/secrets)")
	f.StringVar(&temporal, "temporal", "bin/temporal", "temporal CLI binary")
	f.IntVar(&opts.TemporalPort, "temporal-port", 7233, "Temporal frontend port")
	f.IntVar(&opts.TemporalUIPort, "ui-port", 8233, "Temporal web UI port")
	f.IntVar(&opts.ZooKeeperPort, "zookeeper-port", 2181, "ZooKeeper client port")
	f.IntVar(&basePort, "broker-base-port", 19092, "first broker port; brokers without ports in the fleet file take the next ones")
	f.StringVar(&opts.FleetHTTPAddr, "fleet-addr", "127.0.0.1:4566", "local fleet AWS endpoint and API address")
	f.StringVar(&opts.MetricsAddr, "metrics-addr", "127.0.0.1:9464", "address of the worker's Prometheus metrics, served at /metrics (off: none)")
	f.BoolVar(&logJSON, "log-json", false, "log JSON lines, as the worker binary does, instead of the console format")
	// A demo wants to see a fault healed in seconds, not minutes.
	f.DurationVar(&opts.Health.Interval, "health-interval", 5*time.Second, "health tick of every cluster (production default 1m)")
	f.DurationVar(&opts.Health.RecoveryGrace, "recovery-grace", 5*time.Second, "how long a lost broker may take to come back by itself (production default 15s)")
	f.DurationVar(&opts.Health.SensingHeartbeat, "sensing-heartbeat", 30*time.Second, "how long a killed worker may leave a cluster unsensed (production default 5m; each heartbeat is a billed action)")
	f.DurationVar(&opts.SweepEvery, "sweep-every", 0, "fleet sweep schedule's interval (default 1h; negative: create none)")
	f.StringVar(&opts.ChatopsAddr, "chatops-addr", "127.0.0.1:3000", "ChatOps server (Slack slash commands and approvals); empty: none")
	f.StringVar(&opts.OverviewAddr, "overview-addr", "127.0.0.1:8080", "fleet overview page (starter overview); empty: none")
	f.StringVar(&opts.NotifyWebhook, "notify-webhook", "", "Slack-compatible incoming webhook for notifications (default: printed here as [chat] lines)")
	return cmd
}

func printWelcome(cmd *cobra.Command, s *devstack.Stack, endpoints string) {
	out := cmd.OutOrStdout()
	ep := s.Fleet.Endpoints()
	fmt.Fprintf(out, "\nkfleet local stack is up.\n\n")
	fmt.Fprintf(out, "  Temporal UI      %s\n", s.Temporal.UI)
	fmt.Fprintf(out, "  Temporal         %s\n", s.Temporal.Addr)
	fmt.Fprintf(out, "  ZooKeeper        %s\n", s.ZooKeeper.Addr)
	fmt.Fprintf(out, "  AWS (EC2/SSM/SM) %s\n", ep.AWS.Endpoint)
	fmt.Fprintf(out, "  Secrets          %s\n", s.SecretsSetting())
	fmt.Fprintf(out, "  Fleet API        %s\n", ep.API)
	if s.Metrics.URL != "" {
		fmt.Fprintf(out, "  Metrics          %s\n", s.Metrics.URL)
	}
	ids := make([]string, 0, len(s.Specs))
	for id := range s.Specs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		spec := s.Specs[id]
		if spec.Mode() == fleet.ModeKRaft {
			fmt.Fprintf(out, "  cluster %-8s bootstrap %v, KRaft: controllers %v at %v\n", id, spec.Bootstrap, spec.ControllerIDs(), spec.KRaft.QuorumBootstrap)
		} else {
			fmt.Fprintf(out, "  cluster %-8s bootstrap %v, zookeeper %s\n", id, spec.Bootstrap, spec.ZooKeeper)
		}
		if c := ep.Clusters[id]; c.SASL != nil {
			fmt.Fprintf(out, "  %-16s %s as %s, ACLs %v; credentials in secret %s\n", "", c.SASL.Mechanism, c.SASL.Superuser,
				map[bool]string{true: "on", false: "off"}[c.ACLs], spec.Security.SASL.CredentialsSecret)
		}
	}
	if sw := s.Sweep; sw != nil {
		fmt.Fprintf(out, "  fleet sweep      %s, %s (bin/starter schedule list)\n", sw.ID, sw.Spec)
	}
	if o := s.Overview; o != nil {
		fmt.Fprintf(out, "  Fleet overview   %s\n", o.URL)
	}
	if c := s.Chatops; c != nil {
		fmt.Fprintf(out, "  ChatOps          %s%s (secret %s, policy %s)\n", c.URL, chatops.PathCommands, c.SecretFile, c.PolicyFile)
	}
	fmt.Fprintf(out, "  endpoints        %s\n\n", endpoints)
	first := firstOr(ids, "local-a")
	fmt.Fprintf(out, "Try, in another terminal:\n  bin/starter restart --cluster %s\n", first)
	fmt.Fprintf(out, "  curl -X POST %s/v1/clusters/%s/brokers/2/faults/crash   # kfleet recovers it\n", ep.API, first)
	fmt.Fprintf(out, "  bin/starter status --cluster %s\n", first)
	if s.Chatops != nil {
		fmt.Fprintf(out, "  bin/starter chatops say --as alice --server %s \"restart %s\"   # then approve as bob\n", s.Chatops.URL, first)
	}
	fmt.Fprintf(out, "\nCtrl-C stops everything.\n")
}

func firstOr(ids []string, def string) string {
	if len(ids) > 0 {
		return ids[0]
	}
	return def
}

// assignBrokerPorts gives brokers without configured ports stable ones from
// base on, so bootstrap addresses survive a restart of the stack.
func assignBrokerPorts(cfg *localfleet.Config, base int) {
	next := base
	for i := range cfg.Clusters {
		c := &cfg.Clusters[i]
		if len(c.BrokerPorts) == 0 {
			for range c.Brokers {
				c.BrokerPorts = append(c.BrokerPorts, next)
				next++
			}
		}
	}
	// Controllers after every broker, so the brokers' ports stay what
	// they were before KRaft clusters existed.
	for i := range cfg.Clusters {
		if k := cfg.Clusters[i].KRaft; k != nil && len(k.ControllerPorts) == 0 {
			for range k.Controllers {
				k.ControllerPorts = append(k.ControllerPorts, next)
				next++
			}
		}
	}
}
