package chatops

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/kfleet/kfleet/internal/fleet"
)

// A create's options: the grammar only. Whether the plan makes sense (as
// many brokers as the replication factor, a volume the plan allows, a
// zone EC2 has) is the provisioning's to say, before anything launches.

var (
	zoneToken         = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	instanceTypeToken = regexp.MustCompile(`^[a-z][a-z0-9-]{0,15}\.[a-z0-9]{1,16}$`)
	planToken         = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	metadataToken     = regexp.MustCompile(`^[0-9]{1,4}\.[0-9]{1,4}(-IV[0-9]{1,4})?$`)
)

// maxZones bounds a create's zones= (regions have at most a handful).
const maxZones = 8

// createKeys are a create's options, in canonical order.
var createKeys = [...]string{"brokers", "zones", "version", "type", "volume", "zk-type", "plan", "controllers", "metadata"}

// parseCreateOptions reads a create's key=value options, each at most
// once, in any order; brokers, zones and version are required.
func parseCreateOptions(cmd *Command, args []string) error {
	p := fleet.ClusterPlan{ID: cmd.Cluster}
	seen := map[string]bool{}
	err := parseOptions(args, createKeys[:], func(key, value string) error {
		seen[key] = true
		var err error
		switch key {
		case "brokers":
			n, err := strconv.Atoi(value)
			if err != nil || !allDigits(value) || n < 1 || n > 999 {
				return fmt.Errorf("brokers %s: want a number of brokers", quote(value))
			}
			p.Brokers = n
		case "zones":
			zones := strings.Split(value, ",")
			if len(zones) > maxZones {
				return fmt.Errorf("zones: at most %d", maxZones)
			}
			for _, z := range zones {
				if !zoneToken.MatchString(z) {
					return fmt.Errorf("zone %s: want a zone name like us-east-1a", quote(z))
				}
			}
			p.AvailabilityZones = zones
		case "version":
			v, err := fleet.ParseKafkaVersion(value)
			if err != nil {
				return err
			}
			p.KafkaVersion = v.String()
		case "type":
			p.InstanceType, err = parseInstanceType(key, value)
		case "zk-type":
			p.ZooKeeperInstanceType, err = parseInstanceType(key, value)
		case "volume":
			p.VolumeGiB, err = parseVolume(value)
		case "plan":
			if !planToken.MatchString(value) {
				return fmt.Errorf("plan %s: want a plan name like standard", quote(value))
			}
			p.Plan = value
		case "controllers", "metadata":
			// Either makes a KRaft cluster (plan_kraft.go); whether the
			// count and level are allowed is the plan's to say.
			if p.KRaft == nil {
				p.KRaft = &fleet.KRaftPlan{}
			}
			if key == "metadata" {
				if !metadataToken.MatchString(value) {
					return fmt.Errorf("metadata %s: want a metadata.version like 4.0-IV3, or a release like 4.0", quote(value))
				}
				p.KRaft.MetadataVersion = value
				break
			}
			n, err := strconv.Atoi(value)
			if err != nil || !allDigits(value) || n > 99 {
				return fmt.Errorf("controllers %s: want a number of KRaft controllers, 3 or 5", quote(value))
			}
			p.KRaft.Controllers = n
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, k := range []string{"brokers", "zones", "version"} {
		if !seen[k] {
			return fmt.Errorf("missing %s=", k)
		}
	}
	cmd.Plan = p
	return nil
}

// parseOptions reads key=value options, each of keys at most once, in any
// order, handing each to set.
func parseOptions(args, keys []string, set func(key, value string) error) error {
	seen := map[string]bool{}
	for _, a := range args {
		key, value, ok := strings.Cut(a, "=")
		switch {
		case !ok || !slices.Contains(keys, key):
			return fmt.Errorf("unexpected %s (options are %s, as key=value)", quote(a), strings.Join(keys, ", "))
		case seen[key]:
			return fmt.Errorf("%s= given twice", key)
		}
		seen[key] = true
		if err := set(key, value); err != nil {
			return err
		}
	}
	return nil
}

// parseInstanceType reads an EC2 instance type, the value of key.
func parseInstanceType(key, value string) (string, error) {
	if !instanceTypeToken.MatchString(value) {
		return "", fmt.Errorf("%s %s: want an instance type like m5.xlarge", key, quote(value))
	}
	return value, nil
}

// parseVolume reads a data volume's size in GiB.
func parseVolume(value string) (int32, error) {
	n, err := strconv.Atoi(value)
	if err != nil || !allDigits(value) || n < 1 || n > fleet.MaxVolumeGiB {
		return 0, fmt.Errorf("volume %s: want GiB, 1 to %d", quote(value), fleet.MaxVolumeGiB)
	}
	return int32(n), nil
}

// createOptions writes a create's options canonically.
func createOptions(p fleet.ClusterPlan) []string {
	out := []string{"brokers=" + strconv.Itoa(p.Brokers), "zones=" + strings.Join(p.AvailabilityZones, ","), "version=" + p.KafkaVersion}
	for _, kv := range [][2]string{{"type", p.InstanceType}, {"volume", cond(p.VolumeGiB > 0, strconv.Itoa(int(p.VolumeGiB)))},
		{"zk-type", p.ZooKeeperInstanceType}, {"plan", p.Plan}} {
		if kv[1] != "" {
			out = append(out, kv[0]+"="+kv[1])
		}
	}
	if k := p.KRaft; k != nil {
		out = append(out, "controllers="+strconv.Itoa(k.Controllers))
		if k.MetadataVersion != "" {
			out = append(out, "metadata="+k.MetadataVersion)
		}
	}
	return out
}

func cond(ok bool, s string) string {
	if ok {
		return s
	}
	return ""
}

// validateCreate checks a create as Parse would have made it.
func validateCreate(c Command) error {
	var cmd Command
	cmd.Verb, cmd.Cluster = VerbCreate, c.Cluster
	if c.Plan.ID != c.Cluster || c.Plan.Health != (fleet.HealthPolicy{}) {
		return errors.New("create: the plan's id is the cluster, and chat sets no health policy")
	}
	args := createOptions(c.Plan)
	if err := parseCreateOptions(&cmd, args); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if !samePlan(cmd.Plan, c.Plan) {
		return errors.New("create: the plan does not read back the same")
	}
	return nil
}

// samePlan compares the fields a create sets.
func samePlan(a, b fleet.ClusterPlan) bool {
	return a.ID == b.ID && a.Brokers == b.Brokers && slices.Equal(a.AvailabilityZones, b.AvailabilityZones) &&
		a.InstanceType == b.InstanceType && a.VolumeGiB == b.VolumeGiB && a.ZooKeeperInstanceType == b.ZooKeeperInstanceType &&
		a.KafkaVersion == b.KafkaVersion && a.Plan == b.Plan && a.Health == b.Health &&
		(a.KRaft == nil) == (b.KRaft == nil) && (a.KRaft == nil || a.KRaft.Controllers == b.KRaft.Controllers &&
		a.KRaft.MetadataVersion == b.KRaft.MetadataVersion && a.KRaft.InstanceType == b.KRaft.InstanceType)
}
