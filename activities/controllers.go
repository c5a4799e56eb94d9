package activities

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/kfleet/kfleet/internal/cloud"
	"github.com/kfleet/kfleet/internal/fleet"
)

// A KRaft roll's controller steps (issue #15). A controller runs on a host
// of its own, found by its spec's InstanceID, and the same SSM documents
// as a broker's stop and start its Kafka process there; it holds no
// partition, so there is no ISR or leader election to wait for, only its
// place among the quorum's caught-up voters.

// ControllerInput names one KRaft controller of a cluster and why kfleet
// touches it. It is not a BrokerInput with a controller's id: a
// controller's host is found among the spec's controllers, never its
// brokers.
type ControllerInput struct {
	Spec       fleet.ClusterSpec `json:"spec"`
	Controller int32             `json:"controller"`
	// Reason is recorded on the host (SSM comment), e.g. the operation id.
	Reason string `json:"reason"`
	// Version is the Kafka version to start (StartController, upgrades);
	// empty keeps the installed one.
	Version string `json:"version,omitempty"`
	// MetadataMode changes the controller's mode at this start
	// (MetadataModeKRaft: the migration's finalization); empty keeps it.
	MetadataMode string `json:"metadataMode,omitempty"`
}

// host is the controller's spec: its host's instance. A spec that is not
// a KRaft one, or a node that is not one of its controllers, is bad input.
func (in ControllerInput) host() (fleet.ControllerSpec, error) {
	if err := in.Spec.Validate(); err != nil {
		return fleet.ControllerSpec{}, badInput(err)
	}
	c, ok := in.Spec.Controller(in.Controller)
	if !ok {
		return fleet.ControllerSpec{}, badInput(fmt.Errorf("cluster %s: controller %d is not in the cluster spec (a %s cluster)", in.Spec.ID, in.Controller, in.Spec.Mode()))
	}
	return c, nil
}

// StopController shuts the controller down through its host's
// kfleet-StopBroker document (a clean stop: an active controller resigns
// at once). Stopping a stopped controller is a no-op, and a retry follows
// the command already sent (runOnce), so it is never stopped twice.
func (a *Activities) StopController(ctx context.Context, in ControllerInput) error {
	// A controller holds no partition to move: a broker's base grace.
	params := map[string]string{cloud.ParamGracePeriodSeconds: strconv.Itoa(fleet.GracePeriodSeconds(0))}
	return a.runOnController(ctx, in, cloud.DocStopBroker, params)
}

// StartController starts the controller through its host's
// kfleet-StartBroker document. Starting a running controller is a no-op.
func (a *Activities) StartController(ctx context.Context, in ControllerInput) error {
	return a.runOnController(ctx, in, cloud.DocStartBroker, startParams(in.Version, "", in.MetadataMode, ""))
}

func (a *Activities) runOnController(ctx context.Context, in ControllerInput, document string, params map[string]string) error {
	host, err := in.host()
	if err != nil {
		return err
	}
	log := a.Log.With().Str("cluster", in.Spec.ID).Int32("controller", in.Controller).Str("instance", host.InstanceID).Str("document", document).Logger()
	log.Info().Msg("running document on controller host")
	res, err := a.runOnce(ctx, host.InstanceID, document, params, in.Reason)
	if err != nil {
		log.Error().Err(err).Str("command", res.CommandID).Msg("document failed")
		return fmt.Errorf("cluster %s controller %d: %w", in.Spec.ID, in.Controller, err)
	}
	log.Info().Str("command", res.CommandID).Msg("document succeeded")
	return nil
}

// quorumReadPatience is how long a quorum read may keep failing in a wait
// before the attempt fails: a crash's detection and an election (fetch
// timeout + election timeout) with room to spare.
const quorumReadPatience = 2 * (fleet.QuorumFetchTimeout + fleet.QuorumElectionTimeout)

