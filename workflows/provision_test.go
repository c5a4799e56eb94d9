package workflows_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/suite"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

type ProvisionSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment

	mu        sync.Mutex
	launches  []activities.HostInput
	volumes   []activities.VolumeInput
	attached  []int32
	zkServers []string
	configs   []activities.BrokerHostInput
	starts    []int32
	verified  *activities.VerifyInput
	spec      *fleet.ClusterSpec
	removed   []string
	// failStart fails broker starts while it is above zero.
	failStart int
	// refusals are what the account's check answers.
	refusals []string
}

func TestProvision(t *testing.T) { suite.Run(t, new(ProvisionSuite)) }

func testPlan() fleet.ClusterPlan {
	return fleet.ClusterPlan{ID: "orders", Brokers: 4, AvailabilityZones: []string{"us-east-1a", "us-east-1b", "us-east-1c"}, KafkaVersion: "3.7.1"}
}

func (s *ProvisionSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.env.SetTestTimeout(time.Minute)
	s.launches, s.volumes, s.attached, s.zkServers, s.configs, s.starts, s.verified, s.spec, s.removed, s.failStart =
		nil, nil, nil, nil, nil, nil, nil, nil, nil, 0
	s.refusals = nil
	s.env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(nil).Maybe()
	s.env.OnActivity(acts.CheckProvisionPlan, mock.Anything, mock.Anything).Return(func(context.Context, fleet.ClusterPlan) (activities.PlanCheck, error) {
		return activities.PlanCheck{Refusals: s.refusals}, nil
	}).Maybe()
	s.env.OnActivity(acts.LaunchHost, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.HostInput) (activities.ProvisionedHost, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.launches = append(s.launches, in)
		return activities.ProvisionedHost{ID: fmt.Sprintf("i-%s%d", in.Role[:1], in.N), AZ: in.AZ, PrivateIP: fmt.Sprintf("10.0.%d.%d", len(in.Role), in.N)}, nil
	}).Maybe()
	s.env.OnActivity(acts.ProvisionDataVolume, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.VolumeInput) (string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.volumes = append(s.volumes, in)
		return fmt.Sprintf("vol-%d", in.Broker), nil
	}).Maybe()
	s.env.OnActivity(acts.AttachProvisionedVolume, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ProvisionAttachInput) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.attached = append(s.attached, in.Broker)
		return nil
	}).Maybe()
	s.env.OnActivity(acts.ConfigureZooKeeperNode, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ZooKeeperNodeInput) (string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.zkServers = append(s.zkServers, in.Servers)
		return fmt.Sprintf("10.0.9.%d:2181", in.MyID), nil
	}).Maybe()
	s.env.OnActivity(acts.CheckEnsemble, mock.Anything, mock.Anything).Return(nil).Maybe()
	s.env.OnActivity(acts.ConfigureBrokerHost, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BrokerHostInput) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.configs = append(s.configs, in)
		return nil
	}).Maybe()
	s.env.OnActivity(acts.StartBrokerHost, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BrokerHostInput) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.failStart > 0 && in.Broker == 2 {
			s.failStart--
			return temporal.NewNonRetryableApplicationError("kafka 3.7.1 is not installed at /opt/kafka_3.7.1", activities.ErrTypeBadInput, nil)
		}
		s.starts = append(s.starts, in.Broker)
		return nil
	}).Maybe()
	s.env.OnActivity(acts.VerifyProvisioned, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.VerifyInput) (fleet.ClusterSpec, error) {
		s.verified = &in
		spec := fleet.ClusterSpec{ID: in.Plan.ID, ZooKeeper: in.ZooKeeper}
		for _, id := range in.Plan.BrokerIDs() {
			spec.Bootstrap = append(spec.Bootstrap, fmt.Sprintf("10.0.6.%d:9092", id))
			spec.Brokers = append(spec.Brokers, fleet.BrokerSpec{ID: id, InstanceID: in.Hosts[id].ID, Rack: in.Plan.BrokerZone(id)})
		}
		return spec, nil
	}).Maybe()
	s.env.OnActivity(acts.RegisterProvisioned, mock.Anything, mock.Anything).Return(func(_ context.Context, spec fleet.ClusterSpec) error {
		s.spec = &spec
		return nil
	}).Maybe()
	s.env.OnActivity(acts.TerminateHosts, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RemoveInput) (activities.Removed, error) {
		s.removed = append(s.removed, "hosts:"+in.Role+":"+in.Plan)
		return activities.Removed{Removed: 3}, nil
	}).Maybe()
	s.env.OnActivity(acts.RemoveChroot, mock.Anything, mock.Anything).Return(func(_ context.Context, spec fleet.ClusterSpec) (int, error) {
		s.removed = append(s.removed, "chroot:"+spec.ZooKeeper)
		return 5, nil
	}).Maybe()
	s.env.OnActivity(acts.DeleteDataVolumes, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RemoveInput) (activities.Removed, error) {
		s.removed = append(s.removed, "volumes:"+in.Plan)
		return activities.Removed{Removed: 4}, nil
	}).Maybe()
}

