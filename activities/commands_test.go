package activities_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
)

// fakeHosts answers documents from a table and records the runs (each
// command sent).
type fakeHosts struct {
	mu     sync.Mutex
	stdout map[string]string
	errs   map[string]error
	runs   []run
	// sent maps the commands Send sent to their document, comments to
	// their comment (where a step's mark is).
	sent, comments map[string]string
	// crashes cuts off that many sends once SSM has taken the command, as
	// a worker killed before its heartbeat: the attempt fails and its retry
	// has no command id.
	crashes int
	// findErr fails FindCommand; finds counts its calls.
	findErr error
	finds   int
}

type run struct {
	instance, document string
	params             map[string]string
}

func (f *fakeHosts) RunDocument(_ context.Context, instance, document string, params map[string]string, _ string, tick func()) (cloud.CommandResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tick()
	f.runs = append(f.runs, run{instance, document, maps.Clone(params)})
	if err := f.errs[document]; err != nil {
		return cloud.CommandResult{CommandID: "cmd"}, err
	}
	return cloud.CommandResult{CommandID: "cmd", Status: "Success", Stdout: f.stdout[document]}, nil
}

func (f *fakeHosts) Send(_ context.Context, instance, document string, params map[string]string, comment string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.runs = append(f.runs, run{instance, document, maps.Clone(params)})
	id := fmt.Sprintf("cmd-%d", len(f.runs))
	if f.sent == nil {
		f.sent = map[string]string{}
	}
	if f.comments == nil {
		f.comments = map[string]string{}
	}
	f.sent[id], f.comments[id] = document, comment
	if f.crashes > 0 {
		f.crashes--
		return "", fmt.Errorf("instance %s: worker killed before its heartbeat", instance)
	}
	return id, nil
}

func (f *fakeHosts) Wait(_ context.Context, _, _, id string, tick func()) (cloud.CommandResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	tick()
	document, ok := f.sent[id]
	if !ok {
		return cloud.CommandResult{CommandID: id}, fmt.Errorf("command %s: %w", id, cloud.ErrUnknownCommand)
	}
	if err := f.errs[document]; err != nil {
		return cloud.CommandResult{CommandID: id}, err
	}
	return cloud.CommandResult{CommandID: id, Status: "Success", Stdout: f.stdout[document]}, nil
}

// FindCommand is SSM's ListCommands over what Send sent: the newest command
// of document on instance whose comment carries mark and that has not
// failed (its document's error is ErrCommandFailed).
func (f *fakeHosts) FindCommand(_ context.Context, instance, document, mark string, _ time.Time) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.finds++
	if f.findErr != nil {
		return "", f.findErr
	}
	if errors.Is(f.errs[document], cloud.ErrCommandFailed) {
		return "", nil
	}
	for i := len(f.runs) - 1; i >= 0; i-- {
		r, id := f.runs[i], fmt.Sprintf("cmd-%d", i+1)
		if f.sent[id] == document && r.instance == instance && strings.Contains(f.comments[id], mark) {
			return id, nil
		}
	}
	return "", nil
}

func (f *fakeHosts) documents() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, r := range f.runs {
		out = append(out, r.document)
	}
	return out
}

// sentCommand is the heartbeat a step that sends one SSM command records
// (activities.sentCommand, as JSON).
type sentCommand struct {
	Document  string `json:"document"`
	CommandID string `json:"commandId"`
}

// A step retried after a worker crash follows the command its last attempt
// sent instead of sending a second one; a command that failed, or that SSM
// does not know, is a try of its own and is sent again.
func TestAStepRetriedAfterACrashSendsOneCommand(t *testing.T) {
	cases := []struct {
		name      string
		heartbeat *sentCommand
		sent      map[string]string // commands the host had (id → document)
		failed    bool              // the earlier command failed on the host
		wantSends int
		wantErr   string
	}{
		{"first attempt", nil, nil, false, 1, ""},
		{"retry of a command still running or done", &sentCommand{cloud.DocStartBroker, "cmd-earlier"}, map[string]string{"cmd-earlier": cloud.DocStartBroker}, false, 0, ""},
		{"retry of a command that failed", &sentCommand{cloud.DocStartBroker, "cmd-earlier"}, map[string]string{"cmd-earlier": cloud.DocStartBroker}, true, 1, "command failed on host"},
		{"retry of a command SSM does not know", &sentCommand{cloud.DocStartBroker, "cmd-lost"}, nil, false, 1, ""},
		{"heartbeat of another document", &sentCommand{cloud.DocStopBroker, "cmd-earlier"}, map[string]string{"cmd-earlier": cloud.DocStopBroker}, false, 1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := newUnit(t)
			u.hosts.sent = c.sent
			if c.failed {
				u.hosts.errs[cloud.DocStartBroker] = fmt.Errorf("exit 1: %w", cloud.ErrCommandFailed)
			}
			if c.heartbeat != nil {
				u.env.SetHeartbeatDetails(*c.heartbeat)
			}
			err := u.exec(t, u.acts.StartBroker, activities.BrokerInput{Spec: u.spec, Broker: 1, Reason: "test"}, nil)
			if c.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.wantErr)
			} else {
				require.NoError(t, err)
			}
			assert.Len(t, u.hosts.documents(), c.wantSends, "commands sent to the host")
		})
	}
}

