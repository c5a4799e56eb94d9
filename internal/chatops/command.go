package chatops

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// Verb is what a chat command asks kfleet to do. The verbs are the CLI's.
type Verb string

// The verbs a command may carry.
const (
	VerbHelp         Verb = "help"
	VerbList         Verb = "list"
	VerbStatus       Verb = "status"
	VerbRestart      Verb = "restart"
	VerbUpgrade      Verb = "upgrade"
	VerbExpand       Verb = "expand"
	VerbCleanerCheck Verb = "cleaner-check"
	VerbPause        Verb = "pause"
	VerbResume       Verb = "resume"
	VerbAbort        Verb = "abort"
	VerbCreate       Verb = "create"
	VerbDelete       Verb = "delete"
	VerbAddBrokers   Verb = "add-brokers"
	VerbRemoveBroker Verb = "remove-broker"
	VerbRebalance    Verb = "rebalance"
	// The tenant verbs (command_tenant.go).
	VerbTenantCreate     Verb = "tenant-create"
	VerbTenantRotate     Verb = "tenant-rotate"
	VerbTenantChangePlan Verb = "tenant-change-plan"
	VerbTenantDelete     Verb = "tenant-delete"
	// The admin lane's verbs are in command_topic.go, the migration's in
	// command_migrate.go.
)

// verbSpec is how a verb is written and what it does, for help and errors.
type verbSpec struct {
	verb  Verb
	usage string
	does  string
}

// verbSpecs lists every verb in the order help shows them.
var verbSpecs = [...]verbSpec{
	{VerbStatus, "status <cluster>", "the cluster's state"},
	{VerbList, "list", "the registered clusters"},
	{VerbRestart, "restart <cluster> [brokers=1,2] [batch=N]", "rolling restart, the controller last (needs a second person's approval)"},
	{VerbUpgrade, "upgrade <cluster> <version>", "rolling upgrade to a Kafka version like 3.7.1; a KRaft cluster's then finalizes metadata.version, by default the release's latest, or metadata=4.0-IV3 after the version (needs approval)"},
	{VerbExpand, "expand <cluster> <broker>", "grow a broker's data volume now (needs approval)"},
	{VerbAddBrokers, "add-brokers <cluster> <count> [type=T] [volume=GiB] [throttle=RATE]",
		"add brokers like the cluster's own (or of type T, with GiB volumes), then move partitions onto them; RATE is the replication throttle in bytes/s, like 10MiB, 512KiB or 1048576"},
	{VerbRemoveBroker, "remove-broker <cluster> <broker> [throttle=RATE]",
		"move the broker's partitions off it, then terminate its host and delete its volume (needs approval)"},
	{VerbRebalance, "rebalance <cluster> [throttle=RATE]", "move partitions until brokers' replica and leader counts are within 10% of each other"},
	{VerbReplaceController, "replace-controller <cluster> <node>",
		"replace a KRaft controller's host: refused unless the quorum keeps a caught-up majority without it (needs approval)"},
	{VerbCleanerCheck, "cleaner-check <cluster>", "check the log cleaner, restart (gated) brokers whose cleaner is dead"},
	{VerbPause, "pause <cluster> [reason...]", "no queued operation starts until resume"},
	{VerbResume, "resume <cluster>", "queued operations start again"},
	{VerbAbort, "abort <cluster> [operation-id]", "abort the operation waiting for a human (needs approval)"},
	{VerbCreate, "create <cluster> brokers=N zones=Z1,Z2,Z3 version=V [type=T] [volume=GiB] [zk-type=T] [plan=P] [controllers=3|5] [metadata=MV]",
		"create a managed cluster: hosts, volumes, ZooKeeper (or with controllers= a KRaft quorum), brokers, then register it"},
	{VerbDelete, "delete <cluster> [force]", "delete the cluster's hosts, volumes and chroot (needs approval; refused while topics or tenants remain unless force)"},
	{VerbTenantCreate, "tenant-create <cluster> <plan> [name=N]",
		"create a tenant on a plan like basic-0; its password is fetched once with bin/starter tenant credentials, never shown in chat"},
	{VerbTenantRotate, "tenant-rotate <cluster> <tenant> [grace=24h]", "a new credential for the tenant; the old one goes after the grace"},
	{VerbTenantChangePlan, "tenant-change-plan <cluster> <tenant> <plan>", "move a tenant to another plan (refused if it is over the plan's limits)"},
	{VerbTenantDelete, "tenant-delete <cluster> <tenant>", "delete a tenant's users, topics and groups (needs approval)"},
	{VerbTopicCreate, "topic create <cluster> <tenant> <topic> [partitions=N] [rf=N] [retention=6h]",
		"create a tenant's topic through the cluster's admin lane (batched, never during a roll, within its plan and the brokers' FD/mmap budget); partitions default 1, rf 3, retention the plan's"},
	{VerbTopicDelete, "topic delete <cluster> <tenant> <topic>", "delete a tenant's topic and its data (needs approval)"},
	{VerbTopicPartitions, "topic partitions <cluster> <tenant> <topic> <N>", "take a tenant's topic to N partitions in all (more than it has)"},
	{VerbTopicRetention, "topic retention <cluster> <tenant> <topic> <duration>", "set a tenant's topic's retention.ms, like 6h, within its plan's bounds"},
	{VerbGroupDelete, "group delete <cluster> <tenant> <group>", "delete a tenant's consumer group; refused while it has live members"},
	{VerbMigrateStart, "migrate start <cluster> [controllers=3|5]",
		"start the cluster's migration from ZooKeeper to KRaft: its preflight runs at once, then phase 1 awaits a second person's approval"},
	{VerbMigrateStatus, "migrate status <cluster>", "where the cluster's migration is, and the phase awaiting approval"},
	{VerbMigrateApprove, "migrate approve <cluster> <phase 1-4>",
		"start the phase awaiting approval (1 controllers, 2 dual-write, 3 brokers-kraft, 4 finalize: no undo); not by who started the migration"},
	{VerbMigrateRollback, "migrate rollback <cluster> [reason...]", "roll the cluster back to ZooKeeper from the phase it is in (until finalization)"},
	{VerbMigrateAbandon, "migrate abandon <cluster> [reason...]", "end the migration where it is; a later migrate start resumes from the cluster's phase"},
	{VerbHelp, "help", "this text"},
}

