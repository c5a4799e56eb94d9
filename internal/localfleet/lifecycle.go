package localfleet

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// stop performs a controlled shutdown of broker b, as a ZooKeeper-mode
// Kafka broker does: leadership moves to other in-sync replicas, the broker
// leaves every ISR, it deregisters (its session closes, so its ephemeral
// node vanishes at once), the controller moves if it was the controller,
// and its listener closes. Stopping a broker whose process is not running
// (stopped, crashed, failed) changes nothing. Stopping a recovering broker
// interrupts its log recovery (recorded as a violation): the shutdown is
// not clean, so its next start recovers again from the beginning.
//
// Once begun, a stop runs to completion even if ctx is canceled, as a real
// shutdown does when the operator's shell goes away; ctx bounds only the
// work before it begins.
func (c *cluster) stop(ctx context.Context, b *broker, who string) error {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	if err := c.checkOpen(); err != nil {
		return err
	}
	c.mu.Lock()
	down := b.state == StateStopped || b.state == StateCrashed || b.state == StateFailed || b.state == StateDecommissioned
	c.mu.Unlock()
	if down {
		return nil
	}
	// Learn partitions no client has asked about, so that none keeps a
	// stopped leader.
	if err := c.refresh(ctx); err != nil {
		return fmt.Errorf("localfleet: cluster %q: broker %d: stop: %w", c.id, b.id, err)
	}

	c.mu.Lock()
	if down := c.notRunningLocked(b.id); len(down) > 0 {
		c.violateLocked(ViolationTwoBrokersDown,
			fmt.Sprintf("broker %d going down while %s", b.id, strings.Join(down, ", ")))
	}
	if b.state == StateRecovering {
		r := b.rt.recovery
		c.violateLocked(ViolationRecoveringRestarted, fmt.Sprintf(
			"broker %d stopped while recovering its logs (%d/%d segments, %d logs left)", b.id, r.done, r.segments, r.logsLeft()))
	} else {
		b.rt.unclean = false // a controlled shutdown writes the clean-shutdown file
	}
	b.rt.recovery = recoveryProgress{}
	b.state = StateStopping
	b.gen++
	c.recordLocked(b, EventStop, who)
	if c.kraftRegisteredLocked(b) {
		// KRaft: the broker's heartbeat asks for a controlled shutdown
		// and the controller moves its leadership.
		c.kraftWantShutdownLocked(b, who)
	}
	c.leaveISRLocked(b.id)
	c.mu.Unlock()

	sleep(c.life, c.cfg.Timing.ControlledShutdown)

	c.mu.Lock()
	conn := b.zk
	b.zk, b.rt.link = nil, nil
	c.mu.Unlock()
	if conn != nil {
		conn.Close() // closes the session: /brokers/ids/<id> vanishes now
	}

	c.moveController(b.id, "controller failover")

	b.proxy.close()
	c.mu.Lock()
	b.state = StateStopped
	if c.kraftRegisteredLocked(b) {
		c.kraftStoppedLocked(b, who) // fenced cleanly
	}
	c.recordLocked(b, EventStopped, who)
	c.mu.Unlock()
	return nil
}

