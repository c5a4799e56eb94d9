package activities_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
)

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
