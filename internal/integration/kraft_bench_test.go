package integration_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kfleet/kfleet/internal/devstack"
	"github.com/kfleet/kfleet/internal/entity"
	"github.com/kfleet/kfleet/internal/fleet"
	"github.com/kfleet/kfleet/internal/localfleet"
	"github.com/kfleet/kfleet/internal/localfleet/kraft"
	"github.com/kfleet/kfleet/workflows"
)

// BenchmarkKRaftRoll is BenchmarkRoll for a KRaft cluster (3 controllers,
// then its brokers) with the fleet's default broker and KRaft timing
// (heartbeat 2 s, session 9 s, fetch timeout 2 s): the roll through the
// entity divided by the nodes' own time as the fleet's audit reports it
// (brokerSideTime, plus each controller's stop and start). The rest is
// kfleet's overhead, the quorum gates and the caught-up waits included.
// As a KRaft broker serves only once unfenced (a heartbeat interval, 2 s,
// after it registers, while its catch-up runs), roll/node-side counts
// each broker back at the later of in-sync and unfenced.
// The roll's own account of its waits (gates, registration, controllers
// catching up) and the brokers' started→unfenced are reported beside it.
func BenchmarkKRaftRoll(b *testing.B) {
	for _, brokers := range []int{3, 6} {
		b.Run(fmt.Sprintf("controllers=3/brokers=%d", brokers), func(b *testing.B) {
			cc := localfleet.ClusterConfig{ID: "bench", Brokers: brokers, KRaft: &localfleet.KRaftConfig{Controllers: 3}}
			stack := startStack(b, localfleet.Config{Clusters: []localfleet.ClusterConfig{cc}})
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
				before := len(stack.Fleet.Audit("bench"))
				began := time.Now()
				op, err := entity.Request(ctx, stack.Client, "bench", batchedRestartReq("bench", 1))
				if err != nil {
					b.Fatal(err)
				}
				res, err := entity.FollowOperation(ctx, stack.Client, "bench", op.ID, 100*time.Millisecond, func(entity.Progress) {})
				if err != nil {
					b.Fatal(err)
				}
				roll := time.Since(began)
				cancel()
				if len(res.Controllers) != 3 || len(res.Brokers) != brokers {
					b.Fatalf("rolled %d controllers and %d brokers", len(res.Controllers), len(res.Brokers))
				}
				events := stack.Fleet.Audit("bench")[before:]
				nodeSide := brokerSideTime(events) + controllerSideTime(events)
				b.ReportMetric(roll.Seconds(), "roll-s")
				b.ReportMetric(nodeSide.Seconds(), "broker-side-s")
				b.ReportMetric(roll.Seconds()/nodeSide.Seconds(), "roll/broker-side")
				b.ReportMetric(roll.Seconds()/float64(brokers+3), "s/node")
				// Where the rest goes: the roll's own account of its waits.
				var gates, register, ctlCatchUp time.Duration
				for _, c := range res.Controllers {
					gates += c.GateWait
					ctlCatchUp += c.CatchUp
				}
				for _, r := range res.Brokers {
					gates += r.GateWait
					register += r.Register
				}
				for _, c := range res.Controllers {
					b.Logf("controller %d (active %t): gate %s, stop %s, start %s, caught up %s, total %s", c.Controller, c.WasActive,
						c.GateWait.Round(time.Millisecond), c.Stop.Round(time.Millisecond), c.Start.Round(time.Millisecond),
						c.CatchUp.Round(time.Millisecond), c.Total.Round(time.Millisecond))
				}
				for _, r := range res.Brokers {
					b.Logf("broker %d: gate %s, stop %s, start %s, register %s, ISR %s, election %s, total %s", r.Broker,
						r.GateWait.Round(time.Millisecond), r.Stop.Round(time.Millisecond), r.Start.Round(time.Millisecond),
						r.Register.Round(time.Millisecond), r.CatchUp.Round(time.Millisecond), r.Elect.Round(time.Millisecond), r.Total.Round(time.Millisecond))
				}
				b.ReportMetric(gates.Seconds(), "gates-s")
				b.ReportMetric(register.Seconds(), "register-s")
				b.ReportMetric(ctlCatchUp.Seconds(), "ctl-caught-up-s")
				b.ReportMetric(unfenceTime(events).Seconds(), "started-to-unfenced-s")
				// A KRaft broker is back when it is in every ISR and
				// unfenced, whichever comes last.
				nodeBack := brokerSideTime(events) - startedToInSync(events) + backTime(events) + controllerSideTime(events)
				b.ReportMetric(nodeBack.Seconds(), "node-side-s")
				b.ReportMetric(roll.Seconds()/nodeBack.Seconds(), "roll/node-side")
				for _, v := range stack.Fleet.Violations("bench") {
					b.Fatalf("violation %s: %s", v.Kind, v.Detail)
				}
			}
		})
	}
}

