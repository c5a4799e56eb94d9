package chatops_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/internal/chatops"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

func TestParse(t *testing.T) {
	tests := []struct {
		text string
		want chatops.Command
	}{
		{"", chatops.Command{Verb: chatops.VerbHelp}},
		{"   ", chatops.Command{Verb: chatops.VerbHelp}},
		{"help", chatops.Command{Verb: chatops.VerbHelp}},
		{"list", chatops.Command{Verb: chatops.VerbList}},
		{"status local-a", chatops.Command{Verb: chatops.VerbStatus, Cluster: "local-a"}},
		{"  status \t local-a\n", chatops.Command{Verb: chatops.VerbStatus, Cluster: "local-a"}},
		{"restart local-a", chatops.Command{Verb: chatops.VerbRestart, Cluster: "local-a"}},
		{"restart local-a brokers=1,2", chatops.Command{Verb: chatops.VerbRestart, Cluster: "local-a", Brokers: []int32{1, 2}}},
		{"restart local-a batch=3 brokers=0", chatops.Command{Verb: chatops.VerbRestart, Cluster: "local-a", Brokers: []int32{0}, MaxBatch: 3}},
		{"restart local-a batch=64", chatops.Command{Verb: chatops.VerbRestart, Cluster: "local-a", MaxBatch: 64}},
		{"restart a brokers=2147483647", chatops.Command{Verb: chatops.VerbRestart, Cluster: "a", Brokers: []int32{2147483647}}},
		{"upgrade local-b 3.7.1", chatops.Command{Verb: chatops.VerbUpgrade, Cluster: "local-b", Version: "3.7.1"}},
		// The grammar only: whether a ZooKeeper cluster may run 4.x is the upgrade's check.
		{"upgrade local-b 4.0.0", chatops.Command{Verb: chatops.VerbUpgrade, Cluster: "local-b", Version: "4.0.0"}},
		// A KRaft upgrade's target metadata.version; a release names its latest level.
		{"upgrade local-k 4.0.0 metadata=4.0-IV3", chatops.Command{Verb: chatops.VerbUpgrade, Cluster: "local-k", Version: "4.0.0", MetadataVersion: "4.0-IV3"}},
		{"upgrade local-k 4.0.0 metadata=3.9", chatops.Command{Verb: chatops.VerbUpgrade, Cluster: "local-k", Version: "4.0.0", MetadataVersion: "3.9-IV0"}},
		{"expand local-a 2", chatops.Command{Verb: chatops.VerbExpand, Cluster: "local-a", Brokers: []int32{2}}},
		{"cleaner-check local-a", chatops.Command{Verb: chatops.VerbCleanerCheck, Cluster: "local-a"}},
		{"pause local-a", chatops.Command{Verb: chatops.VerbPause, Cluster: "local-a"}},
		{"pause local-a change  freeze, INC-42", chatops.Command{Verb: chatops.VerbPause, Cluster: "local-a", Reason: "change freeze, INC-42"}},
		{"resume local-a", chatops.Command{Verb: chatops.VerbResume, Cluster: "local-a"}},
		{"abort local-a", chatops.Command{Verb: chatops.VerbAbort, Cluster: "local-a"}},
		{"abort local-a op-17", chatops.Command{Verb: chatops.VerbAbort, Cluster: "local-a", OperationID: "op-17"}},
		{"status " + strings.Repeat("a", 63), chatops.Command{Verb: chatops.VerbStatus, Cluster: strings.Repeat("a", 63)}},
		{"delete orders", chatops.Command{Verb: chatops.VerbDelete, Cluster: "orders"}},
		{"delete orders force", chatops.Command{Verb: chatops.VerbDelete, Cluster: "orders", Force: true}},
		{"create orders zones=us-east-1a,us-east-1b version=3.7.1 brokers=3", chatops.Command{Verb: chatops.VerbCreate, Cluster: "orders",
			Plan: fleet.ClusterPlan{ID: "orders", Brokers: 3, AvailabilityZones: []string{"us-east-1a", "us-east-1b"}, KafkaVersion: "3.7.1"}}},
		{"create orders brokers=6 zones=us-east-1a version=3.6.2 plan=memory volume=800 type=r5.2xlarge zk-type=t3.large",
			chatops.Command{Verb: chatops.VerbCreate, Cluster: "orders", Plan: fleet.ClusterPlan{ID: "orders", Brokers: 6,
				AvailabilityZones: []string{"us-east-1a"}, KafkaVersion: "3.6.2", Plan: "memory", VolumeGiB: 800, InstanceType: "r5.2xlarge",
				ZooKeeperInstanceType: "t3.large"}}},
		// The grammar only: two brokers are refused by the provisioning, with its reason.
		{"create orders brokers=2 zones=us-east-1a version=3.7.1", chatops.Command{Verb: chatops.VerbCreate, Cluster: "orders",
			Plan: fleet.ClusterPlan{ID: "orders", Brokers: 2, AvailabilityZones: []string{"us-east-1a"}, KafkaVersion: "3.7.1"}}},
		{"add-brokers orders 3", chatops.Command{Verb: chatops.VerbAddBrokers, Cluster: "orders", Count: 3}},
		{"add-brokers orders 50 throttle=10MiB/s volume=800 type=r5.2xlarge", chatops.Command{Verb: chatops.VerbAddBrokers, Cluster: "orders",
			Count: 50, InstanceType: "r5.2xlarge", VolumeGiB: 800, ThrottleBytesPerSec: 10 << 20}},
		{"add-brokers orders 1 throttle=1024", chatops.Command{Verb: chatops.VerbAddBrokers, Cluster: "orders", Count: 1, ThrottleBytesPerSec: 1024}},
		{"remove-broker orders 4", chatops.Command{Verb: chatops.VerbRemoveBroker, Cluster: "orders", Brokers: []int32{4}}},
		{"remove-broker orders 0 throttle=512KiB", chatops.Command{Verb: chatops.VerbRemoveBroker, Cluster: "orders", Brokers: []int32{0}, ThrottleBytesPerSec: 512 << 10}},
		{"rebalance orders", chatops.Command{Verb: chatops.VerbRebalance, Cluster: "orders"}},
		{"rebalance orders throttle=1536", chatops.Command{Verb: chatops.VerbRebalance, Cluster: "orders", ThrottleBytesPerSec: 1536}},
		{"rebalance orders throttle=1GiB", chatops.Command{Verb: chatops.VerbRebalance, Cluster: "orders", ThrottleBytesPerSec: 1 << 30}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := chatops.Parse(tt.text)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			require.NoError(t, got.Validate())
			again, err := chatops.Parse(got.String())
			require.NoError(t, err, "canonical form %q", got.String())
			assert.Equal(t, got, again)
		})
	}
}

