package workflows_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

type VolumeExpansionSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env       *testsuite.TestWorkflowEnvironment
	calls     []string
	expandTo  []int32
	throttled []activities.ThrottleInput
	notes     []activities.Notification
}

func TestVolumeExpansion(t *testing.T) { suite.Run(t, new(VolumeExpansionSuite)) }

const gib = int64(1) << 30

func (s *VolumeExpansionSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.calls, s.expandTo, s.throttled, s.notes = nil, nil, nil, nil
	s.env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(func(_ context.Context, n activities.Notification) error {
		s.notes = append(s.notes, n)
		return nil
	}).Maybe()
	s.env.OnActivity(acts.WaitVolumeModification, mock.Anything, mock.Anything).Return(func(context.Context, activities.BrokerInput) (string, error) {
		s.calls = append(s.calls, "wait")
		return "optimizing", nil
	}).Maybe()
	s.env.OnActivity(acts.GrowFilesystem, mock.Anything, mock.Anything).Return(func(context.Context, activities.ExpandInput) error {
		s.calls = append(s.calls, "grow")
		return nil
	}).Maybe()
	s.env.OnActivity(acts.VerifyFilesystem, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ExpandInput) (fleet.DiskUsage, error) {
		s.calls = append(s.calls, "verify")
		return fleet.DiskUsage{SizeBytes: int64(in.TargetGiB) * gib, UsedBytes: 85 * gib}, nil
	}).Maybe()
	s.env.OnActivity(acts.ThrottleHeaviestProducers, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ThrottleInput) ([]activities.Throttle, error) {
		s.calls = append(s.calls, "throttle")
		s.throttled = append(s.throttled, in)
		return []activities.Throttle{{User: "wabash-58799", ObservedRate: 8 << 20, QuotaBytesPerSec: 4 << 20}}, nil
	}).Maybe()
}

// stubDisk answers DescribeDisk with the volume and filesystem given, and
// ExpandVolume with err (nil: accepted).
func (s *VolumeExpansionSuite) stubDisk(d activities.DiskState, expandErr error) {
	s.env.OnActivity(acts.DescribeDisk, mock.Anything, mock.Anything).Return(d, nil)
	s.env.OnActivity(acts.ExpandVolume, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ExpandInput) (activities.VolumeChange, error) {
		s.calls = append(s.calls, "modify")
		s.expandTo = append(s.expandTo, in.TargetGiB)
		if expandErr != nil {
			return activities.VolumeChange{}, expandErr
		}
		return activities.VolumeChange{VolumeID: d.VolumeID, FromGiB: d.SizeGiB, ToGiB: in.TargetGiB}, nil
	}).Maybe()
}

func disk(sizeGiB int32, usedGiB int64) activities.DiskState {
	return activities.DiskState{VolumeID: "vol-2", SizeGiB: sizeGiB,
		Filesystem: fleet.DiskUsage{SizeBytes: int64(sizeGiB) * gib, UsedBytes: usedGiB * gib}}
}

func (s *VolumeExpansionSuite) result() workflows.VolumeExpansionResult {
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.VolumeExpansionResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	return res
}

func expansionInput(growth float64) workflows.VolumeExpansionInput {
	return workflows.VolumeExpansionInput{Spec: testSpec(), Broker: 2, OperationID: "op-7", RequestedBy: "kfleet-health", GrowthBytesPerSec: growth}
}

func (s *VolumeExpansionSuite) TestExpansionIsSizedForTheCooldownAndGrownOnline() {
	s.stubDisk(disk(100, 85), nil)
	s.env.ExecuteWorkflow(workflows.VolumeExpansionWorkflow, expansionInput(1<<20))

	res := s.result()
	s.Equal(workflows.ExpansionExpanded, res.Outcome)
	s.Equal([]string{"modify", "wait", "grow", "verify"}, s.calls)
	// 85 GiB + 1 MiB/s for 6 h = 106.1 GiB must stay under 80%.
	s.Equal([]int32{133}, s.expandTo)
	s.Equal(int32(100), res.FromGiB)
	s.Equal(int32(133), res.ToGiB)
	s.WithinDuration(s.env.Now().Add(6*time.Hour), res.CooldownUntil, time.Minute, "the six-hour cool-down is returned for the entity to record")
	s.Require().Len(s.notes, 1)
	s.Contains(s.notes[0].Text, "100 GiB -> 133 GiB")
}

func (s *VolumeExpansionSuite) TestNothingToDoWhenTheDiskIsFine() {
	s.stubDisk(disk(100, 50), nil)
	s.env.ExecuteWorkflow(workflows.VolumeExpansionWorkflow, expansionInput(0))

	res := s.result()
	s.Equal(workflows.ExpansionNotNeeded, res.Outcome)
	s.Empty(s.calls, "re-checked before acting: nothing modified")
}

func (s *VolumeExpansionSuite) TestInsideTheCooldownNoSecondModification() {
	d := disk(133, 110) // 82.7%: over 80, under 90
	d.Modification, d.ModificationStart = "optimizing", time.Now().Add(-2*time.Hour)
	s.stubDisk(d, nil)
	s.env.SetStartTime(time.Now())
	s.env.ExecuteWorkflow(workflows.VolumeExpansionWorkflow, expansionInput(1<<20))

	res := s.result()
	s.Equal(workflows.ExpansionDeferred, res.Outcome)
	s.Empty(s.calls, "no ModifyVolume inside the cool-down, no throttle under 90%")
	s.Contains(res.Reason, "modified less than 6h0m0s ago")
}

func (s *VolumeExpansionSuite) TestEscalatesAtNinetyPercentDuringTheCooldown() {
	s.stubDisk(disk(133, 122), nil) // 91.7%
	in := expansionInput(2 << 20)
	in.CooldownUntil = time.Now().Add(3 * time.Hour) // recorded by the entity
	s.env.SetStartTime(time.Now())
	s.env.ExecuteWorkflow(workflows.VolumeExpansionWorkflow, in)

	res := s.result()
	s.Equal(workflows.ExpansionEscalated, res.Outcome)
	s.Equal([]string{"throttle"}, s.calls, "throttled, never modified")
	s.Require().Len(s.throttled, 1)
	s.Equal(3, s.throttled[0].Max)
	s.InDelta(0.5, s.throttled[0].Factor, 0.001)
	s.Require().Len(res.Throttled, 1)
	s.Require().Len(s.notes, 1)
	s.Equal(activities.SeverityPage, s.notes[0].Severity)
	s.Contains(s.notes[0].Text, "wabash-58799")
}

func (s *VolumeExpansionSuite) TestCooldownUnknownToTheEntityIsLearntFromEBS() {
	s.stubDisk(disk(100, 92), temporal.NewNonRetryableApplicationError("VolumeModificationRateExceeded", activities.ErrTypeVolumeCooldown, nil))
	s.env.ExecuteWorkflow(workflows.VolumeExpansionWorkflow, expansionInput(0))

	res := s.result()
	s.Equal(workflows.ExpansionEscalated, res.Outcome, "92% and EBS refuses: escalate")
	s.Equal([]string{"modify", "throttle"}, s.calls, "one refused attempt, no retry")
	s.False(res.CooldownUntil.IsZero(), "the refusal's cool-down is recorded")
}
