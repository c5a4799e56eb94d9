package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/kfleet/kfleet/internal/fleet"
)

// CatchUpUntil says when WaitCatchUp returns besides the broker being in
// sync: the operation learns what there is to copy, then how fast, and
// shows both; the heartbeat shows the rest live.
type CatchUpUntil string

// When WaitCatchUp returns.
const (
	// CatchUpMeasured: after the first measure (bytes to copy).
	CatchUpMeasured CatchUpUntil = "measured"
	// CatchUpPaced: once a pace is known (bytes copied since First).
	CatchUpPaced CatchUpUntil = "paced"
	// CatchUpInSync: only once every replica is in the ISR.
	CatchUpInSync CatchUpUntil = "in-sync"
)

// CatchUpInput asks WaitCatchUp to follow a broker's catch-up.
type CatchUpInput struct {
	BrokerInput
	Until CatchUpUntil `json:"until"`
	// First is the catch-up's first measure, from an earlier wait: the
	// pace is measured from it.
	First fleet.ByteSample `json:"first,omitzero"`
	// PollInterval paces the measures; 0: the worker's poll interval.
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

// CatchUpProgress is WaitCatchUp's heartbeat and answer: the catch-up as
// last measured, its first measure and its pace.
type CatchUpProgress struct {
	Now   fleet.CatchUp     `json:"now"`
	First fleet.ByteSample  `json:"first,omitzero"`
	Pace  fleet.CatchUpPace `json:"pace,omitzero"`
	Paced bool              `json:"paced,omitempty"`
	// Measured says whether bytes could be told (no log-dir reader, or the
	// leaders' log dirs unreadable: replicas only).
	Measured bool `json:"measured,omitempty"`
}

// InSync reports whether the catch-up is over.
func (p CatchUpProgress) InSync() bool { return p.Now.InSync() }

// WaitCatchUp follows a broker's replicas back into the ISR: the replicas
// still out, the bytes they lack (DescribeLogDirs: the leaders' sizes less
// the broker's) and the pace since the first measure, with the time the
// rest will take. It returns when every replica is in sync, or earlier as
// Until asks. Catching up a blank volume of terabytes takes hours: one
// activity that heartbeats its progress, which a retry resumes from.
func (a *Activities) WaitCatchUp(ctx context.Context, in CatchUpInput) (CatchUpProgress, error) {
	if _, err := in.host(); err != nil {
		return CatchUpProgress{}, err
	}
	p, ok := resume[CatchUpProgress](ctx)
	if !ok {
		p = CatchUpProgress{First: in.First}
	}
	err := a.poll(ctx, in.PollInterval, time.Time{}, func() (bool, error) {
		_, partitions, err := a.Kafka.Replication(ctx, in.Spec)
		if err != nil {
			return false, err
		}
		behind := fleet.Snapshot{Partitions: partitions}.OutOfSyncOn(in.Broker)
		now := time.Now()
		p.Now = fleet.CatchUp{Broker: in.Broker, Replicas: len(behind)}
		if len(behind) == 0 {
			return true, nil
		}
		p.Measured = false
		if a.LogDirs != nil {
			bytes, err := a.LogDirs.BytesBehind(ctx, in.Spec, in.Broker, behind)
			if err != nil {
				// A leader that cannot tell its sizes this time is no
				// reason to stop waiting: replicas still count.
				a.Log.Warn().Err(err).Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Msg("catch-up: bytes behind unknown this time")
			} else {
				p.Now.Bytes, p.Measured = bytes, true
				if p.First.At.IsZero() {
					p.First = fleet.ByteSample{At: now, Bytes: bytes}
				}
				if pace, ok := fleet.CatchUpFrom(p.First, now, bytes); ok {
					p.Pace, p.Paced = pace, true
				}
			}
		}
		switch in.Until {
		case CatchUpMeasured:
			return true, nil
		case CatchUpPaced:
			return p.Paced || !p.Measured && a.LogDirs == nil, nil
		}
		return false, nil
	}, func() any { return p })
	if err != nil {
		return CatchUpProgress{}, waitFailed(err, "cluster %s broker %d: wait for its replicas to catch up", in.Spec.ID, in.Broker)
	}
	a.Log.Info().Str("cluster", in.Spec.ID).Int32("broker", in.Broker).Int("replicas", p.Now.Replicas).Int64("bytes", p.Now.Bytes).
		Float64("bytesPerSec", p.Pace.BytesPerSec).Dur("eta", p.Pace.ETA).Msg("catch-up wait over")
	return p, nil
}

// describeCatchUp is WaitCatchUp's heartbeat for humans.
func describeCatchUp(p CatchUpProgress) string {
	s := fmt.Sprintf("broker %d catching up: %d replica(s) out of the ISR", p.Now.Broker, p.Now.Replicas)
	switch {
	case p.Paced:
		s += ", " + p.Pace.String()
	case p.Measured:
		s += fmt.Sprintf(", %s to copy (pace not known yet)", fleet.Bytes(p.Now.Bytes))
	}
	return s
}