func TestParseRefuses(t *testing.T) {
	tests := []struct {
		text, want string
	}{
		{"reboot local-a", `unknown verb "reboot"`},
		{"Status local-a", `unknown verb "Status"`},
		{"status", "missing cluster"},
		{"status local-a local-b", `unexpected "local-b"`},
		{"list local-a", `unexpected "local-a"`},
		{"help me", `unexpected "me"`},
		{"status Local-A", `cluster "Local-A"`},
		{"status local_a", `cluster "local_a"`},
		{"status -a", `cluster "-a"`},
		{"status a-", `cluster "a-"`},
		{"status " + strings.Repeat("a", 64), "want 1-63 characters"},
		{"restart local-a brokers=", "brokers= is empty"},
		{"restart local-a brokers=1,,2", `broker ""`},
		{"restart local-a brokers=-1", `broker "-1"`},
		{"restart local-a brokers=+1", `broker "+1"`},
		{"restart local-a brokers=x", `broker "x"`},
		{"restart local-a brokers=2147483648", `broker "2147483648"`},
		{"restart local-a brokers=1,1", "broker 1 listed twice"},
		{"restart local-a brokers=1 brokers=2", "brokers= given twice"},
		{"restart local-a batch=0", `batch "0": want a number from 1 to 64`},
		{"restart local-a batch=65", `batch "65"`},
		{"restart local-a batch=-1", `batch "-1"`},
		{"restart local-a batch=+2", `batch "+2"`},
		{"restart local-a batch=", `batch ""`},
		{"restart local-a fast=yes", `unknown option "fast"`},
		{"restart local-a now", `unexpected "now"`},
		{"upgrade local-a", "missing version"},
		{"upgrade local-a 3.7", `version "3.7"`},
		{"upgrade local-a v3.7.1", `version "v3.7.1"`},
		{"upgrade local-a 3.7.1.0", `version "3.7.1.0"`},
		{"upgrade local-a 3.07.1", `version "3.07.1": "07" has a leading zero; want major.minor.patch, like 3.7.1`},
		{"upgrade local-a 3.7.1-rc1", `version "3.7.1-rc1"`},
		{"upgrade local-a 3.7.1 now", `unexpected "now"`},
		{"upgrade local-k 4.0.0 metadata=4.0-IV9", `metadata.version "4.0-IV9"`},
		{"upgrade local-k 4.0.0 metadata=4.0-IV3 now", `unexpected "now"`},
		{"expand local-a", "missing broker"},
		{"expand local-a two", `broker "two"`},
		{"expand local-a 1 2", `unexpected "2"`},
		{"resume local-a please", `unexpected "please"`},
		{"abort local-a op-1 op-2", `unexpected "op-2"`},
		{"abort local-a op;1", `operation id "op;1"`},
		{"pause local-a bad\x00reason", "control characters"},
		{"add-brokers orders", "missing count"},
		{"add-brokers orders 0", `count "0": want a number of brokers from 1 to 50`},
		{"add-brokers orders 51", `count "51"`},
		{"add-brokers orders +3", `count "+3"`},
		{"add-brokers orders three", `count "three"`},
		{"add-brokers orders 3 type=M5.xlarge", `type "M5.xlarge": want an instance type like m5.xlarge`},
		{"add-brokers orders 3 volume=0", `volume "0": want GiB, 1 to 16384`},
		{"add-brokers orders 3 volume=16385", `volume "16385"`},
		{"add-brokers orders 3 zones=us-east-1a", `unexpected "zones=us-east-1a" (options are type, volume, throttle, as key=value)`},
		{"add-brokers orders 3 throttle=1MiB throttle=2MiB", "throttle= given twice"},
		{"add-brokers orders 3 4", `unexpected "4"`},
		{"remove-broker orders", "missing broker"},
		{"remove-broker orders -1", `broker "-1"`},
		{"remove-broker orders 1 2", `unexpected "2"`},
		{"remove-broker orders 1 type=m5.xlarge", `unexpected "type=m5.xlarge" (options are throttle, as key=value)`},
		{"rebalance orders now", `unexpected "now"`},
		{"rebalance orders throttle=", `throttle "": want bytes per second`},
		{"rebalance orders throttle=10MB", `throttle "10MB": want bytes per second`},
		{"rebalance orders throttle=10mib", `throttle "10mib"`},
		{"rebalance orders throttle=1.5MiB", `throttle "1.5MiB"`},
		{"rebalance orders throttle=-1MiB", `throttle "-1MiB"`},
		{"rebalance orders throttle=010MiB", `throttle "010MiB"`},
		{"rebalance orders throttle=1023", `throttle "1023": at least 1KiB per second`},
		{"rebalance orders throttle=0", `throttle "0": at least 1KiB per second`},
		{"rebalance orders throttle=1025GiB", `throttle "1025GiB": at most 1024GiB per second`},
		{"rebalance orders throttle=99999999999999", `throttle "99999999999999": want bytes per second`},
		{"status \xff", "not valid UTF-8"},
		{strings.Repeat("x", chatops.MaxCommandLen+1), "too long"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := chatops.Parse(tt.text)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Equal(t, chatops.Command{}, got)
		})
	}
}

