package chatbackend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/kfleet/kfleet/internal/chatops"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// The migration's verbs (chatops' command_migrate.go) run at once: the
// migration itself holds each phase until someone other than who started
// it approves it, so chat adds no approval of its own; the chat user is
// the migration's requester or decider.

// preflightPoll paces the wait for a migration's preflight, which chat
// waits for within its quick timeout (Slack's 3 s).
const preflightPoll = 100 * time.Millisecond

// preflightMargin is left of the quick timeout to answer in once the
// preflight has not ended.
const preflightMargin = 300 * time.Millisecond

// migrate runs a migration verb as user.
func (b backend) migrate(ctx context.Context, cmd chatops.Command, user string) (string, string, error) {
	switch cmd.Verb {
	case chatops.VerbMigrateStart:
		return b.startMigration(ctx, cmd, user)
	case chatops.VerbMigrateStatus:
		st, err := entity.MigrationStatus(ctx, b.c, cmd.Cluster)
		if err != nil {
			return "", "", err
		}
		return renderMigration(st), "", nil
	}
	d := workflows.MigrationDecision{By: user, Phase: cmd.Phase, Reason: cmd.Reason}
	switch cmd.Verb {
	case chatops.VerbMigrateApprove:
		d.Action = workflows.MigrationApprove
	case chatops.VerbMigrateRollback:
		d.Action = workflows.MigrationRollback
	case chatops.VerbMigrateAbandon:
		d.Action = workflows.MigrationAbandon
	default:
		return "", "", fmt.Errorf("%w: %s is not a migration verb", fleet.ErrRefused, cmd.Verb)
	}
	st, err := entity.DecideMigration(ctx, b.c, cmd.Cluster, d)
	if err != nil {
		return "", "", noMigration(cmd.Cluster, err)
	}
	return decided(st, d), "", nil
}

// startMigration starts the cluster's migration and answers with its
// preflight's verdict: a refusal lists what blocks it.
func (b backend) startMigration(ctx context.Context, cmd chatops.Command, user string) (string, string, error) {
	in := workflows.MigrationInput{Cluster: cmd.Cluster, RequestedBy: user, Controllers: cmd.Controllers}
	if err := workflows.CheckMigrationParams(workflows.MigrationParams{Phase: fleet.PhaseControllers, Controllers: in.Controllers}); err != nil {
		return "", "", fmt.Errorf("%w: cluster %s: %w", fleet.ErrRefused, cmd.Cluster, err)
	}
	wid, err := entity.StartMigration(ctx, b.c, in)
	if err != nil {
		return "", "", err
	}
	st, done := waitPreflight(ctx, b.c, cmd.Cluster)
	switch {
	case !done:
		return fmt.Sprintf("migration of %s to KRaft started (%s): its preflight is still running; see migrate status %s", cmd.Cluster, wid, cmd.Cluster), "", nil
	case st.Status == workflows.MigrationRefused:
		return "", "", fmt.Errorf("cluster %s: the migration was %w at preflight:\n%s", cmd.Cluster, fleet.ErrRefused, renderMigration(st))
	}
	return renderMigration(st), "", nil
}

// waitPreflight polls the migration until its preflight has ended, for as
// long as ctx leaves time to answer; done is false when it has not.
func waitPreflight(ctx context.Context, c client.Client, cluster string) (workflows.MigrationState, bool) {
	stop := time.Now().Add(10 * time.Second)
	if dl, ok := ctx.Deadline(); ok {
		stop = dl.Add(-preflightMargin)
	}
	for {
		qctx, cancel := context.WithDeadline(ctx, stop)
		st, err := entity.MigrationStatus(qctx, c, cluster)
		cancel()
		if err == nil && st.Status != workflows.MigrationPreflightStatus {
			return st, true
		}
		if time.Now().Add(preflightPoll).After(stop) {
			return st, false
		}
		select {
		case <-ctx.Done():
			return st, false
		case <-time.After(preflightPoll):
		}
	}
}

// decided says what a decision started, as the migration answered it.
func decided(st workflows.MigrationState, d workflows.MigrationDecision) string {
	switch {
	case d.Action == workflows.MigrationAbandon:
		return fmt.Sprintf("migration of %s to KRaft abandoned by %s; the cluster is %s (a later migrate start resumes from there)", st.Cluster, d.By, st.Stage)
	case len(st.Steps) > 0:
		s := st.Steps[len(st.Steps)-1]
		line := fmt.Sprintf("%s of %s's migration to KRaft started, approved by %s (asked by %s): %s", s.Params, st.Cluster, s.ApprovedBy, st.RequestedBy, s.Status)
		if d.Action == workflows.MigrationRollback && st.Rollback != "" {
			line += "; it will " + st.Rollback
		}
		return line + fmt.Sprintf("; follow with migrate status %s", st.Cluster)
	}
	return renderMigration(st)
}

// noMigration turns "no such workflow" (none was started, or it ended)
// into a refusal that says so; other errors are left as they are.
func noMigration(cluster string, err error) error {
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		return fmt.Errorf("cluster %s: %w: no migration of it awaits a decision (migrate start %s, then migrate status %s)", cluster, fleet.ErrRefused, cluster, cluster)
	}
	return err
}

// renderMigration is the migration's state as the CLI shows it, with
// chat's command to approve the next phase.
func renderMigration(st workflows.MigrationState) string {
	var out strings.Builder
	entity.RenderMigration(&out, st, fmt.Sprintf("migrate approve %s %d", st.Cluster, int(st.Next)))
	return strings.TrimRight(out.String(), "\n")
}
