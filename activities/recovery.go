package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/metrics"
)

// Diagnosis is what the host says about a broker that left without a
// controlled shutdown.
type Diagnosis struct {
	// InstanceState is EC2's state of the broker's instance (running,
	// stopped, terminated ...; InstanceNotFound when EC2 does not know
	// it); InstanceGone is true when the instance is
	// not running or does not exist: no document can run there.
	InstanceState string `json:"instanceState"`
	InstanceGone  bool   `json:"instanceGone"`
	// Process is the Kafka service's state (kfleet-BrokerStatus first
	// line: running, stopped, failed, crashed, recovering ...).
	Process string `json:"process,omitempty"`
	// Limits and segment count of the host (kfleet-HostLimits).
	MaxMapCount int64 `json:"maxMapCount,omitempty"`
	Nofile      int64 `json:"nofile,omitempty"`
	Segments    int   `json:"segments,omitempty"`
	// Cause and Evidence come from the last log lines (kfleet-TailLog),
	// classified by fleet.ClassifyCrash; only the matching lines are kept.
	Cause    fleet.CrashCause `json:"cause"`
	Evidence []string         `json:"evidence,omitempty"`
}

// InstanceNotFound is Diagnosis.InstanceState when EC2 does not know the
// instance (terminated long ago, or never existed).
const InstanceNotFound = "not-found"

// instanceRunning is EC2's state of an instance SSM can reach.
const instanceRunning = "running"

// diagnosisLogLines is how many of the broker's last log lines a diagnosis
// reads; only the lines that name the cause are kept.
const diagnosisLogLines = 200

// DiagnoseBroker reads the broker's host: the instance's state (EC2), the
// service state and limits, and the last log lines (SSM). Read-only. On an
// instance that is gone it runs no document: InstanceGone is the answer.
func (a *Activities) DiagnoseBroker(ctx context.Context, in BrokerInput) (Diagnosis, error) {
	host, err := in.host()
	if err != nil {
		return Diagnosis{}, err
	}
	log := a.Log.With().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Str("instance", host.InstanceID).Logger()
	var d Diagnosis
	inst, err := a.Instances.DescribeInstance(ctx, host.InstanceID)
	switch {
	case errors.Is(err, cloud.ErrInstanceNotFound):
		d.InstanceState, d.InstanceGone = InstanceNotFound, true
	case err != nil:
		return Diagnosis{}, fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
	default:
		d.InstanceState, d.InstanceGone = inst.State, inst.State != instanceRunning
	}
	if d.InstanceGone {
		d.Cause = fleet.CauseUnknown
		log.Warn().Str("instanceState", d.InstanceState).Msg("diagnosis: the broker's instance is gone")
		return d, nil
	}

	if d.Process, err = a.brokerProcess(ctx, in, host, a.ticker(ctx, cloud.DocBrokerStatus)); err != nil {
		return Diagnosis{}, err
	}
	limits, err := a.hostLimits(ctx, in, host)
	if err != nil {
		return Diagnosis{}, err
	}
	d.MaxMapCount, d.Nofile, d.Segments = limits.MaxMapCount, limits.Nofile, limits.Segments
	res, err := a.Hosts.RunDocument(ctx, host.InstanceID, cloud.DocTailLog,
		map[string]string{cloud.ParamLines: strconv.Itoa(diagnosisLogLines)}, in.Reason, a.ticker(ctx, cloud.DocTailLog))
	if err != nil {
		return Diagnosis{}, fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
	}
	// The tail stays here: only the lines that name the cause go on.
	d.Cause, d.Evidence = fleet.ClassifyCrash(splitLines(res.Stdout))
	log.Info().Str("instanceState", d.InstanceState).Str("process", d.Process).Str("cause", string(d.Cause)).
		Strs("evidence", d.Evidence).Int("segments", d.Segments).Int64("maxMapCount", d.MaxMapCount).Int64("nofile", d.Nofile).
		Msg("diagnosis")
	return d, nil
}

// brokerProcess runs kfleet-BrokerStatus and returns its first line, the
// Kafka service's state. The rest (a journal tail) is not kept.
func (a *Activities) brokerProcess(ctx context.Context, in BrokerInput, host fleet.BrokerSpec, tick func()) (string, error) {
	res, err := a.Hosts.RunDocument(ctx, host.InstanceID, cloud.DocBrokerStatus, nil, in.Reason, tick)
	if err != nil {
		return "", fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
	}
	first, _, _ := strings.Cut(strings.TrimLeft(res.Stdout, "\r\n"), "\n")
	return strings.TrimSpace(first), nil
}

// hostLimits runs kfleet-HostLimits. Output the parser cannot read is not
// fixed by a retry: the document on the host is not the one kfleet expects.
func (a *Activities) hostLimits(ctx context.Context, in BrokerInput, host fleet.BrokerSpec) (cloud.HostLimits, error) {
	res, err := a.Hosts.RunDocument(ctx, host.InstanceID, cloud.DocHostLimits, nil, in.Reason, a.ticker(ctx, cloud.DocHostLimits))
	if err != nil {
		return cloud.HostLimits{}, fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
	}
	limits, err := cloud.ParseHostLimits(res.Stdout)
	if err != nil {
		return cloud.HostLimits{}, badInput(fmt.Errorf("cluster %s broker %d: %s: %w", in.Spec.ID, in.Broker, cloud.DocHostLimits, err))
	}
	return limits, nil
}

