package activities

import (
	"context"
	"errors"

	"go.temporal.io/sdk/activity"

	"github.com/kfleet/kfleet/internal/cloud"
)

// sentCommand is the heartbeat of a step that sends one SSM command to a
// host (stop, start, raise a limit, grow a filesystem): its id. A retry
// after a worker crash follows the command its last attempt sent instead of
// sending a second one beside it, so a host sees one command per step.
type sentCommand struct {
	Document  string `json:"document"`
	CommandID string `json:"commandId"`
}

// runOnce runs document on instance once for this step: it follows the
// command an earlier attempt of the activity sent, when there is one that
// has not failed, and sends one otherwise. A command that ran and failed
// (or that SSM no longer knows) is a try of its own: the retry sends anew.
func (a *Activities) runOnce(ctx context.Context, instance, document string, params map[string]string, comment string) (cloud.CommandResult, error) {
	var prev sentCommand
	if activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &prev) == nil && prev.Document == document && prev.CommandID != "" {
		res, err := a.Hosts.Wait(ctx, instance, document, prev.CommandID, beat(ctx, prev))
		if !errors.Is(err, cloud.ErrCommandFailed) && !errors.Is(err, cloud.ErrUnknownCommand) {
			a.Log.Info().Str("instance", instance).Str("document", document).Str("command", prev.CommandID).Err(err).
				Msg("followed the command an earlier attempt sent")
			return res, err
		}
		a.Log.Warn().Str("instance", instance).Str("document", document).Str("command", prev.CommandID).Err(err).
			Msg("the command an earlier attempt sent did not succeed: sending it again")
	}
	id, err := a.Hosts.Send(ctx, instance, document, params, comment)
	if err != nil {
		return cloud.CommandResult{}, err
	}
	sent := sentCommand{Document: document, CommandID: id}
	tick := beat(ctx, sent)
	tick() // at once: the id must outlive a crash that follows
	return a.Hosts.Wait(ctx, instance, document, id, tick)
}

func beat(ctx context.Context, sent sentCommand) func() {
	return func() { activity.RecordHeartbeat(ctx, sent) }
}
