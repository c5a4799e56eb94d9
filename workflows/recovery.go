package workflows

import (
	"cmp"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// RecoveryInput asks to recover a broker that left without a controlled
// shutdown.
type RecoveryInput struct {
	Spec        fleet.ClusterSpec `json:"spec"`
	Broker      int32             `json:"broker"`
	LostAt      time.Time         `json:"lostAt"`
	OperationID string            `json:"operationId"`
	// Grace is how long a broker may take to come back by itself (its
	// service manager restarting it) before recovery acts; 0: none.
	Grace time.Duration `json:"grace,omitempty"`
	// PollInterval paces the observation of a broker coming back, inside
	// the wait activities (default 5 s).
	PollInterval time.Duration `json:"pollInterval,omitempty"`
	// StallTimeout: log recovery that makes no progress for this long, or a
	// started broker that neither recovers nor registers, asks a human
	// (default 10 min).
	StallTimeout time.Duration `json:"stallTimeout,omitempty"`
	// MaxStarts bounds the start attempts before a human decides (default 3).
	MaxStarts int `json:"maxStarts,omitempty"`
	// InstanceStartTimeout is how long a stopped instance kfleet started
	// may take to run before it is replaced (default 10 min).
	InstanceStartTimeout time.Duration `json:"instanceStartTimeout,omitempty"`
}

// RecoveryResult is what the recovery found and did.
type RecoveryResult struct {
	Broker   int32            `json:"broker"`
	Cause    fleet.CrashCause `json:"cause"`
	Evidence []string         `json:"evidence,omitempty"`
	// Fixes are the host limits raised before a start.
	Fixes []fleet.LimitFix `json:"fixes,omitempty"`
	// Starts counts the starts kfleet issued; 0 when the broker came back
	// by itself (CameBack).
	Starts   int  `json:"starts"`
	CameBack bool `json:"cameBack,omitempty"`
	// LogRecovery is the time the broker spent recovering its logs as
	// kfleet watched; Register until it was registered; CatchUp until its
	// replicas were back in the ISR.
	LogRecovery time.Duration `json:"logRecovery"`
	Register    time.Duration `json:"register"`
	CatchUp     time.Duration `json:"catchUp"`
	Elected     int           `json:"elected"`
	// Total runs from the loss to preferred leaders restored.
	Total time.Duration `json:"total"`
	// InstanceStarted: the broker's stopped instance was started again;
	// Replaced: its instance was gone and it got a new host
	// (recovery_replace.go).
	InstanceStarted bool             `json:"instanceStarted,omitempty"`
	Replaced        *HostReplacement `json:"replaced,omitempty"`
}

// RecoveryProgress is what the progress query answers while it runs.
type RecoveryProgress struct {
	Broker int32            `json:"broker"`
	Step   string           `json:"step"`
	Cause  fleet.CrashCause `json:"cause,omitempty"`
	Starts int              `json:"starts"`
	// LogsLeft, Rate and ETA describe log recovery while it runs.
	LogsLeft int    `json:"logsLeft,omitempty"`
	Rate     string `json:"rate,omitempty"`
	ETA      string `json:"eta,omitempty"`
	Paused   *Pause `json:"paused,omitempty"`
	// NewHost and Volume are a host replacement's new host and the data
	// volume it runs on; CatchUp* its catch-up as last measured.
	NewHost         string `json:"newHost,omitempty"`
	Volume          string `json:"volume,omitempty"`
	CatchUpReplicas int    `json:"catchUpReplicas,omitempty"`
	CatchUpBytes    int64  `json:"catchUpBytes,omitempty"`
	CatchUpPace     string `json:"catchUpPace,omitempty"`
}

// Change ids of workflow.GetVersion in recoveries: each marks where a
// history recorded before the change takes the old path.
const (
	// versionGraceWait: the grace is one heartbeating activity
	// (WaitBrokerGrace), not an observation and a timer per poll.
	versionGraceWait = "recovery-grace-wait-activity"
	// versionComeBackWait: waiting for the started broker is one
	// heartbeating activity per verdict (WaitBrokerBack), not an
	// observation and a timer per poll.
	versionComeBackWait = "recovery-come-back-wait-activity"
)

// Recovery steps, as shown in progress and the UI.
const (
	StepGrace      = "giving it a grace to come back by itself"
	StepDiagnose   = "diagnosing the host"
	StepFix        = "fixing the cause"
	StepRecovering = "waiting out log recovery"
)

// RecoveryWorkflow brings back a broker that left without a controlled
// shutdown (OPERATIONS.md "Unclean shutdown recovery"):
//
//  0. give the broker a short grace to come back by itself: one that does
//     is observed, never restarted;
//  1. diagnose from the host: instance state (EC2), service state, limits
//     and the last log lines (SSM);
//  2. an instance that is not running: a stopped one is started again; one
//     that does not come back, or is terminated, is replaced — a new host
//     with the same broker.id and rack, its data volume moved over (a lost
//     one: a blank volume and a full catch-up), configured and started
//     (recovery_replace.go); a human only when that fails for good;
//  3. fix the cause before the start (raise vm.max_map_count to cover two
//     maps per segment with headroom, or nofile), then start the broker —
//     unless it came back by itself;
//  4. wait out log recovery without ever touching the broker, reporting
//     its rate and an ETA; a start that fails goes back to 1;
//  5. wait until it is registered, every replica back in the ISR, then
//     elect preferred leaders; a replaced broker's entity learns its new
//     host once it is registered, its catch-up shows the bytes to copy and
//     the time it will take, and its old host, if it still exists, is
//     terminated at the end.
//
// It only ever starts a broker that is down, so it is safe beside a roll
// that waits at its gates.
func RecoveryWorkflow(ctx workflow.Context, in RecoveryInput) (RecoveryResult, error) {
	res, err := recoverBroker(ctx, in)
	// Counted here, not in a defer: the SDK unwinds an evicted workflow's
	// coroutines, running its defers, without the workflow having ended.
	countRecovery(ctx, in.Spec.ID, res, err) // metrics.go
	return res, err
}

// recoverBroker is RecoveryWorkflow's body.
func recoverBroker(ctx workflow.Context, in RecoveryInput) (RecoveryResult, error) {
	in = in.withDefaults()
	r := &recovery{in: in, res: RecoveryResult{Broker: in.Broker}}
	r.progress = RecoveryProgress{Broker: in.Broker, Step: StepDiagnose}
	r.human = humanGate{cluster: in.Spec.ID, what: "recovery", changed: r.setDetails}
	if err := workflow.SetQueryHandler(ctx, QueryProgress, func() (RecoveryProgress, error) {
		p := r.progress
		p.Paused = r.human.paused
		return p, nil
	}); err != nil {
		return r.res, err
	}
	if err := r.human.register(ctx); err != nil {
		return r.res, err
	}
	r.notify(ctx, activities.SeverityWarning, fmt.Sprintf("Recovering broker %d", in.Broker),
		fmt.Sprintf("Broker %d of %s %s at %s without a controlled shutdown.", in.Broker, in.Spec.ID, lostFrom(in.Spec), in.LostAt.Format(time.RFC3339)))
	back, err := r.grace(ctx)
	if err == nil && !back {
		err = r.bringBack(ctx)
	}
	if err == nil && r.res.Replaced != nil {
		err = r.tellEntity(ctx)
	}
	if err != nil {
		r.notify(ctx, activities.SeverityPage, fmt.Sprintf("Recovery of broker %d stopped", in.Broker), activityMessage(err))
		return r.res, err
	}
	if err := r.restoreReplication(ctx); err != nil {
		return r.res, err
	}
	if len(r.retire) > 0 {
		if err := r.retireOld(ctx); err != nil {
			return r.res, err
		}
	}
	r.res.Total = workflow.Now(ctx).Sub(in.LostAt)
	r.progress.Step = StepDone
	r.setDetails(ctx)
	how := fmt.Sprintf("after %d start(s)", r.res.Starts)
	switch rep := r.res.Replaced; {
	case r.res.CameBack:
		how = "by itself"
	case rep != nil:
		how += fmt.Sprintf(" on a new host %s (%s), %s", rep.New, rep.Why, rep.volumeText())
	case r.res.InstanceStarted:
		how += " on its own instance, started again"
	}
	r.notify(ctx, activities.SeverityInfo, fmt.Sprintf("Broker %d recovered", in.Broker),
		fmt.Sprintf("Broker %d of %s is back %s (cause: %s), replicas in sync, %d preferred leaders restored; %s after the loss.",
			in.Broker, in.Spec.ID, how, r.res.Cause, r.res.Elected, r.res.Total.Round(time.Second)))
	return r.res, nil
}

type recovery struct {
	in       RecoveryInput
	res      RecoveryResult
	progress RecoveryProgress
	human    humanGate
	// attempt numbers the hosts launched for the broker (a new host lost
	// in turn needs another); retire are the hosts it left.
	attempt int
	retire  []retiring
}

func (r *recovery) brokerInput() activities.BrokerInput {
	return activities.BrokerInput{Spec: r.in.Spec, Broker: r.in.Broker,
		Reason: fmt.Sprintf("kfleet %s %s: broker %d lost at %s", OpRecovery, r.in.OperationID, r.in.Broker, r.in.LostAt.Format(time.RFC3339))}
}

// grace observes the broker until it is registered again, its process is
// up (its service manager restarted it), or the grace ends, in one
// heartbeating activity. It reports whether the broker is registered.
func (r *recovery) grace(ctx workflow.Context) (bool, error) {
	if r.in.Grace <= 0 {
		return false, nil
	}
	r.step(ctx, StepGrace)
	if workflow.GetVersion(ctx, versionGraceWait, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return r.pollGrace(ctx)
	}
	in := activities.GraceInput{BrokerInput: r.brokerInput(), Until: workflow.Now(ctx).Add(r.in.Grace), PollInterval: r.in.PollInterval}
	wctx := waitContext(ctx, r.in.Grace+2*time.Minute, fmt.Sprintf("broker %d: grace to come back by itself", r.in.Broker), 10)
	var obs activities.BrokerObservation
	if err := workflow.ExecuteActivity(wctx, a.WaitBrokerGrace, in).Get(ctx, &obs); err != nil {
		return false, fmt.Errorf("cluster %s broker %d: grace: %w", r.in.Spec.ID, r.in.Broker, err)
	}
	r.res.CameBack = obs.Registered
	return obs.Registered, nil
}

// bringBack diagnoses, fixes and starts the broker until it is registered:
// a host that is not running is started again or replaced
// (recovery_replace.go); a human decides when a start keeps failing,
// recovery stalls, or the host cannot be replaced.
func (r *recovery) bringBack(ctx workflow.Context) error {
	for {
		r.step(ctx, StepDiagnose)
		var diag activities.Diagnosis
		if err := workflow.ExecuteActivity(r.actx(ctx, time.Minute, "diagnose the host"), a.DiagnoseBroker, r.brokerInput()).Get(ctx, &diag); err != nil {
			if err := r.ask(ctx, StepDiagnose, "cannot diagnose the host: "+activityMessage(err)); err != nil {
				return err
			}
			continue
		}
		if diag.Cause != fleet.CauseUnknown || r.res.Cause == "" {
			r.res.Cause, r.res.Evidence = diag.Cause, diag.Evidence
		}
		r.progress.Cause = r.res.Cause
		workflow.GetLogger(ctx).Info("diagnosis", "Cluster", r.in.Spec.ID, "Broker", r.in.Broker, "Instance", diag.InstanceState,
			"Process", diag.Process, "Cause", diag.Cause, "Segments", diag.Segments, "MaxMapCount", diag.MaxMapCount, "Nofile", diag.Nofile)
		if diag.InstanceGone && workflow.GetVersion(ctx, versionReplaceHost, workflow.DefaultVersion, 1) >= 1 {
			done, err := r.replaceGoneHost(ctx, diag)
			if err != nil || done {
				return err
			}
			continue
		}
		if diag.InstanceGone {
			// Recorded before host replacement: a human decides.
			host, _ := r.in.Spec.Broker(r.in.Broker)
			why := fmt.Sprintf("instance %s is %s: the broker cannot start there; replace the host, then resume", host.InstanceID, diag.InstanceState)
			r.notify(ctx, activities.SeverityPage, fmt.Sprintf("Broker %d: instance gone", r.in.Broker), why)
			if err := r.ask(ctx, StepDiagnose, why); err != nil {
				return err
			}
			continue
		}
		if fleet.ProcessUp(diag.Process) {
			// It came back by itself (or is recovering its logs after a
			// restart by its service manager): observe, never touch.
			r.res.CameBack = r.res.Starts == 0
		} else {
			if r.res.Starts >= r.in.MaxStarts {
				why := fmt.Sprintf("%d starts did not bring it back (cause %s%s)", r.res.Starts, r.res.Cause, evidence(r.res.Evidence))
				if err := r.ask(ctx, StepStart, why); err != nil {
					return err
				}
				r.res.Starts = 0 // a human said go on: a fresh budget
				continue
			}
			if err := r.fix(ctx, diag); err != nil {
				return err
			}
			r.step(ctx, StepStart)
			r.res.Starts++
			r.progress.Starts = r.res.Starts
			if err := workflow.ExecuteActivity(r.startContext(ctx), a.StartBroker, r.brokerInput()).Get(ctx, nil); err != nil {
				workflow.GetLogger(ctx).Warn("start failed; diagnosing again", "Cluster", r.in.Spec.ID, "Broker", r.in.Broker, "Error", err)
				continue
			}
		}
		back, err := r.waitRegistered(ctx)
		if err != nil {
			return err
		}
		if back {
			return nil
		}
	}
}

// fix raises the host limit the cause calls for, if any.
func (r *recovery) fix(ctx workflow.Context, diag activities.Diagnosis) error {
	fix, ok := fleet.FixFor(diag.Cause, diag.Segments, diag.MaxMapCount, diag.Nofile)
	if !ok {
		return nil
	}
	r.step(ctx, StepFix)
	in := activities.LimitInput{Spec: r.in.Spec, Broker: r.in.Broker, Name: fix.Name, Value: fix.To, Reason: r.brokerInput().Reason + ": " + fix.Cause}
	for {
		err := workflow.ExecuteActivity(r.actx(ctx, time.Minute, fmt.Sprintf("raise %s to %d", fix.Name, fix.To)), a.SetHostLimit, in).Get(ctx, nil)
		if err == nil {
			break
		}
		if err := r.ask(ctx, StepFix, fmt.Sprintf("cannot raise %s to %d: %s", fix.Name, fix.To, activityMessage(err))); err != nil {
			return err
		}
	}
	workflow.GetLogger(ctx).Info("raised host limit", "Cluster", r.in.Spec.ID, "Broker", r.in.Broker, "Limit", fix.Name, "From", fix.From, "To", fix.To)
	r.res.Fixes = append(r.res.Fixes, fix)
	return nil
}

// waitRegistered watches the broker come back without touching it, in
// one heartbeating activity per verdict: it began recovering its logs
// (shown, then waited out however long it takes while it advances), it
// stalled (a human decides), it went down again (false: the caller
// diagnoses again), or it is registered (true).
func (r *recovery) waitRegistered(ctx workflow.Context) (bool, error) {
	r.step(ctx, StepRegister)
	began := workflow.Now(ctx)
	if workflow.GetVersion(ctx, versionComeBackWait, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return r.pollRegistered(ctx, began)
	}
	in := activities.ComeBackInput{BrokerInput: r.brokerInput(), Since: began, StallTimeout: r.in.StallTimeout, PollInterval: r.in.PollInterval}
	for {
		// Log recovery of a large broker takes hours: the wait runs until
		// it ends, and resumes from its heartbeat after a retry.
		wctx := waitContext(ctx, 24*time.Hour, fmt.Sprintf("broker %d: wait for it to come back", r.in.Broker), 10)
		var back activities.BrokerBack
		if err := workflow.ExecuteActivity(wctx, a.WaitBrokerBack, in).Get(ctx, &back); err != nil {
			return false, fmt.Errorf("cluster %s broker %d: wait for it to come back: %w", r.in.Spec.ID, r.in.Broker, err)
		}
		if back.LogRecovery > 0 {
			r.res.LogRecovery = back.LogRecovery
		}
		if back.Pace.PerMin > 0 {
			r.progress.Rate, r.progress.ETA = fmt.Sprintf("%.0f logs/min", back.Pace.PerMin), back.Pace.ETA.String()
		}
		r.progress.LogsLeft = back.Observation.LogsLeft
		in.Last = back.Last
		switch back.Verdict {
		case fleet.ComeBackRegistered:
			r.res.Register = workflow.Now(ctx).Sub(began) - r.res.LogRecovery
			r.progress.LogsLeft, r.progress.Rate, r.progress.ETA = 0, "", ""
			return true, nil
		case fleet.ComeBackDown:
			workflow.GetLogger(ctx).Warn("broker went down again", "Cluster", r.in.Spec.ID, "Broker", r.in.Broker, "Process", back.Observation.Process)
			return false, nil
		case fleet.ComeBackRecovering:
			in.Recovering = true
			r.step(ctx, StepRecovering)
		case fleet.ComeBackStalled:
			process := cmp.Or(back.Observation.Process, "unknown")
			why := fmt.Sprintf("broker %d has not come back for %s (process %s, %d logs left to recover); it is never restarted while it recovers",
				r.in.Broker, back.StalledFor.Round(time.Second), process, back.Observation.LogsLeft)
			if err := r.ask(ctx, r.progress.Step, why); err != nil {
				return false, err
			}
		default:
			return false, fmt.Errorf("cluster %s broker %d: unknown verdict %q of the wait for it to come back", r.in.Spec.ID, r.in.Broker, back.Verdict)
		}
	}
}

// restoreReplication waits for the broker's replicas to rejoin the ISR and
// moves preferred leadership back to it.
func (r *recovery) restoreReplication(ctx workflow.Context) error {
	r.step(ctx, StepCatchUp)
	t0 := workflow.Now(ctx)
	for r.res.Replaced == nil {
		err := workflow.ExecuteActivity(brokerActivityContext(ctx, 2*time.Hour, "wait for ISR"), a.WaitReplicasInSync, r.brokerInput()).Get(ctx, nil)
		if err == nil {
			break
		}
		if err := r.ask(ctx, StepCatchUp, activityMessage(err)); err != nil {
			return err
		}
	}
	if r.res.Replaced != nil {
		// A new host copies what it lacks: shown in bytes and time.
		if err := r.waitCatchUp(ctx); err != nil {
			return err
		}
	}
	r.res.CatchUp = workflow.Now(ctx).Sub(t0)
	r.step(ctx, StepElect)
	for {
		err := workflow.ExecuteActivity(brokerActivityContext(ctx, 5*time.Minute, "elect preferred leaders"), a.ElectPreferredLeaders, r.brokerInput()).Get(ctx, &r.res.Elected)
		if err == nil {
			return nil
		}
		if err := r.ask(ctx, StepElect, activityMessage(err)); err != nil {
			return err
		}
	}
}

func (r *recovery) ask(ctx workflow.Context, step, reason string) error {
	workflow.GetLogger(ctx).Warn("recovery waits for a human", "Cluster", r.in.Spec.ID, "Broker", r.in.Broker, "Step", step, "Reason", reason)
	_, err := r.human.ask(ctx, Pause{Broker: r.in.Broker, Step: step, Reason: reason})
	return err
}

func (r *recovery) step(ctx workflow.Context, step string) {
	r.progress.Step = step
	r.setDetails(ctx)
}

func (r *recovery) setDetails(ctx workflow.Context) {
	p := r.progress
	d := fmt.Sprintf("**%s** recovery `%s` of broker %d (lost %s): %s.", r.in.Spec.ID, r.in.OperationID, r.in.Broker, r.in.LostAt.Format(time.RFC3339), p.Step)
	if p.Cause != "" {
		d += fmt.Sprintf(" Cause: %s.", p.Cause)
	}
	if p.Starts > 0 {
		d += fmt.Sprintf(" Starts: %d.", p.Starts)
	}
	if p.Step == StepRecovering {
		d += fmt.Sprintf("\n- recovering its logs: %d left", p.LogsLeft)
		if p.Rate != "" {
			d += fmt.Sprintf(" at %s, ETA %s", p.Rate, p.ETA)
		}
		d += " (never restarted while it recovers; live progress: the wait activity's heartbeat)"
	}
	d += r.replacementDetails()
	if g := r.human.paused; g != nil {
		d += fmt.Sprintf("\n\n**WAITING FOR A HUMAN** (%s): %s\n\nDecide with `starter decide --cluster %s resume|abort`.", g.Step, g.Reason, r.in.Spec.ID)
	}
	workflow.SetCurrentDetails(ctx, d)
}

func (r *recovery) notify(ctx workflow.Context, severity, title, text string) {
	notifyHumans(ctx, activities.Notification{Cluster: r.in.Spec.ID, Broker: r.in.Broker, Severity: severity,
		Title: title, Text: text, Operation: workflow.GetInfo(ctx).WorkflowExecution.ID})
}

// actx is the options of recovery's read-mostly activities: retried for a
// while, since a recovery must not give up on a flaky API.
func (r *recovery) actx(ctx workflow.Context, timeout time.Duration, summary string) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    10 * time.Second,
		Summary:             fmt.Sprintf("broker %d: %s", r.in.Broker, summary),
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			MaximumInterval:        30 * time.Second,
			MaximumAttempts:        10,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput},
		},
	})
}