func specOf(v Verb) (verbSpec, bool) {
	for _, s := range verbSpecs {
		if s.verb == v {
			return s, true
		}
	}
	return verbSpec{}, false
}

// Verbs lists every verb, in the order help shows them.
func Verbs() []Verb {
	vs := make([]Verb, len(verbSpecs))
	for i, s := range verbSpecs {
		vs[i] = s.verb
	}
	return vs
}

// Known reports whether v is one of the verbs.
func (v Verb) Known() bool { _, ok := specOf(v); return ok }

// Destructive reports whether v takes brokers down, grows volumes, removes
// hosts or ends an operation: asked from chat, it needs a second person's approval. An
// operation's verb is destructive when its kind is registered so
// (workflows.Kinds); abort ends whatever waits for a human.
func (v Verb) Destructive() bool {
	if v == VerbAbort {
		return true
	}
	return workflows.DestructiveVerb(string(v))
}

// NeedsCluster reports whether commands of v name a cluster.
func (v Verb) NeedsCluster() bool { return v.Known() && v != VerbHelp && v != VerbList }

// Usage is how a command of v is written, e.g. "upgrade <cluster> <version>".
func (v Verb) Usage() string { s, _ := specOf(v); return s.usage }

// Limits of the parser. A command is short: the bound keeps replies that
// quote it short and makes the parser's work bounded.
const (
	// MaxCommandLen is the longest command text accepted, in bytes.
	MaxCommandLen = 1000
	// MaxBatch is the largest batch= of a restart.
	MaxBatch = 64
	// maxOperationIDLen bounds an abort's operation id.
	maxOperationIDLen = 128
	// maxQuoted bounds how much of a bad token an error quotes.
	maxQuoted = 40
)

