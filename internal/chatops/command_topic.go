package chatops

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kfleet/kfleet/internal/fleet"
)

// The admin lane's verbs (workflows' topic-admin kind, one verb per
// action): the grammar only. Whether the tenant is known, the topic
// exists, the plan allows the partitions or retention, or the brokers
// have the FD/mmap room is the entity's and the batch's to say.
//
//	topic create <cluster> <tenant> <topic> [partitions=N] [rf=N] [retention=6h]
//	topic delete <cluster> <tenant> <topic>
//	topic partitions <cluster> <tenant> <topic> <N>
//	topic retention <cluster> <tenant> <topic> <duration>
//	group delete <cluster> <tenant> <group>
//
// Each is written as two words or as its verb (topic-create, ...), the
// name policies grant and the canonical form writes.

// The admin lane's verbs.
const (
	VerbTopicCreate     Verb = "topic-create"
	VerbTopicDelete     Verb = "topic-delete"
	VerbTopicPartitions Verb = "topic-partitions"
	VerbTopicRetention  Verb = "topic-retention"
	VerbGroupDelete     Verb = "group-delete"
)

// DefaultTopicPartitions is a chat creation's partitions without
// partitions= (Kafka's num.partitions default).
const DefaultTopicPartitions = 1

// maxRetention bounds a retention's duration at the grammar: any plan's
// bounds are far below it.
const maxRetention = 100 * 365 * 24 * time.Hour

// isTopicVerb reports whether v is one of the admin lane's verbs.
func isTopicVerb(v Verb) bool {
	switch v {
	case VerbTopicCreate, VerbTopicDelete, VerbTopicPartitions, VerbTopicRetention, VerbGroupDelete:
		return true
	}
	return false
}

// twoWordVerb reads "topic create ..." or "group delete ..." as the verb
// topic-create or group-delete; other words are left alone.
func twoWordVerb(fields []string) (Verb, []string) {
	if len(fields) > 1 && (fields[0] == "topic" || fields[0] == "group") {
		if v := Verb(fields[0] + "-" + fields[1]); isTopicVerb(v) {
			return v, fields[2:]
		}
	}
	return Verb(fields[0]), fields[1:]
}

// parseTopicArgs reads what follows the cluster of an admin lane verb.
func parseTopicArgs(cmd *Command, args []string) error {
	if len(args) == 0 {
		return errors.New("missing tenant")
	}
	if err := checkTenant(args[0]); err != nil {
		return err
	}
	cmd.Tenant, args = args[0], args[1:]
	what := "topic"
	if cmd.Verb == VerbGroupDelete {
		what = "group"
	}
	if len(args) == 0 {
		return errors.New("missing " + what)
	}
	if cmd.Verb == VerbGroupDelete {
		if fleet.CheckGroupName(cmd.Tenant, args[0]) != nil {
			return fmt.Errorf("group %s: want a group id under tenant %s's prefix %s", quote(args[0]), cmd.Tenant, fleet.TenantPrefix(cmd.Tenant))
		}
		cmd.Group = args[0]
	} else {
		if fleet.CheckTopicName(cmd.Tenant, args[0]) != nil {
			return fmt.Errorf("topic %s: want a topic under tenant %s's prefix %s, of a-z, A-Z, 0-9, '.', '_' and '-'", quote(args[0]), cmd.Tenant, fleet.TenantPrefix(cmd.Tenant))
		}
		cmd.Topic = args[0]
	}
	args = args[1:]
	switch cmd.Verb {
	case VerbTopicPartitions:
		if len(args) == 0 {
			return errors.New("missing partitions: the topic's new total")
		}
		n, err := parsePartitions(args[0])
		if err != nil {
			return err
		}
		cmd.Partitions, args = n, args[1:]
	case VerbTopicRetention:
		if len(args) == 0 {
			return errors.New("missing retention, like 6h")
		}
		if err := checkRetention(args[0]); err != nil {
			return err
		}
		cmd.Retention, args = args[0], args[1:]
	case VerbTopicCreate:
		return parseOptions(args, []string{"partitions", "rf", "retention"}, func(key, value string) error {
			switch key {
			case "partitions":
				n, err := parsePartitions(value)
				cmd.Partitions = n
				return err
			case "rf":
				n, err := strconv.Atoi(value)
				if err != nil || !allDigits(value) || n < 1 || n > 16 {
					return fmt.Errorf("rf %s: want a replication factor from 1 to 16", quote(value))
				}
				cmd.ReplicationFactor = n
			case "retention":
				if err := checkRetention(value); err != nil {
					return err
				}
				cmd.Retention = value
			}
			return nil
		})
	}
	if len(args) > 0 {
		return fmt.Errorf("unexpected %s", quote(strings.Join(args, " ")))
	}
	return nil
}

func parsePartitions(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || !allDigits(s) || n < 1 || n > fleet.MaxTopicPartitions {
		return 0, fmt.Errorf("partitions %s: want a number from 1 to %d", quote(s), fleet.MaxTopicPartitions)
	}
	return n, nil
}

// checkRetention accepts a Go duration of whole milliseconds, like 6h or
// 90m: retention.ms.
func checkRetention(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > maxRetention || d%time.Millisecond != 0 {
		return fmt.Errorf("retention %s: want a duration like 6h, 90m or 168h", quote(s))
	}
	return nil
}

// RetentionMs is a command's retention in milliseconds (0: none given).
func (c Command) RetentionMs() int64 {
	d, err := time.ParseDuration(c.Retention)
	if err != nil {
		return 0
	}
	return d.Milliseconds()
}

// topicArgs writes what follows the cluster of an admin lane verb,
// canonically.
func topicArgs(c Command) []string {
	out := []string{c.Tenant}
	switch c.Verb {
	case VerbGroupDelete:
		return append(out, c.Group)
	case VerbTopicPartitions:
		return append(out, c.Topic, strconv.Itoa(c.Partitions))
	case VerbTopicRetention:
		return append(out, c.Topic, c.Retention)
	case VerbTopicCreate:
		out = append(out, c.Topic)
		if c.Partitions != 0 {
			out = append(out, "partitions="+strconv.Itoa(c.Partitions))
		}
		if c.ReplicationFactor != 0 {
			out = append(out, "rf="+strconv.Itoa(c.ReplicationFactor))
		}
		if c.Retention != "" {
			out = append(out, "retention="+c.Retention)
		}
		return out
	}
	return append(out, c.Topic)
}

// reparseTopic is the admin lane command Parse makes of c's canonical
// text.
func reparseTopic(c Command) (Command, error) {
	again := Command{Verb: c.Verb, Cluster: c.Cluster}
	if err := parseTopicArgs(&again, topicArgs(c)); err != nil {
		return Command{}, fmt.Errorf("%s: %w", c.Verb, err)
	}
	return again, nil
}
