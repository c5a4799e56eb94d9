package workflows_test

import (
	"context"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

// The entity's self-healing: losses become recoveries, health ticks become
// operations. Each test runs the entity with the health loop's default
// one-minute tick.

// stubTicks has sensing's ticks see healthyReport changed by edit, which
// gets the tick's number (from 0).
func stubTicks(s *ClusterSuite, edit func(tick int, rep *fleet.HealthReport)) {
	s.sim.edit = edit
}

func (s *ClusterSuite) TestLossStartsARecoveryAtOnceWithTheGrace() {
	var recoveries []workflows.RecoveryInput
	var startedAt time.Time
	s.env.OnWorkflow(workflows.RecoveryWorkflow, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in workflows.RecoveryInput) (workflows.RecoveryResult, error) {
			recoveries = append(recoveries, in)
			startedAt = workflow.Now(ctx)
			return workflows.RecoveryResult{CameBack: true}, nil
		})
	var final workflows.ClusterStatus
	s.statusAt(time.Hour, &final)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 2*time.Hour)
	spec := testSpec()
	spec.Health.RecoveryGrace = 20 * time.Second

	s.run(workflows.ClusterInput{Spec: spec},
		watchStep{5 * time.Minute, []int32{1, 3}},
		watchStep{5 * time.Second, []int32{1, 2, 3}}, // back by itself
	)

	s.Require().Len(recoveries, 1, "one loss, one recovery, even though it came back")
	s.Equal(20*time.Second, recoveries[0].Grace, "the recovery gives it the grace")
	s.WithinDuration(final.Losses[0].At, startedAt, time.Second, "started as soon as the loss is seen")
	s.Require().Len(final.Losses, 1)
	s.True(final.Losses[0].Recovered)
	s.Equal(final.History[0].ID, final.Losses[0].Recovery)
	s.Equal("came back by itself", final.History[0].Outcome)
}

func (s *ClusterSuite) TestLossStartsExactlyOneRecoveryThatPreemptsMaintenance() {
	var recoveries []workflows.RecoveryInput
	s.env.OnWorkflow(workflows.RecoveryWorkflow, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in workflows.RecoveryInput) (workflows.RecoveryResult, error) {
			recoveries = append(recoveries, in)
			return workflows.RecoveryResult{Starts: 1, Cause: fleet.CauseMapFailed}, workflow.Sleep(ctx, 10*time.Minute)
		})
	var rollStarted time.Time
	s.env.OnWorkflow(workflows.RollingRestartWorkflow, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, _ workflows.RollingRestartInput) (workflows.RollingRestartResult, error) {
			rollStarted = workflow.Now(ctx)
			return workflows.RollingRestartResult{}, nil
		})
	var req answer
	var during, final workflows.ClusterStatus
	s.update(6*time.Minute, workflows.UpdateRequest, restartReq("alice"), &req)
	s.statusAt(7*time.Minute, &during)
	s.statusAt(time.Hour, &final)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 2*time.Hour)
	start := s.env.Now()

	s.run(workflows.ClusterInput{Spec: testSpec()},
		watchStep{5 * time.Minute, []int32{1, 3}},
		watchStep{30 * time.Minute, []int32{1, 2, 3}},
	)

	s.Require().Len(recoveries, 1, "one loss, one recovery")
	s.Equal(int32(2), recoveries[0].Broker)
	s.Require().Len(during.Urgent, 1)
	s.Equal(workflows.OpRecovery, during.Urgent[0].Kind)
	s.Require().Len(during.Queue, 1, "the restart waits while the recovery runs")
	s.Nil(during.Running)
	s.Require().NoError(req.err)
	s.False(rollStarted.IsZero())
	s.GreaterOrEqual(rollStarted.Sub(start), 15*time.Minute, "maintenance starts after the recovery")
	s.Require().Len(final.History, 2)
	s.Equal("cause map-failed, 1 start(s)", final.History[0].Outcome)
	s.Equal(final.History[0].ID, final.Losses[0].Recovery)
	s.Require().NotNil(final.Health)
	var lossFinding *workflows.Finding
	for i, f := range final.Health.Findings {
		if f.Kind == workflows.FindingLoss {
			lossFinding = &final.Health.Findings[i]
		}
	}
	s.Require().NotNil(lossFinding, "the loss is a finding with its outcome")
	s.Equal("succeeded: cause map-failed, 1 start(s)", lossFinding.Outcome)
}

