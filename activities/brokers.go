package activities

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/metrics"
)

// ErrTypeBadInput is the application error type of input no retry can fix.
const ErrTypeBadInput = "BadInput"

// GateInput asks which brokers of a roll go next and whether they may go now.
type GateInput struct {
	Spec fleet.ClusterSpec `json:"spec"`
	// Remaining are the brokers of the roll not restarted yet.
	Remaining []int32 `json:"remaining"`
	// MaxBatch is how many brokers that share no partition may restart
	// together; 0 or 1 is one at a time.
	MaxBatch int `json:"maxBatch,omitempty"`
}

// GateReport is the verdict on the next batch, computed on a fresh snapshot.
// It carries no partition list: a large cluster's would exceed Temporal's
// payload limit, and the workflow needs only the verdict.
type GateReport struct {
	// Next is the batch's first broker; Batch the whole batch (Next alone
	// when rolling one at a time).
	Next          int32   `json:"next"`
	Batch         []int32 `json:"batch,omitempty"`
	Controller    int32   `json:"controller"`
	NextIsControl bool    `json:"nextIsController"`
	// Partitions is the largest replica count of a batch broker, which
	// sizes the controlled-shutdown grace period.
	Partitions int             `json:"partitions"`
	Blockers   []fleet.Blocker `json:"blockers,omitempty"`
	// Recovering lists batch brokers still recovering their logs, so the
	// workflow can report progress and an ETA.
	Recovering []Recovery `json:"recovering,omitempty"`
}

// Recovery is a broker's log recovery progress.
type Recovery struct {
	Broker   int32 `json:"broker"`
	LogsLeft int   `json:"logsLeft"`
}

// CheckRestartGates picks the next brokers of a roll (controller last and
// alone, re-resolved now; a batch shares no partition) and evaluates every
// gate for them: cluster healthy, availability for the whole batch, and no
// batch broker recovering its logs.
func (a *Activities) CheckRestartGates(ctx context.Context, in GateInput) (GateReport, error) {
	if err := in.Spec.Validate(); err != nil {
		return GateReport{}, badInput(err)
	}
	for _, id := range in.Remaining {
		if _, ok := in.Spec.Broker(id); !ok {
			return GateReport{}, badInput(fmt.Errorf("cluster %s: broker %d is not in the cluster spec", in.Spec.ID, id))
		}
	}
	snap, err := a.snapshot(ctx, in.Spec)
	if err != nil {
		return GateReport{}, err
	}
	batch := fleet.NextBatch(snap, in.Remaining, in.MaxBatch, func(id int32) string {
		b, _ := in.Spec.Broker(id)
		return b.Rack
	})
	if len(batch) == 0 {
		return GateReport{}, badInput(fmt.Errorf("cluster %s: no broker left to restart", in.Spec.ID))
	}
	if len(batch) > 1 && len(fleet.AvailabilityBlockers(snap, batch)) > 0 {
		// The batch as a whole would take a partition under min ISR:
		// fall back to one broker, whose own gate is evaluated below.
		batch = batch[:1]
	}
	rep := GateReport{
		Next:          batch[0],
		Batch:         batch,
		Controller:    snap.Controller,
		NextIsControl: batch[0] == snap.Controller,
		Blockers:      fleet.HealthBlockers(in.Spec, snap),
	}
	for _, b := range batch {
		rep.Partitions = max(rep.Partitions, len(snap.PartitionsOn(b)))
	}
	rep.Blockers = append(rep.Blockers, fleet.AvailabilityBlockers(snap, batch)...)
	for _, b := range batch {
		rec, blocker := a.recovering(ctx, in.Spec, b)
		if blocker != nil {
			rep.Blockers = append(rep.Blockers, *blocker)
		}
		if rec != nil {
			rep.Recovering = append(rep.Recovering, *rec)
		}
	}
	return rep, nil
}

