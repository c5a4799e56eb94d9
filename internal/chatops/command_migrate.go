package chatops

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"

	"github.com/kfleet/kfleet/internal/fleet"
)

// The ZooKeeper-to-KRaft migration's verbs (workflows.MigrationWorkflow,
// the CLI's starter migrate): the grammar only. Whether the cluster can
// migrate, which phase awaits approval, and who may approve it (not who
// started the migration) are the migration's to say.
//
//	migrate start <cluster> [controllers=3|5]
//	migrate status <cluster>
//	migrate approve <cluster> <phase 1-4>
//	migrate rollback <cluster> [reason...]
//	migrate abandon <cluster> [reason...]
//
// Each is written as two words or as its verb (migrate-start, ...), the
// name policies grant and the canonical form writes. None needs chat's
// approval: the migration itself holds each phase until a second person
// approves it, so the chat backend runs them at once.

// The migration's verbs.
const (
	VerbMigrateStart    Verb = "migrate-start"
	VerbMigrateStatus   Verb = "migrate-status"
	VerbMigrateApprove  Verb = "migrate-approve"
	VerbMigrateRollback Verb = "migrate-rollback"
	VerbMigrateAbandon  Verb = "migrate-abandon"
)

// isMigrateVerb reports whether v is one of the migration's verbs.
func isMigrateVerb(v Verb) bool {
	switch v {
	case VerbMigrateStart, VerbMigrateStatus, VerbMigrateApprove, VerbMigrateRollback, VerbMigrateAbandon:
		return true
	}
	return false
}

// commandVerb reads a command's verb from its first word, or its first
// two: "migrate start" is migrate-start, "topic create" topic-create
// (twoWordVerb); the words after it are its arguments.
func commandVerb(fields []string) (Verb, []string) {
	if len(fields) > 1 && fields[0] == "migrate" {
		if v := Verb(fields[0] + "-" + fields[1]); isMigrateVerb(v) {
			return v, fields[2:]
		}
	}
	return twoWordVerb(fields) // command_topic.go
}

// parseMigrateArgs reads what follows the cluster of a migration verb.
func parseMigrateArgs(cmd *Command, args []string) error {
	switch cmd.Verb {
	case VerbMigrateStart:
		return parseOptions(args, []string{"controllers"}, func(_, value string) error {
			if value != "3" && value != "5" {
				return fmt.Errorf("controllers %s: want 3 or 5", quote(value))
			}
			cmd.Controllers, _ = strconv.Atoi(value)
			return nil
		})
	case VerbMigrateApprove:
		if len(args) == 0 {
			return errors.New("missing phase: the one awaiting approval, 1 to 4 (see migrate status)")
		}
		p, err := parsePhase(args[0])
		if err != nil {
			return err
		}
		cmd.Phase, args = p, args[1:]
	case VerbMigrateRollback, VerbMigrateAbandon:
		for _, a := range args {
			if strings.ContainsFunc(a, unicode.IsControl) {
				return errors.New("reason: control characters are not allowed")
			}
		}
		cmd.Reason, args = strings.Join(args, " "), nil
	}
	if len(args) > 0 {
		return fmt.Errorf("unexpected %s", quote(strings.Join(args, " ")))
	}
	return nil
}

// parsePhase reads a phase to approve: one digit, 1 to 4.
func parsePhase(s string) (fleet.MigrationPhase, error) {
	if len(s) != 1 || s[0] < '1' || s[0] > byte('0'+fleet.PhaseFinalize) {
		return 0, fmt.Errorf("phase %s: want 1 to %d (1 controllers, 2 dual-write, 3 brokers-kraft, 4 finalize)", quote(s), int(fleet.PhaseFinalize))
	}
	return fleet.MigrationPhase(s[0] - '0'), nil
}

// migrateArgs writes what follows the cluster of a migration verb,
// canonically.
func migrateArgs(c Command) []string {
	switch c.Verb {
	case VerbMigrateStart:
		if c.Controllers != 0 {
			return []string{"controllers=" + strconv.Itoa(c.Controllers)}
		}
	case VerbMigrateApprove:
		return []string{strconv.Itoa(int(c.Phase))}
	case VerbMigrateRollback, VerbMigrateAbandon:
		if c.Reason != "" {
			return []string{c.Reason}
		}
	}
	return nil
}

// reparseMigrate is the migration command Parse makes of c's canonical
// text. A reason must already be canonical (words separated by single
// spaces), as a pause's: Parse never makes another.
func reparseMigrate(c Command) (Command, error) {
	if c.Reason != strings.Join(strings.Fields(c.Reason), " ") {
		return Command{}, fmt.Errorf("%s: reason must be words separated by single spaces", c.Verb)
	}
	again := Command{Verb: c.Verb, Cluster: c.Cluster}
	if err := parseMigrateArgs(&again, strings.Fields(strings.Join(migrateArgs(c), " "))); err != nil {
		return Command{}, fmt.Errorf("%s: %w", c.Verb, err)
	}
	return again, nil
}