func TestParseErrorsShowUsage(t *testing.T) {
	_, err := chatops.Parse("upgrade local-a")
	require.Error(t, err)
	assert.Equal(t, "upgrade: missing version (usage: upgrade <cluster> <version>)", err.Error())
}

func TestValidateRefusesForeignFields(t *testing.T) {
	tests := []chatops.Command{
		{Verb: "reboot", Cluster: "local-a"},
		{Verb: chatops.VerbList, Cluster: "local-a"},
		{Verb: chatops.VerbStatus, Cluster: "local-a", Version: "3.7.1"},
		{Verb: chatops.VerbRestart, Cluster: "local-a", Brokers: []int32{}},
		{Verb: chatops.VerbRestart, Cluster: "local-a", Brokers: []int32{1, 1}},
		{Verb: chatops.VerbRestart, Cluster: "local-a", MaxBatch: 65},
		{Verb: chatops.VerbExpand, Cluster: "local-a"},
		{Verb: chatops.VerbExpand, Cluster: "local-a", Brokers: []int32{-1}},
		{Verb: chatops.VerbPause, Cluster: "local-a", Reason: " two  spaces"},
		{Verb: chatops.VerbUpgrade, Cluster: "local-a", Version: "3"},
		{Verb: chatops.VerbUpgrade, Cluster: "local-a", Version: "3.07.1"},
		{Verb: chatops.VerbStatus, Cluster: "local-a", ThrottleBytesPerSec: 1 << 20},
		{Verb: chatops.VerbAddBrokers, Cluster: "local-a"},
		{Verb: chatops.VerbAddBrokers, Cluster: "local-a", Count: 3, Brokers: []int32{1}},
		{Verb: chatops.VerbAddBrokers, Cluster: "local-a", Count: 3, InstanceType: "m5 xlarge"},
		{Verb: chatops.VerbAddBrokers, Cluster: "local-a", Count: 3, VolumeGiB: -1},
		{Verb: chatops.VerbAddBrokers, Cluster: "local-a", Count: 3, ThrottleBytesPerSec: 1023},
		{Verb: chatops.VerbAddBrokers, Cluster: "local-a", Count: 3, ThrottleBytesPerSec: -1 << 30},
		{Verb: chatops.VerbRemoveBroker, Cluster: "local-a"},
		{Verb: chatops.VerbRemoveBroker, Cluster: "local-a", Brokers: []int32{1, 2}},
		{Verb: chatops.VerbRemoveBroker, Cluster: "local-a", Brokers: []int32{1}, Count: 1},
		{Verb: chatops.VerbRebalance, Cluster: "local-a", Brokers: []int32{}},
		{Verb: chatops.VerbRebalance, Cluster: "local-a", InstanceType: "m5.xlarge"},
		{Verb: chatops.VerbRebalance, Cluster: "local-a", ThrottleBytesPerSec: 1<<40 + 1},
	}
	for _, c := range tests {
		assert.Error(t, c.Validate(), "%#v", c)
	}
}