// controllerSideTime sums, per controller, stop→stopped and
// start→started from the fleet's audit.
func controllerSideTime(events []localfleet.Event) time.Duration {
	var total time.Duration
	began := map[int32]time.Time{}
	for _, e := range events {
		switch e.Kind {
		case localfleet.EventControllerStop, localfleet.EventControllerStart:
			began[e.Broker] = e.Time
		case localfleet.EventControllerStopped, localfleet.EventControllerStarted:
			if t, ok := began[e.Broker]; ok {
				total += e.Time.Sub(t)
				delete(began, e.Broker)
			}
		}
	}
	return total
}

// unfenceTime sums, per broker, started→unfenced from the fleet's audit:
// a KRaft broker serves only once the controller unfences it, a
// heartbeat interval after it registered.
func unfenceTime(events []localfleet.Event) time.Duration {
	var total time.Duration
	started := map[int32]time.Time{}
	for _, e := range events {
		switch e.Kind {
		case localfleet.EventStarted:
			started[e.Broker] = e.Time
		case localfleet.EventKind(kraft.EventUnfenced):
			if t, ok := started[e.Broker]; ok {
				total += e.Time.Sub(t)
				delete(started, e.Broker)
			}
		}
	}
	return total
}

// startedToInSync sums, per broker, started→in-sync (brokerSideTime's
// catch-up part).
func startedToInSync(events []localfleet.Event) time.Duration {
	var total time.Duration
	started := map[int32]time.Time{}
	for _, e := range events {
		switch e.Kind {
		case localfleet.EventStarted:
			started[e.Broker] = e.Time
		case localfleet.EventInSync:
			if t, ok := started[e.Broker]; ok {
				total += e.Time.Sub(t)
				delete(started, e.Broker)
			}
		}
	}
	return total
}

// backTime sums, per broker, started→(in sync and unfenced), whichever
// comes last.
func backTime(events []localfleet.Event) time.Duration {
	var total time.Duration
	type back struct{ started, inSync, unfenced time.Time }
	seen := map[int32]*back{}
	for _, e := range events {
		switch e.Kind {
		case localfleet.EventStarted:
			seen[e.Broker] = &back{started: e.Time}
		case localfleet.EventInSync, localfleet.EventKind(kraft.EventUnfenced):
			b := seen[e.Broker]
			if b == nil {
				continue
			}
			if e.Kind == localfleet.EventInSync {
				b.inSync = e.Time
			} else {
				b.unfenced = e.Time
			}
			if !b.inSync.IsZero() && !b.unfenced.IsZero() {
				last := b.inSync
				if b.unfenced.After(last) {
					last = b.unfenced
				}
				total += last.Sub(b.started)
				delete(seen, e.Broker)
			}
		}
	}
	return total
}

