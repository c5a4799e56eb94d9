package activities

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/metrics"
)

// ErrTypeVolumeCooldown is the (non-retryable) error type of a volume
// modification EBS refuses because the volume was modified less than six
// hours ago.
const ErrTypeVolumeCooldown = "VolumeCooldown"

// ErrTypeVolumeModificationFailed is the (non-retryable) error type of a
// volume modification EBS reports as failed.
const ErrTypeVolumeModificationFailed = "VolumeModificationFailed"

const gib = int64(1) << 30

// filesystemOverhead is the share of a volume a filesystem may keep for
// itself (metadata, journal, reserved blocks): VerifyFilesystem accepts a
// filesystem of 95% of the volume's size.
const filesystemOverhead = 0.05

// DiskState is a broker's data volume as EC2 and the broker see it.
type DiskState struct {
	VolumeID string `json:"volumeId"`
	SizeGiB  int32  `json:"sizeGiB"` // EBS's size
	// Modification is the latest modification's state ("" when never
	// modified) and when it started.
	Modification      string    `json:"modification,omitempty"`
	ModificationStart time.Time `json:"modificationStart,omitzero"`
	// Filesystem is the data filesystem as the broker's host reports it
	// (node exporter).
	Filesystem fleet.DiskUsage `json:"filesystem"`
}

// DescribeDisk reads the broker's data volume (EC2) and filesystem use
// (metrics). Read-only.
func (a *Activities) DescribeDisk(ctx context.Context, in BrokerInput) (DiskState, error) {
	host, err := in.host()
	if err != nil {
		return DiskState{}, err
	}
	vol, err := a.Instances.DescribeVolumeOf(ctx, host.InstanceID)
	if err != nil {
		return DiskState{}, fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
	}
	d := DiskState{VolumeID: vol.ID, SizeGiB: vol.SizeGiB}
	mod, err := a.Instances.LatestModification(ctx, vol.ID)
	switch {
	case errors.Is(err, cloud.ErrNoModification):
	case err != nil:
		return DiskState{}, fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
	default:
		d.Modification, d.ModificationStart = string(mod.State), mod.Start
	}
	m, err := a.scrapeBroker(ctx, in, host)
	if err != nil {
		return DiskState{}, err
	}
	d.Filesystem = diskUsage(m)
	return d, nil
}

// scrapeBroker reads the broker's metrics; a broker without an endpoint
// is bad input for activities that cannot work without them.
func (a *Activities) scrapeBroker(ctx context.Context, in BrokerInput, host fleet.BrokerSpec) (metrics.BrokerMetrics, error) {
	if host.MetricsURL == "" || a.Metrics == nil {
		return metrics.BrokerMetrics{}, badInput(fmt.Errorf("cluster %s broker %d: %s", in.Spec.ID, in.Broker, errNoMetricsEndpoint))
	}
	sctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	m, err := a.Metrics.Scrape(sctx, host.MetricsURL)
	if err != nil {
		return metrics.BrokerMetrics{}, fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
	}
	return m, nil
}

func (in ExpandInput) host() (fleet.BrokerSpec, error) {
	host, err := BrokerInput{Spec: in.Spec, Broker: in.Broker}.host()
	if err != nil {
		return fleet.BrokerSpec{}, err
	}
	if in.TargetGiB <= 0 || in.TargetGiB > fleet.MaxVolumeGiB {
		return fleet.BrokerSpec{}, badInput(fmt.Errorf("cluster %s broker %d: target size %d GiB: want 1..%d GiB",
			in.Spec.ID, in.Broker, in.TargetGiB, fleet.MaxVolumeGiB))
	}
	return host, nil
}

// ExpandInput grows a broker's data volume to TargetGiB.
type ExpandInput struct {
	Spec      fleet.ClusterSpec `json:"spec"`
	Broker    int32             `json:"broker"`
	TargetGiB int32             `json:"targetGiB"`
	Reason    string            `json:"reason"`
}

// VolumeChange is what ExpandVolume did.
type VolumeChange struct {
	VolumeID string `json:"volumeId"`
	FromGiB  int32  `json:"fromGiB"`
	ToGiB    int32  `json:"toGiB"`
	// AlreadyModified is true when the volume was already at least
	// TargetGiB (a retry after the modification was accepted).
	AlreadyModified bool `json:"alreadyModified,omitempty"`
}

