// Package activities holds kfleet's Temporal activities: every side effect a
// workflow needs, thin over internal/. Each activity checks before it acts so
// that a retry after a crash is harmless, heartbeats while it waits, and
// returns a non-retryable error for bad input.
package activities

import (
	"context"
	"time"

	"github.com/rs/zerolog"
	"go.temporal.io/sdk/activity"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/metrics"
)

// KafkaReader reads and nudges a cluster through the Kafka protocol.
type KafkaReader interface {
	Replication(ctx context.Context, spec fleet.ClusterSpec) (controller int32, partitions []fleet.Partition, err error)
	ElectPreferredLeaders(ctx context.Context, spec fleet.ClusterSpec, partitions []fleet.Partition) error
}

// Registrations reads broker registrations: from the cluster's ZooKeeper
// (*zookeeper.Pool), or a KRaft cluster's from its brokers' fencing
// (fencingRegistrations; Activities.registrations picks).
type Registrations interface {
	BrokerIDs(ctx context.Context, spec fleet.ClusterSpec) ([]int32, error)
	WaitBrokerRegistered(ctx context.Context, spec fleet.ClusterSpec, broker int32, interval time.Duration, tick func()) error
	WaitBrokersChanged(ctx context.Context, spec fleet.ClusterSpec, known []int32, interval time.Duration, tick func()) ([]int32, error)
}

// HostRunner runs kfleet's SSM documents on a broker's host: RunDocument
// for reads (sent again on a retry), Send and Wait for a step that must be
// sent once (runOnce), and FindCommand for the command such a step sent in
// an attempt that crashed before it could heartbeat the command's id.
type HostRunner interface {
	RunDocument(ctx context.Context, instance, document string, params map[string]string, comment string, tick func()) (cloud.CommandResult, error)
	Send(ctx context.Context, instance, document string, params map[string]string, comment string) (string, error)
	Wait(ctx context.Context, instance, document, commandID string, tick func()) (cloud.CommandResult, error)
	// FindCommand returns the newest command of document sent to instance
	// on or after since whose comment carries mark and that has not
	// failed; "" when there is none.
	FindCommand(ctx context.Context, instance, document, mark string, since time.Time) (string, error)
}

// MetricsReader scrapes a broker's Prometheus exposition.
type MetricsReader interface {
	Scrape(ctx context.Context, url string) (metrics.BrokerMetrics, error)
}

// Instances describes broker hosts and grows their data volumes (EC2). The
// methods are *cloud.EC2's; its sentinel errors (cloud.ErrInstanceNotFound,
// cloud.ErrModificationRateExceeded ...) drive the activities' decisions.
type Instances interface {
	DescribeInstance(ctx context.Context, instanceID string) (cloud.Instance, error)
	DescribeVolumeOf(ctx context.Context, instanceID string) (cloud.Volume, error)
	ModifyVolume(ctx context.Context, volumeID string, sizeGiB int32) error
	// LatestModification is the volume's latest modification with its
	// start time and sizes; cloud.ErrNoModification if it was never
	// modified.
	LatestModification(ctx context.Context, volumeID string) (cloud.Modification, error)
}

// HostLifecycle starts, launches and terminates broker hosts and moves
// their data volumes: host replacement (replace_host.go). The methods are
// *cloud.EC2's, with its sentinel errors (cloud.ErrCapacity,
// cloud.ErrVolumeInUse ...).
type HostLifecycle interface {
	DescribeInstance(ctx context.Context, instanceID string) (cloud.Instance, error)
	FindInstances(ctx context.Context, f cloud.InstanceFilter) ([]cloud.Instance, error)
	LaunchInstance(ctx context.Context, spec cloud.LaunchSpec) (cloud.Instance, error)
	StartInstance(ctx context.Context, instanceID string) (cloud.StateChange, error)
	StopInstance(ctx context.Context, instanceID string) (cloud.StateChange, error)
	TerminateInstance(ctx context.Context, instanceID string) (cloud.StateChange, error)
	DescribeVolume(ctx context.Context, volumeID string) (cloud.Volume, error)
	FindVolumes(ctx context.Context, f cloud.VolumeFilter) ([]cloud.Volume, error)
	CreateVolume(ctx context.Context, spec cloud.VolumeSpec) (cloud.Volume, error)
	AttachVolume(ctx context.Context, volumeID, instanceID, device string) error
	DetachVolume(ctx context.Context, volumeID, instanceID string, force bool) error
}

