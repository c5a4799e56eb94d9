package localfleet

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// stop performs a controlled shutdown of broker b, as a ZooKeeper-mode
// Kafka broker does: leadership moves to other in-sync replicas, the broker
// leaves every ISR, it deregisters (its session closes, so its ephemeral
// node vanishes at once), the controller moves if it was the controller,
// and its listener closes. Stopping a stopped broker changes nothing.
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
	stopped := b.state == StateStopped
	c.mu.Unlock()
	if stopped {
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
	b.state = StateStopping
	b.gen++
	c.recordLocked(b, EventStop, who)
	c.leaveISRLocked(b.id)
	c.mu.Unlock()

	sleep(c.life, c.cfg.Timing.ControlledShutdown)

	c.mu.Lock()
	conn := b.zk
	b.zk = nil
	c.mu.Unlock()
	if conn != nil {
		conn.Close() // closes the session: /brokers/ids/<id> vanishes now
	}

	c.mu.Lock()
	moved := c.controller == b.id
	if moved {
		c.controller = c.pickControllerLocked()
	}
	c.mu.Unlock()
	if moved {
		if err := c.publishController(); err != nil {
			c.log.Error().Err(err).Int32("broker", b.id).Msg("controller failover")
		}
	}

	b.proxy.close()
	c.mu.Lock()
	b.state = StateStopped
	c.recordLocked(b, EventStopped, who)
	c.mu.Unlock()
	return nil
}

// start starts broker b: after the startup time it listens again and
// registers in ZooKeeper (taking the controller role if no broker holds
// it); it rejoins the ISRs after the catch-up time, in the background.
// Starting a running broker changes nothing. version, when not empty, is
// the Kafka version the broker now runs.
func (c *cluster) start(ctx context.Context, b *broker, who, version string) error {
	b.opMu.Lock()
	defer b.opMu.Unlock()
	if err := c.checkOpen(); err != nil {
		return err
	}
	c.mu.Lock()
	if b.state == StateRunning {
		c.mu.Unlock()
		return nil
	}
	b.state = StateStarting
	b.gen++
	if version != "" {
		b.version = version
	}
	c.recordLocked(b, EventStart, who)
	c.mu.Unlock()

	fail := func(err error) error {
		c.mu.Lock()
		b.state = StateStopped
		c.mu.Unlock()
		return fmt.Errorf("localfleet: cluster %q: broker %d: start: %w", c.id, b.id, err)
	}
	if err := sleepCtx(ctx, c.life, c.cfg.Timing.Startup); err != nil {
		return fail(err)
	}
	if err := b.proxy.open(); err != nil {
		return fail(err)
	}
	conn, err := c.register(b)
	if err != nil {
		b.proxy.close()
		return fail(err)
	}

	c.mu.Lock()
	b.zk = conn
	b.state = StateRunning
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
	if sleep(c.life, c.catchUpDelay(b)) != nil {
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

// notRunningLocked describes the brokers other than id that are not
// running, e.g. "broker 1 is stopped".
func (c *cluster) notRunningLocked(id int32) []string {
	var out []string
	for _, o := range c.brokers {
		if o.id != id && o.state != StateRunning {
			out = append(out, fmt.Sprintf("broker %d is %s", o.id, o.state))
		}
	}
	return out
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
