package workflows_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
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

type ResizeSuite struct {
	suite.Suite
	testsuite.WorkflowTestSuite
	env *testsuite.TestWorkflowEnvironment
	mu  sync.Mutex
	// steps records the activities in the order they ran.
	steps []string
	// removal is what CheckBrokerRemoval answers (its error: refusal).
	removal    []activities.RemovalCheck
	refusal    error
	rebalances []activities.RebalanceInput
	// rebalanceErr fails the rebalance once.
	rebalanceErr error
}

func TestResize(t *testing.T) { suite.Run(t, new(ResizeSuite)) }

func (s *ResizeSuite) step(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps = append(s.steps, name)
}

func fourBrokers() fleet.ClusterSpec {
	spec := testSpec()
	spec.Brokers = append(spec.Brokers, fleet.BrokerSpec{ID: 4, InstanceID: "i-4"})
	return spec
}

func (s *ResizeSuite) SetupTest() {
	s.env = s.NewTestWorkflowEnvironment()
	s.steps, s.removal, s.refusal, s.rebalances, s.rebalanceErr = nil, nil, nil, nil, nil
	s.env.OnActivity(acts.Notify, mock.Anything, mock.Anything).Return(nil).Maybe()
	s.env.OnActivity(acts.CheckBrokerRemoval, mock.Anything, mock.Anything).Return(func(context.Context, activities.BrokerInput) (activities.RemovalCheck, error) {
		s.step("check")
		if s.refusal != nil {
			return activities.RemovalCheck{}, temporal.NewNonRetryableApplicationError(s.refusal.Error(), activities.ErrTypeBadInput, nil)
		}
		c := s.removal[0]
		if len(s.removal) > 1 {
			s.removal = s.removal[1:]
		}
		return c, nil
	}).Maybe()
	s.env.OnActivity(acts.Rebalance, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RebalanceInput) (activities.RebalanceResult, error) {
		s.step(fmt.Sprintf("rebalance leaving %v over %v", in.Leaving, in.Spec.BrokerIDs()))
		s.rebalances = append(s.rebalances, in)
		if err := s.rebalanceErr; err != nil {
			s.rebalanceErr = nil
			return activities.RebalanceResult{}, temporal.NewNonRetryableApplicationError(err.Error(), activities.ErrTypeGateHeld, nil)
		}
		return activities.RebalanceResult{Moved: 7, Copies: 7}, nil
	}).Maybe()
	s.env.OnActivity(acts.EndRebalance, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.EndRebalanceInput) (int, error) {
		s.step(fmt.Sprintf("end rebalance cancel=%v", in.Cancel))
		return 2, nil
	}).Maybe()
	s.env.OnActivity(acts.StopBroker, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BrokerInput) error {
		s.step(fmt.Sprintf("stop %d", in.Broker))
		return nil
	}).Maybe()
	s.env.OnActivity(acts.TerminateHosts, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RemoveInput) (activities.Removed, error) {
		s.step(fmt.Sprintf("terminate %s %d", in.Role, *in.Broker))
		return activities.Removed{Removed: 1}, nil
	}).Maybe()
	s.env.OnActivity(acts.DeleteDataVolumes, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.RemoveInput) (activities.Removed, error) {
		s.step(fmt.Sprintf("delete volume %d", *in.Broker))
		return activities.Removed{Removed: 1}, nil
	}).Maybe()
	s.env.OnActivity(acts.LeaveSpec, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.LeaveInput) (fleet.ClusterSpec, error) {
		s.step(fmt.Sprintf("leave spec %d %s", in.Broker, in.Address))
		return testSpec(), nil
	}).Maybe()
}

func removeInput(broker int32) workflows.ResizeInput {
	return workflows.ResizeInput{Spec: fourBrokers(), OperationID: "op-1", RequestedBy: "alice", Brokers: []int32{broker}}
}

// A removal drains the broker, checks it is empty, then stops it,
// terminates its host, deletes its volume and takes it out of the spec,
// in that order.
func (s *ResizeSuite) TestRemoveBrokerInOrder() {
	s.removal = []activities.RemovalCheck{{LargestRF: 3, Remaining: 3, Replicas: 9, Address: "127.0.0.1:9094"}, {LargestRF: 3, Remaining: 3, Address: "127.0.0.1:9094"}}
	s.env.ExecuteWorkflow(workflows.RemoveBrokerWorkflow, removeInput(4))
	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal([]string{"check", "rebalance leaving [4] over [1 2 3 4]", "check", "stop 4", "terminate broker 4", "delete volume 4", "leave spec 4 127.0.0.1:9094"}, s.steps)
	var res workflows.ResizeResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Require().NotNil(res.Removed)
	s.Equal(int32(4), *res.Removed)
	s.Equal(7, res.Moves.Moved)
}

