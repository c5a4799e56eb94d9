package workflows

import (
	"errors"
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/kfleet/kfleet/activities"
	"github.com/kfleet/kfleet/internal/fleet"
)

// versionReplaceHost: an instance that is gone is replaced, and a stopped
// one started first, instead of a human being asked to do it. Histories
// recorded before it page and wait for a human there.
const versionReplaceHost = "recovery-replace-host"

// Steps of a host replacement, as shown in progress and the UI.
const (
	StepStartInstance = "starting its stopped instance"
	StepPlanReplace   = "planning its new host"
	StepLaunch        = "launching its new host"
	StepNewVolume     = "creating a blank data volume"
	StepMoveVolume    = "moving its data volume to the new host"
	StepConfigure     = "configuring its new host"
	StepTellEntity    = "telling the entity its new host"
	StepRetire        = "terminating its old host"
)

// maxReplacements bounds the hosts one recovery launches for a broker
// whose new hosts keep vanishing, before a human decides.
const maxReplacements = 3

// HostReplacement is what a recovery did about a broker's instance that
// was gone.
type HostReplacement struct {
	// Old is the host the broker lost; New the one it runs on now.
	Old string `json:"old"`
	New string `json:"new"`
	// Why the old host was replaced (terminated, did not come back ...).
	Why string `json:"why"`
	// Volume is the data volume on the new host: its own, moved over
	// (VolumeMoved: only what was written meanwhile is copied), or a
	// blank one (a full catch-up).
	Volume      string `json:"volume"`
	VolumeMoved bool   `json:"volumeMoved"`
	// CatchUpBytes is what the broker had to copy when its catch-up was
	// first measured; CatchUpETA the time it was expected to take.
	CatchUpBytes int64         `json:"catchUpBytes,omitempty"`
	CatchUpETA   time.Duration `json:"catchUpEta,omitempty"`
	// Retired is the old host's state once the broker is back: terminated
	// (it was stopped), or gone already.
	Retired string `json:"retired,omitempty"`
}

// replaceGoneHost handles a broker whose instance is not running, the way
// an operator would (OPERATIONS.md "Provisioning and hosts"):
//
//  1. a stopped instance is started first: a stop is often a human's or a
//     maintenance event's, and the instance keeps its volume, its address
//     and its limits. One that runs again goes back to diagnosis (Kafka
//     does not start with it);
//  2. one that does not come back (no capacity, a timeout) or that is
//     terminated or unknown to EC2 gets a new host (replace).
//
// done is true once the broker is registered on a new host; false sends
// the caller back to diagnosis (the instance runs again, or a human said
// resume after a step failed).
func (r *recovery) replaceGoneHost(ctx workflow.Context, diag activities.Diagnosis) (done bool, _ error) {
	host, _ := r.in.Spec.Broker(r.in.Broker)
	why := fmt.Sprintf("instance %s is %s", host.InstanceID, diag.InstanceState)
	if fleet.InstanceFate(diag.InstanceState) == fleet.HostStopped {
		r.step(ctx, StepStartInstance)
		in := activities.InstanceStartInput{BrokerInput: r.brokerInput(), Timeout: r.in.InstanceStartTimeout}
		wctx := waitContext(ctx, r.in.InstanceStartTimeout+10*time.Minute, fmt.Sprintf("broker %d: start its stopped instance %s", r.in.Broker, host.InstanceID), 5)
		var st activities.InstanceStart
		if err := workflow.ExecuteActivity(wctx, a.StartStoppedInstance, in).Get(ctx, &st); err != nil {
			return false, r.ask(ctx, StepStartInstance, fmt.Sprintf("cannot start instance %s: %s", host.InstanceID, activityMessage(err)))
		}
		if st.Back {
			workflow.GetLogger(ctx).Info("the broker's stopped instance runs again", "Cluster", r.in.Spec.ID, "Broker", r.in.Broker, "Instance", host.InstanceID)
			r.res.InstanceStarted = true
			return false, nil
		}
		why = fmt.Sprintf("instance %s did not come back: %s", host.InstanceID, st.Why)
	}
	return r.replace(ctx, host.InstanceID, why)
}

