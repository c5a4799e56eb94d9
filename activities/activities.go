// Package activities holds kfleet's Temporal activities: every side effect a
// workflow needs, thin over internal/. Each activity checks before it acts so
// that a retry after a crash is harmless, heartbeats while it waits, and
// returns a non-retryable error for bad input.
package activities

import (
	"context"
	"time"

	"github.com/rs/zerolog"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/metrics"
)

// KafkaReader reads and nudges a cluster through the Kafka protocol.
type KafkaReader interface {
	Replication(ctx context.Context, spec fleet.ClusterSpec) (controller int32, partitions []fleet.Partition, err error)
	ElectPreferredLeaders(ctx context.Context, spec fleet.ClusterSpec, partitions []fleet.Partition) error
}

// Registrations reads broker registrations from the cluster's ZooKeeper.
type Registrations interface {
	BrokerIDs(ctx context.Context, spec fleet.ClusterSpec) ([]int32, error)
	WaitBrokerRegistered(ctx context.Context, spec fleet.ClusterSpec, broker int32, interval time.Duration, tick func()) error
	WaitBrokersChanged(ctx context.Context, spec fleet.ClusterSpec, known []int32, interval time.Duration, tick func()) ([]int32, error)
}

// HostRunner runs kfleet's SSM documents on a broker's host.
type HostRunner interface {
	RunDocument(ctx context.Context, instance, document string, params map[string]string, comment string, tick func()) (cloud.CommandResult, error)
}

// MetricsReader scrapes a broker's Prometheus exposition.
type MetricsReader interface {
	Scrape(ctx context.Context, url string) (metrics.BrokerMetrics, error)
}

// Activities carries the clients activities use. Register a value with the
// worker; workflows call its methods through a nil *Activities.
type Activities struct {
	Kafka     KafkaReader
	ZooKeeper Registrations
	Hosts     HostRunner
	// Metrics reads broker metrics; nil skips the metrics-based gates.
	Metrics MetricsReader
	Log     zerolog.Logger
	// PollInterval paces waits that have no watch to block on (ISR catch-up)
	// and the heartbeats of those that do.
	PollInterval time.Duration
}

func (a *Activities) pollInterval() time.Duration {
	if a.PollInterval > 0 {
		return a.PollInterval
	}
	return time.Second
}