// ClusterSpecs changes the spec a cluster's entity holds (internal/entity).
type ClusterSpecs interface {
	// SetBrokerHost makes instance the host of broker in the entity's
	// spec, if the spec still names from (or instance already); changed
	// is false when it named instance already. A spec that names another
	// host wraps fleet.ErrRefused: someone else changed it.
	SetBrokerHost(ctx context.Context, cluster string, broker int32, from, instance string) (changed bool, err error)
	// AddBrokers adds brokers (and their bootstrap addresses) to the
	// entity's spec, leaving those it has already, and returns the spec.
	AddBrokers(ctx context.Context, cluster string, brokers []fleet.BrokerSpec, bootstrap []string) (fleet.ClusterSpec, error)
	// RemoveBroker takes a broker (and its bootstrap address) out of the
	// entity's spec and returns the spec; gone already is done.
	RemoveBroker(ctx context.Context, cluster string, broker int32, address string) (fleet.ClusterSpec, error)
}

// LogDirReader tells how many bytes a broker's out-of-sync replicas still
// have to copy (DescribeLogDirs: the leaders' log sizes less its own).
type LogDirReader interface {
	BytesBehind(ctx context.Context, spec fleet.ClusterSpec, broker int32, behind []fleet.Partition) (int64, error)
}

// Quotas reads and sets tenants' producer byte-rate quotas (Kafka client
// quotas on the entity user=<name>, key producer_byte_rate).
type Quotas interface {
	// ProducerQuota returns the user's producer_byte_rate; set is false
	// when the user has none.
	ProducerQuota(ctx context.Context, spec fleet.ClusterSpec, user string) (bytesPerSec float64, set bool, err error)
	SetProducerQuota(ctx context.Context, spec fleet.ClusterSpec, user string, bytesPerSec float64) error
}

// Ensemble asks each ZooKeeper server of the cluster's connect string how
// it is (four-letter words srvr and ruok). A server that does not answer is
// reported in its entry; only a bad connect string is an error.
type Ensemble interface {
	ServerHealth(ctx context.Context, spec fleet.ClusterSpec) ([]fleet.ZooKeeperServer, error)
}

// Notifier tells the humans on call (a chat webhook).
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// Activities carries the clients activities use. Register a value with the
// worker; workflows call its methods through a nil *Activities.
type Activities struct {
	Kafka     KafkaReader
	ZooKeeper Registrations
	Hosts     HostRunner
	// Metrics reads broker metrics; nil skips the metrics-based gates.
	Metrics MetricsReader
	// Instances, Quotas and Ensemble serve the health loop and
	// self-healing (health.go, recovery.go, volume.go).
	Instances Instances
	Quotas    Quotas
	Ensemble  Ensemble
	// Lifecycle replaces the hosts of brokers whose instance is gone;
	// Specs tells their entity the new host (replace_host.go). LogDirs
	// measures a catch-up in bytes (catchup.go); nil reports replicas only.
	Lifecycle HostLifecycle
	Specs     ClusterSpecs
	LogDirs   LogDirReader
	// Reassigner moves partitions between brokers (rebalance.go).
	Reassigner Reassigner
	// KRaft reads a KRaft cluster's quorum and finalizes its
	// metadata.version (kraft.go).
	KRaft KRaftAdmin
	// MigrationZK and Entities serve the ZooKeeper-to-KRaft migration
	// (migration.go).
	MigrationZK MigrationZooKeeper
	Entities    MigrationEntity
	// Fencing is a KRaft cluster's registrations (registrations.go):
	// sensing and recovery read it where a ZooKeeper cluster's come from
	// ZooKeeper; nil refuses KRaft clusters.
	Fencing Fencing
	// Controllers reads a KRaft cluster through its controllers, before
	// any broker exists (kraft_provision.go).
	Controllers ControllerReads
	// EC2, Provisioning, Admin, Chroots and Registry serve provisioning
	// and deletion (provision*.go, teardown.go).
	EC2          Provisioner
	Provisioning ProvisionConfig
	Admin        ClusterAdmin
	Chroots      Chroots
	Registry     Registry
	// Notifier posts to the on-call chat; nil only logs the messages.
	Notifier Notifier
	// Operator submits approved and scheduled actions to cluster
	// entities (operator.go).
	Operator Operator
	// Tenants is tenants' Kafka side; Secrets the secret source their new
	// passwords are handed out through, whose "no such secret" error is
	// SecretNotFound (tenants.go).
	Tenants TenantAdmin
	// Topics is the admin lane's Kafka side (topics.go); TopicChanges
	// its partitions, retention and group deletions (topics_change.go).
	Topics         TopicBatchAdmin
	TopicChanges   TopicChangeAdmin
	Secrets        SecretStore
	SecretNotFound error
	Log            zerolog.Logger
	// Sensors keeps the clusters' health trends between sensing runs on
	// this worker (sense.go); nil keeps none.
	Sensors *Sensors
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

// ticker returns a tick that heartbeats what the activity waits on.
func (a *Activities) ticker(ctx context.Context, what string) func() {
	return func() { activity.RecordHeartbeat(ctx, what) }
}
