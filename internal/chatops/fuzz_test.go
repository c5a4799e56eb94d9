package chatops_test

import (
	"reflect"
	"strings"
	"testing"
	"unicode"

	"github.com/kfleet/kfleet/internal/chatops"
	"github.com/kfleet/kfleet/workflows"
)

// FuzzParse checks that Parse never panics, that whatever it accepts is a
// valid command that round-trips through its canonical text, and that what
// it refuses comes with a message and a zero Command. Seeds: f.Add below and
// testdata/fuzz/FuzzParse (run by plain go test too).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "help", "list", "status local-a", "restart local-a", "restart local-a brokers=1,2 batch=3",
		"restart local-a batch=64 brokers=0", "upgrade local-b 3.7.1", "expand local-a 2",
		"cleaner-check local-a", "pause local-a change freeze", "resume local-a", "abort local-a op-1",
		"abort local-a cluster/local-a/roll/1", "reboot local-a", "status Local-A", "restart local-a brokers=1,1",
		"restart local-a batch=65", "upgrade local-a 3.7", "upgrade local-a 3.07.1", "upgrade local-a 4.0.0", "expand local-a -1", "pause local-a \x00",
		"status \xff", "restart local-a brokers=+1", "status a-", "pause a \u00ad soft hyphen", "pause a \u00a0nbsp",
		"delete local-a", "delete local-a force", "delete local-a forced", "create c1 brokers=3 zones=us-east-1a,us-east-1b version=3.7.1",
		"create c1 brokers=3 zones=a version=3.7.1 type=m5.xlarge volume=100 zk-type=t3.medium plan=standard", "create c1 brokers=3",
		"create c1 brokers=3 brokers=4 zones=a version=3.7.1", "create c1 brokers=03 zones=a,,b version=3.7.1 volume=0",
		"add-brokers c1 3", "add-brokers c1 50 type=m5.xlarge volume=500 throttle=10MiB", "add-brokers c1 51", "add-brokers c1 3 throttle=1023",
		"add-brokers c1 3 throttle=1536/s", "add-brokers c1 3 volume=16385", "remove-broker c1 4 throttle=512KiB", "remove-broker c1 1 2",
		"remove-broker c1", "rebalance c1", "rebalance c1 throttle=1GiB", "rebalance c1 throttle=1024GiB", "rebalance c1 throttle=010MiB",
		"rebalance c1 throttle=9223372036854775807", "rebalance c1 throttle=1099511627776", "rebalance c1 throttle=1KiB/s/s",
		"topic create c1 wabash-1 wabash-1.a", "topic create c1 wabash-1 wabash-1.a partitions=12 rf=3 retention=6h", "topic-create c1 wabash-1 wabash-1.a",
		"topic delete c1 wabash-1 wabash-1.a", "topic partitions c1 wabash-1 wabash-1.a 24", "topic retention c1 wabash-1 wabash-1.a 36h",
		"topic retention c1 wabash-1 wabash-1.a 1.5ms", "group delete c1 wabash-1 wabash-1.g", "group delete c1 wabash-1 ohio-2.g",
		"topic create c1 wabash-1 wabash-1.a partitions=10001", "topic", "topic rename c1", "group-delete c1 wabash-1 wabash-1.\u00ad",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		cmd, err := chatops.Parse(text)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("Parse(%q): empty error", text)
			}
			if !reflect.DeepEqual(cmd, chatops.Command{}) {
				t.Fatalf("Parse(%q) = %#v with error %v: want a zero Command", text, cmd, err)
			}
			return
		}
		if err := cmd.Validate(); err != nil {
			t.Fatalf("Parse(%q) = %#v, which Validate refuses: %v", text, cmd, err)
		}
		canon := cmd.String()
		again, err := chatops.Parse(canon)
		if err != nil {
			t.Fatalf("Parse(%q) = %#v; its canonical form %q does not parse: %v", text, cmd, canon, err)
		}
		if !equal(cmd, again) {
			t.Fatalf("Parse(%q) = %#v; Parse(%q) = %#v", text, cmd, canon, again)
		}
		if again.String() != canon {
			t.Fatalf("canonical form not stable: %q then %q", canon, again.String())
		}
		// The canonical form is the input's words, normalized: a verb
		// and a cluster always come first, as typed.
		// (The admin lane's verbs may be written as two words, "topic
		// create".)
		words := strings.Fields(text)
		if len(words) > 1 && words[0]+"-"+words[1] == string(cmd.Verb) {
			words = append([]string{string(cmd.Verb)}, words[2:]...)
		}
		if len(words) > 0 && words[0] != string(cmd.Verb) {
			t.Fatalf("Parse(%q): verb %q is not the first word", text, cmd.Verb)
		}
		if cmd.Verb.NeedsCluster() && words[1] != cmd.Cluster {
			t.Fatalf("Parse(%q): cluster %q is not the second word", text, cmd.Cluster)
		}
		if strings.ContainsFunc(canon, func(r rune) bool { return unicode.IsControl(r) }) {
			t.Fatalf("Parse(%q): canonical form %q holds a control character", text, canon)
		}
		if cmd.Verb == chatops.VerbRestart && (cmd.MaxBatch < 0 || cmd.MaxBatch > chatops.MaxBatch) {
			t.Fatalf("Parse(%q): batch %d out of range", text, cmd.MaxBatch)
		}
		for _, b := range cmd.Brokers {
			if b < 0 {
				t.Fatalf("Parse(%q): negative broker %d", text, b)
			}
		}
		if r := cmd.ThrottleBytesPerSec; r != 0 && (r < chatops.MinThrottleBytesPerSec || r > chatops.MaxThrottleBytesPerSec) {
			t.Fatalf("Parse(%q): throttle %d out of range", text, r)
		}
		if cmd.Verb == chatops.VerbAddBrokers && (cmd.Count < 1 || cmd.Count > workflows.MaxBrokersAdded) {
			t.Fatalf("Parse(%q): count %d out of range", text, cmd.Count)
		}
	})
}

// equal compares every field, a nil Brokers apart from an empty one: a
// field added to Command is compared without being listed here.
func equal(a, b chatops.Command) bool { return reflect.DeepEqual(a, b) }