// recovering checks gate 3: the broker is not recovering its logs (broker
// state RECOVERY or logs left to recover). A broker whose metrics cannot be
// read is not assumed healthy.
func (a *Activities) recovering(ctx context.Context, spec fleet.ClusterSpec, broker int32) (*Recovery, *fleet.Blocker) {
	b, _ := spec.Broker(broker)
	if b.MetricsURL == "" || a.Metrics == nil {
		return nil, nil
	}
	m, err := a.Metrics.Scrape(ctx, b.MetricsURL)
	if err != nil {
		return nil, &fleet.Blocker{Gate: fleet.GateRecovering, Reason: fmt.Sprintf("broker %d: cannot read its metrics: %v", broker, err)}
	}
	if m.BrokerState != metrics.BrokerRecovery && m.LogsLeftToRecover == 0 {
		return nil, nil
	}
	return &Recovery{Broker: broker, LogsLeft: m.LogsLeftToRecover}, &fleet.Blocker{
		Gate:   fleet.GateRecovering,
		Reason: fmt.Sprintf("broker %d is recovering its logs (state %s, %d logs left): never restart a recovering broker", broker, m.BrokerState, m.LogsLeftToRecover),
	}
}

func (a *Activities) snapshot(ctx context.Context, spec fleet.ClusterSpec) (fleet.Snapshot, error) {
	regs, err := a.registrations(spec)
	if err != nil {
		return fleet.Snapshot{}, err
	}
	registered, err := regs.BrokerIDs(ctx, spec)
	if err != nil {
		return fleet.Snapshot{}, err
	}
	controller, partitions, err := a.Kafka.Replication(ctx, spec)
	if err != nil {
		return fleet.Snapshot{}, err
	}
	return fleet.Snapshot{
		Cluster:    spec.ID,
		TakenAt:    time.Now(),
		Controller: controller,
		Registered: registered,
		Partitions: partitions,
	}, nil
}

// BrokerInput names one broker of a cluster and why kfleet touches it.
type BrokerInput struct {
	Spec   fleet.ClusterSpec `json:"spec"`
	Broker int32             `json:"broker"`
	// Reason is recorded on the host (SSM comment), e.g. the operation id.
	Reason string `json:"reason"`
	// GracePeriodSeconds bounds the controlled shutdown (StopBroker).
	GracePeriodSeconds int `json:"gracePeriodSeconds,omitempty"`
	// Version is the Kafka version to start (StartBroker, upgrades).
	Version string `json:"version,omitempty"`
	// InterBrokerProtocolVersion is written to the broker's
	// server.properties before it starts (StartBroker, upgrades of a
	// ZooKeeper-mode cluster); empty keeps the one configured.
	InterBrokerProtocolVersion string `json:"interBrokerProtocolVersion,omitempty"`
	// MetadataMode and QuorumVoters change the broker's metadata mode at
	// this start (StartBroker; the ZooKeeper-to-KRaft migration's rolls);
	// empty keeps it.
	MetadataMode string `json:"metadataMode,omitempty"`
	QuorumVoters string `json:"quorumVoters,omitempty"`
}

// startParams are kfleet-StartBroker's parameters for what a start
// changes; none keeps the node as it is configured.
func startParams(version, ibp, mode, voters string) map[string]string {
	params := map[string]string{}
	for k, v := range map[string]string{cloud.ParamVersion: version, cloud.ParamInterBrokerProtocolVersion: ibp,
		cloud.ParamMetadataMode: mode, cloud.ParamQuorumVoters: voters} {
		if v != "" {
			params[k] = v
		}
	}
	return params
}

func (in BrokerInput) host() (fleet.BrokerSpec, error) {
	if err := in.Spec.Validate(); err != nil {
		return fleet.BrokerSpec{}, badInput(err)
	}
	b, ok := in.Spec.Broker(in.Broker)
	if !ok {
		return fleet.BrokerSpec{}, badInput(fmt.Errorf("cluster %s: broker %d is not in the cluster spec", in.Spec.ID, in.Broker))
	}
	return b, nil
}

