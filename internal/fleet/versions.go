package fleet

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// KafkaVersion is a Kafka release, e.g. 3.7.1. Build one with
// ParseKafkaVersion; its String is the same text.
type KafkaVersion struct{ Major, Minor, Patch int }

// ProtocolVersion is an inter.broker.protocol.version (IBP), e.g. 3.6 or
// 3.6-IV2. A version written without an IV means its release's latest
// protocol: its IV is LatestIV, which sorts after every numbered IV. Build
// one with ParseProtocolVersion or KafkaVersion.Protocol.
type ProtocolVersion struct{ Major, Minor, IV int }

// LatestIV is the IV of a protocol version written without one ("3.6"):
// the release's latest, after every numbered IV ("3.6-IV2").
const LatestIV = math.MaxInt32

// maxVersionDigits bounds each number of a version: Kafka's have one or two
// digits, and four keep every number far from overflow.
const maxVersionDigits = 4

// ParseKafkaVersion parses a Kafka release: major.minor.patch, each a
// number of 1 to 4 digits without a leading zero, e.g. 3.7.1. It checks the
// grammar only; ZooKeeperMode says whether a ZooKeeper cluster can run it.
func ParseKafkaVersion(s string) (KafkaVersion, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return KafkaVersion{}, versionError("Kafka version", s, "want major.minor.patch, like 3.7.1")
	}
	var n [3]int
	for i, p := range parts {
		var err error
		if n[i], err = versionNumber(p); err != nil {
			return KafkaVersion{}, versionError("Kafka version", s, "%s; want major.minor.patch, like 3.7.1", err)
		}
	}
	return KafkaVersion{Major: n[0], Minor: n[1], Patch: n[2]}, nil
}

// ZooKeeperMode refuses a release that cannot run in ZooKeeper mode: Kafka
// 4.0 removed it, so a ZooKeeper cluster must migrate to KRaft first.
func (v KafkaVersion) ZooKeeperMode() error {
	if v.Major >= 4 {
		return fmt.Errorf("version %s: Kafka 4 and later have no ZooKeeper mode; migrate the cluster to KRaft first, or pick a 3.x release", v)
	}
	return nil
}

// Protocol is the newest inter.broker.protocol.version v speaks: its
// major.minor, latest IV (3.7.1 speaks 3.7).
func (v KafkaVersion) Protocol() ProtocolVersion {
	return ProtocolVersion{Major: v.Major, Minor: v.Minor, IV: LatestIV}
}

// Speaks reports whether brokers of release v can run protocol p: p is not
// newer than v's own (3.7.1 speaks 3.6 and 3.7-IV1, not 3.8).
func (v KafkaVersion) Speaks(p ProtocolVersion) bool { return !p.After(v.Protocol()) }

// Compare returns -1, 0 or +1 as v is older than, the same as or newer
// than o.
func (v KafkaVersion) Compare(o KafkaVersion) int {
	return cmp.Or(cmp.Compare(v.Major, o.Major), cmp.Compare(v.Minor, o.Minor), cmp.Compare(v.Patch, o.Patch))
}

// After reports whether v is a newer release than o.
func (v KafkaVersion) After(o KafkaVersion) bool { return v.Compare(o) > 0 }