func splitLines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// LimitInput raises a host limit of a broker (kfleet-SetSysctl).
type LimitInput struct {
	Spec   fleet.ClusterSpec `json:"spec"`
	Broker int32             `json:"broker"`
	Name   string            `json:"name"` // fleet.LimitMaxMapCount or fleet.LimitNofile
	Value  int64             `json:"value"`
	Reason string            `json:"reason"`
}

// SetHostLimit sets the limit now and persistently. Setting the value in
// force changes nothing, so a retry is harmless; a value below the one in
// force is refused as bad input (kfleet only raises limits).
func (a *Activities) SetHostLimit(ctx context.Context, in LimitInput) error {
	bin := BrokerInput{Spec: in.Spec, Broker: in.Broker, Reason: in.Reason}
	host, err := bin.host()
	if err != nil {
		return err
	}
	if in.Name != fleet.LimitMaxMapCount && in.Name != fleet.LimitNofile {
		return badInput(fmt.Errorf("cluster %s broker %d: limit %q: want %s or %s", in.Spec.ID, in.Broker, in.Name, fleet.LimitMaxMapCount, fleet.LimitNofile))
	}
	if in.Value <= 0 {
		return badInput(fmt.Errorf("cluster %s broker %d: %s %d: want a positive value", in.Spec.ID, in.Broker, in.Name, in.Value))
	}
	limits, err := a.hostLimits(ctx, bin, host)
	if err != nil {
		return err
	}
	current := limits.MaxMapCount
	if in.Name == fleet.LimitNofile {
		current = limits.Nofile
	}
	log := a.Log.With().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Str("instance", host.InstanceID).
		Str("limit", in.Name).Int64("from", current).Int64("to", in.Value).Logger()
	switch {
	case in.Value < current:
		return badInput(fmt.Errorf("cluster %s broker %d: %s is %d: refusing to lower it to %d (kfleet only raises limits)",
			in.Spec.ID, in.Broker, in.Name, current, in.Value))
	case in.Value == current:
		log.Info().Msg("host limit already in force")
		return nil
	}
	params := map[string]string{cloud.ParamName: in.Name, cloud.ParamValue: strconv.FormatInt(in.Value, 10)}
	res, err := a.runOnce(ctx, host.InstanceID, cloud.DocSetSysctl, params, in.Reason)
	if err != nil {
		log.Error().Err(err).Str("command", res.CommandID).Msg("raising host limit failed")
		return fmt.Errorf("cluster %s broker %d: raise %s to %d: %w", in.Spec.ID, in.Broker, in.Name, in.Value, err)
	}
	log.Info().Str("command", res.CommandID).Msg("host limit raised")
	return nil
}

// BrokerObservation is a broker's state as recovery waits on it.
type BrokerObservation struct {
	// Registered: under /brokers/ids, or for a KRaft broker unfenced.
	Registered bool   `json:"registered"`
	Process    string `json:"process,omitempty"` // as Diagnosis.Process
	// Recovering and LogsLeft come from the broker's metrics (state
	// RECOVERY or logs left to recover).
	Recovering bool `json:"recovering"`
	LogsLeft   int  `json:"logsLeft"`
	// MetricsError is set when the metrics could not be read.
	MetricsError string `json:"metricsError,omitempty"`
	// ProcessError is set when the service state could not be read
	// (Process is then empty).
	ProcessError string `json:"processError,omitempty"`
}

// ObserveBroker reads, without touching it, whether the broker is
// registered in ZooKeeper (a KRaft broker: registered and unfenced), its
// service state and its log recovery progress.
func (a *Activities) ObserveBroker(ctx context.Context, in BrokerInput) (BrokerObservation, error) {
	host, err := in.host()
	if err != nil {
		return BrokerObservation{}, err
	}
	return a.observe(ctx, in, host, a.ticker(ctx, cloud.DocBrokerStatus))
}

// observe is ObserveBroker's reading; tick heartbeats while the status
// document runs (the waits heartbeat their own details, which a retry
// resumes from, so they pass their own tick).
func (a *Activities) observe(ctx context.Context, in BrokerInput, host fleet.BrokerSpec, tick func()) (BrokerObservation, error) {
	var obs BrokerObservation
	regs, err := a.registrations(in.Spec)
	if err != nil {
		return BrokerObservation{}, err
	}
	ids, err := regs.BrokerIDs(ctx, in.Spec)
	if err != nil {
		return BrokerObservation{}, fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
	}
	obs.Registered = slices.Contains(ids, in.Broker)
	if obs.Process, err = a.brokerProcess(ctx, in, host, tick); err != nil {
		if ctx.Err() != nil {
			return BrokerObservation{}, ctx.Err()
		}
		// A host SSM cannot reach (its instance stopped, its agent down)
		// is an observation, not a failure: the process state is unknown,
		// and the diagnosis that follows a grace, or a wait's stall
		// timeout, decides what it means.
		obs.Process, obs.ProcessError = "", err.Error()
	}
	if host.MetricsURL == "" || a.Metrics == nil {
		obs.MetricsError = errNoMetricsEndpoint
		return obs, nil
	}
	sctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	m, err := a.Metrics.Scrape(sctx, host.MetricsURL)
	if err != nil {
		obs.MetricsError = err.Error()
		return obs, nil
	}
	obs.LogsLeft = m.LogsLeftToRecover
	obs.Recovering = m.BrokerState == metrics.BrokerRecovery || m.LogsLeftToRecover > 0
	return obs, nil
}

// sighting is what the come-back rules of internal/fleet read of an
// observation.
func (o BrokerObservation) sighting() fleet.BrokerSighting {
	return fleet.BrokerSighting{Registered: o.Registered, Process: o.Process, Recovering: o.Recovering, LogsLeft: o.LogsLeft}
}
