package localfleet

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// EC2Config sets what the fleet's EC2 accepts for provisioning
// (RunInstances, CreateVolume, ...) and how long its resources take to
// change state. Zero values mean the defaults.
type EC2Config struct {
	// AvailabilityZones are the zones RunInstances and CreateVolume
	// accept, and where the configured clusters' racks must lie. Default:
	// us-east-1's six, us-east-1a..us-east-1f.
	AvailabilityZones []string `yaml:"availabilityZones,omitempty" json:"availabilityZones,omitempty"`
	// InstanceTypes are the types RunInstances accepts. Default
	// KnownInstanceTypes().
	InstanceTypes []string `yaml:"instanceTypes,omitempty" json:"instanceTypes,omitempty"`
	// Timing is how long instances and volumes spend in their
	// intermediate states.
	Timing EC2Timing `yaml:"timing,omitempty" json:"timing,omitempty"`
	// ClusterTiming is the broker timing of clusters the fleet creates
	// when their first provisioned broker starts (configured clusters have
	// their own). Defaults as Timing's.
	ClusterTiming Timing `yaml:"clusterTiming,omitempty" json:"clusterTiming,omitempty"`
	// ControllerTiming is the quorum timing of KRaft quorums the fleet
	// forms from provisioned controllers (a new KRaft cluster, or a
	// ZooKeeper cluster's migration controllers). Defaults as
	// KRaftConfig.Timing's.
	ControllerTiming KRaftTiming `yaml:"controllerTiming,omitempty" json:"controllerTiming,omitempty"`
}

// EC2Timing is how long EC2 resources take between states. On AWS these
// are tens of seconds; the defaults keep a demo short.
type EC2Timing struct {
	// Pending: RunInstances or StartInstances until running. Default 1s.
	Pending time.Duration `yaml:"pending" json:"pending"`
	// Stopping: StopInstances until stopped. Default 500ms.
	Stopping time.Duration `yaml:"stopping" json:"stopping"`
	// ShuttingDown: TerminateInstances until terminated (and its volumes
	// detached). Default 500ms.
	ShuttingDown time.Duration `yaml:"shuttingDown" json:"shuttingDown"`
	// VolumeCreating: CreateVolume until available. Default 500ms.
	VolumeCreating time.Duration `yaml:"volumeCreating" json:"volumeCreating"`
	// Attaching and Detaching: AttachVolume until attached, DetachVolume
	// until the volume is available. Default 200ms each.
	Attaching time.Duration `yaml:"attaching" json:"attaching"`
	Detaching time.Duration `yaml:"detaching" json:"detaching"`
}

// KnownInstanceTypes is the default set RunInstances accepts: the general
// purpose and memory optimized types Kafka brokers run on, and the small
// burstable ones a ZooKeeper ensemble is content with.
func KnownInstanceTypes() []string {
	return []string{
		"t3.medium", "t3.large",
		"m5.large", "m5.xlarge", "m5.2xlarge", "m5.4xlarge",
		"m6i.large", "m6i.xlarge", "m6i.2xlarge", "m6i.4xlarge",
		"r5.large", "r5.xlarge", "r5.2xlarge", "r5.4xlarge",
		"r6i.large", "r6i.xlarge", "r6i.2xlarge", "r6i.4xlarge",
	}
}

const (
	defaultPending        = time.Second
	defaultStopping       = 500 * time.Millisecond
	defaultShuttingDown   = 500 * time.Millisecond
	defaultVolumeCreating = 500 * time.Millisecond
	defaultAttaching      = 200 * time.Millisecond
	defaultDetaching      = 200 * time.Millisecond
)

// regionAZs are us-east-1's availability zones.
func regionAZs() []string {
	out := make([]string, maxRacks)
	for i := range out {
		out[i] = fmt.Sprintf("%s%c", AWSRegion, 'a'+rune(i))
	}
	return out
}

// WithDefaults is the configuration with its zero values filled in, as
// the fleet runs it (benchmarks divide by its timing).
func (e EC2Config) WithDefaults() EC2Config { return e.withDefaults() }

func (e EC2Config) withDefaults() EC2Config {
	if len(e.AvailabilityZones) == 0 {
		e.AvailabilityZones = regionAZs()
	} else {
		e.AvailabilityZones = slices.Clone(e.AvailabilityZones)
	}
	if len(e.InstanceTypes) == 0 {
		e.InstanceTypes = KnownInstanceTypes()
	} else {
		e.InstanceTypes = slices.Clone(e.InstanceTypes)
	}
	t := &e.Timing
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&t.Pending, defaultPending}, {&t.Stopping, defaultStopping}, {&t.ShuttingDown, defaultShuttingDown},
		{&t.VolumeCreating, defaultVolumeCreating}, {&t.Attaching, defaultAttaching}, {&t.Detaching, defaultDetaching},
	} {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	e.ClusterTiming = e.ClusterTiming.withDefaults()
	e.ControllerTiming = KRaftConfig{Timing: e.ControllerTiming}.withDefaults().Timing
	return e
}

// withDefaults fills a Timing's zero values, as ClusterConfig's are.
func (t Timing) withDefaults() Timing {
	if t.ControlledShutdown == 0 {
		t.ControlledShutdown = defaultControlledShutdown
	}
	if t.Startup == 0 {
		t.Startup = defaultStartup
	}
	if t.CatchUp == 0 {
		t.CatchUp = defaultCatchUp
	}
	if t.CatchUpBytesPerSec == 0 {
		t.CatchUpBytesPerSec = defaultCatchUpBytesPerSec
	}
	return t
}

// validate checks the EC2 settings, and that every configured cluster's
// racks lie in the fleet's zones (a rack is its brokers' zone).
func (e EC2Config) validate(clusters []ClusterConfig) error {
	e = e.withDefaults() // zero values are the defaults, whether applied yet or not
	var errs []error
	seen := map[string]bool{}
	for _, az := range e.AvailabilityZones {
		if !azPattern.MatchString(az) {
			errs = append(errs, fmt.Errorf("ec2.availabilityZones: %q is not a zone name like us-east-1a", az))
		}
		if seen[az] {
			errs = append(errs, fmt.Errorf("ec2.availabilityZones: %q listed twice", az))
		}
		seen[az] = true
	}
	for _, it := range e.InstanceTypes {
		if !instanceTypePattern.MatchString(it) {
			errs = append(errs, fmt.Errorf("ec2.instanceTypes: %q is not an instance type like m5.xlarge", it))
		}
	}
	t := e.Timing
	if t.Pending < 0 || t.Stopping < 0 || t.ShuttingDown < 0 || t.VolumeCreating < 0 || t.Attaching < 0 || t.Detaching < 0 {
		errs = append(errs, errors.New("ec2.timing durations must not be negative"))
	}
	ct := e.ClusterTiming
	if ct.ControlledShutdown < 0 || ct.Startup < 0 || ct.CatchUp < 0 || ct.CatchUpBytesPerSec < 0 || ct.RecoveryPerSegment < 0 {
		errs = append(errs, errors.New("ec2.clusterTiming durations must not be negative"))
	}
	for _, cc := range clusters {
		for id := 1; id <= min(cc.Brokers, cc.Racks); id++ {
			if az := cc.rackOf(id); !seen[az] {
				errs = append(errs, fmt.Errorf("clusters %q: rack %s is not one of ec2.availabilityZones %v", cc.ID, az, e.AvailabilityZones))
			}
		}
	}
	return errors.Join(errs...)
}
