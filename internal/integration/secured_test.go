package integration_test

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/workflowservice/v1"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/logging"
	"github.com/kfleet/kfleet/internal/secrets"
	"github.com/kfleet/kfleet/workflows"
)

// TestIntegrationSecuredCluster runs every operation kfleet has on a
// cluster that requires SASL/SCRAM and enforces ACLs (make run's local-s),
// through its entity: kfleet authenticates as the admin principal whose
// credentials only the stack's secret source holds. A roll, an upgrade, a
// volume expansion, a dead cleaner's restart, a crashed broker's recovery
// and a leaking heap's restart each succeed and the fleet's audit finds
// no unsafe moment. Then the password is looked for everywhere it must
// not be: every workflow's history, search attributes and memo, the
// stack's whole log at debug level, and the chat.
func TestIntegrationSecuredCluster(t *testing.T) {
	t.Parallel() // mostly waiting: beside the other long tests
	const id = devstack.SecuredClusterID
	logs := &lockedBuffer{}
	cluster := devstack.SecuredCluster()
	cluster.Volume = localfleet.VolumeConfig{Modifying: 300 * time.Millisecond, Optimizing: time.Second}
	stack := startStackWith(t, fastFleet(cluster), func(o *devstack.StackOptions) {
		o.Health = selfHealingPolicy
		o.NotifyOut = &bytes.Buffer{} // the chat, read below
		o.Log = logging.New(logs, false, zerolog.DebugLevel)
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stack log (tail):\n%s", logs.tail(20_000))
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	spec := stack.Specs[id]
	require.Equal(t, devstack.AdminSecretName(id), spec.Security.SASL.CredentialsSecret, "the spec names the secret")
	creds, err := secrets.GetCredentials(ctx, stack.Secrets, spec.Security.SASL.CredentialsSecret)
	require.NoError(t, err)
	password := creds.Password
	require.Len(t, password, 26, "made at stack start")
	watching(ctx, t, stack, id, 3)
	began := time.Now()
	step := func(what string, op workflows.Operation) {
		t.Helper()
		require.Equal(t, workflows.StatusSucceeded, op.Status, "%s: %s", what, op.Error)
		t.Logf("%-28s %-40s %s (at %s)", what, op.Outcome, op.FinishedAt.Sub(op.StartedAt).Round(10*time.Millisecond), time.Since(began).Round(100*time.Millisecond))
	}

	// An expansion in the urgent lane beside a roll in the maintenance one.
	expansion, err := entity.Request(ctx, stack.Client, id, expandReq("integration-test", 2))
	require.NoError(t, err)
	roll, err := entity.Request(ctx, stack.Client, id, restartReq("integration-test"))
	require.NoError(t, err)
	step("rolling restart", follow(ctx, t, stack, id, roll.ID))
	step("volume expansion", follow(ctx, t, stack, id, expansion.ID))
	vol, err := stack.Fleet.Volume(id, 2)
	require.NoError(t, err)
	assert.Equal(t, int64(vol.SizeGiB)<<30, vol.FilesystemBytes, "the filesystem was grown to the volume")

	upgrade, err := entity.Request(ctx, stack.Client, id, upgradeReq("integration-test", "3.7.1", "3.6"))
	require.NoError(t, err)
	step("upgrade", follow(ctx, t, stack, id, upgrade.ID))
	st, err := stack.Fleet.Status(id)
	require.NoError(t, err)
	for _, b := range st.Brokers {
		assert.Equal(t, "3.7.1", b.Version, "broker %d", b.ID)
		assert.Equal(t, "3.7", b.InterBrokerProtocolVersion, "broker %d", b.ID)
	}

	require.NoError(t, stack.Fleet.InjectFault(ctx, id, 1, localfleet.Fault{Kind: localfleet.FaultKillCleaner}, "integration-test"))
	step("dead cleaner's restart", finished(ctx, t, stack, id, workflows.OpCleanerHealth, time.Minute))

	require.NoError(t, stack.Fleet.Crash(ctx, id, 2, "integration-test"))
	step("crashed broker's recovery", finished(ctx, t, stack, id, workflows.OpRecovery, time.Minute))

	// 10% of the heap a minute: restarted through a gated roll long
	// before the OutOfMemoryError.
	require.NoError(t, stack.Fleet.InjectFault(ctx, id, 3, localfleet.Fault{Kind: localfleet.FaultHeapLeak, PerMinute: 6 << 30 / 10}, "integration-test"))
	heap := waitStatus(ctx, t, stack, id, time.Minute, "the leaking broker is restarted", func(st workflows.ClusterStatus) bool {
		return slices.ContainsFunc(st.History, heapRestart)
	})
	require.NoError(t, stack.Fleet.InjectFault(ctx, id, 3, localfleet.Fault{Kind: localfleet.FaultClear}, "integration-test"))
	op := heap.History[slices.IndexFunc(heap.History, heapRestart)]
	assert.Equal(t, []int32{3}, op.Brokers)
	step("leaking heap's restart", op)
	var crashed []int32
	for _, e := range stack.Fleet.Audit(id) {
		if e.Kind == localfleet.EventCrash {
			crashed = append(crashed, e.Broker)
		}
	}
	assert.Equal(t, []int32{2}, crashed, "nothing crashed but the broker the test crashed: the heap was restarted in time")
	noViolations(t, stack, id)

	// Where the password must never be.
	dump, searched := workflowDump(ctx, t, stack)
	assert.Contains(t, dump, spec.Security.SASL.CredentialsSecret, "the dump reads payloads: the spec's secret name is in it")
	for _, op := range heap.History {
		assert.Contains(t, searched, op.WorkflowID, "every operation's workflow was searched")
	}
	assert.NotContains(t, dump, password, "no history, search attribute or memo holds the password")
	assert.Contains(t, logs.String(), `"cluster":"local-s"`, "the log saw the cluster's operations")
	assert.NotContains(t, logs.String(), password, "the stack's log never holds the password")
	chat := strings.Join(stack.Notifications.Messages(), "\n")
	assert.Contains(t, chat, "Broker 2 recovered")
	assert.NotContains(t, chat, password)
}

// heapRestart is the roll the health loop asks for a leaking heap.
func heapRestart(op workflows.Operation) bool {
	return op.Kind == workflows.OpRollingRestart && op.RequestedBy == "kfleet-health"
}

// follow waits for an operation the test asked for to end, and returns it.
func follow(ctx context.Context, t *testing.T, stack *devstack.Stack, cluster, opID string) workflows.Operation {
	t.Helper()
	_, op, err := entity.Follow[json.RawMessage](ctx, stack.Client, cluster, opID, 100*time.Millisecond, func(entity.Progress) {})
	require.NoError(t, err, "operation %s", opID)
	return op
}

// workflowDump renders every workflow of the namespace (each run's full
// history, and its description: search attributes, memo) as protobuf
// text, where payload bytes print as they are, and lists their ids.
func workflowDump(ctx context.Context, t *testing.T, stack *devstack.Stack) (string, []string) {
	t.Helper()
	var b strings.Builder
	var token []byte
	var ids []string
	for {
		resp, err := stack.Client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{PageSize: 500, NextPageToken: token})
		require.NoError(t, err)
		for _, ex := range resp.Executions {
			wid, rid := ex.Execution.WorkflowId, ex.Execution.RunId
			desc, err := stack.Client.DescribeWorkflowExecution(ctx, wid, rid)
			require.NoError(t, err)
			b.WriteString(prototext.Format(desc))
			it := stack.Client.GetWorkflowHistory(ctx, wid, rid, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
			for it.HasNext() {
				ev, err := it.Next()
				require.NoError(t, err)
				b.WriteString(prototext.Format(ev))
			}
			ids = append(ids, wid)
		}
		if token = resp.NextPageToken; len(token) == 0 {
			break
		}
	}
	t.Logf("searched %d workflow runs (%d KB of history and descriptions)", len(ids), b.Len()>>10)
	return b.String(), ids
}

// lockedBuffer is a log sink many goroutines write to.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *lockedBuffer) tail(n int) string {
	s := l.String()
	return s[max(0, len(s)-n):]
}