func (v KafkaVersion) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// MarshalText writes v as its String, so payloads and JSON carry "3.7.1".
func (v KafkaVersion) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// UnmarshalText parses text with ParseKafkaVersion.
func (v *KafkaVersion) UnmarshalText(text []byte) error {
	p, err := ParseKafkaVersion(string(text))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// ParseProtocolVersion parses an inter.broker.protocol.version: major.minor,
// optionally followed by -IV and the IV number (3.6, 3.6-IV2), each number of
// 1 to 4 digits without a leading zero.
func ParseProtocolVersion(s string) (ProtocolVersion, error) {
	const what = "inter.broker.protocol.version"
	const want = "major.minor or major.minor-IVn, like 3.6 or 3.6-IV2"
	head, iv, hasIV := strings.Cut(s, "-")
	parts := strings.Split(head, ".")
	if len(parts) != 2 {
		return ProtocolVersion{}, versionError(what, s, "want %s", want)
	}
	p := ProtocolVersion{IV: LatestIV}
	var err error
	if p.Major, err = versionNumber(parts[0]); err != nil {
		return ProtocolVersion{}, versionError(what, s, "%s; want %s", err, want)
	}
	if p.Minor, err = versionNumber(parts[1]); err != nil {
		return ProtocolVersion{}, versionError(what, s, "%s; want %s", err, want)
	}
	if hasIV {
		n, ok := strings.CutPrefix(iv, "IV")
		if !ok {
			return ProtocolVersion{}, versionError(what, s, "%s after '-'; want %s", quoteVersion(iv), want)
		}
		if p.IV, err = versionNumber(n); err != nil {
			return ProtocolVersion{}, versionError(what, s, "IV %s; want %s", err, want)
		}
	}
	return p, nil
}

// HasIV reports whether p names an IV (3.6-IV2) rather than its release's
// latest (3.6).
func (p ProtocolVersion) HasIV() bool { return p.IV != LatestIV }

// Compare returns -1, 0 or +1 as p is older than, the same as or newer
// than o; a version without an IV is newer than every IV of its release.
func (p ProtocolVersion) Compare(o ProtocolVersion) int {
	return cmp.Or(cmp.Compare(p.Major, o.Major), cmp.Compare(p.Minor, o.Minor), cmp.Compare(p.IV, o.IV))
}

// After reports whether p is newer than o. Going from p to o when p is
// after o is a downgrade, which a bumped protocol cannot take.
func (p ProtocolVersion) After(o ProtocolVersion) bool { return p.Compare(o) > 0 }

func (p ProtocolVersion) String() string {
	if !p.HasIV() {
		return fmt.Sprintf("%d.%d", p.Major, p.Minor)
	}
	return fmt.Sprintf("%d.%d-IV%d", p.Major, p.Minor, p.IV)
}

// MarshalText writes p as its String, so payloads and JSON carry "3.6-IV2".
func (p ProtocolVersion) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText parses text with ParseProtocolVersion.
func (p *ProtocolVersion) UnmarshalText(text []byte) error {
	v, err := ParseProtocolVersion(string(text))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// versionNumber parses one number of a version: 1 to maxVersionDigits
// ASCII digits, no sign and no leading zero (3.07.1 is no Kafka version).
func versionNumber(s string) (int, error) {
	switch {
	case s == "":
		return 0, errors.New("empty number")
	case strings.Trim(s, "0123456789") != "":
		return 0, fmt.Errorf("%s is not a number", quoteVersion(s))
	case len(s) > maxVersionDigits:
		return 0, fmt.Errorf("%s has more than %d digits", quoteVersion(s), maxVersionDigits)
	case len(s) > 1 && s[0] == '0':
		return 0, fmt.Errorf("%s has a leading zero", quoteVersion(s))
	}
	n, err := strconv.Atoi(s)
	if err != nil { // unreachable: 1 to 4 ASCII digits
		return 0, fmt.Errorf("%s: %w", quoteVersion(s), err)
	}
	return n, nil
}

// versionError says what was given (quoted, cut short: errors reach chat
// and the CLI) and what is wanted.
func versionError(what, given, format string, args ...any) error {
	return fmt.Errorf("%s %s: %s", what, quoteVersion(given), fmt.Sprintf(format, args...))
}

// maxQuotedVersion bounds how much of a bad version an error repeats.
const maxQuotedVersion = 32

func quoteVersion(s string) string {
	if utf8.RuneCountInString(s) > maxQuotedVersion {
		s = string([]rune(s)[:maxQuotedVersion]) + "…"
	}
	return strconv.Quote(s)
}