func (s *ClusterSuite) TestHeapClimbingTickAfterTickRestartsThatBrokerOnce() {
	var rolls []workflows.RollingRestartInput
	s.env.OnWorkflow(workflows.RollingRestartWorkflow, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in workflows.RollingRestartInput) (workflows.RollingRestartResult, error) {
			rolls = append(rolls, in)
			return workflows.RollingRestartResult{}, workflow.Sleep(ctx, 5*time.Minute)
		})
	stubTicks(s, func(tick int, rep *fleet.HealthReport) {
		// Broker 1 leaks 5% of its heap a minute until the restart.
		if len(rolls) == 0 {
			rep.Brokers[0].Heap.Used = int64(float64(rep.Brokers[0].Heap.Max) * (0.3 + 0.05*float64(tick)))
		}
	})
	var final workflows.ClusterStatus
	s.statusAt(time.Hour, &final)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 2*time.Hour)

	s.run(workflows.ClusterInput{Spec: testSpec()})

	s.Require().Len(rolls, 1, "one restart, before the heap fills")
	s.Equal([]int32{1}, rolls[0].Brokers)
	s.Equal("kfleet-health", rolls[0].RequestedBy)
	s.Require().Len(final.History, 1)
	s.Contains(final.History[0].Reason, "climbing")
	s.Equal(workflows.FindingHeap, final.Health.Findings[0].Kind)
	s.Equal(workflows.StatusSucceeded, final.Health.Findings[0].Outcome)
}

func (s *ClusterSuite) TestDeadCleanerBecomesACleanerOperation() {
	var checks []workflows.CleanerHealthInput
	s.env.OnWorkflow(workflows.CleanerHealthWorkflow, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in workflows.CleanerHealthInput) (workflows.CleanerHealthResult, error) {
			checks = append(checks, in)
			return workflows.CleanerHealthResult{Unhealthy: []workflows.CleanerFinding{{Broker: 2, Reason: "dead"}}, Restarted: []int32{2}},
				workflow.Sleep(ctx, 3*time.Minute)
		})
	stubTicks(s, func(tick int, rep *fleet.HealthReport) {
		if tick >= 2 && len(checks) == 0 {
			rep.Brokers[1].Cleaner = fleet.CleanerHealth{DeadThreads: 1, SinceLastRun: 5 * time.Minute}
		}
	})
	var final workflows.ClusterStatus
	s.statusAt(time.Hour, &final)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 2*time.Hour)

	s.run(workflows.ClusterInput{Spec: testSpec()})

	s.Require().Len(checks, 1)
	s.Equal([]int32{2}, checks[0].Brokers)
	s.Require().Len(final.History, 1)
	s.Equal(workflows.OpCleanerHealth, final.History[0].Kind)
	s.Equal("restarted [2], cleaners healthy again", final.History[0].Outcome)
}