func (s *ProvisionSuite) progress() workflows.ProvisionProgress {
	v, err := s.env.QueryWorkflow(workflows.QueryProgress)
	s.Require().NoError(err)
	var p workflows.ProvisionProgress
	s.Require().NoError(v.Get(&p))
	return p
}

func (s *ProvisionSuite) decide(at time.Duration, action string) {
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(workflows.UpdateDecide, "", &testsuite.TestUpdateCallback{
			OnAccept: func() {}, OnReject: func(err error) { s.Fail("decision refused", err.Error()) }, OnComplete: func(any, error) {},
		}, workflows.Decision{Action: action, By: "bob"})
	}, at)
}

// A plan becomes hosts round-robin over its zones, a data volume per
// broker attached to its host, a 3-node ensemble whose connect string (with
// the chroot) every broker gets, brokers started on the plan's version, a
// verification and the entity's registration.
func (s *ProvisionSuite) TestProvisionsAndRegisters() {
	plan := testPlan()
	s.env.ExecuteWorkflow(workflows.ProvisionClusterWorkflow, workflows.ProvisionInput{Plan: plan, RequestedBy: "alice"})
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.ProvisionResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))

	s.Equal(7, res.Hosts, "4 brokers and 3 ZooKeeper nodes")
	s.Equal(4, res.Volumes)
	zones := map[string]string{}
	tokens := map[string]bool{}
	for _, l := range s.launches {
		zones[fmt.Sprintf("%s%d", l.Role, l.N)] = l.AZ
		s.Equal(plan.Fingerprint(), l.Plan)
		s.False(tokens[l.Token], "one token per host: %s", l.Token)
		tokens[l.Token] = true
		s.LessOrEqual(len(l.Token), 64)
		s.True(strings.HasPrefix(l.Token, "orders-"), l.Token)
		s.Contains(l.RequestedBy, "requested by alice")
	}
	s.Equal(map[string]string{
		"broker1": "us-east-1a", "broker2": "us-east-1b", "broker3": "us-east-1c", "broker4": "us-east-1a",
		"zookeeper1": "us-east-1a", "zookeeper2": "us-east-1b", "zookeeper3": "us-east-1c",
	}, zones)
	for _, v := range s.volumes {
		s.Equal(int32(500), v.SizeGiB, "the plan's default volume")
		s.Equal(plan.BrokerZone(v.Broker), v.AZ, "a volume in its host's zone")
	}
	slices.Sort(s.attached)
	s.Equal([]int32{1, 2, 3, 4}, s.attached)
	s.Require().Len(s.zkServers, 3)
	for _, sv := range s.zkServers {
		s.Equal("1=10.0.9.1,2=10.0.9.2,3=10.0.9.3", sv, "every node knows the whole ensemble")
	}
	connect := "10.0.9.1:2181,10.0.9.2:2181,10.0.9.3:2181/kfleet/orders"
	s.Require().Len(s.configs, 4)
	for _, c := range s.configs {
		s.Equal(connect, c.ZooKeeper)
		s.Equal(plan.BrokerZone(c.Broker), c.Rack)
		s.Equal(fmt.Sprintf("vol-%d", c.Broker), c.VolumeID)
	}
	slices.Sort(s.starts)
	s.Equal([]int32{1, 2, 3, 4}, s.starts)
	s.Require().NotNil(s.verified)
	s.Equal(connect, s.verified.ZooKeeper)
	s.Require().NotNil(s.spec, "the entity is registered")
	s.Equal("orders", s.spec.ID)
	s.Len(s.spec.Brokers, 4)
	s.Equal(connect, res.ZooKeeper)
	s.Equal(workflows.PhaseDone, s.progress().Phase)
}