// ExpandVolume asks EBS to grow the volume (ModifyVolume). It checks first:
// a volume already at or above the target is left alone, so a retry never
// modifies twice. EBS's six-hour refusal is ErrTypeVolumeCooldown; a target
// above the maximum size is bad input.
func (a *Activities) ExpandVolume(ctx context.Context, in ExpandInput) (VolumeChange, error) {
	host, err := in.host()
	if err != nil {
		return VolumeChange{}, err
	}
	vol, err := a.Instances.DescribeVolumeOf(ctx, host.InstanceID)
	if err != nil {
		return VolumeChange{}, fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
	}
	log := a.Log.With().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Str("volume", vol.ID).
		Int32("fromGiB", vol.SizeGiB).Int32("targetGiB", in.TargetGiB).Logger()
	if vol.SizeGiB >= in.TargetGiB {
		change := VolumeChange{VolumeID: vol.ID, FromGiB: vol.SizeGiB, ToGiB: vol.SizeGiB, AlreadyModified: true}
		// A retry after EBS accepted the modification: report the
		// modification that got it there.
		if mod, err := a.Instances.LatestModification(ctx, vol.ID); err == nil && mod.TargetSizeGiB == vol.SizeGiB && mod.OriginalSizeGiB > 0 {
			change.FromGiB = mod.OriginalSizeGiB
		}
		log.Info().Msg("volume already at or above the target size")
		return change, nil
	}
	err = a.Instances.ModifyVolume(ctx, vol.ID, in.TargetGiB)
	switch {
	case errors.Is(err, cloud.ErrModificationRateExceeded):
		log.Warn().Err(err).Msg("EBS refused the modification: cool-down")
		err = fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
		return VolumeChange{}, temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeVolumeCooldown, err)
	case err != nil:
		// ErrModificationInProgress passes with time; ErrSizeNotLarger
		// means another modification got there first, which the retry's
		// check sees.
		log.Error().Err(err).Msg("ModifyVolume failed")
		return VolumeChange{}, fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
	}
	log.Info().Msg("volume modification started")
	return VolumeChange{VolumeID: vol.ID, FromGiB: vol.SizeGiB, ToGiB: in.TargetGiB}, nil
}

// WaitVolumeModification waits, heartbeating, until the volume's latest
// modification is optimizing or completed (the filesystem can grow then)
// and returns that state; a failed modification is a non-retryable error
// (ErrTypeVolumeModificationFailed). A volume never modified has nothing to
// wait for: it returns "".
func (a *Activities) WaitVolumeModification(ctx context.Context, in BrokerInput) (string, error) {
	host, err := in.host()
	if err != nil {
		return "", err
	}
	vol, err := a.Instances.DescribeVolumeOf(ctx, host.InstanceID)
	if err != nil {
		return "", fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
	}
	t := time.NewTicker(a.pollInterval())
	defer t.Stop()
	for {
		mod, err := a.Instances.LatestModification(ctx, vol.ID)
		switch {
		case errors.Is(err, cloud.ErrNoModification):
			return "", nil
		case err != nil:
			return "", fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
		}
		switch mod.State {
		case cloud.ModificationOptimizing, cloud.ModificationCompleted:
			a.Log.Info().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Str("volume", vol.ID).
				Str("state", string(mod.State)).Int32("toGiB", mod.TargetSizeGiB).Msg("volume modification ready for the filesystem")
			return string(mod.State), nil
		case cloud.ModificationFailed:
			err := fmt.Errorf("cluster %s broker %d: volume %s: modification to %d GiB failed", in.Spec.ID, in.Broker, vol.ID, mod.TargetSizeGiB)
			return "", temporal.NewNonRetryableApplicationError(err.Error(), ErrTypeVolumeModificationFailed, err)
		}
		activity.RecordHeartbeat(ctx, fmt.Sprintf("volume %s %s (%d%%)", vol.ID, mod.State, mod.Progress))
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("cluster %s broker %d: volume %s still %s (%d%%): %w", in.Spec.ID, in.Broker, vol.ID, mod.State, mod.Progress, ctx.Err())
		case <-t.C:
		}
	}
}

// GrowFilesystem grows the broker's data filesystem online to the volume's
// size (kfleet-GrowFilesystem with TargetSizeGiB); idempotent.
func (a *Activities) GrowFilesystem(ctx context.Context, in ExpandInput) error {
	host, err := in.host()
	if err != nil {
		return err
	}
	log := a.Log.With().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Str("instance", host.InstanceID).Int32("targetGiB", in.TargetGiB).Logger()
	params := map[string]string{cloud.ParamTargetSizeGiB: strconv.Itoa(int(in.TargetGiB))}
	res, err := a.runOnce(ctx, host.InstanceID, cloud.DocGrowFilesystem, params, in.Reason)
	if err != nil {
		log.Error().Err(err).Str("command", res.CommandID).Msg("growing the filesystem failed")
		return fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
	}
	first, _, _ := strings.Cut(strings.TrimSpace(res.Stdout), "\n")
	log.Info().Str("command", res.CommandID).Str("output", first).Msg("filesystem grown")
	return nil
}

