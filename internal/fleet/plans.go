package fleet

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Tenant plans: what a tenant of a multi-tenant cluster may use — its
// quotas (producer_byte_rate, consumer_byte_rate, request_percentage,
// controller_mutation_rate), the disk and partitions placement reserves
// for it, and the bounds of its topics' retention. The catalog is
// plans.yaml, embedded; KFLEET_PLANS names a file that replaces it. Clients
// (the CLI, chat) resolve a plan's name into its limits, and operations
// carry the limits: workflow code never reads a file, and an operation
// keeps the limits it was asked with even if the catalog changes.

//go:embed plans.yaml
var embeddedPlans string

// PlansEnv names a catalog file that replaces the embedded one.
const PlansEnv = "KFLEET_PLANS"

// Units of a plan's figures.
const (
	KiB = 1 << 10
	GiB = 1 << 30
)

// Cluster-wide partition guidance in ZooKeeper mode (OPERATIONS.md): about
// 4,000 partition replicas per broker, 200,000 per cluster.
const (
	PartitionReplicasPerBroker = 4000
	MaxClusterPartitions       = 200_000
)

// DiskHeadroom is the share of a cluster's disk placement may promise
// tenants: volumes are expanded at 80% used.
const DiskHeadroom = 0.8

// TenantPlan is one plan of the catalog.
type TenantPlan struct {
	Name string `yaml:"name" json:"name"`
	// Dedicated plans take a cluster to themselves: placed only on a
	// cluster without tenants, and none is placed beside them.
	Dedicated bool `yaml:"dedicated,omitempty" json:"dedicated,omitempty"`
	// ProduceKBps and ConsumeKBps are the byte-rate quotas, in KiB/s.
	ProduceKBps int64 `yaml:"produceKBps" json:"produceKBps"`
	ConsumeKBps int64 `yaml:"consumeKBps" json:"consumeKBps"`
	// CapacityGB is the disk the tenant may fill, in GiB (one copy).
	CapacityGB int64 `yaml:"capacityGB" json:"capacityGB"`
	// MaxPartitions bounds the partitions of the tenant's prefix; a
	// dedicated plan says PartitionsPerBroker instead (replicas per
	// broker), and its bound follows the cluster's size.
	MaxPartitions       int `yaml:"maxPartitions,omitempty" json:"maxPartitions,omitempty"`
	PartitionsPerBroker int `yaml:"partitionsPerBroker,omitempty" json:"partitionsPerBroker,omitempty"`
	// Retention is the topics' retention.ms: its default and bounds.
	Retention RetentionBounds `yaml:"retention" json:"retention"`
	// ControllerMutationRate is KIP-599's controller_mutation_rate:
	// partitions created or deleted per second.
	ControllerMutationRate float64 `yaml:"controllerMutationRate" json:"controllerMutationRate"`
	// RequestPercentage is request_percentage: the share of one broker
	// thread's time the tenant's requests may take (100: one thread).
	RequestPercentage float64 `yaml:"requestPercentage" json:"requestPercentage"`
}

// RetentionBounds are a plan's retention: the default a topic gets, and
// what retention.ms may be set to.
type RetentionBounds struct {
	Default time.Duration `yaml:"default" json:"default"`
	Min     time.Duration `yaml:"min" json:"min"`
	Max     time.Duration `yaml:"max" json:"max"`
}

// TenantQuotas are a user's Kafka client quotas, as AlterClientQuotas
// takes them (bytes per second, percent, partitions per second).
type TenantQuotas struct {
	ProducerByteRate       float64 `json:"producerByteRate"`
	ConsumerByteRate       float64 `json:"consumerByteRate"`
	RequestPercentage      float64 `json:"requestPercentage"`
	ControllerMutationRate float64 `json:"controllerMutationRate"`
}

// Quotas are the client quotas the plan gives each of a tenant's users.
func (p TenantPlan) Quotas() TenantQuotas {
	return TenantQuotas{
		ProducerByteRate:       float64(p.ProduceKBps * KiB),
		ConsumerByteRate:       float64(p.ConsumeKBps * KiB),
		RequestPercentage:      p.RequestPercentage,
		ControllerMutationRate: p.ControllerMutationRate,
	}
}

// CapacityBytes is the disk the plan reserves, one copy.
func (p TenantPlan) CapacityBytes() int64 { return p.CapacityGB * GiB }