// Command is a parsed chat command. Only the fields of its Verb are set:
// Parse(c.String()) gives c back.
type Command struct {
	Verb Verb
	// Cluster is the cluster id, for every verb but help and list.
	Cluster string
	// Brokers restricts a restart to these broker ids (nil: all), or names
	// the one broker of an expand or a remove-broker.
	Brokers []int32
	// MaxBatch lets a restart take down up to this many brokers that share
	// no partition together (1..MaxBatch; 0: the default, one at a time).
	MaxBatch int
	// Version is an upgrade's target Kafka version, e.g. "3.7.1".
	Version string
	// MetadataVersion is a KRaft upgrade's target metadata.version, e.g.
	// "4.0-IV3" (metadata=; "": the release's latest).
	MetadataVersion string
	// Reason is a pause's, or a migration's rollback's or abandon's,
	// reason (may be empty).
	Reason string
	// OperationID is the operation an abort answers ("": the one waiting).
	OperationID string
	// Plan is a create's plan (its ID is Cluster), as typed: its defaults
	// are filled in, and its rules checked, by the provisioning.
	Plan fleet.ClusterPlan
	// Force is a delete's force: approving it, the approver forces it.
	Force bool
	// Count is how many brokers an add-brokers adds; InstanceType and
	// VolumeGiB are theirs ("" and 0: like the cluster's brokers).
	Count        int
	InstanceType string
	VolumeGiB    int32
	// ThrottleBytesPerSec is the replication throttle partitions move
	// under (add-brokers, remove-broker, rebalance; 0: kfleet's default).
	ThrottleBytesPerSec int64
	// Node is a replace-controller's KRaft controller node id.
	Node int32
	// Tenant names a tenant (a create's name=, "" generates one);
	// TenantPlan is a tenant's plan; Grace a rotation's grace, as typed.
	Tenant     string
	TenantPlan string
	Grace      string
	// Topic and Group name a tenant's topic or consumer group (the admin
	// lane's verbs, command_topic.go); Partitions is a creation's
	// partitions= (0: the default) or a topic's new total;
	// ReplicationFactor a creation's rf=; Retention a retention as typed,
	// like 6h.
	Topic             string
	Group             string
	Partitions        int
	ReplicationFactor int
	Retention         string
	// Controllers is a migration's start's controllers= (0: the
	// default, 3); Phase the phase a migrate-approve approves.
	Controllers int
	Phase       fleet.MigrationPhase
}

// Parse reads a command's text (what follows the slash command) strictly:
// an unknown verb, a missing or extra argument, or a malformed one is an
// error that says what is wrong. Empty text is help.
func Parse(text string) (Command, error) {
	if len(text) > MaxCommandLen {
		return Command{}, fmt.Errorf("command is too long (%d bytes, at most %d)", len(text), MaxCommandLen)
	}
	if !utf8.ValidString(text) {
		return Command{}, errors.New("command is not valid UTF-8")
	}
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return Command{Verb: VerbHelp}, nil
	}
	verb, args := commandVerb(fields) // command_migrate.go
	spec, ok := specOf(verb)
	if !ok {
		return Command{}, fmt.Errorf("unknown verb %s: want one of %s", quote(fields[0]), verbList())
	}
	cmd, err := parseArgs(verb, args)
	if err != nil {
		return Command{}, fmt.Errorf("%s: %w (usage: %s)", verb, err, spec.usage)
	}
	return cmd, nil
}

