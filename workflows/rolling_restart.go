package workflows

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// RollingRestartInput asks for a rolling restart of a cluster.
type RollingRestartInput struct {
	Spec        fleet.ClusterSpec `json:"spec"`
	OperationID string            `json:"operationId"`
	RequestedBy string            `json:"requestedBy"`
	// Brokers restricts the roll; empty means every broker of the spec.
	Brokers []int32 `json:"brokers,omitempty"`
	// GatePollInterval paces re-checks of a shut gate (default 10 s).
	GatePollInterval time.Duration `json:"gatePollInterval,omitempty"`
	// GateTimeout is how long a gate may stay shut before the roll stops
	// and says why (default 30 min).
	GateTimeout time.Duration `json:"gateTimeout,omitempty"`
}

// RollingRestartResult records what the roll did, per broker, in order.
type RollingRestartResult struct {
	Brokers []BrokerRestart `json:"brokers"`
}

// BrokerRestart is one broker's restart with each step's duration.
type BrokerRestart struct {
	Broker        int32         `json:"broker"`
	WasController bool          `json:"wasController"`
	GateWait      time.Duration `json:"gateWait"`
	Stop          time.Duration `json:"stop"`
	Start         time.Duration `json:"start"`
	Register      time.Duration `json:"register"`
	CatchUp       time.Duration `json:"catchUp"`
	Elect         time.Duration `json:"elect"`
	Total         time.Duration `json:"total"`
}

// RollProgress is what the progress query answers while a roll runs.
type RollProgress struct {
	Done      []int32  `json:"done"`
	Remaining []int32  `json:"remaining"`
	Current   int32    `json:"current"` // -1 between brokers
	Step      string   `json:"step"`
	Blockers  []string `json:"blockers,omitempty"`
}

// Roll steps, as shown in progress and the UI.
const (
	StepGates      = "checking gates"
	StepWaitGates  = "waiting for gates"
	StepStop       = "controlled shutdown"
	StepStart      = "starting"
	StepRegister   = "waiting for registration"
	StepCatchUp    = "waiting for ISR"
	StepElect      = "preferred leader election"
	StepDone       = "done"
	ErrTypeBlocked = "RollBlocked"
)

// RollingRestartWorkflow restarts a cluster's brokers one at a time, the
// controller last, opening every gate of OPERATIONS.md on a fresh snapshot
// right before each broker:
//
//  1. pick the next broker (controller last) and check the gates;
//     while a gate is shut, wait on a durable timer;
//  2. controlled shutdown with a grace period sized to its partitions;
//  3. start it;
//  4. wait until it is registered in ZooKeeper again;
//  5. wait until every one of its replicas is back in the ISR;
//  6. elect preferred leaders, then go on with the next broker.
//
// Each step is an idempotent activity, so after any crash the roll resumes
// where it was and no broker is stopped twice.
func RollingRestartWorkflow(ctx workflow.Context, in RollingRestartInput) (RollingRestartResult, error) {
	in = in.withDefaults()
	log := workflow.GetLogger(ctx)
	remaining := slices.Clone(in.Brokers)
	if len(remaining) == 0 {
		remaining = in.Spec.BrokerIDs()
	}
	progress := RollProgress{Remaining: remaining, Current: -1, Step: StepGates}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (RollProgress, error) { return progress, nil }); err != nil {
		return RollingRestartResult{}, err
	}
	var result RollingRestartResult
	for len(progress.Remaining) > 0 {
		began := workflow.Now(ctx)
		progress.Step, progress.Current, progress.Blockers = StepGates, -1, nil
		gate, err := waitForGates(ctx, in, &progress)
		if err != nil {
			return result, err
		}
		b := gate.Next
		step := BrokerRestart{Broker: b, WasController: gate.NextIsControl, GateWait: workflow.Now(ctx).Sub(began)}
		progress.Current = b
		if err := workflow.UpsertTypedSearchAttributes(ctx, AttrBrokerID.ValueSet(int64(b))); err != nil {
			return result, err
		}
		log.Info("restarting broker", "Cluster", in.Spec.ID, "Broker", b, "Controller", gate.NextIsControl, "Partitions", gate.Partitions)

		brokerIn := activities.BrokerInput{
			Spec:               in.Spec,
			Broker:             b,
			Reason:             fmt.Sprintf("kfleet %s %s requested by %s", OpRollingRestart, in.OperationID, in.RequestedBy),
			GracePeriodSeconds: fleet.GracePeriodSeconds(gate.Partitions),
		}
		grace := time.Duration(brokerIn.GracePeriodSeconds) * time.Second
		steps := []struct {
			name     string
			timeout  time.Duration
			took     *time.Duration
			activity any
		}{
			{StepStop, grace + time.Minute, &step.Stop, a.StopBroker},
			{StepStart, 10 * time.Minute, &step.Start, a.StartBroker},
			{StepRegister, 30 * time.Minute, &step.Register, a.WaitBrokerRegistered},
			{StepCatchUp, 2 * time.Hour, &step.CatchUp, a.WaitReplicasInSync},
			{StepElect, 5 * time.Minute, &step.Elect, a.ElectPreferredLeaders},
		}
		for _, s := range steps {
			progress.Step = s.name
			setDetails(ctx, in, progress)
			t0 := workflow.Now(ctx)
			actx := brokerActivityContext(ctx, s.timeout, fmt.Sprintf("broker %d: %s", b, s.name))
			if err := workflow.ExecuteActivity(actx, s.activity, brokerIn).Get(ctx, nil); err != nil {
				return result, fmt.Errorf("cluster %s broker %d: %s: %w", in.Spec.ID, b, s.name, err)
			}
			*s.took = workflow.Now(ctx).Sub(t0)
		}
		step.Total = workflow.Now(ctx).Sub(began)
		result.Brokers = append(result.Brokers, step)
		progress.Done = append(progress.Done, b)
		progress.Remaining = slices.DeleteFunc(progress.Remaining, func(id int32) bool { return id == b })
	}
	progress.Step, progress.Current = StepDone, -1
	setDetails(ctx, in, progress)
	return result, nil
}