// start starts broker b: after the startup time it listens again and
// registers in ZooKeeper (taking the controller role if no broker holds
// it); it rejoins the ISRs after the catch-up time, in the background.
// Starting a running or recovering broker changes nothing. version and
// ibp, when not empty, are the Kafka version and the
// inter.broker.protocol.version the broker now runs with; as with
// kfleet-StartBroker, both take effect only at a start, so asking a running
// broker for others is refused (ErrRunningMismatch).
//
// The start can fail (an injected fail-to-start, or limits too low for the
// broker's segments: Map failed, Too many open files): the broker is then
// failed, and the error wraps ErrStartFailed with the cause. On a host
// that is not running (instances.go) nothing starts: the error wraps
// ErrInstanceNotRunning and the broker is left as it was; likewise
// without its data volume (ErrNoDataVolume). on, when not empty, is the
// host the start was asked on (kfleet-StartBroker): a broker that has
// moved to another host meanwhile is not started from the old one.
//
// After an unclean stop (crash, failed start, interrupted recovery) the
// broker first recovers its logs (state recovering) and registers when
// recovery ends, in the background: start returns once recovery has
// begun, as `systemctl start kafka` returns once the JVM runs.
func (c *cluster) start(ctx context.Context, b *broker, who, version, ibp, on string) error {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	if err := c.checkOpen(); err != nil {
		return err
	}
	c.mu.Lock()
	if b.state == StateRunning || b.state == StateRecovering {
		running, runningIBP := b.version, b.ibp
		c.mu.Unlock()
		if version != "" && version != running {
			return fmt.Errorf("localfleet: cluster %q: broker %d: %w: version %s requested, it runs %s",
				c.id, b.id, ErrRunningMismatch, version, orUnset(running))
		}
		if ibp != "" && ibp != runningIBP {
			return fmt.Errorf("localfleet: cluster %q: broker %d: %w: inter.broker.protocol.version %s requested, it runs with %s",
				c.id, b.id, ErrRunningMismatch, ibp, orUnset(runningIBP))
		}
		return nil
	}
	if on != "" && on != b.instanceID {
		c.mu.Unlock()
		return fmt.Errorf("localfleet: cluster %q: broker %d: start on instance %s: %w: the broker runs on instance %s now",
			c.id, b.id, on, ErrNotConfigured, b.instanceID)
	}
	if st := c.hosts.instanceState(b.instanceID); st != InstanceRunning {
		c.mu.Unlock()
		return fmt.Errorf("localfleet: cluster %q: broker %d: start: %w: instance %s is %s",
			c.id, b.id, ErrInstanceNotRunning, b.instanceID, st)
	}
	if _, _, ok := c.hosts.usage(b.instanceID); !ok {
		c.mu.Unlock()
		return fmt.Errorf("localfleet: cluster %q: broker %d: start: %w: log.dirs %s is not mounted on instance %s",
			c.id, b.id, ErrNoDataVolume, logDir, b.instanceID)
	}
	prev := b.state
	b.state = StateStarting
	b.gen++
	if version != "" {
		b.version = version
	}
	if ibp != "" {
		b.ibp = ibp
	}
	c.recordLocked(b, EventStart, who)
	if b.ibp != "" {
		c.audit[len(c.audit)-1].Detail = "inter.broker.protocol.version=" + b.ibp
	}
	c.mu.Unlock()

	if err := sleepCtx(ctx, c.life, c.cfg.Timing.Startup); err != nil {
		// Abandoned before the process ran: back where it was.
		c.mu.Lock()
		b.state = prev
		c.mu.Unlock()
		return fmt.Errorf("localfleet: cluster %q: broker %d: start: %w", c.id, b.id, err)
	}

	now := time.Now()
	c.mu.Lock()
	c.recountSegmentsLocked()
	if why, detail, lines, inLoad := b.rt.startFailure(now, b.id); why != "" {
		b.state = StateFailed
		b.rt.unclean = b.rt.unclean || inLoad
		b.rt.log.add(lines...)
		c.recordDetailLocked(b, EventStartFailed, who, why+": "+detail)
		c.mu.Unlock()
		return fmt.Errorf("localfleet: cluster %q: broker %d: start: %w: %s", c.id, b.id, ErrStartFailed, why)
	}
	b.rt.processStarted(now)
	b.rt.log.add(kafkaLine(now, "INFO", fmt.Sprintf("[KafkaServer id=%d] starting", b.id), serverLogger))
	if b.rt.unclean {
		b.state = StateRecovering
		c.recordDetailLocked(b, EventRecovering, who, fmt.Sprintf("%d segments", b.rt.allSegments()))
		gen := b.gen
		c.wg.Add(1)
		go c.recoverLogs(b, gen, who)
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	return c.goLive(b, who)
}

// goLive finishes a start: the broker listens, registers in ZooKeeper
// (taking the controller role if no broker holds it), is running, and
// rejoins the ISRs after the catch-up time, in the background. b.opMu
// must be held. On error the broker is failed.
func (c *cluster) goLive(b *broker, who string) error {
	fail := func(err error) error {
		c.mu.Lock()
		b.state = StateFailed
		c.mu.Unlock()
		return fmt.Errorf("localfleet: cluster %q: broker %d: start: %w", c.id, b.id, err)
	}
	if err := b.proxy.open(); err != nil {
		return fail(err)
	}
	conn, err := c.registerBroker(b)
	if err != nil {
		b.proxy.close()
		return fail(err)
	}

	c.mu.Lock()
	b.zk = conn
	b.state = StateRunning
	b.rt.log.add(kafkaLine(time.Now(), "INFO", fmt.Sprintf("[KafkaServer id=%d] started", b.id), serverLogger))
	c.scheduleOOMLocked(b)
	gen := b.gen
	takeControl := c.controller < 0
	if takeControl {
		c.controller = b.id
	}
	c.recordLocked(b, EventStarted, who)
	c.mu.Unlock()
	if takeControl {
		if err := c.publishController(); err != nil {
			c.log.Error().Err(err).Int32("broker", b.id).Msg("controller election")
		}
	}

	c.wg.Add(1)
	go c.catchUp(b, gen, who)
	return nil
}

// catchUp puts b back into the ISRs after the catch-up time, unless b has
// changed state since (gen differs) or the fleet is closing.
func (c *cluster) catchUp(b *broker, gen uint64, who string) {
	defer c.wg.Done()
	if sleep(c.life, c.beginCatchUp(b, gen)) != nil {
		return
	}
	// Partitions created while b was away must be known before it rejoins.
	if err := c.refresh(c.life); err != nil {
		c.log.Warn().Err(err).Int32("broker", b.id).Msg("catch-up: refresh from kfake")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || b.gen != gen || b.state != StateRunning {
		return
	}
	c.joinISRLocked(b.id)
	c.recordLocked(b, EventInSync, who)
}

func orUnset(s string) string {
	if s == "" {
		return "unset"
	}
	return s
}

// notRunningLocked describes the brokers other than id that are not
// running, e.g. "broker 1 is stopped".
func (c *cluster) notRunningLocked(id int32) []string {
	var out []string
	for _, o := range c.brokers {
		if o.id != id && o.state != StateRunning && o.state != StateDecommissioned && c.shareAPartitionLocked(id, o.id) {
			out = append(out, fmt.Sprintf("broker %d (sharing a partition with it) is %s", o.id, o.state))
		}
	}
	return out
}

// shareAPartitionLocked reports whether brokers a and b both hold a
// replica of some partition: only then does their being down together
// cost that partition two replicas. Brokers that share none (one rack at a
// time, with rack-aware placement) may safely be down together.
func (c *cluster) shareAPartitionLocked(a, b int32) bool {
	for _, p := range c.partitionsLocked() {
		if slices.Contains(p.replicas, a) && slices.Contains(p.replicas, b) {
			return true
		}
	}
	return false
}

func (c *cluster) checkOpen() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.life.Err() != nil {
		return fmt.Errorf("localfleet: cluster %q: %w", c.id, ErrClosed)
	}
	return nil
}

// sleep waits d or until life ends; simulated durations are cut short when
// the fleet closes.
func sleep(life context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-life.Done():
		return life.Err()
	}
}

// sleepCtx is sleep that also ends with the caller's ctx.
func sleepCtx(ctx, life context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-life.Done():
		return life.Err()
	}
}