// CaughtUpInput asks WaitControllerCaughtUp to wait for a restarted
// controller.
type CaughtUpInput struct {
	ControllerInput
	// PollInterval paces the DescribeQuorum calls; 0: the worker's.
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

// ControllerCaughtUp is WaitControllerCaughtUp's answer.
type ControllerCaughtUp struct {
	// Leader and Epoch are the quorum's when the controller was caught up.
	Leader int32 `json:"leader"`
	Epoch  int32 `json:"epoch"`
	Checks int   `json:"checks"`
}

// caughtUpProgress is WaitControllerCaughtUp's heartbeat: the mark a retry
// resumes from, and what an operator sees of the wait.
type caughtUpProgress struct {
	// Since is the leader's time at the wait's first answer with a leader.
	Since  time.Time `json:"since,omitzero"`
	Checks int       `json:"checks"`
	Last   string    `json:"last,omitempty"`
}

// WaitControllerCaughtUp polls DescribeQuorum until the controller is a
// voter caught up with the leader (fleet.CaughtUp) by a fetch made after
// the wait began: DescribeQuorum still reports a stopped voter's last
// caught-up time, which for a controller down less than a fetch timeout
// would pass the rule while it fetches nothing. The mark is the leader's
// time at the wait's first answer, so both sides of the comparison are
// the quorum's clock, never kfleet's (after the active controller's
// restart the leader is another host; their clocks are NTP-close, and the
// wait is seconds). Failed polls are retried by Temporal (only
// observation); the activity's timeout bounds the wait, and the workflow
// asks a human when it runs out.
func (a *Activities) WaitControllerCaughtUp(ctx context.Context, in CaughtUpInput) (ControllerCaughtUp, error) {
	if _, err := in.host(); err != nil {
		return ControllerCaughtUp{}, err
	}
	if err := a.kraftSpec(in.Spec); err != nil {
		return ControllerCaughtUp{}, err
	}
	p, _ := resume[caughtUpProgress](ctx)
	var res ControllerCaughtUp
	var failures int
	var failingSince time.Time
	err := a.poll(ctx, in.PollInterval, time.Time{}, func() (bool, error) {
		q, err := a.KRaft.DescribeQuorum(ctx, in.Spec)
		if err != nil {
			// Right after the active controller's restart there is no
			// leader to answer (NOT_LEADER_OR_FOLLOWER) until the
			// election: try again at the next poll, and give up only
			// after a few failures in a row that outlast an election.
			if failures++; failures == 1 {
				failingSince = time.Now()
			}
			if failures >= maxFencingFailures && time.Since(failingSince) > quorumReadPatience {
				return false, err
			}
			p.Last = err.Error()
			return false, nil
		}
		failures = 0
		p.Checks++
		done, why := controllerCaughtUpSince(q, in.Controller, p.Since)
		p.Last = why
		if leader, ok := q.LeaderReplica(); ok && p.Since.IsZero() {
			p.Since = leader.LastCaughtUp
		}
		res = ControllerCaughtUp{Leader: q.Leader, Epoch: q.Epoch, Checks: p.Checks}
		return done, nil
	}, func() any { return p })
	if err != nil {
		return ControllerCaughtUp{}, waitFailed(err, "cluster %s controller %d: wait until caught up (%s)", in.Spec.ID, in.Controller, p.Last)
	}
	a.Log.Info().Str("cluster", in.Spec.ID).Int32("controller", in.Controller).Int32("leader", res.Leader).
		Int32("epoch", res.Epoch).Int("checks", res.Checks).Msg("controller caught up")
	return res, nil
}

// controllerCaughtUpSince is whether node is a caught-up voter of q by a
// fetch after since (zero: no mark yet, so not done), and why not.
func controllerCaughtUpSince(q fleet.Quorum, node int32, since time.Time) (bool, string) {
	leader, ok := q.LeaderReplica()
	switch {
	case !ok:
		return false, fmt.Sprintf("no leader (epoch %d)", q.Epoch)
	case !q.IsVoter(node):
		return false, fmt.Sprintf("not a voter of %v", q.VoterIDs())
	case since.IsZero():
		return false, "marking the leader's time"
	case node == leader.ID:
		// The leader is caught up by definition, and it was elected after
		// its start: a stopped node cannot win an election.
		return true, "the leader"
	}
	for _, v := range q.Voters {
		if v.ID != node {
			continue
		}
		if fleet.CaughtUp(v, leader, fleet.QuorumFetchTimeout) && v.LastCaughtUp.After(since) {
			return true, "caught up"
		}
		return false, fmt.Sprintf("log end %d of the leader's %d, last caught up %s, mark %s",
			v.LogEndOffset, leader.LogEndOffset, v.LastCaughtUp.Format(time.RFC3339Nano), since.Format(time.RFC3339Nano))
	}
	return false, "not listed"
}

// QuorumGateWaitInput asks WaitQuorumGate to wait until a controller may
// restart.
type QuorumGateWaitInput struct {
	QuorumInput
	// Timeout is how long the gate may stay shut (the roll's GateTimeout).
	Timeout time.Duration `json:"timeout"`
	// PollInterval paces the re-checks; 0: the worker's poll interval.
	PollInterval time.Duration `json:"pollInterval,omitempty"`
}

// QuorumGateWait is WaitQuorumGate's verdict: the last check's.
type QuorumGateWait struct {
	Verdict  fleet.QuorumVerdict `json:"verdict"`
	TimedOut bool                `json:"timedOut,omitempty"`
	Checks   int                 `json:"checks"`
}

// quorumGateProgress is WaitQuorumGate's heartbeat: the deadline a retry
// keeps, and the last verdict for an operator.
type quorumGateProgress struct {
	Deadline time.Time `json:"deadline"`
	Checks   int       `json:"checks"`
	Reason   string    `json:"reason,omitempty"`
}

// WaitQuorumGate re-checks the quorum gate for in.Node (CheckQuorumGate,
// on a fresh DescribeQuorum each time) until it opens or Timeout passes,
// and returns the last verdict. It only observes, so a retry is safe; the
// deadline travels in the heartbeat, so a retry does not extend it. One
// activity for the whole wait: the roll's history does not grow with it.
func (a *Activities) WaitQuorumGate(ctx context.Context, in QuorumGateWaitInput) (QuorumGateWait, error) {
	if in.Timeout <= 0 {
		return QuorumGateWait{}, badInput(fmt.Errorf("cluster %s controller %d: quorum gate timeout %s: want a positive duration", in.Spec.ID, in.Node, in.Timeout))
	}
	if err := a.kraftSpec(in.Spec); err != nil {
		return QuorumGateWait{}, err
	}
	p, ok := resume[quorumGateProgress](ctx)
	if !ok || p.Deadline.IsZero() {
		p = quorumGateProgress{Deadline: time.Now().Add(in.Timeout)}
	}
	var res QuorumGateWait
	err := a.poll(ctx, in.PollInterval, time.Time{}, func() (bool, error) {
		q, err := a.KRaft.DescribeQuorum(ctx, in.Spec)
		if err != nil {
			return false, err
		}
		v := fleet.JudgeQuorumWithout(q, in.Node, fleet.QuorumFetchTimeout)
		p.Checks++
		p.Reason = v.Reason
		res = QuorumGateWait{Verdict: v, Checks: p.Checks}
		if v.Safe {
			return true, nil
		}
		res.TimedOut = !time.Now().Before(p.Deadline)
		return res.TimedOut, nil
	}, func() any { return p })
	if err != nil {
		return QuorumGateWait{}, waitFailed(err, "cluster %s controller %d: wait for the quorum gate", in.Spec.ID, in.Node)
	}
	a.Log.Info().Str("cluster", in.Spec.ID).Int32("controller", in.Node).Int("checks", res.Checks).
		Bool("safe", res.Verdict.Safe).Bool("timedOut", res.TimedOut).Msg("quorum gate wait over")
	return res, nil
}
