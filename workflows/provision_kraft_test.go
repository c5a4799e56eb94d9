package workflows_test

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/stretchr/testify/mock"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/workflows"
)

func kraftPlan() fleet.ClusterPlan {
	p := testPlan()
	p.Brokers, p.KafkaVersion, p.KRaft = 3, "4.0.0", &fleet.KRaftPlan{Controllers: 3}
	return p
}

// kraftRecord is what the KRaft activities were asked.
type kraftRecord struct {
	controllers []activities.ControllerNodeInput
	ctlStarts   []int32
	quorum      []activities.QuorumFormedInput
	verified    *activities.KRaftVerifyInput
	// failConfigure fails controller 3001's configuration while above 0.
	failConfigure int
}

// kraftMocks answers the KRaft provisioning's activities.
func (s *ProvisionSuite) kraftMocks(r *kraftRecord) {
	s.env.OnActivity(acts.ConfigureControllerNode, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ControllerNodeInput) (string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		r.controllers = append(r.controllers, in)
		if r.failConfigure > 0 && in.NodeID == 3001 {
			r.failConfigure--
			return "", temporal.NewNonRetryableApplicationError("log directory formatted with another node id", activities.ErrTypeBadInput, nil)
		}
		return fmt.Sprintf("127.0.0.1:%d", 20000+in.NodeID), nil
	}).Maybe()
	s.env.OnActivity(acts.StartControllerHost, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ControllerNodeInput) error {
		s.mu.Lock()
		defer s.mu.Unlock()
		r.ctlStarts = append(r.ctlStarts, in.NodeID)
		return nil
	}).Maybe()
	s.env.OnActivity(acts.WaitQuorumFormed, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.QuorumFormedInput) (activities.QuorumFormed, error) {
		r.quorum = append(r.quorum, in)
		return activities.QuorumFormed{Leader: 3000, Epoch: 1, Voters: 3, CaughtUp: 3}, nil
	}).Maybe()
	s.env.OnActivity(acts.VerifyKRaftProvisioned, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.KRaftVerifyInput) (fleet.ClusterSpec, error) {
		r.verified = &in
		spec := fleet.ClusterSpec{ID: in.Plan.ID, KRaft: &fleet.KRaftSpec{Mode: fleet.ModeKRaft, QuorumBootstrap: in.QuorumBootstrap, MetadataVersion: in.MetadataVersion}}
		for _, id := range in.Plan.ControllerIDs() {
			spec.KRaft.Controllers = append(spec.KRaft.Controllers, fleet.ControllerSpec{ID: id, InstanceID: in.Controllers[id].ID})
		}
		for _, id := range in.Plan.BrokerIDs() {
			spec.Bootstrap = append(spec.Bootstrap, fmt.Sprintf("10.0.6.%d:9092", id))
			spec.Brokers = append(spec.Brokers, fleet.BrokerSpec{ID: id, InstanceID: in.Hosts[id].ID})
		}
		return spec, nil
	}).Maybe()
}

// A KRaft plan: controllers' hosts over the zones and no ensemble; every
// controller configured with the same voters, cluster id and
// metadata.version, and started; the quorum waited for through the
// addresses they printed; brokers configured with the voters and the
// cluster id (no ZooKeeper); a KRaft spec registered.
func (s *ProvisionSuite) TestProvisionsKRaftCluster() {
	r := &kraftRecord{}
	s.kraftMocks(r)
	plan := kraftPlan()
	s.env.ExecuteWorkflow(workflows.ProvisionClusterWorkflow, workflows.ProvisionInput{Plan: plan, RequestedBy: "alice"})
	s.Require().True(s.env.IsWorkflowCompleted())
	s.Require().NoError(s.env.GetWorkflowError())
	var res workflows.ProvisionResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal(6, res.Hosts, "3 controllers and 3 brokers")
	s.Empty(res.ZooKeeper)
	s.Equal([]string{"127.0.0.1:23000", "127.0.0.1:23001", "127.0.0.1:23002"}, res.QuorumBootstrap)

	zones := map[string]string{}
	for _, l := range s.launches {
		s.NotEqual(cloud.RoleZooKeeper, l.Role, "a KRaft cluster has no ensemble")
		zones[fmt.Sprintf("%s%d", l.Role, l.N)] = l.AZ
	}
	s.Equal(map[string]string{"broker1": "us-east-1a", "broker2": "us-east-1b", "broker3": "us-east-1c",
		"controller3000": "us-east-1a", "controller3001": "us-east-1b", "controller3002": "us-east-1c"}, zones)
	s.Empty(s.zkServers)

	s.Require().Len(r.controllers, 3)
	voters := "3000@10.0.10.3000:9093,3001@10.0.10.3001:9093,3002@10.0.10.3002:9093"
	id := r.controllers[0].KafkaClusterID
	s.Len(id, 22, "a Kafka cluster id is a base64 UUID")
	for _, c := range r.controllers {
		s.Equal(voters, c.QuorumVoters)
		s.Equal(id, c.KafkaClusterID, "one cluster id for every node")
		s.Equal("4.0-IV3", c.MetadataVersion, "the latest level 4.0 supports")
		s.Equal(plan.ControllerZone(c.NodeID), c.Rack)
	}
	slices.Sort(r.ctlStarts)
	s.Equal([]int32{3000, 3001, 3002}, r.ctlStarts)
	s.Require().Len(r.quorum, 1)
	s.Equal([]int32{3000, 3001, 3002}, r.quorum[0].Voters)
	s.Equal(res.QuorumBootstrap, r.quorum[0].QuorumBootstrap)
	s.Require().Len(s.configs, 3)
	for _, c := range s.configs {
		s.Empty(c.ZooKeeper)
		s.Equal(voters, c.QuorumVoters)
		s.Equal(id, c.KafkaClusterID)
	}
	s.Require().NotNil(r.verified)
	s.Require().NotNil(s.spec)
	s.Equal(fleet.ModeKRaft, s.spec.Mode())
	s.Equal([]int32{3000, 3001, 3002}, s.spec.ControllerIDs())
	s.Equal(workflows.PhaseDone, s.progress().Phase)
	s.Contains(workflows.ProvisionLines(s.progress())[0], "6 host(s) launched, 3 volume(s), 3/3 controller(s) started, 3/3 broker(s) started")
}

