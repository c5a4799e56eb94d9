// Package cloud reaches the hosts behind brokers through AWS: SSM runs
// kfleet's documents (deploy/ssm/) on an instance and returns their result.
// Pointed at the local fleet's endpoint it runs the same aws-sdk-go-v2 code
// path as in production.
package cloud

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// SSM runs documents on instances.
type SSM struct {
	client *ssm.Client
	// maxPoll caps the interval between GetCommandInvocation calls; polls
	// start fast because most kfleet documents finish in seconds.
	maxPoll time.Duration
}

// NewSSM returns an SSM runner for cfg. endpoint overrides the service
// endpoint (the local fleet); empty means AWS's own.
func NewSSM(cfg aws.Config, endpoint string) *SSM {
	client := ssm.NewFromConfig(cfg, func(o *ssm.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return &SSM{client: client, maxPoll: time.Second}
}

// Polls of a command's first seconds: most kfleet documents finish in
// seconds, and a roll waits on each.
const (
	fastPoll    = 100 * time.Millisecond
	fastPollFor = 5 * time.Second
)

// CommandResult is the outcome of a document run on one instance.
type CommandResult struct {
	CommandID string
	Status    string
	Stdout    string
	Stderr    string
}

// ErrCommandFailed marks a document that ran and failed on the host, as
// opposed to a request SSM refused.
var ErrCommandFailed = errors.New("command failed on host")

// ErrUnknownCommand marks a command SSM does not know (any more): one
// followed after a crash that SSM never registered, or long expired.
var ErrUnknownCommand = errors.New("command unknown to SSM")

// registerWithin is how long SSM may take to register an invocation after
// SendCommand returned: past it, the command is unknown.
const registerWithin = 30 * time.Second

// RunDocument sends document to instance and waits for its result. tick is
// called at every poll so an activity can heartbeat. A retry after a crash
// sends the document again (every kfleet document is idempotent); a step
// that must be sent once sends with Send and follows with Wait, keeping the
// command's id to follow it again after a crash (and, when the crash lost
// the id, finding the command again with FindCommand).
func (s *SSM) RunDocument(ctx context.Context, instance, document string, params map[string]string, comment string, tick func()) (CommandResult, error) {
	id, err := s.Send(ctx, instance, document, params, comment)
	if err != nil {
		return CommandResult{}, err
	}
	return s.Wait(ctx, instance, document, id, tick)
}

// Send sends document to instance and returns the command's id.
func (s *SSM) Send(ctx context.Context, instance, document string, params map[string]string, comment string) (string, error) {
	in := &ssm.SendCommandInput{
		DocumentName: aws.String(document),
		InstanceIds:  []string{instance},
		Parameters:   make(map[string][]string, len(params)),
		Comment:      aws.String(truncate(comment, 100)),
	}
	for k, v := range params {
		in.Parameters[k] = []string{v}
	}
	sent, err := s.client.SendCommand(ctx, in)
	if err != nil {
		return "", fmt.Errorf("instance %s: send %s: %w", instance, document, err)
	}
	return aws.ToString(sent.Command.CommandId), nil
}

// Wait follows command id (of document, on instance) until it ends, and
// returns its result; a command that ran and failed is ErrCommandFailed.
// tick is called at every poll.
func (s *SSM) Wait(ctx context.Context, instance, document, id string, tick func()) (CommandResult, error) {
	sentAt := time.Now() // or, for a command followed after a crash, when it was picked up again
	wait := 50 * time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return CommandResult{CommandID: id}, fmt.Errorf("instance %s: %s (command %s): %w", instance, document, id, ctx.Err())
		case <-time.After(wait):
		}
		// Poll closely while a quick command may be finishing (every
		// step of a roll waits on one), then back off to maxPoll.
		limit := s.maxPoll
		if time.Since(sentAt) < fastPollFor {
			limit = min(limit, fastPoll)
		}
		wait = min(2*wait, limit)
		tick()
		out, err := s.client.GetCommandInvocation(ctx, &ssm.GetCommandInvocationInput{
			CommandId:  aws.String(id),
			InstanceId: aws.String(instance),
		})
		var notYet *ssmtypes.InvocationDoesNotExist
		var invalid *ssmtypes.InvalidCommandId
		switch {
		case errors.As(err, &notYet) && time.Since(sentAt) < registerWithin:
			continue // SSM registers the invocation shortly after SendCommand returns
		case errors.As(err, &notYet), errors.As(err, &invalid):
			return CommandResult{CommandID: id}, fmt.Errorf("instance %s: %s (command %s): %w: %v", instance, document, id, ErrUnknownCommand, err)
		}
		if err != nil {
			return CommandResult{CommandID: id}, fmt.Errorf("instance %s: %s (command %s): %w", instance, document, id, err)
		}
		res := CommandResult{
			CommandID: id,
			Status:    string(out.Status),
			Stdout:    aws.ToString(out.StandardOutputContent),
			Stderr:    aws.ToString(out.StandardErrorContent),
		}
		switch out.Status {
		case ssmtypes.CommandInvocationStatusSuccess:
			return res, nil
		case ssmtypes.CommandInvocationStatusFailed, ssmtypes.CommandInvocationStatusCancelled, ssmtypes.CommandInvocationStatusTimedOut:
			return res, fmt.Errorf("instance %s: %s (command %s) %s: %s: %w", instance, document, id, out.Status, truncate(res.Stderr, 500), ErrCommandFailed)
		}
	}
}

