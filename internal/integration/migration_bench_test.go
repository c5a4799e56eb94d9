package integration_test

import (
	"context"
	"testing"
	"time"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// BenchmarkMigration migrates a ZooKeeper cluster of 3 brokers to KRaft,
// each phase approved as soon as the last one ended, and divides the
// migration's wall time (first approval to finalized) by the sum of its
// rolls' (phase 2's and 3's broker rolls, phase 4's controller roll, as
// Temporal timed their workflows): what is not a roll is the controllers'
// provisioning, the waits for the quorum and the takeover, the checks and
// kfleet's overhead between steps.
func BenchmarkMigration(b *testing.B) {
	for range b.N {
		b.StopTimer()
		stack := migrationStack(b, "3.9.0", "3.9")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		st := startMigration(ctx, b, stack)
		if st.Status != workflows.MigrationAwaiting {
			b.Fatalf("preflight: %s %v", st.Status, st.Blockers)
		}
		b.StartTimer()
		began := time.Now()
		for phase := fleet.PhaseControllers; phase <= fleet.PhaseFinalize; phase++ {
			decide(ctx, b, stack, workflows.MigrationDecision{Action: workflows.MigrationApprove, Phase: phase})
			st = stepDone(ctx, b, stack, int(phase))
		}
		wall := time.Since(began)
		b.StopTimer()
		var rolls time.Duration
		cs, err := entity.ClusterStatus(ctx, stack.Client, "local-a")
		if err != nil {
			b.Fatal(err)
		}
		for _, op := range cs.History {
			if op.Kind != workflows.OpMigrationPhase {
				continue
			}
			for _, mode := range []string{cloud.MetadataModeMigration, cloud.MetadataModeKRaft} {
				d, err := stack.Client.DescribeWorkflowExecution(ctx, workflows.MigrationRollWorkflowID(op.WorkflowID, mode), "")
				if err != nil {
					continue // this step ran no roll into mode
				}
				info := d.GetWorkflowExecutionInfo()
				if info.GetCloseTime() != nil {
					rolls += info.GetCloseTime().AsTime().Sub(info.GetStartTime().AsTime())
				}
			}
		}
		cancel()
		if v := stack.Fleet.Violations("local-a"); len(v) > 0 {
			b.Fatalf("violations: %+v", v)
		}
		b.ReportMetric(wall.Seconds(), "migration-s")
		b.ReportMetric(rolls.Seconds(), "rolls-s")
		b.ReportMetric(wall.Seconds()/rolls.Seconds(), "migration/rolls")
		for i, s := range st.Steps {
			b.ReportMetric(s.Ended.Sub(s.Started).Seconds(), "phase"+string(rune('1'+i))+"-s")
		}
	}
}