// replace gives the broker a new host: plan (read-only), launch (or find
// the one an earlier attempt launched), the data volume moved over — or a
// blank one when it is lost —, configure, start, wait until registered.
// Every step checks before it acts (activities/replace_*.go), so after a
// failure a human's resume, like a retry, carries on from what was done.
// No capacity in the broker's zone, or anything else a retry does not fix,
// pages a human: the fallback of OPERATIONS.md.
func (r *recovery) replace(ctx workflow.Context, old, why string) (bool, error) {
	r.res.Cause, r.progress.Cause = fleet.CauseHostGone, fleet.CauseHostGone
	r.notify(ctx, activities.SeverityWarning, fmt.Sprintf("Replacing the host of broker %d", r.in.Broker),
		fmt.Sprintf("Broker %d of %s: %s. kfleet gives it a new host with the same broker.id and rack, and moves its data volume over.", r.in.Broker, r.in.Spec.ID, why))
	in := activities.ReplaceInput{BrokerInput: r.brokerInput(), Attempt: r.attempt}

	r.step(ctx, StepPlanReplace)
	var plan activities.ReplacementPlan
	if err := workflow.ExecuteActivity(r.actx(ctx, 2*time.Minute, "plan its new host"), a.PlanHostReplacement, in).Get(ctx, &plan); err != nil {
		return false, r.cannotReplace(ctx, StepPlanReplace, "cannot plan its new host: "+activityMessage(err))
	}
	workflow.GetLogger(ctx).Info("host replacement planned", "Cluster", r.in.Spec.ID, "Broker", r.in.Broker, "Old", old,
		"Existing", plan.Existing, "Zone", plan.Launch.AZ, "Volume", plan.Volume.Volume.ID, "VolumeLost", plan.Volume.Lost, "Why", plan.Volume.Why)

	r.step(ctx, StepLaunch)
	var newHost activities.Host
	err := workflow.ExecuteActivity(r.ec2Context(ctx, 30*time.Minute, fmt.Sprintf("launch its new host in %s", plan.Launch.AZ), 3), a.LaunchReplacement,
		activities.LaunchInput{ReplaceInput: in, Plan: plan}).Get(ctx, &newHost)
	switch {
	case isErrorType(err, activities.ErrTypeHostBack):
		workflow.GetLogger(ctx).Info("the old host runs again: no replacement", "Cluster", r.in.Spec.ID, "Broker", r.in.Broker, "Instance", old)
		return false, nil
	case isErrorType(err, activities.ErrTypeReplacementGone) && r.attempt+1 < maxReplacements:
		r.attempt++
		workflow.GetLogger(ctx).Warn("the new host is gone: launching another", "Cluster", r.in.Spec.ID, "Broker", r.in.Broker, "Attempt", r.attempt)
		return false, nil
	case err != nil:
		return false, r.cannotReplace(ctx, StepLaunch, fmt.Sprintf("cannot launch a new host in %s: %s", plan.Launch.AZ, activityMessage(err)))
	}
	r.progress.NewHost = newHost.InstanceID
	rep := &HostReplacement{Old: old, New: newHost.InstanceID, Why: why, Volume: plan.Volume.Volume.ID, VolumeMoved: !plan.Volume.Lost}
	if prev := r.res.Replaced; prev != nil {
		rep.Old, rep.Why = prev.Old, prev.Why // a new host lost in turn: the broker's first host is the one it lost
	}

	if plan.Volume.Lost {
		r.step(ctx, StepNewVolume)
		vin := activities.VolumeCreateInput{ReplaceInput: in, AZ: newHost.AZ, SizeGiB: plan.NewVolumeGiB}
		if err := workflow.ExecuteActivity(r.ec2Context(ctx, 15*time.Minute, fmt.Sprintf("create a blank %d GiB data volume", plan.NewVolumeGiB), 5),
			a.CreateDataVolume, vin).Get(ctx, &rep.Volume); err != nil {
			return false, r.cannotReplace(ctx, StepNewVolume, "cannot create a blank data volume: "+activityMessage(err))
		}
	}
	r.progress.Volume = rep.Volume
	r.step(ctx, StepMoveVolume)
	ain := activities.AttachInput{BrokerInput: r.brokerInput(), Volume: rep.Volume, Old: old, New: newHost.InstanceID, Device: plan.Device}
	if err := workflow.ExecuteActivity(r.ec2Context(ctx, 15*time.Minute, fmt.Sprintf("move volume %s to %s", rep.Volume, newHost.InstanceID), 5),
		a.AttachDataVolume, ain).Get(ctx, nil); err != nil {
		return false, r.cannotReplace(ctx, StepMoveVolume, fmt.Sprintf("cannot attach volume %s to %s: %s", rep.Volume, newHost.InstanceID, activityMessage(err)))
	}

	r.step(ctx, StepConfigure)
	cin := activities.ConfigureInput{BrokerInput: r.brokerInput(), Instance: newHost.InstanceID, Volume: rep.Volume, Rack: plan.Rack}
	if err := workflow.ExecuteActivity(brokerActivityContext(ctx, 10*time.Minute, fmt.Sprintf("broker %d: configure its new host %s", r.in.Broker, newHost.InstanceID)),
		a.ConfigureBroker, cin).Get(ctx, nil); err != nil {
		return false, r.cannotReplace(ctx, StepConfigure, fmt.Sprintf("cannot configure %s as broker %d: %s", newHost.InstanceID, r.in.Broker, activityMessage(err)))
	}
	// From here on the new host is the broker's: every later step, and a
	// diagnosis after a failed start, reaches it there.
	r.moveTo(newHost.InstanceID)
	r.retire = append(r.retire, retiring{old: old, volume: rep.Volume})
	r.res.Replaced = rep

	r.step(ctx, StepStart)
	r.res.Starts++
	r.progress.Starts = r.res.Starts
	if err := workflow.ExecuteActivity(r.startContext(ctx), a.StartBroker, r.brokerInput()).Get(ctx, nil); err != nil {
		workflow.GetLogger(ctx).Warn("start on the new host failed; diagnosing again", "Cluster", r.in.Spec.ID, "Broker", r.in.Broker, "Error", err)
		return false, nil
	}
	return r.waitRegistered(ctx)
}

