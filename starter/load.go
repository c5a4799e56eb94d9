package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/loadprofile"
	"github.com/kfleet/kfleet/internal/localfleet"
)

// The load command: the load-profile harness (internal/loadprofile)
// against a cluster kfleet operates. Tenants are created through kfleet
// and their credentials taken from the handouts; no password is printed.

type loadFlags struct {
	cluster, by, fleet     string
	tenants, messages      int
	seed                   uint64
	overQuota              int
	offlineBroker          int32
	grow                   bool
	growStep, growMax      int
	growMessages           int
	p99                    time.Duration
	drain, offlineWaitTime time.Duration
}

// loadAnswer is what `load --json` prints.
type loadAnswer struct {
	Report loadprofile.Report      `json:"report"`
	Grow   *loadprofile.GrowResult `json:"grow,omitempty"`
}

func newLoadCommand(g *globalFlags) *cobra.Command {
	var f loadFlags
	cmd := &cobra.Command{
		Use:   "load --cluster ID [--tenants 50] [--messages 1000000] [--offline-broker N --fleet URL] [--grow]",
		Short: "Run the load-profile harness on a cluster: tenants of the seeds' mix, a million messages, a broker offline mid-run",
		Long: `Creates --tenants tenants on the cluster through kfleet (10% tiny, 20% large
records at a slow rate, --over-quota driven past their plan, the rest random,
all drawn from --seed), a topic each through the admin lane, and drives them
with franz-go clients logging in as the tenants (SCRAM-SHA-512, acks=all,
idempotent). Prints a row per tenant: acknowledged, read back, lost, errors,
throughput, produce latency percentiles, throttle time and quota breaches.

--offline-broker N crashes broker N once half the records are acknowledged,
through the local fleet's fault API at --fleet (make run: http://127.0.0.1:4566),
and reports when kfleet's recovery ran and the broker was back. Without
--fleet the crash is skipped and the report says so.

--grow then adds --grow-step tenants a round (a new topic each, --grow-messages
per random tenant) until a limit is hit: kfleet's placement refusing a tenant,
the admin lane refusing a topic, a record lost, produce errors, p99 over
--p99-slo, tenants within their plans throttled, or asked rates not kept.

The tenants stay on the cluster afterwards (delete them with tenant delete).
Credentials come from the secret source (KFLEET_SECRETS, default make run's
file:.kfleet/secrets); no password is printed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkCluster(f.cluster); err != nil {
				return err
			}
			if f.tenants <= 0 || f.messages <= 0 {
				return exitError{exitBadInput, fmt.Errorf("--tenants %d, --messages %d: want both positive", f.tenants, f.messages)}
			}
			p := loadprofile.NewProfile(f.tenants, f.messages, f.seed)
			p.OverQuota = f.overQuota
			if _, err := loadprofile.Assign(p); err != nil {
				return exitError{exitBadInput, err}
			}
			return withClient(cmd, g, func(ctx context.Context, c client.Client) error { return runLoad(ctx, cmd, g, c, f, p) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.cluster, "cluster", "", "cluster id")
	fl.StringVar(&f.by, "requested-by", defaultRequester(), "who asks (recorded on every tenant and topic request)")
	fl.IntVar(&f.tenants, "tenants", 50, "tenants to create")
	fl.IntVar(&f.messages, "messages", 1_000_000, "messages in all")
	fl.Uint64Var(&f.seed, "seed", 14, "seed of the mix, the sizes and the rates")
	fl.IntVar(&f.overQuota, "over-quota", 1, "random tenants driven past their plan's produce quota")
	fl.Int32Var(&f.offlineBroker, "offline-broker", 0, "crash this broker mid-run (needs --fleet); 0: none")
	fl.StringVar(&f.fleet, "fleet", "", "the local fleet's API, e.g. http://127.0.0.1:4566 (make run)")
	fl.DurationVar(&f.offlineWaitTime, "offline-wait", 2*time.Minute, "how long to wait for kfleet to have the broker back")
	fl.DurationVar(&f.drain, "drain", time.Minute, "how long the consumers may take to read back what was acknowledged")
	fl.BoolVar(&f.grow, "grow", false, "then add tenants until a limit is hit")
	fl.IntVar(&f.growStep, "grow-step", 10, "tenants added a grow round")
	fl.IntVar(&f.growMax, "grow-max", 500, "stop growing at this many tenants")
	fl.IntVar(&f.growMessages, "grow-messages", 1000, "messages per random tenant in a grow round")
	fl.DurationVar(&f.p99, "p99-slo", 2*time.Second, "grow's produce latency SLO")
	return cmd
}

func runLoad(ctx context.Context, cmd *cobra.Command, g *globalFlags, c client.Client, f loadFlags, p loadprofile.Profile) error {
	open := g.secrets
	if open == nil {
		open = envSecretSource
	}
	src, notFound, err := open(ctx)
	if err != nil {
		return fmt.Errorf("cluster %s: secret source: %w", f.cluster, err)
	}
	progress := g.progressOut(cmd)
	r := &loadprofile.Runner{Temporal: c, Cluster: f.cluster, Handouts: src, NotFound: notFound, RequestedBy: f.by,
		Progress: progress, Drain: f.drain, OfflineWait: f.offlineWaitTime}
	var skipped string
	switch {
	case f.offlineBroker > 0 && f.fleet == "":
		skipped = "no --fleet given: the local fleet's fault API is how the CLI takes a broker offline"
		fmt.Fprintf(cmd.ErrOrStderr(), "broker %d will not be taken offline: %s\n", f.offlineBroker, skipped)
	case f.offlineBroker > 0:
		base, err := url.Parse(strings.TrimRight(f.fleet, "/"))
		if err != nil || base.Scheme == "" || base.Host == "" {
			return exitError{exitBadInput, fmt.Errorf("--fleet %q: want a URL like http://127.0.0.1:4566", f.fleet)}
		}
		r.Offline, r.OfflineBroker = fleetAPI{base: base.String(), http: &http.Client{Timeout: 10 * time.Second}, who: f.by}, f.offlineBroker
	}
	rep, tenants, err := r.Run(ctx, p)
	if err != nil {
		if len(tenants) > 0 {
			names := make([]string, len(tenants))
			for i, t := range tenants {
				names[i] = t.Name
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "tenants created before the error (they stay on %s): %s\n", f.cluster, strings.Join(names, ", "))
		}
		return err
	}
	if skipped != "" {
		rep.Offline = &loadprofile.OfflineReport{Broker: f.offlineBroker, Skipped: skipped}
	}
	ans := loadAnswer{Report: rep}
	if f.grow {
		r.Offline = nil
		res, err := r.Grow(ctx, p, tenants, loadprofile.GrowOptions{Step: f.growStep, MaxTenants: f.growMax, MessagesPerTenant: f.growMessages, P99: f.p99})
		if err != nil {
			return err
		}
		ans.Grow = &res
	}
	return g.emit(cmd, ans, func(out io.Writer) {
		rep.WriteTable(out)
		if ans.Grow == nil {
			return
		}
		for _, round := range ans.Grow.Rounds {
			fmt.Fprintf(out, "\ngrow round %d: %d tenant(s), %.0f msgs/s, p99 %.0f ms, %d lost, %d of %d tenant(s) throttled\n", round.Round,
				round.Totals.Tenants, round.Totals.MsgsPerSec, round.Totals.Latency.P99, round.Totals.Lost, round.Totals.TenantsThrottled, round.Totals.Tenants)
		}
		l := ans.Grow.Limit
		fmt.Fprintf(out, "\nlimit at %d tenant(s): %s\n  %s\n", l.Tenants, l.Name, l.Detail)
	})
}

// fleetAPI takes a broker offline through the local fleet's HTTP fault
// API (a crash: no controlled shutdown) and reads its state there.
type fleetAPI struct {
	base string
	http *http.Client
	who  string
}

func (a fleetAPI) TakeOffline(ctx context.Context, cluster string, broker int32) error {
	u := fmt.Sprintf("%s/v1/clusters/%s/brokers/%d/faults/crash", a.base, url.PathEscape(cluster), broker)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set(localfleet.WhoHeader, "kfleet-load "+a.who)
	resp, err := a.http.Do(req)
	if err != nil {
		return fmt.Errorf("cluster %s: crash broker %d: %w", cluster, broker, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("cluster %s: crash broker %d: %s: %s", cluster, broker, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

func (a fleetAPI) Running(ctx context.Context, cluster string, broker int32) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/v1/clusters/%s/brokers", a.base, url.PathEscape(cluster)), nil)
	if err != nil {
		return false, err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return false, fmt.Errorf("cluster %s: brokers: %w", cluster, err)
	}
	defer resp.Body.Close()
	var st localfleet.ClusterStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return false, fmt.Errorf("cluster %s: brokers: %w", cluster, err)
	}
	for _, b := range st.Brokers {
		if b.ID == broker {
			return b.State == localfleet.StateRunning, nil
		}
	}
	return false, fmt.Errorf("cluster %s: no broker %d", cluster, broker)
}