// a is how workflows name activities: methods of a nil *Activities.
var a *activities.Activities

// waitForGates returns the verdict for the next broker once every gate is
// open, re-checking on a durable timer. A gate that no wait can open, or one
// still shut at the deadline, stops the roll with the reasons.
func waitForGates(ctx workflow.Context, in RollingRestartInput, progress *RollProgress) (activities.GateReport, error) {
	deadline := workflow.Now(ctx).Add(in.GateTimeout)
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		Summary:             "check restart gates",
		RetryPolicy:         &temporal.RetryPolicy{MaximumInterval: 30 * time.Second},
	})
	for {
		var rep activities.GateReport
		gin := activities.GateInput{Spec: in.Spec, Remaining: progress.Remaining}
		if err := workflow.ExecuteActivity(actx, a.CheckRestartGates, gin).Get(ctx, &rep); err != nil {
			return rep, fmt.Errorf("cluster %s: check gates: %w", in.Spec.ID, err)
		}
		if len(rep.Blockers) == 0 {
			return rep, nil
		}
		progress.Step, progress.Current, progress.Blockers = StepWaitGates, rep.Next, nil
		permanent := false
		for _, b := range rep.Blockers {
			progress.Blockers = append(progress.Blockers, b.String())
			permanent = permanent || b.Permanent
		}
		reasons := strings.Join(progress.Blockers, "; ")
		if permanent {
			return rep, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("cluster %s broker %d: gate can never open: %s", in.Spec.ID, rep.Next, reasons), ErrTypeBlocked, errors.New(reasons))
		}
		if !workflow.Now(ctx).Before(deadline) {
			return rep, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("cluster %s broker %d: gates still shut after %s: %s", in.Spec.ID, rep.Next, in.GateTimeout, reasons), ErrTypeBlocked, errors.New(reasons))
		}
		setDetails(ctx, in, *progress)
		if err := workflow.Sleep(ctx, in.GatePollInterval); err != nil {
			return rep, err
		}
	}
}

func brokerActivityContext(ctx workflow.Context, timeout time.Duration, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		// Waits heartbeat every poll; a worker that died is noticed in
		// seconds, not at the end of a long timeout.
		HeartbeatTimeout: 30 * time.Second,
		Summary:          summary,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			MaximumInterval:        30 * time.Second,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput},
		},
	})
}

// setDetails shows where the roll is in the Temporal UI.
func setDetails(ctx workflow.Context, in RollingRestartInput, p RollProgress) {
	details := fmt.Sprintf("**%s** rolling restart `%s`: %d/%d brokers done.", in.Spec.ID, in.OperationID, len(p.Done), len(p.Done)+len(p.Remaining))
	if p.Current >= 0 {
		details += fmt.Sprintf(" Broker %d: %s.", p.Current, p.Step)
	}
	for _, r := range p.Blockers {
		details += "\n- " + r
	}
	workflow.SetCurrentDetails(ctx, details)
}

func (in RollingRestartInput) withDefaults() RollingRestartInput {
	if in.GatePollInterval <= 0 {
		in.GatePollInterval = 10 * time.Second
	}
	if in.GateTimeout <= 0 {
		in.GateTimeout = 30 * time.Minute
	}
	return in
}