// StopBroker shuts the broker down in a controlled way (leadership moved off
// first) through the host's kfleet-StopBroker document. Stopping a stopped
// broker is a no-op, so a retry cannot stop it twice.
func (a *Activities) StopBroker(ctx context.Context, in BrokerInput) error {
	params := map[string]string{cloud.ParamGracePeriodSeconds: strconv.Itoa(in.GracePeriodSeconds)}
	return a.runOnBroker(ctx, in, cloud.DocStopBroker, params)
}

// StartBroker starts the broker through the host's kfleet-StartBroker
// document. Starting a running broker is a no-op.
func (a *Activities) StartBroker(ctx context.Context, in BrokerInput) error {
	params := startParams(in.Version, in.InterBrokerProtocolVersion, in.MetadataMode, in.QuorumVoters)
	return a.runOnBroker(ctx, in, cloud.DocStartBroker, params)
}

func (a *Activities) runOnBroker(ctx context.Context, in BrokerInput, document string, params map[string]string) error {
	host, err := in.host()
	if err != nil {
		return err
	}
	log := a.Log.With().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Str("instance", host.InstanceID).Str("document", document).Logger()
	log.Info().Msg("running document on broker host")
	res, err := a.runOnce(ctx, host.InstanceID, document, params, in.Reason)
	if err != nil {
		log.Error().Err(err).Str("command", res.CommandID).Msg("document failed")
		return fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
	}
	log.Info().Str("command", res.CommandID).Msg("document succeeded")
	return nil
}

// WaitBrokerRegistered blocks until the broker is registered in ZooKeeper
// again (a KRaft broker: registered and unfenced), heartbeating while it
// waits.
func (a *Activities) WaitBrokerRegistered(ctx context.Context, in BrokerInput) error {
	if _, err := in.host(); err != nil {
		return err
	}
	regs, err := a.registrations(in.Spec)
	if err != nil {
		return err
	}
	return regs.WaitBrokerRegistered(ctx, in.Spec, in.Broker, a.pollInterval(), func() {
		activity.RecordHeartbeat(ctx, "waiting for registration")
	})
}

// WaitReplicasInSync blocks until every replica on the broker is back in its
// partition's ISR, heartbeating how many are still catching up.
func (a *Activities) WaitReplicasInSync(ctx context.Context, in BrokerInput) error {
	if _, err := in.host(); err != nil {
		return err
	}
	t := time.NewTicker(a.pollInterval())
	defer t.Stop()
	for {
		_, partitions, err := a.Kafka.Replication(ctx, in.Spec)
		if err != nil {
			return err
		}
		behind := fleet.Snapshot{Partitions: partitions}.OutOfSyncOn(in.Broker)
		if len(behind) == 0 {
			return nil
		}
		activity.RecordHeartbeat(ctx, fmt.Sprintf("%d replicas catching up", len(behind)))
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster %s broker %d: %d replicas not in sync (first %s): %w", in.Spec.ID, in.Broker, len(behind), behind[0], ctx.Err())
		case <-t.C:
		}
	}
}

// ElectPreferredLeaders moves leadership back to the broker for every
// partition that prefers it and where it is in sync. It returns how many
// partitions it asked to move; zero when there is nothing to do.
func (a *Activities) ElectPreferredLeaders(ctx context.Context, in BrokerInput) (int, error) {
	if _, err := in.host(); err != nil {
		return 0, err
	}
	_, partitions, err := a.Kafka.Replication(ctx, in.Spec)
	if err != nil {
		return 0, err
	}
	var eligible []fleet.Partition
	for _, p := range (fleet.Snapshot{Partitions: partitions}).NotPreferredLeaderOn(in.Broker) {
		if p.InSyncOn(in.Broker) {
			eligible = append(eligible, p)
		}
	}
	if err := a.Kafka.ElectPreferredLeaders(ctx, in.Spec, eligible); err != nil {
		return 0, fmt.Errorf("broker %d: %w", in.Broker, err)
	}
	return len(eligible), nil
}

func badInput(err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeBadInput, err)
}