func parseArgs(verb Verb, args []string) (Command, error) {
	cmd := Command{Verb: verb}
	if verb.NeedsCluster() {
		if len(args) == 0 {
			return Command{}, errors.New("missing cluster")
		}
		if err := checkCluster(args[0]); err != nil {
			return Command{}, err
		}
		cmd.Cluster, args = args[0], args[1:]
	}
	switch verb {
	case VerbRestart:
		return cmd, parseRestartOptions(&cmd, args)
	case VerbUpgrade:
		if len(args) == 0 {
			return Command{}, errors.New("missing version")
		}
		// The grammar only: whether the cluster can run that release
		// (ZooKeeper mode ends with Kafka 4) is the upgrade's own check.
		v, err := fleet.ParseKafkaVersion(args[0])
		if err != nil {
			return Command{}, err
		}
		cmd.Version, args = v.String(), args[1:]
		if len(args) > 0 && strings.HasPrefix(args[0], "metadata=") {
			m, err := fleet.ParseMetadataVersion(strings.TrimPrefix(args[0], "metadata="))
			if err != nil {
				return Command{}, err
			}
			cmd.MetadataVersion, args = m.Name, args[1:]
		}
	case VerbExpand:
		if len(args) == 0 {
			return Command{}, errors.New("missing broker")
		}
		b, err := parseBroker(args[0])
		if err != nil {
			return Command{}, err
		}
		cmd.Brokers, args = []int32{b}, args[1:]
	case VerbPause:
		for _, a := range args {
			if strings.ContainsFunc(a, unicode.IsControl) {
				return Command{}, errors.New("reason: control characters are not allowed")
			}
		}
		cmd.Reason, args = strings.Join(args, " "), nil
	case VerbCreate:
		return cmd, parseCreateOptions(&cmd, args) // command_create.go
	case VerbAddBrokers, VerbRemoveBroker, VerbRebalance:
		return cmd, parseResizeArgs(&cmd, args) // command_resize.go
	case VerbReplaceController:
		return cmd, parseControllerArgs(&cmd, args) // command_controller.go
	case VerbTenantCreate, VerbTenantRotate, VerbTenantChangePlan, VerbTenantDelete:
		return cmd, parseTenantArgs(&cmd, args) // command_tenant.go
	case VerbTopicCreate, VerbTopicDelete, VerbTopicPartitions, VerbTopicRetention, VerbGroupDelete:
		return cmd, parseTopicArgs(&cmd, args) // command_topic.go
	case VerbMigrateStart, VerbMigrateStatus, VerbMigrateApprove, VerbMigrateRollback, VerbMigrateAbandon:
		return cmd, parseMigrateArgs(&cmd, args) // command_migrate.go
	case VerbDelete:
		if len(args) > 0 && args[0] == "force" {
			cmd.Force, args = true, args[1:]
		}
	case VerbAbort:
		if len(args) > 0 {
			if !validOperationID(args[0]) {
				return Command{}, fmt.Errorf("operation id %s: want up to %d characters of a-z, A-Z, 0-9 and -_.:/", quote(args[0]), maxOperationIDLen)
			}
			cmd.OperationID, args = args[0], args[1:]
		}
	}
	if len(args) > 0 {
		return Command{}, fmt.Errorf("unexpected %s", quote(strings.Join(args, " ")))
	}
	return cmd, nil
}

// parseRestartOptions reads a restart's brokers=1,2 and batch=N, each at
// most once, in any order.
func parseRestartOptions(cmd *Command, args []string) error {
	var seenBrokers, seenBatch bool
	for _, a := range args {
		key, value, ok := strings.Cut(a, "=")
		switch {
		case !ok:
			return fmt.Errorf("unexpected %s (options are brokers=1,2 and batch=N)", quote(a))
		case key == "brokers" && !seenBrokers:
			seenBrokers = true
			bs, err := parseBrokerList(value)
			if err != nil {
				return err
			}
			cmd.Brokers = bs
		case key == "batch" && !seenBatch:
			seenBatch = true
			n, err := strconv.Atoi(value)
			if err != nil || !allDigits(value) || n < 1 || n > MaxBatch {
				return fmt.Errorf("batch %s: want a number from 1 to %d", quote(value), MaxBatch)
			}
			cmd.MaxBatch = n
		case key == "brokers" || key == "batch":
			return fmt.Errorf("%s= given twice", key)
		default:
			return fmt.Errorf("unknown option %s (options are brokers=1,2 and batch=N)", quote(key))
		}
	}
	return nil
}