// Refused (too few brokers would remain), it touches nothing.
func (s *ResizeSuite) TestRemoveBrokerRefusedTouchesNothing() {
	s.refusal = errors.New("removing broker 4 would leave 3 broker(s), fewer than the largest replication factor (4)")
	s.env.ExecuteWorkflow(workflows.RemoveBrokerWorkflow, removeInput(4))
	s.Require().ErrorContains(s.env.GetWorkflowError(), "fewer than the largest replication factor")
	s.Equal([]string{"check"}, s.steps)
}

// A broker still holding replicas after the drain is not stopped: a human
// decides, and abort leaves it running.
func (s *ResizeSuite) TestRemoveBrokerNotEmptyPausesBeforeStopping() {
	s.removal = []activities.RemovalCheck{{LargestRF: 3, Remaining: 3, Replicas: 9}, {LargestRF: 3, Remaining: 3, Replicas: 1}}
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(workflows.UpdateDecide, "abort-1", &testsuite.TestUpdateCallback{OnReject: func(err error) { s.Fail("rejected", err) }},
			workflows.Decision{Action: workflows.DecisionAbort, By: "bob"})
	}, time.Minute)
	s.env.ExecuteWorkflow(workflows.RemoveBrokerWorkflow, removeInput(4))
	s.Require().ErrorContains(s.env.GetWorkflowError(), "aborted by bob")
	s.NotContains(s.steps, "stop 4")
	s.Equal("check", s.steps[len(s.steps)-1])
}

// A rebalance the availability gate held too long pauses; aborted, it
// cancels the moves under way and clears the throttles.
func (s *ResizeSuite) TestAbortedRebalanceCancelsMovesAndClearsThrottles() {
	s.rebalanceErr = errors.New("the availability gate held new moves for 30m0s")
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(workflows.UpdateDecide, "abort-1", &testsuite.TestUpdateCallback{OnReject: func(err error) { s.Fail("rejected", err) }},
			workflows.Decision{Action: workflows.DecisionAbort, By: "bob"})
	}, time.Minute)
	s.env.ExecuteWorkflow(workflows.RebalanceWorkflow, workflows.ResizeInput{Spec: testSpec(), OperationID: "op-1", RequestedBy: "alice",
		Move: workflows.MoveParams{ThrottleBytesPerSec: 1 << 20}})
	s.Require().ErrorContains(s.env.GetWorkflowError(), "aborted by bob")
	s.Equal([]string{"rebalance leaving [] over [1 2 3]", "end rebalance cancel=true"}, s.steps)
	s.Equal(int64(1<<20), s.rebalances[0].ThrottleBytesPerSec)
}

// Resumed, the rebalance runs again and finishes; nothing is cancelled.
func (s *ResizeSuite) TestResumedRebalanceRunsAgain() {
	s.rebalanceErr = errors.New("the availability gate held new moves for 30m0s")
	s.env.RegisterDelayedCallback(func() {
		s.env.UpdateWorkflow(workflows.UpdateDecide, "resume-1", &testsuite.TestUpdateCallback{OnReject: func(err error) { s.Fail("rejected", err) }},
			workflows.Decision{Action: workflows.DecisionResume, By: "bob"})
	}, time.Minute)
	s.env.ExecuteWorkflow(workflows.RebalanceWorkflow, workflows.ResizeInput{Spec: testSpec(), OperationID: "op-1", RequestedBy: "alice"})
	s.Require().NoError(s.env.GetWorkflowError())
	s.Equal([]string{"rebalance leaving [] over [1 2 3]", "rebalance leaving [] over [1 2 3]"}, s.steps)
}

