package chatbackend

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/api/serviceerror"

	"github.com/kfleet/kfleet/internal/chatops"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// A start with parameters the migration would refuse is refused before
// anything is asked of Temporal (the backend has no client here).
func TestMigrateStartChecksItsParameters(t *testing.T) {
	_, _, err := backend{}.Run(context.Background(), chatops.Command{Verb: chatops.VerbMigrateStart, Cluster: "orders", Controllers: 4}, "U0ALICE")
	assert.ErrorIs(t, err, fleet.ErrRefused)
	assert.ErrorContains(t, err, "controllers 4: want 3 or 5")
}

// What chat answers to a migration's state and to a decision.
func TestMigrateReplies(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	awaiting := workflows.MigrationState{Cluster: "orders", RequestedBy: "U0ALICE", Status: workflows.MigrationAwaiting,
		Stage: fleet.MigrationStage{Mode: fleet.ModeZooKeeper}, Next: fleet.PhaseControllers}
	refused := workflows.MigrationState{Cluster: "orders", RequestedBy: "U0ALICE", Status: workflows.MigrationRefused,
		Stage: fleet.MigrationStage{Mode: fleet.ModeZooKeeper}, Next: fleet.PhaseControllers,
		Blockers: []fleet.Blocker{{Gate: fleet.GatePreflight, Reason: "every broker must run Kafka 3.9.x before migrating (upgrade first): broker 1 runs 3.8.1"}}}
	running := workflows.MigrationState{Cluster: "orders", RequestedBy: "U0ALICE", Status: workflows.MigrationRunning,
		Stage: fleet.MigrationStage{Mode: fleet.ModeMigrating, Phase: fleet.PhaseControllers}, Next: fleet.PhaseDualWrite,
		Rollback: fleet.PhaseControllers.Rollback(),
		Steps: []workflows.MigrationStep{
			{Params: workflows.MigrationParams{Phase: fleet.PhaseControllers}, ApprovedBy: "U0BOB", Started: t0, Ended: t0.Add(90 * time.Second), Status: workflows.StatusSucceeded},
			{Params: workflows.MigrationParams{Phase: fleet.PhaseControllers, Rollback: true}, ApprovedBy: "U0BOB", Started: t0.Add(time.Hour), Status: workflows.StatusRunning},
		}}
	tests := []struct {
		name string
		got  string
		want []string
	}{
		{"awaiting", renderMigration(awaiting), []string{
			"migration of orders to KRaft (asked by U0ALICE): awaiting-approval; the cluster is zookeeper",
			"next: phase 1-controllers awaits approval by someone other than U0ALICE (migrate approve orders 1)"}},
		{"refused", renderMigration(refused), []string{"refused", "blocked: every broker must run Kafka 3.9.x"}},
		{"steps", renderMigration(running), []string{"phase 1-controllers approved by U0BOB: succeeded in 1m30s",
			"rollback of phase 1-controllers approved by U0BOB: running"}},
		{"approve", decided(workflows.MigrationState{Cluster: "orders", RequestedBy: "U0ALICE", Status: workflows.MigrationRunning, Steps: running.Steps[:1]},
			workflows.MigrationDecision{By: "U0BOB", Action: workflows.MigrationApprove, Phase: 1}),
			[]string{"phase 1-controllers of orders's migration to KRaft started, approved by U0BOB (asked by U0ALICE)", "follow with migrate status orders"}},
		{"rollback", decided(running, workflows.MigrationDecision{By: "U0BOB", Action: workflows.MigrationRollback}),
			[]string{"rollback of phase 1-controllers of orders's migration", "it will remove the controllers"}},
		{"abandon", decided(workflows.MigrationState{Cluster: "orders", Status: workflows.MigrationAbandoned, Stage: fleet.MigrationStage{Mode: fleet.ModeZooKeeper}},
			workflows.MigrationDecision{By: "U0BOB", Action: workflows.MigrationAbandon}),
			[]string{"migration of orders to KRaft abandoned by U0BOB; the cluster is zookeeper"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, w := range tt.want {
				assert.Contains(t, tt.got, w)
			}
			assert.NotContains(t, tt.got, "starter", "chat names chat's commands")
		})
	}
}

// A decision sent when no migration runs is a refusal that says so, not
// "kfleet is unavailable"; other errors stay as they are.
func TestNoMigrationIsARefusal(t *testing.T) {
	err := noMigration("orders", fmt.Errorf("cluster orders: migration: %w", serviceerror.NewNotFound("workflow not found")))
	require.ErrorIs(t, err, fleet.ErrRefused)
	assert.ErrorContains(t, err, "no migration of it awaits a decision (migrate start orders")
	other := errors.New("deadline exceeded")
	assert.Equal(t, other, noMigration("orders", other))
}