// A controller whose configuration fails pauses the provisioning; resume
// configures it again with the same cluster id, and nothing is launched
// or configured twice.
func (s *ProvisionSuite) TestKRaftResumeKeepsTheClusterID() {
	r := &kraftRecord{failConfigure: 1}
	s.kraftMocks(r)
	var paused workflows.ProvisionProgress
	s.env.RegisterDelayedCallback(func() { paused = s.progress() }, time.Minute)
	s.decide(2*time.Minute, workflows.DecisionResume)
	s.env.ExecuteWorkflow(workflows.ProvisionClusterWorkflow, workflows.ProvisionInput{Plan: kraftPlan(), RequestedBy: "alice"})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Require().NotNil(paused.Paused)
	s.Equal(workflows.PhaseControllers, paused.Paused.Step)
	s.Contains(paused.Paused.Reason, "controller 3001: log directory formatted with another node id")
	s.Len(s.launches, 6, "no host launched twice")
	s.Require().Len(r.controllers, 4, "controller 3001 configured twice, the others once")
	for _, c := range r.controllers {
		s.Equal(r.controllers[0].KafkaClusterID, c.KafkaClusterID)
	}
	s.Len(r.ctlStarts, 3, "each controller started once")
	s.NotNil(s.spec)
}

// Undoing a KRaft provisioning terminates its brokers' hosts, then its
// controllers', then deletes its volumes: no chroot, no ensemble.
func (s *ProvisionSuite) TestKRaftUndoTerminatesControllers() {
	r := &kraftRecord{failConfigure: 1}
	s.kraftMocks(r)
	s.decide(2*time.Minute, workflows.DecisionUndo)
	plan := kraftPlan()
	s.env.ExecuteWorkflow(workflows.ProvisionClusterWorkflow, workflows.ProvisionInput{Plan: plan, RequestedBy: "alice"})
	var appErr *temporal.ApplicationError
	s.Require().ErrorAs(s.env.GetWorkflowError(), &appErr)
	s.Equal(workflows.ErrTypeProvisionUndone, appErr.Type())
	fp := plan.Fingerprint()
	s.Equal([]string{"hosts:" + cloud.RoleBroker + ":" + fp, "hosts:" + cloud.RoleController + ":" + fp, "volumes:" + fp}, s.removed)
	s.Nil(s.spec)
}

// A KRaft plan invalid on its face (4 controllers, a level the release
// does not support) launches nothing.
func (s *ProvisionSuite) TestKRaftPlanRefusedOnItsFace() {
	plan := kraftPlan()
	plan.KRaft.Controllers, plan.KRaft.MetadataVersion = 4, "4.1-IV0"
	s.env.ExecuteWorkflow(workflows.ProvisionClusterWorkflow, workflows.ProvisionInput{Plan: plan, RequestedBy: "alice"})
	err := s.env.GetWorkflowError()
	s.Require().ErrorContains(err, "kraft.controllers 4: want 3 or 5")
	s.Require().ErrorContains(err, "Kafka 4.0.0 does not support it")
	s.Empty(s.launches)
}

// A ZooKeeper plan's provisioning records the commands it did before
// KRaft plans existed: it never asks for the KRaft version.
func (s *ProvisionSuite) TestZooKeeperPlanAsksNoKRaftVersion() {
	s.env.OnGetVersion(workflows.VersionProvisionKRaft, workflow.DefaultVersion, 1).Never()
	s.env.ExecuteWorkflow(workflows.ProvisionClusterWorkflow, workflows.ProvisionInput{Plan: testPlan(), RequestedBy: "alice"})
	s.Require().NoError(s.env.GetWorkflowError())
	s.NotNil(s.spec)
}