// A plan refused by the account's check launches nothing and says why.
func (s *ProvisionSuite) TestRefusedPlanLaunchesNothing() {
	s.refusals = []string{`availability zone "us-east-1z": unknown to EC2 here`}
	s.env.ExecuteWorkflow(workflows.ProvisionClusterWorkflow, workflows.ProvisionInput{Plan: testPlan(), RequestedBy: "alice"})
	err := s.env.GetWorkflowError()
	s.Require().Error(err)
	var appErr *temporal.ApplicationError
	s.Require().ErrorAs(err, &appErr)
	s.Equal(workflows.ErrTypeProvisionRefused, appErr.Type())
	s.Contains(appErr.Message(), "nothing was launched")
	s.Contains(appErr.Message(), "us-east-1z")
	s.Empty(s.launches)
	s.Empty(s.volumes)
}

// A plan invalid on its face is refused without asking EC2.
func (s *ProvisionSuite) TestInvalidPlanRefusedOnItsFace() {
	plan := testPlan()
	plan.Brokers = 2
	s.env.ExecuteWorkflow(workflows.ProvisionClusterWorkflow, workflows.ProvisionInput{Plan: plan, RequestedBy: "alice"})
	s.Require().ErrorContains(s.env.GetWorkflowError(), "fewer than the default replication factor 3")
	s.Empty(s.launches)
}

// A step that fails for good pauses for a human; resume retries only that
// step — nothing launched is launched again.
func (s *ProvisionSuite) TestFailedStepPausesAndResumeRetriesOnlyIt() {
	s.failStart = 1
	var paused workflows.ProvisionProgress
	s.env.RegisterDelayedCallback(func() { paused = s.progress() }, time.Minute)
	s.decide(2*time.Minute, workflows.DecisionResume)
	s.env.ExecuteWorkflow(workflows.ProvisionClusterWorkflow, workflows.ProvisionInput{Plan: testPlan(), RequestedBy: "alice"})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Require().NotNil(paused.Paused, "paused for a human")
	s.Equal(workflows.PhaseBrokers, paused.Paused.Step)
	s.Contains(paused.Paused.Reason, "broker 2: kafka 3.7.1 is not installed")
	lines := workflows.ProvisionLines(paused)
	s.Contains(lines[len(lines)-1], "[decide: resume|undo|abort]")
	s.Len(s.launches, 7, "no host launched twice")
	s.Len(s.configs, 4, "no broker configured twice")
	slices.Sort(s.starts)
	s.Equal([]int32{1, 2, 3, 4}, s.starts)
	s.NotNil(s.spec)
}

// Undo removes what the plan launched, by its tags, in order: brokers,
// the chroot, the ensemble, the volumes; nothing is registered.
func (s *ProvisionSuite) TestUndoRemovesWhatThePlanLaunched() {
	s.failStart = 1
	s.decide(2*time.Minute, workflows.DecisionUndo)
	plan := testPlan()
	s.env.ExecuteWorkflow(workflows.ProvisionClusterWorkflow, workflows.ProvisionInput{Plan: plan, RequestedBy: "alice"})
	err := s.env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	s.Require().ErrorAs(err, &appErr)
	s.Equal(workflows.ErrTypeProvisionUndone, appErr.Type())
	fp := plan.Fingerprint()
	s.Equal([]string{"hosts:" + cloud.RoleBroker + ":" + fp, "chroot:10.0.9.1:2181,10.0.9.2:2181,10.0.9.3:2181/kfleet/orders",
		"hosts:" + cloud.RoleZooKeeper + ":" + fp, "volumes:" + fp}, s.removed)
	s.Nil(s.spec, "nothing registered")
}

// Abort leaves everything as it is and says how to go on.
func (s *ProvisionSuite) TestAbortLeavesItAsItIs() {
	s.failStart = 1
	s.decide(2*time.Minute, workflows.DecisionAbort)
	s.env.ExecuteWorkflow(workflows.ProvisionClusterWorkflow, workflows.ProvisionInput{Plan: testPlan(), RequestedBy: "alice"})
	err := s.env.GetWorkflowError()
	var appErr *temporal.ApplicationError
	s.Require().ErrorAs(err, &appErr)
	s.Equal(workflows.ErrTypeAbortedByHuman, appErr.Type())
	s.Contains(appErr.Message(), "a create of the same plan adopts it")
	s.Empty(s.removed)
}