// An addition plans, launches each new broker's host and volume and
// attaches it, configures and starts Kafka there, checks the brokers in
// and adds them to the spec, and only then moves partitions — over the
// spec with the new brokers.
func (s *ResizeSuite) TestAddBrokersInOrder() {
	plan := activities.GrowPlan{Brokers: []activities.NewBroker{{ID: 4, AZ: "az-a"}, {ID: 5, AZ: "az-b"}}, InstanceType: "m5.xlarge", VolumeGiB: 100}
	s.env.OnActivity(acts.PlanBrokerAddition, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.GrowInput) (activities.GrowPlan, error) {
		s.step(fmt.Sprintf("plan %d", in.Count))
		return plan, nil
	})
	s.env.OnActivity(acts.LaunchHost, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.HostInput) (activities.ProvisionedHost, error) {
		s.step(fmt.Sprintf("launch %d in %s", in.N, in.AZ))
		return activities.ProvisionedHost{ID: fmt.Sprintf("i-new-%d", in.N), AZ: in.AZ}, nil
	})
	s.env.OnActivity(acts.ProvisionDataVolume, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.VolumeInput) (string, error) {
		s.step(fmt.Sprintf("volume %d", in.Broker))
		return fmt.Sprintf("vol-%d", in.Broker), nil
	})
	s.env.OnActivity(acts.AttachProvisionedVolume, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ProvisionAttachInput) error {
		s.step(fmt.Sprintf("attach %d", in.Broker))
		return nil
	})
	s.env.OnActivity(acts.ConfigureBrokerHost, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BrokerHostInput) error {
		s.step(fmt.Sprintf("configure %d rack %s", in.Broker, in.Rack))
		return nil
	})
	s.env.OnActivity(acts.StartBrokerHost, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BrokerHostInput) error {
		s.step(fmt.Sprintf("start %d", in.Broker))
		return nil
	})
	s.env.OnActivity(acts.JoinBrokers, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.JoinInput) (fleet.ClusterSpec, error) {
		s.step(fmt.Sprintf("join %d", len(in.New)))
		spec := in.Spec
		for _, b := range in.New {
			spec.Brokers = append(spec.Brokers, fleet.BrokerSpec{ID: b.ID, InstanceID: in.Hosts[b.ID].ID, Rack: b.AZ})
		}
		return spec, nil
	})
	s.env.ExecuteWorkflow(workflows.AddBrokersWorkflow, workflows.ResizeInput{Spec: testSpec(), OperationID: "op-1", RequestedBy: "alice",
		Add: workflows.AddBrokersParams{Count: 2}})
	s.Require().NoError(s.env.GetWorkflowError())
	order := map[string]int{}
	for i, st := range s.steps {
		order[st] = i
	}
	for _, b := range []int32{4, 5} {
		s.Less(order[fmt.Sprintf("launch %d in %s", b, plan.Brokers[b-4].AZ)], order[fmt.Sprintf("attach %d", b)])
		s.Less(order[fmt.Sprintf("volume %d", b)], order[fmt.Sprintf("attach %d", b)])
		s.Less(order[fmt.Sprintf("attach %d", b)], order[fmt.Sprintf("configure %d rack %s", b, plan.Brokers[b-4].AZ)])
		s.Less(order[fmt.Sprintf("configure %d rack %s", b, plan.Brokers[b-4].AZ)], order[fmt.Sprintf("start %d", b)])
		s.Less(order[fmt.Sprintf("start %d", b)], order["join 2"])
	}
	s.Equal("plan 2", s.steps[0])
	s.Equal("rebalance leaving [] over [1 2 3 4 5]", s.steps[len(s.steps)-1], "partitions move once the new brokers are in the spec")
	var res workflows.ResizeResult
	s.Require().NoError(s.env.GetWorkflowResult(&res))
	s.Equal([]int32{4, 5}, res.Added)
	s.Equal(2, res.Hosts)
	s.Equal(2, res.Volumes)
}

// Bad requests start nothing: each is refused with its reason.
func TestResizeRequestsRefused(t *testing.T) {
	four := fourBrokers()
	for _, tt := range []struct {
		name    string
		spec    fleet.ClusterSpec
		kind    string
		brokers []int32
		params  string
		want    string
	}{
		{"remove a broker not in the cluster", four, workflows.OpRemoveBroker, []int32{9}, "", "broker 9 is not in cluster test-a"},
		{"remove from three brokers", testSpec(), workflows.OpRemoveBroker, []int32{3}, "", "fewer than the default replication factor 3"},
		{"remove two at once", four, workflows.OpRemoveBroker, []int32{3, 4}, "", "exactly one broker"},
		{"add none", four, workflows.OpAddBrokers, nil, `{"count":0}`, "count 0: want 1-50"},
		{"add too many", four, workflows.OpAddBrokers, nil, `{"count":51}`, "count 51: want 1-50"},
		{"add with ids", four, workflows.OpAddBrokers, []int32{7}, `{"count":1}`, "picks the new brokers' ids itself"},
		{"add at a crawl", four, workflows.OpAddBrokers, nil, `{"count":1,"throttleBytesPerSec":10}`, "under 1 KiB/s"},
		{"add an unknown version", four, workflows.OpAddBrokers, nil, `{"count":1,"kafkaVersion":"banana"}`, "kafkaVersion"},
		{"rebalance some brokers", four, workflows.OpRebalance, []int32{1}, "", "the whole cluster"},
		{"rebalance with a negative throttle", four, workflows.OpRebalance, nil, `{"throttleBytesPerSec":-1}`, "must not be negative"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			k, err := workflows.KindNamed(tt.kind)
			if err != nil {
				t.Fatal(err)
			}
			req := workflows.Request{Kind: tt.kind, RequestedBy: "alice", Brokers: tt.brokers}
			if tt.params != "" {
				req.Params = []byte(tt.params)
			}
			err = k.Admissible(tt.spec, req)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
}