func parseBrokerList(s string) ([]int32, error) {
	if s == "" {
		return nil, errors.New("brokers= is empty: want broker ids like brokers=1,2")
	}
	parts := strings.Split(s, ",")
	bs := make([]int32, 0, len(parts))
	for _, p := range parts {
		b, err := parseBroker(p)
		if err != nil {
			return nil, err
		}
		if slices.Contains(bs, b) {
			return nil, fmt.Errorf("broker %d listed twice", b)
		}
		bs = append(bs, b)
	}
	return bs, nil
}

// parseBroker reads a broker id: digits only (no sign), at most MaxInt32.
func parseBroker(s string) (int32, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || !allDigits(s) {
		return 0, fmt.Errorf("broker %s: want a non-negative integer broker id", quote(s))
	}
	return int32(n), nil
}

// Validate reports whether c is a command Parse could have returned: its
// verb is known, its arguments are well formed, and only its verb's fields
// are set. A Backend may call it before acting on a Command it did not get
// from Parse.
func (c Command) Validate() error {
	if !c.Verb.Known() {
		return fmt.Errorf("unknown verb %s", quote(string(c.Verb)))
	}
	if c.Verb.NeedsCluster() {
		if err := checkCluster(c.Cluster); err != nil {
			return err
		}
	} else if c.Cluster != "" {
		return fmt.Errorf("%s takes no cluster", c.Verb)
	}
	want := Command{Verb: c.Verb, Cluster: c.Cluster}
	switch c.Verb {
	case VerbRestart:
		want.Brokers, want.MaxBatch = c.Brokers, c.MaxBatch
		if c.Brokers != nil && len(c.Brokers) == 0 {
			return errors.New("restart: brokers is empty (nil means all)")
		}
		for i, b := range c.Brokers {
			if b < 0 || slices.Contains(c.Brokers[:i], b) {
				return fmt.Errorf("restart: broker %d is negative or listed twice", b)
			}
		}
		if c.MaxBatch < 0 || c.MaxBatch > MaxBatch {
			return fmt.Errorf("restart: batch %d: want 1 to %d (0: the default)", c.MaxBatch, MaxBatch)
		}
	case VerbUpgrade:
		want.Version, want.MetadataVersion = c.Version, c.MetadataVersion
		if _, err := fleet.ParseKafkaVersion(c.Version); err != nil {
			return fmt.Errorf("upgrade: %w", err)
		}
		if c.MetadataVersion != "" {
			if m, err := fleet.ParseMetadataVersion(c.MetadataVersion); err != nil || m.Name != c.MetadataVersion {
				return fmt.Errorf("upgrade: metadata=%q: want a level name like 4.0-IV3", c.MetadataVersion)
			}
		}
	case VerbExpand:
		want.Brokers = c.Brokers
		if len(c.Brokers) != 1 || c.Brokers[0] < 0 {
			return fmt.Errorf("expand: want exactly one non-negative broker, got %v", c.Brokers)
		}
	case VerbPause:
		want.Reason = c.Reason
		if c.Reason != strings.Join(strings.Fields(c.Reason), " ") || strings.ContainsFunc(c.Reason, unicode.IsControl) {
			return errors.New("pause: reason must be words separated by single spaces, without control characters")
		}
	case VerbAbort:
		want.OperationID = c.OperationID
		if c.OperationID != "" && !validOperationID(c.OperationID) {
			return fmt.Errorf("abort: operation id %s is malformed", quote(c.OperationID))
		}
	case VerbCreate:
		want.Plan = c.Plan
		if err := validateCreate(c); err != nil {
			return err
		}
	case VerbDelete:
		want.Force = c.Force
	case VerbReplaceController:
		want.Node = c.Node
		if c.Node < 0 {
			return fmt.Errorf("replace-controller: node %d is negative", c.Node)
		}
	case VerbAddBrokers, VerbRemoveBroker, VerbRebalance:
		again, err := reparseResize(c)
		if err != nil {
			return err
		}
		want = again
	case VerbTenantCreate, VerbTenantRotate, VerbTenantChangePlan, VerbTenantDelete:
		again, err := reparseTenant(c)
		if err != nil {
			return err
		}
		want = again
	case VerbTopicCreate, VerbTopicDelete, VerbTopicPartitions, VerbTopicRetention, VerbGroupDelete:
		again, err := reparseTopic(c)
		if err != nil {
			return err
		}
		want = again
	case VerbMigrateStart, VerbMigrateStatus, VerbMigrateApprove, VerbMigrateRollback, VerbMigrateAbandon:
		again, err := reparseMigrate(c)
		if err != nil {
			return err
		}
		want = again
	}
	if !c.equal(want) {
		return fmt.Errorf("%s: fields of another verb are set", c.Verb)
	}
	if n := len(c.String()); n > MaxCommandLen {
		return fmt.Errorf("command is too long (%d bytes, at most %d)", n, MaxCommandLen)
	}
	return nil
}