// lookBack widens a lookup's InvokedAfter filter: since comes from
// Temporal's clock (when the step was scheduled), RequestedDateTime from
// SSM's, and a skew between the two must not hide the step's own command.
const lookBack = time.Minute

// FindCommand returns the id of the newest command of document sent to
// instance on or after since whose comment carries mark and that has not
// failed (pending, in progress or succeeded); "" when there is none. It lets
// a step retried after a crash that lost the command's id find the command
// it sent instead of sending a second one. SSM cannot filter on comments:
// the instance, the document and since bound the listing (a handful of
// commands), and the mark is matched here.
func (s *SSM) FindCommand(ctx context.Context, instance, document, mark string, since time.Time) (string, error) {
	if mark == "" {
		// An empty mark would match every command of the document.
		return "", fmt.Errorf("instance %s: find %s command: empty step mark", instance, document)
	}
	in := &ssm.ListCommandsInput{
		InstanceId: aws.String(instance),
		Filters:    []ssmtypes.CommandFilter{{Key: ssmtypes.CommandFilterKeyDocumentName, Value: aws.String(document)}},
		MaxResults: aws.Int32(50), // AWS's largest page
	}
	if !since.IsZero() {
		// Whole seconds, rounded down, as AWS documents the value.
		after := since.Add(-lookBack).UTC().Truncate(time.Second).Format(time.RFC3339)
		in.Filters = append(in.Filters, ssmtypes.CommandFilter{Key: ssmtypes.CommandFilterKeyInvokedAfter, Value: aws.String(after)})
	}
	var best *ssmtypes.Command
	// AWS does not document the listing's order: read every page and keep
	// the newest match.
	for pages := ssm.NewListCommandsPaginator(s.client, in); pages.HasMorePages(); {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("instance %s: list %s commands: %w", instance, document, err)
		}
		for i := range page.Commands {
			c := &page.Commands[i]
			if !strings.Contains(aws.ToString(c.Comment), mark) || !followable(c.Status) {
				continue
			}
			if best == nil || aws.ToTime(c.RequestedDateTime).After(aws.ToTime(best.RequestedDateTime)) {
				best = c
			}
		}
	}
	if best == nil {
		return "", nil
	}
	return aws.ToString(best.CommandId), nil
}

// followable is true of a command that may still succeed or has: one that
// failed, timed out or was cancelled (or is being cancelled) is a try of
// its own, and the step sends again.
func followable(status ssmtypes.CommandStatus) bool {
	switch status {
	case ssmtypes.CommandStatusPending, ssmtypes.CommandStatusInProgress, ssmtypes.CommandStatusSuccess:
		return true
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
