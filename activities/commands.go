package activities

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"time"
	"unicode/utf8"

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
// has not failed, and sends one otherwise. The earlier command is the one
// in the heartbeat or, when the heartbeat never got it (a worker killed
// between SendCommand returning and the heartbeat reaching Temporal), the
// one SSM lists for the instance with this step's mark in its comment. A
// command that ran and failed (or that SSM no longer knows) is a try of its
// own: the retry sends anew.
func (a *Activities) runOnce(ctx context.Context, instance, document string, params map[string]string, reason string) (cloud.CommandResult, error) {
	info := activity.GetInfo(ctx)
	mark := stepMark(info, document)
	var prev sentCommand
	if activity.HasHeartbeatDetails(ctx) && activity.GetHeartbeatDetails(ctx, &prev) == nil && prev.Document == document && prev.CommandID != "" {
		if res, done, err := a.follow(ctx, instance, prev, "heartbeat"); done {
			return res, err
		}
	} else if id := a.findSent(ctx, instance, document, mark, info.ScheduledTime); id != "" {
		if res, done, err := a.follow(ctx, instance, sentCommand{Document: document, CommandID: id}, "step mark"); done {
			return res, err
		}
	}
	id, err := a.Hosts.Send(ctx, instance, document, params, stepComment(reason, mark))
	if err != nil {
		return cloud.CommandResult{}, err
	}
	sent := sentCommand{Document: document, CommandID: id}
	tick := beat(ctx, sent)
	tick() // at once: the id must outlive a crash that follows
	return a.Hosts.Wait(ctx, instance, document, id, tick)
}

// follow waits for the command an earlier attempt sent (known by how: its
// heartbeat or its step mark). done is false when the command failed or SSM
// does not know it: the step then sends anew.
func (a *Activities) follow(ctx context.Context, instance string, prev sentCommand, how string) (res cloud.CommandResult, done bool, err error) {
	tick := beat(ctx, prev)
	tick() // a command found by its mark must not be lost again by a crash
	res, err = a.Hosts.Wait(ctx, instance, prev.Document, prev.CommandID, tick)
	log := a.Log.With().Str("instance", instance).Str("document", prev.Document).Str("command", prev.CommandID).Str("by", how).Logger()
	if !errors.Is(err, cloud.ErrCommandFailed) && !errors.Is(err, cloud.ErrUnknownCommand) {
		log.Info().Err(err).Msg("followed the command an earlier attempt sent")
		return res, true, err
	}
	log.Warn().Err(err).Msg("the command an earlier attempt sent did not succeed: sending it again")
	return res, false, err
}

// findSent returns the command an earlier attempt of this step sent, found
// by the step's mark among the instance's commands since the step was first
// scheduled; "" when there is none. A lookup that fails (ssm:ListCommands
// denied, SSM throttling) is logged and the step sends: every kfleet
// document is idempotent, while a step that cannot send at all could leave
// a broker stopped in the middle of a roll.
func (a *Activities) findSent(ctx context.Context, instance, document, mark string, scheduled time.Time) string {
	id, err := a.Hosts.FindCommand(ctx, instance, document, mark, scheduled)
	if err != nil {
		a.Log.Warn().Str("instance", instance).Str("document", document).Err(err).
			Msg("could not look for a command an earlier attempt sent: sending one")
		return ""
	}
	return id
}

func beat(ctx context.Context, sent sentCommand) func() {
	return func() { activity.RecordHeartbeat(ctx, sent) }
}

// maxComment is SSM's limit on a command's comment (100 characters; kept
// here in bytes, which is never more).
const maxComment = 100

// stepMark names one step of a workflow for SSM: a hash of the activity's
// workflow execution, its activity id and the document, the same in every
// attempt of the activity and different in any other step (or another run
// of the workflow, after a reset or continue-as-new). Every command the step
// sends carries it in its comment, which is how a retry that lost the
// command's id finds the command.
func stepMark(info activity.Info, document string) string {
	h := sha256.New()
	for _, part := range []string{info.WorkflowExecution.ID, info.WorkflowExecution.RunID, info.ActivityID, info.ActivityRunID, document} {
		h.Write([]byte(part))
		h.Write([]byte{0}) // so that no two splits of the same bytes collide
	}
	return "kfleet-step=" + hex.EncodeToString(h.Sum(nil)[:8])
}

// stepComment is the comment of a command a step sends: the reason (the
// operation, which the host's audit shows as who asked) cut to fit, then
// the mark, which must survive whole.
func stepComment(reason, mark string) string {
	room := maxComment - len(mark) - 1
	if reason == "" || room <= 0 {
		return mark
	}
	if len(reason) > room {
		for room > 0 && !utf8.RuneStart(reason[room]) { // never half a character
			room--
		}
		reason = reason[:room]
	}
	return reason + " " + mark
}