func (s *ClusterSuite) TestFillingDiskIsExpandedThenEscalatedOncePerCooldown() {
	var expansions []workflows.VolumeExpansionInput
	s.env.OnWorkflow(workflows.VolumeExpansionWorkflow, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in workflows.VolumeExpansionInput) (workflows.VolumeExpansionResult, error) {
			expansions = append(expansions, in)
			res := workflows.VolumeExpansionResult{Broker: in.Broker, VolumeID: "vol-3"}
			if in.CooldownUntil.IsZero() {
				res.Outcome, res.FromGiB, res.ToGiB, res.CooldownUntil = workflows.ExpansionExpanded, 100, 110, workflow.Now(ctx).Add(6*time.Hour)
			} else {
				res.Outcome, res.FromGiB, res.CooldownUntil = workflows.ExpansionEscalated, 110, in.CooldownUntil
			}
			return res, nil
		})
	// Broker 3's disk: 85% at tick 2; after the expansion (to 110 GiB) it
	// keeps filling past 90%.
	stubTicks(s, func(tick int, rep *fleet.HealthReport) {
		b := &rep.Brokers[2]
		switch {
		case tick < 2:
		case len(expansions) == 0:
			b.Disk.UsedBytes = b.Disk.SizeBytes * 85 / 100
		default:
			b.Disk.SizeBytes = 110 << 30
			b.Disk.UsedBytes = b.Disk.SizeBytes * int64(min(88+tick/5, 99)) / 100
		}
	})
	var final workflows.ClusterStatus
	s.statusAt(3*time.Hour, &final)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, 4*time.Hour)

	s.run(workflows.ClusterInput{Spec: testSpec()})

	s.Require().Len(expansions, 2, "one expansion, then one escalation in its cool-down, no more")
	s.Equal(int32(3), expansions[0].Broker)
	s.True(expansions[0].CooldownUntil.IsZero())
	s.False(expansions[1].CooldownUntil.IsZero(), "the escalation knows the recorded cool-down")
	bs := final.Health.Brokers[2]
	s.Require().NotNil(bs.Cooldown, "the cool-down is recorded in the entity")
	s.Equal("vol-3", bs.Cooldown.VolumeID)
	s.Equal(int32(110), bs.Cooldown.SizeGiB)
	s.False(bs.Escalated.IsZero())
	s.Require().Len(final.History, 2)
	s.Equal("expanded 100 -> 110 GiB", final.History[0].Outcome)
	s.Contains(final.History[1].Outcome, workflows.ExpansionEscalated)
}

func (s *ClusterSuite) TestHealthLoopCanBeDisabled() {
	calls := 0
	s.env.OnActivity(acts.CheckHealth, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.HealthInput) (fleet.HealthReport, error) {
		calls++
		return healthyReport(in.Spec, s.env.Now()), nil
	}).Maybe()
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Hour)
	spec := testSpec()
	spec.Health.Disabled = true

	s.run(workflows.ClusterInput{Spec: spec})

	s.Zero(calls)
}