func (c Command) equal(d Command) bool {
	return c.Verb == d.Verb && c.Cluster == d.Cluster && slices.Equal(c.Brokers, d.Brokers) &&
		(c.Brokers == nil) == (d.Brokers == nil) && c.MaxBatch == d.MaxBatch &&
		c.Version == d.Version && c.MetadataVersion == d.MetadataVersion && c.Reason == d.Reason && c.OperationID == d.OperationID &&
		samePlan(c.Plan, d.Plan) && c.Force == d.Force && c.Count == d.Count && c.InstanceType == d.InstanceType &&
		c.VolumeGiB == d.VolumeGiB && c.ThrottleBytesPerSec == d.ThrottleBytesPerSec &&
		c.Tenant == d.Tenant && c.TenantPlan == d.TenantPlan && c.Grace == d.Grace &&
		c.Topic == d.Topic && c.Group == d.Group && c.Partitions == d.Partitions && c.ReplicationFactor == d.ReplicationFactor &&
		c.Retention == d.Retention && c.Node == d.Node && c.Controllers == d.Controllers && c.Phase == d.Phase
}

// String writes c the way Parse reads it, canonically: options in a fixed
// order, single spaces.
func (c Command) String() string {
	parts := []string{string(c.Verb)}
	if c.Verb.NeedsCluster() {
		parts = append(parts, c.Cluster)
	}
	switch c.Verb {
	case VerbRestart:
		if c.Brokers != nil {
			ids := make([]string, len(c.Brokers))
			for i, b := range c.Brokers {
				ids[i] = strconv.Itoa(int(b))
			}
			parts = append(parts, "brokers="+strings.Join(ids, ","))
		}
		if c.MaxBatch != 0 {
			parts = append(parts, "batch="+strconv.Itoa(c.MaxBatch))
		}
	case VerbUpgrade:
		parts = append(parts, c.Version)
		if c.MetadataVersion != "" {
			parts = append(parts, "metadata="+c.MetadataVersion)
		}
	case VerbExpand:
		for _, b := range c.Brokers {
			parts = append(parts, strconv.Itoa(int(b)))
		}
	case VerbPause:
		if c.Reason != "" {
			parts = append(parts, c.Reason)
		}
	case VerbAbort:
		if c.OperationID != "" {
			parts = append(parts, c.OperationID)
		}
	case VerbCreate:
		parts = append(parts, createOptions(c.Plan)...)
	case VerbDelete:
		if c.Force {
			parts = append(parts, "force")
		}
	case VerbAddBrokers, VerbRemoveBroker, VerbRebalance:
		parts = append(parts, resizeArgs(c)...)
	case VerbReplaceController:
		parts = append(parts, strconv.Itoa(int(c.Node)))
	case VerbTenantCreate, VerbTenantRotate, VerbTenantChangePlan, VerbTenantDelete:
		parts = append(parts, tenantArgs(c)...)
	case VerbTopicCreate, VerbTopicDelete, VerbTopicPartitions, VerbTopicRetention, VerbGroupDelete:
		parts = append(parts, topicArgs(c)...)
	case VerbMigrateStart, VerbMigrateStatus, VerbMigrateApprove, VerbMigrateRollback, VerbMigrateAbandon:
		parts = append(parts, migrateArgs(c)...)
	}
	return strings.Join(parts, " ")
}