// retiring is a replaced host to terminate once the broker is back, and
// the data volume it must no longer hold.
type retiring struct{ old, volume string }

// moveTo makes instance the broker's host in the recovery's own spec.
func (r *recovery) moveTo(instance string) {
	spec := r.in.Spec
	spec.Brokers = append([]fleet.BrokerSpec(nil), spec.Brokers...)
	for i := range spec.Brokers {
		if spec.Brokers[i].ID == r.in.Broker {
			spec.Brokers[i].InstanceID = instance
		}
	}
	r.in.Spec = spec
}

// cannotReplace pages and waits for a human when a replacement step fails
// for good; resume tries again from diagnosis, abort ends the recovery.
func (r *recovery) cannotReplace(ctx workflow.Context, step, why string) error {
	why = fmt.Sprintf("broker %d: %s; resume tries again, abort leaves it to you", r.in.Broker, why)
	r.notify(ctx, activities.SeverityPage, fmt.Sprintf("Broker %d: host replacement stopped", r.in.Broker), why)
	return r.ask(ctx, step, why)
}

// tellEntity makes the entity's spec name the broker's new host, so its
// sensing and every later operation reach the broker there. Done once the
// broker is registered on it, before the catch-up (a blank volume takes
// hours to catch up, and the entity must not watch a dead host meanwhile).
func (r *recovery) tellEntity(ctx workflow.Context) error {
	rep := r.res.Replaced
	r.step(ctx, StepTellEntity)
	in := activities.SetHostInput{Cluster: r.in.Spec.ID, Broker: r.in.Broker, From: r.retire[0].old, To: rep.New}
	for {
		err := workflow.ExecuteActivity(r.actx(ctx, time.Minute, "tell the entity its new host "+rep.New), a.SetBrokerHost, in).Get(ctx, nil)
		if err == nil {
			return nil
		}
		if err := r.ask(ctx, StepTellEntity, fmt.Sprintf("cannot set broker %d's host to %s in the cluster's spec: %s", r.in.Broker, rep.New, activityMessage(err))); err != nil {
			return err
		}
	}
}