func TestVerbs(t *testing.T) {
	var destructive []chatops.Verb
	for _, v := range chatops.Verbs() {
		assert.True(t, v.Known())
		assert.NotEmpty(t, v.Usage())
		if v.Destructive() {
			destructive = append(destructive, v)
		}
	}
	assert.ElementsMatch(t, []chatops.Verb{chatops.VerbRestart, chatops.VerbUpgrade, chatops.VerbExpand, chatops.VerbRemoveBroker, chatops.VerbReplaceController, chatops.VerbAbort,
		chatops.VerbDelete, chatops.VerbTenantDelete, chatops.VerbTopicDelete}, destructive)
	assert.False(t, chatops.Verb("reboot").Known())
}

// Every operation kind people ask for by a verb can be asked in chat, and
// chat's verbs that start operations are kinds' verbs: a kind added
// without its chat grammar fails here.
func TestEveryOperationVerbIsAChatVerb(t *testing.T) {
	for _, k := range workflows.Kinds() {
		if k.Verb() == "" && len(k.ActionVerbs()) == 0 {
			continue // only kfleet asks for it (a recovery, a rotated-out user's removal)
		}
		if k.Name() == workflows.OpMigrationPhase {
			continue // only the migration asks for a phase; people use migrate approve/rollback (command_migrate.go)
		}
		if k.Verb() != "" {
			v := chatops.Verb(k.Verb())
			assert.True(t, v.Known(), "kind %s: verb %q has no chat grammar", k.Name(), k.Verb())
			assert.Equal(t, k.Destructive(), v.Destructive(), "kind %s: chat asks for approval exactly when the kind says", k.Name())
		}
		for _, av := range k.ActionVerbs() {
			v := chatops.Verb(av.Verb)
			assert.True(t, v.Known(), "kind %s: action %s's verb %q has no chat grammar", k.Name(), av.Action, av.Verb)
			assert.Equal(t, av.Destructive, v.Destructive(), "kind %s: chat asks for approval of %s exactly when the kind says", k.Name(), av.Verb)
		}
	}
	for _, v := range []chatops.Verb{chatops.VerbRestart, chatops.VerbUpgrade, chatops.VerbExpand, chatops.VerbCleanerCheck, chatops.VerbDelete,
		chatops.VerbAddBrokers, chatops.VerbRemoveBroker, chatops.VerbRebalance, chatops.VerbReplaceController,
		chatops.VerbTenantCreate, chatops.VerbTenantRotate, chatops.VerbTenantChangePlan, chatops.VerbTenantDelete,
		chatops.VerbTopicCreate, chatops.VerbTopicDelete, chatops.VerbTopicPartitions, chatops.VerbTopicRetention, chatops.VerbGroupDelete} {
		_, err := workflows.KindOfVerb(string(v))
		assert.NoError(t, err, "chat verb %s starts no registered kind", v)
	}
}