func (s *ClusterSuite) TestOperatorRequestsExpansionCleanerCheckAndHealthCheck() {
	var expansions []workflows.VolumeExpansionInput
	s.env.OnWorkflow(workflows.VolumeExpansionWorkflow, mock.Anything, mock.Anything).Return(
		func(ctx workflow.Context, in workflows.VolumeExpansionInput) (workflows.VolumeExpansionResult, error) {
			expansions = append(expansions, in)
			return workflows.VolumeExpansionResult{Broker: in.Broker, Outcome: workflows.ExpansionExpanded, VolumeID: "vol-2",
				FromGiB: 100, ToGiB: 110, CooldownUntil: workflow.Now(ctx).Add(6 * time.Hour)}, nil
		})
	var cleanerChecks []workflows.CleanerHealthInput
	s.env.OnWorkflow(workflows.CleanerHealthWorkflow, mock.Anything, mock.Anything).Return(
		func(_ workflow.Context, in workflows.CleanerHealthInput) (workflows.CleanerHealthResult, error) {
			cleanerChecks = append(cleanerChecks, in)
			return workflows.CleanerHealthResult{}, nil
		})
	diskFull := false // broker 3's disk, from the health check on
	stubTicks(s, func(_ int, rep *fleet.HealthReport) {
		if diskFull {
			rep.Brokers[2].Disk.UsedBytes = rep.Brokers[2].Disk.SizeBytes * 85 / 100
		}
	})
	var expand, again, unknown, cleaner answer
	s.update(time.Minute+time.Second, workflows.UpdateRequest, expansionReq("alice", 2), &expand)
	s.update(10*time.Minute, workflows.UpdateRequest, expansionReq("alice", 2), &again)
	s.update(10*time.Minute, workflows.UpdateRequest, expansionReq("alice", 7), &unknown)
	s.update(11*time.Minute, workflows.UpdateRequest, cleanerReq("bob"), &cleaner)
	var check workflows.HealthCheckResult
	var checkErr error
	s.env.RegisterDelayedCallback(func() {
		diskFull = true
		s.env.UpdateWorkflow(workflows.UpdateHealthCheck, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { checkErr = err },
			OnComplete: func(v any, err error) { checkErr = err; check, _ = v.(workflows.HealthCheckResult) },
		}, workflows.HealthCheckRequest{RequestedBy: "sweep"})
	}, 12*time.Minute+10*time.Second)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Hour)

	s.run(workflows.ClusterInput{Spec: testSpec()})

	s.Require().NoError(expand.err)
	s.Require().Len(expansions, 2, "alice's, then the one the health check found")
	s.Equal(int32(2), expansions[0].Broker)
	s.True(expansions[0].Requested, "an operator's expansion grows the volume even below the threshold")
	s.Equal(int32(3), expansions[1].Broker)
	s.False(expansions[1].Requested)
	s.Require().Error(again.err, "a second expansion inside the cool-down is refused")
	s.Contains(again.err.Error(), "EBS allows the next change at")
	s.Require().Error(unknown.err)
	s.Contains(unknown.err.Error(), "broker 7 is not in cluster test-a")
	s.Require().NoError(cleaner.err)
	s.Len(cleanerChecks, 1)
	s.Require().NoError(checkErr)
	s.Require().Len(check.Findings, 1, "the tick asked for finds broker 3's disk")
	s.Equal(workflows.FindingDisk, check.Findings[0].Kind)
	s.Equal(int32(3), check.Findings[0].Broker)
}

func (s *ClusterSuite) TestZooKeeperTroubleIsReportedOncePerChange() {
	var pages []activities.Notification
	s.env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, n activities.Notification) error {
		pages = append(pages, n)
		return nil
	})
	stubTicks(s, func(tick int, rep *fleet.HealthReport) {
		rep.ZooKeeper = []fleet.ZooKeeperServer{{Address: "zk1:2181", OK: true, Mode: "leader", Followers: 2, SyncedFollowers: 2},
			{Address: "zk2:2181", OK: true, Mode: "follower"}, {Address: "zk3:2181", OK: true, Mode: "follower"}}
		switch {
		case tick >= 2 && tick < 6:
			rep.ZooKeeper[2] = fleet.ZooKeeperServer{Address: "zk3:2181", Error: "ruok: connection refused"}
		case tick >= 6:
			rep.ZooKeeper[0].SyncedFollowers, rep.ZooKeeper[0].Warning = 1, "leader: 1 of 2 followers in sync"
		}
	})
	var final workflows.ClusterStatus
	s.statusAt(20*time.Minute, &final)
	s.env.RegisterDelayedCallback(s.env.CancelWorkflow, time.Hour)

	s.run(workflows.ClusterInput{Spec: testSpec()})

	var zk []workflows.Finding
	for _, f := range final.Health.Findings {
		if f.Kind == workflows.FindingZooKeeper {
			zk = append(zk, f)
		}
	}
	s.Require().Len(zk, 2, "one finding per change, not one per tick")
	s.Contains(zk[0].Reason, "zk3:2181 not answering")
	s.Contains(zk[1].Reason, "zk1:2181 degraded (leader: 1 of 2 followers in sync)")
	s.Len(pages, 2)
	s.Empty(final.Queue, "reported, no operation")
}
