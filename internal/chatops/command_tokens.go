package chatops

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kfleet/kfleet/internal/fleet"
)

// The tokens every verb shares: cluster ids, operation ids, numbers, and
// how errors quote what a person typed.

// checkCluster accepts the cluster ids kfleet registers: 1 to 63
// characters of a-z, 0-9 and '-', neither first nor last a '-' (a DNS
// label, as internal/fleet requires: an id it refuses can never exist).
func checkCluster(id string) error {
	if fleet.ValidClusterID(id) {
		return nil
	}
	return fmt.Errorf("cluster %s: want 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'", quote(id))
}

func validOperationID(id string) bool {
	if len(id) == 0 || len(id) > maxOperationIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.:/", c) >= 0) {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// quote quotes a user's token for an error, cut short: errors are shown
// back in chat.
func quote(s string) string {
	if utf8.RuneCountInString(s) > maxQuoted {
		r := []rune(s)
		s = string(r[:maxQuoted]) + "…"
	}
	return strconv.Quote(s)
}

func verbList() string {
	names := make([]string, len(verbSpecs))
	for i, s := range verbSpecs {
		names[i] = string(s.verb)
	}
	return strings.Join(names, ", ")
}
