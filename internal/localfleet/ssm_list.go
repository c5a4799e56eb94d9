package localfleet

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ListCommands with AWS's semantics for what kfleet (and an operator's
// aws CLI) asks: CommandId, InstanceId, the five filter keys, MaxResults
// (1..50, default 50) and NextToken, newest command first. kfleet lists an
// instance's commands of one document since a step was scheduled, to find
// the command a crashed attempt sent (internal/cloud FindCommand).

// Command statuses only ListCommands reports for the fleet (ssm.go has the
// rest).
const (
	ssmCancelled = "Cancelled"
	ssmTimedOut  = "TimedOut"
)

const (
	maxListCommands = 50 // AWS's CommandMaxResults
	maxFilters      = 5  // AWS's CommandFilterList
	maxFilterValue  = 128
)

// ssmInstanceID is the pattern AWS documents for ListCommands' InstanceId.
var ssmInstanceID = regexp.MustCompile(`^(i-(\w{8}|\w{17})|mi-\w{17})$`)

type listCommandsInput struct {
	CommandID  string          `json:"CommandId"`
	InstanceID string          `json:"InstanceId"`
	Filters    []commandFilter `json:"Filters"`
	MaxResults *int            `json:"MaxResults"`
	NextToken  string          `json:"NextToken"`
}

// commandFilter is AWS's CommandFilter, whose members are lower-case on
// the wire.
type commandFilter struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type listCommandsOutput struct {
	Commands  []commandJSON `json:"Commands"`
	NextToken string        `json:"NextToken,omitempty"`
}

// commandMatch is one filter, parsed: whether a command (with its overall
// status) passes it.
type commandMatch func(cmd *ssmCommand, status string) bool

func (s *ssmService) listCommands(in listCommandsInput) (any, error) {
	limit := maxListCommands
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > maxListCommands {
			return nil, ssmErr("ValidationException", "1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and %d", *in.MaxResults, maxListCommands)
		}
		limit = *in.MaxResults
	}
	if in.InstanceID != "" && !ssmInstanceID.MatchString(in.InstanceID) {
		return nil, ssmErr("InvalidInstanceId", "instance id %q is not valid", in.InstanceID)
	}
	matches, err := parseCommandFilters(in.InstanceID, in.Filters)
	if err != nil {
		return nil, err
	}
	var after *commandCursor
	if in.NextToken != "" {
		c, err := decodeCommandCursor(in.NextToken)
		if err != nil {
			return nil, ssmErr("InvalidNextToken", "the token %q is not valid", in.NextToken)
		}
		after = &c
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if in.CommandID != "" {
		if _, ok := s.commands[in.CommandID]; !ok {
			return nil, ssmErr("InvalidCommandId", "command %q does not exist", in.CommandID)
		}
	}
	var listed []*ssmCommand
	for _, cmd := range s.commands {
		if (in.CommandID != "" && cmd.id != in.CommandID) ||
			(in.InstanceID != "" && !slices.Contains(cmd.instances, in.InstanceID)) {
			continue
		}
		status, _, _ := cmd.overall()
		if !slices.ContainsFunc(matches, func(m commandMatch) bool { return !m(cmd, status) }) {
			listed = append(listed, cmd)
		}
	}
	slices.SortFunc(listed, func(a, b *ssmCommand) int { return cursorOf(a).compare(cursorOf(b)) })
	if after != nil {
		// The page after the last command of the previous one; commands
		// sent since are newer, so they never shift a page.
		listed = listed[sortedAfter(listed, *after):]
	}
	out := listCommandsOutput{Commands: []commandJSON{}}
	for i, cmd := range listed {
		if i == limit {
			out.NextToken = cursorOf(listed[i-1]).encode()
			break
		}
		out.Commands = append(out.Commands, cmd.json())
	}
	return out, nil
}