// retriedStep runs one activity, by name, with a retry: the SDK's test
// suite retries it as Temporal does (same activity id, same first
// scheduled time, the last heartbeat's details, attempt 2).
func retriedStep(ctx workflow.Context, activity string, in any) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: time.Millisecond, MaximumAttempts: 2},
	})
	return workflow.ExecuteActivity(ctx, activity, in).Get(ctx, nil)
}

// runRetried runs activity once in workflow id through retriedStep.
func (u *unit) runRetried(t *testing.T, id, activity string, in any) error {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	s.SetLogger(tlog.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	env := s.NewTestWorkflowEnvironment()
	env.RegisterActivity(u.acts)
	env.RegisterWorkflow(retriedStep)
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: id})
	env.ExecuteWorkflow(retriedStep, activity, in)
	require.True(t, env.IsWorkflowCompleted())
	return env.GetWorkflowError()
}

// A retry whose attempt died between SendCommand and its heartbeat has no
// command id: it finds the command by the step's mark in its comment and
// follows it, so the host still sees one command; a command that failed is
// sent again, and so is one the lookup could not see.
func TestAStepThatLostItsCommandIDFindsIt(t *testing.T) {
	in := activities.BrokerInput{Broker: 1, Reason: "cluster/unit-a/roll/7"}
	cases := []struct {
		name      string
		failed    bool  // the command fails on the host
		findErr   error // ListCommands fails
		wantSends int
		wantErr   string
	}{
		{"the command runs or ran", false, nil, 1, ""},
		{"the command failed", true, nil, 2, "command failed on host"},
		{"the lookup fails", false, errors.New("AccessDenied: ssm:ListCommands"), 2, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := newUnit(t)
			in.Spec = u.spec
			u.hosts.crashes = 1
			u.hosts.findErr = c.findErr
			if c.failed {
				u.hosts.errs[cloud.DocStartBroker] = fmt.Errorf("exit 1: %w", cloud.ErrCommandFailed)
			}
			err := u.runRetried(t, "cluster/unit-a/roll/7", "StartBroker", in)
			if c.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), c.wantErr)
			} else {
				require.NoError(t, err)
			}
			assert.Len(t, u.hosts.documents(), c.wantSends, "commands sent to the host")
			assert.Equal(t, 2, u.hosts.finds, "both attempts looked before sending")
		})
	}

	// Another step's command on the same host is not this step's: a second
	// start (another workflow) sends its own.
	u := newUnit(t)
	in.Spec = u.spec
	require.NoError(t, u.runRetried(t, "cluster/unit-a/roll/7", "StartBroker", in))
	require.NoError(t, u.runRetried(t, "cluster/unit-a/roll/8", "StartBroker", in))
	assert.Equal(t, []string{cloud.DocStartBroker, cloud.DocStartBroker}, u.hosts.documents())
	marks := map[string]bool{}
	for _, comment := range u.hosts.comments {
		require.True(t, strings.HasPrefix(comment, in.Reason+" kfleet-step="), comment)
		marks[comment] = true
	}
	assert.Len(t, marks, 2, "each step has its own mark")

	// A long reason is cut to fit SSM's 100 characters, never inside a
	// character; the mark stays whole.
	long := in
	long.Reason = strings.Repeat("é", 60)
	require.NoError(t, u.exec(t, u.acts.StopBroker, long, nil))
	comment := u.hosts.comments[fmt.Sprintf("cmd-%d", len(u.hosts.runs))]
	assert.LessOrEqual(t, len(comment), 100)
	assert.True(t, utf8.ValidString(comment), comment)
	assert.Regexp(t, `^(é)+ kfleet-step=[0-9a-f]{16}$`, comment)

	// Bad input is refused before SSM is asked anything.
	u = newUnit(t)
	in.Spec, in.Broker = u.spec, 42
	err := u.runRetried(t, "cluster/unit-a/roll/9", "StartBroker", in)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "broker 42 is not in the cluster spec")
	assert.Empty(t, u.hosts.documents())
	assert.Zero(t, u.hosts.finds)
}