// startContext runs a start once: a failed start is diagnosed again, not
// retried blindly (a crash-looping broker would only crash again).
func (r *recovery) startContext(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		HeartbeatTimeout:    10 * time.Second,
		Summary:             fmt.Sprintf("broker %d: start", r.in.Broker),
		RetryPolicy:         &temporal.RetryPolicy{MaximumAttempts: 1},
	})
}

func evidence(lines []string) string {
	if len(lines) == 0 {
		return ""
	}
	return ": " + lines[0]
}

func (in RecoveryInput) withDefaults() RecoveryInput {
	if in.PollInterval <= 0 {
		in.PollInterval = 5 * time.Second
	}
	if in.StallTimeout <= 0 {
		in.StallTimeout = 10 * time.Minute
	}
	if in.MaxStarts <= 0 {
		in.MaxStarts = 3
	}
	if in.InstanceStartTimeout <= 0 {
		in.InstanceStartTimeout = 10 * time.Minute
	}
	return in
}

// lostFrom says how a lost broker was seen leaving: its ZooKeeper
// registration vanished, or (KRaft) the controller fenced it.
func lostFrom(spec fleet.ClusterSpec) string {
	if spec.RegistersWithKRaft() {
		return "was fenced by the KRaft controller"
	}
	return "left ZooKeeper"
}