// parseCommandFilters checks the filters as AWS does and returns them as
// matches, all of which a listed command passes.
func parseCommandFilters(instance string, filters []commandFilter) ([]commandMatch, error) {
	if len(filters) > maxFilters {
		return nil, ssmErr("ValidationException", "1 validation error detected: Value at 'filters' failed to satisfy constraint: Member must have length less than or equal to %d", maxFilters)
	}
	var matches []commandMatch
	for _, f := range filters {
		if f.Value == "" || len(f.Value) > maxFilterValue {
			return nil, ssmErr("ValidationException", "1 validation error detected: Value at 'filters.%s.value' failed to satisfy constraint: Member must have length between 1 and %d", f.Key, maxFilterValue)
		}
		// AWS documents no error code for a bad value of a known key;
		// InvalidFilterValue is the SDK's closest.
		badValue := func(want string) error {
			return ssmErr("InvalidFilterValue", "filter %s: value %q is not valid: want %s", f.Key, f.Value, want)
		}
		switch v := f.Value; f.Key {
		case "InvokedAfter", "InvokedBefore":
			at, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, badValue("a timestamp such as 2024-07-07T00:00:00Z")
			}
			if f.Key == "InvokedAfter" { // on or after
				matches = append(matches, func(c *ssmCommand, _ string) bool { return !c.requested.Before(at) })
			} else {
				matches = append(matches, func(c *ssmCommand, _ string) bool { return c.requested.Before(at) })
			}
		case "Status":
			if !slices.Contains([]string{ssmPending, ssmInProgress, ssmSuccess, ssmCancelled, ssmFailed, ssmTimedOut}, v) {
				return nil, badValue("Pending, InProgress, Success, Cancelled, Failed or TimedOut")
			}
			// AWS's own rule: a Pending command has not reached a node yet.
			if v == ssmPending && instance != "" {
				return nil, ssmErr("InvalidFilter", "an instance id cannot be listed with Status = Pending")
			}
			matches = append(matches, func(_ *ssmCommand, status string) bool { return status == v })
		case "ExecutionStage":
			if v != "Executing" && v != "Complete" {
				return nil, badValue("Executing or Complete")
			}
			matches = append(matches, func(_ *ssmCommand, status string) bool {
				return (status == ssmPending || status == ssmInProgress) == (v == "Executing")
			})
		case "DocumentName":
			matches = append(matches, func(c *ssmCommand, _ string) bool { return c.document == v })
		default:
			return nil, ssmErr("InvalidFilterKey", "filter key %q is not valid: want InvokedAfter, InvokedBefore, Status, ExecutionStage or DocumentName", f.Key)
		}
	}
	return matches, nil
}

// overall is the command's status over its invocations, as ListCommands
// reports it, and how many of them completed and failed. Guarded by
// ssmService.mu.
func (cmd *ssmCommand) overall() (status string, completed, errored int) {
	pending := 0
	for _, inv := range cmd.invocations {
		switch inv.status {
		case ssmPending:
			pending++
		case ssmSuccess:
			completed++
		case ssmFailed:
			completed++
			errored++
		}
	}
	switch {
	case pending == len(cmd.invocations):
		return ssmPending, completed, errored
	case completed < len(cmd.invocations):
		return ssmInProgress, completed, errored
	case errored > 0:
		return ssmFailed, completed, errored
	}
	return ssmSuccess, completed, errored
}

// json is the command as SendCommand and ListCommands return it. Guarded
// by ssmService.mu.
func (cmd *ssmCommand) json() commandJSON {
	status, completed, errored := cmd.overall()
	return commandJSON{
		CommandID:         cmd.id,
		DocumentName:      cmd.document,
		InstanceIds:       cmd.instances,
		Status:            status,
		StatusDetails:     status,
		Parameters:        cmd.parameters,
		Comment:           cmd.comment,
		RequestedDateTime: float64(cmd.requested.UnixMilli()) / 1000,
		TargetCount:       len(cmd.instances),
		CompletedCount:    completed,
		ErrorCount:        errored,
	}
}

// commandCursor is a command's place in the listing (newest first, then by
// id): a NextToken is the cursor of the previous page's last command.
type commandCursor struct {
	requested int64 // Unix nanoseconds
	id        string
}

func cursorOf(cmd *ssmCommand) commandCursor {
	return commandCursor{requested: cmd.requested.UnixNano(), id: cmd.id}
}

// compare orders cursors as the listing does: newer first.
func (c commandCursor) compare(o commandCursor) int {
	if c.requested != o.requested {
		if c.requested > o.requested {
			return -1
		}
		return 1
	}
	return strings.Compare(c.id, o.id)
}

func (c commandCursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.requested, 10) + "/" + c.id))
}

func decodeCommandCursor(token string) (commandCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return commandCursor{}, err
	}
	at, id, ok := strings.Cut(string(raw), "/")
	if !ok || id == "" {
		return commandCursor{}, fmt.Errorf("token %q: no command id", token)
	}
	n, err := strconv.ParseInt(at, 10, 64)
	if err != nil {
		return commandCursor{}, err
	}
	return commandCursor{requested: n, id: id}, nil
}

// sortedAfter is the index of the first command of sorted that comes after
// c in the listing.
func sortedAfter(sorted []*ssmCommand, c commandCursor) int {
	i, _ := slices.BinarySearchFunc(sorted, c, func(cmd *ssmCommand, c commandCursor) int { return cursorOf(cmd).compare(c) })
	if i < len(sorted) && cursorOf(sorted[i]) == c {
		i++
	}
	return i
}