// PartitionLimit is the most partitions the tenant's prefix may hold on a
// cluster of brokers brokers.
func (p TenantPlan) PartitionLimit(brokers int) int {
	if p.PartitionsPerBroker > 0 {
		return min(p.PartitionsPerBroker*brokers/DefaultReplicationFactor, MaxClusterPartitions)
	}
	return p.MaxPartitions
}

// Validate reports every problem of the plan at once.
func (p TenantPlan) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !validPlanName(p.Name) {
		bad("name %q: want 1-32 characters of a-z, 0-9 and '-', starting with a letter", p.Name)
	}
	if p.ProduceKBps <= 0 || p.ConsumeKBps <= 0 {
		bad("produceKBps and consumeKBps must be positive (got %d and %d)", p.ProduceKBps, p.ConsumeKBps)
	}
	if p.CapacityGB <= 0 {
		bad("capacityGB must be positive (got %d)", p.CapacityGB)
	}
	switch {
	case p.MaxPartitions > 0 && p.PartitionsPerBroker > 0:
		bad("say maxPartitions or partitionsPerBroker, not both")
	case p.MaxPartitions <= 0 && p.PartitionsPerBroker <= 0:
		bad("maxPartitions (or, for a dedicated plan, partitionsPerBroker) must be positive")
	case p.PartitionsPerBroker > PartitionReplicasPerBroker:
		bad("partitionsPerBroker %d: at most %d", p.PartitionsPerBroker, PartitionReplicasPerBroker)
	case p.MaxPartitions > MaxClusterPartitions:
		bad("maxPartitions %d: at most %d", p.MaxPartitions, MaxClusterPartitions)
	}
	if p.PartitionsPerBroker > 0 && !p.Dedicated {
		bad("partitionsPerBroker is for dedicated plans")
	}
	r := p.Retention
	if r.Min <= 0 || r.Default < r.Min || r.Max < r.Default {
		bad("retention: want 0 < min <= default <= max (got min %s, default %s, max %s)", r.Min, r.Default, r.Max)
	}
	if p.ControllerMutationRate <= 0 || p.RequestPercentage <= 0 {
		bad("controllerMutationRate and requestPercentage must be positive (got %g and %g)", p.ControllerMutationRate, p.RequestPercentage)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("plan %q: %w", p.Name, err)
	}
	return nil
}

// Admits says why a tenant whose prefix holds f would be over the plan on
// a cluster of brokers brokers (nil: it is within it): too many
// partitions, or a topic's retention outside the plan's bounds.
func (p TenantPlan) Admits(f TenantFootprint, brokers int) error {
	var errs []error
	if limit := p.PartitionLimit(brokers); f.Partitions > limit {
		errs = append(errs, fmt.Errorf("%d partitions, plan %s allows %d", f.Partitions, p.Name, limit))
	}
	if f.UnlimitedRetention > 0 {
		errs = append(errs, fmt.Errorf("%d topic(s) keep data forever (retention.ms -1), plan %s keeps at most %s", f.UnlimitedRetention, p.Name, p.Retention.Max))
	}
	if f.Topics > f.UnlimitedRetention {
		lo, hi := time.Duration(f.MinRetentionMs)*time.Millisecond, time.Duration(f.MaxRetentionMs)*time.Millisecond
		if hi > p.Retention.Max {
			errs = append(errs, fmt.Errorf("a topic keeps data %s, plan %s at most %s", hi, p.Name, p.Retention.Max))
		}
		if lo < p.Retention.Min {
			errs = append(errs, fmt.Errorf("a topic keeps data %s, plan %s at least %s", lo, p.Name, p.Retention.Min))
		}
	}
	return errors.Join(errs...)
}

func (p TenantPlan) String() string {
	parts := p.Limits()
	return p.Name + ": " + strings.Join(parts, ", ")
}

// Limits describes the plan's figures, one phrase each.
func (p TenantPlan) Limits() []string {
	partitions := fmt.Sprintf("%d partitions", p.MaxPartitions)
	if p.PartitionsPerBroker > 0 {
		partitions = fmt.Sprintf("%d partition replicas per broker", p.PartitionsPerBroker)
	}
	out := []string{
		fmt.Sprintf("produce %d KB/s", p.ProduceKBps), fmt.Sprintf("consume %d KB/s", p.ConsumeKBps),
		fmt.Sprintf("%d GB", p.CapacityGB), partitions,
		fmt.Sprintf("retention %s (%s to %s)", hours(p.Retention.Default), hours(p.Retention.Min), hours(p.Retention.Max)),
		fmt.Sprintf("%g partition mutations/s", p.ControllerMutationRate), fmt.Sprintf("%g%% request time", p.RequestPercentage),
	}
	if p.Dedicated {
		out = append(out, "dedicated")
	}
	return out
}