func TestReplaceControllerGrammar(t *testing.T) {
	cases := []struct {
		text, want, err string
	}{
		{"replace-controller orders 3001", "replace-controller orders 3001", ""},
		{"replace-controller  orders   0", "replace-controller orders 0", ""},
		{"replace-controller orders", "", "missing controller node id"},
		{"replace-controller orders -1", "", "non-negative integer controller node id"},
		{"replace-controller orders 3001 3002", "", "unexpected"},
		{"replace-controller orders x", "", "non-negative integer"},
	}
	for _, c := range cases {
		t.Run(c.text, func(t *testing.T) {
			cmd, err := chatops.Parse(c.text)
			if c.err != "" {
				assert.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, cmd.String())
			assert.NoError(t, cmd.Validate())
			assert.True(t, cmd.Verb.Destructive(), "a controller's host replacement needs approval in chat")
		})
	}
	bad := chatops.Command{Verb: chatops.VerbReplaceController, Cluster: "orders", Node: 3001, Force: true}
	assert.ErrorContains(t, bad.Validate(), "fields of another verb")
}

func TestCreateKRaftGrammar(t *testing.T) {
	cmd, err := chatops.Parse("create korders brokers=3 zones=us-east-1a,us-east-1b,us-east-1c version=4.0.0 metadata=4.0-IV3 controllers=5")
	require.NoError(t, err)
	require.NotNil(t, cmd.Plan.KRaft)
	assert.Equal(t, 5, cmd.Plan.KRaft.Controllers)
	assert.Equal(t, "4.0-IV3", cmd.Plan.KRaft.MetadataVersion)
	assert.Equal(t, "create korders brokers=3 zones=us-east-1a,us-east-1b,us-east-1c version=4.0.0 controllers=5 metadata=4.0-IV3", cmd.String())
	require.NoError(t, cmd.Validate())
	zk, err := chatops.Parse("create orders brokers=3 zones=us-east-1a version=3.7.1")
	require.NoError(t, err)
	assert.Nil(t, zk.Plan.KRaft, "no controllers=: a ZooKeeper cluster")
	_, err = chatops.Parse("create korders brokers=3 zones=us-east-1a version=4.0.0 metadata=latest")
	assert.ErrorContains(t, err, "want a metadata.version like 4.0-IV3")
	_, err = chatops.Parse("create korders brokers=3 zones=us-east-1a version=4.0.0 controllers=three")
	assert.ErrorContains(t, err, "want a number of KRaft controllers")
}