// VerifyFilesystem waits until the broker's own metrics report a data
// filesystem of at least TargetGiB (minus filesystem overhead) and returns
// its use. It polls (PollInterval) until then, heartbeating; a scrape
// that fails is retried at the next poll.
func (a *Activities) VerifyFilesystem(ctx context.Context, in ExpandInput) (fleet.DiskUsage, error) {
	host, err := in.host()
	if err != nil {
		return fleet.DiskUsage{}, err
	}
	bin := BrokerInput{Spec: in.Spec, Broker: in.Broker}
	want := int64(float64(int64(in.TargetGiB)*gib) * (1 - filesystemOverhead))
	t := time.NewTicker(a.pollInterval())
	defer t.Stop()
	for {
		m, err := a.scrapeBroker(ctx, bin, host)
		var appErr *temporal.ApplicationError
		if errors.As(err, &appErr) {
			return fleet.DiskUsage{}, err // no metrics endpoint
		}
		var seen string
		if err == nil {
			d := diskUsage(m)
			if d.SizeBytes >= want {
				a.Log.Info().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Int64("sizeBytes", d.SizeBytes).
					Float64("usedPercent", d.Percent()).Msg("filesystem verified")
				return d, nil
			}
			seen = fmt.Sprintf("filesystem %s of %s wanted", fleet.Bytes(d.SizeBytes), fleet.Bytes(want))
		} else {
			seen = err.Error()
		}
		activity.RecordHeartbeat(ctx, seen)
		select {
		case <-ctx.Done():
			return fleet.DiskUsage{}, fmt.Errorf("cluster %s broker %d: filesystem not %d GiB yet (%s): %w", in.Spec.ID, in.Broker, in.TargetGiB, seen, ctx.Err())
		case <-t.C:
		}
	}
}

// ThrottleInput throttles the heaviest producers to a broker.
type ThrottleInput struct {
	Spec   fleet.ClusterSpec `json:"spec"`
	Broker int32             `json:"broker"`
	// Max is how many tenants to throttle (heaviest first); Factor the
	// share of its current rate each keeps (e.g. 0.5).
	Max    int     `json:"max"`
	Factor float64 `json:"factor"`
	Reason string  `json:"reason"`
}

// Throttle is one tenant's new producer quota.
type Throttle struct {
	User             string  `json:"user"`
	ObservedRate     float64 `json:"observedBytesPerSec"`
	QuotaBytesPerSec float64 `json:"quotaBytesPerSec"`
	// Unchanged is true when a quota at or below it was already set;
	// QuotaBytesPerSec is then that quota, left in force.
	Unchanged bool `json:"unchanged,omitempty"`
}

// MinProducerQuota is the lowest producer quota kfleet sets (1 MiB/s): a
// tenant throttled harder would see its producers time out rather than
// slow down, and one producing less than twice that to a broker is not what
// fills its disk.
const MinProducerQuota = 1 << 20

// ThrottleHeaviestProducers sets a producer_byte_rate quota on the tenants
// producing the most to the broker: each keeps Factor of its observed rate,
// never less than MinProducerQuota. It never loosens a quota already set:
// a tenant whose quota is already at or below that is Unchanged.
func (a *Activities) ThrottleHeaviestProducers(ctx context.Context, in ThrottleInput) ([]Throttle, error) {
	bin := BrokerInput{Spec: in.Spec, Broker: in.Broker, Reason: in.Reason}
	host, err := bin.host()
	if err != nil {
		return nil, err
	}
	if in.Max < 1 {
		return nil, badInput(fmt.Errorf("cluster %s broker %d: throttle max %d tenants: want at least 1", in.Spec.ID, in.Broker, in.Max))
	}
	if !(in.Factor > 0 && in.Factor < 1) {
		return nil, badInput(fmt.Errorf("cluster %s broker %d: throttle factor %g: want a share in (0, 1)", in.Spec.ID, in.Broker, in.Factor))
	}
	m, err := a.scrapeBroker(ctx, bin, host)
	if err != nil {
		return nil, err
	}
	var out []Throttle
	for _, p := range heaviest(m.ProduceByteRates, in.Max) {
		th := Throttle{User: p.User, ObservedRate: p.BytesPerSec, QuotaBytesPerSec: math.Floor(max(p.BytesPerSec*in.Factor, MinProducerQuota))}
		log := a.Log.With().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Str("user", p.User).
			Float64("observedBytesPerSec", p.BytesPerSec).Float64("quotaBytesPerSec", th.QuotaBytesPerSec).Logger()
		current, set, err := a.Quotas.ProducerQuota(ctx, in.Spec, p.User)
		if err != nil {
			return nil, fmt.Errorf("cluster %s broker %d: %w", in.Spec.ID, in.Broker, err)
		}
		if set && current <= th.QuotaBytesPerSec {
			th.QuotaBytesPerSec, th.Unchanged = current, true
			log.Info().Float64("currentBytesPerSec", current).Msg("producer quota already at or below the throttle")
			out = append(out, th)
			continue
		}
		if err := a.Quotas.SetProducerQuota(ctx, in.Spec, p.User, th.QuotaBytesPerSec); err != nil {
			return nil, fmt.Errorf("cluster %s broker %d: throttle %s: %w", in.Spec.ID, in.Broker, p.User, err)
		}
		log.Warn().Str("reason", in.Reason).Msg("producer throttled")
		activity.RecordHeartbeat(ctx, "throttled "+p.User)
		out = append(out, th)
	}
	return out, nil
}