// waitCatchUp waits until the replaced broker's replicas are all in the
// ISR, in up to three waits: the first measures what there is to copy,
// the second its pace (shown, with the time it will take, in the UI and
// status), the last until it is done. The heartbeat shows it live.
func (r *recovery) waitCatchUp(ctx workflow.Context) error {
	in := activities.CatchUpInput{BrokerInput: r.brokerInput(), PollInterval: r.in.PollInterval}
	for _, until := range []activities.CatchUpUntil{activities.CatchUpMeasured, activities.CatchUpPaced, activities.CatchUpInSync} {
		in.Until = until
		var p activities.CatchUpProgress
		for {
			wctx := waitContext(ctx, 24*time.Hour, fmt.Sprintf("broker %d: wait for its replicas to catch up", r.in.Broker), 10)
			err := workflow.ExecuteActivity(wctx, a.WaitCatchUp, in).Get(ctx, &p)
			if err == nil {
				break
			}
			if err := r.ask(ctx, StepCatchUp, activityMessage(err)); err != nil {
				return err
			}
		}
		in.First = p.First
		r.progress.CatchUpReplicas, r.progress.CatchUpBytes = p.Now.Replicas, p.Now.Bytes
		if p.Paced {
			r.progress.CatchUpPace = fmt.Sprintf("%s/s, ETA %s", fleet.Bytes(int64(p.Pace.BytesPerSec)), p.Pace.ETA)
		}
		if rep := r.res.Replaced; rep != nil && rep.CatchUpBytes == 0 && p.Measured {
			rep.CatchUpBytes = p.Now.Bytes
		}
		if rep := r.res.Replaced; rep != nil && rep.CatchUpETA == 0 && p.Paced {
			rep.CatchUpETA = p.Pace.ETA
		}
		r.setDetails(ctx)
		if p.InSync() {
			return nil
		}
	}
	return nil
}

// retireOld terminates the hosts the broker left (a stopped one could be
// started again by anyone, beside the broker's new host).
func (r *recovery) retireOld(ctx workflow.Context) error {
	r.step(ctx, StepRetire)
	for _, h := range r.retire {
		in := activities.RetireInput{BrokerInput: r.brokerInput(), Old: h.old, Volume: h.volume}
		for {
			var state string
			err := workflow.ExecuteActivity(r.actx(ctx, 2*time.Minute, "terminate its old host "+h.old), a.RetireHost, in).Get(ctx, &state)
			if err == nil {
				if h.old == r.res.Replaced.Old {
					r.res.Replaced.Retired = state
				}
				break
			}
			if err := r.ask(ctx, StepRetire, fmt.Sprintf("cannot terminate its old host %s: %s", h.old, activityMessage(err))); err != nil {
				return err
			}
		}
	}
	return nil
}

// volumeText says what the new host runs on, for humans.
func (rep *HostReplacement) volumeText() string {
	s := fmt.Sprintf("its own volume %s moved over", rep.Volume)
	if !rep.VolumeMoved {
		s = fmt.Sprintf("a blank volume %s (its own was lost: full catch-up)", rep.Volume)
	}
	if rep.CatchUpBytes > 0 {
		s += fmt.Sprintf(", %s to catch up", fleet.Bytes(rep.CatchUpBytes))
	}
	return s
}

// replacementDetails is what the UI's current details say of a host
// replacement under way: the new host, the volume and the catch-up with
// the time it will take.
func (r *recovery) replacementDetails() string {
	p := r.progress
	var d string
	if p.NewHost != "" {
		d += fmt.Sprintf("\n- new host %s", p.NewHost)
		if p.Volume != "" {
			d += ", data volume " + p.Volume
		}
		if rep := r.res.Replaced; rep != nil && !rep.VolumeMoved {
			d += " (blank: its own was lost, a full catch-up)"
		}
	}
	if p.Step == StepCatchUp && (p.CatchUpReplicas > 0 || p.CatchUpBytes > 0) {
		d += fmt.Sprintf("\n- catching up: %d replica(s) out of the ISR, %s to copy", p.CatchUpReplicas, fleet.Bytes(p.CatchUpBytes))
		if p.CatchUpPace != "" {
			d += " (" + p.CatchUpPace + ")"
		}
		d += "; live progress: the wait activity's heartbeat"
	}
	return d
}

// ec2Context is the options of a host replacement step that waits for EC2
// (a launch until it runs, a volume until it is attached): it heartbeats
// while it waits, and is retried a few times — no capacity, throttling —
// before a human decides; never on what no retry changes.
func (r *recovery) ec2Context(ctx workflow.Context, timeout time.Duration, summary string, attempts int32) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: timeout,
		HeartbeatTimeout:    waitHeartbeat,
		Summary:             fmt.Sprintf("broker %d: %s", r.in.Broker, summary),
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:    2 * time.Second,
			BackoffCoefficient: 2,
			MaximumInterval:    time.Minute,
			MaximumAttempts:    attempts,
			NonRetryableErrorTypes: []string{activities.ErrTypeBadInput, activities.ErrTypeHostBack,
				activities.ErrTypeReplacementGone},
		},
	})
}

// isErrorType reports whether an activity failed with an application
// error of type typ.
func isErrorType(err error, typ string) bool {
	var appErr *temporal.ApplicationError
	return errors.As(err, &appErr) && appErr.Type() == typ
}