// BenchmarkKRaftFencingToRecovery crashes a KRaft broker behind kfleet's
// back with the fleet's default KRaft timing (session 9 s) and default
// sensing (fencing polled every 2 s), a 2 s recovery grace, and reports
// from the fleet's audit:
//
//   - fenced-s: crash to the controller fencing it (the session timeout);
//   - fencing-to-start-s: the fencing to kfleet's first start of the
//     broker (detection, the grace, the recovery's checks);
//   - fencing-to-recovery-s: the fencing to the RecoveryWorkflow's start
//     (the entity's account), whose target is the one of detection: the
//     broker session timeout + 2 s after the crash, so 2 s after fencing;
//   - fencing-to-lost-s: the fencing to the loss as sensing dated it
//     (the recovery's lostAt): how much of the above is sensing's poll;
//   - crash-to-start-s: both together.
func BenchmarkKRaftFencingToRecovery(b *testing.B) {
	const grace = 2 * time.Second
	cc := localfleet.ClusterConfig{ID: "bench", Brokers: 3, KRaft: &localfleet.KRaftConfig{Controllers: 3}}
	stack := startStackWith(b, localfleet.Config{Clusters: []localfleet.ClusterConfig{cc}},
		func(o *devstack.StackOptions) { o.Health = fleet.HealthPolicy{RecoveryGrace: grace} })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	waitIdle := func() {
		for {
			st, err := entity.ClusterStatus(ctx, stack.Client, "bench")
			if err == nil && st.Watch != nil && len(st.Watch.Registered) == 3 && len(st.Watch.Missing) == 0 && len(st.Urgent) == 0 && len(st.Queue) == 0 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitIdle()
	broker := int32(2)
	for b.Loop() {
		before := len(stack.Fleet.Audit("bench"))
		done := 0
		if st, err := entity.ClusterStatus(ctx, stack.Client, "bench"); err == nil {
			done = len(st.History)
		}
		if err := stack.Fleet.Crash(ctx, "bench", broker, "bench"); err != nil {
			b.Fatal(err)
		}
		var op workflows.Operation
		for op.FinishedAt.IsZero() {
			time.Sleep(50 * time.Millisecond)
			st, err := entity.ClusterStatus(ctx, stack.Client, "bench")
			if err != nil || len(st.History) <= done {
				continue
			}
			if i := slices.IndexFunc(st.History[done:], func(o workflows.Operation) bool { return o.Kind == workflows.OpRecovery }); i >= 0 {
				op = st.History[done+i]
			}
		}
		if op.Status != workflows.StatusSucceeded {
			b.Fatalf("recovery %s: %s", op.Status, op.Error)
		}
		var crashed, fenced, started time.Time
		for _, e := range stack.Fleet.Audit("bench")[before:] {
			switch {
			case e.Broker != broker:
			case e.Kind == localfleet.EventCrash && crashed.IsZero():
				crashed = e.Time
			case e.Kind == localfleet.EventKind(kraft.EventFenced) && fenced.IsZero() && !crashed.IsZero():
				fenced = e.Time
			case e.Kind == localfleet.EventStart && started.IsZero() && !fenced.IsZero():
				started = e.Time
			}
		}
		if crashed.IsZero() || fenced.IsZero() || started.IsZero() {
			b.Fatalf("audit of broker %d: crash %v, fenced %v, first start %v", broker, crashed, fenced, started)
		}
		b.ReportMetric(fenced.Sub(crashed).Seconds(), "fenced-s")
		b.ReportMetric(started.Sub(fenced).Seconds(), "fencing-to-start-s")
		b.ReportMetric(op.StartedAt.Sub(fenced).Seconds(), "fencing-to-recovery-s")
		if rp := (workflows.RecoveryParams{}); json.Unmarshal(op.Params, &rp) == nil && !rp.LostAt.IsZero() {
			b.ReportMetric(rp.LostAt.Sub(fenced).Seconds(), "fencing-to-lost-s")
		}
		b.ReportMetric(started.Sub(crashed).Seconds(), "crash-to-start-s")
		b.ReportMetric(grace.Seconds(), "grace-s")
		if v := stack.Fleet.Violations("bench"); len(v) > 0 {
			b.Fatalf("violations: %+v", v)
		}
		broker = broker%3 + 1
		waitIdle()
	}
}
