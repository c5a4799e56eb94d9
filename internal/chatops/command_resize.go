package chatops

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kfleet/kfleet/workflows"
)

// The verbs that change a cluster's brokers or move its partitions
// (workflows' add-brokers, remove-broker and rebalance kinds): the grammar
// only. Whether the cluster can lose a broker, or offers the instance
// type, is the operation's own check.
//
//	add-brokers <cluster> <count> [type=T] [volume=GiB] [throttle=RATE]
//	remove-broker <cluster> <broker> [throttle=RATE]
//	rebalance <cluster> [throttle=RATE]

// Bounds of a RATE, in bytes per second.
const (
	// MinThrottleBytesPerSec is the slowest replication throttle: under
	// 1 KiB/s a move never ends (workflows.MoveParams refuses less).
	MinThrottleBytesPerSec = 1 << 10
	// MaxThrottleBytesPerSec is the fastest: 1 TiB/s is beyond any
	// network a broker has, and keeps the arithmetic far from overflow.
	MaxThrottleBytesPerSec = 1 << 40
	// maxRateDigits bounds a RATE's number (MaxThrottleBytesPerSec has 13).
	maxRateDigits = 13
)

// rateUnits are a RATE's units, binary, largest first.
var rateUnits = [...]struct {
	suffix string
	bytes  int64
}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

// ParseRate reads a RATE: bytes per second, a whole number without sign
// or leading zero and with an optional unit KiB, MiB or GiB, optionally
// followed by /s ("10MiB", "512KiB/s", "1048576"), from
// MinThrottleBytesPerSec to MaxThrottleBytesPerSec. Chat's throttle= and
// the CLI's --throttle read it.
func ParseRate(s string) (int64, error) {
	num, unit := strings.TrimSuffix(s, "/s"), int64(1)
	for _, u := range rateUnits {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, unit = n, u.bytes
			break
		}
	}
	if !allDigits(num) || len(num) > maxRateDigits || (len(num) > 1 && num[0] == '0') {
		return 0, fmt.Errorf("%s: want bytes per second, a whole number with an optional unit KiB, MiB or GiB, like 10MiB, 512KiB or 1048576", quote(s))
	}
	n, err := strconv.ParseInt(num, 10, 64)
	switch {
	case err != nil || n > MaxThrottleBytesPerSec/unit:
		return 0, fmt.Errorf("%s: at most %s per second", quote(s), FormatRate(MaxThrottleBytesPerSec))
	case n*unit < MinThrottleBytesPerSec:
		return 0, fmt.Errorf("%s: at least %s per second (slower, a move never ends)", quote(s), FormatRate(MinThrottleBytesPerSec))
	}
	return n * unit, nil
}

// FormatRate writes a rate the way ParseRate reads it, in the largest unit
// that divides it exactly: 10485760 is "10MiB", 1536 "1536".
func FormatRate(n int64) string {
	for _, u := range rateUnits {
		if n > 0 && n%u.bytes == 0 {
			return strconv.FormatInt(n/u.bytes, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// resizeOptions are each resize verb's key=value options, in canonical
// order.
func resizeOptions(v Verb) []string {
	if v == VerbAddBrokers {
		return []string{"type", "volume", "throttle"}
	}
	return []string{"throttle"}
}

// parseResizeArgs reads what follows the cluster of an add-brokers (its
// count), a remove-broker (its broker) or a rebalance, then their options,
// each at most once, in any order.
func parseResizeArgs(cmd *Command, args []string) error {
	switch cmd.Verb {
	case VerbAddBrokers:
		if len(args) == 0 {
			return errors.New("missing count")
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || !allDigits(args[0]) || n < 1 || n > workflows.MaxBrokersAdded {
			return fmt.Errorf("count %s: want a number of brokers from 1 to %d", quote(args[0]), workflows.MaxBrokersAdded)
		}
		cmd.Count, args = n, args[1:]
	case VerbRemoveBroker:
		if len(args) == 0 {
			return errors.New("missing broker")
		}
		b, err := parseBroker(args[0])
		if err != nil {
			return err
		}
		cmd.Brokers, args = []int32{b}, args[1:]
	}
	return parseOptions(args, resizeOptions(cmd.Verb), func(key, value string) error {
		var err error
		switch key {
		case "type":
			cmd.InstanceType, err = parseInstanceType(key, value)
		case "volume":
			cmd.VolumeGiB, err = parseVolume(value)
		case "throttle":
			cmd.ThrottleBytesPerSec, err = ParseRate(value)
			if err != nil {
				err = fmt.Errorf("throttle %w", err)
			}
		}
		return err
	})
}

// resizeArgs writes what follows the cluster of a resize verb,
// canonically.
func resizeArgs(c Command) []string {
	var out []string
	switch c.Verb {
	case VerbAddBrokers:
		out = append(out, strconv.Itoa(c.Count))
	case VerbRemoveBroker:
		for _, b := range c.Brokers {
			out = append(out, strconv.Itoa(int(b)))
		}
	}
	for _, kv := range [][2]string{{"type", c.InstanceType}, {"volume", cond(c.VolumeGiB != 0, strconv.Itoa(int(c.VolumeGiB)))},
		{"throttle", cond(c.ThrottleBytesPerSec != 0, FormatRate(c.ThrottleBytesPerSec))}} {
		if kv[1] != "" {
			out = append(out, kv[0]+"="+kv[1])
		}
	}
	return out
}

// reparseResize is the resize command Parse makes of c's canonical text:
// an error says what of c is malformed, and a command that differs from c
// means c sets fields its verb has not.
func reparseResize(c Command) (Command, error) {
	again := Command{Verb: c.Verb, Cluster: c.Cluster}
	if err := parseResizeArgs(&again, resizeArgs(c)); err != nil {
		return Command{}, fmt.Errorf("%s: %w", c.Verb, err)
	}
	return again, nil
}