// hours writes a whole number of hours as "24h", anything else as Go does.
func hours(d time.Duration) string {
	if d > 0 && d%time.Hour == 0 {
		return fmt.Sprintf("%dh", d/time.Hour)
	}
	return d.String()
}

func validPlanName(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') })
}

// TenantCatalog is the plans tenants may be created on.
type TenantCatalog struct {
	Plans []TenantPlan `yaml:"plans" json:"plans"`
}

// DefaultTenantCatalog is the embedded catalog (plans.yaml).
func DefaultTenantCatalog() TenantCatalog {
	c, err := ParseTenantCatalog([]byte(embeddedPlans))
	if err != nil {
		panic(fmt.Sprintf("embedded plans.yaml: %v", err)) // a test guards it
	}
	return c
}

// LoadTenantCatalog reads a catalog file; "" is the embedded catalog.
func LoadTenantCatalog(path string) (TenantCatalog, error) {
	if path == "" {
		return DefaultTenantCatalog(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return TenantCatalog{}, fmt.Errorf("tenant plans: %w", err)
	}
	c, err := ParseTenantCatalog(data)
	if err != nil {
		return TenantCatalog{}, fmt.Errorf("tenant plans %s: %w", path, err)
	}
	return c, nil
}

// TenantCatalogFromEnv is the catalog KFLEET_PLANS names, else the
// embedded one.
func TenantCatalogFromEnv() (TenantCatalog, error) { return LoadTenantCatalog(os.Getenv(PlansEnv)) }

// ParseTenantCatalog reads and validates a catalog: unknown fields, a
// plan named twice or an invalid plan are errors.
func ParseTenantCatalog(data []byte) (TenantCatalog, error) {
	var c TenantCatalog
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return TenantCatalog{}, err
	}
	if len(c.Plans) == 0 {
		return TenantCatalog{}, errors.New("no plans")
	}
	var errs []error
	for i, p := range c.Plans {
		if err := p.Validate(); err != nil {
			errs = append(errs, err)
		}
		if slices.ContainsFunc(c.Plans[:i], func(q TenantPlan) bool { return q.Name == p.Name }) {
			errs = append(errs, fmt.Errorf("plan %q is listed twice", p.Name))
		}
	}
	return c, errors.Join(errs...)
}

// Plan finds a plan by name; an unknown plan is refused (ErrRefused).
func (c TenantCatalog) Plan(name string) (TenantPlan, error) {
	for _, p := range c.Plans {
		if p.Name == name {
			return p, nil
		}
	}
	return TenantPlan{}, fmt.Errorf("%w: unknown plan %q (plans: %s)", ErrRefused, name, strings.Join(c.Names(), ", "))
}

// Names are the catalog's plan names, in its order.
func (c TenantCatalog) Names() []string {
	names := make([]string, len(c.Plans))
	for i, p := range c.Plans {
		names[i] = p.Name
	}
	return names
}

// TenantFootprint is what a tenant's prefix and users hold on a cluster,
// counted (payloads carry counts, not lists).
type TenantFootprint struct {
	Topics     int `json:"topics"`
	Partitions int `json:"partitions"`
	Groups     int `json:"groups"`
	// ACLs are the ACLs on the prefix or of the users' principals.
	ACLs int `json:"acls"`
	// Users are the users with a SCRAM credential; Quotas those with
	// client quotas.
	Users  int `json:"users"`
	Quotas int `json:"quotas"`
	// MinRetentionMs and MaxRetentionMs bound the retention.ms of the
	// topics that keep data for a while; UnlimitedRetention counts those
	// that keep it forever (-1).
	MinRetentionMs     int64 `json:"minRetentionMs,omitempty"`
	MaxRetentionMs     int64 `json:"maxRetentionMs,omitempty"`
	UnlimitedRetention int   `json:"unlimitedRetention,omitempty"`
}

// Empty reports whether nothing of the tenant is left.
func (f TenantFootprint) Empty() bool {
	return f.Topics == 0 && f.Groups == 0 && f.ACLs == 0 && f.Users == 0 && f.Quotas == 0
}

func (f TenantFootprint) String() string {
	return fmt.Sprintf("%d topic(s) (%d partitions), %d group(s), %d ACL(s), %d SCRAM user(s), %d quota entit(ies)",
		f.Topics, f.Partitions, f.Groups, f.ACLs, f.Users, f.Quotas)
}
